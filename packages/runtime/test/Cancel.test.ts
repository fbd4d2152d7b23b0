/**
 * Cancellation through the store and a worker, on real stores (Memory and a SQLite file): a run
 * held by a worker stops at once (its step in flight interrupted, the step's resources released),
 * its completed steps are compensated, and it ends `cancelled` with who asked and why; a sleeping
 * run and a queued run are cancelled without running anything new; a finished run is left alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Step, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import * as Engine from "../src/Engine.js"
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

    it.live("a child started after the request, before the run noticed it, is cancelled too", () =>
      provide(
        Effect.gen(function*() {
          const gate = { open: false }
          const child = Workflow.make({
            name: "late-child",
            input: Schema.Void,
            success: Schema.Void,
            run: () => Workflow.sleep("1 hour")
          })
          const wait = Step.make({
            name: "wait-for-gate",
            success: Schema.Void,
            run: () => Effect.repeat(Effect.sleep("5 millis"), { until: () => gate.open })
          })
          const parent = Workflow.make({
            name: "starts-late",
            input: Schema.Void,
            success: Schema.Void,
            run: () =>
              Effect.gen(function*() {
                yield* wait()
                yield* Workflow.startChild(child, undefined)
                yield* Workflow.sleep("1 hour")
              })
          })
          const client = yield* Client.Client
          const store = yield* Store
          // Without notices, a worker learns of a request at its heartbeat (a third of the lease).
          const handle = yield* client.start(parent, undefined)
          const claimed = yield* store.claimRun({
            id: handle.runId,
            owner: "slow-noticer",
            leaseMillis: 60_000,
            now: Date.now()
          })
          const execution = yield* Effect.fork(
            Engine.execute(parent, claimed, { owner: "slow-noticer", leaseMillis: 60_000, suspendAfter: "1 hour" })
          )
          yield* Effect.sleep("50 millis")
          yield* store.requestCancel({ id: handle.runId, by: "ann", reason: "stop", now: Date.now() })
          gate.open = true
          const childId = `${handle.runId}/$start:late-child`
          while ((yield* store.getRun(childId))._tag === "None") yield* Effect.sleep("5 millis")
          expect((yield* store.getRun(childId)).pipe(Option.getOrThrow).cancel).toBeUndefined()
          // The run notices (here: its execution is told to look now) and stops; its child is cancelled too.
          yield* Fiber.interrupt(execution)
          const again = yield* store.claimRun({ id: handle.runId, owner: "w2", leaseMillis: 60_000, now: Date.now() })
          const done = yield* Engine.execute(parent, again, { owner: "w2", leaseMillis: 60_000 })
          expect(done.outcome.status).toBe("cancelled")
          expect((yield* store.getRun(childId)).pipe(Option.getOrThrow).cancel).toMatchObject({
            by: "ann",
            reason: "stop"
          })
        })
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
