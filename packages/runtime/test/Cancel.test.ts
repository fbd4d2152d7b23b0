/**
 * Cancellation through the store and a worker, on real stores (Memory and a SQLite file): a run
 * held by a worker stops at once (its step in flight interrupted, the step's resources released),
 * its completed steps are compensated, and it ends `cancelled` with who asked and why; a sleeping
 * run and a queued run are cancelled without running anything new; a finished run is left alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import { Store } from "../src/Store.js"
import * as Worker from "../src/Worker.js"
import { awaitStatus, final, realStores } from "./runs.js"

const stores = realStores("cancel")

const makeTrip = (options: { readonly slowCar?: boolean; readonly sleepFirst?: boolean } = {}) => {
  const log: Array<string> = []
  const record = (entry: string) => Effect.sync(() => void log.push(entry))
  const flight = Step.make({
    name: "book-flight",
    success: Schema.String,
    run: () => Effect.as(record("flight"), "F-1"),
    compensate: (booking) => record(`cancel ${booking}`)
  })
  const car = Step.make({
    name: "book-car",
    success: Schema.String,
    run: () =>
      Effect.acquireUseRelease(
        record("car: connection opened"),
        () => (options.slowCar === true ? Effect.as(Effect.sleep("1 minute"), "C-1") : Effect.succeed("C-1")),
        () => record("car: connection closed")
      )
  })
  const workflow = Workflow.make({
    name: "trip",
    input: Schema.Void,
    success: Schema.String,
    run: () =>
      Effect.gen(function*() {
        const f = yield* flight()
        if (options.sleepFirst === true) yield* Workflow.sleep("1 hour")
        const c = yield* car()
        return `${f}+${c}`
      })
  })
  return { workflow, log }
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Cancellation on ${storeName}`, () => {
    it.live("a held run stops at once: step interrupted, resources released, completed steps compensated", () =>
      provide(
        Effect.gen(function*() {
          const { log, workflow } = makeTrip({ slowCar: true })
          const client = yield* Client.Client
          const store = yield* Store
          yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour" })
          const handle = yield* client.start(workflow, undefined)
          while (!log.includes("car: connection opened")) yield* Effect.sleep("5 millis")
          const asked = Date.now()
          const request = yield* store.requestCancel({
            id: handle.runId,
            by: "ann",
            reason: "customer changed plans",
            now: asked
          })
          expect(request).toEqual({ status: "running", requested: true })
          const done = yield* awaitStatus(handle.runId, final)
          expect(Date.now() - asked).toBeLessThan(2_000)
          expect(done.status).toBe("cancelled")
          expect(done.cancel).toMatchObject({ by: "ann", reason: "customer changed plans" })
          expect(log).toEqual(["flight", "car: connection opened", "car: connection closed", "cancel F-1"])
          const error = yield* Effect.flip(client.result(handle))
          expect(error).toBeInstanceOf(Failure.Cancelled)
          expect(error).toMatchObject({ runId: handle.runId, by: "ann", reason: "customer changed plans" })
          const journal = yield* store.readJournal(handle.runId)
          expect(journal.steps.map((s) => s.stepId)).toEqual(["book-flight", "$undo:book-flight"])
        }).pipe(Effect.scoped)
      ))

    it.live("a sleeping run is cancelled without running anything new; its completed steps are compensated", () =>
      provide(
        Effect.gen(function*() {
          const { log, workflow } = makeTrip({ sleepFirst: true })
          const client = yield* Client.Client
          const store = yield* Store
          yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour" })
          const handle = yield* client.start(workflow, undefined)
          yield* awaitStatus(handle.runId, (s) => s === "sleeping")
          yield* store.requestCancel({ id: handle.runId, by: "ops", reason: "no longer needed", now: Date.now() })
          const done = yield* awaitStatus(handle.runId, final)
          expect(done.status).toBe("cancelled")
          expect(log).toEqual(["flight", "cancel F-1"])
        }).pipe(Effect.scoped)
      ))

    it.live("a queued run is cancelled before it starts anything; a finished run is left alone", () =>
      provide(
        Effect.gen(function*() {
          const { log, workflow } = makeTrip()
          const client = yield* Client.Client
          const store = yield* Store
          const handle = yield* client.start(workflow, undefined)
          yield* store.requestCancel({ id: handle.runId, by: "ops", reason: "duplicate", now: Date.now() })
          yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour" })
          const done = yield* awaitStatus(handle.runId, final)
          expect(done.status).toBe("cancelled")
          expect(log).toEqual([])
          const again = yield* store.requestCancel({ id: handle.runId, by: "ops", reason: "twice", now: Date.now() })
          expect(again).toEqual({ status: "cancelled", requested: false })
          expect((yield* client.status(handle.runId)).cancel).toMatchObject({ by: "ops", reason: "duplicate" })
          const missing = yield* Effect.flip(
            store.requestCancel({ id: "nope", by: "ops", reason: "x", now: Date.now() })
          )
          expect(missing._tag).toBe("RunNotFound")
        }).pipe(Effect.scoped)
      ))
  })
}
