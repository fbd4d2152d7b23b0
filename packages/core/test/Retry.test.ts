import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { Failure, Retry } from "../src/index.js"

class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}

class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()("GatewayTimeout", { afterMs: Schema.Number }) {
  readonly retryable = true
}

class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {}) {}

const transient = new GatewayTimeout({ afterMs: 1000 })
const declined = new CardDeclined({ code: "insufficient_funds" })
const fail = (error: unknown): Retry.Outcome => ({ _tag: "Fail", error })
const die = (defect: unknown): Retry.Outcome => ({ _tag: "Die", defect })

/** `decide` after attempt `attempt` of a transient failure, with no time elapsed and no jitter draw. */
const after = (policy: Retry.Policy, attempt: number, overrides: Partial<Retry.DecideInput> = {}) =>
  Retry.decide(policy, { attempt, outcome: fail(transient), elapsedMillis: 0, random: 0.5, ...overrides })

/** A seeded sequence of numbers in [0, 1). */
const seeded = (seed: string, n: number): ReadonlyArray<number> =>
  Effect.runSync(Effect.withRandom(Effect.replicateEffect(Random.next, n), Random.make(seed)))

describe("Retry constructors", () => {
  it("exponential has documented defaults", () => {
    const policy = Retry.exponential({ base: "100 millis" })
    expect(policy).toMatchObject({
      _tag: "Exponential",
      attempts: 3,
      baseMillis: 100,
      factor: 2,
      maxMillis: Number.POSITIVE_INFINITY,
      jitter: 0,
      withinMillis: undefined,
      retryDefects: false
    })
    expect(Retry.exponential({ base: "1 second", jitter: true }).jitter).toBe(Retry.DEFAULT_JITTER)
    expect(Retry.DEFAULT_JITTER).toBe(0.2)
  })

  it("fixed, none and schedule have documented defaults", () => {
    expect(Retry.fixed({ delay: "2 seconds" })).toMatchObject({
      _tag: "Fixed",
      attempts: 3,
      delayMillis: 2000,
      jitter: 0
    })
    expect(Retry.none).toMatchObject({ _tag: "None", attempts: 1, retryDefects: false })
    expect(Retry.schedule(Schedule.spaced("1 second")).attempts).toBe(Number.MAX_SAFE_INTEGER)
  })

  it("the default policy is 3 attempts, exponential from 200ms, capped at 30s, ±20%", () => {
    expect(Retry.defaultPolicy).toMatchObject({
      _tag: "Exponential",
      attempts: 3,
      baseMillis: 200,
      factor: 2,
      maxMillis: 30_000,
      jitter: 0.2,
      retryDefects: false
    })
  })

  it("converts durations and keeps the tag filters", () => {
    const policy = Retry.fixed({
      delay: "1 second",
      within: "1 minute",
      retryOn: ["GatewayTimeout"],
      abortOn: ["CardDeclined"],
      retryDefects: true
    })
    expect(policy.withinMillis).toBe(60_000)
    expect(policy.retryOn).toEqual(["GatewayTimeout"])
    expect(policy.abortOn).toEqual(["CardDeclined"])
    expect(policy.retryDefects).toBe(true)
  })

  it("bad options throw a RangeError when the policy is made", () => {
    for (const attempts of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => Retry.exponential({ base: "1 second", attempts }), `attempts ${attempts}`).toThrow(RangeError)
      expect(() => Retry.fixed({ delay: "1 second", attempts }), `attempts ${attempts}`).toThrow(RangeError)
      expect(() => Retry.schedule(Schedule.spaced("1 second"), { attempts }), `attempts ${attempts}`).toThrow(
        RangeError
      )
    }
    expect(() => Retry.exponential({ base: "1 second", attempts: 0 })).toThrow(/attempts must be/)
    for (const jitter of [-0.1, 1.5, Number.NaN]) {
      expect(() => Retry.exponential({ base: "1 second", jitter }), `jitter ${jitter}`).toThrow(RangeError)
      expect(() => Retry.fixed({ delay: "1 second", jitter }), `jitter ${jitter}`).toThrow(RangeError)
    }
    expect(() => Retry.fixed({ delay: "1 second", jitter: 2 })).toThrow(/jitter must be between 0 and 1/)
    for (const factor of [0.5, 0, -2, Number.NaN]) {
      expect(() => Retry.exponential({ base: "1 second", factor }), `factor ${factor}`).toThrow(RangeError)
    }
    // The limits themselves are fine.
    expect(Retry.exponential({ base: "1 second", attempts: 1, jitter: 1, factor: 1 }).attempts).toBe(1)
    expect(Retry.fixed({ delay: "1 second", jitter: 0 }).jitter).toBe(0)
  })

  it("isPolicy recognises policies only", () => {
    expect(Retry.isPolicy(Retry.none)).toBe(true)
    expect(Retry.isPolicy(Retry.fixed({ delay: 10 }))).toBe(true)
    expect(Retry.isPolicy(Retry.schedule(Schedule.recurs(2)))).toBe(true)
    expect(Retry.isPolicy({ _tag: "Fixed", delayMillis: 10 })).toBe(false)
    expect(Retry.isPolicy(null)).toBe(false)
  })
})

describe("Retry.delayFor", () => {
  it("exponential doubles from base and is capped at max", () => {
    const policy = Retry.exponential({ base: "100 millis", max: "1 second" })
    expect([1, 2, 3, 4, 5, 6].map((n) => Retry.delayFor(policy, n, 0.5))).toEqual([100, 200, 400, 800, 1000, 1000])
  })

  it("exponential follows its factor", () => {
    const policy = Retry.exponential({ base: "10 millis", factor: 3 })
    expect([1, 2, 3, 4].map((n) => Retry.delayFor(policy, n, 0))).toEqual([10, 30, 90, 270])
  })

  it("fixed is the same after every attempt", () => {
    const policy = Retry.fixed({ delay: "250 millis" })
    expect([1, 2, 3, 10].map((n) => Retry.delayFor(policy, n, 0.3))).toEqual([250, 250, 250, 250])
  })

  it("jitter at random 0 is the lower bound delay·(1−j), at 0.999999 the upper bound min(max, delay·(1+j))", () => {
    const policy = Retry.exponential({ base: "100 millis", max: "1 second", jitter: 0.25 })
    expect([1, 2, 3, 4, 5].map((n) => Retry.delayFor(policy, n, 0))).toEqual([75, 150, 300, 600, 750])
    expect([1, 2, 3, 4, 5].map((n) => Retry.delayFor(policy, n, 0.999999))).toEqual([125, 250, 500, 1000, 1000])
    const fixed = Retry.fixed({ delay: "1 second", jitter: true })
    expect(Retry.delayFor(fixed, 1, 0)).toBe(800)
    expect(Retry.delayFor(fixed, 1, 0.999999)).toBe(1200)
  })

  const jitterBoundsHold = (policy: Retry.Exponential | Retry.Fixed, randoms: ReadonlyArray<number>) => {
    const max = policy._tag === "Exponential" ? policy.maxMillis : Number.POSITIVE_INFINITY
    for (let attempt = 1; attempt <= 12; attempt++) {
      const delay = policy._tag === "Fixed"
        ? policy.delayMillis
        : Math.min(policy.baseMillis * policy.factor ** (attempt - 1), policy.maxMillis)
      const lower = delay * (1 - policy.jitter)
      const upper = Math.min(max, delay * (1 + policy.jitter))
      for (const random of randoms) {
        const d = Retry.delayFor(policy, attempt, random)
        expect(d, `attempt ${attempt}, random ${random}: ${d} ≥ ${lower}`).toBeGreaterThanOrEqual(lower)
        expect(d, `attempt ${attempt}, random ${random}: ${d} ≤ ${upper}`).toBeLessThanOrEqual(upper)
      }
    }
  }

  it("jitter stays within delay·(1−j) ≤ d ≤ min(max, delay·(1+j)) for a seeded random", () => {
    const randoms = [0, 0.999999, ...seeded("weft", 500)]
    jitterBoundsHold(Retry.exponential({ base: "100 millis", max: "5 seconds", jitter: true }), randoms)
    jitterBoundsHold(Retry.exponential({ base: "1 second", max: "1 minute", factor: 1.5, jitter: 0.5 }), randoms)
    jitterBoundsHold(Retry.fixed({ delay: "300 millis", jitter: 1 }), randoms)
  })

  it("jitter bounds hold exactly when they are not whole milliseconds", () => {
    // 333 · 0.7 = 233.1 and 333 · 1.3 = 432.9: rounding to the nearest millisecond must not leave the range.
    const randoms = [0, 0.999999, 0.0001, 0.9999, ...seeded("odd", 500)]
    jitterBoundsHold(Retry.fixed({ delay: "333 millis", jitter: 0.3 }), randoms)
    jitterBoundsHold(Retry.exponential({ base: "333 millis", max: "7777 millis", jitter: 0.3 }), randoms)
    expect(Retry.delayFor(Retry.fixed({ delay: "333 millis", jitter: 0.3 }), 1, 0)).toBe(234)
    expect(Retry.delayFor(Retry.fixed({ delay: "333 millis", jitter: 0.3 }), 1, 0.999999)).toBe(432)
  })

  it("a seeded random spreads delays over the whole jitter range", () => {
    const policy = Retry.fixed({ delay: "1 second", jitter: 0.5 })
    const delays = seeded("spread", 1000).map((r) => Retry.delayFor(policy, 1, r))
    expect(Math.min(...delays)).toBeLessThan(520)
    expect(Math.max(...delays)).toBeGreaterThan(1480)
    expect(new Set(delays).size).toBeGreaterThan(300)
  })
})

describe("Retry.decide", () => {
  it("attempts counts the first attempt", () => {
    const policy = Retry.fixed({ delay: "100 millis", attempts: 3 })
    expect(after(policy, 1)).toEqual({ _tag: "Retry", delayMillis: 100 })
    expect(after(policy, 2)).toEqual({ _tag: "Retry", delayMillis: 100 })
    expect(after(policy, 3)).toEqual({ _tag: "Stop", reason: "attempts-exhausted" })
    expect(after(Retry.fixed({ delay: "100 millis", attempts: 1 }), 1)).toEqual({
      _tag: "Stop",
      reason: "attempts-exhausted"
    })
  })

  it("exponential decisions carry the backoff delay", () => {
    const policy = Retry.exponential({ base: "100 millis", attempts: 5 })
    expect([1, 2, 3, 4, 5].map((n) => after(policy, n))).toEqual([
      { _tag: "Retry", delayMillis: 100 },
      { _tag: "Retry", delayMillis: 200 },
      { _tag: "Retry", delayMillis: 400 },
      { _tag: "Retry", delayMillis: 800 },
      { _tag: "Stop", reason: "attempts-exhausted" }
    ])
  })

  it("none never retries", () => {
    expect(after(Retry.none, 1)).toEqual({ _tag: "Stop", reason: "attempts-exhausted" })
    expect(after(Retry.none, 1, { outcome: fail(declined) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
    expect(after(Retry.none, 1, { outcome: die(new Error("bug")) })).toEqual({ _tag: "Stop", reason: "defect" })
  })

  it("within never sleeps past the limit: stop when elapsed + next delay > within", () => {
    const policy = Retry.fixed({ delay: "100 millis", attempts: 100, within: "1 second" })
    expect(after(policy, 3, { elapsedMillis: 899 })).toEqual({ _tag: "Retry", delayMillis: 100 })
    // Exactly at the limit: the next attempt starts at `within`, not after it.
    expect(after(policy, 3, { elapsedMillis: 900 })).toEqual({ _tag: "Retry", delayMillis: 100 })
    // Still inside the limit, but the sleep would end past it.
    expect(after(policy, 3, { elapsedMillis: 901 })).toEqual({ _tag: "Stop", reason: "within-exceeded" })
    expect(after(policy, 3, { elapsedMillis: 1000 })).toEqual({ _tag: "Stop", reason: "within-exceeded" })
  })

  it("within uses the jittered delay", () => {
    const policy = Retry.fixed({ delay: "100 millis", attempts: 100, within: "1 second", jitter: 0.5 })
    expect(after(policy, 2, { elapsedMillis: 940, random: 0 })).toEqual({ _tag: "Retry", delayMillis: 50 })
    expect(after(policy, 2, { elapsedMillis: 940, random: 0.999999 })).toEqual({
      _tag: "Stop",
      reason: "within-exceeded"
    })
  })

  it("within with an exponential backoff stops before the sleep that would cross it", () => {
    const policy = Retry.exponential({ base: "100 millis", attempts: 100, within: "1 second" })
    // Attempts start at 0, 100, 300, 700; the next sleep (800ms) would end at 1500.
    let elapsed = 0
    const decisions: Array<Retry.Decision> = []
    for (let attempt = 1; attempt <= 10; attempt++) {
      const decision = after(policy, attempt, { elapsedMillis: elapsed })
      decisions.push(decision)
      if (decision._tag === "Stop") break
      elapsed += decision.delayMillis
    }
    expect(decisions).toEqual([
      { _tag: "Retry", delayMillis: 100 },
      { _tag: "Retry", delayMillis: 200 },
      { _tag: "Retry", delayMillis: 400 },
      { _tag: "Stop", reason: "within-exceeded" }
    ])
    expect(elapsed).toBe(700)
  })

  it("by default retries errors that say retryable = true, and StepTimeout", () => {
    const policy = Retry.fixed({ delay: "10 millis" })
    expect(after(policy, 1, { outcome: fail(transient) })._tag).toBe("Retry")
    const timeout = new Failure.StepTimeout({ step: "s", attempt: 1, timeoutMillis: 5 })
    expect(after(policy, 1, { outcome: fail(timeout) })._tag).toBe("Retry")
  })

  it("by default does not retry other typed errors, plain errors or values", () => {
    const policy = Retry.fixed({ delay: "10 millis" })
    for (const error of [declined, new Error("x"), "oops", 42, { _tag: "Other" }, { retryable: "yes" }]) {
      expect(after(policy, 1, { outcome: fail(error) }), String(error)).toEqual({
        _tag: "Stop",
        reason: "not-retryable"
      })
    }
  })

  it("does not retry defects unless retryDefects", () => {
    const bug = die(new TypeError("x is undefined"))
    expect(after(Retry.fixed({ delay: "10 millis" }), 1, { outcome: bug })).toEqual({ _tag: "Stop", reason: "defect" })
    // Even a defect value that claims to be retryable.
    expect(after(Retry.fixed({ delay: "10 millis" }), 1, { outcome: die(transient) })).toEqual({
      _tag: "Stop",
      reason: "defect"
    })
    const policy = Retry.fixed({ delay: "10 millis", retryDefects: true })
    expect(after(policy, 1, { outcome: bug })).toEqual({ _tag: "Retry", delayMillis: 10 })
    expect(after(policy, 3, { outcome: bug })).toEqual({ _tag: "Stop", reason: "attempts-exhausted" })
  })

  it("retryOn retries exactly the listed tags, whether or not they say retryable", () => {
    const policy = Retry.fixed({ delay: "10 millis", retryOn: ["CardDeclined", "RateLimited"] })
    expect(after(policy, 1, { outcome: fail(declined) })._tag).toBe("Retry")
    expect(after(policy, 1, { outcome: fail(new RateLimited()) })._tag).toBe("Retry")
    expect(after(policy, 1, { outcome: fail(transient) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
    const timeout = new Failure.StepTimeout({ step: "s", attempt: 1, timeoutMillis: 5 })
    expect(after(policy, 1, { outcome: fail(timeout) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
    expect(after(policy, 1, { outcome: fail(new Error("no tag")) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
  })

  it("abortOn wins over retryable = true and over retryOn", () => {
    const aborting = Retry.fixed({ delay: "10 millis", abortOn: ["GatewayTimeout"] })
    expect(after(aborting, 1, { outcome: fail(transient) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
    const both = Retry.fixed({ delay: "10 millis", retryOn: ["GatewayTimeout"], abortOn: ["GatewayTimeout"] })
    expect(after(both, 1, { outcome: fail(transient) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
    const timeout = new Failure.StepTimeout({ step: "s", attempt: 1, timeoutMillis: 5 })
    const noTimeouts = Retry.fixed({ delay: "10 millis", abortOn: ["StepTimeout"] })
    expect(after(noTimeouts, 1, { outcome: fail(timeout) })).toEqual({ _tag: "Stop", reason: "not-retryable" })
    expect(after(noTimeouts, 1, { outcome: fail(transient) })._tag).toBe("Retry")
  })

  it("a non-retryable error stops as not-retryable even on the last attempt", () => {
    expect(after(Retry.fixed({ delay: "10 millis" }), 3, { outcome: fail(declined) })).toEqual({
      _tag: "Stop",
      reason: "not-retryable"
    })
  })

  it("schedule policies take the schedule's delay and still apply attempts, within and the filters", () => {
    const policy = Retry.schedule(Schedule.spaced("1 second"), {
      attempts: 3,
      within: "5 seconds",
      abortOn: ["GatewayTimeout"]
    })
    const withDelay = (delay: number) => ({ scheduleDelayMillis: Option.some(delay), outcome: fail(declined) })
    const retryAll = Retry.schedule(Schedule.spaced("1 second"), {
      attempts: 3,
      within: "5 seconds",
      retryOn: ["CardDeclined"]
    })
    expect(after(retryAll, 1, withDelay(70))).toEqual({ _tag: "Retry", delayMillis: 70 })
    expect(after(retryAll, 1, { scheduleDelayMillis: Option.none(), outcome: fail(declined) })).toEqual({
      _tag: "Stop",
      reason: "schedule-done"
    })
    expect(after(retryAll, 1, { scheduleDelayMillis: undefined, outcome: fail(declined) })).toEqual({
      _tag: "Stop",
      reason: "schedule-done"
    })
    expect(after(retryAll, 3, withDelay(70))).toEqual({ _tag: "Stop", reason: "attempts-exhausted" })
    expect(after(retryAll, 2, { ...withDelay(70), elapsedMillis: 4931 })).toEqual({
      _tag: "Stop",
      reason: "within-exceeded"
    })
    expect(after(policy, 1, { scheduleDelayMillis: Option.some(10) })).toEqual({
      _tag: "Stop",
      reason: "not-retryable"
    })
  })
})

describe("Retry: an error's retryAfter is the least delay", () => {
  const open = (retryAfter: number) => new Failure.CircuitOpen({ breaker: "gateway", retryAfter })

  it("CircuitOpen is retryable by default, after max(policy delay, retryAfter)", () => {
    const policy = Retry.fixed({ delay: "100 millis", attempts: 5 })
    expect(after(policy, 1, { outcome: fail(open(30_000)) })).toEqual({ _tag: "Retry", delayMillis: 30_000 })
    // A retryAfter shorter than the policy's delay changes nothing.
    expect(after(policy, 1, { outcome: fail(open(40)) })).toEqual({ _tag: "Retry", delayMillis: 100 })
    expect(after(policy, 1, { outcome: fail(open(0)) })).toEqual({ _tag: "Retry", delayMillis: 100 })
  })

  it("applies to any error with a numeric retryAfter (an HTTP 429), after jitter and max", () => {
    class TooManyRequests extends Schema.TaggedError<TooManyRequests>()("TooManyRequests", {
      retryAfter: Schema.Number
    }) {
      readonly retryable = true
    }
    const policy = Retry.exponential({ base: "1 second", max: "2 seconds", attempts: 5, jitter: true })
    // max caps the policy's own delay, not the dependency's answer.
    expect(after(policy, 4, { outcome: fail(new TooManyRequests({ retryAfter: 60_000 })), random: 0.999999 }))
      .toEqual({ _tag: "Retry", delayMillis: 60_000 })
    // Fractions of a millisecond round up: never sooner than asked.
    expect(after(policy, 1, { outcome: fail(new TooManyRequests({ retryAfter: 5000.2 })) })).toEqual({
      _tag: "Retry",
      delayMillis: 5001
    })
  })

  it("ignores a retryAfter that is not a finite non-negative number", () => {
    expect(Retry.retryAfterOf(open(250))).toBe(250)
    for (
      const error of [{ retryAfter: "30" }, { retryAfter: -1 }, { retryAfter: Number.NaN }, { retryAfter: Infinity }]
    ) {
      expect(Retry.retryAfterOf(error), JSON.stringify(error)).toBeUndefined()
    }
    expect(Retry.retryAfterOf(undefined)).toBeUndefined()
    expect(Retry.retryAfterOf("retryAfter")).toBeUndefined()
  })

  it("does not make a retry of what the policy would not retry", () => {
    expect(after(Retry.fixed({ delay: "10 millis", abortOn: ["CircuitOpen"] }), 1, { outcome: fail(open(500)) }))
      .toEqual({ _tag: "Stop", reason: "not-retryable" })
    expect(after(Retry.fixed({ delay: "10 millis", attempts: 2 }), 2, { outcome: fail(open(500)) })).toEqual({
      _tag: "Stop",
      reason: "attempts-exhausted"
    })
    // A defect is never a Fail outcome: its retryAfter is not looked at.
    const policy = Retry.fixed({ delay: "10 millis", retryDefects: true })
    expect(after(policy, 1, { outcome: die(open(500)) })).toEqual({ _tag: "Retry", delayMillis: 10 })
  })

  it("within never sleeps past the limit: a retryAfter that would cross it stops the retries", () => {
    const policy = Retry.fixed({ delay: "100 millis", attempts: 10, within: "10 seconds" })
    expect(after(policy, 1, { outcome: fail(open(9_000)), elapsedMillis: 1_000 })).toEqual({
      _tag: "Retry",
      delayMillis: 9_000
    })
    expect(after(policy, 1, { outcome: fail(open(9_001)), elapsedMillis: 1_000 })).toEqual({
      _tag: "Stop",
      reason: "within-exceeded"
    })
  })

  it("schedule policies wait at least retryAfter too", () => {
    const policy = Retry.schedule(Schedule.spaced("1 second"), { attempts: 3 })
    expect(after(policy, 1, { outcome: fail(open(5_000)), scheduleDelayMillis: Option.some(1_000) })).toEqual({
      _tag: "Retry",
      delayMillis: 5_000
    })
  })

  it.effect("toSchedule waits retryAfter as a step would", () =>
    Effect.gen(function*() {
      const { starts } = yield* driveToSchedule(
        Retry.fixed({ delay: "100 millis", attempts: 3 }),
        (n) => open(n === 1 ? 2_500 : 0)
      )
      expect(starts).toEqual([0, 2_500, 2_600])
    }))
})

/** Runs an always-failing effect under `Effect.retry(toSchedule(policy))` and reports when each attempt started. */
const driveToSchedule = (policy: Retry.Policy, errorFor: (attempt: number) => unknown) =>
  Effect.gen(function*() {
    const origin = yield* Clock.currentTimeMillis
    const starts: Array<number> = []
    const attempt = Effect.gen(function*() {
      starts.push((yield* Clock.currentTimeMillis) - origin)
      if (starts.length > 100) {
        return yield* Effect.dieMessage(`runaway retries: ${starts.slice(0, 10).join(", ")}, ...`)
      }
      return yield* Effect.fail(errorFor(starts.length))
    })
    const fiber = yield* Effect.fork(Effect.flip(Effect.retry(attempt, Retry.toSchedule(policy))))
    yield* TestClock.adjust("1 day")
    const error = yield* Fiber.join(fiber)
    return { starts, error }
  })

/** What `decide` says, attempt after attempt, when every attempt fails with `errorFor(n)` instantly. */
const decideAll = (policy: Retry.Policy, errorFor: (attempt: number) => unknown, randoms: () => number) => {
  const starts = [0]
  for (let attempt = 1; attempt < 1000; attempt++) {
    const decision = Retry.decide(policy, {
      attempt,
      outcome: fail(errorFor(attempt)),
      elapsedMillis: starts[starts.length - 1],
      random: randoms()
    })
    if (decision._tag === "Stop") break
    starts.push(starts[starts.length - 1] + decision.delayMillis)
  }
  return starts
}

describe("Retry.toSchedule agrees with decide", () => {
  it.effect("exponential: same number of attempts at the same times", () =>
    Effect.gen(function*() {
      const policy = Retry.exponential({ base: "100 millis", max: "500 millis", attempts: 6 })
      const { error, starts } = yield* driveToSchedule(policy, (n) => new GatewayTimeout({ afterMs: n }))
      expect(starts).toEqual([0, 100, 300, 700, 1200, 1700])
      expect(starts).toEqual(decideAll(policy, () => transient, () => 0.5))
      expect(error).toEqual(new GatewayTimeout({ afterMs: 6 }))
    }))

  it.effect("fixed with within: stops before the sleep that would cross the limit", () =>
    Effect.gen(function*() {
      const policy = Retry.fixed({ delay: "100 millis", attempts: 100, within: "250 millis" })
      const { starts } = yield* driveToSchedule(policy, () => transient)
      expect(starts).toEqual([0, 100, 200])
      expect(starts).toEqual(decideAll(policy, () => transient, () => 0.5))
    }))

  it.effect("a non-retryable error is not retried; a later one stops the retries", () =>
    Effect.gen(function*() {
      const policy = Retry.fixed({ delay: "100 millis", attempts: 5 })
      const once = yield* driveToSchedule(policy, () => declined)
      expect(once.starts).toEqual([0])
      const mixed = yield* driveToSchedule(policy, (n) => (n < 3 ? transient : declined))
      expect(mixed.starts).toEqual([0, 100, 200])
      expect(mixed.error).toBe(declined)
    }))

  it.effect("retryOn and abortOn", () =>
    Effect.gen(function*() {
      const onDeclined = Retry.fixed({ delay: "10 millis", attempts: 4, retryOn: ["CardDeclined"] })
      expect((yield* driveToSchedule(onDeclined, () => declined)).starts).toEqual([0, 10, 20, 30])
      expect((yield* driveToSchedule(onDeclined, () => transient)).starts).toEqual([0])
      const aborting = Retry.fixed({ delay: "10 millis", attempts: 4, abortOn: ["GatewayTimeout"] })
      expect((yield* driveToSchedule(aborting, () => transient)).starts).toEqual([0])
    }))

  it.effect("none: one attempt", () =>
    Effect.gen(function*() {
      expect((yield* driveToSchedule(Retry.none, () => transient)).starts).toEqual([0])
    }))

  it.effect("jitter draws from the Random service with the same bounds", () =>
    Effect.gen(function*() {
      const policy = Retry.exponential({ base: "100 millis", attempts: 4, jitter: 0.5 })
      const low = yield* Effect.withRandom(driveToSchedule(policy, () => transient), Random.fixed([0]))
      expect(low.starts).toEqual([0, 50, 150, 350])
      expect(low.starts).toEqual(decideAll(policy, () => transient, () => 0))
      const high = yield* Effect.withRandom(driveToSchedule(policy, () => transient), Random.fixed([0.999999]))
      expect(high.starts).toEqual([0, 150, 450, 1050])
      const randoms = seeded("toSchedule", 3)
      let i = 0
      const seededRun = yield* Effect.withRandom(
        driveToSchedule(policy, () => transient),
        Random.fixed([randoms[0], randoms[1], randoms[2]])
      )
      expect(seededRun.starts).toEqual(decideAll(policy, () => transient, () => randoms[i++]))
    }))

  it.effect("schedule policies keep their attempts limit and tag filters", () =>
    Effect.gen(function*() {
      const policy = Retry.schedule(Schedule.spaced("50 millis"), { attempts: 3, abortOn: ["CardDeclined"] })
      const { starts } = yield* driveToSchedule(policy, () => transient)
      expect(starts).toEqual([0, 50, 100])
      expect((yield* driveToSchedule(policy, () => declined)).starts).toEqual([0])
    }))

  it.effect("schedule policies stop when their schedule does", () =>
    Effect.gen(function*() {
      const policy = Retry.schedule(Schedule.intersect(Schedule.exponential("10 millis"), Schedule.recurs(3)))
      const { starts } = yield* driveToSchedule(policy, () => transient)
      expect(starts).toEqual([0, 10, 30, 70])
    }))
})

describe("Retry.describe", () => {
  it("says what each policy does", () => {
    expect(Retry.describe(Retry.none)).toBe("no retry")
    expect(Retry.describe(Retry.exponential({ base: "200 millis", max: "10 seconds", attempts: 5, jitter: true })))
      .toBe(
        "exponential 200ms ×2 max 10000ms ±20%, 5 attempts"
      )
    expect(Retry.describe(Retry.exponential({ base: "1 second", factor: 3 }))).toBe("exponential 1000ms ×3, 3 attempts")
    expect(Retry.describe(Retry.fixed({ delay: "250 millis", jitter: 0.1 }))).toBe("fixed 250ms ±10%, 3 attempts")
    expect(
      Retry.describe(Retry.fixed({
        delay: "1 second",
        attempts: 10,
        within: "90 seconds",
        retryOn: ["GatewayTimeout", "RateLimited"],
        abortOn: ["CardDeclined"],
        retryDefects: true
      }))
    ).toBe("fixed 1000ms, 10 attempts, within 1m 30s, on GatewayTimeout|RateLimited, not on CardDeclined, defects too")
    expect(Retry.describe(Retry.schedule(Schedule.spaced("1 second")))).toBe("custom schedule")
    expect(Retry.describe(Retry.schedule(Schedule.spaced("1 second"), { attempts: 4 }))).toBe(
      "custom schedule, 4 attempts"
    )
  })

  it("describes the default policy", () => {
    expect(Retry.describe(Retry.defaultPolicy)).toBe("exponential 200ms ×2 max 30000ms ±20%, 3 attempts")
  })
})
