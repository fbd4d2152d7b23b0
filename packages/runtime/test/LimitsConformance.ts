/**
 * The queue limits of the Store contract (part of `storeConformance`, so that Memory, SQLite and
 * PostgreSQL run the same cases): a queue's concurrency, concurrency keys, the sliding rate-limit
 * window, what holds a queue back (`queueState`) and how declarations are recorded. Time is the
 * `now` each call is given: no clock, no waiting.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { NewRun, QueueLimits } from "../src/Store.js"
import { Store } from "../src/Store.js"

const T0 = 1_700_000_000_000
const LEASE = 30_000

const limits = (name: string, options: Partial<Omit<QueueLimits, "name">> = {}): QueueLimits => ({
  name,
  concurrency: options.concurrency,
  rateLimit: options.rateLimit
})

const declare = (queues: ReadonlyArray<QueueLimits>, keyed: ReadonlyArray<string> = [], now = T0) =>
  Effect.flatMap(Store, (store) => store.declareQueues({ queues, keyed, by: "w0", now }))

/** Runs `ids` in queue `queue`, created one millisecond apart (so that claim order is `ids`). */
const createRuns = (ids: ReadonlyArray<string>, overrides: Partial<NewRun> = {}, queue = "emails") =>
  Effect.flatMap(Store, (store) =>
    Effect.forEach(ids, (id, i) =>
      store.createRun({
        id,
        workflow: "send",
        version: "v1",
        input: { i },
        queue,
        now: T0 + i,
        ...overrides
      }), { discard: true }))

const claim = (owner: string, now: number, options: { limit?: number; queues?: ReadonlyArray<string> } = {}) =>
  Effect.flatMap(Store, (store) =>
    store.claimNext({
      owner,
      queues: options.queues ?? ["emails"],
      limit: options.limit ?? 100,
      leaseMillis: LEASE,
      now
    })).pipe(Effect.map((runs) => runs.map((run) => run.id)))

const finish = (id: string, owner: string, now: number) =>
  Effect.flatMap(Store, (store) => store.finishRun({ id, owner, outcome: { status: "succeeded", output: 1 }, now }))

const running = (queue = "emails") =>
  Effect.flatMap(Store, (store) => store.listRuns({ status: "running" })).pipe(
    Effect.map((runs) => runs.filter((run) => run.queue === queue).map((run) => run.id).sort())
  )

/** The queue limits part of the store contract, on the stores `makeLayer` builds (fresh each test). */
export const limitsConformance = (makeLayer: () => Layer.Layer<Store, unknown>): void => {
  const test = (title: string, body: Effect.Effect<void, unknown, Store>) =>
    it.effect(title, () => Effect.provide(body, makeLayer()))

  describe("queue limits", () => {
    test(
      "a run records its concurrency key and limit; a run without one has neither",
      Effect.gen(function*() {
        const store = yield* Store
        yield* createRuns(["keyed"], { concurrencyKey: "customer-7", concurrencyLimit: 2 })
        yield* createRuns(["default-limit"], { concurrencyKey: "customer-8" })
        yield* createRuns(["plain"])
        const keyed = Option.getOrThrow(yield* store.getRun("keyed"))
        expect(keyed).toMatchObject({ concurrencyKey: "customer-7", concurrencyLimit: 2, queue: "emails" })
        expect(Option.getOrThrow(yield* store.getRun("default-limit"))).toMatchObject({ concurrencyLimit: 1 })
        const plain = Option.getOrThrow(yield* store.getRun("plain"))
        expect(plain.concurrencyKey).toBeUndefined()
        expect(plain.concurrencyLimit).toBeUndefined()
        // A keyed start records its queue as keyed.
        expect((yield* store.queueState({ queue: "emails", now: T0 })).queue).toMatchObject({ keyed: true })
      })
    )

    test(
      "a queue's concurrency: at most N of its runs running, whoever claims; an ended or suspended run frees its slot",
      Effect.gen(function*() {
        const store = yield* Store
        yield* declare([limits("emails", { concurrency: 2 })])
        yield* createRuns(["r1", "r2", "r3", "r4", "r5"])
        yield* createRuns(["other"], {}, "default")
        expect(yield* claim("w1", T0 + 10)).toEqual(["r1", "r2"])
        expect(yield* claim("w2", T0 + 11)).toEqual([])
        expect(yield* running()).toEqual(["r1", "r2"])
        // Other queues are not limited by it.
        expect(yield* claim("w2", T0 + 11, { queues: ["default"] })).toEqual(["other"])

        yield* finish("r1", "w1", T0 + 20)
        expect(yield* claim("w2", T0 + 21)).toEqual(["r3"])
        // A sleeping run holds no slot, and a due sleeper is resumed only within the limit.
        yield* store.suspendRun({ id: "r2", owner: "w1", wakeAt: T0 + 100, reason: "sleeping", now: T0 + 30 })
        expect(yield* claim("w1", T0 + 31)).toEqual(["r4"])
        expect(yield* claim("w1", T0 + 100)).toEqual([])
        expect((yield* store.getRun("r2")).pipe(Option.map((run) => run.status))).toEqual(Option.some("sleeping"))
        yield* finish("r3", "w2", T0 + 110)
        // The sleeper first (resuming started work), then nothing: the queue is full again.
        expect(yield* claim("w1", T0 + 111)).toEqual(["r2"])
        expect(yield* running()).toEqual(["r2", "r4"])
        yield* store.releaseRun({ id: "r4", owner: "w1", reason: "shutdown", now: T0 + 120 })
        // A released run goes back through the queue, behind nothing older: it is taken first.
        expect(yield* claim("w2", T0 + 121, { limit: 5 })).toEqual(["r4"])
      })
    )

    test(
      "a run whose worker died still holds its slot; taking it over needs none",
      Effect.gen(function*() {
        yield* declare([limits("emails", { concurrency: 1 })])
        yield* createRuns(["r1", "r2"])
        expect(yield* claim("w1", T0 + 10)).toEqual(["r1"])
        expect(yield* claim("w2", T0 + 10 + LEASE - 1)).toEqual([])
        // Its lease expired: w2 takes it over, and r2 still waits for the slot.
        expect(yield* claim("w2", T0 + 10 + LEASE)).toEqual(["r1"])
        expect(yield* running()).toEqual(["r1"])
        expect((yield* Effect.flatMap(Store, (store) => store.getRun("r1"))).pipe(Option.map((run) => run.recoveries)))
          .toEqual(Option.some(1))
      })
    )

    test(
      "a concurrency key: at most its limit running per key; runs of other keys and without a key pass the blocked ones",
      Effect.gen(function*() {
        yield* createRuns(["a1", "a2", "a3"], { concurrencyKey: "a", concurrencyLimit: 2 })
        yield* Effect.flatMap(
          Store,
          (store) =>
            Effect.forEach(
              [["b1", "b"], ["free", undefined], ["c1", "c"], ["c2", "c"]] as const,
              ([id, key], i) =>
                store.createRun({
                  id,
                  workflow: "send",
                  version: "v1",
                  input: { id },
                  queue: "emails",
                  concurrencyKey: key,
                  now: T0 + 10 + i
                })
            )
        )
        // c has the default limit, 1.
        expect(yield* claim("w1", T0 + 20)).toEqual(["a1", "a2", "b1", "free", "c1"])
        expect(yield* claim("w2", T0 + 21)).toEqual([])
        yield* finish("a1", "w1", T0 + 30)
        yield* finish("c1", "w1", T0 + 30)
        expect(yield* claim("w2", T0 + 31, { limit: 1 })).toEqual(["a3"])
        expect(yield* claim("w2", T0 + 31)).toEqual(["c2"])
      })
    )

    test(
      "a key counts within its queue: the same key in another queue is another key",
      Effect.gen(function*() {
        yield* createRuns(["e1", "e2"], { concurrencyKey: "customer-7" })
        yield* createRuns(["r1"], { concurrencyKey: "customer-7" }, "reports")
        expect(yield* claim("w1", T0 + 10, { queues: ["emails", "reports"] })).toEqual(["e1", "r1"])
      })
    )

    test(
      "a batch never takes more runs of a key than it has room for, and fills up with others",
      Effect.gen(function*() {
        // Many runs of one key ahead of the others: a claim of 3 takes one of them and two others.
        yield* createRuns(Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, "0")}`), {
          concurrencyKey: "busy"
        })
        yield* Effect.flatMap(
          Store,
          (store) =>
            Effect.forEach(["x", "y"], (id, i) =>
              store.createRun({
                id,
                workflow: "send",
                version: "v1",
                input: { id },
                queue: "emails",
                now: T0 + 100 + i
              }))
        )
        expect(yield* claim("w1", T0 + 200, { limit: 3 })).toEqual(["k00", "x", "y"])
      })
    )

    test(
      "a rate limit: at most N claims in any window of its interval, sliding; nextWakeAt is its reopening",
      Effect.gen(function*() {
        const store = yield* Store
        yield* declare([limits("emails", { rateLimit: { limit: 2, intervalMillis: 1_000 } })])
        yield* createRuns(["r1", "r2", "r3", "r4", "r5", "r6"])
        expect(yield* claim("w1", T0 + 100, { limit: 1 })).toEqual(["r1"])
        expect(yield* claim("w1", T0 + 600)).toEqual(["r2"])
        expect(yield* claim("w2", T0 + 700)).toEqual([])
        expect(yield* store.nextWakeAt({ queues: ["emails"], now: T0 + 700 })).toEqual(Option.some(T0 + 1_100))
        // A claim leaves the window an interval after it was made: r1's at T0 + 1100.
        expect(yield* claim("w2", T0 + 1_099)).toEqual([])
        expect(yield* claim("w2", T0 + 1_100)).toEqual(["r3"])
        expect(yield* store.nextWakeAt({ queues: ["emails"], now: T0 + 1_100 })).toEqual(Option.some(T0 + 1_600))
        expect(yield* claim("w2", T0 + 1_600)).toEqual(["r4"])
        // Ended runs still count: the window counts claims, not running runs.
        for (const [id, owner] of [["r1", "w1"], ["r2", "w1"], ["r3", "w2"], ["r4", "w2"]] as const) {
          yield* finish(id, owner, T0 + 1_700)
        }
        expect(yield* claim("w1", T0 + 2_099)).toEqual([])
        expect(yield* claim("w1", T0 + 2_100)).toEqual(["r5"])
        expect(yield* store.queueState({ queue: "emails", now: T0 + 2_100 })).toMatchObject({
          rate: { claims: 2, reopensAt: T0 + 2_600 }
        })
      })
    )

    test(
      "a rate limit counts every claim: a sleeper woken and a run taken over each use one",
      Effect.gen(function*() {
        const store = yield* Store
        yield* declare([limits("emails", { rateLimit: { limit: 2, intervalMillis: 10_000 } })])
        yield* createRuns(["r1", "r2", "r3"])
        expect(yield* claim("w1", T0 + 10, { limit: 1 })).toEqual(["r1"])
        yield* store.suspendRun({ id: "r1", owner: "w1", wakeAt: T0 + 20, reason: "sleeping", now: T0 + 15 })
        // The wake-up is the second claim of the window; r2 and r3 wait.
        expect(yield* claim("w1", T0 + 20)).toEqual(["r1"])
        expect(yield* claim("w1", T0 + 9_000)).toEqual([])
        expect(yield* claim("w1", T0 + 10_010)).toEqual(["r2"])
      })
    )

    test(
      "concurrency, keys and a rate limit together: each holds",
      Effect.gen(function*() {
        yield* declare([limits("emails", { concurrency: 3, rateLimit: { limit: 4, intervalMillis: 1_000 } })])
        yield* createRuns(["a1", "a2", "a3"], { concurrencyKey: "a", concurrencyLimit: 2 })
        yield* createRuns(["b1", "b2", "b3"], { concurrencyKey: "b", concurrencyLimit: 2, now: T0 + 5 })
        expect(yield* claim("w1", T0 + 10)).toEqual(["a1", "a2", "b1"])
        yield* finish("a1", "w1", T0 + 20)
        yield* finish("a2", "w1", T0 + 20)
        // Two slots free, one token left.
        expect(yield* claim("w1", T0 + 21)).toEqual(["a3"])
        expect(yield* claim("w1", T0 + 1_010)).toEqual(["b2"])
        expect(yield* running()).toEqual(["a3", "b1", "b2"])
      })
    )

    test(
      "queueState: the recorded limits, the running runs, a key's running runs, the rate window",
      Effect.gen(function*() {
        const store = yield* Store
        expect(yield* store.queueState({ queue: "emails", now: T0 })).toEqual({
          queue: undefined,
          running: 0,
          keyRunning: undefined,
          rate: undefined
        })
        yield* declare([limits("emails", { concurrency: 5, rateLimit: { limit: 10, intervalMillis: 60_000 } })])
        yield* createRuns(["a1", "a2"], { concurrencyKey: "a", concurrencyLimit: 3 })
        yield* createRuns(["b1"], { concurrencyKey: "b", concurrencyLimit: 3, now: T0 + 5 })
        yield* claim("w1", T0 + 10)
        const state = yield* store.queueState({ queue: "emails", key: "a", now: T0 + 20 })
        expect(state).toEqual({
          queue: {
            name: "emails",
            concurrency: 5,
            rateLimit: { limit: 10, intervalMillis: 60_000 },
            keyed: true,
            declaredBy: "w0",
            declaredAt: T0
          },
          running: 3,
          keyRunning: 2,
          rate: { claims: 3, reopensAt: undefined }
        })
      })
    )

    test(
      "declareQueues: the last declaration wins and returns the one it replaced; keyed marks stay",
      Effect.gen(function*() {
        const store = yield* Store
        expect(yield* declare([limits("emails", { concurrency: 5 })], ["emails"])).toEqual([])
        // The same limits again change nothing.
        expect(yield* declare([limits("emails", { concurrency: 5 })], [], T0 + 1)).toEqual([])
        const replaced = yield* store.declareQueues({
          queues: [limits("emails", { concurrency: 2, rateLimit: { limit: 1, intervalMillis: 1_000 } })],
          keyed: [],
          by: "w9",
          now: T0 + 2
        })
        expect(replaced).toEqual([{
          name: "emails",
          concurrency: 5,
          rateLimit: undefined,
          keyed: true,
          declaredBy: "w0",
          declaredAt: T0 + 1
        }])
        expect((yield* store.queueState({ queue: "emails", now: T0 + 3 })).queue).toEqual({
          name: "emails",
          concurrency: 2,
          rateLimit: { limit: 1, intervalMillis: 1_000 },
          keyed: true,
          declaredBy: "w9",
          declaredAt: T0 + 2
        })
        // A declaration without limits lifts them.
        yield* declare([limits("emails")], [], T0 + 4)
        yield* createRuns(["r1", "r2", "r3"])
        expect(yield* claim("w1", T0 + 10)).toEqual(["r1", "r2", "r3"])
      })
    )

    test(
      "limited queues are claimed first, then the others, within one limit",
      Effect.gen(function*() {
        yield* declare([limits("emails", { concurrency: 1 })])
        yield* createRuns(["d1", "d2"], {}, "default")
        yield* createRuns(["e1", "e2"], { now: T0 + 10 })
        const claimed: ReadonlyArray<string> = yield* claim("w1", T0 + 20, { queues: ["default", "emails"], limit: 2 })
        expect(claimed).toEqual(["e1", "d1"])
        expect(yield* claim("w1", T0 + 21, { queues: ["default", "emails"] })).toEqual(["d2"])
      })
    )
  })
}
