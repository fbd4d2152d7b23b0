/**
 * Poison runs with real processes: a step that kills its own process (SIGKILL) every time it runs.
 * Resumed again and again (`weft resume`), or taken over by worker after worker when the dead one's
 * lease expires (SQLite and PostgreSQL), the run is executed at most 1 + maxRecoveries times: the
 * next recovery fails it with RecoveryLimit instead of running it, `weft show` explains it, and once
 * the cause is fixed `weft retry` sends it back and it completes without running its first step again.
 */
import type * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, useTestDatabase } from "../packages/runtime/test/pg.js"
import { fixture, runIdOf, spawnWeft, tempDir, weft } from "./cli.js"

// A server for this file (an embedded one when WEFT_TEST_DATABASE_URL is not set).
useTestDatabase()

const module = fixture("poison.ts")

const children = new Set<ChildProcess.ChildProcess>()
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
})

const effectsOf = (file: string): Array<string> =>
  Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").trim().split("\n") : []

const showJson = async (id: string, store: string) => {
  const r = await weft(["show", id, "--store", store, "--json"])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout)
}

/** After the limit: the run failed with RecoveryLimit, said so, and is re-driven to success once fixed. */
const expectPoisonedThenRedriven = async (id: string, store: string, effects: string, finish: () => Promise<void>) => {
  const trace = await showJson(id, store)
  expect(trace.run).toMatchObject({ status: "failed", recoveries: 3 })
  expect(trace.cause).toMatchObject({
    kind: "fail",
    error: { tag: "RecoveryLimit", fields: { runId: id, recoveries: 3, limit: 2 } }
  })
  const text = await weft(["show", id, "--store", store])
  expect(text.stdout).toContain(`RecoveryLimit`)
  expect(text.stdout).toContain(`run ${id} was recovered 3 times, more than its limit of 2`)
  expect(text.stdout).toContain(`weft retry ${id}`)
  // Three executions died in `explode`; the fourth never ran.
  expect(effectsOf(effects)).toEqual(["prepare", "explode", "explode", "explode"])

  Fs.writeFileSync(`${effects}.fixed`, "")
  const retried = await weft(["retry", id, "--store", store])
  expect(retried.code, retried.stderr).toBe(0)
  expect(retried.stdout).toContain(
    `re-drove run ${id} from where it stopped (was failed: RecoveryLimit; 0 completions discarded)`
  )
  await finish()
  const done = await showJson(id, store)
  expect(done.run).toMatchObject({ status: "succeeded", recoveries: 0, output: "survived" })
  expect(effectsOf(effects)).toEqual(["prepare", "explode", "explode", "explode", "explode"])
}

describe("poison runs", () => {
  it(
    "weft resume again and again: after maxRecoveries the run fails with RecoveryLimit, not a fourth crash",
    async () => {
      const dir = tempDir()
      const effects = Path.join(dir, "effects")
      const store = `sqlite:${dir}/w.db`
      const first = await weft(["run", module, "--input", JSON.stringify({ effects }), "--store", store])
      expect(first.signal).toBe("SIGKILL")
      const id = runIdOf(first.stderr)
      for (const recovery of [1, 2]) {
        const resumed = await weft(["resume", id, "--store", store])
        expect(resumed.signal, `resume ${recovery}: ${resumed.stderr}`).toBe("SIGKILL")
        expect((await showJson(id, store)).run).toMatchObject({ status: "running", recoveries: recovery })
      }
      const poisoned = await weft(["resume", id, "--store", store])
      expect(poisoned.code, poisoned.stderr).toBe(1)
      expect(poisoned.stderr).toContain("RecoveryLimit")
      await expectPoisonedThenRedriven(id, store, effects, async () => {
        const resumed = await weft(["resume", id, "--store", store])
        expect(resumed.code, resumed.stderr).toBe(0)
      })
    },
    120_000
  )

  for (const backend of ["sqlite", "postgres"] as const) {
    it(`workers dying on it one after another (${backend}): the next worker fails it and stays up`, async () => {
      const dir = tempDir()
      const effects = Path.join(dir, "effects")
      const store = backend === "sqlite" ? `sqlite:${dir}/w.db` : await createDatabase()
      try {
        const started = await weft(["start", module, "--input", JSON.stringify({ effects }), "--store", store])
        expect(started.code, started.stderr).toBe(0)
        const id = started.stdout.trim()
        // Each worker takes the run once the dead one's lease (1 s) has expired, and dies in `explode`.
        for (let execution = 1; execution <= 3; execution++) {
          const worker = spawnWeft(["worker", module, "--lease", "1 second", "--store", store])
          children.add(worker.child)
          const died = await worker.done
          children.delete(worker.child)
          expect(died.signal, `worker ${execution}: ${died.stderr}`).toBe("SIGKILL")
          expect(effectsOf(effects).filter((line) => line === "explode")).toHaveLength(execution)
        }
        const survivor = spawnWeft(["worker", module, "--lease", "1 second", "--store", store])
        children.add(survivor.child)
        try {
          await survivor.waitFor(new RegExp(`✗ poison ${id} failed`), 30_000)
          await expectPoisonedThenRedriven(id, store, effects, async () => {
            await survivor.waitFor(new RegExp(`✓ poison ${id} succeeded`), 30_000)
          })
        } finally {
          survivor.child.kill("SIGTERM")
          expect((await survivor.done).code).toBe(0)
        }
      } finally {
        if (backend === "postgres") await dropDatabase(store)
      }
    }, 120_000)
  }
})
