/**
 * Executing a run in this process, as `weft run` and `weft resume` do: claim it, print its progress
 * on stderr, and report how it ended (result on stdout, or its failure tree) with its exit code.
 */
import type { Workflow } from "@weft/core"
import { Client, type Errors, Runner, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Output from "../Output.js"
import * as Render from "../Render.js"
import * as Trace from "../Trace.js"
import { UsageError } from "../UsageError.js"
import { color, LEASE_MILLIS } from "./shared.js"

/** How many levels of child runs `weft show` and `weft run` read. */
const CHILD_DEPTH = 3

/**
 * The history of a run with those of its child runs, their children, ... `depth` levels down, by
 * run id. A child given an id of its own is found by its parent link among the runs of its workflow
 * created since its step began.
 */
export const historyWithChildren = (runId: string, depth = CHILD_DEPTH) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const store = yield* Store.Store
    const history = yield* client.history(runId)
    const children = new Map<string, Trace.History>()
    let level: Array<Trace.History> = [history]
    for (let d = 0; d < depth && level.length > 0; d++) {
      const refs = level.flatMap((parent) =>
        Trace.childRefs(parent.run, parent.journal).map((ref) => ({ parent: parent.run.id, ref }))
      )
      const found = yield* Effect.forEach(refs, ({ parent, ref }) =>
        Effect.gen(function*() {
          if (children.has(ref.runId)) return Option.none<Trace.History>()
          const direct = yield* Effect.option(client.history(ref.runId))
          const ours = (run: Store.RunRecord) => run.parent?.runId === parent && run.parent.stepId === ref.stepId
          if (Option.isSome(direct) && (ref.known || ours(direct.value.run))) return direct
          const runs = yield* store.listRuns({ workflow: ref.workflow, since: ref.startedAt })
          const run = runs.find(ours)
          return run === undefined ? Option.none<Trace.History>() : yield* Effect.option(client.history(run.id))
        }), { concurrency: 8 })
      level = []
      for (const h of found) {
        if (Option.isSome(h) && !children.has(h.value.run.id)) {
          children.set(h.value.run.id, h.value)
          level.push(h.value)
        }
      }
    }
    return { history, children }
  })

/** Prints a finished run the way `run` and `resume` do, and returns its exit code. */
export const report = (runId: string, json: boolean) =>
  Effect.gen(function*() {
    const { children, history } = yield* historyWithChildren(runId)
    const trace = Trace.fromHistory(history.run, history.journal, children, history.redrives)
    const code = Trace.exitCode(history.run)
    const run = history.run
    if (run.status === "succeeded") {
      const took = run.finishedAt !== undefined && run.startedAt !== undefined ? run.finishedAt - run.startedAt : 0
      yield* Output.err(
        `${Output.paint("✓", "green", color(process.stderr))} ${run.workflow} ${run.id} succeeded in ${
          Render.formatDuration(took)
        }\n`
      )
      yield* Output.out(
        json
          ? `${JSON.stringify({ runId: run.id, workflow: run.workflow, status: run.status, output: run.output })}\n`
          : `${JSON.stringify(run.output, null, 2) ?? "null"}\n`
      )
    } else {
      yield* Output.err(Render.failureTree(trace, { color: color(process.stderr) }) + "\n")
      if (json) yield* Output.out(`${JSON.stringify(trace)}\n`)
    }
    return code
  })

const childWait = /^waiting for child run (.+) \(([^()]*)\)$/

/**
 * Prints the progress of a run and of the children it waits for, which this process executes
 * meanwhile (their events come through the same callbacks): a child's lines are indented under the
 * line that says the run waits for it, until the child has ended (seen at the next line).
 */
const progressPrinter = (store: Store.StoreService) => {
  const options = { color: color(process.stderr) }
  const awaited: Array<string> = []
  const indent = () => "  ".repeat(awaited.length + 1)
  /** Says how the children that ended since the last line ended, innermost first. */
  const ended = Effect.gen(function*() {
    while (awaited.length > 0) {
      const runId = awaited[awaited.length - 1]
      const run = yield* Effect.orElseSucceed(store.getRun(runId), () => Option.none<Store.RunRecord>())
      if (Option.isSome(run) && !Store.isTerminal(run.value.status)) return
      awaited.pop()
      if (Option.isSome(run)) {
        const trace = Trace.fromHistory(run.value, { steps: [], attempts: [] })
        yield* Output.err(`${indent()}${Render.childProgress({ _tag: "ChildEnded", trace }, options)}\n`)
      }
    }
  })
  return {
    ended,
    onProgress: (event: Parameters<typeof Render.progress>[0]) =>
      Effect.zipRight(ended, Effect.suspend(() => Output.err(`${indent()}${Render.progress(event, options)}\n`))),
    onSuspended: (runId: string, suspended: Errors.RunSuspended) =>
      Effect.zipRight(
        ended,
        Effect.suspend(() => {
          const child = suspended.child === undefined ? null : childWait.exec(suspended.reason)
          if (child !== null && suspended.child !== undefined) {
            const line = Render.childProgress(
              { _tag: "ChildAwaited", runId: suspended.child, workflow: child[2] },
              options
            )
            awaited.push(suspended.child)
            return Output.err(`${"  ".repeat(awaited.length)}${line}\n`)
          }
          return Output.err(
            `${indent()}${Output.paint("⏾", "cyan", options.color)} ${suspended.reason}: suspended; waiting here ` +
              `(Ctrl-C leaves it to any worker: weft worker, or weft resume ${runId})\n`
          )
        })
      )
  }
}

/** Claims the run, executes it here with live progress, and reports it; Ctrl-C leaves it resumable. */
export const executeHere = (
  workflow: Workflow.Any,
  runId: string,
  options: { readonly owner: string; readonly force: boolean; readonly json: boolean }
) =>
  Effect.flatMap(Store.Store, (store) => {
    const printer = progressPrinter(store)
    // The module's own layer (provided by the caller) satisfies the workflow's requirements.
    return (Runner.claimAndExecute(workflow, runId, {
      owner: options.owner,
      leaseMillis: LEASE_MILLIS,
      force: options.force,
      onProgress: printer.onProgress,
      // A long sleep or wait suspends the run: this process waits without holding it, so a worker
      // may take it meanwhile, and Ctrl-C leaves it sleeping or waiting, not lost. A child the run
      // waits for is executed here meanwhile.
      onSuspended: (suspended) => printer.onSuspended(runId, suspended)
    }) as Effect.Effect<
      unknown,
      Errors.RunNotClaimable | Errors.StoreUnavailable | Errors.LeaseLost,
      Store.Store
    >).pipe(
      Effect.catchTag("RunNotClaimable", (error) => Effect.fail(new UsageError({ message: error.message }))),
      Effect.zipLeft(printer.ended),
      Effect.flatMap(() => report(runId, options.json)),
      Effect.onInterrupt(() => Output.err(`\ninterrupted: run ${runId} is resumable with: weft resume ${runId}\n`))
    )
  })
