/**
 * Poison runs on real stores (Memory and a SQLite file): a run recovered more times than its limit
 * (the workflow's `maxRecoveries`, else the worker's, else 5) fails with `Failure.RecoveryLimit`
 * before any of its code runs again, its compensations not run and its journal kept, and a re-drive
 * runs it again from its journal. The workers that died on it are simulated by claims taken over.
 */
import { describe, expect, it } from "@effect/vitest"
import { Failure, Step, Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import * as Engine from "../src/Engine.js"
import { Store } from "../src/Store.js"
import { realStores } from "./runs.js"

const stores = realStores("poison")

const makePoison = (maxRecoveries: number | undefined) => {
  const counts: Record<string, number> = {}
  const hit = (name: string) => Effect.sync(() => void (counts[name] = (counts[name] ?? 0) + 1))
  const book = Step.make({
    name: "book",
    success: Schema.String,
    run: () => Effect.as(hit("book"), "B1"),
    compensate: () => hit("undo book")
  })
  const crash = Step.make({ name: "crash", success: Schema.String, run: () => Effect.as(hit("crash"), "survived") })
  const poison = Workflow.make({
    name: "poison",
    input: Schema.Null,
    success: Schema.String,
    maxRecoveries,
    run: () => Effect.zipRight(book(), crash())
  })
  return { poison, counts }
}

/** Creates the run claimed by `w0`, which completed `book`, then `recoveries` workers that took it over and died. */
const crashedRun = (recoveries: number) =>
  Effect.gen(function*() {
    const store = yield* Store
    yield* store.createRun({
      id: "p-1",
      workflow: "poison",
      version: "unversioned",
      input: null,
      claim: { owner: "w0", leaseMillis: 1_000 },
      now: 0
    })
    yield* store.completeStep({
      owner: "w0",
      step: {
        runId: "p-1",
        stepId: "book",
        name: "book",
        kind: "step",
        position: 0,
        result: { _tag: "Success", value: "B1" },
        failed: false,
        attempts: 1,
        startedAt: 1,
        finishedAt: 2
      },
      attempt: { runId: "p-1", stepId: "book", attempt: 1, startedAt: 1, finishedAt: 2, outcome: "success" },
      now: 2
    })
    let run = Option.getOrThrow(yield* store.getRun("p-1"))
    for (let i = 1; i <= recoveries; i++) {
      run = yield* store.claimRun({ id: "p-1", owner: `w${i}`, leaseMillis: 1_000, now: 3 + i * 2_000 })
    }
    expect(run.recoveries).toBe(recoveries)
    return run
  })

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Poison runs on ${storeName}`, () => {
    it.effect("past its workflow's limit a run fails with RecoveryLimit, runs nothing, undoes nothing; re-driven it runs", () =>
      provide(Effect.gen(function*() {
        const { counts, poison } = makePoison(2)
        const client = yield* Client.Client
        const run = yield* crashedRun(3)
        // The worker's limit is overruled by the workflow's own.
        const executed = yield* Engine.execute(poison, run, { owner: run.leaseOwner!, maxRecoveries: 10 })
        expect(executed.outcome.status).toBe("failed")
        expect(counts).toEqual({})
        const failure = yield* Effect.flip(client.result({ runId: "p-1", workflow: poison }))
        expect(failure).toBeInstanceOf(Failure.RecoveryLimit)
        expect(failure).toMatchObject({ _tag: "RecoveryLimit", runId: "p-1", recoveries: 3, limit: 2 })
        expect(failure.message).toContain("weft retry p-1")
        const history = yield* client.history("p-1")
        expect(history.run).toMatchObject({ status: "failed", leaseOwner: undefined })
        expect(history.journal.steps.map((s) => s.stepId)).toEqual(["book"])

        // Fixed, re-driven: the recovery count starts again, and the journal is replayed.
        const { redrive } = yield* client.retry("p-1", { by: "ops", reason: "fixed the crash" })
        expect(redrive).toMatchObject({ previousStatus: "failed", discarded: [], fromStep: undefined })
        const store = yield* Store
        const again = yield* store.claimRun({ id: "p-1", owner: "w9", leaseMillis: 1_000, now: 100_000 })
        expect(again.recoveries).toBe(0)
        const done = yield* Engine.execute(poison, again, { owner: "w9" })
        expect(done.outcome).toEqual({ status: "succeeded", output: "survived" })
        expect(counts).toEqual({ crash: 1 })
      })))

    it.effect("at its limit a run still runs", () =>
      provide(Effect.gen(function*() {
        const { counts, poison } = makePoison(2)
        const run = yield* crashedRun(2)
        const executed = yield* Engine.execute(poison, run, { owner: run.leaseOwner! })
        expect(executed.outcome.status).toBe("succeeded")
        expect(counts).toEqual({ crash: 1 })
      })))

    it.effect("a workflow with no limit of its own gets the worker's, else 5", () =>
      provide(Effect.gen(function*() {
        const { counts, poison } = makePoison(undefined)
        const run = yield* crashedRun(2)
        const executed = yield* Engine.execute(poison, run, { owner: run.leaseOwner!, maxRecoveries: 1 })
        expect(Exit.isFailure(executed.exit) && Cause.failureOption(executed.exit.cause)).toEqual(
          Option.some(new Failure.RecoveryLimit({ runId: "p-1", recoveries: 2, limit: 1 }))
        )
        const store = yield* Store
        yield* store.redriveRun({ id: "p-1", by: "ops", reason: "again", now: 50_000 })
        let again = yield* store.claimRun({ id: "p-1", owner: "v0", leaseMillis: 1_000, now: 60_000 })
        expect(again.recoveries).toBe(0)
        for (let i = 1; i <= 6; i++) {
          again = yield* store.claimRun({ id: "p-1", owner: `v${i}`, leaseMillis: 1_000, now: 60_000 + i * 2_000 })
        }
        expect(again.recoveries).toBe(6)
        const defaulted = yield* Engine.execute(poison, again, { owner: again.leaseOwner! })
        expect(defaulted.outcome).toMatchObject({ status: "failed" })
        expect(Engine.defaultMaxRecoveries).toBe(5)
        expect(Exit.isFailure(defaulted.exit) && Cause.failureOption(defaulted.exit.cause)).toEqual(
          Option.some(new Failure.RecoveryLimit({ runId: "p-1", recoveries: 6, limit: 5 }))
        )
        expect(counts).toEqual({})
      })))
  })
}

describe("maxRecoveries", () => {
  it("is a whole number of at least 0", () => {
    expect(() => makePoison(-1)).toThrow(/maxRecoveries of workflow "poison" must be a whole number of at least 0/)
    expect(() => makePoison(1.5)).toThrow(RangeError)
    expect(makePoison(0).poison.maxRecoveries).toBe(0)
  })
})
