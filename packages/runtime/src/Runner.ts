/**
 * Runs a workflow in this process: claim the run's lease, execute it by replay, and report
 * progress. Used by `weft run` and `weft resume`, and by services that run a workflow inline.
 */
import type { Execution, Workflow } from "@weft/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Engine from "./Engine.js"
import type { LeaseLost, RunNotClaimable, RunSuspended, StoreUnavailable } from "./Errors.js"
import * as Owner from "./Owner.js"
import { type RunRecord, Store } from "./Store.js"

/** Options of `claimAndExecute`. */
export interface Options {
  readonly owner?: string | undefined
  /** Default 30 seconds. */
  readonly leaseMillis?: number | undefined
  /**
   * Take the run even if another owner's lease is live. Without it, a lease held by a process of
   * this host that no longer exists is taken over at once; any other live lease is respected.
   */
  readonly force?: boolean | undefined
  readonly onProgress?: ((event: Execution.ProgressEvent) => Effect.Effect<void>) | undefined
  /** See `Engine.ExecuteOptions.suspendAfter`. */
  readonly suspendAfter?: Duration.DurationInput | undefined
  /** See `Engine.ExecuteOptions.maxRecoveries`. */
  readonly maxRecoveries?: number | undefined
  /**
   * Told when the run suspends itself (a long durable sleep or backoff). This process then waits,
   * holding no lease (a worker may take the run meanwhile), and claims the run again when due.
   */
  readonly onSuspended?: ((suspended: RunSuspended) => Effect.Effect<void>) | undefined
}

/**
 * Claims the run for this process (see `force`) and executes it to its end, waiting out its
 * suspensions in this process (without a lease) and claiming it again each time it is due.
 */
export const claimAndExecute = <W extends Workflow.Any>(
  workflow: W,
  runId: string,
  options: Options = {}
): Effect.Effect<
  Engine.Executed,
  RunNotClaimable | StoreUnavailable | LeaseLost,
  Store | Workflow.Requirements<W>
> =>
  Effect.gen(function*() {
    const store = yield* Store
    const owner = options.owner ?? Owner.make()
    const leaseMillis = options.leaseMillis ?? 30_000
    const now = yield* Clock.currentTimeMillis
    const existing = yield* store.getRun(runId)
    const staleLocal = existing._tag === "Some" && existing.value.leaseOwner !== undefined &&
      existing.value.leaseOwner !== owner && Owner.isGoneLocally(existing.value.leaseOwner)
    let run = existing._tag === "Some" && existing.value.leaseOwner === owner
      ? existing.value
      : yield* store.claimRun({ id: runId, owner, leaseMillis, now, force: options.force === true || staleLocal })
    // The children this run starts, with their workflows: executed here while the run waits.
    const children = new Map<string, Workflow.Any>()
    while (true) {
      const executed = yield* Effect.either(
        inOwnFiber(Engine.execute(workflow, run, {
          owner,
          leaseMillis,
          onProgress: options.onProgress,
          suspendAfter: options.suspendAfter,
          maxRecoveries: options.maxRecoveries,
          onChild: (child, id) => void children.set(id, child)
        }))
      )
      if (Either.isRight(executed)) return executed.right
      if (executed.left._tag !== "RunSuspended") return yield* Effect.fail(executed.left)
      const suspended = executed.left
      if (options.onSuspended !== undefined) yield* options.onSuspended(suspended)
      // Waiting for children this process started: execute them here, one after another (unless a
      // worker holds one).
      for (const childId of suspended.children ?? []) {
        const child = children.get(childId)
        if (child === undefined) continue
        yield* claimAndExecute(child, childId, { ...options, owner, force: false }).pipe(
          Effect.catchTag("RunNotClaimable", () => Effect.void),
          Effect.asVoid
        )
      }
      if (suspended.signals === undefined && suspended.children === undefined && suspended.wakeAt !== undefined) {
        // A sleep: nothing else can wake it.
        const waitMillis = suspended.wakeAt - (yield* Clock.currentTimeMillis)
        if (waitMillis > 0) yield* Effect.sleep(Duration.millis(waitMillis))
      } else {
        // A signal or a child: until a delivery or the child's end makes it due, or its deadline.
        const suspendedStill = (r: RunRecord, now: number) =>
          (r.status === "waiting" || r.status === "sleeping") && (r.wakeAt === undefined || r.wakeAt > now)
        while (true) {
          const current = yield* store.getRun(runId)
          const now = yield* Clock.currentTimeMillis
          if (!Option.exists(current, (r) => suspendedStill(r, now))) break
          // A delivery from this process is seen at once on the next look; one from another
          // process (weft signal) within a second.
          const due = Option.getOrUndefined(current)?.wakeAt
          yield* Effect.sleep(Duration.millis(Math.max(1, Math.min(1000, (due ?? Infinity) - now))))
        }
      }
      run = yield* store.claimRun({ id: runId, owner, leaseMillis, now: yield* Clock.currentTimeMillis })
    }
  })

/**
 * `effect` in a fiber of its own (an execution's workflow code runs in the fiber that executes
 * it: its fiber-local state stays there), awaited; interrupting the wait interrupts it and waits
 * for it to stop (the engine releases the run's lease as it does).
 */
const inOwnFiber = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.fork(restore(effect)), (fiber) =>
      restore(Fiber.await(fiber)).pipe(
        Effect.onInterrupt(() => Fiber.interrupt(fiber)),
        Effect.flatten
      ))
  )
