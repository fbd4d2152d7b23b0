/**
 * `weft list`: the runs in the store, newest first, filtered by status, workflow and the time of
 * their last update (`--since`: a failed run's is when it failed), as a table or as JSON; a queued
 * run that queue limits hold back says which (`blocked`).
 */
import { Store } from "@weft/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { parseSince, storeSpec } from "../Flags.js"
import { ExitCode } from "../Help.js"
import * as Output from "../Output.js"
import * as Render from "../Render.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import { blockedRuns, color, type Command } from "./shared.js"

/** Every status, in the order the help lists them. */
export const statuses: ReadonlyArray<Store.RunStatus> = [
  "queued",
  "running",
  "sleeping",
  "waiting",
  "succeeded",
  "failed",
  "cancelled"
]

export const listCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    if (positionals.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${positionals.join(" ")}` }))
    }
    if (flags.status !== undefined && !statuses.includes(flags.status as Store.RunStatus)) {
      return yield* Effect.fail(
        new UsageError({ message: `unknown status "${flags.status}": use one of ${statuses.join(", ")}` })
      )
    }
    const limit = flags.limit === undefined ? 50 : Number(flags.limit)
    if (!Number.isInteger(limit) || limit < 1) {
      return yield* Effect.fail(
        new UsageError({ message: `--limit must be a positive whole number, got "${flags.limit}"` })
      )
    }
    const since = yield* parseSince(flags.since, yield* Clock.currentTimeMillis)
    const spec = yield* storeSpec(flags)
    return yield* Effect.gen(function*() {
      const store = yield* Store.Store
      // Since: by the run's last update, which for a finished run is its end (a failed run: when it failed).
      const runs = yield* store.listRuns({
        status: flags.status as Store.RunStatus | undefined,
        workflow: flags.workflow,
        updatedSince: since,
        limit
      })
      const blocked = yield* blockedRuns(runs)
      yield* Output.out(
        flags.json === true
          ? `${
            JSON.stringify(runs.map((run) => blocked.has(run.id) ? { ...run, blocked: blocked.get(run.id) } : run))
          }\n`
          : Render.runTable(runs, { color: color(process.stdout), blocked }) + "\n"
      )
      return ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })
