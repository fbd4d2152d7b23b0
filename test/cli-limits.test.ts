/**
 * `weft show` and `weft list` for a queued run held back by queue limits, end to end on a real
 * SQLite file: the store is set up from this process (declared queues, runs claimed by a pretend
 * worker), and the `weft` child process says which limits hold the run back, in text and in `--json`.
 */
import { SqliteStore, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { tempDir, weft } from "./cli.js"

/** Runs `setup` on the SQLite store in `file`, then closes it. */
const withStore = <A>(file: string, setup: Effect.Effect<A, unknown, Store.Store>) =>
  Effect.runPromise(Effect.provide(setup, SqliteStore.layer({ filename: file })))

describe("weft show and weft list for a queued run", () => {
  it("say which limits hold it back: the queue's concurrency, its key, the queue's rate", async () => {
    const file = Path.join(tempDir(), "weft.db")
    const store = `sqlite:${file}`
    const now = Date.now()
    await withStore(
      file,
      Effect.gen(function*() {
        const s = yield* Store.Store
        yield* s.declareQueues({
          queues: [
            { name: "emails", concurrency: 2, rateLimit: undefined },
            { name: "api", concurrency: undefined, rateLimit: { limit: 1, intervalMillis: 3_600_000 } }
          ],
          keyed: [],
          by: "test",
          now
        })
        const create = (id: string, queue: string, key?: string) =>
          s.createRun({
            id,
            workflow: "send",
            version: "v1",
            input: {},
            queue,
            concurrencyKey: key,
            now: now + Number(id.slice(-1))
          })
        yield* create("emails-1", "emails", "customer-7")
        yield* create("emails-2", "emails", "customer-8")
        yield* create("emails-3", "emails", "customer-7")
        yield* create("api-1", "api")
        yield* create("api-2", "api")
        yield* create("plain-1", "default")
        const claimed = yield* s.claimNext({
          owner: "pretend-worker",
          queues: ["emails", "api"],
          limit: 10,
          leaseMillis: 3_600_000,
          now: now + 10
        })
        expect(claimed.map((run) => run.id)).toEqual(["emails-1", "emails-2", "api-1"])
      })
    )

    const text = await weft(["show", "emails-3", "--store", store])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^ +queue +emails$/m)
    expect(text.stdout).toMatch(/^ +key +customer-7 \(at most 1 running at once\)$/m)
    expect(text.stdout).toMatch(
      /^ +blocked +queue emails is at its concurrency limit 2 \(2 running\); key customer-7 is at its limit 1 in queue emails$/m
    )

    const json = JSON.parse((await weft(["show", "emails-3", "--store", store, "--json"])).stdout)
    expect(json.run).toMatchObject({
      status: "queued",
      queue: "emails",
      concurrencyKey: { key: "customer-7", limit: 1 },
      blocked:
        "queue emails is at its concurrency limit 2 (2 running); key customer-7 is at its limit 1 in queue emails"
    })

    const rated = JSON.parse((await weft(["show", "api-2", "--store", store, "--json"])).stdout)
    expect(rated.run.blocked).toBe(
      `queue api is rate limited (1 per 1h) until ${new Date(now + 10 + 3_600_000).toISOString()}`
    )

    // weft list says it in the status column, and as `blocked` in --json.
    const list = await weft(["list", "--store", store])
    expect(list.stdout).toMatch(
      /^emails-3 +send +⋯ queued: queue emails is at its concurrency limit 2 \(2 running\); key/m
    )
    expect(list.stdout).toMatch(/^api-2 +send +⋯ queued: queue api is rate limited \(1 per 1h\) until /m)
    expect(list.stdout).toMatch(/^plain-1 +send +⋯ queued +/m)
    const listed: Array<{ id: string; blocked?: string }> = JSON.parse(
      (await weft(["list", "--store", store, "--json"])).stdout
    )
    expect(Object.fromEntries(listed.filter((run) => run.blocked !== undefined).map((run) => [run.id, run.blocked])))
      .toEqual({ "emails-3": json.run.blocked, "api-2": rated.run.blocked })

    // Nothing holds these back: no `blocked`.
    for (const id of ["plain-1", "emails-1"]) {
      const shown = JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)
      expect(shown.run.blocked).toBeUndefined()
    }
  }, 30_000)
})
