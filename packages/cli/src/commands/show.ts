/**
 * `weft show <run-id>`: a run's timeline of steps and attempts and, for a failed run, its cause
 * tree; with `--json`, the trace as data.
 */
import * as Effect from "effect/Effect"
import { storeSpec } from "../Flags.js"
import { ExitCode } from "../Help.js"
import * as Output from "../Output.js"
import * as Render from "../Render.js"
import * as StoreConfig from "../StoreConfig.js"
import * as Trace from "../Trace.js"
import { UsageError } from "../UsageError.js"
import { historyWithChildren } from "./executeHere.js"
import { blockedRuns, color, type Command } from "./shared.js"

export const showCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [runId, ...extra] = positionals
    if (runId === undefined) {
      return yield* Effect.fail(new UsageError({ message: "show needs a run id: weft show <run-id>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const spec = yield* storeSpec(flags)
    return yield* Effect.gen(function*() {
      const { children, history } = yield* historyWithChildren(runId)
      const blocked = (yield* blockedRuns([history.run])).get(history.run.id)
      const traced = Trace.fromHistory(history.run, history.journal, children, history.redrives)
      const trace = blocked === undefined ? traced : { ...traced, run: { ...traced.run, blocked } }
      yield* Output.out(
        flags.json === true
          ? `${JSON.stringify(trace)}\n`
          : Render.timeline(trace, { color: color(process.stdout) }) + "\n"
      )
      return ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })
