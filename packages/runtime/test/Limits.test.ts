/**
 * Queue limits: the pure parts (the sliding rate window, the admission rule, what a worker
 * declares, where a run goes, why a queued run waits), then workers honouring declared limits
 * under virtual time (TestClock) on the memory store: a rate-limited worker sleeps until its window
 * reopens instead of polling, a queue's concurrency and a workflow's concurrency key hold while
 * runs sleep in their steps.
 */
import { describe, expect, it } from "@effect/vitest"
import { Queue, Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.js"
import * as Limits from "../src/Limits.js"
import * as MemoryStore from "../src/MemoryStore.js"
import { type RunRecord, Store } from "../src/Store.js"
import * as Worker from "../src/Worker.js"

const T0 = 1_700_000_000_000

describe("Limits.rateWindow", () => {
  const rate = { limit: 3, intervalMillis: 1_000 }

  it("allows `limit` claims in an empty window", () => {
    expect(Limits.rateWindow(rate, [], T0)).toEqual({ claims: 0, free: 3, reopensAt: undefined })
  })

  it("counts the claims of the last interval only: a claim leaves the window an interval after it was made", () => {
    const claims = [T0 - 1_000, T0 - 999, T0 - 10]
    expect(Limits.rateWindow(rate, claims, T0)).toEqual({ claims: 2, free: 1, reopensAt: undefined })
    expect(Limits.rateWindow(rate, claims, T0 + 1)).toEqual({ claims: 1, free: 2, reopensAt: undefined })
  })

  it("full: reopens when its oldest claim leaves, whatever the order it was given in", () => {
    expect(Limits.rateWindow(rate, [T0 - 10, T0 - 500, T0 - 200], T0)).toEqual({
      claims: 3,
      free: 0,
      reopensAt: T0 + 500
    })
  })

  it("over full (a limit lowered since): reopens once enough claims left to be under the limit", () => {
    const claims = [T0 - 900, T0 - 800, T0 - 700, T0 - 600, T0 - 500]
    expect(Limits.rateWindow(rate, claims, T0)).toEqual({ claims: 5, free: 0, reopensAt: T0 + 300 })
    expect(Limits.rateWindow(rate, claims, T0 + 300).free).toBe(1)
  })

  it("never lets more than `limit` claims into any interval, claiming whenever allowed", () => {
    // Claim greedily at every millisecond for 5 intervals, then check every window.
    const made: Array<number> = []
    for (let now = 0; now < 5_000; now++) {
      const { free } = Limits.rateWindow(rate, made, now)
      for (let i = 0; i < Math.min(free, 2); i++) made.push(now)
    }
    for (let start = -1_000; start < 5_000; start++) {
      expect(made.filter((at) => at >= start && at < start + 1_000).length).toBeLessThanOrEqual(3)
    }
    // And it used the allowance: three per interval.
    expect(made.length).toBe(15)
  })
})

describe("Limits.admit", () => {
  it("a new run needs a slot, room under its key's limit and a token; each admission spends them", () => {
    const budget: Limits.Budget = { slots: 2, tokens: 5 }
    expect(Limits.admit(budget, { status: "queued", concurrencyKey: "a", concurrencyLimit: 2 }, 2)).toBe(false)
    expect(Limits.admit(budget, { status: "queued", concurrencyKey: "a", concurrencyLimit: 2 }, 1)).toBe(true)
    expect(Limits.admit(budget, { status: "sleeping" }, 0)).toBe(true)
    expect(budget).toEqual({ slots: 0, tokens: 3 })
    expect(Limits.admit(budget, { status: "queued" }, 0)).toBe(false)
    // A run whose lease expired holds its slot already.
    expect(Limits.admit(budget, { status: "running", concurrencyKey: "a", concurrencyLimit: 1 }, 5)).toBe(true)
    expect(budget).toEqual({ slots: 0, tokens: 2 })
  })

  it("no token, no claim, not even a takeover", () => {
    expect(Limits.admit({ slots: Infinity, tokens: 0 }, { status: "running" }, 0)).toBe(false)
  })
})

const Input = Schema.Struct({ customer: Schema.String, ms: Schema.Number })
const emails = Queue.make({ name: "emails", concurrency: 2 })

describe("Limits.declarations and placement", () => {
  const plain = Workflow.make({ name: "plain", input: Input, success: Schema.Void, run: () => Effect.void })
  const keyed = Workflow.make({
    name: "keyed",
    input: Input,
    success: Schema.Void,
    queue: emails,
    concurrencyKey: (input) => input.customer,
    concurrencyLimit: 3,
    run: () => Effect.void
  })
  const named = Workflow.make({
    name: "named",
    input: Input,
    success: Schema.Void,
    queue: "reports",
    run: () => Effect.void
  })

  it("a worker claims from its workflows' queues, declares their limits and marks keyed queues", () => {
    const declared = Either.getOrThrow(Limits.declarations([plain, keyed, named], undefined))
    expect(declared.names).toEqual(["default", "emails", "reports"])
    expect(declared.queues).toEqual([emails])
    expect(declared.keyed).toEqual(["emails"])
  })

  it("queues given to the worker replace its workflows' as what it claims from; their declarations add up", () => {
    const bulk = Queue.make({ name: "bulk", rateLimit: { limit: 10, interval: "1 second" } })
    const declared = Either.getOrThrow(Limits.declarations([keyed], [bulk, "other"]))
    expect(declared.names).toEqual(["bulk", "other"])
    expect(declared.queues).toEqual([bulk, emails])
    expect(Either.getOrThrow(Limits.declarations([], undefined)).names).toEqual(["default"])
  })

  it("two different declarations of one queue are refused, naming both", () => {
    const other = Queue.make({ name: "emails", concurrency: 3 })
    const conflict = Limits.declarations([keyed], [other])
    expect(Either.isLeft(conflict)).toBe(true)
    expect(Either.flip(conflict).pipe(Either.getOrThrow)).toBe(
      `queue "emails" is declared twice with different limits: concurrency 3 by the worker's queues, ` +
        `concurrency 2 by workflow "keyed"; declare it once (Queue.make) and use that everywhere`
    )
    // The same limits twice are the same declaration.
    expect(Either.isRight(Limits.declarations([keyed], [Queue.make({ name: "emails", concurrency: 2 })]))).toBe(true)
  })

  it("a run goes to the queue its start names, else its workflow's; its key comes from its input", () => {
    expect(Limits.placement(keyed, { customer: "c7", ms: 1 })).toEqual({
      queue: "emails",
      concurrencyKey: "c7",
      concurrencyLimit: 3
    })
    expect(Limits.placement(keyed, { customer: "c7", ms: 1 }, "urgent").queue).toBe("urgent")
    expect(Limits.placement(plain, { customer: "c7", ms: 1 })).toEqual({
      queue: undefined,
      concurrencyKey: undefined,
      concurrencyLimit: undefined
    })
  })
})

describe("Limits.whyQueued", () => {
  const run = (overrides: Partial<RunRecord> = {}): RunRecord => ({
    id: "r1",
    workflow: "send",
    version: "v1",
    status: "queued",
    input: null,
    output: undefined,
    failure: undefined,
    idempotencyKey: undefined,
    queue: "emails",
    priority: 0,
    leaseOwner: undefined,
    leaseExpiresAt: undefined,
    wakeAt: undefined,
    reason: undefined,
    recoveries: 0,
    createdAt: T0,
    updatedAt: T0,
    startedAt: undefined,
    finishedAt: undefined,
    ...overrides
  })
  const queue = {
    name: "emails",
    concurrency: 5,
    rateLimit: { limit: 100, intervalMillis: 60_000 },
    keyed: true,
    declaredBy: "w1",
    declaredAt: T0
  }

  it("names every limit that holds a due queued run back", () => {
    expect(
      Limits.whyQueued(run({ concurrencyKey: "customer-7", concurrencyLimit: 2 }), {
        queue,
        running: 5,
        keyRunning: 2,
        rate: { claims: 100, reopensAt: T0 + 30_000 }
      }, T0)
    ).toBe(
      "queue emails is at its concurrency limit 5 (5 running); key customer-7 is at its limit 2 in queue emails; " +
        "queue emails is rate limited (100 per 1m) until 2023-11-14T22:13:50.000Z"
    )
  })

  it("says nothing when no limit holds it back, or it is not a due queued run", () => {
    const free = { queue, running: 4, keyRunning: 1, rate: { claims: 3, reopensAt: undefined } }
    expect(Limits.whyQueued(run({ concurrencyKey: "customer-7", concurrencyLimit: 2 }), free, T0)).toBeUndefined()
    const full = { ...free, running: 5 }
    expect(Limits.whyQueued(run({ status: "sleeping" }), full, T0)).toBeUndefined()
    expect(Limits.whyQueued(run({ wakeAt: T0 + 1 }), full, T0)).toBeUndefined()
    expect(Limits.whyQueued(run(), { queue: undefined, running: 9, keyRunning: undefined, rate: undefined }, T0))
      .toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------
// Workers under virtual time.

const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
  Effect.provide(effect, Layer.provideMerge(Client.layer, MemoryStore.layer))

// Lets forked fibers run up to their next wait. (Test workers have no grace period: a failed
// expectation closes the scope, and a graceful shutdown would wait for a clock nobody moves.)
const settle = Effect.gen(function*() {
  for (let i = 0; i < 30; i++) yield* Effect.yieldNow()
})

const statuses = (ids: ReadonlyArray<string>) =>
  Effect.flatMap(
    Store,
    (store) =>
      Effect.forEach(
        ids,
        (id) => Effect.map(store.getRun(id), (run) => run._tag === "Some" ? run.value.status : "none")
      )
  )

/** A workflow of one step that sleeps `ms` in process (virtual time) and records when it ran. */
const sleeper = (name: string, spans: Array<{ customer: string; start: number; end: number }>, options: {
  readonly queue?: Queue.Queue | string
  readonly keyed?: boolean
} = {}) => {
  const work = Step.make({
    name: "work",
    success: Schema.Void,
    run: ({ customer, ms }: typeof Input.Type) =>
      Effect.gen(function*() {
        const start = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        yield* Effect.sleep(`${ms} millis`)
        spans.push({ customer, start, end: yield* Effect.clockWith((clock) => clock.currentTimeMillis) })
      })
  })
  return Workflow.make({
    name,
    input: Input,
    success: Schema.Void,
    queue: options.queue,
    ...(options.keyed === true ? { concurrencyKey: (input: typeof Input.Type) => input.customer } : {}),
    run: (input) => work(input)
  })
}

describe("workers honour queue limits (virtual time)", () => {
  it.effect("a rate-limited worker sleeps until its window reopens, then claims what the window allows", () =>
    provide(
      Effect.gen(function*() {
        const spans: Array<{ customer: string; start: number; end: number }> = []
        const limited = Queue.make({ name: "api", rateLimit: { limit: 2, interval: "1 minute" } })
        const wf = sleeper("call-api", spans, { queue: limited })
        const client = yield* Client.Client
        const ids: Array<string> = []
        for (let i = 0; i < 5; i++) {
          ids.push((yield* client.start(wf, { customer: `c${i}`, ms: 0 }, { id: `r${i}` })).runId)
        }
        // A day between polls: only the window's reopening (nextWakeAt) can wake it in time.
        yield* Worker.start({ workflows: [wf], pollInterval: "1 day", concurrency: 10, grace: 0 })
        yield* settle
        expect(yield* statuses(ids)).toEqual(["succeeded", "succeeded", "queued", "queued", "queued"])
        yield* TestClock.adjust("59 seconds")
        yield* settle
        expect((yield* statuses(ids)).filter((s) => s === "succeeded")).toHaveLength(2)
        yield* TestClock.adjust("1 second")
        yield* settle
        expect(yield* statuses(ids)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded", "queued"])
        yield* TestClock.adjust("1 minute")
        yield* settle
        expect(yield* statuses(ids)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"])
        expect(spans.map((span) => span.start - spans[0].start)).toEqual([0, 0, 60_000, 60_000, 120_000])
      }).pipe(Effect.scoped)
    ))

  it.effect("a queue's concurrency and a workflow's key hold across two workers; others run meanwhile", () =>
    provide(
      Effect.gen(function*() {
        const spans: Array<{ customer: string; start: number; end: number }> = []
        const wf = sleeper("send", spans, { queue: emails, keyed: true })
        const client = yield* Client.Client
        const ids: Array<string> = []
        for (const [i, customer] of ["a", "a", "a", "b", "c"].entries()) {
          ids.push((yield* client.start(wf, { customer, ms: 10_000 }, { id: `r${i}` })).runId)
        }
        const run = yield* client.status(ids[0])
        expect(run).toMatchObject({ queue: "emails", concurrencyKey: "a", concurrencyLimit: 1 })
        // Two workers with room for ten each; the queue allows 2 at once, the key a 1.
        yield* Worker.start({ workflows: [wf], pollInterval: "1 second", concurrency: 10, grace: 0 })
        yield* Worker.start({ workflows: [wf], pollInterval: "1 second", concurrency: 10, grace: 0 })
        yield* settle
        expect(yield* statuses(ids)).toEqual(["running", "queued", "queued", "running", "queued"])
        for (let i = 0; i < 6; i++) {
          yield* TestClock.adjust("5 seconds")
          yield* settle
        }
        expect(yield* statuses(ids)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"])
        // a, b at 0 s; a#2 and c at 10 s; a#3 at 20 s.
        expect(spans.map((span) => `${span.customer}@${span.start - spans[0].start}`).sort()).toEqual([
          "a@0",
          "a@10000",
          "a@20000",
          "b@0",
          "c@10000"
        ])
      }).pipe(Effect.scoped)
    ))

  it.effect("a worker records the limits it declares; a declaration that changes them wins, with a warning", () =>
    provide(
      Effect.gen(function*() {
        const store = yield* Store
        const events: Array<Worker.WorkerEvent> = []
        const wf = sleeper("send", [], { queue: emails })
        yield* Worker.start({ workflows: [wf], onEvent: (event) => Effect.sync(() => void events.push(event)) })
        yield* settle
        expect((yield* store.queueState({ queue: "emails", now: T0 })).queue).toMatchObject({
          concurrency: 2,
          rateLimit: undefined
        })
        const wider = Queue.make({ name: "emails", concurrency: 4 })
        yield* Worker.start({
          workflows: [wf],
          queues: [wider, "default"],
          onEvent: (event) => Effect.sync(() => void events.push(event))
        })
          .pipe(Effect.catchAllDefect((defect) => Effect.succeed(defect)))
        yield* settle
        // Two declarations in one worker disagree: that worker refuses to start (a defect).
        expect((yield* store.queueState({ queue: "emails", now: T0 })).queue).toMatchObject({ concurrency: 2 })
        const other = sleeper("other", [])
        yield* Worker.start({
          workflows: [other],
          queues: [wider],
          onEvent: (event) => Effect.sync(() => void events.push(event))
        })
        yield* settle
        expect((yield* store.queueState({ queue: "emails", now: T0 })).queue).toMatchObject({ concurrency: 4 })
        const declared = events.filter((event) => event._tag === "QueuesDeclared")
        expect(declared).toHaveLength(2)
        expect(declared[1]).toMatchObject({ changed: [{ name: "emails", concurrency: 2 }] })
      }).pipe(Effect.scoped)
    ))
})
