/**
 * `weft run <module> [workflow]`: starts a run (or finds the one with the same id) and executes it
 * in this process, with live progress on stderr and the result on stdout.
 */
import { Client, Owner, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { parseIfFinished, parseInput, storeSpec } from "../Flags.js"
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
        claim: { owner, leaseMillis: LEASE_MILLIS },
        ifFinished
      }).pipe(
        Effect.catchTags({
          RunConflict: (error) => Effect.fail(new UsageError({ message: error.message })),
          InputInvalid: (error) => Effect.fail(new UsageError({ message: error.message }))
        })
      )
      const existing = yield* client.status(handle.runId)
      if (handle.restarted === true) {
        yield* Output.err(`run ${handle.runId} had failed or been cancelled: starting it over\n`)
      } else if (!handle.created) {
        if (Store.isTerminal(existing.status)) {
          yield* Output.err(`run ${handle.runId} already exists and has ${existing.status}; showing its result\n`)
          return yield* report(handle.runId, json)
        }
        yield* Output.err(`run ${handle.runId} already exists (${existing.status}); resuming it\n`)
      }
      yield* Output.err(
        `${Output.paint("▶", "cyan", color(process.stderr))} ${workflow.name} ${handle.runId} on ${
          StoreConfig.describe(spec)
        }\n`
      )
      return yield* executeHere(workflow, handle.runId, { owner, force: false, json })
    }).pipe(Effect.provide(Layer.provideMerge(StoreConfig.layer(spec), loaded.layer ?? Layer.empty)))
  })
