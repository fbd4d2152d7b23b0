/**
 * `weft signal <run-id> <name> --payload <json|@file>`: delivers a signal to a run. The payload is
 * checked against the schema the run's workflow declares for the signal (the workflow is loaded
 * from the module the run was started from, or `--module`); nothing is stored when it does not
 * match, when the workflow declares no such signal, or when the run has finished. A signal sent
 * before the run waits for it waits in the run's mailbox.
 */
import { Client } from "@weft/runtime"
import * as Effect from "effect/Effect"
import { parseJson, storeSpec } from "../Flags.js"
import * as Help from "../Help.js"
import * as ModuleLoader from "../ModuleLoader.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import type { Command } from "./shared.js"

export const signalCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [runId, name, ...extra] = positionals
    if (runId === undefined || name === undefined) {
      return yield* Effect.fail(
        new UsageError({
          message: "signal needs a run id and a signal name: weft signal <run-id> <name> --payload <json>"
        })
      )
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const payload = yield* parseJson("payload", flags.payload)
    const spec = yield* storeSpec(flags)
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const run = yield* client.status(runId)
      const modulePath = flags.module ?? run.origin
      if (modulePath === undefined) {
        return yield* Effect.fail(
          new UsageError({ message: `run ${runId} does not record its module: give it with --module <path>` })
        )
      }
      const loaded = yield* ModuleLoader.load(modulePath)
      const workflow = yield* ModuleLoader.pick(loaded, run.workflow)
      const delivered = yield* client.signalUnknown(workflow, runId, name, payload).pipe(
        Effect.catchTags({
          SignalInvalid: (error) => Effect.fail(new UsageError({ message: error.message })),
          RunFinished: (error) => Effect.fail(new UsageError({ message: error.message }))
        })
      )
      yield* Output.out(
        flags.json === true
          ? `${JSON.stringify({ runId, signal: name, seq: delivered.seq, woke: delivered.woke })}\n`
          : `signal ${name} delivered to run ${runId}${
            delivered.woke ? ": it was waiting for it and resumes" : ": it waits in the run's mailbox"
          }\n`
      )
      return Help.ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })
