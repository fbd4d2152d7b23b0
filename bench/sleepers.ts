/**
 * Sleeping runs cost only their rows (issue 4): N runs each `Workflow.sleepUntil` a time spread over
 * a short window some way ahead; one worker claims them all, each suspends (no fiber, no slot, no
 * lease), the process's RSS is sampled while they all sleep, and when they wake the lateness of
 * each (the time it is claimed again minus its wake time) is measured from the worker's events.
 *
 *   node --expose-gc --import tsx bench/sleepers.ts
 *   N=100000 STORE=postgres://postgres@127.0.0.1:5432/weft_bench_sleep node --expose-gc ... bench/sleepers.ts
 *
 * Env: N (default 100000), STORE (default a temp SQLite file; a postgres:// URL to a database that
 * exists), CONCURRENCY (default 200), LEAD_SECONDS (how long after the start the first run wakes,
 * default 30 s + 3 ms per run, so that all are suspended first) and WINDOW_SECONDS (the spread of
 * wake times, default N / 400 seconds, at least 10).
 */
import { Workflow } from "@weft/core"
import { Client, PgStore, SqliteStore, Worker } from "@weft/runtime"
import { Effect, Layer, Schema } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const N = Number(process.env.N ?? 100_000)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 200)
// Wakes spread so that one worker can take them as they come (a few hundred runs a second here):
// lateness then measures the wake-up, not a backlog.
const WINDOW = Number(process.env.WINDOW_SECONDS ?? Math.max(10, N / 400)) * 1000

const nap = Workflow.make({
  name: "nap",
  input: Schema.Struct({ wakeAt: Schema.Number }),
  success: Schema.Number,
  run: ({ wakeAt }) => Effect.as(Workflow.sleepUntil(wakeAt), wakeAt)
})

const storeUrl = process.env.STORE ??
  `sqlite:${Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-sleepers-")), "w.db")}`
const storeLayer = storeUrl.startsWith("postgres")
  ? PgStore.layer({ url: storeUrl })
  : SqliteStore.layer({ filename: storeUrl.replace(/^sqlite:/, "") })

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
const rss = () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().rss
}

const program = Effect.gen(function*() {
  const client = yield* Client.Client
  // What the worker reports: runs suspended, and when each woke and finished.
  let suspended = 0
  let finished = 0
  const lateness: Array<number> = []
  console.log(`${N} sleeping runs on ${storeUrl.replace(/:[^:@/]*@/, ":***@")}, worker concurrency ${CONCURRENCY}`)
  const rssStart = rss()

  // Wake times: far enough ahead that every run has started and suspended before the first wakes
  // (LEAD_SECONDS, default 30 s + 3 ms per run), spread over WINDOW.
  const lead = process.env.LEAD_SECONDS === undefined ? 30_000 + N * 3 : Number(process.env.LEAD_SECONDS) * 1000
  const firstWake = Date.now() + lead
  const wakeOf = (i: number) => firstWake + Math.floor((i / N) * WINDOW)
  const enqueueStart = Date.now()
  yield* Effect.forEach(
    Array.from({ length: N }, (_, i) => i),
    (i) => client.start(nap, { wakeAt: wakeOf(i) }, { id: `nap-${i}` }),
    { concurrency: 50, discard: true }
  )
  const enqueueSeconds = (Date.now() - enqueueStart) / 1000
  console.log(
    `enqueued in ${enqueueSeconds.toFixed(1)} s (${(N / enqueueSeconds).toFixed(0)} runs/s); rss ${mb(rss())}`
  )

  const worker = yield* Worker.start({
    workflows: [nap],
    concurrency: CONCURRENCY,
    pollInterval: "1 second",
    onEvent: (event) =>
      Effect.sync(() => {
        if (event._tag === "RunSuspended") suspended++
        // Woken: claimed again after its sleep (the claimed record still holds its wake time).
        if (event._tag === "RunStarted" && event.run.wakeAt !== undefined && suspended >= N) {
          lateness.push(Date.now() - event.run.wakeAt)
        }
        if (event._tag === "RunFinished") finished++
      })
  })
  const suspendStart = Date.now()
  while (suspended < N) yield* Effect.sleep("200 millis")
  const suspendSeconds = (Date.now() - suspendStart) / 1000
  const rssSleeping = rss()
  console.log(
    `all ${N} started and suspended in ${suspendSeconds.toFixed(1)} s (${(N / suspendSeconds).toFixed(0)} runs/s); ` +
      `in flight now ${yield* worker.inFlight}; rss ${mb(rssSleeping)}`
  )
  if (Date.now() > firstWake) console.log(`warning: the first run woke before all were suspended`)

  // While they all sleep: memory stays flat.
  const idleSamples: Array<number> = []
  while (Date.now() < firstWake - 1_000 && idleSamples.length < 10) {
    idleSamples.push(rss())
    yield* Effect.sleep("1 second")
  }
  while (finished < N) yield* Effect.sleep("200 millis")
  lateness.sort((a, b) => a - b)
  const pct = (p: number) => lateness[Math.min(lateness.length - 1, Math.floor(lateness.length * p))]
  const result = {
    n: N,
    store: storeUrl.startsWith("postgres") ? "postgres" : "sqlite",
    enqueueRunsPerSecond: Math.round(N / enqueueSeconds),
    suspendRunsPerSecond: Math.round(N / suspendSeconds),
    rssStartMB: Math.round(rssStart / 1048576),
    rssAllSleepingMB: Math.round(rssSleeping / 1048576),
    rssWhileSleepingMB: idleSamples.map((b) => Math.round(b / 1048576)),
    rssAfterMB: Math.round(rss() / 1048576),
    latenessMillis: { p50: pct(0.5), p99: pct(0.99), max: lateness.at(-1) },
    wokeWithinOneSecond: lateness.filter((l) => l <= 1000).length
  }
  console.log(JSON.stringify(result, null, 2))
})

Effect.runPromise(
  program.pipe(Effect.scoped, Effect.provide(Layer.provideMerge(Client.layer, storeLayer)))
).catch((error) => {
  console.error(error)
  process.exit(1)
})
