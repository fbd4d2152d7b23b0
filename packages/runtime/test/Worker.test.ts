/**
 * The polling worker over real stores (Memory and a SQLite file): draining with bounded
 * concurrency, priority order, delayed starts, runs of workflows it does not know, and interruption that
 * leaves in-flight runs queued for another worker, without re-running completed steps.
 */
import { describe, expect, it } from "@effect/vitest"
import { Retry, Step, Workflow } from "@weft/core"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Client from "../src/Client.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import * as SqliteStore from "../src/SqliteStore.js"
import { isTerminal, Store, type StoreService } from "../src/Store.js"
import * as Worker from "../src/Worker.js"

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { n: Schema.Number }) {
  readonly retryable = true
}

const stores = {
  memory: () => MemoryStore.layer,
  sqlite: () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-worker-"))
    return SqliteStore.layer({ filename: Path.join(dir, "weft.db") })
  }
}

/** Waits until every run is final (or fails the test after `timeoutMs`). */
const awaitFinal = (runIds: ReadonlyArray<string>, timeoutMs = 4_000) =>
  Effect.gen(function*() {
    const store = yield* Store
    const deadline = Date.now() + timeoutMs
    while (true) {
      const runs = yield* Effect.forEach(runIds, (id) => store.getRun(id))
      if (runs.every((r) => r._tag === "Some" && isTerminal(r.value.status))) {
        return runs.map((r) => r._tag === "Some" ? r.value : undefined!)
      }
      if (Date.now() > deadline) return yield* Effect.die(new Error(`runs did not finish: ${JSON.stringify(runs)}`))
      yield* Effect.sleep("20 millis")
    }
  })

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))
  // The same over a store some of whose operations a test wraps (a probe, a gate).
  const provideWrapped =
    (wrap: (store: StoreService) => Partial<StoreService>) =>
    <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
      Effect.provide(
        effect,
        Layer.provideMerge(
          Client.layer,
          Layer.effect(Store, Effect.map(Store, (store) => ({ ...store, ...wrap(store) }))).pipe(
            Layer.provide(makeStore())
          )
        )
      )

  describe(`Worker on ${storeName}`, () => {
    it.live("drains queued runs with at most `concurrency` in flight", () =>
      provide(Effect.gen(function*() {
        const spans: Array<{ start: number; end: number }> = []
        const work = Step.make({
          name: "work",
          success: Schema.Number,
          run: (n: number) =>
            Effect.gen(function*() {
              const start = Date.now()
              yield* Effect.sleep("40 millis")
              spans.push({ start, end: Date.now() })
              return n
            })
        })
        const wf = Workflow.make({ name: "job", input: Schema.Number, success: Schema.Number, run: (n) => work(n) })
        const client = yield* Client.Client
        const ids: Array<string> = []
        for (let i = 0; i < 9; i++) ids.push((yield* client.start(wf, i)).runId)
        const worker = yield* Effect.fork(Worker.run({ workflows: [wf], concurrency: 3, pollInterval: "20 millis" }))
        const runs = yield* awaitFinal(ids)
        yield* Fiber.interrupt(worker)
        expect(runs.map((r) => r.status)).toEqual(ids.map(() => "succeeded"))
        expect(spans).toHaveLength(9)
        const events = spans.flatMap((s) => [{ t: s.start, d: 1 }, { t: s.end, d: -1 }])
          .sort((a, b) => a.t - b.t || a.d - b.d)
        let now = 0
        let peak = 0
        for (const e of events) peak = Math.max(peak, now += e.d)
        expect(peak).toBeLessThanOrEqual(3)
        expect(peak).toBeGreaterThan(1)
      })))

    it.live("frees a run's slot once only its end is left to write: the next run starts while that commits", () =>
      Effect.gen(function*() {
        // The store's finishRun waits for a gate: the first run's end cannot commit until the
        // second run's step has started in its freed slot (concurrency 1).
        const gate = yield* Deferred.make<void>()
        const started: Array<number> = []
        let heldInVain = 0
        const held = provideWrapped((store) => ({
          finishRun: (options) =>
            // Polled: the engine writes a run's end uninterruptibly, so a timeout could not cut a wait.
            Effect.zipRight(
              Effect.gen(function*() {
                for (let i = 0; i < 200; i++) {
                  if (yield* Deferred.isDone(gate)) return
                  yield* Effect.sleep("10 millis")
                }
                heldInVain++
              }),
              store.finishRun(options)
            )
        }))
        const step = Step.make({
          name: "note",
          success: Schema.Number,
          run: (n: number) =>
            // The second run to start opens the gate (the two may be claimed in either order).
            Effect.suspend(() => started.push(n) === 2 ? Deferred.succeed(gate, undefined) : Effect.void).pipe(
              Effect.as(n)
            )
        })
        const wf = Workflow.make({ name: "settle", input: Schema.Number, success: Schema.Number, run: (n) => step(n) })
        yield* Effect.gen(function*() {
          const client = yield* Client.Client
          const first = yield* client.start(wf, 1)
          const second = yield* client.start(wf, 2)
          const worker = yield* Effect.fork(Worker.run({ workflows: [wf], concurrency: 1, pollInterval: "20 millis" }))
          const runs = yield* awaitFinal([first.runId, second.runId], 8_000)
          yield* Fiber.interrupt(worker)
          expect(runs.map((run) => run.status)).toEqual(["succeeded", "succeeded"])
          // The second run started while the first one's end was held (without the early release,
          // that end waits out the gate's 2 seconds first).
          expect([...started].sort()).toEqual([1, 2])
          expect(heldInVain).toBe(0)
        }).pipe(held)
      }))

    it.live("at low load a run's end costs no claim: the worker claims on news (a notice, a due time, the poll)", () =>
      Effect.gen(function*() {
        let claims = 0
        const counted = provideWrapped((store) => ({
          claimNext: (options) => Effect.zipRight(Effect.sync(() => claims++), store.claimNext(options))
        }))
        const step = Step.make({ name: "one", success: Schema.Number, run: (n: number) => Effect.succeed(n) })
        const wf = Workflow.make({
          name: "low-load",
          input: Schema.Number,
          success: Schema.Number,
          run: (n) => step(n)
        })
        yield* Effect.gen(function*() {
          const client = yield* Client.Client
          const worker = yield* Effect.fork(Worker.run({ workflows: [wf], concurrency: 3, pollInterval: "1 minute" }))
          yield* Effect.sleep("50 millis")
          const before = claims
          for (let i = 0; i < 5; i++) {
            const handle = yield* client.start(wf, i)
            yield* awaitFinal([handle.runId])
            yield* Effect.sleep("20 millis")
          }
          yield* Fiber.interrupt(worker)
          // One claim per start's notice; a run's end, which frees a slot, adds none.
          expect(claims - before).toBe(5)
        }).pipe(counted)
      }))

    it.live("runs higher priority first with concurrency 1", () =>
      provide(Effect.gen(function*() {
        const order: Array<string> = []
        const note = Step.make({
          name: "note",
          success: Schema.Void,
          run: (label: string) => Effect.sync(() => void order.push(label))
        })
        const wf = Workflow.make({ name: "noted", input: Schema.String, success: Schema.Void, run: (l) => note(l) })
        const client = yield* Client.Client
        const low = yield* client.start(wf, "low", { priority: -1 })
        const normal = yield* client.start(wf, "normal")
        const high = yield* client.start(wf, "high", { priority: 5 })
        const worker = yield* Effect.fork(Worker.run({ workflows: [wf], concurrency: 1, pollInterval: "20 millis" }))
        yield* awaitFinal([low.runId, normal.runId, high.runId])
        yield* Fiber.interrupt(worker)
        expect(order).toEqual(["high", "normal", "low"])
      })))

    it.live("does not run a delayed run before its wakeAt", () =>
      provide(Effect.gen(function*() {
        const ranAt: Array<number> = []
        const mark = Step.make({
          name: "mark",
          success: Schema.Void,
          run: () => Effect.sync(() => void ranAt.push(Date.now()))
        })
        const wf = Workflow.make({ name: "delayed", input: Schema.Void, success: Schema.Void, run: () => mark() })
        const client = yield* Client.Client
        const wakeAt = Date.now() + 300
        const handle = yield* client.start(wf, undefined, { wakeAt })
        const worker = yield* Effect.fork(Worker.run({ workflows: [wf], pollInterval: "20 millis" }))
        yield* Effect.sleep("150 millis")
        expect((yield* client.status(handle.runId)).status).toBe("queued")
        yield* awaitFinal([handle.runId])
        yield* Fiber.interrupt(worker)
        expect(ranAt).toHaveLength(1)
        expect(ranAt[0]).toBeGreaterThanOrEqual(wakeAt)
      })))

    it.live("leaves runs of a workflow it does not know queued and unclaimed, and keeps going", () =>
      provide(Effect.gen(function*() {
        const noop = Step.make({ name: "noop", success: Schema.Void, run: () => Effect.void })
        const known = Workflow.make({ name: "known", input: Schema.Void, success: Schema.Void, run: () => noop() })
        const stranger = Workflow.make({
          name: "stranger",
          input: Schema.Void,
          success: Schema.Void,
          run: () => noop()
        })
        const client = yield* Client.Client
        // Oldest and highest first: it would take the only slot if the worker let it.
        const foreign = yield* client.start(stranger, undefined, { priority: 10 })
        const mine = yield* client.start(known, undefined)
        const mine2 = yield* client.start(known, undefined)
        const worker = yield* Effect.fork(Worker.run({
          workflows: [known],
          concurrency: 1,
          pollInterval: "20 millis"
        }))
        yield* awaitFinal([mine.runId, mine2.runId])
        yield* Fiber.interrupt(worker)
        const run = yield* client.status(foreign.runId)
        expect(run.status).toBe("queued")
        expect(run.leaseOwner).toBeUndefined()
        expect(run.startedAt).toBeUndefined()
        expect(run.recoveries).toBe(0)
      })))

    it.live("a step that outlasts the grace period is interrupted; its run is released for another worker", () =>
      provide(Effect.gen(function*() {
        const counts = new Map<string, number>()
        const hit = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
        let gate = true
        const first = Step.make({
          name: "first",
          success: Schema.Void,
          run: (id: number) => Effect.sync(() => void hit(`first-${id}`))
        })
        const second = Step.make({
          name: "second",
          success: Schema.Void,
          run: (id: number) =>
            Effect.gen(function*() {
              while (gate) yield* Effect.sleep("10 millis")
              hit(`second-${id}`)
            })
        })
        const wf = Workflow.make({
          name: "two-steps",
          input: Schema.Number,
          success: Schema.Void,
          run: (id) => Effect.zipRight(first(id), second(id))
        })
        const client = yield* Client.Client
        const store = yield* Store
        const ids = [
          (yield* client.start(wf, 1)).runId,
          (yield* client.start(wf, 2)).runId
        ]
        const events: Array<Worker.WorkerEvent> = []
        const worker = yield* Effect.fork(Worker.run({
          workflows: [wf],
          concurrency: 5,
          pollInterval: "20 millis",
          grace: "50 millis",
          onEvent: (event) => Effect.sync(() => events.push(event))
        }))
        while ((counts.get("first-1") ?? 0) + (counts.get("first-2") ?? 0) < 2) yield* Effect.sleep("10 millis")
        yield* Fiber.interrupt(worker)
        expect(events.filter((e) => e._tag === "ShutdownStarted" || e._tag === "ShutdownFinished")).toEqual([
          { _tag: "ShutdownStarted", inFlight: 2, graceMillis: 50 },
          { _tag: "ShutdownFinished", interrupted: 2 }
        ])
        for (const id of ids) {
          const run = yield* client.status(id)
          expect(run.status).toBe("queued")
          expect(run.leaseOwner).toBeUndefined()
          expect((yield* store.readJournal(id)).steps.map((s) => s.stepId)).toEqual(["first"])
        }
        gate = false
        const second2 = yield* Effect.fork(Worker.run({ workflows: [wf], pollInterval: "20 millis" }))
        const runs = yield* awaitFinal(ids)
        yield* Fiber.interrupt(second2)
        expect(runs.map((r) => r.status)).toEqual(["succeeded", "succeeded"])
        expect(Object.fromEntries(counts)).toEqual({ "first-1": 1, "first-2": 1, "second-1": 1, "second-2": 1 })
      })))

    it.live("shutdown lets the step in flight finish, then releases the run at the step boundary", () =>
      provide(Effect.gen(function*() {
        const counts = new Map<string, number>()
        const hit = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
        let inSecond = false
        const step = (name: string, millis: number) =>
          Step.make({
            name,
            success: Schema.Void,
            run: () =>
              Effect.gen(function*() {
                if (name === "second") inSecond = true
                yield* Effect.sleep(Duration.millis(millis))
                hit(name)
              })
          })
        const first = step("first", 0)
        const second = step("second", 150)
        const third = step("third", 0)
        const wf = Workflow.make({
          name: "three-steps",
          input: Schema.Number,
          success: Schema.Void,
          run: () => Effect.zipRight(first(), Effect.zipRight(second(), third()))
        })
        const client = yield* Client.Client
        const store = yield* Store
        const { runId } = yield* client.start(wf, 1)
        const events: Array<Worker.WorkerEvent> = []
        const worker = yield* Effect.fork(Worker.run({
          workflows: [wf],
          pollInterval: "20 millis",
          grace: "10 seconds",
          onEvent: (event) => Effect.sync(() => events.push(event))
        }))
        while (!inSecond) yield* Effect.sleep("5 millis")
        yield* Fiber.interrupt(worker)
        const run = yield* client.status(runId)
        expect(run.status).toBe("queued")
        expect(run.leaseOwner).toBeUndefined()
        expect(run.reason).toMatch(/shut down at a step boundary/)
        expect((yield* store.readJournal(runId)).steps.map((s) => s.stepId)).toEqual(["first", "second"])
        expect(events.map((e) => e._tag)).toEqual([
          "RunStarted",
          "ShutdownStarted",
          "RunStopped",
          "ShutdownFinished"
        ])
        expect(events.at(-1)).toEqual({ _tag: "ShutdownFinished", interrupted: 0 })
        const next = yield* Effect.fork(Worker.run({ workflows: [wf], pollInterval: "20 millis" }))
        const [done] = yield* awaitFinal([runId])
        yield* Fiber.interrupt(next)
        expect(done.status).toBe("succeeded")
        expect(Object.fromEntries(counts)).toEqual({ first: 1, second: 1, third: 1 })
      })))

    it.live("an idle worker claims a new run on its wake-up notice, without waiting for its poll", () =>
      provide(Effect.gen(function*() {
        const wf = Workflow.make({ name: "noop", input: Schema.Number, success: Schema.Number, run: Effect.succeed })
        const client = yield* Client.Client
        const worker = yield* Effect.fork(Worker.run({ workflows: [wf], pollInterval: "1 hour" }))
        // Let it claim nothing and go idle.
        yield* Effect.sleep("50 millis")
        const { runId } = yield* client.start(wf, 7)
        const [run] = yield* awaitFinal([runId], 3_000)
        yield* Fiber.interrupt(worker)
        expect(run.output).toBe(7)
      })))

    it.live("an idle worker sleeps until a delayed run is due, without waiting for its poll", () =>
      provide(Effect.gen(function*() {
        const wf = Workflow.make({ name: "noop", input: Schema.Number, success: Schema.Number, run: Effect.succeed })
        const client = yield* Client.Client
        const worker = yield* Effect.fork(Worker.run({ workflows: [wf], pollInterval: "1 hour" }))
        yield* Effect.sleep("50 millis")
        const wakeAt = Date.now() + 300
        const { runId } = yield* client.start(wf, 8, { wakeAt })
        const [run] = yield* awaitFinal([runId], 3_000)
        yield* Fiber.interrupt(worker)
        expect(run.output).toBe(8)
        expect(run.startedAt).toBeGreaterThanOrEqual(wakeAt)
      })))

    it.live("a long durable sleep suspends the run: no slot held, woken on time, steps before it not run again", () =>
      provide(
        Effect.gen(function*() {
          const counts = new Map<string, number>()
          const hit = (key: string) => Effect.sync(() => counts.set(key, (counts.get(key) ?? 0) + 1))
          const before = Step.make({ name: "before", success: Schema.Number, run: () => Effect.as(hit("before"), 1) })
          const after = Step.make({ name: "after", success: Schema.Number, run: () => Effect.as(hit("after"), 2) })
          const wf = Workflow.make({
            name: "napper",
            input: Schema.Void,
            success: Schema.Number,
            run: () =>
              Effect.gen(function*() {
                const a = yield* before()
                yield* Workflow.sleep("400 millis")
                return a + (yield* after())
              })
          })
          const client = yield* Client.Client
          const events: Array<Worker.WorkerEvent> = []
          const worker = yield* Worker.start({
            workflows: [wf],
            pollInterval: "1 hour",
            suspendAfter: "100 millis",
            onEvent: (event) => Effect.sync(() => events.push(event))
          })
          const { runId } = yield* client.start(wf, undefined)
          while (!events.some((e) => e._tag === "RunSuspended")) yield* Effect.sleep("5 millis")
          const sleeping = yield* client.status(runId)
          expect(sleeping.status).toBe("sleeping")
          expect(sleeping.leaseOwner).toBeUndefined()
          expect(sleeping.reason).toMatch(/^sleeping until /)
          expect(yield* worker.inFlight).toBe(0)
          const [done] = yield* awaitFinal([runId], 4_000)
          expect(done.status).toBe("succeeded")
          expect(done.output).toBe(3)
          expect(done.recoveries).toBe(0)
          expect(done.finishedAt! - done.createdAt).toBeGreaterThanOrEqual(400)
          expect(Object.fromEntries(counts)).toEqual({ before: 1, after: 1 })
          expect(events.map((e) => e._tag)).toEqual(["RunStarted", "RunSuspended", "RunStarted", "RunFinished"])
        }).pipe(Effect.scoped)
      ))

    it.live("a long retry backoff suspends the run between attempts and keeps every attempt", () =>
      provide(
        Effect.gen(function*() {
          let attempts = 0
          const flaky = Step.make({
            name: "flaky",
            success: Schema.Number,
            error: Flaky,
            retry: Retry.fixed({ delay: "300 millis", attempts: 3 }),
            run: () =>
              Effect.suspend(() => ++attempts < 3 ? Effect.fail(new Flaky({ n: attempts })) : Effect.succeed(attempts))
          })
          const wf = Workflow.make({
            name: "backoff",
            input: Schema.Void,
            success: Schema.Number,
            error: Flaky,
            run: () => flaky()
          })
          const client = yield* Client.Client
          const store = yield* Store
          const events: Array<Worker.WorkerEvent> = []
          yield* Worker.start({
            workflows: [wf],
            pollInterval: "1 hour",
            suspendAfter: "100 millis",
            onEvent: (event) => Effect.sync(() => events.push(event))
          })
          const { runId } = yield* client.start(wf, undefined)
          while (!events.some((e) => e._tag === "RunSuspended")) yield* Effect.sleep("5 millis")
          expect((yield* client.status(runId)).reason).toMatch(/^backing off until .* after attempt 1 of step flaky$/)
          const [done] = yield* awaitFinal([runId], 4_000)
          expect(done.output).toBe(3)
          expect(events.filter((e) => e._tag === "RunSuspended")).toHaveLength(2)
          const journal = yield* store.readJournal(runId)
          expect(journal.attempts.map((a) => [a.attempt, a.outcome, a.delayMillis])).toEqual([
            [1, "failure", 300],
            [2, "failure", 300],
            [3, "success", undefined]
          ])
        }).pipe(Effect.scoped)
      ))

    it.live("weft run's path (Runner) waits out a suspension in process and finishes the run", () =>
      provide(Effect.gen(function*() {
        const wf = Workflow.make({
          name: "inline-nap",
          input: Schema.Void,
          success: Schema.String,
          run: () => Effect.as(Workflow.sleep("300 millis"), "rested")
        })
        const client = yield* Client.Client
        const { runId } = yield* client.start(wf, undefined)
        const told: Array<string> = []
        const executed = yield* Runner.claimAndExecute(wf, runId, {
          suspendAfter: "100 millis",
          onSuspended: (s) => Effect.sync(() => told.push(s.reason))
        })
        expect(executed.outcome).toEqual({ status: "succeeded", output: "rested" })
        expect(told).toHaveLength(1)
        expect(told[0]).toMatch(/^sleeping until /)
      })))
  })
}
