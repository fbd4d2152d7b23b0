/**
 * weft's side of the queue benchmarks of issue 3 (see bench/queue-harness.ts for the method), on
 * PostgreSQL through the public API: jobs are enqueued with `Client.start` (Client.layer over
 * `PgStore.layer({ url })`) and drained by worker child processes running `Worker.run` over the
 * workflows of bench/workflows.ts, the same loop `weft worker` runs.
 *
 *   node --import tsx bench/queue.ts b1 weft 2     # B1, 2 worker processes
 *   node --import tsx bench/queue.ts b2 weft       # B2
 *   node --import tsx bench/queue.ts b3 weft       # B3
 *
 * WEFT_POLL_MS sets the worker's idle poll interval (default: Worker.run's own); WEFT_WRITERS the
 * store's concurrent group-commit writers (`PgStore.layerWith({ store: { writers } })`, default 1). Each result notes a
 * digest of the built packages (run `pnpm build` first) and whether the store pushes wake-ups (LISTEN/NOTIFY).
 * `pnpm bench:queues` runs them all with the peers (bench/run-queues.ts).
 */
import { Client, PgStore, Store, Worker } from "@weft/runtime"
import { Duration, Effect, Fiber, Layer, ManagedRuntime } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Kind, QueueSystem } from "./queue-harness.js"
import { main } from "./queue-harness.js"
import { noop, steps10 } from "./workflows.js"

/** Concurrent `Client.start` calls while enqueuing a batch: the store group-commits them. */
const ENQUEUE_CONCURRENCY = 100

const workflowOf = (kind: Kind) => kind === "noop" ? noop : steps10

const pollMs = process.env.WEFT_POLL_MS === undefined ? undefined : Number(process.env.WEFT_POLL_MS)
/** WEFT_WRITERS: the store's concurrent group-commit writers (default: PgStore's own). */
const writers = process.env.WEFT_WRITERS === undefined ? undefined : Number(process.env.WEFT_WRITERS)
const pgLayer = (url: string) => PgStore.layerWith({ url, store: { writers } })

const runtimePackage = JSON.parse(
  Fs.readFileSync(new URL("../packages/runtime/package.json", import.meta.url), "utf8")
) as { readonly version: string }

// The runtime is measured as built (`pnpm build`, which `pnpm bench:queues` runs first): a digest of
// the built core and runtime goes into each result, so that numbers taken while they change can be
// told apart.
const sourceDigest = (() => {
  const hash = Crypto.createHash("sha256")
  const walk = (dir: string): void => {
    for (const entry of Fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = Path.join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".js")) hash.update(entry.name).update(Fs.readFileSync(path))
    }
  }
  for (const pkg of ["core", "runtime"]) walk(new URL(`../packages/${pkg}/dist/`, import.meta.url).pathname)
  return hash.digest("hex").slice(0, 12)
})()

const layer = (url: string) => Client.layer.pipe(Layer.provideMerge(pgLayer(url)))

const weft: QueueSystem = {
  name: "weft",
  version: `@weft/runtime ${runtimePackage.version} (this repository)`,
  configuration: [
    `PgStore.layer({ url }) (pool of 10, group commit${writers === undefined ? "" : `, ${writers} writers`});`,
    `enqueue: Client.start, ${ENQUEUE_CONCURRENCY} at once;`,
    `workers: Worker.run({ workflows, concurrency }) with its defaults (idle poll ${
      pollMs === undefined ? "Worker.run's default" : `${pollMs} ms`
    }; push wake-ups when the store has them: see each result's note)`
  ].join(" "),
  kinds: ["noop", "steps10"],
  setup: async (url) => {
    // Opening the store applies the migrations.
    const runtime = ManagedRuntime.make(PgStore.layer({ url }))
    await runtime.runPromise(Effect.void)
    await runtime.dispose()
  },
  driver: async (url) => {
    const runtime = ManagedRuntime.make(layer(url))
    const client = await runtime.runPromise(Client.Client)
    const store = await runtime.runPromise(Store.Store)
    // Whether this store pushes wake-ups to the workers of every process (LISTEN/NOTIFY), read
    // without depending on the field, which is being added while these benchmarks are written.
    const push = (store as unknown as { readonly sharedWakeups?: boolean }).sharedWakeups === true
    const count = (kind: Kind, status: "queued" | "running") =>
      Effect.map(store.listRuns({ status, workflow: workflowOf(kind).name }), (runs) => runs.length)
    return {
      enqueueMany: (kind, from, count) =>
        runtime.runPromise(
          Effect.forEach(
            Array.from({ length: count }, (_, k) => from + k),
            (i) => client.start(workflowOf(kind), i),
            { concurrency: ENQUEUE_CONCURRENCY, discard: true }
          )
        ),
      enqueueOne: (kind, i) => runtime.runPromise(Effect.asVoid(client.start(workflowOf(kind), i))),
      remaining: (kind) =>
        runtime.runPromise(
          Effect.map(Effect.all([count(kind, "queued"), count(kind, "running")]), ([q, r]) => q + r)
        ),
      close: () => runtime.dispose(),
      // Without push, an idle worker polls every second: enqueue at random phases of its polls.
      b2GapMs: push ? 50 : 1000,
      note: `built core+runtime ${sourceDigest}; ${
        push ? "push wake-ups (LISTEN/NOTIFY)" : "no push wake-ups: idle workers poll (1 s)"
      }`
    }
  },
  worker: async (url, _kind, concurrency) => {
    const runtime = ManagedRuntime.make(pgLayer(url))
    await runtime.runPromise(Effect.void)
    let fiber: Fiber.RuntimeFiber<never, unknown> | undefined
    return {
      start: async () => {
        fiber = runtime.runFork(
          Worker.run({
            workflows: [noop, steps10],
            concurrency,
            ...(pollMs === undefined ? {} : { pollInterval: Duration.millis(pollMs) })
          })
        )
      },
      stop: async () => {
        if (fiber !== undefined) await runtime.runPromise(Fiber.interrupt(fiber))
        await runtime.dispose()
      }
    }
  }
}

main({ weft })
