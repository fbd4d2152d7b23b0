/**
 * Circuit breakers through the real engine, on the memory store and under virtual time: a breaker's
 * state is shared by every run in the process, a run refused by an open breaker fails with (or
 * retries after) CircuitOpen and says so in its reason, and a retry woken a millisecond early by
 * its timer does not meet the breaker still open.
 */
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Failure, Retry, Step, Workflow } from "@weft/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import { Store } from "../src/Store.js"

class Busy extends Schema.TaggedError<Busy>()("Busy", {}) {
  readonly retryable = true
}

const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
  Effect.provide(effect, Layer.provideMerge(Client.layer, MemoryStore.layer))

// Lets a forked execution run up to its next wait.
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
  yield* TestClock.adjust("1 millis")
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

/** A quote service behind `breaker`, down until told otherwise, counting the calls that reach it. */
const quoteService = (breaker: CircuitBreaker.CircuitBreaker, retry: Retry.Policy<"Busy" | "CircuitOpen">) => {
  const service = { down: true, calls: 0 }
  const quote = Step.make({
    name: "quote",
    success: Schema.Number,
    error: Busy,
    retry,
    circuitBreaker: breaker,
    run: () =>
      Effect.suspend(() => {
        service.calls++
        return service.down ? Effect.fail(new Busy()) : Effect.succeed(42)
      })
  })
  const workflow = Workflow.make({
    name: "quote",
    input: Schema.String,
    success: Schema.Number,
    error: Busy,
    run: () => quote()
  })
  return { service, workflow }
}

describe("circuit breakers in the engine", () => {
  it.effect("every run in the process shares a breaker: runs after it opened are refused without calling", () =>
    provide(Effect.gen(function*() {
      const breaker = CircuitBreaker.make({ name: "quotes-shared", failureThreshold: 2, cooldown: "1 minute" })
      const { service, workflow } = quoteService(breaker, Retry.none)
      const client = yield* Client.Client
      const store = yield* Store
      const runOnce = (input: string) =>
        Effect.gen(function*() {
          const { runId } = yield* client.start(workflow, input)
          yield* Runner.claimAndExecute(workflow, runId)
          return { runId, result: yield* Effect.either(client.result({ runId, workflow })) }
        })

      const first = yield* runOnce("a")
      const second = yield* runOnce("b")
      expect(first.result).toMatchObject({ _tag: "Left", left: { _tag: "Busy" } })
      expect(second.result).toMatchObject({ _tag: "Left", left: { _tag: "Busy" } })
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", failures: 2 })

      // A third run meets the breaker the first two opened: it fails with CircuitOpen, typed and
      // stored as such, and the service is not called.
      const third = yield* runOnce("c")
      expect(third.result._tag).toBe("Left")
      const error = (third.result as { readonly left: unknown }).left
      expect(error).toBeInstanceOf(Failure.CircuitOpen)
      expect(error).toMatchObject({ breaker: "quotes-shared", retryAfter: 60_000 })
      expect(service.calls).toBe(2)
      const journal = yield* store.readJournal(third.runId)
      expect(journal.attempts).toMatchObject([{
        stepId: "quote",
        attempt: 1,
        outcome: "failure",
        error: { _tag: "CircuitOpen", breaker: "quotes-shared", retryAfter: 60_000 },
        stopReason: "attempts-exhausted"
      }])

      yield* TestClock.adjust("1 minute")
      service.down = false
      const fourth = yield* runOnce("d")
      expect(fourth.result).toMatchObject({ _tag: "Right", right: 42 })
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed" })
      expect(service.calls).toBe(3)
    })))

  it.effect("a run refused by an open breaker sleeps until it lets a trial through, and says why", () =>
    provide(Effect.gen(function*() {
      const breaker = CircuitBreaker.make({ name: "quotes-blocked", failureThreshold: 1, cooldown: "10 minutes" })
      const { service, workflow } = quoteService(breaker, Retry.fixed({ delay: "1 second", attempts: 3 }))
      // Another caller in this process has just opened the breaker.
      yield* Effect.exit(CircuitBreaker.protect(Effect.fail(new Busy()), breaker))
      const client = yield* Client.Client
      const { runId } = yield* client.start(workflow, "x")
      const fiber = yield* Effect.fork(Runner.claimAndExecute(workflow, runId))
      yield* settle
      const blocked = yield* client.status(runId)
      expect(blocked.status).toBe("sleeping")
      expect(blocked.wakeAt).toBe(10 * 60_000)
      expect(blocked.reason).toBe(
        `blocked by the open circuit breaker "quotes-blocked" until 1970-01-01T00:10:00.000Z ` +
          `(attempt 1 of step quote was refused)`
      )
      expect(service.calls).toBe(0)
      service.down = false
      yield* TestClock.adjust("10 minutes")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome).toEqual({ status: "succeeded", output: 42 })
      expect(service.calls).toBe(1)
    })))

  it.effect("a retry whose timer fires a millisecond early still waits out retryAfter", () =>
    provide(Effect.gen(function*() {
      const breaker = CircuitBreaker.make({ name: "quotes-early", failureThreshold: 1, cooldown: "2 seconds" })
      const { service, workflow } = quoteService(breaker, Retry.fixed({ delay: "100 millis", attempts: 3 }))
      const clock = yield* Effect.clock
      // Node's timers may fire a millisecond before the wall clock says they are due.
      const early: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis(),
        unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos(),
        currentTimeMillis: clock.currentTimeMillis,
        currentTimeNanos: clock.currentTimeNanos,
        sleep: (duration) => {
          const millis = Duration.toMillis(duration)
          return clock.sleep(Duration.millis(millis > 1 ? millis - 1 : millis))
        }
      }
      const client = yield* Client.Client
      const { runId } = yield* client.start(workflow, "x")
      const fiber = yield* Effect.fork(Effect.withClock(Runner.claimAndExecute(workflow, runId), early))
      // Attempt 1 fails and opens the breaker until t=2000; attempt 2 (t=99) is refused and waits
      // for t=2000; attempt 3 is the trial, and the service is back by then.
      yield* settle
      yield* TestClock.adjust("200 millis")
      // A short wait: the run stays claimed, and its reason names the breaker.
      const waiting = yield* client.status(runId)
      expect(waiting.status).toBe("running")
      expect(waiting.reason).toBe(
        `blocked by the open circuit breaker "quotes-early" until 1970-01-01T00:00:02.000Z ` +
          `(attempt 2 of step quote was refused)`
      )
      service.down = false
      yield* TestClock.adjust("3 seconds")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome).toEqual({ status: "succeeded", output: 42 })
      const attempts = (yield* (yield* Store).readJournal(runId)).attempts
      expect(attempts.map((a) => [a.attempt, a.outcome, (a.error as { _tag?: string } | undefined)?._tag])).toEqual([
        [1, "failure", "Busy"],
        [2, "failure", "CircuitOpen"],
        [3, "success", undefined]
      ])
      expect(attempts[2].startedAt).toBeGreaterThanOrEqual(2_000)
    })))
})
