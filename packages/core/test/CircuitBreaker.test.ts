import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { CircuitBreaker, Failure } from "../src/index.js"

class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", { n: Schema.Number }) {
  readonly retryable = true
}

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {}) {}

let names = 0
/** A breaker with a name no other test uses: metrics are global, by name. */
const breakerWith = (options: Omit<CircuitBreaker.Options, "name"> = {}) =>
  CircuitBreaker.make({ name: `dep-${++names}`, ...options })

/**
 * A dependency that fails with Unavailable while `down`, counting its calls: what a breaker must
 * protect, and what the tests watch to see that an open breaker does not call it.
 */
const dependency = () => {
  const state = { down: true, calls: 0 }
  const call = Effect.suspend(() => {
    state.calls++
    return state.down ? Effect.fail(new Unavailable({ n: state.calls })) : Effect.succeed(`ok ${state.calls}`)
  })
  return { state, call }
}

const statusOf = (breaker: CircuitBreaker.CircuitBreaker) => Effect.map(CircuitBreaker.state(breaker), (s) => s.state)

/** Calls `effect` through `breaker` and returns its end as an Either, the error side as the error itself. */
const attempt = <A, E>(breaker: CircuitBreaker.CircuitBreaker, effect: Effect.Effect<A, E>) =>
  Effect.either(CircuitBreaker.protect(effect, breaker))

/** `n` failed calls, one per millisecond starting now. */
const failTimes = (breaker: CircuitBreaker.CircuitBreaker, call: Effect.Effect<unknown, unknown>, n: number) =>
  Effect.gen(function*() {
    const errors: Array<unknown> = []
    for (let i = 0; i < n; i++) {
      const result = yield* attempt(breaker, call)
      if (Either.isLeft(result)) errors.push(result.left)
      yield* TestClock.adjust("1 millis")
    }
    return errors
  })

const isOpenError = (u: unknown): u is Failure.CircuitOpen => u instanceof Failure.CircuitOpen

describe("CircuitBreaker.make", () => {
  it("has documented defaults", () => {
    const breaker = CircuitBreaker.make({ name: "payments" })
    expect(breaker).toMatchObject({
      name: "payments",
      failureThreshold: 5,
      counting: "window",
      windowMillis: 60_000,
      cooldownMillis: 30_000,
      halfOpenAttempts: 1,
      halfOpenSuccesses: 1,
      shared: false
    })
    expect(CircuitBreaker.isCircuitBreaker(breaker)).toBe(true)
    expect(CircuitBreaker.isCircuitBreaker({ name: "payments" })).toBe(false)
  })

  it("bad options throw when the breaker is made", () => {
    expect(() => CircuitBreaker.make({ name: "" })).toThrow("must not be empty")
    expect(() => CircuitBreaker.make({ name: "x", failureThreshold: 0 })).toThrow(RangeError)
    expect(() => CircuitBreaker.make({ name: "x", failureThreshold: 1.5 })).toThrow("failureThreshold")
    expect(() => CircuitBreaker.make({ name: "x", halfOpenAttempts: 0 })).toThrow("halfOpenAttempts")
    expect(() => CircuitBreaker.make({ name: "x", halfOpenSuccesses: 0 })).toThrow("halfOpenSuccesses")
    expect(() => CircuitBreaker.make({ name: "x", cooldown: 0 })).toThrow("cooldown")
    expect(() => CircuitBreaker.make({ name: "x", window: "0 millis" })).toThrow("window")
    expect(() => CircuitBreaker.make({ name: "x", cooldown: Infinity })).toThrow("cooldown")
    expect(() => CircuitBreaker.make({ name: "x", counting: "consecutive", window: "1 second" })).toThrow(
      `window has no meaning with counting: "consecutive"`
    )
    expect(() => CircuitBreaker.make({ name: "x", counting: "sliding" as never })).toThrow("counting")
  })
})

describe("CircuitBreaker: closed → open", () => {
  it.effect("opens at the threshold of failures within the window; the call that trips it fails with its own error", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 3, window: "10 seconds", cooldown: "1 minute" })
      const dep = dependency()
      const errors = yield* failTimes(breaker, dep.call, 2)
      expect(errors).toEqual([new Unavailable({ n: 1 }), new Unavailable({ n: 2 })])
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 2 })

      // The third failure trips it: that call fails with its own error, not CircuitOpen.
      const third = yield* attempt(breaker, dep.call)
      expect(third).toEqual(Either.left(new Unavailable({ n: 3 })))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", failures: 3, retryAfter: 60_000 })

      // The calls after it get CircuitOpen, without calling the dependency.
      const fourth = yield* attempt(breaker, dep.call)
      expect(fourth).toEqual(Either.left(new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: 60_000 })))
      expect(dep.state.calls).toBe(3)
    }))

  it.effect("failures older than the window do not count (a failure counts for exactly `window`)", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 3, window: "1 second" })
      const dep = dependency()
      yield* attempt(breaker, dep.call) // t = 0
      yield* attempt(breaker, dep.call) // t = 0
      yield* TestClock.adjust("1 second") // t = 1000: the first two no longer count
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
      yield* attempt(breaker, dep.call)
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("closed")
      // t = 1999: the two at t = 1000 still count, so this third one trips it.
      yield* TestClock.adjust("999 millis")
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("open")
      expect(dep.state.calls).toBe(5)
    }))

  it.effect("in window counting, a success does not reset the count", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 2, window: "1 minute" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      dep.state.down = false
      yield* attempt(breaker, dep.call)
      dep.state.down = true
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("open")
    }))

  it.effect("consecutive counting: failures in a row, however far apart; a success resets the count", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 3, counting: "consecutive" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("1 hour")
      yield* attempt(breaker, dep.call)
      dep.state.down = false
      yield* attempt(breaker, dep.call)
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
      dep.state.down = true
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("1 day")
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("closed")
      yield* TestClock.adjust("1 day")
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("open")
    }))
})

describe("CircuitBreaker: open", () => {
  it.effect("rejects without calling the dependency, with the time left until a trial as retryAfter", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "30 seconds" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("12 seconds")
      const rejected = yield* attempt(breaker, dep.call)
      expect(rejected).toEqual(Either.left(new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: 18_000 })))
      yield* TestClock.adjust("17999 millis")
      const last = yield* attempt(breaker, dep.call)
      expect(Either.isLeft(last) && isOpenError(last.left) && last.left.retryAfter).toBe(1)
      expect(dep.state.calls).toBe(1)
      const error = (rejected as Either.Left<unknown, unknown>).left as Failure.CircuitOpen
      expect(error.retryable).toBe(true)
      expect(error.message).toBe(`circuit breaker "${breaker.name}" is open: calls fail fast for another 18000ms`)
    }))

  it.effect("a CircuitOpen survives a journal round trip with its fields", () =>
    Effect.sync(() => {
      const error = new Failure.CircuitOpen({ breaker: "gateway", retryAfter: 1234 })
      const encoded = JSON.parse(JSON.stringify(Schema.encodeSync(Failure.BuiltIn)(error)))
      expect(encoded).toEqual({ _tag: "CircuitOpen", breaker: "gateway", retryAfter: 1234 })
      expect(Schema.decodeUnknownSync(Failure.BuiltIn)(encoded)).toEqual(error)
    }))
})

describe("CircuitBreaker: half-open", () => {
  it.effect("after the cooldown the next call is a trial; its success closes the breaker", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "1 minute" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("1 minute")
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", retryAfter: 0 })
      dep.state.down = false
      const gate = yield* Deferred.make<void>()
      const trial = yield* Effect.fork(attempt(breaker, Effect.zipRight(Deferred.await(gate), dep.call)))
      yield* Effect.yieldNow()
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", trials: 1 })
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(trial)).toEqual(Either.right("ok 2"))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
      expect(yield* attempt(breaker, dep.call)).toEqual(Either.right("ok 3"))
    }))

  it.effect("a trial failure reopens it with a new cooldown from that failure", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 2, cooldown: "10 seconds" })
      const dep = dependency()
      yield* failTimes(breaker, dep.call, 2)
      yield* TestClock.adjust("10 seconds")
      const slowFailure = Effect.zipRight(Effect.sleep("3 seconds"), dep.call)
      const trial = yield* Effect.fork(attempt(breaker, slowFailure))
      yield* TestClock.adjust("3 seconds")
      // The trial fails with its own error; the breaker is open again for a whole cooldown from then.
      expect(yield* Fiber.join(trial)).toEqual(Either.left(new Unavailable({ n: 3 })))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", failures: 1, retryAfter: 10_000 })
      yield* TestClock.adjust("9999 millis")
      const rejected = yield* attempt(breaker, dep.call)
      expect(Either.isLeft(rejected) && isOpenError(rejected.left) && rejected.left.retryAfter).toBe(1)
      yield* TestClock.adjust("1 millis")
      dep.state.down = false
      expect(yield* attempt(breaker, dep.call)).toEqual(Either.right("ok 4"))
      expect(yield* statusOf(breaker)).toBe("closed")
    }))

  it.effect("halfOpenSuccesses: that many trial successes are needed to close", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "1 second", halfOpenSuccesses: 3 })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("1 second")
      dep.state.down = false
      yield* attempt(breaker, dep.call)
      yield* attempt(breaker, dep.call)
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", successes: 2, trials: 0 })
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("closed")
      // A failure after two successes reopens it: the successes do not carry over.
      yield* attempt(breaker, Effect.fail(new Unavailable({ n: 0 })))
      yield* TestClock.adjust("1 second")
      yield* attempt(breaker, dep.call)
      yield* attempt(breaker, dep.call)
      yield* attempt(breaker, Effect.fail(new Unavailable({ n: 0 })))
      expect(yield* statusOf(breaker)).toBe("open")
    }))

  it.effect("one trial call at a time by default: the others are refused while it runs", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "5 seconds" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("5 seconds")
      dep.state.down = false
      const gate = yield* Deferred.make<void>()
      const trial = yield* Effect.fork(attempt(breaker, Effect.zipRight(Deferred.await(gate), dep.call)))
      yield* Effect.yieldNow()
      const second = yield* attempt(breaker, dep.call)
      // Refused until the trial has had a whole cooldown: when it ends is unknown.
      expect(second).toEqual(Either.left(new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: 5_000 })))
      expect(dep.state.calls).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(trial)
      expect(yield* attempt(breaker, dep.call)).toEqual(Either.right("ok 3"))
    }))

  it.effect("halfOpenAttempts: that many trial calls at once, no more", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "5 seconds", halfOpenAttempts: 2 })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("5 seconds")
      dep.state.down = false
      const gate = yield* Deferred.make<void>()
      const held = Effect.zipRight(Deferred.await(gate), dep.call)
      const trials = yield* Effect.forkAll([attempt(breaker, held), attempt(breaker, held)])
      yield* Effect.yieldNow()
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", trials: 2 })
      const third = yield* attempt(breaker, dep.call)
      expect(Either.isLeft(third) && isOpenError(third.left)).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(trials)).toEqual([Either.right("ok 2"), Either.right("ok 3")])
      expect(yield* statusOf(breaker)).toBe("closed")
    }))

  it.effect("a trial in flight for a whole cooldown is given up on: a new trial goes through, the late one counts for nothing", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "5 seconds" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("5 seconds")
      const gate = yield* Deferred.make<void>()
      // A trial that hangs (or whose worker died, for a shared breaker).
      const hung = yield* Effect.fork(attempt(breaker, Effect.zipRight(Deferred.await(gate), dep.call)))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("3 seconds")
      const refused = yield* attempt(breaker, dep.call)
      expect(refused).toEqual(Either.left(new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: 2_000 })))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", trials: 1, retryAfter: 2_000 })
      yield* TestClock.adjust("2 seconds")
      dep.state.down = false
      expect(yield* attempt(breaker, dep.call)).toEqual(Either.right("ok 2"))
      expect(yield* statusOf(breaker)).toBe("closed")
      // The hung trial fails at last: too late to reopen the breaker.
      dep.state.down = true
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(hung)).toMatchObject(Either.left({ _tag: "Unavailable" }))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
    }))

  it.effect("an interrupted trial frees its slot and counts for nothing", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "5 seconds" })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("5 seconds")
      const trial = yield* Effect.fork(attempt(breaker, Effect.never))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(trial)
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", trials: 0, successes: 0 })
      dep.state.down = false
      expect(yield* attempt(breaker, dep.call)).toEqual(Either.right("ok 2"))
      expect(yield* statusOf(breaker)).toBe("closed")
    }))
})

describe("CircuitBreaker: what counts", () => {
  it.effect("errors isFailure rejects are ignored: neither failures nor successes", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({
        failureThreshold: 2,
        counting: "consecutive",
        cooldown: "1 second",
        isFailure: (error) => Failure.tagOf(error) !== "NotFound"
      })
      const dep = dependency()
      yield* attempt(breaker, dep.call)
      // Ignored, not a success: the count is not reset (consecutive counting resets on success).
      for (let i = 0; i < 5; i++) yield* attempt(breaker, Effect.fail(new NotFound()))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 1 })
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("open")
      // In half-open, an ignored trial neither closes nor reopens: the next call is a trial again.
      yield* TestClock.adjust("1 second")
      expect(yield* attempt(breaker, Effect.fail(new NotFound()))).toEqual(Either.left(new NotFound()))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", trials: 0, successes: 0 })
      dep.state.down = false
      yield* attempt(breaker, dep.call)
      expect(yield* statusOf(breaker)).toBe("closed")
    }))

  it.effect("by default defects and retryable errors count; typed errors that are not retryable do not", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 2 })
      for (let i = 0; i < 10; i++) yield* attempt(breaker, Effect.fail(new NotFound()))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
      yield* Effect.exit(CircuitBreaker.protect(Effect.die(new TypeError("boom")), breaker))
      const timeout = new Failure.StepTimeout({ step: "s", attempt: 1, timeoutMillis: 5 })
      yield* attempt(breaker, Effect.fail(timeout))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", failures: 2 })
    }))

  it.effect("a defect passes isFailure too: a breaker may choose to ignore some", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, isFailure: (error) => !(error instanceof TypeError) })
      const exit = yield* Effect.exit(CircuitBreaker.protect(Effect.die(new TypeError("a bug of ours")), breaker))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* statusOf(breaker)).toBe("closed")
      yield* Effect.exit(CircuitBreaker.protect(Effect.die(new Error("the dependency threw")), breaker))
      expect(yield* statusOf(breaker)).toBe("open")
    }))

  it.effect("interruptions never count", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1 })
      const fiber = yield* Effect.fork(CircuitBreaker.protect(Effect.never, breaker))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
    }))

  it.effect("a call that ends after the breaker changed state counts for nothing", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "10 seconds" })
      const dep = dependency()
      const slowly = (gate: Deferred.Deferred<void>) => Effect.zipRight(Deferred.await(gate), dep.call)
      // Two slow calls start while closed; a fast one trips the breaker meanwhile.
      const [gateA, gateB, gateTrial] = [
        yield* Deferred.make<void>(),
        yield* Deferred.make<void>(),
        yield* Deferred.make<void>()
      ]
      const a = yield* Effect.fork(attempt(breaker, slowly(gateA)))
      const b = yield* Effect.fork(attempt(breaker, slowly(gateB)))
      yield* Effect.yieldNow()
      yield* attempt(breaker, dep.call)
      yield* TestClock.adjust("4 seconds")
      // A failure of a call admitted while closed does not extend the cooldown...
      yield* Deferred.succeed(gateA, undefined)
      expect(yield* Fiber.join(a)).toMatchObject(Either.left({ _tag: "Unavailable" }))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", retryAfter: 6_000 })
      // ...and its success is not a trial's: the breaker stays half-open, its one trial in flight.
      yield* TestClock.adjust("6 seconds")
      dep.state.down = false
      const trial = yield* Effect.fork(attempt(breaker, slowly(gateTrial)))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gateB, undefined)
      expect(yield* Fiber.join(b)).toMatchObject(Either.right(expect.any(String)))
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "half-open", trials: 1, successes: 0 })
      yield* Deferred.succeed(gateTrial, undefined)
      yield* Fiber.join(trial)
      expect(yield* statusOf(breaker)).toBe("closed")
    }))

  it.effect("a failure of a call admitted before the breaker last closed does not count in the new closed state", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1, cooldown: "1 second" })
      const gate = yield* Deferred.make<void>()
      const old = yield* Effect.fork(
        attempt(breaker, Effect.zipRight(Deferred.await(gate), Effect.fail(new Unavailable({ n: 0 }))))
      )
      yield* Effect.yieldNow()
      yield* attempt(breaker, Effect.fail(new Unavailable({ n: 1 })))
      yield* TestClock.adjust("1 second")
      yield* attempt(breaker, Effect.succeed("trial"))
      expect(yield* statusOf(breaker)).toBe("closed")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(old)
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
    }))

  it.effect("one breaker value shares its state across every effect it protects", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 2 })
      const a = dependency()
      const b = dependency()
      yield* attempt(breaker, a.call)
      yield* attempt(breaker, b.call)
      expect(yield* attempt(breaker, a.call)).toEqual(
        Either.left(new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: 30_000 }))
      )
      // Another breaker, even with the same options, has a state of its own.
      const other = CircuitBreaker.make({ name: breaker.name, failureThreshold: 2 })
      expect(yield* statusOf(other)).toBe("closed")
    }))
})

describe("CircuitBreaker: logs, metrics and the backend", () => {
  it.effect("every transition is logged with breaker, from, to and failures, and counted", () =>
    Effect.gen(function*() {
      const logs: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
      const capture = Logger.make(({ annotations, logLevel, message }) => {
        logs.push({
          level: logLevel.label,
          message: (Array.isArray(message) ? message : [message]).join(" "),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      })
      const breaker = breakerWith({ failureThreshold: 2, window: "30 seconds", cooldown: "1 minute" })
      const dep = dependency()
      yield* Effect.gen(function*() {
        yield* failTimes(breaker, dep.call, 2)
        yield* failTimes(breaker, dep.call, 3)
        yield* TestClock.adjust("1 minute")
        yield* attempt(breaker, dep.call)
        yield* TestClock.adjust("1 minute")
        dep.state.down = false
        yield* attempt(breaker, dep.call)
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))

      const name = breaker.name
      expect(logs).toEqual([
        {
          level: "WARN",
          message: `circuit breaker "${name}" opened after 2 failures within 30s; calls fail fast for 1m`,
          annotations: { breaker: name, from: "closed", to: "open", failures: 2 }
        },
        {
          level: "INFO",
          message: `circuit breaker "${name}" is half-open: letting a trial call through`,
          annotations: { breaker: name, from: "open", to: "half-open", failures: 0 }
        },
        {
          level: "WARN",
          message: `circuit breaker "${name}" reopened: a trial call failed; calls fail fast for 1m`,
          annotations: { breaker: name, from: "half-open", to: "open", failures: 1 }
        },
        {
          level: "INFO",
          message: `circuit breaker "${name}" is half-open: letting a trial call through`,
          annotations: { breaker: name, from: "open", to: "half-open", failures: 0 }
        },
        {
          level: "INFO",
          message: `circuit breaker "${name}" closed: trial calls succeeded`,
          annotations: { breaker: name, from: "half-open", to: "closed", failures: 0 }
        }
      ])
      const count = (metric: Metric.Metric.Counter<number>, labels: Record<string, string>) =>
        Effect.map(
          Metric.value(
            Metric.taggedWithLabels(metric, Object.entries(labels).map(([k, v]) => MetricLabel.make(k, v)))
          ),
          (state) => state.count
        )
      expect(yield* count(CircuitBreaker.transitions, { breaker: name, to: "open" })).toBe(2)
      expect(yield* count(CircuitBreaker.transitions, { breaker: name, to: "half-open" })).toBe(2)
      expect(yield* count(CircuitBreaker.transitions, { breaker: name, to: "closed" })).toBe(1)
      // The three calls after it opened were refused.
      expect(yield* count(CircuitBreaker.rejections, { breaker: name })).toBe(3)
    }))

  it.effect("keeps its state in the Backend in context", () =>
    Effect.gen(function*() {
      const breaker = breakerWith({ failureThreshold: 1 })
      const seen: Array<string> = []
      const refusing: CircuitBreaker.BackendService = {
        admit: (b, now) =>
          Effect.sync(() => {
            seen.push(`admit ${b.name} at ${now}`)
            return { admission: { _tag: "Rejected", retryAfter: 42 } }
          }),
        settle: () => Effect.succeed(undefined),
        read: () => Effect.succeed(CircuitBreaker.initial)
      }
      yield* TestClock.adjust("7 millis")
      const dep = dependency()
      const result = yield* attempt(breaker, dep.call).pipe(Effect.provideService(CircuitBreaker.Backend, refusing))
      expect(result).toEqual(Either.left(new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: 42 })))
      expect(seen).toEqual([`admit ${breaker.name} at 7`])
      expect(dep.state.calls).toBe(0)
      // The process backend (the default) never saw it.
      expect(yield* statusOf(breaker)).toBe("closed")
    }))
})
