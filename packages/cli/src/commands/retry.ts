/**
 * `weft retry <run-id> [--from-step S] [--wait]`: re-drives a failed (or cancelled) run, a dead
 * letter: back to its queue, its completed steps kept (they do not run again), the failed step and
 * what came after it to run again with their retry policies' whole budget. In bulk, `weft retry
 * --status failed [--workflow W] [--since T] [--limit N]` re-drives the runs that filter selects.
 * Nothing runs in this process: a worker executes the runs (or `weft resume <run-id>` here).
 */
import { Client, Store } from "@weft/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { parseSince, parseWhole, storeSpec } from "../Flags.js"
import { ExitCode } from "../Help.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import * as Trace from "../Trace.js"
import { UsageError } from "../UsageError.js"
import { report } from "./executeHere.js"
import { type Command, requester } from "./shared.js"

/** How many runs a bulk re-drive takes at most unless `--limit` says otherwise. */
const DEFAULT_BULK_LIMIT = 100

const DEFAULT_REASON = "re-driven from the command line"

export const retryCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [runId, ...extra] = positionals
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const selection = (["status", "workflow", "since", "limit"] as const).filter((flag) => flags[flag] !== undefined)
    if (runId !== undefined && selection.length > 0) {
      return yield* Effect.fail(
        new UsageError({
          message: `weft retry ${runId} re-drives that run; ${
            selection.map((flag) => `--${flag}`).join(", ")
          } select runs for a bulk re-drive, without a run id`
        })
      )
    }
    const json = flags.json === true
    const by = requester()
    const reason = flags.reason ?? DEFAULT_REASON
    if (runId !== undefined) {
      const fromStep = flags["from-step"]
      if (fromStep !== undefined && fromStep.trim() === "") {
        return yield* Effect.fail(new UsageError({ message: "--from-step needs a step id, as weft show prints it" }))
      }
      const spec = yield* storeSpec(flags)
      return yield* retryOne(runId, { fromStep, by, reason, json, wait: flags.wait === true }).pipe(
        Effect.provide(StoreConfig.layer(spec))
      )
    }
    if (flags.status === undefined) {
      return yield* Effect.fail(
        new UsageError({
          message: "retry needs a run id (weft retry <run-id>), or --status failed (or cancelled) to re-drive " +
            "the runs it selects"
        })
      )
    }
    if (flags.status !== "failed" && flags.status !== "cancelled") {
      return yield* Effect.fail(
        new UsageError({
          message: `--status ${flags.status}: only failed or cancelled runs can be re-driven`
        })
      )
    }
    if (flags["from-step"] !== undefined) {
      return yield* Effect.fail(
        new UsageError({ message: "--from-step names a step of one run: give its run id (weft retry <run-id>)" })
      )
    }
    if (flags.wait === true) {
      return yield* Effect.fail(
        new UsageError({ message: "--wait waits for one run: give its run id (weft retry <run-id> --wait)" })
      )
    }
    const limit = (yield* parseWhole("limit", flags.limit, { min: 1 })) ?? DEFAULT_BULK_LIMIT
    const since = yield* parseSince(flags.since, yield* Clock.currentTimeMillis)
    const spec = yield* storeSpec(flags)
    return yield* retryMany({ status: flags.status, workflow: flags.workflow, since, limit, by, reason, json }).pipe(
      Effect.provide(StoreConfig.layer(spec))
    )
  })

const retryOne = (
  runId: string,
  options: {
    readonly fromStep: string | undefined
    readonly by: string
    readonly reason: string
    readonly json: boolean
    readonly wait: boolean
  }
) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const { redrive, run } = yield* client.retry(runId, {
      from: options.fromStep === undefined ? undefined : { step: options.fromStep },
      by: options.by,
      reason: options.reason
    }).pipe(
      Effect.catchTags({
        RunNotRedrivable: (error) =>
          Effect.fail(new UsageError({ message: `${error.message} (see weft show ${runId})` })),
        StepNotInJournal: (error) => Effect.fail(new UsageError({ message: error.message }))
      })
    )
    if (!options.wait) {
      yield* Output.out(options.json ? `${JSON.stringify(redriven(redrive, run))}\n` : `${redriveLine(redrive)}\n`)
      yield* Output.err(`a worker runs it (weft worker), or run it here: weft resume ${runId}\n`)
      return ExitCode.ok
    }
    yield* Output.err(`${redriveLine(redrive)}; waiting for it to end (a worker runs it, or: weft resume ${runId})\n`)
    const store = yield* Store.Store
    while (true) {
      const current = yield* store.getRun(runId)
      if (Option.isSome(current) && Store.isTerminal(current.value.status)) break
      yield* Effect.sleep("200 millis")
    }
    return yield* report(runId, options.json)
  })

const retryMany = (options: {
  readonly status: Store.RunStatus
  readonly workflow: string | undefined
  readonly since: number | undefined
  readonly limit: number
  readonly by: string
  readonly reason: string
  readonly json: boolean
}) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const store = yield* Store.Store
    const runs = yield* store.listRuns({
      status: options.status,
      workflow: options.workflow,
      updatedSince: options.since,
      limit: options.limit
    })
    const done: Array<ReturnType<typeof redriven>> = []
    const skipped: Array<{ readonly runId: string; readonly status: string }> = []
    for (const run of runs) {
      // A run re-driven (or removed) by someone else since the list was read is left as it is now.
      const result = yield* client.retry(run.id, { by: options.by, reason: options.reason }).pipe(
        Effect.map(Option.some),
        Effect.catchTags({
          RunNotRedrivable: (error) =>
            Effect.as(Effect.sync(() => skipped.push({ runId: run.id, status: error.status })), Option.none()),
          RunNotFound: () =>
            Effect.as(Effect.sync(() => skipped.push({ runId: run.id, status: "gone" })), Option.none()),
          StepNotInJournal: (error) => Effect.die(error)
        })
      )
      if (Option.isNone(result)) continue
      done.push(redriven(result.value.redrive, result.value.run))
      if (!options.json) yield* Output.out(`${redriveLine(result.value.redrive, run.workflow)}\n`)
    }
    if (options.json) yield* Output.out(`${JSON.stringify({ redriven: done, skipped })}\n`)
    const what = `${options.status} run${runs.length === 1 ? "" : "s"}${
      options.workflow === undefined ? "" : ` of workflow ${options.workflow}`
    }`
    yield* Output.err(
      runs.length === 0
        ? `no ${what} to re-drive\n`
        : `re-drove ${done.length} ${what}${
          skipped.length === 0
            ? ""
            : `; ${skipped.length} skipped (changed meanwhile: ${
              skipped.map((s) => `${s.runId} ${s.status}`).join(", ")
            })`
        }${runs.length === options.limit ? ` (--limit ${options.limit} reached: there may be more)` : ""}\n`
    )
    return ExitCode.ok
  })

/** A re-drive as `--json` prints it. */
const redriven = (redrive: Store.RedriveRecord, run: Store.RunRecord) => ({
  runId: redrive.runId,
  workflow: run.workflow,
  status: run.status,
  seq: redrive.seq,
  previousStatus: redrive.previousStatus,
  fromStep: redrive.fromStep ?? null,
  discarded: redrive.discarded,
  children: redrive.children
})

/** `re-drove run o-1 from step charge (was failed: CardDeclined; 2 completions discarded)`. */
const redriveLine = (redrive: Store.RedriveRecord, workflow?: string): string => {
  const cause = redrive.failure === undefined || redrive.failure === null
    ? undefined
    : Trace.causeSummary(Trace.causeView(redrive.failure))
  const from = redrive.fromStep === undefined ? "where it stopped" : `step ${redrive.fromStep}`
  const discarded = redrive.discarded.length === 1 ? "1 completion" : `${redrive.discarded.length} completions`
  const children = redrive.children.length === 0 ? "" : `; with child runs ${redrive.children.join(", ")}`
  return `re-drove run ${redrive.runId}${
    workflow === undefined ? "" : ` (${workflow})`
  } from ${from} (was ${redrive.previousStatus}${
    cause === undefined ? "" : `: ${cause}`
  }; ${discarded} discarded${children})`
}
