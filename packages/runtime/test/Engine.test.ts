/**
 * The engine over real stores (Memory and a SQLite file): replay without re-execution, the journal
 * of attempts, NonDeterminism, idempotent starts, typed results through the client, interruption
 * that leaves the run resumable, and fencing when another worker takes the run.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Retry, Step, Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Client from "../src/Client.js"
import * as Engine from "../src/Engine.js"
import * as Errors from "../src/Errors.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import * as SqliteStore from "../src/SqliteStore.js"
import { Store } from "../src/Store.js"

class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}
class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { n: Schema.Number }) {
  readonly retryable = true
}

const stores = {
  memory: () => MemoryStore.layer,
  sqlite: () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-engine-"))
    return SqliteStore.layer({ filename: Path.join(dir, "weft.db") })
  }
}

const makeCounter = () => {
  const counts = new Map<string, number>()
  return {
    counts,
    hit: (name: string) => Effect.sync(() => counts.set(name, (counts.get(name) ?? 0) + 1))
  }
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Engine on ${storeName}`, () => {
    it.effect("executes a workflow, journals each step, and returns the decoded output", () =>
      provide(Effect.gen(function*() {
        const counter = makeCounter()
        const add = Step.make({
          name: "add",
          success: Schema.Number,
          run: (a: number, b: number) => Effect.as(counter.hit("add"), a + b)
        })
        const wf = Workflow.make({
          name: "sum",
          input: Schema.Struct({ xs: Schema.Array(Schema.Number) }),
          success: Schema.Struct({ total: Schema.Number, at: Schema.DateFromNumber }),
          run: ({ xs }) =>
            Effect.gen(function*() {
              let total = 0
              for (const x of xs) total = yield* add(total, x)
              const at = yield* Workflow.now
              return { total, at: new Date(at) }
            })
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, { xs: [1, 2, 3] })
        const executed = yield* Runner.claimAndExecute(wf, handle.runId)
        expect(executed.outcome.status).toBe("succeeded")
        const result = yield* client.result(handle)
        expect(result.total).toBe(6)
        expect(result.at).toBeInstanceOf(Date)
        expect(counter.counts.get("add")).toBe(3)
        const history = yield* client.history(handle.runId)
        expect(history.journal.steps.map((s) => s.stepId)).toEqual(["add", "add#2", "add#3", "$now"])
        expect(history.run.status).toBe("succeeded")
        expect(history.run.leaseOwner).toBeUndefined()
      })))

    it.effect("a resumed run does not execute completed steps again", () =>
      provide(Effect.gen(function*() {
        const counter = makeCounter()
        let failSecond = true
        const first = Step.make({
          name: "first",
          success: Schema.String,
          run: () => Effect.as(counter.hit("first"), "a")
        })
        const second = Step.make({
          name: "second",
          success: Schema.String,
          run: () => Effect.flatMap(counter.hit("second"), () => failSecond ? Effect.interrupt : Effect.succeed("b"))
        })
        const wf = Workflow.make({
          name: "two-steps",
          input: Schema.Null,
          success: Schema.String,
          run: () => Effect.zipWith(first(), second(), (a, b) => a + b)
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, null)
        const interrupted = yield* Effect.exit(Runner.claimAndExecute(wf, handle.runId))
        expect(Exit.isInterrupted(interrupted)).toBe(true)
        const afterInterrupt = yield* client.status(handle.runId)
        expect(afterInterrupt.status).toBe("queued")
        expect(afterInterrupt.reason).toMatch(/interrupted/)
        failSecond = false
        yield* Runner.claimAndExecute(wf, handle.runId)
        expect(yield* client.result(handle)).toBe("ab")
        expect(counter.counts.get("first")).toBe(1)
        expect(counter.counts.get("second")).toBe(2)
        const run = yield* client.status(handle.runId)
        expect(run.recoveries).toBe(1)
      })))

    it.effect("records every attempt with its error and delay, and fails with the last typed error", () =>
      provide(Effect.gen(function*() {
        const flaky = Step.make({
          name: "flaky",
          success: Schema.Number,
          error: Schema.Union(Flaky, CardDeclined),
          retry: Retry.fixed({ delay: "1 second", attempts: 5 }),
          run: () =>
            Effect.gen(function*() {
              const { attempt } = yield* Step.context
              if (attempt < 3) return yield* new Flaky({ n: attempt })
              return yield* new CardDeclined({ code: "nope" })
            })
        })
        const wf = Workflow.make({
          name: "flaky-wf",
          input: Schema.Null,
          success: Schema.Number,
          error: Schema.Union(Flaky, CardDeclined),
          run: () => flaky()
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, null)
        const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, handle.runId))
        yield* TestClock.adjust("1 second")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        const exit = yield* Effect.exit(client.result(handle))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = Cause.failureOption(exit.cause)
          expect(Option.isSome(error) && error.value instanceof CardDeclined).toBe(true)
          expect(Option.getOrThrow(error)).toMatchObject({ code: "nope" })
        }
        const { journal } = yield* client.history(handle.runId)
        expect(journal.attempts.map((a) => [a.attempt, a.outcome, a.delayMillis, (a.error as { _tag: string })._tag]))
          .toEqual([[1, "failure", 1000, "Flaky"], [2, "failure", 1000, "Flaky"], [
            3,
            "failure",
            undefined,
            "CardDeclined"
          ]])
        expect(journal.attempts[2].stopReason).toBe("not-retryable")
        expect(journal.steps[0].failed).toBe(true)
      })))

    it.effect("a defect is stored with its name, message, stack and cause chain", () =>
      provide(Effect.gen(function*() {
        const wf = Workflow.make({
          name: "buggy",
          input: Schema.Null,
          success: Schema.Null,
          run: () =>
            Step.run(
              "boom",
              Effect.sync(() => {
                throw new TypeError("bad value", { cause: new Error("root cause") })
              })
            )
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, null)
        yield* Runner.claimAndExecute(wf, handle.runId)
        const exit = yield* Effect.exit(client.result(handle))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const defect = Option.getOrThrow(Cause.dieOption(exit.cause)) as Error
          expect(defect.name).toBe("TypeError")
          expect(defect.message).toBe("bad value")
          expect(defect.stack).toMatch(/Engine\.test\.ts/)
          expect((defect.cause as Error).message).toBe("root cause")
        }
        const { journal } = yield* client.history(handle.runId)
        expect(journal.attempts).toHaveLength(1)
      })))

    it.effect("a replay that meets another step than the journal fails with NonDeterminism naming both", () =>
      provide(Effect.gen(function*() {
        const a = Step.make({ name: "reserve", success: Schema.Number, run: () => Effect.succeed(1) })
        const b = Step.make({ name: "charge", success: Schema.Number, run: () => Effect.succeed(2) })
        const stop = Step.make({ name: "stop", success: Schema.Number, run: () => Effect.interrupt })
        const v1 = Workflow.make({
          name: "evolving",
          input: Schema.Null,
          success: Schema.Number,
          run: () =>
            Effect.gen(function*() {
              yield* a()
              yield* b()
              return yield* stop()
            })
        })
        const v2 = Workflow.make({
          name: "evolving",
          input: Schema.Null,
          success: Schema.Number,
          run: () =>
            Effect.gen(function*() {
              yield* b()
              yield* a()
              return 0
            })
        })
        const client = yield* Client.Client
        const handle = yield* client.start(v1, null)
        yield* Effect.exit(Runner.claimAndExecute(v1, handle.runId))
        yield* Runner.claimAndExecute(v2, handle.runId)
        const exit = yield* Effect.exit(client.result({ runId: handle.runId, workflow: v2 }))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = Option.getOrThrow(Cause.failureOption(exit.cause))
          expect(error).toBeInstanceOf(Failure.NonDeterminism)
          expect(error).toMatchObject({ expected: "reserve", found: "charge", position: 0 })
        }
      })))

    it.effect("starts are idempotent by key; the same id with another input is a conflict", () =>
      provide(Effect.gen(function*() {
        const wf = Workflow.make({
          name: "keyed",
          input: Schema.Struct({ id: Schema.String, n: Schema.Number }),
          success: Schema.Number,
          idempotencyKey: (input) => input.id,
          run: ({ n }) => Effect.succeed(n)
        })
        const client = yield* Client.Client
        const first = yield* client.start(wf, { id: "k1", n: 1 })
        const second = yield* client.start(wf, { id: "k1", n: 1 })
        expect(first.created).toBe(true)
        expect(second.created).toBe(false)
        expect(second.runId).toBe(first.runId)
        const byId = yield* client.start(wf, { id: "k2", n: 1 }, { id: "fixed" })
        const again = yield* client.start(wf, { id: "k2", n: 1 }, { id: "fixed" })
        expect(again.runId).toBe(byId.runId)
        const conflict = yield* Effect.flip(client.start(wf, { id: "k3", n: 2 }, { id: "fixed" }))
        expect(conflict._tag).toBe("RunConflict")
        const invalid = yield* Effect.flip(client.startUnknown(wf, { id: 1 }))
        expect(invalid).toBeInstanceOf(Failure.InputInvalid)
        expect((invalid as Failure.InputInvalid).path).toBe("id")
      })))

    it.effect("a worker whose lease was taken over stops writing (LeaseLost) and does not finish the run", () =>
      provide(Effect.gen(function*() {
        const store = yield* Store
        const gate = yield* Effect.makeLatch(false)
        const first = Step.make({ name: "first", success: Schema.Number, run: () => Effect.succeed(1) })
        const waitStep = Step.make({ name: "wait", success: Schema.Number, run: () => Effect.as(gate.await, 2) })
        const wf = Workflow.make({
          name: "fenced",
          input: Schema.Null,
          success: Schema.Number,
          run: () => Effect.zipWith(first(), waitStep(), (a, b) => a + b)
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, null)
        // Opened once the first step's completion is durable.
        const firstJournaled = yield* Effect.makeLatch(false)
        const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, handle.runId, {
          owner: "old:1:aa",
          onProgress: (event) =>
            event._tag === "StepSucceeded" && event.stepId === "first" ? firstJournaled.open : Effect.void
        }))
        yield* firstJournaled.await
        yield* store.claimRun({
          id: handle.runId,
          owner: "new:2:bb",
          leaseMillis: 30_000,
          now: Date.now(),
          force: true
        })
        yield* gate.open
        const exit = yield* Fiber.await(fiber)
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(Option.getOrThrow(Cause.failureOption(exit.cause))._tag).toBe("LeaseLost")
        const run = yield* client.status(handle.runId)
        expect(run.status).toBe("running")
        expect(run.leaseOwner).toBe("new:2:bb")
        const journal = yield* store.readJournal(handle.runId)
        expect(journal.steps.map((s) => s.stepId)).toEqual(["first"])
      })))

    it.effect("a step's end is reported once it is in the journal, not before", () =>
      provide(Effect.gen(function*() {
        const store = yield* Store
        const steps = ["a", "b", "c"].map((name) =>
          Step.make({ name, success: Schema.String, run: () => Effect.succeed(name) })
        )
        const wf = Workflow.make({
          name: "reported",
          input: Schema.Null,
          success: Schema.Array(Schema.String),
          run: () => Effect.forEach(steps, (step) => step())
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, null)
        // What the journal held when each step's end was reported.
        const seen: Array<[string, ReadonlyArray<string>]> = []
        yield* Runner.claimAndExecute(wf, handle.runId, {
          owner: "me:1:aa",
          onProgress: (event) =>
            event._tag === "StepSucceeded"
              ? Effect.map(store.readJournal(handle.runId), (journal) => {
                seen.push([event.stepId, journal.steps.map((step) => step.stepId)])
              }).pipe(Effect.orDie)
              : Effect.void
        })
        expect(seen.map(([step]) => step)).toEqual(["a", "b", "c"])
        for (const [step, journaled] of seen) expect(journaled).toContain(step)
      })))

    it.effect("decodeOutcome returns the typed failure class from the stored cause", () =>
      provide(Effect.gen(function*() {
        const wf = Workflow.make({
          name: "declines",
          input: Schema.Null,
          success: Schema.Null,
          error: CardDeclined,
          run: () => Effect.fail(new CardDeclined({ code: "x" }))
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, null)
        yield* Runner.claimAndExecute(wf, handle.runId)
        const run = yield* client.status(handle.runId)
        expect(run.status).toBe("failed")
        const exit = yield* Engine.decodeOutcome(wf, run)
        expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.getOrThrow)).toBeInstanceOf(
          CardDeclined
        )
      })))
  })
}

describe("Engine storage retries", () => {
  // A memory store whose writes fail with StoreUnavailable while `down` says so; `applied` makes a
  // failed write take effect anyway, as a commit whose answer was lost on the wire.
  const flakyStore = (down: (operation: string) => "up" | "down" | "lost-answer" | "refused") =>
    Layer.effect(
      Store,
      Effect.map(MemoryStore.make, (store) => {
        const wrap = <A extends ReadonlyArray<unknown>, B, E>(
          operation: string,
          f: (...args: A) => Effect.Effect<B, E>
        ) =>
        (...args: A): Effect.Effect<B, E | Errors.StoreUnavailable> =>
          Effect.suspend(() => {
            const state = down(operation)
            const unavailable = new Errors.StoreUnavailable({ operation, detail: "connection reset" })
            if (state === "down") return Effect.fail(unavailable)
            if (state === "refused") {
              return Effect.fail(
                new Errors.StoreUnavailable({ operation, detail: "relation does not exist", permanent: true })
              )
            }
            if (state === "lost-answer") return Effect.zipRight(f(...args), Effect.fail(unavailable))
            return f(...args)
          })
        return {
          ...store,
          readJournal: wrap("readJournal", store.readJournal),
          completeStep: wrap("completeStep", store.completeStep),
          recordAttempt: wrap("recordAttempt", store.recordAttempt),
          finishRun: wrap("finishRun", store.finishRun)
        }
      })
    )

  const fast = Schedule.recurs(20).pipe(Schedule.addDelay(() => Duration.millis(1)))

  it.live("retries its writes while the store is unavailable and finishes the run; side effects happen once", () => {
    const failures = new Map<string, number>([["readJournal", 2], ["completeStep", 3], ["finishRun", 2]])
    const calls: Array<string> = []
    const layer = Layer.provideMerge(
      Client.layer,
      flakyStore((operation) => {
        calls.push(operation)
        const left = failures.get(operation) ?? 0
        if (left === 0) return "up"
        failures.set(operation, left - 1)
        return "down"
      })
    )
    return Effect.provide(
      Effect.gen(function*() {
        const counter = makeCounter()
        const one = Step.make({ name: "one", success: Schema.Number, run: () => Effect.as(counter.hit("one"), 1) })
        const two = Step.make({ name: "two", success: Schema.Number, run: () => Effect.as(counter.hit("two"), 2) })
        const wf = Workflow.make({
          name: "flaky-store",
          input: Schema.Void,
          success: Schema.Number,
          run: () => Effect.zipWith(one(), two(), (a, b) => a + b)
        })
        const client = yield* Client.Client
        const store = yield* Store
        const { runId } = yield* client.start(wf, undefined)
        const run = yield* store.claimRun({ id: runId, owner: "w1", leaseMillis: 30_000, now: Date.now() })
        const executed = yield* Engine.execute(wf, run, { owner: "w1", storageRetry: fast })
        expect(executed.outcome).toEqual({ status: "succeeded", output: 3 })
        expect(Object.fromEntries(counter.counts)).toEqual({ one: 1, two: 1 })
        // Step one's completion: three failed writes, then one. Step two's, the last, goes with the
        // run's end: two failed writes of both, then one.
        expect(calls.filter((c) => c === "completeStep")).toHaveLength(4)
        expect(calls.filter((c) => c === "finishRun")).toHaveLength(3)
        expect((yield* client.status(runId)).status).toBe("succeeded")
        expect((yield* store.readJournal(runId)).steps.map((s) => s.stepId)).toEqual(["one", "two"])
      }),
      layer
    )
  })

  it.live("a write whose commit landed but whose answer was lost is not an error when retried", () => {
    const lost = new Set(["completeStep", "finishRun"])
    const layer = Layer.provideMerge(
      Client.layer,
      flakyStore((operation) => {
        if (!lost.has(operation)) return "up"
        lost.delete(operation)
        return "lost-answer"
      })
    )
    return Effect.provide(
      Effect.gen(function*() {
        const counter = makeCounter()
        const one = Step.make({ name: "one", success: Schema.Number, run: () => Effect.as(counter.hit("one"), 1) })
        const wf = Workflow.make({ name: "lost-answer", input: Schema.Void, success: Schema.Number, run: () => one() })
        const client = yield* Client.Client
        const store = yield* Store
        const { runId } = yield* client.start(wf, undefined)
        const run = yield* store.claimRun({ id: runId, owner: "w1", leaseMillis: 30_000, now: Date.now() })
        const executed = yield* Engine.execute(wf, run, { owner: "w1", storageRetry: fast })
        expect(executed.outcome).toEqual({ status: "succeeded", output: 1 })
        expect(Object.fromEntries(counter.counts)).toEqual({ one: 1 })
        expect((yield* store.readJournal(runId)).steps).toHaveLength(1)
      }),
      layer
    )
  })

  it.live("does not retry an error the database marks permanent: it surfaces at once", () => {
    const calls: Array<string> = []
    const layer = Layer.provideMerge(
      Client.layer,
      flakyStore((operation) => {
        calls.push(operation)
        return operation === "completeStep" || operation === "finishRun" ? "refused" : "up"
      })
    )
    return Effect.provide(
      Effect.gen(function*() {
        const one = Step.make({ name: "one", success: Schema.Number, run: () => Effect.succeed(1) })
        const two = Step.make({ name: "two", success: Schema.Number, run: () => Effect.succeed(2) })
        const wf = Workflow.make({
          name: "refused",
          input: Schema.Void,
          success: Schema.Number,
          run: () => Effect.zipWith(one(), two(), (a, b) => a + b)
        })
        const client = yield* Client.Client
        const store = yield* Store
        const { runId } = yield* client.start(wf, undefined)
        const run = yield* store.claimRun({ id: runId, owner: "w1", leaseMillis: 30_000, now: Date.now() })
        const error = yield* Effect.flip(Engine.execute(wf, run, { owner: "w1", storageRetry: fast }))
        expect(error).toMatchObject({ _tag: "StoreUnavailable", permanent: true })
        // One try, no retries (the fast schedule would have made 21).
        expect(calls.filter((c) => c === "completeStep" || c === "finishRun")).toHaveLength(1)
      }),
      layer
    )
  })

  it.live("gives up after its schedule: the run stops here unfinished and resumes later from its journal", () => {
    let down = false
    let executions = 0
    const layer = Layer.provideMerge(Client.layer, flakyStore(() => (down ? "down" : "up")))
    return Effect.provide(
      Effect.gen(function*() {
        const one = Step.make({
          name: "one",
          success: Schema.Number,
          run: () =>
            Effect.sync(() => {
              // The store goes away during the first execution only.
              down = ++executions === 1
              return 1
            })
        })
        const wf = Workflow.make({ name: "store-gone", input: Schema.Void, success: Schema.Number, run: () => one() })
        const client = yield* Client.Client
        const store = yield* Store
        const { runId } = yield* client.start(wf, undefined)
        const run = yield* store.claimRun({ id: runId, owner: "w1", leaseMillis: 30_000, now: Date.now() })
        const error = yield* Effect.flip(
          Engine.execute(wf, run, { owner: "w1", storageRetry: Schedule.recurs(3) })
        )
        expect(error._tag).toBe("StoreUnavailable")
        down = false
        expect((yield* client.status(runId)).status).toBe("running")
        const resumed = yield* Engine.execute(wf, yield* client.status(runId), { owner: "w1" })
        expect(resumed.outcome).toEqual({ status: "succeeded", output: 1 })
        // The step was in flight when its completion could not be recorded: it runs again (at least once).
        expect(executions).toBe(2)
      }),
      layer
    )
  })
})
