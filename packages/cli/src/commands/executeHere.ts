/**
 * Executing a run in this process, as `weft run` and `weft resume` do: claim it, print its progress
 * on stderr, and report how it ended (result on stdout, or its failure tree) with its exit code.
 */
import type { Workflow } from "@weft/core"
import type { Store } from "@weft/runtime"
import { Client, type Errors, Runner } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Output from "../Output.js"
import * as Render from "../Render.js"
import * as Trace from "../Trace.js"
import { UsageError } from "../UsageError.js"
import { color, LEASE_MILLIS } from "./shared.js"

/** Prints a finished run the way `run` and `resume` do, and returns its exit code. */
export const report = (runId: string, json: boolean) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const history = yield* client.history(runId)
    const trace = Trace.fromHistory(history.run, history.journal)
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

const progressPrinter = (event: Parameters<typeof Render.progress>[0]) =>
  Output.err(`  ${Render.progress(event, { color: color(process.stderr) })}\n`)

/** Claims the run, executes it here with live progress, and reports it; Ctrl-C leaves it resumable. */
export const executeHere = (
  workflow: Workflow.Any,
  runId: string,
  options: { readonly owner: string; readonly force: boolean; readonly json: boolean }
) =>
  // The module's own layer (provided by the caller) satisfies the workflow's requirements.
  (Runner.claimAndExecute(workflow, runId, {
    owner: options.owner,
    leaseMillis: LEASE_MILLIS,
    force: options.force,
    onProgress: progressPrinter,
    // A long sleep or wait suspends the run: this process waits without holding it, so a worker
    // may take it meanwhile, and Ctrl-C leaves it sleeping or waiting, not lost.
    onSuspended: (suspended) =>
      Output.err(
        `  ${Output.paint("⏾", "cyan", color(process.stderr))} ${suspended.reason}: suspended; waiting here ` +
          `(Ctrl-C leaves it to any worker: weft worker, or weft resume ${runId})\n`
      )
  }) as Effect.Effect<
    unknown,
    Errors.RunNotClaimable | Errors.StoreUnavailable | Errors.LeaseLost,
    Store.Store
  >).pipe(
    Effect.catchTag("RunNotClaimable", (error) => Effect.fail(new UsageError({ message: error.message }))),
    Effect.flatMap(() => report(runId, options.json)),
    Effect.onInterrupt(() => Output.err(`\ninterrupted: run ${runId} is resumable with: weft resume ${runId}\n`))
  )
