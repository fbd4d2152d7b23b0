/**
 * Waits inside task-group branches: a run whose every branch waits (a long sleep, a signal, a
 * child) suspends as a whole and holds nothing; the first wait that can end wakes it; a branch that
 * waits while a sibling works sleeps in process instead. Virtual time (TestClock) on the memory
 * store, through the real engine and `Runner`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import type { Store } from "../src/Store.js"
import { HOUR, settle } from "./runs.js"

const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
  Effect.provide(effect, Layer.provideMerge(Client.layer, MemoryStore.layer))

const now = Effect.clockWith((clock) => clock.currentTimeMillis)

describe("waits in task-group branches", () => {
  it.effect("when every branch sleeps the run suspends until the earliest wake; each wake lets one go on", () =>
    provide(Effect.gen(function*() {
      const ran: Array<string> = []
      const mark = Step.make({
        name: "mark",
        success: Schema.String,
        run: (label: string) => Effect.sync(() => (ran.push(label), label))
      })
      const wf = Workflow.make({
        name: "two-naps",
        input: Schema.Void,
        success: Schema.Array(Schema.String),
        run: () =>
          Workflow.all([
            Effect.zipRight(Workflow.sleep("1 hour"), mark("a")),
            Effect.zipRight(mark("b"), Effect.zipRight(Workflow.sleep("2 hours"), mark("c")))
          ], { name: "naps" })
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(wf, undefined)
      const started = yield* now
      const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, runId))
      yield* settle
      const first = yield* client.status(runId)
      expect(first).toMatchObject({ status: "sleeping", leaseOwner: undefined, wakeAt: started + HOUR })
      expect(first.reason).toContain("; ")
      expect(ran).toEqual(["b"])

      yield* TestClock.adjust("1 hour")
      yield* settle
      // Branch 0 went on; branch 1 still sleeps: suspended again, until its own wake time.
      expect(ran).toEqual(["b", "a"])
      expect(yield* client.status(runId)).toMatchObject({ status: "sleeping", wakeAt: started + 2 * HOUR })

      yield* TestClock.adjust("1 hour")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome).toEqual({ status: "succeeded", output: ["a", "c"] })
      expect(ran).toEqual(["b", "a", "c"])
    })))

  it.effect("a branch whose nested group just ended is not taken for waiting: it goes on at once", () =>
    provide(Effect.gen(function*() {
      const ran: Array<string> = []
      const mark = Step.make({
        name: "mark",
        success: Schema.String,
        run: (label: string) => Effect.sync(() => (ran.push(label), label))
      })
      let slowDone = 0
      const slow = Step.make({
        name: "slow",
        success: Schema.Void,
        run: () => Effect.zipRight(Effect.sleep("10 seconds"), Effect.sync(() => void slowDone++))
      })
      const wf = Workflow.make({
        name: "nested-then-on",
        input: Schema.Void,
        success: Schema.Void,
        run: () =>
          Effect.asVoid(Workflow.all([
            // The short sleep (in process) lets the other branch park first.
            Workflow.sleep("1 second").pipe(
              Effect.zipRight(Workflow.all([mark("inner-0"), mark("inner-1")], { name: "inner" })),
              Effect.zipRight(slow())
            ),
            Workflow.sleep("1 hour")
          ], { name: "outer" }))
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(wf, undefined)
      const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, runId))
      yield* settle
      expect((yield* client.status(runId)).status).toBe("running")
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(ran).toEqual(["inner-0", "inner-1"])
      // The step after the nested group runs (in process, 10 s): the run is not suspended under it.
      expect((yield* client.status(runId)).status).toBe("running")
      yield* TestClock.adjust("10 seconds")
      yield* settle
      expect(slowDone).toBe(1)
      expect((yield* client.status(runId)).status).toBe("sleeping")
      yield* TestClock.adjust("1 hour")
      expect((yield* Fiber.join(fiber)).outcome.status).toBe("succeeded")
    })))

  it.effect("a branch waiting for a signal and one sleeping: waiting until the sleep ends or the signal comes", () =>
    provide(Effect.gen(function*() {
      const wf = Workflow.make({
        name: "signal-or-nap",
        input: Schema.Void,
        success: Schema.Tuple(Schema.String, Schema.String),
        signals: { approve: Schema.String },
        run: () =>
          Workflow.all([
            Workflow.signal("approve", Schema.String),
            Effect.as(Workflow.sleep("1 hour"), "rested")
          ])
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(wf, undefined)
      const started = yield* now
      const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, runId))
      yield* settle
      expect(yield* client.status(runId)).toMatchObject({
        status: "waiting",
        leaseOwner: undefined,
        wakeAt: started + HOUR
      })
      const delivered = yield* client.signal(wf, runId, "approve", "yes")
      expect(delivered.woke).toBe(true)
      // Runner looks at a waiting run once a second.
      yield* TestClock.adjust("1 second")
      yield* settle
      // The signal branch is done; the other still sleeps: the run sleeps, for the rest of the hour.
      expect(yield* client.status(runId)).toMatchObject({ status: "sleeping", wakeAt: started + HOUR })
      yield* TestClock.adjust("1 hour")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome).toEqual({ status: "succeeded", output: ["yes", "rested"] })
    })))

  it.effect("a branch sleeps in process while a sibling's step runs: the run stays held and wakes on time", () =>
    provide(Effect.gen(function*() {
      const times: Record<string, number> = {}
      const long = Step.make({
        name: "long",
        success: Schema.Void,
        run: () => Effect.sleep("3 hours")
      })
      const after = Step.make({
        name: "after-nap",
        success: Schema.Void,
        run: () => Effect.map(now, (t) => void (times.after = t))
      })
      const wf = Workflow.make({
        name: "nap-beside-work",
        input: Schema.Void,
        success: Schema.Void,
        run: () => Effect.asVoid(Workflow.all([long(), Effect.zipRight(Workflow.sleep("1 hour"), after())]))
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(wf, undefined)
      const started = yield* now
      // A lease longer than the test, so that the heartbeat does not beat through three virtual hours.
      const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, runId, { leaseMillis: 24 * HOUR }))
      yield* settle
      expect((yield* client.status(runId)).status).toBe("running")
      yield* TestClock.adjust("1 hour")
      yield* settle
      expect(times.after - started).toBeGreaterThanOrEqual(HOUR)
      expect(times.after - started).toBeLessThan(HOUR + 1_000)
      expect((yield* client.status(runId)).status).toBe("running")
      yield* TestClock.adjust("2 hours")
      const executed = yield* Fiber.join(fiber)
      expect(executed.outcome.status).toBe("succeeded")
    })))

  it.live("children started in branches: the parent waits for all of them suspended, and Runner executes them", () =>
    provide(Effect.gen(function*() {
      let executedChildren = 0
      const square = Step.make({
        name: "square",
        success: Schema.Number,
        run: (n: number) => Effect.sync(() => (executedChildren++, n * n))
      })
      const child = Workflow.make({
        name: "square-it",
        input: Schema.Number,
        success: Schema.Number,
        run: (n) => square(n)
      })
      const parent = Workflow.make({
        name: "sum-of-squares",
        input: Schema.Array(Schema.Number),
        success: Schema.Number,
        run: (ns) =>
          Effect.map(
            Workflow.forEach(ns, (n) => Workflow.child(child, n), { name: "each" }),
            (squares) => squares.reduce((a, b) => a + b, 0)
          )
      })
      const client = yield* Client.Client
      const { runId } = yield* client.start(parent, [1, 2, 3])
      const suspensions: Array<ReadonlyArray<string>> = []
      const executed = yield* Runner.claimAndExecute(parent, runId, {
        onSuspended: (suspended) => Effect.sync(() => void suspensions.push(suspended.children ?? []))
      }).pipe(Effect.timeout("20 seconds"))
      expect(executed.outcome).toEqual({ status: "succeeded", output: 14 })
      expect(executedChildren).toBe(3)
      expect(suspensions[0]).toEqual([
        `${runId}/each[0]/$child:square-it`,
        `${runId}/each[1]/$child:square-it`,
        `${runId}/each[2]/$child:square-it`
      ])
    })))
})
