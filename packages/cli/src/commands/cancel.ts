/**
 * `weft cancel <run-id> [--reason TEXT] [--wait]`: asks for a run to be cancelled. The worker that
 * holds it interrupts it at once (on PostgreSQL through NOTIFY; on SQLite at its next heartbeat when
 * it runs in another process), undoes its completed steps (their compensations) and ends it
 * `cancelled` with who asked and why; a run that no worker holds is cancelled by the next worker
 * that claims it. A finished run is left as it is.
 */
import { Store } from "@weft/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { storeSpec } from "../Flags.js"
import * as Help from "../Help.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import { type Command, requester } from "./shared.js"

export const cancelCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [runId, ...extra] = positionals
    if (runId === undefined) {
      return yield* Effect.fail(new UsageError({ message: "cancel needs a run id: weft cancel <run-id>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const spec = yield* storeSpec(flags)
    const json = flags.json === true
    return yield* Effect.gen(function*() {
      const store = yield* Store.Store
      const by = requester()
      const reason = flags.reason ?? "cancelled from the command line"
      const request = yield* store.requestCancel({ id: runId, by, reason, now: yield* Clock.currentTimeMillis })
      if (!request.requested) {
        yield* Output.out(
          json
            ? `${JSON.stringify({ runId, requested: false, status: request.status })}\n`
            : `run ${runId} has already ${request.status}: nothing to cancel\n`
        )
        return Help.ExitCode.ok
      }
      if (flags.wait !== true) {
        yield* Output.out(
          json
            ? `${JSON.stringify({ runId, requested: true, status: request.status })}\n`
            : `cancellation of run ${runId} requested by ${by}: ${reason}\n`
        )
        return Help.ExitCode.ok
      }
      yield* Output.notice(`cancellation of run ${runId} requested; waiting for it to stop`, {
        message: "cancellation requested; waiting for the run to stop",
        fields: { runId }
      })
      while (true) {
        const run = yield* store.getRun(runId)
        if (Option.isSome(run) && Store.isTerminal(run.value.status)) {
          yield* Output.out(
            json
              ? `${JSON.stringify({ runId, requested: true, status: run.value.status })}\n`
              : `run ${runId} ${run.value.status}\n`
          )
          return Help.ExitCode.ok
        }
        yield* Effect.sleep("200 millis")
      }
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })
