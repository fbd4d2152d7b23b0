import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import type { ProgressEvent } from "../src/Execution.js"
import { CircuitBreaker, Failure, Retry, Step, Workflow } from "../src/index.js"
import * as TestExecution from "./TestExecution.js"

class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}

class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()("GatewayTimeout", { afterMs: Schema.Number }) {
  readonly retryable = true
}

class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {}) {
  readonly retryable = true
}

class Money {
  constructor(readonly cents: number) {}
}

/** The defect of a failed exit. */
const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined

/** An event with its error shown by tag (or error name), for comparing whole event logs. */
const summary = (event: ProgressEvent) =>
  "error" in event
    ? { ...event, error: Failure.tagOf(event.error) ?? (event.error instanceof Error ? event.error.name : event.error) }
    : event

/** A journal entry for a step that failed attempts before a crash. */
const crashed = (
  stepId: string,
  attempts: ReadonlyArray<TestExecution.JournalEntry["attempts"][number]>,
  position = 0
): TestExecution.JournalEntry => ({ stepId, name: stepId, kind: "step", position, result: Option.none(), attempts })

const gatewayFailure = (attempt: number, startedAt: number, finishedAt: number, delayMillis: number) => ({
  attempt,
  startedAt,
  finishedAt,
  outcome: "failure" as const,
  error: { _tag: "GatewayTimeout", afterMs: attempt },
  delayMillis
})

describe("Step: results are journaled", () => {
  it.effect("a success is encoded then decoded: a Schema.Date is a Date on the first run and on replay", () =>
    Effect.gen(function*() {
      let executions = 0
      const stamp = Step.make({
        name: "stamp",
        success: Schema.Struct({ at: Schema.Date }),
        run: () =>
          Effect.sync(() => {
            executions++
            return { at: new Date("2024-01-02T03:04:05.000Z"), extra: "not in the schema" }
          })
      })
      const first = TestExecution.make()
      const a = yield* first.run(stamp())
      expect(a.at).toBeInstanceOf(Date)
      expect(a.at.toISOString()).toBe("2024-01-02T03:04:05.000Z")
      // The decoded journal value, not the object the step returned.
      expect(a).not.toHaveProperty("extra")
      expect(first.completed().get("stamp")).toEqual({ _tag: "Success", value: { at: "2024-01-02T03:04:05.000Z" } })
      expect(first.attempts("stamp")).toEqual([{ attempt: 1, startedAt: 0, finishedAt: 0, outcome: "success" }])

      const replay = TestExecution.make({ seed: first.journal() })
      const b = yield* replay.run(stamp())
      expect(b.at).toBeInstanceOf(Date)
      expect(b.at.toISOString()).toBe("2024-01-02T03:04:05.000Z")
      expect(b).toEqual(a)
      expect(executions).toBe(1)
      expect(replay.completions()).toBe(0)
      expect(replay.events()).toEqual([{ _tag: "StepReplayed", stepId: "stamp", failed: false }])
    }))

  it.effect("without a success schema, plain JSON is stored as is", () =>
    Effect.gen(function*() {
      const value = { a: [1, "x", null, true], b: { c: 2.5 } }
      const json = Step.make({ name: "json", run: () => Effect.succeed(value) })
      const exec = TestExecution.make()
      expect(yield* exec.run(json())).toEqual(value)
      expect(exec.completed().get("json")).toEqual({ _tag: "Success", value })
      expect(yield* TestExecution.make({ seed: exec.journal() }).run(json())).toEqual(value)
    }))

  it.effect("without a success schema, a Date is a defect that says so, and is journaled as one", () =>
    Effect.gen(function*() {
      let executions = 0
      const when = Step.make({
        name: "when",
        retry: Retry.fixed({ delay: 0, attempts: 3, retryDefects: true }),
        run: () => Effect.sync(() => (executions++, new Date(0)))
      })
      const exec = TestExecution.make()
      const exit = yield* Effect.exit(exec.run(when()))
      const defect = defectOf(exit)
      expect(defect).toBeInstanceOf(Error)
      const message = (defect as Error).message
      expect(message).toContain(`step "when" returned a value its success schema rejects`)
      expect(message).toContain("value is a Date")
      expect(message).toContain("declare a success schema")
      // A step that returns the wrong kind of value is a bug: it is not retried, even with retryDefects.
      expect(executions).toBe(1)
      expect(exec.attempts("when")).toMatchObject([{ attempt: 1, outcome: "defect", stopReason: "defect" }])
      expect(exec.completed().get("when")).toMatchObject({ _tag: "Failure", cause: { _tag: "Die" } })

      const replayed = yield* Effect.exit(TestExecution.make({ seed: exec.journal() }).run(when()))
      expect((defectOf(replayed) as Error).message).toBe(message)
      expect(executions).toBe(1)
    }))

  it.effect("without a success schema, a class instance deep in the value is a defect naming where it is", () =>
    Effect.gen(function*() {
      const total = Step.make({ name: "total", run: () => Effect.succeed({ lines: [{ price: new Money(500) }] }) })
      const exit = yield* Effect.exit(TestExecution.make().run(total()))
      expect((defectOf(exit) as Error).message).toContain("lines[0].price is a Money")
      const nan = yield* Effect.exit(TestExecution.make().run(Step.run("nan", Effect.succeed({ ratio: Number.NaN }))))
      expect((defectOf(nan) as Error).message).toContain("ratio is NaN")
    }))

  it.effect("without a success schema, undefined in an array (null once stored) is a defect, not a different replay", () =>
    Effect.gen(function*() {
      const sparse = Step.make({ name: "sparse", run: () => Effect.succeed({ list: [1, undefined] }) })
      const exit = yield* Effect.exit(TestExecution.make().run(sparse()))
      expect((defectOf(exit) as Error).message).toContain("list[1] is undefined")
      // undefined as a whole result (a step returning void) or as a field is fine.
      const exec = TestExecution.make()
      expect(yield* exec.run(Step.run("void", Effect.void))).toBeUndefined()
      expect(yield* TestExecution.make({ seed: exec.journal() }).run(Step.run("void", Effect.void))).toBeUndefined()
    }))

  it.effect("a completed step is not executed again on replay", () =>
    Effect.gen(function*() {
      const executions = { a: 0, b: 0 }
      const a = Step.make({
        name: "a",
        success: Schema.Number,
        run: (n: number) => Effect.sync(() => (executions.a++, n))
      })
      const b = Step.make({ name: "b", run: (s: string) => Effect.sync(() => (executions.b++, s.toUpperCase())) })
      const body = Effect.gen(function*() {
        const x = yield* a(1)
        const y = yield* b("x")
        const z = yield* a(x + 1)
        return [x, y, z] as const
      })
      const first = TestExecution.make()
      expect(yield* first.run(body)).toEqual([1, "X", 2])
      expect(first.entered()).toEqual(["a", "b", "a#2"])
      expect(executions).toEqual({ a: 2, b: 1 })

      const replay = TestExecution.make({ seed: first.journal() })
      expect(yield* replay.run(body)).toEqual([1, "X", 2])
      expect(executions).toEqual({ a: 2, b: 1 })
      expect(replay.completions()).toBe(0)
      expect(replay.recordedAttempts()).toBe(0)
      expect(replay.events().map((e) => e._tag)).toEqual(["StepReplayed", "StepReplayed", "StepReplayed"])
    }))

  it.effect("a run that crashed after some steps executes only the rest", () =>
    Effect.gen(function*() {
      const executions: Array<string> = []
      const step = (name: string) =>
        Step.run(name, Effect.sync(() => (executions.push(name), name)), { success: Schema.String })
      const first = TestExecution.make()
      yield* first.run(Effect.zipRight(step("one"), step("two")))
      const resumed = TestExecution.make({ seed: first.journal() })
      yield* resumed.run(Effect.all([step("one"), step("two"), step("three")]))
      expect(executions).toEqual(["one", "two", "three"])
      expect([...resumed.completed().keys()]).toEqual(["one", "two", "three"])
      expect(resumed.completions()).toBe(1)
    }))

  it.effect("a journaled typed failure is replayed as the same error class with its fields", () =>
    Effect.gen(function*() {
      let executions = 0
      const charge = Step.make({
        name: "charge",
        error: Schema.Union(CardDeclined, GatewayTimeout),
        run: (code: string) => Effect.suspend(() => (executions++, Effect.fail(new CardDeclined({ code }))))
      })
      const first = TestExecution.make()
      const error = yield* Effect.flip(first.run(charge("insufficient_funds")))
      expect(error).toBeInstanceOf(CardDeclined)
      expect(error).toEqual(new CardDeclined({ code: "insufficient_funds" }))
      expect(first.completed().get("charge")).toEqual({
        _tag: "Failure",
        cause: { _tag: "Fail", error: { _tag: "CardDeclined", code: "insufficient_funds" } }
      })

      const replay = TestExecution.make({ seed: first.journal() })
      const replayed = yield* Effect.flip(replay.run(charge("insufficient_funds")))
      expect(replayed).toBeInstanceOf(CardDeclined)
      expect(replayed._tag).toBe("CardDeclined")
      expect((replayed as CardDeclined).code).toBe("insufficient_funds")
      expect(executions).toBe(1)
      expect(replay.events()).toEqual([{ _tag: "StepReplayed", stepId: "charge", failed: true }])
    }))

  it.effect("a journaled retryable error comes back retryable, and a defect keeps name, message, stack and cause", () =>
    Effect.gen(function*() {
      const gw = Step.make({
        name: "gw",
        error: GatewayTimeout,
        retry: Retry.none,
        run: () => Effect.fail(new GatewayTimeout({ afterMs: 7 }))
      })
      const bug = new TypeError("cannot read x", { cause: new Error("root cause") })
      const buggy = Step.run("buggy", Effect.die(bug))
      const first = TestExecution.make()
      yield* Effect.exit(first.run(gw()))
      yield* Effect.exit(first.run(buggy))
      const replay = TestExecution.make({ seed: first.journal() })
      const error = yield* Effect.flip(replay.run(gw()))
      expect(error).toBeInstanceOf(GatewayTimeout)
      expect(error.retryable).toBe(true)
      expect(error.afterMs).toBe(7)
      const defect = defectOf(yield* Effect.exit(replay.run(buggy))) as Error
      expect(defect).toBeInstanceOf(Error)
      expect(defect.name).toBe("TypeError")
      expect(defect.message).toBe("cannot read x")
      expect(defect.stack).toBe(bug.stack)
      expect((defect.cause as Error).message).toBe("root cause")
    }))

  it.effect("an error outside the step's error schema is a defect of the step", () =>
    Effect.gen(function*() {
      let calls = 0
      const liar = Step.make({
        name: "liar",
        error: CardDeclined,
        retry: Retry.fixed({ delay: "1 second", attempts: 3 }),
        // Types keep this from happening; a cast (or an untyped library) does not.
        run: () => Effect.suspend(() => (calls++, Effect.fail(new RateLimited() as unknown as CardDeclined)))
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(Effect.exit(exec.run(liar())))
      yield* TestClock.adjust("1 hour")
      const defect = defectOf(yield* Fiber.join(fiber)) as Error
      expect(defect.message).toBe(
        `step "liar" failed with an undeclared error: {"_tag":"RateLimited","retryable":true}`
      )
      expect(defect.cause).toMatchObject({ name: "RateLimited" })
      expect(exec.completed().get("liar")).toMatchObject({ _tag: "Failure", cause: { _tag: "Die" } })
      // It is a defect, so it is not retried although it says retryable = true.
      expect(calls).toBe(1)
      expect(exec.attempts("liar")).toMatchObject([{
        attempt: 1,
        outcome: "defect",
        stopReason: "defect",
        error: { name: "Error", message: defect.message, cause: { name: "RateLimited" } }
      }])
    }))
})

describe("Step: retries", () => {
  it.effect("retries with backoff under the clock, recording each attempt with its delay", () =>
    Effect.gen(function*() {
      let calls = 0
      const flaky = Step.make({
        name: "flaky",
        success: Schema.Number,
        error: Schema.Union(CardDeclined, GatewayTimeout),
        retry: Retry.exponential({ base: "100 millis", attempts: 5 }),
        run: () =>
          Effect.suspend(
            () => (++calls < 3 ? Effect.fail(new GatewayTimeout({ afterMs: calls })) : Effect.succeed(calls))
          )
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(exec.run(flaky()))
      yield* TestClock.adjust("99 millis")
      expect(calls).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(calls).toBe(2)
      yield* TestClock.adjust("199 millis")
      expect(calls).toBe(2)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe(3)
      expect(exec.attempts("flaky")).toEqual([
        gatewayFailure(1, 0, 0, 100),
        gatewayFailure(2, 100, 100, 200),
        { attempt: 3, startedAt: 300, finishedAt: 300, outcome: "success" }
      ])
      expect(exec.events().map(summary)).toEqual([
        { _tag: "StepStarted", stepId: "flaky", attempt: 1 },
        { _tag: "StepRetrying", stepId: "flaky", attempt: 1, error: "GatewayTimeout", delayMillis: 100 },
        { _tag: "StepStarted", stepId: "flaky", attempt: 2 },
        { _tag: "StepRetrying", stepId: "flaky", attempt: 2, error: "GatewayTimeout", delayMillis: 200 },
        { _tag: "StepStarted", stepId: "flaky", attempt: 3 },
        { _tag: "StepSucceeded", stepId: "flaky", attempt: 3, durationMillis: 0 }
      ])
    }))

  it.effect("when retries run out, the step fails with its last typed error itself", () =>
    Effect.gen(function*() {
      let calls = 0
      const gw = Step.make({
        name: "gw",
        error: Schema.Union(CardDeclined, GatewayTimeout),
        retry: Retry.fixed({ delay: "10 millis", attempts: 3 }),
        run: () => Effect.suspend(() => Effect.fail(new GatewayTimeout({ afterMs: ++calls * 100 })))
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(Effect.flip(exec.run(gw())))
      yield* TestClock.adjust("1 second")
      const error: CardDeclined | GatewayTimeout = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(GatewayTimeout)
      expect(error).toEqual(new GatewayTimeout({ afterMs: 300 }))
      expect(calls).toBe(3)
      const attempts = exec.attempts("gw")
      expect(attempts.map((a) => [a.attempt, a.delayMillis, a.stopReason])).toEqual([
        [1, 10, undefined],
        [2, 10, undefined],
        [3, undefined, "attempts-exhausted"]
      ])
      expect(attempts.map((a) => a.error)).toEqual(
        [100, 200, 300].map((afterMs) => ({ _tag: "GatewayTimeout", afterMs }))
      )
      expect(exec.events().map(summary).at(-1)).toEqual({
        _tag: "StepFailed",
        stepId: "gw",
        attempt: 3,
        error: "GatewayTimeout",
        reason: "attempts-exhausted"
      })
    }))

  it.effect("a non-retryable error is not retried", () =>
    Effect.gen(function*() {
      let calls = 0
      const charge = Step.make({
        name: "charge",
        error: Schema.Union(CardDeclined, GatewayTimeout),
        retry: Retry.fixed({ delay: "1 second", attempts: 5 }),
        run: () => Effect.suspend(() => (calls++, Effect.fail(new CardDeclined({ code: "stolen" }))))
      })
      const exec = TestExecution.make()
      // No clock adjustment: nothing sleeps.
      const error = yield* Effect.flip(exec.run(charge()))
      expect(error).toEqual(new CardDeclined({ code: "stolen" }))
      expect(calls).toBe(1)
      expect(exec.attempts("charge")).toMatchObject([{ attempt: 1, outcome: "failure", stopReason: "not-retryable" }])
      expect(exec.events().map((e) => e._tag)).toEqual(["StepStarted", "StepFailed"])
    }))

  it.effect("a non-retryable error after retryable ones stops the retries", () =>
    Effect.gen(function*() {
      let calls = 0
      const charge = Step.make({
        name: "charge",
        error: Schema.Union(CardDeclined, GatewayTimeout),
        retry: Retry.fixed({ delay: "1 second", attempts: 5 }),
        run: () =>
          Effect.suspend((): Effect.Effect<never, CardDeclined | GatewayTimeout> =>
            ++calls < 3
              ? Effect.fail(new GatewayTimeout({ afterMs: calls }))
              : Effect.fail(new CardDeclined({ code: "x" }))
          )
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(Effect.flip(exec.run(charge())))
      yield* TestClock.adjust("1 hour")
      expect(yield* Fiber.join(fiber)).toEqual(new CardDeclined({ code: "x" }))
      expect(calls).toBe(3)
      expect(exec.attempts("charge").map((a) => a.stopReason)).toEqual([undefined, undefined, "not-retryable"])
    }))

  it.effect("retryOn overrides the default decision, by tag", () =>
    Effect.gen(function*() {
      let calls = 0
      const charge = Step.make({
        name: "charge",
        error: Schema.Union(CardDeclined, GatewayTimeout),
        retry: Retry.fixed({ delay: "1 second", attempts: 3, retryOn: ["CardDeclined"] }),
        run: () => Effect.suspend(() => (calls++, Effect.fail(new CardDeclined({ code: "later" }))))
      })
      const fiber = yield* Effect.fork(Effect.flip(TestExecution.make().run(charge())))
      yield* TestClock.adjust("1 hour")
      expect(yield* Fiber.join(fiber)).toBeInstanceOf(CardDeclined)
      expect(calls).toBe(3)
    }))

  it.effect("a defect is not retried by default, and keeps its name and message", () =>
    Effect.gen(function*() {
      let calls = 0
      const buggy = Step.make({
        name: "buggy",
        retry: Retry.fixed({ delay: "10 millis", attempts: 3 }),
        run: () =>
          Effect.sync((): number => {
            calls++
            throw new TypeError("x is undefined")
          })
      })
      const exec = TestExecution.make()
      const defect = defectOf(yield* Effect.exit(exec.run(buggy()))) as Error
      expect(calls).toBe(1)
      expect(defect.name).toBe("TypeError")
      expect(defect.message).toBe("x is undefined")
      const [attempt] = exec.attempts("buggy")
      expect(attempt).toMatchObject({ attempt: 1, outcome: "defect", stopReason: "defect" })
      expect(attempt.error).toMatchObject({ name: "TypeError", message: "x is undefined" })
      expect(exec.events().map(summary).at(-1)).toMatchObject({
        _tag: "StepFailed",
        error: "TypeError",
        reason: "defect"
      })
    }))

  it.effect("a defect is retried when the policy says retryDefects", () =>
    Effect.gen(function*() {
      let calls = 0
      const buggy = Step.make({
        name: "buggy",
        retry: Retry.fixed({ delay: "10 millis", attempts: 3, retryDefects: true }),
        run: () => Effect.suspend(() => Effect.die(new Error(`boom ${++calls}`)))
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(Effect.exit(exec.run(buggy())))
      yield* TestClock.adjust("1 second")
      const defect = defectOf(yield* Fiber.join(fiber)) as Error
      expect(calls).toBe(3)
      expect(defect.message).toBe("boom 3")
      expect(exec.attempts("buggy").map((a) => [a.outcome, a.delayMillis, a.stopReason])).toEqual([
        ["defect", 10, undefined],
        ["defect", 10, undefined],
        ["defect", undefined, "attempts-exhausted"]
      ])
    }))

  it.effect("a zero delay retries without waiting on the clock", () =>
    Effect.gen(function*() {
      let calls = 0
      const quick = Step.make({
        name: "quick",
        success: Schema.Number,
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: 0, attempts: 4 }),
        run: () =>
          Effect.suspend(() => (++calls < 4 ? Effect.fail(new GatewayTimeout({ afterMs: 0 })) : Effect.succeed(calls)))
      })
      const clock = yield* Effect.clock
      let sleeps = 0
      const counting: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis(),
        unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos(),
        currentTimeMillis: clock.currentTimeMillis,
        currentTimeNanos: clock.currentTimeNanos,
        sleep: (duration) => Effect.suspend(() => (sleeps++, clock.sleep(duration)))
      }
      const exec = TestExecution.make()
      expect(yield* Effect.withClock(exec.run(quick()), counting)).toBe(4)
      expect(exec.attempts("quick").map((a) => a.delayMillis)).toEqual([0, 0, 0, undefined])
      expect(sleeps).toBe(0)

      // The same count sees the sleeps of a step that waits.
      calls = 0
      const waiting = Step.run(
        "waiting",
        Effect.suspend(() => (++calls < 3 ? Effect.fail(new GatewayTimeout({ afterMs: 0 })) : Effect.succeed(calls))),
        {
          error: GatewayTimeout,
          retry: Retry.fixed({ delay: "5 millis", attempts: 3 })
        }
      )
      const fiber = yield* Effect.fork(Effect.withClock(TestExecution.make().run(waiting), counting))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toBe(3)
      expect(sleeps).toBe(2)
    }))

  it.effect("jitter draws from the Random service: the recorded delays stay within their bounds", () =>
    Effect.gen(function*() {
      const gw = Step.make({
        name: "gw",
        error: GatewayTimeout,
        retry: Retry.exponential({ base: "100 millis", attempts: 4, jitter: 0.5 }),
        run: () => Effect.fail(new GatewayTimeout({ afterMs: 1 }))
      })
      const delays = (random: Random.Random) =>
        Effect.gen(function*() {
          const exec = TestExecution.make()
          const fiber = yield* Effect.fork(Effect.withRandom(Effect.exit(exec.run(gw())), random))
          yield* TestClock.adjust("1 hour")
          yield* Fiber.join(fiber)
          return exec.attempts("gw").map((a) => a.delayMillis)
        })
      expect(yield* delays(Random.fixed([0]))).toEqual([50, 100, 200, undefined])
      expect(yield* delays(Random.fixed([0.999999]))).toEqual([150, 300, 600, undefined])
      const seeded = yield* delays(Random.make("weft"))
      seeded.slice(0, 3).forEach((d, i) => {
        expect(d).toBeGreaterThanOrEqual(50 * 2 ** i)
        expect(d).toBeLessThanOrEqual(150 * 2 ** i)
      })
    }))
})

describe("Step: timeouts and interruption", () => {
  it.effect("an attempt past its timeout fails with StepTimeout and is retried", () =>
    Effect.gen(function*() {
      let calls = 0
      const slow = Step.make({
        name: "slow",
        success: Schema.String,
        timeout: "1 second",
        retry: Retry.fixed({ delay: "100 millis", attempts: 3 }),
        run: () => Effect.suspend(() => (++calls === 1 ? Effect.never : Effect.succeed("done")))
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(exec.run(slow()))
      yield* TestClock.adjust("999 millis")
      expect(exec.attempts("slow")).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(exec.attempts("slow")).toEqual([{
        attempt: 1,
        startedAt: 0,
        finishedAt: 1000,
        outcome: "failure",
        error: { _tag: "StepTimeout", step: "slow", attempt: 1, timeoutMillis: 1000 },
        delayMillis: 100
      }])
      yield* TestClock.adjust("100 millis")
      expect(yield* Fiber.join(fiber)).toBe("done")
      expect(calls).toBe(2)
    }))

  it.effect("a step that always times out fails with the last StepTimeout, with its fields", () =>
    Effect.gen(function*() {
      const hang = Step.make({
        name: "hang",
        timeout: "50 millis",
        retry: Retry.fixed({ delay: "10 millis", attempts: 2 }),
        run: () => Effect.never
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(Effect.flip(exec.run(hang())))
      yield* TestClock.adjust("1 second")
      const error: Failure.StepTimeout = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(Failure.StepTimeout)
      expect(error).toMatchObject({ step: "hang", attempt: 2, timeoutMillis: 50 })
      expect(error.message).toBe(`step "hang" attempt 2 timed out after 50ms`)
      expect(exec.attempts("hang").map((a) => [a.startedAt, a.finishedAt, a.stopReason])).toEqual([
        [0, 50, undefined],
        [60, 110, "attempts-exhausted"]
      ])
    }))

  it.effect("a StepTimeout is not retried when the policy aborts on it", () =>
    Effect.gen(function*() {
      let calls = 0
      const hang = Step.make({
        name: "hang",
        timeout: "50 millis",
        retry: Retry.fixed({ delay: "10 millis", attempts: 5, abortOn: ["StepTimeout"] }),
        run: () => Effect.suspend(() => (calls++, Effect.never))
      })
      const fiber = yield* Effect.fork(Effect.flip(TestExecution.make().run(hang())))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toBeInstanceOf(Failure.StepTimeout)
      expect(calls).toBe(1)
    }))

  it.effect("an interrupted attempt is not recorded, and runs again on resume", () =>
    Effect.gen(function*() {
      let calls = 0
      const wait = Step.make({
        name: "wait",
        success: Schema.Number,
        run: () => Effect.suspend(() => (++calls === 1 ? Effect.never : Effect.succeed(calls)))
      })
      const first = TestExecution.make()
      const fiber = yield* Effect.fork(first.run(wait()))
      yield* TestClock.adjust("1 minute")
      expect(calls).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(first.attempts("wait")).toEqual([])
      expect(first.completed().size).toBe(0)
      expect(first.recordedAttempts()).toBe(0)
      expect(first.events().map((e) => e._tag)).toEqual(["StepStarted"])

      const resumed = TestExecution.make({ seed: first.journal() })
      expect(yield* resumed.run(wait())).toBe(2)
      expect(resumed.attempts("wait")).toMatchObject([{ attempt: 1, outcome: "success" }])
    }))

  it.effect("an attempt that ends interrupted on its own (a joined fiber was interrupted) is not recorded", () =>
    Effect.gen(function*() {
      let calls = 0
      const joins = Step.make({
        name: "joins",
        success: Schema.Number,
        retry: Retry.fixed({ delay: 0, attempts: 3, retryDefects: true }),
        run: () =>
          Effect.gen(function*() {
            calls++
            const child = yield* Effect.fork(Effect.never)
            yield* Fiber.interrupt(child)
            return yield* Fiber.join(child)
          })
      })
      const exec = TestExecution.make()
      const exit = yield* Effect.exit(exec.run(joins()))
      expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)
      expect(calls).toBe(1)
      expect(exec.attempts("joins")).toEqual([])
      expect(exec.completed().size).toBe(0)
      expect(exec.events().map((e) => e._tag)).toEqual(["StepStarted"])
    }))
})

describe("Step: resuming after a crash", () => {
  const payment = (calls: { n: number }) =>
    Step.make({
      name: "pay",
      error: GatewayTimeout,
      retry: Retry.fixed({ delay: "1 second", attempts: 3 }),
      run: () => Effect.suspend(() => Effect.fail(new GatewayTimeout({ afterMs: ++calls.n })))
    })

  it.effect("a crash in the middle of a backoff: the resumed step waits only the remaining time", () =>
    Effect.gen(function*() {
      const calls = { n: 0 }
      const pay = payment(calls)
      const first = TestExecution.make()
      const crashedFiber = yield* Effect.fork(first.run(pay()))
      yield* TestClock.adjust("400 millis")
      yield* Fiber.interrupt(crashedFiber)
      expect(calls.n).toBe(1)
      expect(first.attempts("pay")).toEqual([gatewayFailure(1, 0, 0, 1000)])

      const resumed = TestExecution.make({ seed: first.journal() })
      const fiber = yield* Effect.fork(Effect.flip(resumed.run(pay())))
      yield* TestClock.adjust("599 millis")
      expect(calls.n).toBe(1)
      expect(resumed.events()).toEqual([{ _tag: "StepWaiting", stepId: "pay", attempt: 2, untilMillis: 1000 }])
      yield* TestClock.adjust("1 millis")
      expect(calls.n).toBe(2)
      yield* TestClock.adjust("1 second")
      // The attempt count continues: 3 attempts in all, not 3 more.
      expect(yield* Fiber.join(fiber)).toEqual(new GatewayTimeout({ afterMs: 3 }))
      expect(calls.n).toBe(3)
      expect(resumed.attempts("pay").map((a) => [a.attempt, a.startedAt, a.stopReason])).toEqual([
        [1, 0, undefined],
        [2, 1000, undefined],
        [3, 2000, "attempts-exhausted"]
      ])
      expect(resumed.events().filter((e) => e._tag === "StepStarted")).toEqual([
        { _tag: "StepStarted", stepId: "pay", attempt: 2 },
        { _tag: "StepStarted", stepId: "pay", attempt: 3 }
      ])
    }))

  it.effect("a resumed exponential backoff continues from the recorded attempts", () =>
    Effect.gen(function*() {
      let calls = 0
      const step = Step.make({
        name: "sync",
        success: Schema.Number,
        error: GatewayTimeout,
        retry: Retry.exponential({ base: "100 millis", attempts: 4 }),
        run: () =>
          Effect.suspend(() => (++calls < 2 ? Effect.fail(new GatewayTimeout({ afterMs: 3 })) : Effect.succeed(4)))
      })
      // Attempt 2 ended at 200 and chose 200ms: the backoff ends at 400, the run resumes at 300.
      yield* TestClock.adjust("300 millis")
      const exec = TestExecution.make({
        seed: [crashed("sync", [gatewayFailure(1, 0, 50, 100), gatewayFailure(2, 150, 200, 200)])]
      })
      const fiber = yield* Effect.fork(exec.run(step()))
      yield* TestClock.adjust("99 millis")
      expect(calls).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect(calls).toBe(1)
      // Attempt 3 failed: its delay is the third of the backoff (400ms), not the first.
      expect(exec.events()[0]).toEqual({ _tag: "StepWaiting", stepId: "sync", attempt: 3, untilMillis: 400 })
      expect(exec.attempts("sync").at(-1)).toMatchObject({ attempt: 3, startedAt: 400, delayMillis: 400 })
      yield* TestClock.adjust("400 millis")
      expect(yield* Fiber.join(fiber)).toBe(4)
      expect(exec.attempts("sync").at(-1)).toEqual({ attempt: 4, startedAt: 800, finishedAt: 800, outcome: "success" })
    }))

  it.effect("a backoff that ended while the run was down does not wait at all", () =>
    Effect.gen(function*() {
      const calls = { n: 0 }
      yield* TestClock.adjust("5 seconds")
      const exec = TestExecution.make({ seed: [crashed("pay", [gatewayFailure(1, 0, 0, 1000)])] })
      const fiber = yield* Effect.fork(Effect.flip(exec.run(payment(calls)())))
      yield* TestClock.adjust("0 millis")
      expect(calls.n).toBe(1)
      expect(exec.events().some((e) => e._tag === "StepWaiting")).toBe(false)
      expect(exec.attempts("pay")[1]).toMatchObject({ attempt: 2, startedAt: 5000 })
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(calls.n).toBe(2)
    }))

  it.effect("within is measured from the first attempt before the crash", () =>
    Effect.gen(function*() {
      let calls = 0
      const step = Step.make({
        name: "pay",
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: "200 millis", attempts: 10, within: "1 second" }),
        run: () => Effect.suspend(() => (calls++, Effect.fail(new GatewayTimeout({ afterMs: 1 }))))
      })
      yield* TestClock.adjust("900 millis")
      const exec = TestExecution.make({ seed: [crashed("pay", [gatewayFailure(1, 0, 0, 200)])] })
      const error = yield* Effect.flip(exec.run(step()))
      expect(error).toBeInstanceOf(GatewayTimeout)
      expect(calls).toBe(1)
      expect(exec.attempts("pay").at(-1)).toMatchObject({ attempt: 2, startedAt: 900, stopReason: "within-exceeded" })
    }))

  it.effect("a Schedule policy continues its schedule after a crash", () =>
    Effect.gen(function*() {
      const make = (calls: { n: number }) =>
        Step.make({
          name: "poll",
          error: GatewayTimeout,
          retry: Retry.schedule(Schedule.exponential("100 millis"), { attempts: 5 }),
          run: () => Effect.suspend(() => Effect.fail(new GatewayTimeout({ afterMs: ++calls.n })))
        })
      // Without a crash: 100, 200, 400, 800.
      const straight = TestExecution.make({ runId: "straight" })
      const all = yield* Effect.fork(Effect.flip(straight.run(make({ n: 0 })())))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(all)
      expect(straight.attempts("poll").map((a) => a.delayMillis)).toEqual([100, 200, 400, 800, undefined])

      // With a crash after two attempts, the delays go on where they were.
      const start = yield* TestClock.currentTimeMillis
      const calls = { n: 0 }
      const first = TestExecution.make()
      const crashedFiber = yield* Effect.fork(first.run(make(calls)()))
      yield* TestClock.adjust("150 millis")
      yield* Fiber.interrupt(crashedFiber)
      expect(first.attempts("poll").map((a) => a.delayMillis)).toEqual([100, 200])
      const resumed = TestExecution.make({ seed: first.journal() })
      const fiber = yield* Effect.fork(Effect.flip(resumed.run(make(calls)())))
      yield* TestClock.adjust("1 hour")
      expect(yield* Fiber.join(fiber)).toEqual(new GatewayTimeout({ afterMs: 5 }))
      expect(resumed.attempts("poll").map((a) => [a.attempt, a.startedAt - start, a.delayMillis])).toEqual([
        [1, 0, 100],
        [2, 100, 200],
        [3, 300, 400],
        [4, 700, 800],
        [5, 1500, undefined]
      ])
    }))
})

describe("Step.context", () => {
  it.effect("gives runId, stepId, attempt, and an idempotencyKey stable across attempts and crashes", () =>
    Effect.gen(function*() {
      const infos: Array<Step.Info> = []
      const charge = Step.make({
        name: "charge",
        success: Schema.String,
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: "1 second", attempts: 5 }),
        run: () =>
          Effect.gen(function*() {
            const info = yield* Step.context
            infos.push(info)
            if (info.attempt < 3) return yield* Effect.fail(new GatewayTimeout({ afterMs: info.attempt }))
            return info.idempotencyKey
          })
      })
      const first = TestExecution.make({ runId: "run-42", workflow: "checkout" })
      const crashedFiber = yield* Effect.fork(first.run(charge()))
      yield* TestClock.adjust("1500 millis")
      yield* Fiber.interrupt(crashedFiber)
      expect(infos.map((i) => i.attempt)).toEqual([1, 2])

      const resumed = TestExecution.make({ runId: "run-42", workflow: "checkout", seed: first.journal() })
      const fiber = yield* Effect.fork(resumed.run(charge()))
      yield* TestClock.adjust("1 second")
      const key = yield* Fiber.join(fiber)
      expect(infos.map((i) => i.attempt)).toEqual([1, 2, 3])
      expect(infos.map((i) => [i.runId, i.workflow, i.stepId])).toEqual([
        ["run-42", "checkout", "charge"],
        ["run-42", "checkout", "charge"],
        ["run-42", "checkout", "charge"]
      ])
      expect(new Set(infos.map((i) => i.idempotencyKey))).toEqual(new Set([key]))
      expect(key).toContain("run-42")

      // Another occurrence of the step, or another run, has another key.
      const other = TestExecution.make({ runId: "run-43" })
      const twice = yield* Effect.fork(other.run(Effect.all([charge(), charge()])))
      yield* TestClock.adjust("1 minute")
      const [k1, k2] = yield* Fiber.join(twice)
      expect(new Set([key, k1, k2]).size).toBe(3)
      expect(infos.slice(-3).map((i) => i.stepId)).toEqual(["charge#2", "charge#2", "charge#2"])
    }))
})

describe("Step identity", () => {
  it.effect("step ids are the name numbered by occurrence", () =>
    Effect.gen(function*() {
      const a = Step.make({ name: "a", run: () => Effect.succeed(1) })
      const b = Step.make({ name: "b", run: () => Effect.succeed(2) })
      const exec = TestExecution.make()
      yield* exec.run(Effect.all([a(), b(), a(), a(), b()]))
      expect(exec.entered()).toEqual(["a", "b", "a#2", "a#3", "b#2"])
      expect(exec.journal().map((e) => [e.position, e.stepId])).toEqual([
        [0, "a"],
        [1, "b"],
        [2, "a#2"],
        [3, "a#3"],
        [4, "b#2"]
      ])
    }))

  it("names with /, #, [ or ], starting with $, or empty are rejected when a step is made", () => {
    expect(() => Step.make({ name: "ship/pack", run: () => Effect.void })).toThrow(TypeError)
    expect(() => Step.make({ name: "pack#2", run: () => Effect.void })).toThrow(`must not contain "/", "#", "[" or "]"`)
    expect(() => Step.make({ name: "ship[1]", run: () => Effect.void })).toThrow(`they build step paths`)
    expect(() => Step.make({ name: "", run: () => Effect.void })).toThrow("must not be empty")
    expect(() => Step.make({ name: "$now", run: () => Effect.void })).toThrow(`must not start with "$"`)
    expect(Step.make({ name: "pack-2.v1 (eu)", run: () => Effect.void }).stepName).toBe("pack-2.v1 (eu)")
  })

  it.effect("Step.run with a bad name dies before entering the journal", () =>
    Effect.gen(function*() {
      const exec = TestExecution.make()
      const exit = yield* Effect.exit(exec.run(Step.run("a/b", Effect.succeed(1))))
      expect(defectOf(exit)).toBeInstanceOf(TypeError)
      expect((defectOf(exit) as Error).message).toContain(`"a/b"`)
      expect(exec.position()).toBe(0)
    }))

  it.effect("a journal with another step at the same position fails with NonDeterminism", () =>
    Effect.gen(function*() {
      const executions: Array<string> = []
      const step = (name: string) => Step.run(name, Effect.sync(() => void executions.push(name)))
      const first = TestExecution.make({ runId: "run-7" })
      yield* first.run(Effect.all([step("reserve"), step("charge")]))

      const changed = TestExecution.make({ runId: "run-7", seed: first.journal() })
      const exit = yield* Effect.exit(changed.run(Effect.all([step("reserve"), step("refund")])))
      const defect = defectOf(exit)
      expect(defect).toBeInstanceOf(Failure.NonDeterminism)
      expect(defect).toMatchObject({ runId: "run-7", position: 1, expected: "charge", found: "refund" })
      expect((defect as Error).message).toContain(`the journal has step "charge" but the workflow now runs "refund"`)
      expect(executions).toEqual(["reserve", "charge"])

      // Occurrence numbers count: a second "reserve" where the journal has "charge".
      const more = TestExecution.make({ seed: first.journal() })
      const exit2 = yield* Effect.exit(more.run(Effect.all([step("reserve"), step("reserve")])))
      expect(defectOf(exit2)).toMatchObject({ position: 1, expected: "charge", found: "reserve#2" })

      // A durable primitive where the journal has a step.
      const now = yield* Effect.exit(TestExecution.make({ seed: first.journal() }).run(Workflow.now))
      expect(defectOf(now)).toMatchObject({ position: 0, expected: "reserve", found: "$now" })
      expect(executions).toEqual(["reserve", "charge"])
    }))
})

describe("Workflow durable primitives", () => {
  const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

  it.effect("now, random and uuid are journaled: a replay returns the first values", () =>
    Effect.gen(function*() {
      const body = Effect.all([Workflow.now, Workflow.random, Workflow.uuid, Workflow.now, Workflow.uuid])
      yield* TestClock.adjust("5 seconds")
      const first = TestExecution.make()
      const values = yield* Effect.withRandom(first.run(body), Random.make("first"))
      const [t1, r, u1, t2, u2] = values
      expect(t1).toBe(5000)
      expect(t2).toBe(5000)
      expect(r).toBeGreaterThanOrEqual(0)
      expect(r).toBeLessThan(1)
      expect(u1).toMatch(uuidV4)
      expect(u2).toMatch(uuidV4)
      expect(u1).not.toBe(u2)
      expect(first.entered()).toEqual(["$now", "$random", "$uuid", "$now#2", "$uuid#2"])
      expect(first.journal().map((e) => e.kind)).toEqual(["now", "random", "uuid", "now", "uuid"])

      yield* TestClock.adjust("1 hour")
      const replay = TestExecution.make({ seed: first.journal() })
      expect(yield* Effect.withRandom(replay.run(body), Random.make("second"))).toEqual(values)
      expect(replay.completions()).toBe(0)

      // Not journaled, the same body sees other values now.
      const fresh = yield* Effect.withRandom(TestExecution.make().run(body), Random.make("second"))
      expect(fresh[0]).toBe(5000 + 3_600_000)
      expect(fresh[1]).not.toBe(r)
      expect(fresh[2]).not.toBe(u1)
    }))
})

describe("Step resources", () => {
  // Each attempt has its own scope: acquired on entry, released when the attempt ends however it ends.
  const tracked = () => {
    const events: Array<string> = []
    let n = 0
    const resource = Effect.acquireRelease(
      Effect.sync(() => {
        n++
        events.push(`open ${n}`)
        return n
      }),
      (id, exit) => Effect.sync(() => void events.push(`close ${id} ${exit._tag}`))
    )
    return { events, resource }
  }

  it.effect("a resource acquired in a step is released after a success, after each failed attempt, and on a timeout", () =>
    Effect.gen(function*() {
      const exec = TestExecution.make()
      const ok = tracked()
      yield* exec.run(Step.run("uses", Effect.map(ok.resource, (id) => id * 10)))
      expect(ok.events).toEqual(["open 1", "close 1 Success"])

      const failing = tracked()
      const flaky = Step.make({
        name: "flaky",
        success: Schema.Number,
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: "1 second", attempts: 2 }),
        run: () => Effect.flatMap(failing.resource, (id) => Effect.fail(new GatewayTimeout({ afterMs: id })))
      })
      const fiber = yield* Effect.fork(exec.run(flaky()))
      yield* TestClock.adjust("1 second")
      yield* Fiber.await(fiber)
      expect(failing.events).toEqual(["open 1", "close 1 Failure", "open 2", "close 2 Failure"])

      const slow = tracked()
      const timed = Step.make({
        name: "timed",
        success: Schema.Number,
        retry: Retry.none,
        timeout: "100 millis",
        run: () => Effect.zipRight(slow.resource, Effect.as(Effect.sleep("1 minute"), 1))
      })
      const timing = yield* Effect.fork(exec.run(timed()))
      yield* TestClock.adjust("100 millis")
      const exit = yield* Fiber.await(timing)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(slow.events).toEqual(["open 1", "close 1 Failure"])
    }))

  it.effect("a resource acquired in a step is released when the step is interrupted", () =>
    Effect.gen(function*() {
      const exec = TestExecution.make()
      const held = tracked()
      const fiber = yield* Effect.fork(
        exec.run(Step.run("holds", Effect.zipRight(held.resource, Effect.never)))
      )
      yield* TestClock.adjust("1 millis")
      yield* Fiber.interrupt(fiber)
      expect(held.events).toEqual(["open 1", "close 1 Failure"])
    }))
})

describe("Step: circuit breakers", () => {
  /** A payment gateway that fails with GatewayTimeout while `down`, counting the calls that reach it. */
  const gatewayDependency = () => {
    const state = { down: true, calls: 0 }
    const charge = Effect.suspend(() => {
      state.calls++
      return state.down
        ? Effect.fail(new GatewayTimeout({ afterMs: state.calls }))
        : Effect.succeed(`ch_${state.calls}`)
    })
    return { state, charge }
  }

  it.effect("a dependency down: refused attempts are recorded, do not call it, wait retryAfter, and the step recovers", () =>
    Effect.gen(function*() {
      const breaker = CircuitBreaker.make({
        name: "step-gateway",
        failureThreshold: 2,
        window: "1 minute",
        cooldown: "10 seconds"
      })
      const gateway = gatewayDependency()
      const charge = Step.make({
        name: "charge",
        success: Schema.String,
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: "100 millis", attempts: 6 }),
        circuitBreaker: breaker,
        run: () => gateway.charge
      })
      const exec = TestExecution.make()
      const fiber = yield* Effect.fork(exec.run(charge()))
      // t=0 and t=100 fail and trip the breaker; t=200 is refused and waits the 9.9 s left; the trial
      // at t=10100 fails and reopens it; t=10200 is refused; the gateway is back for the trial at 20100.
      yield* TestClock.adjust("15 seconds")
      expect(gateway.state.calls).toBe(3)
      gateway.state.down = false
      yield* TestClock.adjust("5100 millis")
      expect(yield* Fiber.join(fiber)).toBe("ch_4")
      expect(gateway.state.calls).toBe(4)

      const open = (retryAfter: number) => ({ _tag: "CircuitOpen", breaker: "step-gateway", retryAfter })
      const timeout = (afterMs: number) => ({ _tag: "GatewayTimeout", afterMs })
      expect(exec.attempts("charge").map((a) => [a.attempt, a.startedAt, a.outcome, a.error, a.delayMillis])).toEqual([
        [1, 0, "failure", timeout(1), 100],
        [2, 100, "failure", timeout(2), 100],
        [3, 200, "failure", open(9_900), 9_900],
        [4, 10_100, "failure", timeout(3), 100],
        [5, 10_200, "failure", open(9_900), 9_900],
        [6, 20_100, "success", undefined, undefined]
      ])
      expect(TestExecution.eventsOf(exec, "StepRetrying").map((e) => Failure.tagOf(e.error))).toEqual([
        "GatewayTimeout",
        "GatewayTimeout",
        "CircuitOpen",
        "GatewayTimeout",
        "CircuitOpen"
      ])
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "closed", failures: 0 })
    }))

  it.effect("one breaker across steps: a step refused without running fails with CircuitOpen once its retries run out", () =>
    Effect.gen(function*() {
      const breaker = CircuitBreaker.make({ name: "shared-across-steps", failureThreshold: 1, cooldown: "1 minute" })
      const gateway = gatewayDependency()
      const charge = Step.make({
        name: "charge",
        error: GatewayTimeout,
        retry: Retry.none,
        circuitBreaker: breaker,
        run: () => gateway.charge
      })
      const refund = Step.make({
        name: "refund",
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: "1 second", attempts: 2, within: "30 seconds" }),
        circuitBreaker: breaker,
        run: () => gateway.charge
      })
      const exec = TestExecution.make()
      expect(yield* Effect.flip(exec.run(charge()))).toBeInstanceOf(GatewayTimeout)
      // The second attempt would wait the 60 s the breaker asks: past `within`, so it stops now.
      const error = yield* Effect.flip(exec.run(refund()))
      expect(error).toBeInstanceOf(Failure.CircuitOpen)
      expect(error).toEqual(new Failure.CircuitOpen({ breaker: "shared-across-steps", retryAfter: 60_000 }))
      expect(gateway.state.calls).toBe(1)
      expect(exec.attempts("refund")).toMatchObject([{ attempt: 1, outcome: "failure", stopReason: "within-exceeded" }])
      // Journaled as the built-in failure it is, and replayed as the same class.
      expect(exec.completed().get("refund")).toEqual({
        _tag: "Failure",
        cause: { _tag: "Fail", error: { _tag: "CircuitOpen", breaker: "shared-across-steps", retryAfter: 60_000 } }
      })
      const replayed = yield* Effect.flip(
        TestExecution.make({ seed: exec.journal() }).run(Effect.zipRight(Effect.exit(charge()), refund()))
      )
      expect(replayed).toBeInstanceOf(Failure.CircuitOpen)
      expect(gateway.state.calls).toBe(1)
    }))

  it.effect("the breaker wraps the attempt's timeout: a StepTimeout counts as a failure", () =>
    Effect.gen(function*() {
      const breaker = CircuitBreaker.make({ name: "slow-dependency", failureThreshold: 1, cooldown: "1 minute" })
      let calls = 0
      const report = Step.make({
        name: "report",
        timeout: "1 second",
        retry: Retry.fixed({ delay: "10 millis", attempts: 2 }),
        circuitBreaker: breaker,
        run: () => Effect.suspend(() => (calls++, Effect.never))
      })
      const fiber = yield* Effect.fork(Effect.flip(TestExecution.make().run(report())))
      yield* TestClock.adjust("1 second")
      expect(yield* CircuitBreaker.state(breaker)).toMatchObject({ state: "open", failures: 1 })
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      expect(error).toEqual(new Failure.CircuitOpen({ breaker: "slow-dependency", retryAfter: 59_990 }))
      expect(calls).toBe(1)
    }))

  it.effect("a resumed step refused before the crash waits what is left of retryAfter, then tries again", () =>
    Effect.gen(function*() {
      const breaker = CircuitBreaker.make({ name: "resumed", failureThreshold: 1, cooldown: "10 seconds" })
      const gateway = gatewayDependency()
      gateway.state.down = false
      const charge = Step.make({
        name: "charge",
        success: Schema.String,
        error: GatewayTimeout,
        retry: Retry.fixed({ delay: "100 millis", attempts: 3 }),
        circuitBreaker: breaker,
        run: () => gateway.charge
      })
      const seed = [crashed("charge", [{
        attempt: 1,
        startedAt: 0,
        finishedAt: 0,
        outcome: "failure",
        error: { _tag: "CircuitOpen", breaker: "resumed", retryAfter: 5_000 },
        delayMillis: 5_000
      }])]
      const exec = TestExecution.make({ seed })
      const fiber = yield* Effect.fork(exec.run(charge()))
      yield* TestClock.adjust("4999 millis")
      expect(gateway.state.calls).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe("ch_1")
      expect(exec.attempts("charge").map((a) => a.attempt)).toEqual([1, 2])
    }))
})
