/**
 * Signals end to end through the engine, a worker and the client, on real stores (Memory and a
 * SQLite file): a signal sent before the run waits is taken from the mailbox; one sent while the
 * run is suspended wakes it; a timeout is the typed SignalTimeout; payloads are validated on
 * delivery and nothing invalid is stored; and the lost wake-up (a signal delivered between the
 * run's decision to wait and the wait being stored) cannot strand a run.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Step, Workflow } from "@weft/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import * as Runner from "../src/Runner.js"
import { Store, type StoreService } from "../src/Store.js"
import * as Worker from "../src/Worker.js"
import { awaitStatus, final, realStores } from "./runs.js"

const Approval = Schema.Struct({ by: Schema.String, at: Schema.DateFromNumber })

const stores = realStores("signals")

const makeWorkflow = (timeout?: Duration.DurationInput) => {
  const counts = { before: 0, after: 0 }
  const before = Step.make({ name: "before", success: Schema.Void, run: () => Effect.sync(() => void counts.before++) })
  const after = Step.make({ name: "after", success: Schema.Void, run: () => Effect.sync(() => void counts.after++) })
  const workflow = Workflow.make({
    name: "approval",
    input: Schema.String,
    success: Schema.String,
    signals: { approved: Approval },
    run: (order) =>
      Effect.gen(function*() {
        yield* before()
        const approval = yield* Workflow.signal("approved", Approval, { timeout })
        yield* after()
        return `${order} approved by ${approval.by} at ${approval.at.toISOString()}`
      })
  })
  return { workflow, counts }
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(
    effect: Effect.Effect<A, E, Client.Client | Store>,
    wrap?: (s: StoreService) => StoreService
  ) =>
    Effect.provide(
      effect,
      Layer.provideMerge(
        Client.layer,
        wrap === undefined
          ? makeStore()
          : Layer.effect(Store, Effect.map(Store, wrap)).pipe(Layer.provide(makeStore()))
      )
    )

  describe(`Signals on ${storeName}`, () => {
    it.live("a signal sent before the run waits is taken from the mailbox", () =>
      provide(
        Effect.gen(function*() {
          const { counts, workflow } = makeWorkflow()
          const client = yield* Client.Client
          const { runId } = yield* client.start(workflow, "o-1")
          yield* client.signal(workflow, runId, "approved", { by: "ann", at: new Date(5_000) })
          const events: Array<string> = []
          yield* Worker.start({
            workflows: [workflow],
            pollInterval: "1 hour",
            onEvent: (e) => Effect.sync(() => events.push(e._tag))
          })
          const done = yield* awaitStatus(runId, final)
          expect(done.output).toBe("o-1 approved by ann at 1970-01-01T00:00:05.000Z")
          expect(events).toEqual(["RunStarted", "RunFinished"])
          expect(counts).toEqual({ before: 1, after: 1 })
        }).pipe(Effect.scoped)
      ))

    it.live("a suspended run waits holding nothing, and the signal wakes it; steps before do not run again", () =>
      provide(
        Effect.gen(function*() {
          const { counts, workflow } = makeWorkflow()
          const client = yield* Client.Client
          const worker = yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour" })
          const { runId } = yield* client.start(workflow, "o-2")
          const waiting = yield* awaitStatus(runId, (s) => s === "waiting")
          expect(waiting.leaseOwner).toBeUndefined()
          expect(waiting.reason).toBe("waiting for signal approved")
          expect(yield* worker.inFlight).toBe(0)
          const delivered = yield* client.signal(workflow, runId, "approved", { by: "bob", at: new Date(0) })
          expect(delivered.woke).toBe(true)
          const done = yield* awaitStatus(runId, final)
          expect(done.status).toBe("succeeded")
          expect(done.recoveries).toBe(0)
          expect(counts).toEqual({ before: 1, after: 1 })
        }).pipe(Effect.scoped)
      ))

    it.live("no signal within the timeout is the typed SignalTimeout; a later signal is not taken", () =>
      provide(
        Effect.gen(function*() {
          const { counts, workflow } = makeWorkflow("300 millis")
          const client = yield* Client.Client
          yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour", suspendAfter: "100 millis" })
          const handle = yield* client.start(workflow, "o-3")
          yield* awaitStatus(handle.runId, (s) => s === "waiting")
          const error = yield* Effect.flip(client.result(handle, { pollInterval: "20 millis" }))
          expect(error).toBeInstanceOf(Failure.SignalTimeout)
          expect(error).toMatchObject({ signal: "approved", step: "$signal:approved", timeoutMillis: 300 })
          expect(counts).toEqual({ before: 1, after: 0 })
          const late = yield* Effect.flip(
            client.signal(workflow, handle.runId, "approved", { by: "x", at: new Date(0) })
          )
          expect(late._tag).toBe("RunFinished")
        }).pipe(Effect.scoped)
      ))

    it.live("a payload that fails the schema, or an undeclared signal, is rejected and nothing is stored", () =>
      provide(Effect.gen(function*() {
        const { workflow } = makeWorkflow()
        const client = yield* Client.Client
        const store = yield* Store
        const { runId } = yield* client.start(workflow, "o-4")
        const invalid = yield* Effect.flip(client.signalUnknown(workflow, runId, "approved", { by: 7, at: 0 }))
        expect(invalid._tag).toBe("SignalInvalid")
        expect(invalid.message).toMatch(/does not match its schema at by: Expected string, actual 7/)
        const unknown = yield* Effect.flip(client.signalUnknown(workflow, runId, "rejected", {}))
        expect(unknown.message).toMatch(/declares the signals approved/)
        const missing = yield* Effect.flip(
          client.signalUnknown(workflow, "no-such-run", "approved", { by: "a", at: 0 })
        )
        expect(missing._tag).toBe("RunNotFound")
        expect(yield* store.listSignals(runId)).toEqual([])
        const ok = yield* client.signalUnknown(workflow, runId, "approved", { by: "a", at: 1 })
        expect(ok.woke).toBe(false)
        expect((yield* store.listSignals(runId)).map((s) => s.payload)).toEqual([{ by: "a", at: 1 }])
      })))

    it.live("a signal delivered between the decision to wait and the stored wait still wakes the run", () => {
      let deliverNow: (() => Effect.Effect<unknown, unknown>) | undefined
      // Delivers the signal inside the suspend path: after the engine decided to wait, before the
      // store records it.
      const racing = (store: StoreService): StoreService => ({
        ...store,
        suspendRun: (options) =>
          Effect.zipRight(
            deliverNow === undefined ? Effect.void : Effect.orDie(deliverNow()),
            store.suspendRun(options)
          )
      })
      return provide(
        Effect.gen(function*() {
          const { counts, workflow } = makeWorkflow()
          const client = yield* Client.Client
          const { runId } = yield* client.start(workflow, "o-5")
          deliverNow = () => client.signal(workflow, runId, "approved", { by: "eve", at: new Date(0) })
          yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour" })
          const done = yield* awaitStatus(runId, final)
          expect(done.status).toBe("succeeded")
          expect(done.output).toMatch(/approved by eve/)
          expect(counts).toEqual({ before: 1, after: 1 })
        }).pipe(Effect.scoped),
        racing
      )
    })

    it.live("waiting for a signal the workflow does not declare is a defect that says how to declare it", () =>
      provide(
        Effect.gen(function*() {
          const workflow = Workflow.make({
            name: "undeclared",
            input: Schema.Void,
            success: Schema.Boolean,
            run: () => Workflow.signal("go", Schema.Boolean)
          })
          const client = yield* Client.Client
          yield* Worker.start({ workflows: [workflow], pollInterval: "1 hour" })
          const handle = yield* client.start(workflow, undefined)
          const done = yield* awaitStatus(handle.runId, final)
          expect(done.status).toBe("failed")
          expect(JSON.stringify(done.failure)).toMatch(/does not declare it: add it to Workflow.make/)
        }).pipe(Effect.scoped)
      ))

    it.live("weft run's path (Runner) resumes on the signal, not at the deadline", () =>
      provide(Effect.gen(function*() {
        const { workflow } = makeWorkflow("1 minute")
        const client = yield* Client.Client
        const handle = yield* client.start(workflow, "o-6")
        const fiber = yield* Effect.fork(Runner.claimAndExecute(workflow, handle.runId, { suspendAfter: "100 millis" }))
        yield* awaitStatus(handle.runId, (s) => s === "waiting")
        const sent = Date.now()
        yield* client.signal(workflow, handle.runId, "approved", { by: "ann", at: new Date(0) })
        const executed = yield* Fiber.join(fiber)
        expect(executed.outcome.status).toBe("succeeded")
        expect(Date.now() - sent).toBeLessThan(3_000)
      })))
  })
}
