/**
 * Journal write throughput of the SQLite store alone (no engine): `completeStep` (fence + step +
 * attempt) on a temp file with synchronous=FULL, WAL, from 1, 10 and 100 concurrent writers, each
 * writer completing the steps of its own run one after another, as a run does. Prints completions
 * per second and the time each writer waits from one durable completion to its next.
 *
 *   node --import tsx bench/store.ts
 *   OPS=5000 node --import tsx bench/store.ts   # completions per line
 */
import { SqliteStore, Store } from "@weft/runtime"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const T0 = 1_700_000_000_000
const OWNER = "bench-worker"

const completion = (runId: string, i: number): Parameters<Store.StoreService["completeStep"]>[0] => ({
  owner: OWNER,
  step: {
    runId,
    stepId: `step-${i}`,
    name: `step-${i}`,
    kind: "step",
    position: i,
    result: { _tag: "Success", value: i },
    failed: false,
    attempts: 1,
    startedAt: T0 + i,
    finishedAt: T0 + i + 1
  },
  attempt: { runId, stepId: `step-${i}`, attempt: 1, startedAt: T0 + i, finishedAt: T0 + i + 1, outcome: "success" },
  now: T0 + i + 1
})

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

const measure = (filename: string, writers: number, ops: number) =>
  Effect.gen(function*() {
    const store = yield* Store.Store
    const perWriter = Math.max(1, Math.floor(ops / writers))
    const runIds = Array.from({ length: writers }, (_, w) => `run-${w}`)
    yield* Effect.forEach(
      runIds,
      (id) =>
        store.createRun({
          id,
          workflow: "bench",
          version: "1",
          input: null,
          now: T0,
          claim: { owner: OWNER, leaseMillis: 3_600_000 }
        }),
      { discard: true }
    )
    // Per writer, the time from one completion to the next (the first from the common start):
    // what a run sees between two steps, waiting for the other writers included. A call's own
    // latency would hide that wait, since a synchronous driver runs a fiber's writes back to back.
    const intervals: Array<number> = []
    const writer = (runId: string, from: number, count: number, start: number) =>
      Effect.suspend(() => {
        let previous = start
        return Effect.forEach(
          Array.from({ length: count }, (_, i) => from + i),
          (i) =>
            store.completeStep(completion(runId, i)).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  const now = performance.now()
                  intervals.push(now - previous)
                  previous = now
                })
              )
            ),
          { discard: true }
        )
      })
    // Warm up (JIT, prepared statements) before timing.
    const warmUp = performance.now()
    yield* Effect.forEach(runIds, (id) => writer(id, 0, 5, warmUp), { concurrency: "unbounded", discard: true })
    intervals.length = 0
    const started = performance.now()
    yield* Effect.forEach(runIds, (id) => writer(id, 5, perWriter, started), {
      concurrency: "unbounded",
      discard: true
    })
    const seconds = (performance.now() - started) / 1000
    const total = perWriter * writers
    intervals.sort((a, b) => a - b)
    const label = `sqlite FULL, ${writers} writer${writers === 1 ? "" : "s"}`
    process.stdout.write(
      `${label.padEnd(24)} ${String(total).padStart(6)} completeStep  ${
        Math.round(total / seconds).toString().padStart(7)
      } /s  ${(seconds * 1e6 / total).toFixed(1).padStart(7)} µs/op  per-writer interval p50 ${
        percentile(intervals, 0.5).toFixed(2)
      } ms  p99 ${percentile(intervals, 0.99).toFixed(2)} ms\n`
    )
  }).pipe(Effect.provide(SqliteStore.layer({ filename })))

const ops = Number(process.env.OPS ?? 3000)
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-bench-store-"))

const program = Effect.gen(function*() {
  process.stdout.write(`weft store bench: completeStep on SQLite, node ${process.version}, ${Os.cpus().length} cpus\n`)
  for (const writers of [1, 10, 100]) {
    yield* measure(Path.join(dir, `w${writers}.db`), writers, ops)
  }
})

Effect.runPromise(program).finally(() => Fs.rmSync(dir, { recursive: true, force: true }))
