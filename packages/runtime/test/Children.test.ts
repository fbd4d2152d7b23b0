/**
 * Child workflows on real stores (Memory and a SQLite file): a child's success and typed failure
 * flow into its parent; the parent waits suspended (a worker with one slot still finishes both);
 * `weft run`'s path executes the child in its own process; a parent cut off after starting its
 * child finds the same child again; cancelling the parent cancels the child; a detached child runs
 * on its own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import * as Runner from "../src/Runner.js"
import { Store } from "../src/Store.js"
import * as Worker from "../src/Worker.js"
import { awaitStatus, final, realStores } from "./runs.js"

class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}

const stores = realStores("children")

const makeFamily = (options: { readonly chargeMillis?: number } = {}) => {
  const log: Array<string> = []
  const charge = Step.make({
    name: "charge",
    success: Schema.String,
    error: CardDeclined,
    run: (card: string) =>
      Effect.gen(function*() {
        log.push(`charge ${card}`)
        if (options.chargeMillis !== undefined) yield* Effect.sleep(`${options.chargeMillis} millis`)
        if (card === "bad") return yield* Effect.fail(new CardDeclined({ code: "insufficient_funds" }))
        return `ch_${card}`
      })
  })
  const payment = Workflow.make({
    name: "payment",
    input: Schema.String,
    success: Schema.String,
    error: CardDeclined,
    run: (card) => charge(card)
  })
  const reserve = Step.make({
    name: "reserve",
    success: Schema.String,
    run: () => Effect.sync(() => (log.push("reserve"), "r1")),
    compensate: () => Effect.sync(() => void log.push("release"))
  })
  const order = Workflow.make({
    name: "order",
    input: Schema.String,
    success: Schema.String,
    error: CardDeclined,
    run: (card) =>
      Effect.gen(function*() {
        const r = yield* reserve()
        const c = yield* Workflow.child(payment, card)
        return `${r}+${c}`
      })
  })
  return { order, payment, log }
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Child workflows on ${storeName}`, () => {
    it.live("a child's success is the step's value; the parent waits holding no slot (one slot is enough)", () =>
      provide(
        Effect.gen(function*() {
          const { log, order } = makeFamily({ chargeMillis: 100 })
          const client = yield* Client.Client
          const store = yield* Store
          // The worker is given the parent only: it learns the child's workflow when the run starts it.
          yield* Worker.start({ workflows: [order], concurrency: 1, pollInterval: "1 hour" })
          const handle = yield* client.start(order, "4242")
          const done = yield* awaitStatus(handle.runId, final)
          expect(done.output).toBe("r1+ch_4242")
          expect(done.recoveries).toBe(0)
          const childId = `${handle.runId}/$child:payment`
          const child = yield* client.status(childId)
          expect(child).toMatchObject({ status: "succeeded", workflow: "payment", parent: { runId: handle.runId } })
          expect((yield* store.readJournal(handle.runId)).steps.map((s) => [s.stepId, s.kind])).toEqual([
            ["reserve", "step"],
            ["$child:payment", "child"]
          ])
          expect((yield* store.readJournal(childId)).steps.map((s) => s.stepId)).toEqual(["charge"])
          expect(log).toEqual(["reserve", "charge 4242"])
        }).pipe(Effect.scoped)
      ))

    it.live("a child's typed failure is the parent's failure, and the parent compensates", () =>
      provide(
        Effect.gen(function*() {
          const { log, order } = makeFamily()
          const client = yield* Client.Client
          yield* Worker.start({ workflows: [order], pollInterval: "1 hour" })
          const handle = yield* client.start(order, "bad")
          yield* awaitStatus(handle.runId, final)
          const error = yield* Effect.flip(client.result(handle))
          expect(error).toEqual(new CardDeclined({ code: "insufficient_funds" }))
          expect(log).toEqual(["reserve", "charge bad", "release"])
        }).pipe(Effect.scoped)
      ))

    it.live("weft run's path executes the child in its own process", () =>
      provide(Effect.gen(function*() {
        const { order } = makeFamily()
        const client = yield* Client.Client
        const handle = yield* client.start(order, "1111")
        const executed = yield* Runner.claimAndExecute(order, handle.runId, { suspendAfter: "0 millis" })
        expect(executed.outcome).toEqual({ status: "succeeded", output: "r1+ch_1111" })
      })))

    it.live("a parent cut off after starting its child finds the same child when it resumes", () =>
      provide(
        Effect.gen(function*() {
          const { log, order, payment } = makeFamily({ chargeMillis: 200 })
          const client = yield* Client.Client
          const store = yield* Store
          const handle = yield* client.start(order, "9999")
          const childId = `${handle.runId}/$child:payment`
          // The parent starts the child; nobody executes it yet; the parent is cut off while it waits.
          const fiber = yield* Effect.fork(Runner.claimAndExecute(order, handle.runId))
          yield* awaitStatus(childId, () => true)
          yield* Fiber.interrupt(fiber)
          yield* Worker.start({ workflows: [order, payment], pollInterval: "1 hour" })
          const done = yield* awaitStatus(handle.runId, final)
          expect(done.output).toBe("r1+ch_9999")
          const runs = yield* store.listRuns({ workflow: "payment" })
          expect(runs.map((r) => r.id)).toEqual([childId])
          expect(log.filter((l) => l === "reserve")).toHaveLength(1)
        }).pipe(Effect.scoped)
      ))

    it.live("cancelling the parent cancels the child", () =>
      provide(
        Effect.gen(function*() {
          const { log, order } = makeFamily({ chargeMillis: 60_000 })
          const client = yield* Client.Client
          const store = yield* Store
          yield* Worker.start({ workflows: [order], pollInterval: "1 hour" })
          const handle = yield* client.start(order, "5555")
          const childId = `${handle.runId}/$child:payment`
          yield* awaitStatus(childId, (s) => s === "running")
          while (!log.includes("charge 5555")) yield* Effect.sleep("5 millis")
          yield* store.requestCancel({ id: handle.runId, by: "ops", reason: "order withdrawn", now: Date.now() })
          const child = yield* awaitStatus(childId, final)
          const parent = yield* awaitStatus(handle.runId, final)
          expect([parent.status, child.status]).toEqual(["cancelled", "cancelled"])
          expect(child.cancel).toMatchObject({ by: "ops", reason: "order withdrawn" })
          expect(log).toContain("release")
          const error = yield* Effect.flip(client.result(handle))
          expect(error).toBeInstanceOf(Failure.Cancelled)
        }).pipe(Effect.scoped)
      ))

    it.live("a detached child (startChild) runs on its own; the parent goes on with its id", () =>
      provide(
        Effect.gen(function*() {
          const { payment } = makeFamily({ chargeMillis: 50 })
          const notify = Workflow.make({
            name: "notify",
            input: Schema.String,
            success: Schema.String,
            run: (card) => Effect.map(Workflow.startChild(payment, card, { id: `pay-${card}` }), ({ runId }) => runId)
          })
          const client = yield* Client.Client
          yield* Worker.start({ workflows: [notify], pollInterval: "1 hour" })
          const handle = yield* client.start(notify, "7777")
          const parent = yield* awaitStatus(handle.runId, final)
          expect(parent.output).toBe("pay-7777")
          const child = yield* awaitStatus("pay-7777", final)
          expect(child).toMatchObject({ status: "succeeded", output: "ch_7777", parent: { runId: handle.runId } })
          const exit = yield* Effect.exit(client.result({ runId: "pay-7777", workflow: payment }))
          expect(Exit.isSuccess(exit)).toBe(true)
        }).pipe(Effect.scoped)
      ))
  })
}
