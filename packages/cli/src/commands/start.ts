/**
 * `weft start <module> [workflow]`: checks the input and queues a run for a worker (on a queue,
 * with a priority, after a delay), printing its id; nothing runs in this process.
 */
import { Client, Engine } from "@weft/runtime"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  parseCorrelationId,
  parseDuration,
  parseIfFinished,
  parseInput,
  parseQueues,
  parseWhole,
  storeSpec
} from "../Flags.js"
import { ExitCode } from "../Help.js"
import * as ModuleLoader from "../ModuleLoader.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import { type Command, validateInput } from "./shared.js"

export const startCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [modulePath, workflowName, ...extra] = positionals
    if (modulePath === undefined) {
      return yield* Effect.fail(new UsageError({ message: "start needs a module: weft start <module> [workflow]" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const queues = yield* parseQueues(flags.queue)
    if (queues.length > 1) {
      return yield* Effect.fail(new UsageError({ message: `a run goes to one queue, got --queue ${queues.join(",")}` }))
    }
    const priority = yield* parseWhole("priority", flags.priority, {})
    const delay = yield* parseDuration("delay", flags.delay)
    const correlationId = yield* parseCorrelationId(flags["correlation-id"])
    const ifFinished = yield* parseIfFinished(flags["if-finished"])
    const input = yield* parseInput(flags.input)
    const spec = yield* storeSpec(flags)
    const loaded = yield* ModuleLoader.load(modulePath)
    const workflow = yield* ModuleLoader.pick(loaded, workflowName)
    yield* validateInput(workflow, input, flags.input !== undefined)
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const now = yield* Clock.currentTimeMillis
      const handle = yield* client.startUnknown(workflow, input, {
        id: flags.id,
        queue: queues[0],
        priority,
        origin: loaded.path,
        correlationId,
        wakeAt: delay === undefined ? undefined : now + Duration.toMillis(delay),
        ifFinished
      }).pipe(
        Effect.catchTags({
          RunConflict: (error) => Effect.fail(new UsageError({ message: error.message })),
          InputInvalid: (error) => Effect.fail(new UsageError({ message: error.message }))
        })
      )
      const started = yield* client.status(handle.runId)
      const fields = { ...Engine.logAnnotations(started), status: started.status }
      if (handle.restarted === true) {
        yield* Output.notice(
          `run ${handle.runId} had failed or been cancelled: started over (its history is kept; weft show ${handle.runId})`,
          { message: "run had failed or been cancelled; started over", fields }
        )
      } else if (!handle.created) {
        yield* Output.notice(`run ${handle.runId} already exists (${started.status}); nothing new was queued`, {
          message: "run already exists; nothing new was queued",
          fields
        })
      } else {
        yield* Output.notice(
          `queued ${workflow.name} ${handle.runId} on ${StoreConfig.describe(spec)}${
            delay === undefined ? "" : ` to start after ${Duration.format(delay)}`
          }`,
          {
            message: "run queued",
            fields: {
              ...Engine.logAnnotations(started),
              store: StoreConfig.describe(spec),
              queue: started.queue,
              ...(started.wakeAt === undefined ? {} : { wakeAt: new Date(started.wakeAt) })
            }
          }
        )
      }
      yield* Output.out(flags.json === true ? `${JSON.stringify({ runId: handle.runId })}\n` : `${handle.runId}\n`)
      return ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })
