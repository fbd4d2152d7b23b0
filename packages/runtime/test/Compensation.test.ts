/**
 * Compensation (sagas) executed by the engine on real stores (Memory and a SQLite file): when the
 * workflow fails, the compensations of its completed steps run latest first, each journaled; a run
 * cut off during its compensations resumes with the ones not yet done; a compensation that fails
 * for good does not stop the others and shows in the run's Cause; a workflow that succeeds
 * compensates nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Retry, Step, Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Client from "../src/Client.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import * as SqliteStore from "../src/SqliteStore.js"
import { Store } from "../src/Store.js"

class NoCar extends Schema.TaggedError<NoCar>()("NoCar", { city: Schema.String }) {}

const stores = {
  memory: () => MemoryStore.layer,
  sqlite: () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-saga-"))
    return SqliteStore.layer({ filename: Path.join(dir, "weft.db") })
  }
}

const makeSaga = (options: {
  readonly carFails: boolean
  readonly hotelUndo?: Effect.Effect<void, Error>
  readonly flightUndo?: Effect.Effect<void>
}) => {
  const log: Array<string> = []
  const record = (entry: string) => Effect.sync(() => void log.push(entry))
  const fast = Retry.fixed({ delay: "1 millis", attempts: 2, retryDefects: true })
  const flight = Step.make({
    name: "book-flight",
    success: Schema.String,
    run: (city: string) => Effect.as(record(`flight ${city}`), `F-${city}`),
    compensate: (booking) => Effect.zipRight(options.flightUndo ?? Effect.void, record(`cancel ${booking}`)),
    compensateRetry: fast
  })
  const hotel = Step.make({
    name: "book-hotel",
    success: Schema.String,
    run: (city: string) => Effect.as(record(`hotel ${city}`), `H-${city}`),
    compensate: (booking) => Effect.zipRight(options.hotelUndo ?? Effect.void, record(`cancel ${booking}`)),
    compensateRetry: fast
  })
  const car = Step.make({
    name: "book-car",
    success: Schema.String,
    error: NoCar,
    run: (city: string) =>
      Effect.zipRight(
        record(`car ${city}`),
        options.carFails ? Effect.fail(new NoCar({ city })) : Effect.succeed(`C-${city}`)
      )
  })
  const workflow = Workflow.make({
    name: "trip",
    input: Schema.String,
    success: Schema.Array(Schema.String),
    error: NoCar,
    run: (city) =>
      Effect.gen(function*() {
        const f = yield* flight(city)
        const h = yield* hotel(city)
        const c = yield* car(city)
        return [f, h, c]
      })
  })
  return { workflow, log }
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Compensation on ${storeName}`, () => {
    it.live("a failure runs the compensations of completed steps, latest first, each journaled", () =>
      provide(Effect.gen(function*() {
        const { log, workflow } = makeSaga({ carFails: true })
        const client = yield* Client.Client
        const store = yield* Store
        const handle = yield* client.start(workflow, "oslo")
        const executed = yield* Runner.claimAndExecute(workflow, handle.runId)
        expect(executed.outcome.status).toBe("failed")
        expect(yield* Effect.flip(client.result(handle))).toEqual(new NoCar({ city: "oslo" }))
        expect(log).toEqual(["flight oslo", "hotel oslo", "car oslo", "cancel H-oslo", "cancel F-oslo"])
        const journal = yield* store.readJournal(handle.runId)
        expect(journal.steps.map((s) => [s.stepId, s.kind])).toEqual([
          ["book-flight", "step"],
          ["book-hotel", "step"],
          ["book-car", "step"],
          ["$undo:book-hotel", "compensation"],
          ["$undo:book-flight", "compensation"]
        ])
      })))

    it.live("a success compensates nothing", () =>
      provide(Effect.gen(function*() {
        const { log, workflow } = makeSaga({ carFails: false })
        const client = yield* Client.Client
        const handle = yield* client.start(workflow, "rome")
        yield* Runner.claimAndExecute(workflow, handle.runId)
        expect(yield* client.result(handle)).toEqual(["F-rome", "H-rome", "C-rome"])
        expect(log).toEqual(["flight rome", "hotel rome", "car rome"])
      })))

    it.live("a run cut off during its compensations resumes with those not yet done", () =>
      provide(Effect.gen(function*() {
        let gate = true
        // The flight's compensation hangs the first time: the run is cut off there.
        const { log, workflow } = makeSaga({
          carFails: true,
          flightUndo: Effect.suspend(() => (gate ? Effect.never : Effect.void))
        })
        const client = yield* Client.Client
        const store = yield* Store
        const handle = yield* client.start(workflow, "lima")
        const fiber = yield* Effect.fork(Runner.claimAndExecute(workflow, handle.runId))
        while (!(yield* store.readJournal(handle.runId)).steps.some((s) => s.stepId === "$undo:book-hotel")) {
          yield* Effect.sleep("1 millis")
        }
        yield* Fiber.interrupt(fiber)
        expect((yield* client.status(handle.runId)).status).toBe("queued")
        gate = false
        yield* Runner.claimAndExecute(workflow, handle.runId)
        expect(yield* Effect.flip(client.result(handle))).toEqual(new NoCar({ city: "lima" }))
        expect(log).toEqual(["flight lima", "hotel lima", "car lima", "cancel H-lima", "cancel F-lima"])
      })))

    it.live("a compensation that fails for good does not stop the others and is added to the Cause", () =>
      provide(Effect.gen(function*() {
        const { log, workflow } = makeSaga({
          carFails: true,
          hotelUndo: Effect.fail(new Error("hotel API down"))
        })
        const client = yield* Client.Client
        const store = yield* Store
        const handle = yield* client.start(workflow, "kyiv")
        const executed = yield* Runner.claimAndExecute(workflow, handle.runId)
        expect(log).toContain("cancel F-kyiv")
        expect(log).not.toContain("cancel H-kyiv")
        const exit = executed.exit
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          expect(Cause.failureOption(exit.cause)).toEqual(Option.some(new NoCar({ city: "kyiv" })))
          const defect = Option.getOrThrow(Cause.dieOption(exit.cause)) as Error
          expect(defect.message).toBe("the compensation of step book-hotel failed")
        }
        const undo = (yield* store.readJournal(handle.runId)).attempts.filter((a) => a.stepId === "$undo:book-hotel")
        expect(undo.map((a) => a.outcome)).toEqual(["defect", "defect"])
      })))
  })
}
