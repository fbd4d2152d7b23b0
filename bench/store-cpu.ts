/**
 * The PostgreSQL store's own share of a worker's CPU per job, without the engine: N runs are
 * started, then drained the way a worker at concurrency 10 drains them (claims of up to the free
 * slots, each run ended with its one step's completion in the same `finishRun`), but with no
 * workflow code and no engine. Prints CPU µs per job; compare with `bench/queue.ts b1 weft`'s
 * workerCpuMsPerJob to see the engine's and worker's share.
 *
 *   STORE=postgres://postgres@127.0.0.1:5432/test N=20000 node --import tsx bench/store-cpu.ts
 */
import { Client, PgStore, Store } from "@weft/runtime"
import { Effect, Layer, Queue, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import * as Fs from "node:fs"
import * as Inspector from "node:inspector/promises"
import * as V8 from "node:v8"
import { noop } from "./workflows.js"

const n = Number(process.env.N ?? 20_000)
const url = process.env.STORE ?? "postgres://postgres@127.0.0.1:5432/test"
const concurrency = 10
const owner = "store-cpu"

const drain = Effect.gen(function*() {
  const store = yield* Store.Store
  const client = yield* Client.Client
  yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => client.start(noop, i), {
    concurrency: 100,
    discard: true
  })
  const free = yield* Queue.unbounded<void>()
  yield* Queue.offerAll(free, Array.from({ length: concurrency }, () => undefined))
  let done = 0
  let claims = 0
  // PROFILE=file.cpuprofile: a CPU profile of the drain alone.
  const session = process.env.PROFILE === undefined ? undefined : new Inspector.Session()
  if (session !== undefined) {
    session.connect()
    yield* Effect.promise(() => session.post("Profiler.enable").then(() => session.post("Profiler.start")))
  }
  ;(globalThis as any).__threadBase = (globalThis as any).__threadSnap?.()
  counts.clear()
  const heap0 = V8.getHeapStatistics().used_heap_size
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  while (done < n) {
    const slots = yield* Queue.takeBetween(free, Number(process.env.MIN_CLAIM ?? 1), concurrency)
    const now = Date.now()
    claims++
    const runs = yield* store.claimNext({ owner, queues: ["default"], limit: slots.length, leaseMillis: 30_000, now })
    for (let i = runs.length; i < slots.length; i++) yield* Queue.offer(free, undefined)
    for (const run of runs) {
      yield* Effect.fork(
        store.finishRun({
          id: run.id,
          owner,
          outcome: { status: "succeeded", output: null },
          now,
          step: {
            step: {
              runId: run.id,
              stepId: "noop",
              name: "noop",
              kind: "step",
              position: 0,
              result: { _tag: "Success", value: null },
              failed: false,
              attempts: 1,
              startedAt: now,
              finishedAt: now
            },
            attempt: { runId: run.id, stepId: "noop", attempt: 1, startedAt: now, finishedAt: now, outcome: "success" }
          }
        }).pipe(
          Effect.catchAllCause(Effect.logError),
          Effect.ensuring(Effect.zipRight(Effect.sync(() => done++), Queue.offer(free, undefined)))
        )
      )
    }
  }
  const cpu = process.cpuUsage(cpu0)
  // Without a collection meanwhile (--max-semi-space-size=1024 --min-semi-space-size=1024 and a
  // small N), the heap's growth is what the drain allocated.
  const allocated = V8.getHeapStatistics().used_heap_size - heap0
  if (process.env.OPS === "1") {
    const total = [...counts.values()].reduce((a, b) => a + b, 0)
    console.log(
      `  ${(total / n).toFixed(1)} instructions per job (drain):`,
      [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / n).toFixed(1)}`).join(", ")
    )
  }
  const seconds = (performance.now() - t0) / 1000
  if (session !== undefined) {
    const { profile } = yield* Effect.promise(() => session.post("Profiler.stop"))
    Fs.writeFileSync(process.env.PROFILE!, JSON.stringify(profile))
  }
  console.log(
    `${n} jobs in ${seconds.toFixed(2)} s = ${(n / seconds).toFixed(0)} jobs/s; CPU ${
      ((cpu.user + cpu.system) / n).toFixed(1)
    } µs/job (user ${(cpu.user / n).toFixed(1)}, system ${(cpu.system / n).toFixed(1)}); ${claims} claims; heap +${
      (allocated / n / 1024).toFixed(1)
    } KB/job`
  )
})

// OPS=1: count the Effect instructions per job of the drain, every fiber's (the store's writer too).
const counts = new Map<string, number>()
class Counter extends Supervisor.AbstractSupervisor<void> {
  value = Effect.void
  override onEffect(_fiber: unknown, effect: unknown) {
    const op = (effect as { readonly _op?: string })._op ?? "?"
    counts.set(op, (counts.get(op) ?? 0) + 1)
  }
}
const layer = Client.layer.pipe(Layer.provideMerge(PgStore.layer({ url })))
const program = Effect.provide(drain, layer)
await Effect.runPromise(
  process.env.OPS === "1"
    ? Effect.supervised(
      program.pipe(Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))),
      new Counter()
    )
    : program
)
