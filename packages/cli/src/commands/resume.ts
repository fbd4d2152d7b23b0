/**
 * `weft resume <run-id>`: continues an interrupted or crashed run in this process from its journal,
 * loading the module the run was started from unless `--module` says otherwise.
 */
import { Client, Engine, Owner, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { storeSpec } from "../Flags.js"
import * as ModuleLoader from "../ModuleLoader.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import { executeHere } from "./executeHere.js"
import { color, type Command } from "./shared.js"

export const resumeCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [runId, ...extra] = positionals
    if (runId === undefined) {
      return yield* Effect.fail(new UsageError({ message: "resume needs a run id: weft resume <run-id>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const spec = yield* storeSpec(flags)
    const json = flags.json === true
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const run = yield* client.status(runId)
      if (Store.isTerminal(run.status)) {
        return yield* Effect.fail(
          new UsageError({
            message: `run ${runId} has already ${run.status}: nothing to resume (see weft show ${runId})`
          })
        )
      }
      const modulePath = flags.module ?? run.origin
      if (modulePath === undefined) {
        return yield* Effect.fail(
          new UsageError({ message: `run ${runId} does not record its module: give it with --module <path>` })
        )
      }
      const loaded = yield* ModuleLoader.load(modulePath)
      const workflow = yield* ModuleLoader.pick(loaded, run.workflow)
      yield* Output.notice(
        `${Output.paint("▶", "cyan", color(process.stderr))} resuming ${workflow.name} ${runId} on ${
          StoreConfig.describe(spec)
        }`,
        { message: "resuming run", fields: { ...Engine.logAnnotations(run), store: StoreConfig.describe(spec) } }
      )
      return yield* executeHere(workflow, runId, { owner: Owner.make(), force: flags.force === true, json }).pipe(
        Effect.provide(loaded.layer ?? Layer.empty)
      )
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })
