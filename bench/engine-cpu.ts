/**
 * The engine's and worker's own CPU cost per run, without a database: N one-step no-op runs (or
 * 10-step runs with STEPS10=1) are started on the Memory store, then drained by one in-process
 * `Worker` at concurrency 10. Prints CPU µs per run and runs per second. For profiling the run
 * path (`node --cpu-prof ...`); the store's own share is small here, unlike on PostgreSQL.
 *
 *   N=20000 node --import tsx bench/engine-cpu.ts
 */
import { Client, MemoryStore, PgStore, Store, Worker } from "@weft/runtime"
import { Deferred, Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import { noop, steps10 } from "./workflows.js"

const n = Number(process.env.N ?? 20_000)
const workflow = process.env.STEPS10 === "1" ? steps10 : noop
const rounds = Number(process.env.ROUNDS ?? 3)

const round = Effect.gen(function*() {
  const client = yield* Client.Client
  for (let i = 0; i < n; i++) yield* client.start(workflow, i)
  let done = 0
  const all = yield* Deferred.make<void>()
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
  const seconds = (performance.now() - t0) / 1000
  console.log(
    `${workflow.name}: ${n} runs in ${seconds.toFixed(2)} s = ${(n / seconds).toFixed(0)} runs/s; CPU ${
      ((cpu.user + cpu.system) / n).toFixed(1)
    } µs/run`
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
const layer = Client.layer.pipe(Layer.provideMerge(storeLayer))
for (let r = 0; r < rounds; r++) {
  counts.clear()
  fibers = 0
  await Effect.runPromise(Effect.provide(counting(Effect.asVoid(Effect.zipRight(Store.Store, round))), layer))
  if (process.env.OPS === "1") {
    const total = [...counts.values()].reduce((a, b) => a + b, 0)
    console.log(
      `  ${(total / n).toFixed(0)} instructions and ${(fibers / n).toFixed(1)} fibers per run (incl. enqueue):`,
      [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / n).toFixed(0)}`).join(", ")
    )
  }
}
