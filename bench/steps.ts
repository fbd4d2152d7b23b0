/**
 * Per-step overhead of the engine: a 10-step no-op workflow executed start to end in one process,
 * on the Memory store and on SQLite (a temp file, synchronous=FULL, WAL), sequentially and with
 * several runs at once. Prints steps per second; results are written down in docs/benchmarks.md.
 *
 *   pnpm bench                 # defaults
 *   RUNS=500 pnpm bench        # more runs per measurement
 */
import { Step, Workflow } from "@weft/core"
import { Client, MemoryStore, Runner, SqliteStore } from "@weft/runtime"
import { Effect, Layer, Schema } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const STEPS = 10
const noop = Array.from(
  { length: STEPS },
  (_, i) => Step.make({ name: `step-${i}`, success: Schema.Number, run: (n: number) => Effect.succeed(n + 1) })
)

const tenSteps = Workflow.make({
  name: "ten-steps",
  input: Schema.Number,
  success: Schema.Number,
  run: (n) =>
    Effect.gen(function*() {
      let acc = n
      for (const step of noop) acc = yield* step(acc)
      return acc
    })
})

const oneRun = (i: number) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const handle = yield* client.start(tenSteps, i)
    yield* Runner.claimAndExecute(tenSteps, handle.runId)
  })

const measure = (label: string, layer: Layer.Layer<any, any>, runs: number, concurrency: number) =>
  Effect.gen(function*() {
    // Warm up (JIT, prepared statements) before timing.
    yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => -1 - i), oneRun, { concurrency })
    const started = performance.now()
    yield* Effect.forEach(Array.from({ length: runs }, (_, i) => i), oneRun, { concurrency })
    const seconds = (performance.now() - started) / 1000
    const steps = runs * STEPS
    const line = `${label.padEnd(34)} ${String(runs).padStart(6)} runs  ${
      Math.round(steps / seconds).toString().padStart(7)
    } steps/s  ${(seconds * 1e6 / steps).toFixed(1).padStart(7)} µs/step  rss ${
      Math.round(process.memoryUsage().rss / 1e6)
    } MB`
    process.stdout.write(line + "\n")
  }).pipe(Effect.provide(Layer.provideMerge(Client.layer, layer)))

const runs = Number(process.env.RUNS ?? 300)
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-bench-"))

const program = Effect.gen(function*() {
  process.stdout.write(
    `weft steps bench: ${STEPS}-step no-op workflow, node ${process.version}, ${Os.cpus().length} cpus\n`
  )
  yield* measure("memory, sequential", MemoryStore.layer, runs * 10, 1)
  yield* measure("memory, 10 runs at once", MemoryStore.layer, runs * 10, 10)
  yield* measure("sqlite FULL, sequential", SqliteStore.layer({ filename: Path.join(dir, "a.db") }), runs, 1)
  yield* measure("sqlite FULL, 10 runs at once", SqliteStore.layer({ filename: Path.join(dir, "b.db") }), runs, 10)
})

Effect.runPromise(program).finally(() => Fs.rmSync(dir, { recursive: true, force: true }))
