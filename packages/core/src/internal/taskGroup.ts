/**
 * Task groups: branches of a workflow that run concurrently, each in a journal branch of its own
 * (`group[i]`), so that step identity never depends on which branch runs first.
 *
 * `concurrency` workers pull branch indices from one counter, so at most that many branches run at
 * once and branches start in index order. In `fail-fast` mode the first failure interrupts the
 * branches still running (their steps in flight are interrupted, not failed) and no new branch
 * starts; in `settle` mode every branch runs to its end. The group fails with the failures of its
 * branches combined in parallel, and, in fail-fast mode, the interruptions of the siblings.
 *
 * The end of a group is journaled as a `group` entry summarising each branch's outcome. A replay
 * that finds it runs the branches journal-only: a step that is not in the journal waits to be
 * interrupted (by the failure that ended the group the first time) instead of running.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import { currentScope, Execution, type InterruptedAttempt, interruptedAttempts, journalOnly } from "../Execution.js"
import { checkName } from "./stepRunner.js"

/** How a task group runs. */
export interface GroupOptions {
  /** The group's name in step paths (`ship[1]/pack`). Default `all` or `forEach`. */
  readonly name?: string | undefined
  /** At most this many branches at once. Default: all of them. */
  readonly concurrency?: number | "unbounded" | undefined
  /** `fail-fast` (default): the first failure interrupts the others. `settle`: every branch runs to its end. */
  readonly mode?: "fail-fast" | "settle" | undefined
}

/** What a branch did, as the group's journal entry records it. */
export type BranchOutcome = "succeeded" | "failed" | "interrupted" | "not-started"

/** The journal entry of a finished group. `_tag` is `Failure` when the group failed. */
export interface GroupRecord {
  readonly _tag: "Success" | "Failure"
  readonly mode: "fail-fast" | "settle"
  readonly branches: ReadonlyArray<BranchOutcome>
  /** The step attempts the group's end cut off in flight (absent when none). */
  readonly interrupted?: ReadonlyArray<InterruptedAttempt> | undefined
}

/** Runs `branches` as a task group; the values come back in branch order. */
export const run = <A, E, R>(
  defaultName: string,
  branches: ReadonlyArray<Effect.Effect<A, E, R>>,
  options: GroupOptions = {}
): Effect.Effect<Array<A>, E, R | Execution> =>
  Effect.suspend(() => {
    const name = options.name ?? defaultName
    const problem = checkName(name)
    if (problem !== undefined) return Effect.dieMessage(problem)
    const mode = options.mode ?? "fail-fast"
    const size = branches.length
    const concurrency = options.concurrency === undefined || options.concurrency === "unbounded"
      ? size
      : Math.max(1, Math.min(size, Math.floor(options.concurrency)))
    return Effect.flatMap(Execution, (execution) =>
      Effect.flatMap(execution.enter(name, "group"), (slot) =>
        Effect.gen(function*() {
          const replaying = Option.isSome(slot.result)
          const inherited = yield* FiberRef.get(journalOnly)
          const exits: Array<Exit.Exit<A, E> | undefined> = new Array(size)
          const cut: Array<Array<InterruptedAttempt>> = Array.from({ length: size }, () => [])
          let next = 0
          let stopped = false

          const branch = (index: number) =>
            branches[index].pipe(
              Effect.locally(currentScope, `${slot.stepId}[${index}]`),
              Effect.locally(journalOnly, inherited || replaying),
              Effect.locally(interruptedAttempts, cut[index]),
              Effect.onExit((exit) =>
                Effect.sync(() => {
                  exits[index] = exit
                })
              )
            )

          // A worker takes the next branch until none is left, or, in fail-fast mode, until one
          // failed: it then fails too, which interrupts the other workers and their branches.
          const worker: Effect.Effect<void, unknown, R> = Effect.gen(function*() {
            while (!stopped && next < size) {
              const index = next++
              const exit = yield* Effect.exit(branch(index))
              if (mode === "fail-fast" && Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
                stopped = true
                return yield* Effect.failCause(exit.cause)
              }
            }
          })

          const workerEnds = yield* execution.branchOut(concurrency)
          const workers = yield* Effect.exit(
            Effect.all(
              Array.from({ length: concurrency }, () =>
                Effect.ensuring(worker, workerEnds)),
              { concurrency: "unbounded", discard: true }
            ).pipe(
              // Interrupted from outside: its branches' interrupted attempts go to the enclosing
              // branch, if any, for that group's entry.
              Effect.onInterrupt(() =>
                Effect.flatMap(FiberRef.get(interruptedAttempts), (enclosing) =>
                  Effect.sync(() => {
                    if (enclosing !== undefined) { for (const list of cut) enclosing.push(...list) }
                  }))
              )
            )
          )
          // Interrupted from outside (shutdown, cancellation): the group did not end; nothing is recorded.
          if (Exit.isFailure(workers) && Cause.isInterruptedOnly(workers.cause) && !stopped) {
            return yield* Effect.failCause(workers.cause as Cause.Cause<never>)
          }

          const outcomes = exits.map((exit): BranchOutcome =>
            exit === undefined
              ? "not-started"
              : Exit.isSuccess(exit)
              ? "succeeded"
              : Cause.isInterruptedOnly(exit.cause)
              ? "interrupted"
              : "failed"
          )
          for (let i = 0; i < size; i++) if (exits[i] === undefined) outcomes[i] = "not-started"
          const failures = exits.filter((exit): exit is Exit.Failure<A, E> =>
            exit !== undefined && Exit.isFailure(exit)
          )
          const failed = failures.some((exit) => !Cause.isInterruptedOnly(exit.cause))
          if (!replaying) {
            const interrupted = cut.flatMap((list, i) => outcomes[i] === "interrupted" ? list : [])
            const record: GroupRecord = {
              _tag: failed ? "Failure" : "Success",
              mode,
              branches: outcomes,
              ...(interrupted.length === 0 ? {} : { interrupted })
            }
            yield* execution.complete(slot, undefined, record)
          }
          if (failed) {
            return yield* Effect.failCause(
              failures.map((exit) => exit.cause).reduce((all, cause) => Cause.parallel(all, cause))
            )
          }
          return exits.map((exit) => (exit as Exit.Success<A, E>).value)
        }).pipe(Effect.ensuring(execution.leave(slot))) as Effect.Effect<Array<A>, E, R>))
  })
