/**
 * The Store contract as one test suite. Every implementation (memory, SQLite, later PostgreSQL)
 * runs it, each test against a fresh store, so that they cannot drift apart. It uses nothing but
 * the `Store` service: no SQL, no knowledge of the backend.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as FreshRuns from "../src/internal/FreshRuns.js"
import type { AttemptRow, NewRun, RunRecord, StepRecord } from "../src/Store.js"
import { Store } from "../src/Store.js"
import { limitsConformance } from "./LimitsConformance.js"

const T0 = 1_700_000_000_000
const LEASE = 30_000

const newRun = (overrides: Partial<NewRun> = {}): NewRun => ({
  id: "run-1",
  workflow: "checkout",
  version: "v1",
  input: { orderId: "o-1", items: [{ sku: "a", qty: 2 }], total: 12.5 },
  now: T0,
  ...overrides
})

const step = (overrides: Partial<StepRecord> = {}): StepRecord => ({
  runId: "run-1",
  stepId: "charge",
  name: "charge",
  kind: "step",
  position: 0,
  result: { _tag: "Success", value: { chargeId: "ch_1" } },
  failed: false,
  attempts: 1,
  startedAt: T0 + 10,
  finishedAt: T0 + 20,
  ...overrides
})

const attempt = (overrides: Partial<AttemptRow> = {}): AttemptRow => ({
  runId: "run-1",
  stepId: "charge",
  attempt: 1,
  startedAt: T0 + 10,
  finishedAt: T0 + 20,
  outcome: "success",
  ...overrides
})

const getRun = (id: string) =>
  Effect.flatMap(Store, (store) => store.getRun(id)).pipe(
    Effect.map(Option.getOrElse((): RunRecord => expect.fail(`run ${id} is missing`)))
  )

/** A queued run `run-1`, claimed by `w1` at T0 with a lease of LEASE. */
const claimed = (overrides: Partial<NewRun> = {}) =>
  Effect.flatMap(
    Store,
    (store) =>
      store.createRun(newRun({ claim: { owner: "w1", leaseMillis: LEASE }, ...overrides })).pipe(
        Effect.map(({ run }) => run)
      )
  )

/**
 * Runs the store contract against the stores `makeLayer` builds: called once per test, it must
 * give a fresh, empty store each time.
 */
export const storeConformance = (name: string, makeLayer: () => Layer.Layer<Store, unknown>): void => {
  const test = (title: string, body: Effect.Effect<void, unknown, Store>) =>
    it.effect(title, () => Effect.provide(body, makeLayer()))
  // With the real clock: notices travel through the server on PostgreSQL.
  const liveTest = (title: string, body: Effect.Effect<void, unknown, Store>) =>
    it.live(title, () => Effect.provide(body, makeLayer()))

  describe(`${name} store conformance`, () => {
    test(
      "names its dialect",
      Effect.gen(function*() {
        const store = yield* Store
        expect(store.dialect).toMatch(/^[a-z]+$/)
      })
    )

    describe("createRun", () => {
      test(
        "creates a queued run with the defaults",
        Effect.gen(function*() {
          const store = yield* Store
          const { created, run } = yield* store.createRun(newRun())
          expect(created).toBe(true)
          expect(run).toEqual({
            id: "run-1",
            workflow: "checkout",
            version: "v1",
            status: "queued",
            input: { orderId: "o-1", items: [{ sku: "a", qty: 2 }], total: 12.5 },
            output: undefined,
            failure: undefined,
            idempotencyKey: undefined,
            queue: "default",
            priority: 0,
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
            wakeAt: undefined,
            reason: undefined,
            recoveries: 0,
            origin: undefined,
            createdAt: T0,
            updatedAt: T0,
            startedAt: undefined,
            finishedAt: undefined
          })
          expect(yield* store.getRun("run-1")).toEqual(Option.some(run))
        })
      )

      test(
        "keeps the correlation id given (none when none is given)",
        Effect.gen(function*() {
          const store = yield* Store
          const { run } = yield* store.createRun(newRun({ correlationId: "req-7f3a ünïcode" }))
          expect(run.correlationId).toBe("req-7f3a ünïcode")
          expect((yield* getRun("run-1")).correlationId).toBe("req-7f3a ünïcode")
          const { run: plain } = yield* store.createRun(newRun({ id: "run-2" }))
          expect(plain.correlationId).toBeUndefined()
          expect((yield* getRun("run-2")).correlationId).toBeUndefined()
        })
      )

      test(
        "keeps the queue, priority, idempotency key and origin given",
        Effect.gen(function*() {
          const store = yield* Store
          const { run } = yield* store.createRun(
            newRun({ queue: "emails", priority: -3, idempotencyKey: "order-1", origin: "/srv/app/workflows/é.ts" })
          )
          const given = ["emails", -3, "order-1", "/srv/app/workflows/é.ts"]
          expect([run.queue, run.priority, run.idempotencyKey, run.origin]).toEqual(given)
          const read = yield* getRun("run-1")
          expect([read.queue, read.priority, read.idempotencyKey, read.origin]).toEqual(given)
        })
      )

      test(
        "returns the recorded run for the same id and the same input, whatever its key order",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          const again = yield* store.createRun(
            newRun({ input: { total: 12.5, items: [{ qty: 2, sku: "a" }], orderId: "o-1" }, now: T0 + 5000 })
          )
          expect(again.created).toBe(false)
          expect(again.run.createdAt).toBe(T0)
          expect(again.run.input).toEqual({ orderId: "o-1", items: [{ sku: "a", qty: 2 }], total: 12.5 })
          expect(yield* store.listRuns({})).toHaveLength(1)
        })
      )

      test(
        "refuses the same id with another input",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          const error = yield* Effect.flip(store.createRun(newRun({ input: { orderId: "o-2" } })))
          expect(error._tag).toBe("RunConflict")
          expect(error).toMatchObject({ runId: "run-1" })
          // Array order is part of the value: a permutation is another input.
          const permuted = yield* Effect.flip(
            store.createRun(newRun({ input: { orderId: "o-1", items: [{ sku: "a", qty: 2 }], total: 12.51 } }))
          )
          expect(permuted._tag).toBe("RunConflict")
          expect((yield* getRun("run-1")).input).toEqual(newRun().input)
        })
      )

      test(
        "refuses the same id with another workflow",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          const error = yield* Effect.flip(store.createRun(newRun({ workflow: "refund" })))
          expect(error._tag).toBe("RunConflict")
          expect((yield* getRun("run-1")).workflow).toBe("checkout")
        })
      )

      test(
        "returns the run recorded under the same idempotency key, whatever its input",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ idempotencyKey: "order-1" }))
          const again = yield* store.createRun(
            newRun({ id: "run-2", idempotencyKey: "order-1", input: { orderId: "other" }, now: T0 + 1 })
          )
          expect(again.created).toBe(false)
          expect(again.run.id).toBe("run-1")
          expect(again.run.input).toEqual(newRun().input)
          expect(yield* store.getRun("run-2")).toEqual(Option.none())
        })
      )

      test(
        "scopes idempotency keys by workflow, and runs without a key never collide",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ idempotencyKey: "k" }))
          const otherWorkflow = yield* store.createRun(newRun({ id: "run-2", workflow: "refund", idempotencyKey: "k" }))
          expect(otherWorkflow.created).toBe(true)
          const noKey1 = yield* store.createRun(newRun({ id: "run-3" }))
          const noKey2 = yield* store.createRun(newRun({ id: "run-4" }))
          expect([noKey1.created, noKey2.created]).toEqual([true, true])
          expect(yield* store.listRuns({})).toHaveLength(4)
        })
      )

      test(
        "claims the run at creation when asked",
        Effect.gen(function*() {
          const store = yield* Store
          const { created, run } = yield* store.createRun(newRun({ claim: { owner: "w1", leaseMillis: LEASE } }))
          expect(created).toBe(true)
          expect(run).toMatchObject({
            status: "running",
            leaseOwner: "w1",
            leaseExpiresAt: T0 + LEASE,
            startedAt: T0,
            recoveries: 0
          })
          expect(yield* getRun("run-1")).toEqual(run)
          const error = yield* Effect.flip(
            store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + 1 })
          )
          expect(error._tag).toBe("RunNotClaimable")
        })
      )

      test(
        "does not claim a run that was already recorded",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          const again = yield* store.createRun(newRun({ claim: { owner: "w1", leaseMillis: LEASE }, now: T0 + 1 }))
          expect(again.created).toBe(false)
          expect(again.run).toMatchObject({ status: "queued", leaseOwner: undefined, startedAt: undefined })
        })
      )
    })

    describe("getRun", () => {
      test(
        "finds nothing under an unknown id",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          expect(yield* store.getRun("run-2")).toEqual(Option.none())
        })
      )
    })

    describe("claimRun", () => {
      test(
        "takes a queued run: running, leased, started",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          const run = yield* store.claimRun({ id: "run-1", owner: "w1", leaseMillis: LEASE, now: T0 + 10 })
          expect(run).toMatchObject({
            status: "running",
            leaseOwner: "w1",
            leaseExpiresAt: T0 + 10 + LEASE,
            startedAt: T0 + 10,
            recoveries: 0,
            updatedAt: T0 + 10,
            createdAt: T0
          })
          expect(yield* getRun("run-1")).toEqual(run)
        })
      )

      test(
        "refuses a live lease held by another owner",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const error = yield* Effect.flip(
            store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + LEASE - 1 })
          )
          expect(error._tag).toBe("RunNotClaimable")
          expect(error).toMatchObject({ runId: "run-1", status: "running" })
          expect(yield* getRun("run-1")).toMatchObject({ leaseOwner: "w1", leaseExpiresAt: T0 + LEASE, recoveries: 0 })
        })
      )

      test(
        "takes over an expired lease and counts a recovery",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          // A lease is live while leaseExpiresAt > now: at its expiry instant it is free.
          const run = yield* store.claimRun({ id: "run-1", owner: "w2", leaseMillis: 1000, now: T0 + LEASE })
          expect(run).toMatchObject({
            status: "running",
            leaseOwner: "w2",
            leaseExpiresAt: T0 + LEASE + 1000,
            startedAt: T0,
            recoveries: 1
          })
        })
      )

      test(
        "takes a live lease when forced, counting a recovery",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const run = yield* store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + 1, force: true })
          expect(run).toMatchObject({ leaseOwner: "w2", leaseExpiresAt: T0 + 1 + LEASE, recoveries: 1 })
        })
      )

      test(
        "lets the owner claim again, which counts as a recovery once started",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const run = yield* store.claimRun({ id: "run-1", owner: "w1", leaseMillis: LEASE, now: T0 + 5 })
          expect(run).toMatchObject({ leaseOwner: "w1", leaseExpiresAt: T0 + 5 + LEASE, recoveries: 1, startedAt: T0 })
        })
      )

      test(
        "refuses a finished run, even when forced",
        Effect.gen(function*() {
          const store = yield* Store
          const outcomes = [
            { status: "succeeded", output: 1 },
            { status: "failed", failure: { _tag: "Fail" } },
            { status: "cancelled", failure: { _tag: "Interrupt" } }
          ] as const
          for (const [index, outcome] of outcomes.entries()) {
            const id = `run-${index}`
            yield* claimed({ id })
            yield* store.finishRun({ id, owner: "w1", outcome, now: T0 + 1 })
            const error = yield* Effect.flip(
              store.claimRun({ id, owner: "w2", leaseMillis: LEASE, now: T0 + 2, force: true })
            )
            expect(error._tag).toBe("RunNotClaimable")
            expect(error).toMatchObject({ runId: id, status: outcome.status })
            expect(yield* getRun(id)).toMatchObject({ status: outcome.status, leaseOwner: undefined })
          }
        })
      )

      test(
        "refuses an unknown run",
        Effect.gen(function*() {
          const store = yield* Store
          const error = yield* Effect.flip(store.claimRun({ id: "nope", owner: "w1", leaseMillis: LEASE, now: T0 }))
          expect(error._tag).toBe("RunNotClaimable")
          expect(error).toMatchObject({ runId: "nope" })
          expect(yield* store.getRun("nope")).toEqual(Option.none())
        })
      )
    })

    describe("nextWakeAt", () => {
      test(
        "is none when no run of the queues waits for a time",
        Effect.gen(function*() {
          const store = yield* Store
          expect(yield* store.nextWakeAt({ queues: ["default"], now: T0 })).toEqual(Option.none())
          yield* store.createRun(newRun())
          expect(yield* store.nextWakeAt({ queues: ["default"], now: T0 })).toEqual(Option.none())
        })
      )

      test(
        "is the earliest future wakeAt of a queued run or lease expiry of a running run, by queue and workflow",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ id: "late", wakeAt: T0 + 50_000 }))
          yield* store.createRun(newRun({ id: "soon", wakeAt: T0 + 20_000 }))
          yield* store.createRun(newRun({ id: "elsewhere", queue: "other", wakeAt: T0 + 1_000 }))
          yield* store.createRun(newRun({ id: "unknown", workflow: "refund", wakeAt: T0 + 2_000 }))
          const at = (now: number, workflows?: ReadonlyArray<string>) =>
            store.nextWakeAt({ queues: ["default"], workflows, now })
          expect(yield* at(T0, ["checkout"])).toEqual(Option.some(T0 + 20_000))
          expect(yield* at(T0)).toEqual(Option.some(T0 + 2_000))
          expect(yield* store.nextWakeAt({ queues: ["other", "default"], workflows: ["checkout"], now: T0 }))
            .toEqual(Option.some(T0 + 1_000))
          // Due already: claimable now, so not a time to wait for.
          expect(yield* at(T0 + 20_000, ["checkout"])).toEqual(Option.some(T0 + 50_000))
          yield* claimed({ id: "held", now: T0 + 1 })
          expect(yield* at(T0 + 2, ["checkout"])).toEqual(Option.some(T0 + 20_000))
          expect(yield* at(T0 + 25_000, ["checkout"])).toEqual(Option.some(T0 + 1 + LEASE))
          yield* store.finishRun({
            id: "held",
            owner: "w1",
            outcome: { status: "succeeded", output: null },
            now: T0 + 3
          })
          expect(yield* at(T0 + 25_000, ["checkout"])).toEqual(Option.some(T0 + 50_000))
          expect(yield* store.nextWakeAt({ queues: [], now: T0 })).toEqual(Option.none())
          expect(yield* store.nextWakeAt({ queues: ["default"], workflows: [], now: T0 })).toEqual(Option.none())
        })
      )
    })

    describe("suspendRun", () => {
      test(
        "leaves the run sleeping until its wake time, with no lease, and claimNext takes it once due, first",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.createRun(newRun({ id: "fresh", priority: 5, now: T0 }))
          yield* store.suspendRun({
            id: "run-1",
            owner: "w1",
            wakeAt: T0 + 60_000,
            reason: "sleeping until then",
            now: T0 + 5
          })
          expect(yield* getRun("run-1")).toMatchObject({
            status: "sleeping",
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
            wakeAt: T0 + 60_000,
            reason: "sleeping until then",
            recoveries: 0
          })
          const claim = (now: number, limit = 5) =>
            store.claimNext({ owner: "w2", queues: ["default"], limit, leaseMillis: LEASE, now })
          expect((yield* claim(T0 + 10, 5)).map((run) => run.id)).toEqual(["fresh"])
          // The lease of "fresh" expires first; then the sleeper is due.
          expect(yield* store.nextWakeAt({ queues: ["default"], now: T0 + 10 })).toEqual(Option.some(T0 + 10 + LEASE))
          yield* store.finishRun({
            id: "fresh",
            owner: "w2",
            outcome: { status: "succeeded", output: null },
            now: T0 + 11
          })
          expect(yield* store.nextWakeAt({ queues: ["default"], now: T0 + 11 })).toEqual(Option.some(T0 + 60_000))
          expect(yield* claim(T0 + 59_999)).toEqual([])
          const [woken] = yield* claim(T0 + 60_000)
          // Waking from a planned sleep is not a recovery.
          expect(woken).toMatchObject({
            id: "run-1",
            status: "running",
            leaseOwner: "w2",
            recoveries: 0,
            reason: undefined
          })
        })
      )

      test(
        "due sleepers come before queued runs, whatever their priority, in wake order",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ id: "queued", priority: 9, now: T0 }))
          for (const [id, wakeAt] of [["late", T0 + 20], ["early", T0 + 10]] as const) {
            yield* claimed({ id })
            yield* store.suspendRun({ id, owner: "w1", wakeAt, reason: "sleeping", now: T0 + 1 })
          }
          const runs = yield* store.claimNext({
            owner: "w2",
            queues: ["default"],
            limit: 2,
            leaseMillis: LEASE,
            now: T0 + 30
          })
          expect(runs.map((run) => run.id)).toEqual(["early", "late"])
          const next = yield* store.claimNext({
            owner: "w2",
            queues: ["default"],
            limit: 2,
            leaseMillis: LEASE,
            now: T0 + 30
          })
          expect(next.map((run) => run.id)).toEqual(["queued"])
        })
      )

      test(
        "fails with LeaseLost for another owner and changes nothing",
        Effect.gen(function*() {
          const store = yield* Store
          const before = yield* claimed()
          const error = yield* Effect.flip(
            store.suspendRun({ id: "run-1", owner: "w2", wakeAt: T0 + 1_000, reason: "no", now: T0 + 1 })
          )
          expect(error._tag).toBe("LeaseLost")
          expect(yield* getRun("run-1")).toEqual(before)
        })
      )
    })

    describe("signals", () => {
      const signalStep = (stepId: string, position = 0) => ({
        runId: "run-1",
        stepId,
        name: "$signal:approved",
        kind: "signal" as const,
        position,
        attempts: 0,
        startedAt: T0 + 10,
        finishedAt: T0 + 10
      })

      test(
        "a signal to no run or to a finished run is refused and nothing is stored",
        Effect.gen(function*() {
          const store = yield* Store
          const none = yield* Effect.flip(
            store.deliverSignal({ runId: "nope", name: "approved", payload: true, now: T0 })
          )
          expect(none._tag).toBe("RunNotFound")
          yield* claimed()
          yield* store.finishRun({
            id: "run-1",
            owner: "w1",
            outcome: { status: "succeeded", output: null },
            now: T0 + 1
          })
          const finished = yield* Effect.flip(
            store.deliverSignal({ runId: "run-1", name: "approved", payload: true, now: T0 + 2 })
          )
          expect(finished).toMatchObject({ _tag: "RunFinished", status: "succeeded" })
          expect(yield* store.listSignals("run-1")).toEqual([])
        })
      )

      test(
        "signals wait in the mailbox; the lease holder takes them oldest first, each once, journaled with the step",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const first = yield* store.deliverSignal({
            runId: "run-1",
            name: "approved",
            payload: { by: "ann" },
            now: T0 + 1
          })
          yield* store.deliverSignal({ runId: "run-1", name: "other", payload: 1, now: T0 + 2 })
          yield* store.deliverSignal({ runId: "run-1", name: "approved", payload: { by: "bob" }, now: T0 + 3 })
          expect(first.woke).toBe(false)
          const take = (stepId: string, position: number, owner = "w1") =>
            store.takeSignal({
              owner,
              step: signalStep(stepId, position),
              name: "approved",
              deadline: undefined,
              now: T0 + 10
            })
          const lost = yield* Effect.flip(take("$signal:approved", 0, "w2"))
          expect(lost._tag).toBe("LeaseLost")
          expect(yield* take("$signal:approved", 0)).toEqual(Option.some({ by: "ann" }))
          expect(yield* take("$signal:approved#2", 1)).toEqual(Option.some({ by: "bob" }))
          expect(yield* take("$signal:approved#3", 2)).toEqual(Option.none())
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps.map((s) => [s.stepId, s.kind, s.result, s.failed])).toEqual([
            ["$signal:approved", "signal", { _tag: "Success", value: { by: "ann" } }, false],
            ["$signal:approved#2", "signal", { _tag: "Success", value: { by: "bob" } }, false]
          ])
          const mailbox = yield* store.listSignals("run-1")
          expect(mailbox.map((s) => [s.name, s.payload, s.takenBy ?? null])).toEqual([
            ["approved", { by: "ann" }, "$signal:approved"],
            ["other", 1, null],
            ["approved", { by: "bob" }, "$signal:approved#2"]
          ])
          expect(mailbox[0].seq).toBeLessThan(mailbox[1].seq)
        })
      )

      test(
        "a deadline excludes signals sent after it",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.deliverSignal({ runId: "run-1", name: "approved", payload: "late", now: T0 + 500 })
          expect(
            yield* store.takeSignal({
              owner: "w1",
              step: signalStep("$signal:approved"),
              name: "approved",
              deadline: T0 + 499,
              now: T0 + 600
            })
          ).toEqual(Option.none())
        })
      )

      test(
        "a run waiting for a signal is woken by that signal only; waiting with one already in the mailbox stays queued",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          expect(
            yield* store.suspendRun({
              id: "run-1",
              owner: "w1",
              wakeAt: T0 + 60_000,
              signals: [{ name: "approved", deadline: T0 + 60_000 }],
              reason: "waiting for signal approved",
              now: T0 + 1
            })
          ).toBe("waiting")
          expect(yield* getRun("run-1")).toMatchObject({
            status: "waiting",
            leaseOwner: undefined,
            wakeAt: T0 + 60_000
          })
          expect((yield* store.deliverSignal({ runId: "run-1", name: "other", payload: 1, now: T0 + 2 })).woke).toBe(
            false
          )
          expect((yield* getRun("run-1")).status).toBe("waiting")
          expect((yield* store.deliverSignal({ runId: "run-1", name: "approved", payload: 2, now: T0 + 3 })).woke).toBe(
            true
          )
          // Due at once, still waiting: resuming it is not a recovery.
          expect(yield* getRun("run-1")).toMatchObject({
            status: "waiting",
            wakeAt: T0 + 3,
            reason: "signal approved arrived"
          })
          // The lost wake-up: the signal is in the mailbox before the run decides to wait.
          const [again] = yield* store.claimNext({
            owner: "w1",
            queues: ["default"],
            limit: 1,
            leaseMillis: LEASE,
            now: T0 + 4
          })
          expect(again.recoveries).toBe(0)
          expect(
            yield* store.suspendRun({
              id: "run-1",
              owner: "w1",
              wakeAt: undefined,
              signals: [{ name: "approved", deadline: undefined }],
              reason: "waiting for signal approved",
              now: T0 + 5
            })
          ).toBe("woken")
          expect(yield* getRun("run-1")).toMatchObject({ status: "waiting", wakeAt: T0 + 5, leaseOwner: undefined })
        })
      )

      test(
        "a waiting run whose deadline passed is claimable",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.suspendRun({
            id: "run-1",
            owner: "w1",
            wakeAt: T0 + 1_000,
            signals: [{ name: "approved", deadline: T0 + 1_000 }],
            reason: "waiting",
            now: T0 + 1
          })
          expect(yield* store.nextWakeAt({ queues: ["default"], now: T0 + 2 })).toEqual(Option.some(T0 + 1_000))
          const claim = (now: number) =>
            store.claimNext({ owner: "w2", queues: ["default"], limit: 1, leaseMillis: LEASE, now })
          expect(yield* claim(T0 + 999)).toEqual([])
          expect((yield* claim(T0 + 1_000)).map((run) => run.id)).toEqual(["run-1"])
        })
      )
    })

    describe("children", () => {
      test(
        "a child records its parent; its end wakes the parent waiting for it; a parent whose child already ended is woken at once",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed({ id: "parent" })
          const { run: child } = yield* store.createRun(
            newRun({ id: "parent/$child:pay", parent: { runId: "parent", stepId: "$child:pay" }, now: T0 + 1 })
          )
          expect(child.parent).toEqual({ runId: "parent", stepId: "$child:pay" })
          expect(
            yield* store.suspendRun({
              id: "parent",
              owner: "w1",
              wakeAt: undefined,
              children: ["parent/$child:pay"],
              reason: "waiting for child run",
              now: T0 + 2
            })
          ).toBe("waiting")
          yield* store.claimRun({ id: "parent/$child:pay", owner: "w2", leaseMillis: LEASE, now: T0 + 3 })
          yield* store.finishRun({
            id: "parent/$child:pay",
            owner: "w2",
            outcome: { status: "succeeded", output: "ok" },
            now: T0 + 4
          })
          expect(yield* getRun("parent")).toMatchObject({ status: "waiting", wakeAt: T0 + 4 })
          const [woken] = yield* store.claimNext({
            owner: "w1",
            queues: ["default"],
            limit: 1,
            leaseMillis: LEASE,
            now: T0 + 5
          })
          expect(woken).toMatchObject({ id: "parent", recoveries: 0 })
          // The child has ended: waiting for it again is woken at once.
          expect(
            yield* store.suspendRun({
              id: "parent",
              owner: "w1",
              wakeAt: undefined,
              children: ["parent/$child:pay"],
              reason: "waiting for child run",
              now: T0 + 6
            })
          ).toBe("woken")
        })
      )

      test(
        "a run waiting for several children and signals (its branches) is woken by whichever comes first",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed({ id: "parent" })
          for (const id of ["kid-a", "kid-b"]) {
            yield* store.createRun(newRun({ id, parent: { runId: "parent", stepId: id }, now: T0 + 1 }))
          }
          const suspend = (now: number) =>
            store.suspendRun({
              id: "parent",
              owner: "w1",
              wakeAt: T0 + 60_000,
              children: ["kid-a", "kid-b"],
              signals: [{ name: "approved", deadline: T0 + 60_000 }, { name: "paid", deadline: undefined }],
              reason: "waiting for its branches",
              now
            })
          expect(yield* suspend(T0 + 2)).toBe("waiting")
          expect(yield* getRun("parent")).toMatchObject({ status: "waiting", wakeAt: T0 + 60_000 })
          // Another signal is kept in the mailbox but wakes nothing.
          expect((yield* store.deliverSignal({ runId: "parent", name: "other", payload: 1, now: T0 + 3 })).woke)
            .toBe(false)
          yield* store.claimRun({ id: "kid-b", owner: "w2", leaseMillis: LEASE, now: T0 + 4 })
          yield* store.finishRun({ id: "kid-b", owner: "w2", outcome: { status: "succeeded", output: 1 }, now: T0 + 5 })
          expect(yield* getRun("parent")).toMatchObject({ status: "waiting", wakeAt: T0 + 5 })

          // Claimed again: a listed signal wakes it, whichever of them.
          yield* store.claimRun({ id: "parent", owner: "w1", leaseMillis: LEASE, now: T0 + 6 })
          expect(
            yield* store.suspendRun({
              id: "parent",
              owner: "w1",
              wakeAt: undefined,
              children: ["kid-a"],
              signals: [{ name: "approved", deadline: undefined }, { name: "paid", deadline: undefined }],
              reason: "waiting for its branches",
              now: T0 + 7
            })
          ).toBe("waiting")
          expect((yield* store.deliverSignal({ runId: "parent", name: "paid", payload: 2, now: T0 + 8 })).woke).toBe(
            true
          )
          expect(yield* getRun("parent")).toMatchObject({ status: "waiting", wakeAt: T0 + 8 })

          // Claimed again: a signal already in the mailbox wakes it at once, if sent by its deadline.
          yield* store.claimRun({ id: "parent", owner: "w1", leaseMillis: LEASE, now: T0 + 9 })
          expect(
            yield* store.suspendRun({
              id: "parent",
              owner: "w1",
              wakeAt: T0 + 2,
              signals: [{ name: "other", deadline: T0 + 2 }],
              reason: "waiting",
              now: T0 + 10
            })
          ).toBe("waiting")
          yield* store.claimRun({ id: "parent", owner: "w1", leaseMillis: LEASE, now: T0 + 11 })
          expect(
            yield* store.suspendRun({
              id: "parent",
              owner: "w1",
              wakeAt: undefined,
              children: ["kid-a"],
              signals: [{ name: "approved", deadline: undefined }, { name: "other", deadline: T0 + 3 }],
              reason: "waiting",
              now: T0 + 12
            })
          ).toBe("woken")
        })
      )

      test(
        "cancelling a run cancels its descendants that have not ended",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed({ id: "root" })
          yield* store.createRun(newRun({ id: "kid", parent: { runId: "root", stepId: "a" }, now: T0 }))
          yield* store.createRun(newRun({ id: "grandkid", parent: { runId: "kid", stepId: "b" }, now: T0 }))
          yield* store.createRun(newRun({ id: "done-kid", parent: { runId: "root", stepId: "c" }, now: T0 }))
          yield* store.claimRun({ id: "done-kid", owner: "w3", leaseMillis: LEASE, now: T0 })
          yield* store.finishRun({
            id: "done-kid",
            owner: "w3",
            outcome: { status: "succeeded", output: 1 },
            now: T0 + 1
          })
          yield* store.createRun(newRun({ id: "stranger", now: T0 }))
          const asked = yield* store.requestCancel({ id: "root", by: "ops", reason: "stop", now: T0 + 2 })
          expect(asked).toEqual({ status: "running", requested: true })
          for (const id of ["root", "kid", "grandkid"]) {
            expect((yield* getRun(id)).cancel).toEqual({ at: T0 + 2, by: "ops", reason: "stop" })
          }
          expect((yield* getRun("done-kid")).cancel).toBeUndefined()
          expect((yield* getRun("stranger")).cancel).toBeUndefined()
        })
      )
    })

    describe("wakeups", () => {
      liveTest(
        "tell the queue of a run created unclaimed (due or delayed) or released; not of a run created claimed",
        Effect.gen(function*() {
          const store = yield* Store
          const seen: Array<string> = []
          const listening = yield* store.wakeups.pipe(
            Stream.runForEach((queue) => Effect.sync(() => seen.push(queue))),
            Effect.fork
          )
          const until = (what: string, done: () => boolean) =>
            Effect.gen(function*() {
              const deadline = Date.now() + 5_000
              while (!done()) {
                if (Date.now() > deadline) return yield* Effect.die(new Error(`no ${what}; saw ${seen.join(", ")}`))
                yield* Effect.sleep("5 millis")
              }
            })
          // A store whose notices cross processes says it listens with "*" (notices may have been
          // missed before); this process's own notices need only the subscription.
          if (store.sharedWakeups) yield* until("first notice", () => seen.includes("*"))
          else yield* Effect.sleep("20 millis")
          yield* store.createRun(newRun({ id: "later", queue: "later", wakeAt: Date.now() + 60_000, now: Date.now() }))
          yield* store.createRun(
            newRun({ id: "held", queue: "held", claim: { owner: "w1", leaseMillis: LEASE }, now: Date.now() })
          )
          yield* store.createRun(newRun({ id: "due", queue: "due", now: Date.now() }))
          yield* until("notice of queue due", () => seen.includes("due"))
          yield* until("notice of queue later", () => seen.includes("later"))
          yield* Effect.sleep("50 millis")
          expect(seen).not.toContain("held")
          yield* store.releaseRun({ id: "held", owner: "w1", reason: "shutdown", now: Date.now() })
          yield* until("notice of queue held", () => seen.includes("held"))
          yield* Fiber.interrupt(listening)
          expect(new Set(seen.filter((queue) => queue !== "*"))).toEqual(new Set(["later", "due", "held"]))
        })
      )
    })

    describe("claimNext", () => {
      const claimNext = (
        owner: string,
        now: number,
        options: { limit?: number; queues?: ReadonlyArray<string>; workflows?: ReadonlyArray<string> } = {}
      ) =>
        Effect.flatMap(
          Store,
          (store) =>
            store.claimNext({
              owner,
              queues: options.queues ?? ["default"],
              workflows: options.workflows,
              limit: options.limit ?? 100,
              leaseMillis: LEASE,
              now
            })
        )

      test(
        "claims higher priority first (no priority is 0), then the oldest, then by id",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ id: "p0-oldest", now: T0 }))
          yield* store.createRun(newRun({ id: "p5-newer", priority: 5, now: T0 + 2 }))
          yield* store.createRun(newRun({ id: "negative", priority: -1, now: T0 }))
          yield* store.createRun(newRun({ id: "p5-older", priority: 5, now: T0 + 1 }))
          yield* store.createRun(newRun({ id: "p0-b", priority: 0, now: T0 + 1 }))
          yield* store.createRun(newRun({ id: "p0-a", now: T0 + 1 }))
          const first = yield* claimNext("w1", T0 + 10, { limit: 2 })
          expect(ids(first)).toEqual(["p5-older", "p5-newer"])
          const rest = yield* claimNext("w1", T0 + 10)
          expect(ids(rest)).toEqual(["p0-oldest", "p0-a", "p0-b", "negative"])
          for (const run of [...first, ...rest]) {
            expect(run).toMatchObject({
              status: "running",
              leaseOwner: "w1",
              leaseExpiresAt: T0 + 10 + LEASE,
              startedAt: T0 + 10,
              recoveries: 0,
              reason: undefined,
              updatedAt: T0 + 10
            })
            expect(yield* getRun(run.id)).toEqual(run)
          }
        })
      )

      test(
        "takes at most `limit` runs, and only from the queues named",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ id: "default-1" }))
          yield* store.createRun(newRun({ id: "emails-1", queue: "emails", now: T0 + 1 }))
          yield* store.createRun(newRun({ id: "reports-1", queue: "reports", now: T0 + 2 }))
          yield* store.createRun(newRun({ id: "emails-2", queue: "emails", now: T0 + 3 }))
          expect(yield* claimNext("w1", T0 + 10, { queues: ["emails", "reports"], limit: 0 })).toEqual([])
          expect(yield* claimNext("w1", T0 + 10, { queues: [] })).toEqual([])
          const two = yield* claimNext("w1", T0 + 10, { queues: ["emails", "reports"], limit: 2 })
          expect(ids(two)).toEqual(["emails-1", "reports-1"])
          const last = yield* claimNext("w1", T0 + 10, { queues: ["reports", "emails"], limit: 2 })
          expect(ids(last)).toEqual(["emails-2"])
          expect(yield* getRun("default-1")).toMatchObject({ status: "queued", leaseOwner: undefined })
          expect(ids(yield* claimNext("w1", T0 + 10))).toEqual(["default-1"])
        })
      )

      test(
        "claims only runs of the workflows named, leaving the others untouched",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun({ id: "a-1", workflow: "a", now: T0 }))
          yield* store.createRun(newRun({ id: "b-1", workflow: "b", priority: 9, now: T0 + 1 }))
          yield* store.createRun(newRun({ id: "c-1", workflow: "c", now: T0 + 2 }))
          expect(yield* claimNext("w1", T0 + 10, { workflows: [] })).toEqual([])
          expect(ids(yield* claimNext("w1", T0 + 10, { workflows: ["a", "c"] }))).toEqual(["a-1", "c-1"])
          expect(yield* getRun("b-1")).toMatchObject({ status: "queued", leaseOwner: undefined, recoveries: 0 })
          expect(ids(yield* claimNext("w2", T0 + 10))).toEqual(["b-1"])
        })
      )

      test(
        "skips live leases, finished runs and runs not yet due; takes a released run back",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed({ id: "leased" })
          yield* claimed({ id: "finished" })
          yield* store.finishRun({ id: "finished", owner: "w1", outcome: { status: "succeeded", output: 1 }, now: T0 })
          yield* claimed({ id: "released" })
          yield* store.releaseRun({ id: "released", owner: "w1", reason: "interrupted by SIGTERM", now: T0 + 1 })
          yield* store.createRun(newRun({ id: "later", wakeAt: T0 + 100 }))
          yield* store.createRun(newRun({ id: "due", wakeAt: T0 + 50 }))
          expect(yield* getRun("later")).toMatchObject({ status: "queued", wakeAt: T0 + 100 })
          // Due at its wake time exactly.
          const now = yield* claimNext("w2", T0 + 50)
          expect(ids(now)).toEqual(["due", "released"])
          expect(now[1]).toMatchObject({ leaseOwner: "w2", recoveries: 1, startedAt: T0, reason: undefined })
          expect(yield* claimNext("w2", T0 + 99)).toEqual([])
          expect(ids(yield* claimNext("w2", T0 + 100))).toEqual(["later"])
          expect(yield* getRun("leased")).toMatchObject({ leaseOwner: "w1", leaseExpiresAt: T0 + LEASE })
          expect(yield* getRun("finished")).toMatchObject({ status: "succeeded", leaseOwner: undefined })
        })
      )

      test(
        "reclaims a run whose lease expired, counting a recovery; its old owner is fenced out",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          expect(yield* claimNext("w2", T0 + LEASE - 1)).toEqual([])
          // A lease is live while leaseExpiresAt > now: at its expiry instant it is free.
          const [run, ...others] = yield* claimNext("w2", T0 + LEASE)
          expect(others).toEqual([])
          expect(run).toMatchObject({
            id: "run-1",
            status: "running",
            leaseOwner: "w2",
            leaseExpiresAt: T0 + LEASE + LEASE,
            startedAt: T0,
            recoveries: 1
          })
          const error = yield* Effect.flip(store.renewLease({ id: "run-1", owner: "w1", leaseMillis: LEASE, now: T0 }))
          expect(error._tag).toBe("LeaseLost")
        })
      )

      test(
        "takes runs whose lease expired and queued runs in one claim order, within the limit",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed({ id: "expired-oldest", now: T0 })
          yield* claimed({ id: "expired-p5", priority: 5, now: T0 + 3 })
          yield* store.createRun(newRun({ id: "queued-newer", now: T0 + 1 }))
          yield* store.createRun(newRun({ id: "queued-p5", priority: 5, now: T0 + 2 }))
          yield* store.createRun(newRun({ id: "queued-newest", now: T0 + 4 }))
          const first = yield* claimNext("w2", T0 + LEASE + 3, { limit: 3 })
          expect(ids(first)).toEqual(["queued-p5", "expired-p5", "expired-oldest"])
          expect(first.map((run) => run.recoveries)).toEqual([0, 1, 1])
          expect(ids(yield* claimNext("w2", T0 + LEASE + 3))).toEqual(["queued-newer", "queued-newest"])
        })
      )

      test(
        "does not return a claimed run again while its lease is live, even to its owner",
        Effect.gen(function*() {
          const store = yield* Store
          for (const id of ["a", "b", "c"]) yield* store.createRun(newRun({ id }))
          expect(ids(yield* claimNext("w1", T0))).toEqual(["a", "b", "c"])
          expect(yield* claimNext("w2", T0 + 1)).toEqual([])
          expect(yield* claimNext("w1", T0 + LEASE - 1)).toEqual([])
          const again = yield* claimNext("w2", T0 + LEASE)
          expect(ids(again)).toEqual(["a", "b", "c"])
          expect(again.map((run) => run.recoveries)).toEqual([1, 1, 1])
        })
      )
    })

    describe("renewLease", () => {
      test(
        "extends the owner's lease",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.renewLease({ id: "run-1", owner: "w1", leaseMillis: LEASE, now: T0 + 20_000 })
          expect(yield* getRun("run-1")).toMatchObject({
            leaseOwner: "w1",
            leaseExpiresAt: T0 + 20_000 + LEASE,
            updatedAt: T0 + 20_000
          })
          const error = yield* Effect.flip(
            store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + LEASE + 1 })
          )
          expect(error._tag).toBe("RunNotClaimable")
        })
      )

      test(
        "fails with LeaseLost for another owner and leaves the lease alone",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const error = yield* Effect.flip(
            store.renewLease({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + 1 })
          )
          expect(error._tag).toBe("LeaseLost")
          expect(error).toMatchObject({ runId: "run-1", owner: "w2" })
          expect(yield* getRun("run-1")).toMatchObject({ leaseOwner: "w1", leaseExpiresAt: T0 + LEASE, updatedAt: T0 })
        })
      )

      test(
        "fails with LeaseLost once the run is finished",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.finishRun({
            id: "run-1",
            owner: "w1",
            outcome: { status: "succeeded", output: null },
            now: T0 + 1
          })
          const error = yield* Effect.flip(
            store.renewLease({ id: "run-1", owner: "w1", leaseMillis: LEASE, now: T0 + 2 })
          )
          expect(error._tag).toBe("LeaseLost")
        })
      )
    })

    describe("releaseRun", () => {
      test(
        "leaves the run queued with its reason and no lease, to be claimed at once",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.releaseRun({ id: "run-1", owner: "w1", reason: "interrupted by SIGINT", now: T0 + 100 })
          expect(yield* getRun("run-1")).toMatchObject({
            status: "queued",
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
            reason: "interrupted by SIGINT",
            updatedAt: T0 + 100,
            startedAt: T0
          })
          const run = yield* store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + 101 })
          expect(run).toMatchObject({ status: "running", leaseOwner: "w2", reason: undefined, recoveries: 1 })
        })
      )

      test(
        "fails with LeaseLost for another owner and changes nothing",
        Effect.gen(function*() {
          const store = yield* Store
          const before = yield* claimed()
          const error = yield* Effect.flip(store.releaseRun({ id: "run-1", owner: "w2", reason: "no", now: T0 + 1 }))
          expect(error._tag).toBe("LeaseLost")
          expect(yield* getRun("run-1")).toEqual(before)
        })
      )
    })

    describe("finishRun", () => {
      test(
        "records a success with its output and drops the lease",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.recordAttempt({
            owner: "w1",
            attempt: attempt({ outcome: "failure", error: { _tag: "Timeout" }, delayMillis: 5 }),
            reason: "backing off",
            now: T0 + 1
          })
          const output = { receipt: { id: "r-1", lines: [1, 2, 3] } }
          yield* store.finishRun({ id: "run-1", owner: "w1", outcome: { status: "succeeded", output }, now: T0 + 50 })
          expect(yield* getRun("run-1")).toMatchObject({
            status: "succeeded",
            output,
            failure: undefined,
            finishedAt: T0 + 50,
            updatedAt: T0 + 50,
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
            reason: undefined,
            startedAt: T0
          })
        })
      )

      test(
        "records a failure or a cancellation with its encoded cause",
        Effect.gen(function*() {
          const store = yield* Store
          const failure = {
            _tag: "Sequential",
            left: { _tag: "Fail", error: { _tag: "CardDeclined", code: 402 } },
            right: { _tag: "Interrupt", fiberId: { _tag: "None" } }
          }
          for (const status of ["failed", "cancelled"] as const) {
            yield* claimed({ id: status })
            yield* store.finishRun({ id: status, owner: "w1", outcome: { status, failure }, now: T0 + 7 })
            const run = yield* getRun(status)
            expect(run).toMatchObject({ status, failure, finishedAt: T0 + 7, leaseOwner: undefined })
            expect(run.output).toBeUndefined()
          }
        })
      )

      test(
        "fails with LeaseLost for another owner and changes nothing",
        Effect.gen(function*() {
          const store = yield* Store
          const before = yield* claimed()
          const error = yield* Effect.flip(
            store.finishRun({ id: "run-1", owner: "w2", outcome: { status: "succeeded", output: 1 }, now: T0 + 1 })
          )
          expect(error._tag).toBe("LeaseLost")
          expect(yield* getRun("run-1")).toEqual(before)
        })
      )
    })

    describe("journal", () => {
      test(
        "reads completed steps in position order, with every field",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const steps = [
            step({ stepId: "reserve", name: "reserve", position: 2, result: { _tag: "Success", value: [1, 2] } }),
            step({ stepId: "now", name: "now", kind: "now", position: 0, result: { _tag: "Success", value: T0 } }),
            step({
              stepId: "charge#2",
              name: "charge",
              position: 1,
              failed: true,
              attempts: 3,
              result: { _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "CardDeclined" } } },
              startedAt: T0 + 30,
              finishedAt: T0 + 90
            }),
            step({ stepId: "id", name: "id", kind: "uuid", position: 3, result: { _tag: "Success", value: "u-1" } }),
            step({
              stepId: "dice",
              name: "dice",
              kind: "random",
              position: 4,
              result: { _tag: "Success", value: 0.25 }
            })
          ]
          for (const s of steps) {
            yield* store.completeStep({ owner: "w1", step: s, attempt: undefined, now: T0 + 100 })
          }
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps.map((s) => s.position)).toEqual([0, 1, 2, 3, 4])
          expect(journal.steps).toEqual([...steps].sort((a, b) => a.position - b.position))
          expect(journal.attempts).toEqual([])
        })
      )

      test(
        "round-trips attempts with every field, grouped by step in attempt order",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const declined = attempt({
            stepId: "charge",
            attempt: 1,
            outcome: "failure",
            error: { _tag: "CardDeclined", code: 402, detail: { retryable: true, hints: ["later", null] } },
            delayMillis: 200
          })
          const defect = attempt({
            stepId: "charge",
            attempt: 2,
            startedAt: T0 + 300,
            finishedAt: T0 + 310,
            outcome: "defect",
            error: { name: "TypeError", message: "x is undefined", stack: "TypeError: x\n    at f (a.ts:1:1)" },
            delayMillis: 400
          })
          const gaveUp = attempt({
            stepId: "ship",
            attempt: 1,
            outcome: "failure",
            error: { _tag: "NoCarrier" },
            stopReason: "not-retryable"
          })
          const succeeded = attempt({ stepId: "charge", attempt: 3, startedAt: T0 + 800, finishedAt: T0 + 820 })
          yield* store.recordAttempt({ owner: "w1", attempt: declined, reason: "backing off", now: T0 + 1 })
          yield* store.recordAttempt({ owner: "w1", attempt: defect, reason: "backing off", now: T0 + 2 })
          yield* store.completeStep({
            owner: "w1",
            step: step({ stepId: "ship", name: "ship", position: 1, failed: true, result: { _tag: "Failure" } }),
            attempt: gaveUp,
            now: T0 + 3
          })
          yield* store.completeStep({
            owner: "w1",
            step: step({ attempts: 3 }),
            attempt: succeeded,
            now: T0 + 4
          })
          const journal = yield* store.readJournal("run-1")
          expect(journal.attempts).toEqual([declined, defect, succeeded, gaveUp])
          // Absent optional fields stay absent, rather than coming back as explicit undefined or null.
          expect(Object.keys(journal.attempts[2]).sort()).toEqual(
            ["attempt", "finishedAt", "outcome", "runId", "startedAt", "stepId"]
          )
          expect(journal.steps.map((s) => s.stepId)).toEqual(["charge", "ship"])
        })
      )

      test(
        "keeps JSON null apart from undefined",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.completeStep({
            owner: "w1",
            step: step({ stepId: "a", position: 0, result: null }),
            attempt: attempt({ stepId: "a", outcome: "failure", error: null }),
            now: T0 + 1
          })
          yield* store.completeStep({
            owner: "w1",
            step: step({ stepId: "b", position: 1, result: undefined }),
            attempt: attempt({ stepId: "b" }),
            now: T0 + 2
          })
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps[0].result).toBeNull()
          expect(journal.steps[1].result).toBeUndefined()
          expect("error" in journal.attempts[0]).toBe(true)
          expect(journal.attempts[0].error).toBeNull()
          expect("error" in journal.attempts[1]).toBe(false)
        })
      )

      test(
        "recordAttempt sets the run's reason, and the step's completion clears it",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const reason = "backing off until 2023-11-14T22:13:20.200Z after attempt 1 of step charge"
          yield* store.recordAttempt({
            owner: "w1",
            attempt: attempt({ outcome: "failure", delayMillis: 200 }),
            reason,
            now: T0 + 20
          })
          expect(yield* getRun("run-1")).toMatchObject({ reason, updatedAt: T0 + 20, status: "running" })
          yield* store.completeStep({
            owner: "w1",
            step: step({ attempts: 2 }),
            attempt: attempt({ attempt: 2 }),
            now: T0 + 300
          })
          expect(yield* getRun("run-1")).toMatchObject({ reason: undefined, updatedAt: T0 + 300 })
        })
      )

      test(
        "keeps the first write of a step or attempt written twice",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const first = step({ result: { _tag: "Success", value: "first" } })
          yield* store.completeStep({ owner: "w1", step: first, attempt: attempt(), now: T0 + 1 })
          yield* store.completeStep({
            owner: "w1",
            step: step({ result: { _tag: "Success", value: "second" }, position: 7 }),
            attempt: attempt({ outcome: "failure", error: "second" }),
            now: T0 + 2
          })
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps).toEqual([first])
          expect(journal.attempts).toEqual([attempt()])
        })
      )

      test(
        "reads back every step's final attempt as written: at the first try, after retries, with the run's end",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          // At the first try: the attempt began and ended with the step (a SQL store keeps it in the step row).
          const first = attempt({ stepId: "reserve" })
          yield* store.completeStep({
            owner: "w1",
            step: step({ stepId: "reserve", name: "reserve" }),
            attempt: first,
            now: T0 + 20
          })
          // After a retry: the final attempt began after the step did.
          const failed = attempt({
            startedAt: T0 + 21,
            finishedAt: T0 + 22,
            outcome: "failure",
            error: { _tag: "GatewayTimeout" },
            delayMillis: 5
          })
          yield* store.recordAttempt({ owner: "w1", attempt: failed, reason: "backing off", now: T0 + 22 })
          const retried = attempt({ attempt: 2, startedAt: T0 + 27, finishedAt: T0 + 30 })
          yield* store.completeStep({
            owner: "w1",
            step: step({ position: 1, attempts: 2, startedAt: T0 + 21, finishedAt: T0 + 30 }),
            attempt: retried,
            now: T0 + 30
          })
          // A success whose attempt says more than the step (a stop reason) keeps its own row.
          const noted = attempt({ stepId: "notify", startedAt: T0 + 31, finishedAt: T0 + 32, stopReason: "noted" })
          yield* store.completeStep({
            owner: "w1",
            step: step({ stepId: "notify", name: "notify", position: 2, startedAt: T0 + 31, finishedAt: T0 + 32 }),
            attempt: noted,
            now: T0 + 32
          })
          // The last step's completion, written with the run's end.
          const last = attempt({ stepId: "ship", startedAt: T0 + 40, finishedAt: T0 + 41 })
          yield* store.finishRun({
            id: "run-1",
            owner: "w1",
            outcome: { status: "succeeded", output: null },
            now: T0 + 41,
            step: {
              step: step({ stepId: "ship", name: "ship", position: 3, startedAt: T0 + 40, finishedAt: T0 + 41 }),
              attempt: last
            }
          })
          const journal = yield* store.readJournal("run-1")
          expect(journal.attempts).toEqual([failed, retried, noted, first, last])
          expect(journal.steps.map((s) => s.attempts)).toEqual([1, 2, 1, 1])
        })
      )

      test(
        "keeps each run's journal to itself",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* claimed({ id: "run-2" })
          yield* store.completeStep({ owner: "w1", step: step(), attempt: attempt(), now: T0 + 1 })
          yield* store.completeStep({
            owner: "w1",
            step: step({ runId: "run-2", result: "other" }),
            attempt: attempt({ runId: "run-2" }),
            now: T0 + 1
          })
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps).toEqual([step()])
          expect(journal.attempts).toEqual([attempt()])
          expect((yield* store.readJournal("run-2")).steps[0].result).toBe("other")
          expect(yield* store.readJournal("unknown")).toEqual({ steps: [], attempts: [] })
        })
      )
    })

    describe("fencing", () => {
      test(
        "a worker whose run was taken over with force can write nothing",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.completeStep({ owner: "w1", step: step(), attempt: attempt(), now: T0 + 1 })
          yield* store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + 2, force: true })
          const before = yield* getRun("run-1")
          const writes = [
            store.completeStep({
              owner: "w1",
              step: step({ stepId: "ship", position: 1 }),
              attempt: attempt({ stepId: "ship" }),
              now: T0 + 3
            }),
            store.recordAttempt({
              owner: "w1",
              attempt: attempt({ stepId: "ship", outcome: "failure", delayMillis: 1 }),
              reason: "stale worker",
              now: T0 + 3
            }),
            store.renewLease({ id: "run-1", owner: "w1", leaseMillis: LEASE, now: T0 + 3 }),
            store.releaseRun({ id: "run-1", owner: "w1", reason: "stale worker", now: T0 + 3 }),
            store.finishRun({ id: "run-1", owner: "w1", outcome: { status: "succeeded", output: 1 }, now: T0 + 3 })
          ]
          for (const write of writes) {
            const error = yield* Effect.flip(write)
            expect(error._tag).toBe("LeaseLost")
            expect(error).toMatchObject({ runId: "run-1", owner: "w1" })
          }
          expect(yield* getRun("run-1")).toEqual(before)
          expect(before).toMatchObject({ leaseOwner: "w2", status: "running" })
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps.map((s) => s.stepId)).toEqual(["charge"])
          expect(journal.attempts.map((a) => a.stepId)).toEqual(["charge"])
          // The new owner writes.
          yield* store.completeStep({
            owner: "w2",
            step: step({ stepId: "ship", position: 1 }),
            attempt: undefined,
            now: T0 + 4
          })
          expect((yield* store.readJournal("run-1")).steps.map((s) => s.stepId)).toEqual(["charge", "ship"])
        })
      )

      test(
        "an expired lease still fences by owner: writes succeed until another worker claims",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.completeStep({ owner: "w1", step: step(), attempt: undefined, now: T0 + LEASE + 5 })
          yield* store.claimRun({ id: "run-1", owner: "w2", leaseMillis: LEASE, now: T0 + LEASE + 6 })
          const error = yield* Effect.flip(
            store.completeStep({
              owner: "w1",
              step: step({ stepId: "ship", position: 1 }),
              attempt: undefined,
              now: T0 + LEASE + 7
            })
          )
          expect(error._tag).toBe("LeaseLost")
          expect((yield* store.readJournal("run-1")).steps).toHaveLength(1)
        })
      )

      test(
        "nobody writes to a run that is not claimed, or does not exist",
        Effect.gen(function*() {
          const store = yield* Store
          yield* store.createRun(newRun())
          const queued = yield* Effect.flip(
            store.completeStep({ owner: "w1", step: step(), attempt: attempt(), now: T0 + 1 })
          )
          expect(queued._tag).toBe("LeaseLost")
          const missing = yield* Effect.flip(
            store.recordAttempt({ owner: "w1", attempt: attempt({ runId: "nope" }), reason: "x", now: T0 + 1 })
          )
          expect(missing).toMatchObject({ _tag: "LeaseLost", runId: "nope" })
          expect(yield* store.readJournal("run-1")).toEqual({ steps: [], attempts: [] })
        })
      )
      test(
        "a value JSON cannot hold is a defect, and writes nothing",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          const bigint = { amount: BigInt(1) }
          const exits: ReadonlyArray<Exit.Exit<unknown, unknown>> = [
            yield* Effect.exit(store.createRun(newRun({ id: "run-2", input: bigint }))),
            yield* Effect.exit(
              store.completeStep({ owner: "w1", step: step({ result: bigint }), attempt: attempt(), now: T0 + 1 })
            ),
            yield* Effect.exit(
              store.completeStep({ owner: "w1", step: step(), attempt: attempt({ error: bigint }), now: T0 + 1 })
            ),
            yield* Effect.exit(
              store.finishRun({
                id: "run-1",
                owner: "w1",
                outcome: { status: "succeeded", output: bigint },
                now: T0 + 1
              })
            )
          ]
          for (const exit of exits) {
            expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
          }
          expect(yield* store.getRun("run-2")).toEqual(Option.none())
          expect(yield* store.readJournal("run-1")).toEqual({ steps: [], attempts: [] })
          expect(yield* getRun("run-1")).toMatchObject({ status: "running", updatedAt: T0, leaseOwner: "w1" })
        })
      )
    })

    describe("listRuns", () => {
      const seed = Effect.gen(function*() {
        const store = yield* Store
        yield* store.createRun(newRun({ id: "a", workflow: "checkout", now: T0 }))
        yield* store.createRun(newRun({ id: "b", workflow: "refund", now: T0 + 10 }))
        yield* store.createRun(
          newRun({ id: "c", workflow: "checkout", now: T0 + 20, claim: { owner: "w", leaseMillis: 1 } })
        )
        yield* store.createRun(
          newRun({ id: "d", workflow: "checkout", now: T0 + 30, claim: { owner: "w", leaseMillis: 1 } })
        )
        yield* store.finishRun({ id: "d", owner: "w", outcome: { status: "failed", failure: {} }, now: T0 + 40 })
        return store
      })
      test(
        "lists newest first",
        Effect.gen(function*() {
          const store = yield* seed
          expect(ids(yield* store.listRuns({}))).toEqual(["d", "c", "b", "a"])
        })
      )

      test(
        "orders runs created at the same instant by id, descending",
        Effect.gen(function*() {
          const store = yield* Store
          for (const id of ["m", "z", "a"]) yield* store.createRun(newRun({ id, now: T0 }))
          expect(ids(yield* store.listRuns({}))).toEqual(["z", "m", "a"])
        })
      )

      test(
        "filters by status, workflow and creation time, and limits",
        Effect.gen(function*() {
          const store = yield* seed
          expect(ids(yield* store.listRuns({ status: "running" }))).toEqual(["c"])
          expect(ids(yield* store.listRuns({ status: "failed" }))).toEqual(["d"])
          expect(ids(yield* store.listRuns({ status: "succeeded" }))).toEqual([])
          expect(ids(yield* store.listRuns({ workflow: "checkout" }))).toEqual(["d", "c", "a"])
          expect(ids(yield* store.listRuns({ since: T0 + 10 }))).toEqual(["d", "c", "b"])
          expect(ids(yield* store.listRuns({ limit: 2 }))).toEqual(["d", "c"])
          expect(ids(yield* store.listRuns({ limit: 0 }))).toEqual([])
          expect(ids(yield* store.listRuns({ workflow: "checkout", since: T0 + 5, status: "running", limit: 5 })))
            .toEqual(["c"])
          expect(ids(yield* store.listRuns({ workflow: "checkout", limit: 1 }))).toEqual(["d"])
          expect(ids(yield* store.listRuns({ workflow: "nope" }))).toEqual([])
        })
      )

      test(
        "filters by the time of the last update: a finished run's end",
        Effect.gen(function*() {
          const store = yield* seed
          // d was created at T0 + 30 and failed at T0 + 40; c was created and claimed at T0 + 20.
          expect(ids(yield* store.listRuns({ updatedSince: T0 + 40 }))).toEqual(["d"])
          expect(ids(yield* store.listRuns({ updatedSince: T0 + 41 }))).toEqual([])
          expect(ids(yield* store.listRuns({ updatedSince: T0 + 20 }))).toEqual(["d", "c"])
          expect(ids(yield* store.listRuns({ status: "failed", updatedSince: T0 + 35 }))).toEqual(["d"])
          expect(ids(yield* store.listRuns({ status: "failed", since: T0 + 35 }))).toEqual([])
          yield* store.renewLease({ id: "c", owner: "w", leaseMillis: 1, now: T0 + 50 })
          expect(ids(yield* store.listRuns({ updatedSince: T0 + 45 }))).toEqual(["c"])
        })
      )

      test(
        "returns whole records",
        Effect.gen(function*() {
          const store = yield* seed
          const [d] = yield* store.listRuns({ limit: 1 })
          expect(d).toEqual(yield* getRun("d"))
          expect(d).toMatchObject({ status: "failed", failure: {}, finishedAt: T0 + 40 })
        })
      )
    })

    describe("redriveRun", () => {
      const declined = { _tag: "Fail", error: { _tag: "CardDeclined", code: "insufficient_funds" } }

      const completed = (
        stepId: string,
        position: number,
        finishedAt: number,
        overrides: Partial<StepRecord> = {},
        runId = "run-1",
        owner = "w1"
      ) =>
        Effect.flatMap(Store, (store) =>
          store.completeStep({
            owner,
            step: step({
              runId,
              stepId,
              name: stepId.split("/").at(-1)!.replace(/#\d+$/, ""),
              position,
              finishedAt,
              ...overrides
            }),
            attempt: undefined,
            now: finishedAt
          }))

      // run-1: reserve succeeded after one attempt; charge failed twice, the second time for good.
      const failedRun = Effect.gen(function*() {
        const store = yield* Store
        yield* claimed()
        yield* store.completeStep({
          owner: "w1",
          step: step({ stepId: "reserve", name: "reserve", finishedAt: T0 + 20 }),
          attempt: attempt({ stepId: "reserve" }),
          now: T0 + 20
        })
        yield* store.recordAttempt({
          owner: "w1",
          attempt: attempt({
            startedAt: T0 + 21,
            finishedAt: T0 + 22,
            outcome: "failure",
            error: { _tag: "GatewayTimeout" },
            delayMillis: 5
          }),
          reason: "backing off",
          now: T0 + 22
        })
        const failure = { _tag: "Failure", cause: declined }
        yield* store.completeStep({
          owner: "w1",
          step: step({
            position: 1,
            result: failure,
            failed: true,
            attempts: 2,
            startedAt: T0 + 21,
            finishedAt: T0 + 30
          }),
          attempt: attempt({
            attempt: 2,
            startedAt: T0 + 27,
            finishedAt: T0 + 30,
            outcome: "failure",
            error: declined.error,
            stopReason: "not-retryable"
          }),
          now: T0 + 30
        })
        yield* store.finishRun({
          id: "run-1",
          owner: "w1",
          outcome: { status: "failed", failure: declined },
          now: T0 + 40
        })
        return store
      })

      test(
        "sends a failed run back to its queue from its failed step, keeping the completed steps and every attempt",
        Effect.gen(function*() {
          const store = yield* failedRun
          const journalBefore = yield* store.readJournal("run-1")
          const { redrive, run } = yield* store.redriveRun({
            id: "run-1",
            by: "ann",
            reason: "card fixed",
            now: T0 + 100
          })
          expect(run).toEqual(yield* getRun("run-1"))
          expect(run).toMatchObject({
            status: "queued",
            failure: undefined,
            output: undefined,
            finishedAt: undefined,
            startedAt: undefined,
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
            wakeAt: undefined,
            recoveries: 0,
            updatedAt: T0 + 100,
            createdAt: T0,
            redriven: { count: 1, priorAttempts: { reserve: 1, charge: 2 } }
          })
          expect(run.reason).toContain("re-driven by ann")
          expect(redrive).toEqual({
            runId: "run-1",
            seq: 1,
            at: T0 + 100,
            by: "ann",
            reason: "card fixed",
            previousStatus: "failed",
            failure: declined,
            fromStep: "charge",
            discarded: ["charge"],
            priorAttempts: { reserve: 1, charge: 2 },
            children: []
          })
          expect(yield* store.listRedrives("run-1")).toEqual([redrive])
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps.map((s) => s.stepId)).toEqual(["reserve"])
          expect(journal.attempts).toEqual(journalBefore.attempts)
          expect(yield* store.listRedrives("other")).toEqual([])
        })
      )

      test(
        "a re-driven run is claimed through its queue as a start, not a recovery, with its journal to read",
        Effect.gen(function*() {
          const store = yield* failedRun
          yield* store.redriveRun({ id: "run-1", by: "ann", reason: "again", now: T0 + 100 })
          expect(yield* store.nextWakeAt({ queues: ["default"], now: T0 + 100 })).toEqual(Option.none())
          const [again] = yield* store.claimNext({
            owner: "w2",
            queues: ["default"],
            limit: 5,
            leaseMillis: LEASE,
            now: T0 + 101
          })
          expect(again).toMatchObject({
            id: "run-1",
            status: "running",
            leaseOwner: "w2",
            recoveries: 0,
            startedAt: T0 + 101
          })
          expect(again.reason).toBeUndefined()
          // Not a fresh run: the engine must read what the journal kept.
          expect(FreshRuns.take(again)).toBe(false)
          // Failing again and re-driven again: a second re-drive, with the attempts of both.
          yield* store.completeStep({
            owner: "w2",
            step: step({
              position: 1,
              result: { _tag: "Failure", cause: declined },
              failed: true,
              attempts: 3,
              finishedAt: T0 + 120
            }),
            attempt: attempt({ attempt: 3, startedAt: T0 + 110, finishedAt: T0 + 120, outcome: "failure", error: {} }),
            now: T0 + 120
          })
          yield* store.finishRun({
            id: "run-1",
            owner: "w2",
            outcome: { status: "failed", failure: declined },
            now: T0 + 130
          })
          const second = yield* store.redriveRun({ id: "run-1", by: "bob", reason: "third time", now: T0 + 200 })
          expect(second.redrive).toMatchObject({ seq: 2, by: "bob", discarded: ["charge"] })
          expect(second.run.redriven).toEqual({ count: 2, priorAttempts: { reserve: 1, charge: 3 } })
          expect((yield* store.listRedrives("run-1")).map((r) => r.seq)).toEqual([1, 2])
        })
      )

      test(
        "from a named step: that step and everything journaled after it, in every branch, and the group's end",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* completed("a", 0, T0 + 20)
          yield* completed("g[0]/x", 0, T0 + 30)
          yield* completed("g[1]/y", 0, T0 + 40)
          yield* completed("g[0]/x2", 1, T0 + 50)
          yield* completed("g", 1, T0 + 60, { kind: "group", result: { mode: "settle", branches: ["succeeded"] } })
          yield* completed("c", 2, T0 + 70, { failed: true, result: { _tag: "Failure", cause: declined } })
          yield* store.finishRun({
            id: "run-1",
            owner: "w1",
            outcome: { status: "failed", failure: declined },
            now: T0 + 80
          })
          const { redrive } = yield* store.redriveRun({
            id: "run-1",
            from: { step: "g[1]/y" },
            by: "ann",
            reason: "again",
            now: T0 + 100
          })
          expect(redrive).toMatchObject({ fromStep: "g[1]/y", discarded: ["g[1]/y", "g[0]/x2", "g", "c"] })
          expect((yield* store.readJournal("run-1")).steps.map((s) => s.stepId)).toEqual(["a", "g[0]/x"])
        })
      )

      test(
        "from the start: the whole journal is discarded, the attempts kept",
        Effect.gen(function*() {
          const store = yield* failedRun
          const journalBefore = yield* store.readJournal("run-1")
          const { redrive, run } = yield* store.redriveRun({
            id: "run-1",
            from: "start",
            by: "ann",
            reason: "again",
            now: T0 + 100
          })
          expect(redrive).toMatchObject({ fromStep: "reserve", discarded: ["reserve", "charge"] })
          expect(run.redriven?.priorAttempts).toEqual({ reserve: 1, charge: 2 })
          const journal = yield* store.readJournal("run-1")
          expect(journal.steps).toEqual([])
          // Every attempt stays, the first try of a discarded step that succeeded at once included.
          expect(journal.attempts).toEqual(journalBefore.attempts)
          expect(journal.attempts).toHaveLength(3)
        })
      )

      test(
        "a cancelled run: its cancellation request is cleared",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.requestCancel({ id: "run-1", by: "bob", reason: "oops", now: T0 + 5 })
          const cancelled = { _tag: "Fail", error: { _tag: "Cancelled", runId: "run-1", by: "bob", reason: "oops" } }
          yield* store.finishRun({
            id: "run-1",
            owner: "w1",
            outcome: { status: "cancelled", failure: cancelled },
            now: T0 + 6
          })
          const { redrive, run } = yield* store.redriveRun({
            id: "run-1",
            by: "bob",
            reason: "by mistake",
            now: T0 + 10
          })
          expect(run.status).toBe("queued")
          expect(run.cancel).toBeUndefined()
          expect(redrive).toMatchObject({
            previousStatus: "cancelled",
            failure: cancelled,
            fromStep: undefined,
            discarded: []
          })
        })
      )

      test(
        "a signal taken by a discarded step goes back to the mailbox",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed()
          yield* store.deliverSignal({ runId: "run-1", name: "approved", payload: { by: "ann" }, now: T0 + 1 })
          const taken = yield* store.takeSignal({
            owner: "w1",
            step: {
              runId: "run-1",
              stepId: "$signal:approved",
              name: "$signal:approved",
              kind: "signal",
              position: 0,
              attempts: 0,
              startedAt: T0 + 2,
              finishedAt: T0 + 2
            },
            name: "approved",
            deadline: undefined,
            now: T0 + 2
          })
          expect(taken).toEqual(Option.some({ by: "ann" }))
          yield* completed("charge", 1, T0 + 10, { failed: true, result: { _tag: "Failure", cause: declined } })
          yield* store.finishRun({
            id: "run-1",
            owner: "w1",
            outcome: { status: "failed", failure: declined },
            now: T0 + 11
          })
          yield* store.redriveRun({
            id: "run-1",
            from: { step: "$signal:approved" },
            by: "ann",
            reason: "x",
            now: T0 + 20
          })
          expect(yield* store.listSignals("run-1")).toMatchObject([{
            name: "approved",
            takenBy: undefined,
            takenAt: undefined
          }])
        })
      )

      test(
        "re-drives with it the awaited children that failed and whose steps were discarded",
        Effect.gen(function*() {
          const store = yield* Store
          yield* claimed({ id: "parent" })
          const child = (id: string, stepId: string, status: "failed" | "succeeded") =>
            Effect.gen(function*() {
              yield* store.createRun(newRun({ id, parent: { runId: "parent", stepId }, now: T0 + 1 }))
              yield* store.claimRun({ id, owner: "w2", leaseMillis: LEASE, now: T0 + 2 })
              yield* store.finishRun({
                id,
                owner: "w2",
                outcome: status === "failed" ? { status, failure: declined } : { status, output: 1 },
                now: T0 + 3
              })
            })
          yield* child("parent/$child:ok", "$child:ok", "succeeded")
          yield* child("parent/$child:pay", "$child:pay", "failed")
          yield* child("parent/$start:mail", "$start:mail", "failed")
          yield* child("parent/kept", "$child:kept", "failed")
          const failedChild = { failed: true, result: { _tag: "Failure", cause: declined } }
          yield* completed("$child:kept", 0, T0 + 4, failedChild, "parent")
          yield* completed("$child:ok", 1, T0 + 5, {}, "parent")
          yield* completed("$start:mail", 2, T0 + 6, {}, "parent")
          yield* completed("$child:pay", 3, T0 + 7, failedChild, "parent")
          yield* store.finishRun({
            id: "parent",
            owner: "w1",
            outcome: { status: "failed", failure: declined },
            now: T0 + 8
          })
          const { redrive } = yield* store.redriveRun({
            id: "parent",
            from: { step: "$child:ok" },
            by: "ann",
            reason: "fixed",
            now: T0 + 10
          })
          expect(redrive.children).toEqual(["parent/$child:pay"])
          expect(yield* getRun("parent/$child:pay")).toMatchObject({ status: "queued", redriven: { count: 1 } })
          const [childRedrive] = yield* store.listRedrives("parent/$child:pay")
          expect(childRedrive).toMatchObject({ by: "ann", previousStatus: "failed" })
          expect(childRedrive.reason).toContain("parent")
          for (const id of ["parent/$child:ok", "parent/$start:mail", "parent/kept"]) {
            expect((yield* getRun(id)).redriven, id).toBeUndefined()
          }
        })
      )

      test(
        "refuses an unknown run, a run that has not failed, and a step not in the journal, and writes nothing",
        Effect.gen(function*() {
          const store = yield* Store
          expect(yield* Effect.flip(store.redriveRun({ id: "nope", by: "a", reason: "r", now: T0 }))).toMatchObject({
            _tag: "RunNotFound",
            runId: "nope"
          })
          yield* store.createRun(newRun({ id: "queued" }))
          yield* claimed({ id: "done" })
          yield* store.finishRun({ id: "done", owner: "w1", outcome: { status: "succeeded", output: 1 }, now: T0 + 1 })
          for (const [id, status] of [["queued", "queued"], ["done", "succeeded"]]) {
            const before = yield* getRun(id)
            expect(yield* Effect.flip(store.redriveRun({ id, by: "a", reason: "r", now: T0 + 5 }))).toMatchObject({
              _tag: "RunNotRedrivable",
              runId: id,
              status
            })
            expect(yield* getRun(id)).toEqual(before)
          }
          yield* failedRun
          const before = yield* getRun("run-1")
          const journal = yield* store.readJournal("run-1")
          const unknown = yield* Effect.flip(
            store.redriveRun({ id: "run-1", from: { step: "charge#2" }, by: "a", reason: "r", now: T0 + 50 })
          )
          expect(unknown).toMatchObject({
            _tag: "StepNotInJournal",
            runId: "run-1",
            stepId: "charge#2",
            steps: ["reserve", "charge"]
          })
          expect(unknown.message).toContain("reserve, charge")
          expect(yield* getRun("run-1")).toEqual(before)
          expect(yield* store.readJournal("run-1")).toEqual(journal)
          expect(yield* store.listRedrives("run-1")).toEqual([])
        })
      )
    })

    describe("values", () => {
      // No NUL in plain text columns: PostgreSQL's TEXT cannot hold one (JSON escapes it, so values can).
      const text = "héllo wörld 日本語 🎉 שלום \u2028 \n\t \"quoted\" \\ 'single' ; DROP TABLE weft_runs; --"
      const nested = {
        text,
        nul: "before\u0000after",
        deep: { a: [1, "two", { three: [true, false, null] }], b: { c: { d: { e: [] } } } },
        numbers: [0, -42, 3.14159, 1e-7, 2 ** 53 - 1, -(2 ** 31)],
        empty: { string: "", object: {}, array: [] },
        "kéy with spaces & ünïcode 🔑": "value"
      }

      test(
        "round-trips nested JSON and unicode in every stored value",
        Effect.gen(function*() {
          const store = yield* Store
          const id = "run-ünïcødé-🎉"
          const owner = "wörker-日本"
          const { run } = yield* store.createRun(
            newRun({
              id,
              workflow: "结账-checkout",
              version: "v1 ✓",
              input: nested,
              queue: "ωmega",
              idempotencyKey: "clé-🔑",
              claim: { owner, leaseMillis: LEASE }
            })
          )
          expect(run).toMatchObject({ id, workflow: "结账-checkout", version: "v1 ✓", input: nested, queue: "ωmega" })
          const s = step({
            runId: id,
            stepId: "charge-💳#2",
            name: "charge-💳",
            result: { _tag: "Success", value: nested }
          })
          const a = attempt({ runId: id, stepId: "charge-💳#2", outcome: "failure", error: nested, stopReason: text })
          yield* store.completeStep({ owner, step: s, attempt: a, now: T0 + 1 })
          const journal = yield* store.readJournal(id)
          expect(journal.steps).toEqual([s])
          expect(journal.attempts).toEqual([a])
          yield* store.recordAttempt({
            owner,
            attempt: attempt({ runId: id, stepId: "x", attempt: 9 }),
            reason: text,
            now: T0 + 2
          })
          expect((yield* getRun(id)).reason).toBe(text)
          yield* store.finishRun({ id, owner, outcome: { status: "succeeded", output: nested }, now: T0 + 3 })
          expect((yield* getRun(id)).output).toEqual(nested)
          expect(ids(yield* store.listRuns({ workflow: "结账-checkout" }))).toEqual([id])
          const again = yield* store.createRun(
            newRun({ id: "other", workflow: "结账-checkout", idempotencyKey: "clé-🔑" })
          )
          expect(again).toMatchObject({ created: false, run: { id } })
        })
      )

      test(
        "round-trips top-level primitives, null and a missing input",
        Effect.gen(function*() {
          const store = yield* Store
          const inputs: ReadonlyArray<unknown> = ["text", "", 0, -1.5, true, false, null, [], [null], {}, undefined]
          for (const [index, input] of inputs.entries()) {
            yield* store.createRun(newRun({ id: `r${index}`, input }))
            const read = yield* getRun(`r${index}`)
            expect(read.input).toStrictEqual(input)
            // The same input again is the same run, not a conflict.
            expect((yield* store.createRun(newRun({ id: `r${index}`, input }))).created).toBe(false)
          }
          const error = yield* Effect.flip(store.createRun(newRun({ id: "r10", input: null })))
          expect(error._tag).toBe("RunConflict")
        })
      )

      test(
        "stores values as JSON: undefined fields are dropped, nothing is shared with the caller",
        Effect.gen(function*() {
          const store = yield* Store
          const input = { kept: 1, dropped: undefined, list: [1] }
          yield* store.createRun(newRun({ input }))
          input.list.push(2)
          const read = yield* getRun("run-1")
          expect(read.input).toStrictEqual({ kept: 1, list: [1] })
          const again = yield* store.createRun(newRun({ input: { kept: 1, list: [1] } }))
          expect(again.created).toBe(false)
        })
      )
    })

    limitsConformance(makeLayer)
  })
}

const ids = (runs: ReadonlyArray<RunRecord>) => runs.map((run) => run.id)
