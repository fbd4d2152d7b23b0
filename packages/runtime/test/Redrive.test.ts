/**
 * Dead letters and re-drive on real stores (Memory and a SQLite file): a re-driven run runs its
 * failed step again with its retry policy's whole budget and does not run its completed steps
 * again (side effects counted); `from: { step }` runs from that step; a saga's undone steps are
 * done again; an awaited child that failed is re-driven with its parent; a start of a failed run's
 * id returns it, or starts it over with `ifFinished: "restart-failed"`. Then the planner that cuts
 * the journal, on journals written by hand.
 */
import { describe, expect, it } from "@effect/vitest"
import { Retry, Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import * as Redrive from "../src/internal/redrive.js"
import * as Runner from "../src/Runner.js"
import type { StepRecord } from "../src/Store.js"
import type { Store } from "../src/Store.js"
import { realStores } from "./runs.js"

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { attempt: Schema.Number }) {
  readonly retryable = true
}
class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}

const stores = realStores("redrive")

/** Counts side effects by name. */
const makeCounter = () => {
  const counts: Record<string, number> = {}
  return { counts, hit: (name: string) => Effect.sync(() => void (counts[name] = (counts[name] ?? 0) + 1)) }
}

/** reserve → charge (3 attempts, no delay; fails while `failures` > 0) → send. */
const makeCheckout = () => {
  const counter = makeCounter()
  const state = { failures: Infinity, attempts: [] as Array<number> }
  const reserve = Step.make({
    name: "reserve",
    success: Schema.String,
    run: () => Effect.as(counter.hit("reserve"), "r1")
  })
  const charge = Step.make({
    name: "charge",
    success: Schema.String,
    error: Flaky,
    retry: Retry.fixed({ delay: "0 millis", attempts: 3 }),
    run: () =>
      Effect.gen(function*() {
        const { attempt } = yield* Step.context
        state.attempts.push(attempt)
        yield* counter.hit("charge")
        if (state.failures > 0) {
          state.failures--
          return yield* Effect.fail(new Flaky({ attempt }))
        }
        return `ch${attempt}`
      })
  })
  const send = Step.make({ name: "send", success: Schema.String, run: () => Effect.as(counter.hit("send"), "sent") })
  const checkout = Workflow.make({
    name: "checkout",
    input: Schema.String,
    success: Schema.String,
    error: Flaky,
    run: () =>
      Effect.gen(function*() {
        yield* reserve()
        const c = yield* charge()
        yield* send()
        return c
      })
  })
  return { checkout, counts: counter.counts, state }
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Re-drive on ${storeName}`, () => {
    it.effect("runs the failed step again with a fresh retry budget; completed steps do not run again", () =>
      provide(Effect.gen(function*() {
        const { checkout, counts, state } = makeCheckout()
        const client = yield* Client.Client
        const { runId } = yield* client.start(checkout, "o-1", { id: "o-1" })
        const first = yield* Runner.claimAndExecute(checkout, runId)
        expect(first.outcome.status).toBe("failed")
        expect(counts).toEqual({ reserve: 1, charge: 3 })

        // Two more failures, then success: only a fresh budget of 3 gets there (attempts 4, 5, 6).
        state.failures = 2
        const { redrive, run } = yield* client.retry(runId, { by: "ann", reason: "gateway fixed" })
        expect(run.status).toBe("queued")
        expect(redrive).toMatchObject({
          seq: 1,
          by: "ann",
          reason: "gateway fixed",
          fromStep: "charge",
          discarded: ["charge"]
        })
        const second = yield* Runner.claimAndExecute(checkout, runId)
        expect(second.outcome).toEqual({ status: "succeeded", output: "ch6" })
        expect(counts).toEqual({ reserve: 1, charge: 6, send: 1 })
        expect(state.attempts).toEqual([1, 2, 3, 4, 5, 6])
        const history = yield* client.history(runId)
        expect(history.run).toMatchObject({ status: "succeeded", recoveries: 0, redriven: { count: 1 } })
        expect(history.journal.steps.map((s) => [s.stepId, s.attempts])).toEqual([["reserve", 1], ["charge", 6], [
          "send",
          1
        ]])
        expect(history.journal.attempts.filter((a) => a.stepId === "charge").map((a) => [a.attempt, a.outcome]))
          .toEqual([[1, "failure"], [2, "failure"], [3, "failure"], [4, "failure"], [5, "failure"], [6, "success"]])
        expect(history.redrives).toEqual([redrive])
      })))

    it.effect("a step that fails its fresh budget too fails the run again after exactly that budget", () =>
      provide(Effect.gen(function*() {
        const { checkout, counts } = makeCheckout()
        const client = yield* Client.Client
        const { runId } = yield* client.start(checkout, "o-1")
        yield* Runner.claimAndExecute(checkout, runId)
        yield* client.retry(runId)
        const again = yield* Runner.claimAndExecute(checkout, runId)
        expect(again.outcome.status).toBe("failed")
        expect(counts).toEqual({ reserve: 1, charge: 6 })
        const attempts = (yield* client.history(runId)).journal.attempts.filter((a) => a.stepId === "charge")
        expect(attempts.map((a) => a.stopReason)).toEqual([
          undefined,
          undefined,
          "attempts-exhausted",
          undefined,
          undefined,
          "attempts-exhausted"
        ])
      })))

    it.effect("from a step: that step and the later ones run again, the earlier ones do not", () =>
      provide(Effect.gen(function*() {
        const { checkout, counts, state } = makeCheckout()
        const client = yield* Client.Client
        state.failures = 0
        const { runId } = yield* client.start(checkout, "o-1")
        yield* Runner.claimAndExecute(checkout, runId)
        // A run that succeeded cannot be re-driven.
        const refused = yield* Effect.flip(client.retry(runId, { from: { step: "charge" } }))
        expect(refused).toMatchObject({ _tag: "RunNotRedrivable", status: "succeeded" })

        const other = yield* client.start(checkout, "o-2")
        state.failures = Infinity
        yield* Runner.claimAndExecute(checkout, other.runId)
        state.failures = 0
        const unknown = yield* Effect.flip(client.retry(other.runId, { from: { step: "nope" } }))
        expect(unknown).toMatchObject({ _tag: "StepNotInJournal", steps: ["reserve", "charge"] })
        yield* client.retry(other.runId, { from: { step: "reserve" } })
        const done = yield* Runner.claimAndExecute(checkout, other.runId)
        expect(done.outcome.status).toBe("succeeded")
        // o-1 ran everything once, o-2 reserve twice (re-driven from it) and charge 3 + 1 times.
        expect(counts).toEqual({ reserve: 3, charge: 5, send: 2 })
      })))

    it.effect("a saga's steps whose compensations ran are done again, with the failed step", () =>
      provide(Effect.gen(function*() {
        const counter = makeCounter()
        let noCar = true
        const flight = Step.make({
          name: "book-flight",
          success: Schema.String,
          run: () => Effect.as(counter.hit("flight"), "F1"),
          compensate: () => counter.hit("cancel flight")
        })
        const stay = Step.make({
          name: "plan-stay",
          success: Schema.String,
          run: () => Effect.as(counter.hit("stay"), "S1")
        })
        const car = Step.make({
          name: "book-car",
          success: Schema.String,
          error: CardDeclined,
          retry: Retry.none,
          run: () =>
            Effect.zipRight(
              counter.hit("car"),
              noCar ? Effect.fail(new CardDeclined({ code: "no car" })) : Effect.succeed("C1")
            )
        })
        const trip = Workflow.make({
          name: "trip",
          input: Schema.Null,
          success: Schema.String,
          error: CardDeclined,
          run: () =>
            Effect.gen(function*() {
              yield* flight()
              yield* stay()
              return yield* car()
            })
        })
        const client = yield* Client.Client
        const { runId } = yield* client.start(trip, null)
        expect((yield* Runner.claimAndExecute(trip, runId)).outcome.status).toBe("failed")
        expect(counter.counts).toEqual({ flight: 1, stay: 1, car: 1, "cancel flight": 1 })
        noCar = false
        const { redrive } = yield* client.retry(runId)
        // The flight was cancelled: the run goes back to it, and the stay after it runs again too.
        expect(redrive.fromStep).toBe("book-flight")
        expect(redrive.discarded).toEqual(["book-flight", "plan-stay", "book-car", "$undo:book-flight"])
        expect((yield* Runner.claimAndExecute(trip, runId)).outcome).toEqual({ status: "succeeded", output: "C1" })
        expect(counter.counts).toEqual({ flight: 2, stay: 2, car: 2, "cancel flight": 1 })
      })))

    it.effect("an awaited child that failed is re-driven with its parent, from its failed step", () =>
      provide(Effect.gen(function*() {
        const counter = makeCounter()
        let declined = true
        const charge = Step.make({
          name: "charge",
          success: Schema.String,
          error: CardDeclined,
          run: () =>
            Effect.zipRight(
              counter.hit("charge"),
              declined ? Effect.fail(new CardDeclined({ code: "x" })) : Effect.succeed("ch")
            )
        })
        const payment = Workflow.make({
          name: "payment",
          input: Schema.Null,
          success: Schema.String,
          error: CardDeclined,
          run: () => charge()
        })
        const label = Step.make({
          name: "label",
          success: Schema.String,
          run: () => Effect.as(counter.hit("label"), "L")
        })
        const order = Workflow.make({
          name: "order",
          input: Schema.Null,
          success: Schema.String,
          error: CardDeclined,
          run: () =>
            Effect.gen(function*() {
              const l = yield* label()
              return `${l}+${yield* Workflow.child(payment, null)}`
            })
        })
        const client = yield* Client.Client
        const { runId } = yield* client.start(order, null, { id: "order-1" })
        expect((yield* Runner.claimAndExecute(order, runId)).outcome.status).toBe("failed")
        expect(counter.counts).toEqual({ label: 1, charge: 1 })
        declined = false
        const { redrive } = yield* client.retry(runId)
        expect(redrive.children).toEqual(["order-1/$child:payment"])
        expect((yield* client.status("order-1/$child:payment")).status).toBe("queued")
        expect((yield* Runner.claimAndExecute(order, runId)).outcome).toEqual({ status: "succeeded", output: "L+ch" })
        expect(counter.counts).toEqual({ label: 1, charge: 2 })
      })))

    it.effect("a start of a failed run's id returns it; with ifFinished: restart-failed it starts over", () =>
      provide(Effect.gen(function*() {
        const { checkout, counts, state } = makeCheckout()
        const client = yield* Client.Client
        yield* client.start(checkout, "o-1", { id: "o-1" })
        yield* Runner.claimAndExecute(checkout, "o-1")
        const returned = yield* client.start(checkout, "o-1", { id: "o-1" })
        expect(returned).toMatchObject({ runId: "o-1", created: false })
        expect(returned.restarted).toBeUndefined()
        expect((yield* client.status("o-1")).status).toBe("failed")

        state.failures = 0
        const restarted = yield* client.start(checkout, "o-1", { id: "o-1", ifFinished: "restart-failed" })
        expect(restarted).toMatchObject({ runId: "o-1", created: false, restarted: true })
        const run = yield* client.status("o-1")
        expect(run).toMatchObject({ status: "queued", redriven: { count: 1 } })
        const [redrive] = (yield* client.history("o-1")).redrives
        expect(redrive).toMatchObject({ by: "start", fromStep: "reserve", discarded: ["reserve", "charge"] })
        expect((yield* Runner.claimAndExecute(checkout, "o-1")).outcome.status).toBe("succeeded")
        // Started over: every step ran again.
        expect(counts).toEqual({ reserve: 2, charge: 4, send: 1 })

        // A run that succeeded is returned as it is, restart or not.
        const again = yield* client.start(checkout, "o-1", { id: "o-1", ifFinished: "restart-failed" })
        expect(again).toMatchObject({ runId: "o-1", created: false })
        expect(again.restarted ?? false).toBe(false)
        expect(yield* client.status("o-1")).toMatchObject({ status: "succeeded", redriven: { count: 1 } })
        expect(counts).toEqual({ reserve: 2, charge: 4, send: 1 })
      })))
  })
}

describe("where a re-drive cuts the journal", () => {
  const entry = (stepId: string, position: number, finishedAt: number, overrides: Partial<StepRecord> = {}) => ({
    stepId,
    name: (stepId.split("/").at(-1) ?? stepId).replace(/#\d+$/, ""),
    kind: "step" as const,
    position,
    failed: false,
    finishedAt,
    ...overrides
  })
  const cut = (
    steps: ReadonlyArray<ReturnType<typeof entry>>,
    from: Parameters<typeof Redrive.plan>[2] = "failure"
  ) => {
    const plan = Redrive.plan(steps, [], from)
    return "unknownStep" in plan ? plan : { cut: plan.cut, discarded: plan.discarded }
  }

  it("a caught failure followed by more steps is kept; the failure that ended its branch is where it cuts", () => {
    expect(cut([
      entry("a", 0, 10, { failed: true }),
      entry("b", 1, 20),
      entry("c", 2, 30, { failed: true })
    ])).toEqual({ cut: "c", discarded: ["c"] })
  })

  it("compensations after the failure do not hide it; a compensated step is where it cuts", () => {
    expect(cut([
      entry("a", 0, 10),
      entry("b", 1, 20),
      entry("c", 2, 30, { failed: true }),
      entry("$undo:b", 3, 40, { kind: "compensation" })
    ])).toEqual({ cut: "b", discarded: ["b", "c", "$undo:b"] })
  })

  it("a fail-fast group: the failed branch step and the group's end; a sibling that completed before is kept", () => {
    expect(cut([
      entry("pay", 0, 10),
      entry("ship[1]/pack", 0, 20),
      entry("ship[0]/pack", 0, 30, { failed: true }),
      entry("ship", 1, 35, { kind: "group", failed: true })
    ])).toEqual({ cut: "ship[0]/pack", discarded: ["ship[0]/pack", "ship"] })
  })

  it("a run that failed outside any step: nothing is discarded", () => {
    expect(cut([entry("a", 0, 10), entry("b", 1, 20)])).toEqual({ cut: undefined, discarded: [] })
  })

  it("a timed-out signal wait: its deadline goes too, so it waits its whole timeout again", () => {
    expect(cut([
      entry("a", 0, 10),
      entry("$deadline", 1, 20, { kind: "sleep" }),
      entry("$signal:approved", 2, 90, { kind: "signal", failed: true })
    ])).toEqual({ cut: "$deadline", discarded: ["$deadline", "$signal:approved"] })
  })

  it("keeps each branch a prefix even when the clock went backwards", () => {
    expect(cut([
      entry("a", 0, 50),
      entry("b", 1, 20),
      entry("g[0]/x", 0, 30),
      entry("g[0]/y", 1, 10),
      entry("g", 2, 40, { kind: "group" })
    ], { step: "g[0]/x" })).toEqual({ cut: "g[0]/x", discarded: ["g[0]/y", "b", "g[0]/x", "g", "a"] })
  })

  it("an unknown step: the journal's step ids in journal order", () => {
    expect(cut([entry("b", 1, 20), entry("a", 0, 10)], { step: "c" })).toEqual({ unknownStep: ["a", "b"] })
  })

  it("every step's highest attempt so far becomes history", () => {
    const plan = Redrive.plan([], [{ stepId: "a", attempt: 2 }, { stepId: "a", attempt: 5 }, {
      stepId: "b",
      attempt: 1
    }], "start")
    expect(plan).toEqual({ cut: undefined, discarded: [], priorAttempts: { a: 5, b: 1 } })
  })
})
