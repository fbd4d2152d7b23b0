/**
 * `weft start` and `weft worker` end to end, as child processes on a real SQLite file: a queued
 * run, a worker that runs it to success and stops on SIGTERM with exit 0, a bad --delay and --grace.
 */
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { example, spawnWeft, tempDir, weft } from "./cli.js"

const order = (id: string) => JSON.stringify({ id, items: [{ sku: "book", quantity: 1 }], card: "4242-4242" })

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

const statusOf = async (id: string, store: string): Promise<string> => {
  const show = await weft(["show", id, "--store", store, "--json"])
  return JSON.parse(show.stdout).run.status
}

describe("weft start and weft worker", () => {
  it("queues a run, a worker runs it to success, and SIGTERM stops the worker with exit 0", async () => {
    const store = storeIn(tempDir())
    const started = await weft(["start", example("checkout.ts"), "--input", order("w-1"), "--store", store])
    expect(started.stderr).toMatch(/queued checkout \S+ on /)
    expect(started.code).toBe(0)
    const id = started.stdout.trim()
    expect(id).toMatch(/^\S+$/)
    expect(await statusOf(id, store)).toBe("queued")

    const worker = spawnWeft(["worker", example("checkout.ts"), "--concurrency", "2", "--store", store])
    try {
      await worker.waitFor(new RegExp(`✓ checkout ${id} succeeded`))
      expect(await statusOf(id, store)).toBe("succeeded")
    } finally {
      worker.child.kill("SIGTERM")
    }
    const r = await worker.done
    expect(r.stderr).toMatch(new RegExp(`▶ checkout ${id} started`))
    expect(r.stderr).toMatch(/worker \S+ stopped/)
    expect(r.code).toBe(0)
  }, 30_000)

  it(
    "SIGTERM during a step lets it finish, then releases the run at the step boundary; the worker exits 0",
    async () => {
      const store = storeIn(tempDir())
      // Each attempt of its step takes 300ms before it times out: the run is in flight when signalled.
      const started = await weft(["start", example("timeout.ts"), "--input", `{"delayMs":1000}`, "--store", store])
      expect(started.code).toBe(0)
      const id = started.stdout.trim()
      const worker = spawnWeft(["worker", example("timeout.ts"), "--store", store])
      try {
        await worker.waitFor(new RegExp(`▶ slow-report ${id} started`))
      } finally {
        worker.child.kill("SIGTERM")
      }
      const r = await worker.done
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/stopping: 1 run in flight get 30s to finish their step/)
      const runs = JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)
      expect(runs[0].status).toBe("queued")
      expect(runs[0].leaseOwner).toBeUndefined()
      expect(runs[0].reason).toMatch(/shut down at a step boundary/)
      // The attempt in flight finished (it timed out) and is in the journal.
      const shown = JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)
      expect(shown.steps[0].attempts.length).toBeGreaterThanOrEqual(1)
    },
    30_000
  )

  it("with --grace 0 a SIGTERM interrupts the step in flight; the run stays queued and resumable", async () => {
    const store = storeIn(tempDir())
    const started = await weft(["start", example("timeout.ts"), "--input", `{"delayMs":1000}`, "--store", store])
    const id = started.stdout.trim()
    const worker = spawnWeft(["worker", example("timeout.ts"), "--store", store, "--grace", "0 millis"])
    try {
      await worker.waitFor(new RegExp(`▶ slow-report ${id} started`))
    } finally {
      worker.child.kill("SIGTERM")
    }
    const r = await worker.done
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/1 run did not finish their step in time and were interrupted/)
    const runs = JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)
    expect(runs[0].status).toBe("queued")
    expect(runs[0].leaseOwner).toBeUndefined()
    expect(runs[0].reason).toMatch(/^interrupted at /)
  }, 30_000)

  it("prints {runId} with --json and keeps a delayed run queued", async () => {
    const store = storeIn(tempDir())
    const r = await weft([
      "start",
      example("checkout.ts"),
      "--input",
      order("w-2"),
      "--store",
      store,
      "--json",
      "--delay",
      "1 hour",
      "--priority",
      "3"
    ])
    expect(r.code).toBe(0)
    const { runId } = JSON.parse(r.stdout)
    const runs = JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)
    expect(runs).toHaveLength(1)
    expect(runs[0].id).toBe(runId)
    expect(runs[0].status).toBe("queued")
    expect(runs[0].priority).toBe(3)
    expect(runs[0].origin).toBe(example("checkout.ts"))
    expect(runs[0].wakeAt).toBeGreaterThan(Date.now() + 50 * 60_000)
  }, 30_000)

  it("rejects a bad --delay with exit 2 and writes nothing", async () => {
    const dir = tempDir()
    const r = await weft([
      "start",
      example("checkout.ts"),
      "--input",
      order("w-3"),
      "--store",
      storeIn(dir),
      "--delay",
      "soon"
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--delay "soon" is not a duration/)
    expect(r.stdout).toBe("")
  })

  it("rejects a bad --grace with exit 2 before the worker starts", async () => {
    const r = await weft(["worker", example("checkout.ts"), "--store", storeIn(tempDir()), "--grace", "nonsense"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--grace "nonsense" is not a duration/)
    expect(r.stderr).not.toMatch(/^worker /m)
  })

  it("rejects a bad --max-recoveries with exit 2 before the worker starts", async () => {
    for (const bad of ["-1", "two", "1.5"]) {
      const r = await weft(["worker", example("checkout.ts"), "--store", storeIn(tempDir()), `--max-recoveries=${bad}`])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(`--max-recoveries must be a whole number, got "${bad}"`)
      expect(r.stderr).not.toMatch(/^worker /m)
    }
  })

  it("rejects input that does not match the workflow like run does", async () => {
    const r = await weft(["start", example("checkout.ts"), "--input", "{}", "--store", storeIn(tempDir())])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/input does not match workflow "checkout"/)
  })
})
