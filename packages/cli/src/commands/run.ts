/**
 * `weft run <module> [workflow]`: starts a run (or finds the one with the same id) and executes it
 * in this process, with live progress on stderr and the result on stdout.
 */
import { Client, Engine, Owner, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { parseCorrelationId, parseIfFinished, parseInput, storeSpec } from "../Flags.js"
import * as ModuleLoader from "../ModuleLoader.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import { executeHere, report } from "./executeHere.js"
import { color, type Command, LEASE_MILLIS, validateInput } from "./shared.js"

export const runCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [modulePath, workflowName, ...extra] = positionals
    if (modulePath === undefined) {
      return yield* Effect.fail(new UsageError({ message: "run needs a module: weft run <module> [workflow]" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const correlationId = yield* parseCorrelationId(flags["correlation-id"])
    const input = yield* parseInput(flags.input)
    const ifFinished = yield* parseIfFinished(flags["if-finished"])
    const spec = yield* storeSpec(flags)
    const loaded = yield* ModuleLoader.load(modulePath)
    const workflow = yield* ModuleLoader.pick(loaded, workflowName)
    yield* validateInput(workflow, input, flags.input !== undefined)
    const owner = Owner.make()
    const json = flags.json === true
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const handle = yield* client.startUnknown(workflow, input, {
        id: flags.id,
        origin: loaded.path,
        correlationId,
        claim: { owner, leaseMillis: LEASE_MILLIS },
        ifFinished
      }).pipe(
        Effect.catchTags({
          RunConflict: (error) => Effect.fail(new UsageError({ message: error.message })),
          InputInvalid: (error) => Effect.fail(new UsageError({ message: error.message }))
        })
      )
      const existing = yield* client.status(handle.runId)
      const fields = { ...Engine.logAnnotations(existing), status: existing.status }
      if (handle.restarted === true) {
        yield* Output.notice(`run ${handle.runId} had failed or been cancelled: starting it over`, {
          message: "run had failed or been cancelled; starting it over",
          fields
        })
      } else if (!handle.created) {
        if (Store.isTerminal(existing.status)) {
          yield* Output.notice(`run ${handle.runId} already exists and has ${existing.status}; showing its result`, {
            message: "run already exists and has ended; showing its result",
            fields
          })
          return yield* report(handle.runId, json, workflow)
        }
        yield* Output.notice(`run ${handle.runId} already exists (${existing.status}); resuming it`, {
          message: "run already exists; resuming it",
          fields
        })
      }
      yield* Output.notice(
        `${Output.paint("▶", "cyan", color(process.stderr))} ${workflow.name} ${handle.runId} on ${
          StoreConfig.describe(spec)
        }`,
        { message: "run started", fields: { ...Engine.logAnnotations(existing), store: StoreConfig.describe(spec) } }
      )
      return yield* executeHere(workflow, handle.runId, { owner, force: false, json })
    }).pipe(Effect.provide(Layer.provideMerge(StoreConfig.layer(spec), loaded.layer ?? Layer.empty)))
  })
