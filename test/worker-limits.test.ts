/**
 * Queue limits under load with real `weft worker` processes (issue 5): three workers on one
 * PostgreSQL database, then two on one SQLite file, each with room for 10 runs, drain
 *
 * - 60 runs of `limited-steps` (test/fixtures/limited.ts): queue `limited` at most 5 running at
 *   once, 4 keys with at most 2 running at once each (so both limits bind);
 * - 30 runs of `rated-steps`: queue `rated` at most 10 claims in any second.
 *
 * Every step records its start and end (wall clock) in a file; from those intervals the test
 * asserts that never more than 5 ran at once and never more than 2 of one key, and from the runs'
 * recorded start times that no second held more than 10 claims; and that every run succeeded,
 * its step run once.
 */
import { Client, PgStore, SqliteStore, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { type Interval, maxOverlap, maxOverlapBy } from "../packages/runtime/test/intervals.js"
import { createDatabase, dropDatabase, useTestDatabase } from "../packages/runtime/test/pg.js"
import { fixture, spawnWeft, tempDir } from "./cli.js"
import { limitedSteps, ratedSteps } from "./fixtures/limited.js"

useTestDatabase()

const module = fixture("limited.ts")

const children = new Set<ChildProcess.ChildProcess>()

afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
})

// Each worker runs at most 3 at once, under the queue's limit of 5: reaching that limit (checked
// below) takes two workers at once, whatever the order in which they happen to claim.
const spawnWorker = (store: string) => {
  const p = spawnWeft(["worker", module, "--store", store, "--concurrency", "3"])
  children.add(p.child)
  void p.done.then(() => children.delete(p.child))
  return { ...p, ready: p.waitFor(/^worker \S+ on .*; workflows limited-steps, rated-steps$/m, 30_000) }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Mark {
  readonly runId: string
  readonly key: string
  readonly pid: number
  readonly kind: "begin" | "end"
  readonly at: number
}

const readMarks = (file: string): ReadonlyArray<Mark> =>
  Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8").split("\n").filter((line) => line !== "").map((line) => {
      const [runId, key, pid, kind, at] = line.split(" ")
      return { runId, key, pid: Number(pid), kind: kind as Mark["kind"], at: Number(at) }
    })
    : []

/** Drains the runs with `workers` worker processes on `store`, and checks every limit held. */
const drain = async (store: string, layer: Layer.Layer<Store.Store, unknown>, workers: number) => {
  const runtime = ManagedRuntime.make(Client.layer.pipe(Layer.provideMerge(layer)))
  const run = <A, E>(effect: Effect.Effect<A, E, Store.Store | Client.Client>) => runtime.runPromise(effect)
  const marks = Path.join(tempDir(), "marks")
  const processes = Array.from({ length: workers }, () => spawnWorker(store))
  try {
    await run(Effect.void)
    await Promise.all(processes.map((p) => p.ready))
    const limitedIds = Array.from({ length: 60 }, (_, i) => `limited-${String(i).padStart(2, "0")}`)
    const ratedIds = Array.from({ length: 30 }, (_, i) => `rated-${String(i).padStart(2, "0")}`)
    await run(Effect.flatMap(Client.Client, (client) =>
      Effect.all([
        Effect.forEach(limitedIds, (id, i) =>
          client.start(limitedSteps, { marks, key: `k${i % 4}`, ms: 120 + (i % 3) * 40 }, { id }), {
          concurrency: 4
        }),
        Effect.forEach(ratedIds, (id) =>
          client.start(ratedSteps, { marks, key: "rated", ms: 10 }, { id }), {
          concurrency: 4
        })
      ])))

    const deadline = Date.now() + 60_000
    let runs: ReadonlyArray<Store.RunRecord> = []
    while (true) {
      runs = await run(Effect.flatMap(Store.Store, (store) => store.listRuns({})))
      if (runs.length === 90 && runs.every((r) => r.status === "succeeded")) break
      if (Date.now() > deadline) {
        throw new Error(
          `runs not done: ${JSON.stringify(runs.filter((r) => r.status !== "succeeded").map((r) => r.id))}`
        )
      }
      await sleep(100)
    }

    const all = readMarks(marks)
    const intervals: Array<Interval> = []
    for (const id of limitedIds) {
      const begins = all.filter((m) => m.runId === id && m.kind === "begin")
      const ends = all.filter((m) => m.runId === id && m.kind === "end")
      expect([begins.length, ends.length], `marks of ${id}`).toEqual([1, 1])
      intervals.push({ start: begins[0].at, end: ends[0].at, label: `${id}/${begins[0].key}` })
    }
    const busiest = maxOverlap(intervals)
    expect(busiest.count, `runs of queue limited at once: ${busiest.labels.join(", ")}`).toBeLessThanOrEqual(5)
    // The limit was reached (the queue had 60 runs waiting), not just respected by a lazy drain.
    expect(busiest.count).toBeGreaterThanOrEqual(4)
    const perKey = maxOverlapBy(intervals, (interval) => interval.label.split("/")[1])
    expect(perKey[0].count, `runs of key ${perKey[0].group} at once: ${perKey[0].labels.join(", ")}`)
      .toBeLessThanOrEqual(2)
    expect(perKey[0].count).toBe(2)

    // The rate limit: the claim times the store recorded, 10 at most in any second.
    const starts = runs.filter((r) => r.queue === "rated").map((r) => r.startedAt!).sort((a, b) => a - b)
    expect(starts).toHaveLength(30)
    for (const start of starts) {
      const inWindow = starts.filter((at) => at >= start && at < start + 1_000)
      expect(inWindow.length, `claims of queue rated in the second from ${start}`).toBeLessThanOrEqual(10)
    }
    expect(starts[29] - starts[0]).toBeGreaterThanOrEqual(2_000)
    for (const id of ratedIds) expect(all.filter((m) => m.runId === id && m.kind === "begin")).toHaveLength(1)

    // Every run once, by more than one worker (also at the same moment: see `busiest` above).
    for (const r of runs) expect(r.recoveries, `recoveries of ${r.id}`).toBe(0)
    expect(new Set(all.map((m) => m.pid)).size).toBeGreaterThanOrEqual(2)

    for (const p of processes) p.child.kill("SIGTERM")
    for (const p of processes) expect((await p.done).code).toBe(0)
  } finally {
    for (const p of processes) p.child.kill("SIGKILL")
    await runtime.dispose()
  }
}

describe("queue limits with worker processes", () => {
  it("three workers on PostgreSQL: a queue's concurrency, its keys and a rate limit hold under load", async () => {
    const url = await createDatabase()
    try {
      await drain(url, PgStore.layer({ url }), 3)
    } finally {
      await dropDatabase(url)
    }
  }, 90_000)

  it("two workers on one SQLite file: the same limits hold", async () => {
    const file = Path.join(tempDir(), "weft.db")
    await drain(`sqlite:${file}`, SqliteStore.layer({ filename: file }), 2)
  }, 90_000)
})
