/**
 * Task groups (`Workflow.all`, `Workflow.forEach`) executed by the engine on real stores (Memory and
 * a SQLite file): branch paths in the journal, deterministic replay whatever order branches finish
 * in and wherever the run is cut off, fail-fast interruption recorded in the Cause and the group's
 * journal entry, journal-only replay of a group that already ended, settle mode, the concurrency
 * cap, and the refusal of concurrent steps outside a group.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Execution, Failure } from "@weft/core"
import { Step, Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
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

class Broken extends Schema.TaggedError<Broken>()("Broken", { branch: Schema.Number }) {}

const stores = {
  memory: () => MemoryStore.layer,
  sqlite: () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-group-"))
    return SqliteStore.layer({ filename: Path.join(dir, "weft.db") })
  }
}

/** A tiny seeded random (mulberry32), so a failing order can be reproduced from its seed. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

for (const [storeName, makeStore] of Object.entries(stores)) {
  const provide = <A, E>(effect: Effect.Effect<A, E, Client.Client | Store>) =>
    Effect.provide(effect, Layer.provideMerge(Client.layer, makeStore()))

  describe(`Task groups on ${storeName}`, () => {
    it.live("each branch journals its steps under its own path, and the group's end is journaled", () =>
      provide(Effect.gen(function*() {
        const pack = Step.make({
          name: "pack",
          success: Schema.String,
          run: (box: string) => Effect.succeed(`p-${box}`)
        })
        const label = Step.make({
          name: "label",
          success: Schema.String,
          run: (box: string) => Effect.succeed(`l-${box}`)
        })
        const wf = Workflow.make({
          name: "shipping",
          input: Schema.Array(Schema.String),
          success: Schema.Array(Schema.String),
          run: (boxes) =>
            Workflow.forEach(boxes, (box) => Effect.zipWith(pack(box), label(box), (a, b) => `${a}+${b}`), {
              name: "ship"
            })
        })
        const client = yield* Client.Client
        const store = yield* Store
        const handle = yield* client.start(wf, ["a", "b"])
        yield* Runner.claimAndExecute(wf, handle.runId)
        expect(yield* client.result(handle)).toEqual(["p-a+l-a", "p-b+l-b"])
        const journal = yield* store.readJournal(handle.runId)
        expect(journal.steps.map((s) => s.stepId).sort()).toEqual([
          "ship",
          "ship[0]/label",
          "ship[0]/pack",
          "ship[1]/label",
          "ship[1]/pack"
        ])
        const group = journal.steps.find((s) => s.stepId === "ship")!
        expect(group.kind).toBe("group")
        expect(group.failed).toBe(false)
        expect(group.result).toEqual({ _tag: "Success", mode: "fail-fast", branches: ["succeeded", "succeeded"] })
      })))

    it.live(
      "replay is deterministic whatever order branches finish in and wherever the run is cut off",
      () =>
        provide(Effect.gen(function*() {
          const client = yield* Client.Client
          const store = yield* Store
          for (let seed = 1; seed <= 6; seed++) {
            const random = seeded(seed)
            const counts = new Map<string, number>()
            const step = Step.make({
              name: "work",
              success: Schema.String,
              run: (branch: number, n: number) =>
                Effect.gen(function*() {
                  yield* Effect.sleep(Duration.millis(Math.floor(random() * 6)))
                  const key = `${branch}.${n}`
                  counts.set(key, (counts.get(key) ?? 0) + 1)
                  return key
                })
            })
            const wf = Workflow.make({
              name: `fan-out-${seed}`,
              input: Schema.Number,
              success: Schema.Array(Schema.String),
              run: (width) =>
                Effect.map(
                  Workflow.forEach(
                    Array.from({ length: width }, (_, i) => i),
                    (branch) =>
                      Effect.gen(function*() {
                        const a = yield* step(branch, 1)
                        const b = yield* step(branch, 2)
                        return `${a}|${b}`
                      }),
                    { name: "fan", concurrency: 3 }
                  ),
                  (values) => values.slice()
                )
            })
            const handle = yield* client.start(wf, 4)
            // Cut the run off after a seed-dependent number of completed steps (an interruption, as a
            // crash: the steps in flight are lost and run again).
            const cutAfter = 1 + Math.floor(random() * 6)
            const fiber = yield* Effect.fork(Runner.claimAndExecute(wf, handle.runId))
            while ((yield* store.readJournal(handle.runId)).steps.length < cutAfter) yield* Effect.sleep("1 millis")
            yield* Fiber.interrupt(fiber)
            const journaled = (yield* store.readJournal(handle.runId)).steps.map((s) => s.stepId)
            yield* Runner.claimAndExecute(wf, handle.runId)
            expect(yield* client.result(handle)).toEqual(["0.1|0.2", "1.1|1.2", "2.1|2.2", "3.1|3.2"])
            for (const stepId of journaled) {
              const match = /^fan\[(\d)\]\/work(?:#(\d))?$/.exec(stepId)
              if (match === null) continue
              // Journaled before the cut: not executed again.
              expect([stepId, counts.get(`${match[1]}.${match[2] ?? "1"}`)]).toEqual([stepId, 1])
            }
            const final = (yield* store.readJournal(handle.runId)).steps.map((s) => s.stepId).sort()
            expect(final).toEqual([
              "fan",
              ...[0, 1, 2, 3].flatMap((i) => [`fan[${i}]/work`, `fan[${i}]/work#2`])
            ].sort())
          }
        })),
      30_000
    )

    it.live("fail-fast: the first failure interrupts the siblings; the Cause keeps both, the group entry says which", () =>
      provide(Effect.gen(function*() {
        let slowStarted = 0
        let slowFinished = 0
        const slow = Step.make({
          name: "slow",
          success: Schema.Void,
          run: () =>
            Effect.gen(function*() {
              slowStarted++
              yield* Effect.sleep("5 seconds")
              slowFinished++
            })
        })
        const failing = Step.make({
          name: "fails",
          success: Schema.Void,
          error: Broken,
          run: () => Effect.zipRight(Effect.sleep("20 millis"), Effect.fail(new Broken({ branch: 1 })))
        })
        const wf = Workflow.make({
          name: "fail-fast",
          input: Schema.Void,
          success: Schema.Void,
          error: Broken,
          run: () => Effect.asVoid(Workflow.all([slow(), failing()], { name: "pair" }))
        })
        const client = yield* Client.Client
        const store = yield* Store
        const handle = yield* client.start(wf, undefined)
        const started = Date.now()
        const executed = yield* Runner.claimAndExecute(wf, handle.runId)
        expect(Date.now() - started).toBeLessThan(4_000)
        expect(executed.outcome.status).toBe("failed")
        const exit = executed.exit
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          expect(Cause.failureOption(exit.cause)).toEqual(Option.some(new Broken({ branch: 1 })))
          expect(Cause.isInterrupted(exit.cause)).toBe(true)
        }
        expect([slowStarted, slowFinished]).toEqual([1, 0])
        const journal = yield* store.readJournal(handle.runId)
        // The slow step's attempt is recorded as cut off in flight, in the group's entry.
        const entry = journal.steps.find((s) => s.stepId === "pair")?.result as {
          readonly interrupted: ReadonlyArray<Execution.InterruptedAttempt>
        }
        expect(entry).toMatchObject({
          _tag: "Failure",
          mode: "fail-fast",
          branches: ["interrupted", "failed"],
          interrupted: [{ stepId: "pair[0]/slow", attempt: 1 }]
        })
        const [cut] = entry.interrupted
        expect(cut.interruptedAt - cut.startedAt).toBeGreaterThanOrEqual(15)
        expect(cut.interruptedAt - cut.startedAt).toBeLessThan(4_000)
        expect(journal.steps.some((s) => s.stepId === "pair[0]/slow")).toBe(false)
        const result = yield* Effect.flip(client.result(handle))
        expect(result).toEqual(new Broken({ branch: 1 }))
      })))

    it.live("fail-fast records the attempts cut off in nested groups, and not the attempts that ended", () =>
      provide(Effect.gen(function*() {
        const slow = Step.make({
          name: "slow",
          success: Schema.Void,
          run: () => Effect.sleep("5 seconds")
        })
        const quick = Step.make({ name: "quick", success: Schema.Void, run: () => Effect.void })
        const failing = Step.make({
          name: "fails",
          success: Schema.Void,
          error: Broken,
          run: () => Effect.zipRight(Effect.sleep("50 millis"), Effect.fail(new Broken({ branch: 1 })))
        })
        const wf = Workflow.make({
          name: "nested-fail-fast",
          input: Schema.Void,
          success: Schema.Void,
          error: Broken,
          run: () =>
            Effect.asVoid(Workflow.all([
              Effect.zipRight(quick(), Workflow.all([slow(), slow()], { name: "inner" })),
              failing()
            ], { name: "outer" }))
        })
        const client = yield* Client.Client
        const store = yield* Store
        const handle = yield* client.start(wf, undefined)
        const executed = yield* Runner.claimAndExecute(wf, handle.runId)
        expect(executed.outcome.status).toBe("failed")
        const journal = yield* store.readJournal(handle.runId)
        // The inner group never ended, so only the outer one has an entry, with both slow attempts.
        expect(journal.steps.some((s) => s.stepId === "outer[0]/inner")).toBe(false)
        const entry = journal.steps.find((s) => s.stepId === "outer")?.result as {
          readonly interrupted: ReadonlyArray<Execution.InterruptedAttempt>
        }
        expect(entry.interrupted.map((a) => a.stepId).sort()).toEqual([
          "outer[0]/inner[0]/slow",
          "outer[0]/inner[1]/slow"
        ])
      })))

    it.live("a group whose end is journaled replays journal-only: an interrupted branch's step does not run again", () =>
      provide(Effect.gen(function*() {
        let slowStarted = 0
        let cutAfterGroup = true
        const slow = Step.make({
          name: "slow",
          success: Schema.Void,
          run: () => Effect.zipRight(Effect.sync(() => slowStarted++), Effect.sleep("5 seconds"))
        })
        const failing = Step.make({
          name: "fails",
          success: Schema.Void,
          error: Broken,
          run: () => Effect.zipRight(Effect.sleep("20 millis"), Effect.fail(new Broken({ branch: 1 })))
        })
        const after = Step.make({
          name: "after",
          success: Schema.String,
          run: () => (cutAfterGroup ? Effect.interrupt : Effect.succeed("recovered"))
        })
        const wf = Workflow.make({
          name: "recovering",
          input: Schema.Void,
          success: Schema.String,
          run: () =>
            Workflow.all([slow(), failing()], { name: "pair" }).pipe(
              Effect.catchTag("Broken", () => after())
            ) as Effect.Effect<string>
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, undefined)
        const cut = yield* Effect.exit(Runner.claimAndExecute(wf, handle.runId))
        expect(Exit.isInterrupted(cut)).toBe(true)
        cutAfterGroup = false
        const started = Date.now()
        yield* Runner.claimAndExecute(wf, handle.runId)
        expect(yield* client.result(handle)).toBe("recovered")
        expect(slowStarted).toBe(1)
        expect(Date.now() - started).toBeLessThan(4_000)
      })))

    it.live("settle: every branch runs to its end and the group fails with every failure", () =>
      provide(Effect.gen(function*() {
        const ran: Array<number> = []
        const job = Step.make({
          name: "job",
          success: Schema.Number,
          error: Broken,
          run: (i: number) =>
            Effect.zipRight(
              Effect.sync(() => ran.push(i)),
              i % 2 === 0 ? Effect.fail(new Broken({ branch: i })) : Effect.succeed(i)
            )
        })
        const wf = Workflow.make({
          name: "settle",
          input: Schema.Void,
          success: Schema.Array(Schema.Number),
          error: Broken,
          run: () => Workflow.forEach([0, 1, 2, 3], (i) => job(i), { mode: "settle", concurrency: 1 })
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, undefined)
        const executed = yield* Runner.claimAndExecute(wf, handle.runId)
        expect(ran).toEqual([0, 1, 2, 3])
        const exit = executed.exit
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          expect(Cause.failures(exit.cause).pipe((chunk) => Array.from(chunk))).toEqual([
            new Broken({ branch: 0 }),
            new Broken({ branch: 2 })
          ])
          expect(Cause.isInterrupted(exit.cause)).toBe(false)
        }
      })))

    it.live("never runs more branches at once than its concurrency", () =>
      provide(Effect.gen(function*() {
        let running = 0
        let peak = 0
        const job = Step.make({
          name: "job",
          success: Schema.Number,
          run: (i: number) =>
            Effect.gen(function*() {
              peak = Math.max(peak, ++running)
              yield* Effect.sleep("15 millis")
              running--
              return i * 10
            })
        })
        const wf = Workflow.make({
          name: "capped",
          input: Schema.Void,
          success: Schema.Array(Schema.Number),
          run: () => Workflow.forEach([1, 2, 3, 4, 5, 6], (i) => job(i), { concurrency: 2 })
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, undefined)
        yield* Runner.claimAndExecute(wf, handle.runId)
        expect(yield* client.result(handle)).toEqual([10, 20, 30, 40, 50, 60])
        expect(peak).toBe(2)
      })))

    it.live("two steps at once outside a group are a defect that points at Workflow.all", () =>
      provide(Effect.gen(function*() {
        const job = Step.make({
          name: "job",
          success: Schema.Number,
          run: (i: number) => Effect.as(Effect.sleep("10 millis"), i)
        })
        const wf = Workflow.make({
          name: "racy",
          input: Schema.Void,
          success: Schema.Array(Schema.Number),
          run: () => Effect.all([job(1), job(2)], { concurrency: 2 })
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, undefined)
        const executed = yield* Runner.claimAndExecute(wf, handle.runId)
        expect(executed.outcome.status).toBe("failed")
        const exit = executed.exit
        if (Exit.isFailure(exit)) {
          const defect = Option.getOrThrow(Cause.dieOption(exit.cause)) as Error
          expect(defect.message).toMatch(/started while step "job" of the same branch is running.*Workflow\.all/)
        }
      })))

    it.live("a replay that meets another step inside a branch fails with NonDeterminism naming the branch", () =>
      provide(Effect.gen(function*() {
        let version = 1
        const a = Step.make({ name: "a", success: Schema.Number, run: () => Effect.succeed(1) })
        const b = Step.make({ name: "b", success: Schema.Number, run: () => Effect.succeed(2) })
        const stop = Step.make({ name: "stop", success: Schema.Number, run: () => Effect.interrupt })
        const wf = Workflow.make({
          name: "changed",
          input: Schema.Void,
          success: Schema.Number,
          run: () =>
            Effect.zipRight(
              Workflow.all([version === 1 ? a() : b()], { name: "g" }),
              stop()
            )
        })
        const client = yield* Client.Client
        const handle = yield* client.start(wf, undefined)
        yield* Effect.exit(Runner.claimAndExecute(wf, handle.runId))
        version = 2
        const executed = yield* Runner.claimAndExecute(wf, handle.runId)
        const exit = executed.exit
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = Option.getOrThrow(Cause.failureOption(exit.cause)) as Failure.NonDeterminism
          expect(error).toMatchObject({ _tag: "NonDeterminism", scope: "g[0]", expected: "g[0]/a", found: "g[0]/b" })
        }
      })))
  })
}
