/**
 * The engine's and worker's own CPU cost per run, without a database: N one-step no-op runs (or
 * 10-step runs with STEPS10=1) are started on the Memory store, then drained by one in-process
 * `Worker` at concurrency 10. Prints CPU µs per run and runs per second. For profiling the run
 * path (PROFILE=file.cpuprofile profiles the drains alone).
 *
 *   N=20000 node --import tsx bench/engine-cpu.ts
 *   STUB=1 N=20000 node --import tsx bench/engine-cpu.ts   # no store work at all (see `stub`)
 *
 * OPS=1 counts the Effect instructions and fibers per run; HEAP=file.heapprofile samples where the
 * drain allocates (with HEAP_PROMOTED=1, only what young collections did not free); PROFILE as above.
 */
import { Workflow } from "@weft/core"
import { Client, MemoryStore, PgStore, Store, Worker } from "@weft/runtime"
import { Deferred, Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Schema, Supervisor } from "effect"
import * as Fs from "node:fs"
import * as Inspector from "node:inspector/promises"
import * as V8 from "node:v8"
import * as FreshRuns from "../packages/runtime/dist/internal/FreshRuns.js"
import { noop, steps10 } from "./workflows.js"

const n = Number(process.env.N ?? 20_000)
// EMPTY=1: a workflow with no step at all (the engine's and worker's cost without the step's).
const empty = Workflow.make({ name: "bench-empty", input: Schema.Number, success: Schema.Number, run: Effect.succeed })
const workflow = process.env.STEPS10 === "1" ? steps10 : process.env.EMPTY === "1" ? empty : noop
const rounds = Number(process.env.ROUNDS ?? 3)

/**
 * STUB=1: a store that costs nothing: claims hand out new records of runs never stored (marked
 * fresh, so the engine reads no journal), and every write succeeds at once. What is left is the
 * engine's and the worker's own work.
 */
const stub = process.env.STUB === "1"
let unclaimed = 0
const stubbed = (store: Store.StoreService): Store.StoreService => {
  let template: Store.RunRecord | undefined
  let next = 0
  return {
    ...store,
    claimNext: ({ limit, now, owner }) =>
      Effect.suspend(() => {
        if (template === undefined) {
          return Effect.map(store.listRuns({}), (runs) => {
            template = runs[0]
            return []
          })
        }
        const runs: Array<Store.RunRecord> = []
        for (; unclaimed > 0 && runs.length < limit; unclaimed--) {
          const id = `stub-${next++}`
          const run: Store.RunRecord = {
            ...template,
            id,
            input: next,
            status: "running",
            leaseOwner: owner,
            startedAt: now,
            updatedAt: now
          }
          FreshRuns.mark(run)
          runs.push(run)
        }
        return Effect.succeed(runs)
      }),
    finishRun: () => Effect.void,
    completeStep: () => Effect.void
  }
}

const round = Effect.gen(function*() {
  const client = yield* Client.Client
  if (stub) {
    yield* client.start(workflow, 0)
    unclaimed = n
  } else {
    for (let i = 0; i < n; i++) yield* client.start(workflow, i)
  }
  let done = 0
  const all = yield* Deferred.make<void>()
  // PROFILE=file.cpuprofile: a CPU profile of the drain. HEAP=file.heapprofile: where the drain
  // allocates (V8's sampling heap profiler, every 8 KB allocated on average; Chrome DevTools opens it).
  const session = process.env.PROFILE === undefined && process.env.HEAP === undefined
    ? undefined
    : new Inspector.Session()
  if (session !== undefined) {
    session.connect()
    yield* Effect.promise(() =>
      process.env.PROFILE !== undefined
        ? session.post("Profiler.enable").then(() => session.post("Profiler.start"))
        : session.post("HeapProfiler.enable").then(() =>
          session.post("HeapProfiler.startSampling", {
            samplingInterval: 8192,
            // HEAP_PROMOTED=1: only what young collections did not free (promoted to the old
            // generation, or still alive at the end): what makes young collections dear.
            includeObjectsCollectedByMajorGC: true,
            includeObjectsCollectedByMinorGC: process.env.HEAP_PROMOTED !== "1"
          })
        )
    )
  }
  // The counts are of the drain alone (not of the enqueue before it).
  counts.clear()
  fibers = 0
  const heap0 = V8.getHeapStatistics().used_heap_size
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  yield* Effect.scoped(Effect.gen(function*() {
    yield* Worker.start({
      workflows: [workflow],
      concurrency: 10,
      onEvent: (event) => event._tag === "RunFinished" && ++done === n ? Deferred.succeed(all, undefined) : Effect.void
    })
    yield* Deferred.await(all)
  }))
  const cpu = process.cpuUsage(cpu0)
  // Without a collection meanwhile (run with --max-semi-space-size=1024 and a small N), the heap's
  // growth is what the runs allocated.
  const allocated = V8.getHeapStatistics().used_heap_size - heap0
  const seconds = (performance.now() - t0) / 1000
  if (session !== undefined) {
    if (process.env.PROFILE !== undefined) {
      const { profile } = yield* Effect.promise(() => session.post("Profiler.stop"))
      Fs.writeFileSync(process.env.PROFILE, JSON.stringify(profile))
    } else {
      const { profile } = yield* Effect.promise(() => session.post("HeapProfiler.stopSampling"))
      Fs.writeFileSync(process.env.HEAP!, JSON.stringify(profile))
    }
    session.disconnect()
  }
  console.log(
    `${workflow.name}: ${n} runs in ${seconds.toFixed(2)} s = ${(n / seconds).toFixed(0)} runs/s; CPU ${
      ((cpu.user + cpu.system) / n).toFixed(1)
    } µs/run (user ${(cpu.user / n).toFixed(1)}); heap +${(allocated / n / 1024).toFixed(1)} KB/run`
  )
})

// OPS=1: count the Effect instructions and fibers per run (a proxy for the runtime's share).
const counts = new Map<string, number>()
let fibers = 0
class Counter extends Supervisor.AbstractSupervisor<void> {
  value = Effect.void
  override onStart() {
    fibers++
  }
  override onEffect(_fiber: unknown, effect: unknown) {
    const op = (effect as { readonly _op?: string })._op ?? "?"
    counts.set(op, (counts.get(op) ?? 0) + 1)
  }
}
const counting = <E, R>(effect: Effect.Effect<void, E, R>): Effect.Effect<void, E, R> =>
  process.env.OPS === "1"
    ? Effect.supervised(
      effect.pipe(Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))),
      new Counter()
    )
    : effect

// STORE=postgres://...: the same on PostgreSQL (the database is emptied first).
const url = process.env.STORE
const storeLayer = url === undefined ? MemoryStore.layer : PgStore.layer({ url })
const layer = Client.layer.pipe(
  Layer.provideMerge(
    stub ? Layer.effect(Store.Store, Effect.map(Store.Store, stubbed)).pipe(Layer.provide(storeLayer)) : storeLayer
  )
)
for (let r = 0; r < rounds; r++) {
  counts.clear()
  fibers = 0
  await Effect.runPromise(Effect.provide(counting(Effect.asVoid(Effect.zipRight(Store.Store, round))), layer))
  if (process.env.OPS === "1") {
    const total = [...counts.values()].reduce((a, b) => a + b, 0)
    console.log(
      `  ${(total / n).toFixed(0)} instructions and ${(fibers / n).toFixed(1)} fibers per run (drain):`,
      [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / n).toFixed(0)}`).join(", ")
    )
  }
}
