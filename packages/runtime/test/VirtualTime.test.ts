/**
 * The durable waits under virtual time (TestClock) on the memory store, through the real engine,
 * `Runner` and a worker: a three-day sleep, a two-day signal timeout, and a ten-minute retry backoff each
 * suspend the run (it is `sleeping` or `waiting` with the right wake time, holding no lease) and
 * finish when the clock reaches their time, with no real waiting.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Retry, Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import type { Store } from "../src/Store.js"
import * as Worker from "../src/Worker.js"
import { HOUR, settle } from "./runs.js"

class Busy extends Schema.TaggedError<Busy>()("Busy", {}) {
  readonly retryable = true
}

const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
  Effect.provide(effect, Layer.provideMerge(Client.layer, MemoryStore.layer))

describe("durable waits under virtual time", () => {
  it.effect("a three-day sleep suspends the run and it finishes when the clock gets there", () =>
    provide(Effect.gen(function*() {
      let after = 0
      const done = Step.make({ name: "done", success: Schema.Number, run: () => Effect.sync(() => ++after) })
      const wf = Workflow.make({
        name: "long-nap",
        input: Schema.Void,
        success: Schema.Number,
        run: () => Effect.zipRight(Workflow.sleep("3 days"), done())
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(wf, undefined)
      const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, runId))
      yield* settle
      const sleeping = yield* client.status(runId)
      expect(sleeping).toMatchObject({ status: "sleeping", leaseOwner: undefined })
      expect(sleeping.wakeAt! - sleeping.createdAt).toBeGreaterThanOrEqual(72 * HOUR)
      yield* TestClock.adjust("71 hours")
      yield* settle
      expect(after).toBe(0)
      yield* TestClock.adjust("1 hour")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome).toEqual({ status: "succeeded", output: 1 })
    })))

  it.effect("no signal within two days is the typed SignalTimeout, at two days", () =>
    provide(
      Effect.gen(function*() {
        const wf = Workflow.make({
          name: "approval",
          input: Schema.Void,
          success: Schema.Boolean,
          signals: { ok: Schema.Boolean },
          run: () => Workflow.signal("ok", Schema.Boolean, { timeout: "2 days" })
        })
        const client = yield* Client.Client
        // A worker: idle, it sleeps until the earliest wake time it knows of (here the deadline).
        yield* Worker.start({ workflows: [wf], pollInterval: "1 day" })
        const { runId } = yield* client.start(wf, undefined)
        yield* settle
        expect((yield* client.status(runId)).status).toBe("waiting")
        yield* TestClock.adjust("47 hours")
        yield* settle
        expect((yield* client.status(runId)).status).toBe("waiting")
        yield* TestClock.adjust("1 hour")
        yield* settle
        const run = yield* client.status(runId)
        expect(run.status).toBe("failed")
        expect(run.finishedAt! - run.createdAt).toBeGreaterThanOrEqual(48 * HOUR)
        const error = yield* Effect.flip(client.result({ runId, workflow: wf }))
        expect(error).toBeInstanceOf(Failure.SignalTimeout)
      }).pipe(Effect.scoped)
    ))

  it.effect("a ten-minute backoff suspends the run between attempts; the next attempt is at ten minutes", () =>
    provide(Effect.gen(function*() {
      const attempts: Array<number> = []
      const flaky = Step.make({
        name: "flaky",
        success: Schema.Number,
        error: Busy,
        retry: Retry.fixed({ delay: "10 minutes", attempts: 2 }),
        run: () =>
          Effect.gen(function*() {
            const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
            attempts.push(now)
            return attempts.length === 1 ? yield* Effect.fail(new Busy()) : attempts.length
          })
      })
      const wf = Workflow.make({
        name: "patient",
        input: Schema.Void,
        success: Schema.Number,
        error: Busy,
        run: () => flaky()
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(wf, undefined)
      const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, runId))
      yield* settle
      const backingOff = yield* client.status(runId)
      expect(backingOff.status).toBe("sleeping")
      expect(backingOff.reason).toMatch(/^backing off until .* after attempt 1 of step flaky$/)
      yield* TestClock.adjust("10 minutes")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome).toEqual({ status: "succeeded", output: 2 })
      expect(attempts[1] - attempts[0]).toBeGreaterThanOrEqual(10 * 60_000)
    })))
})
