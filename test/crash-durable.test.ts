/**
 * Crashes of real worker processes (SIGKILL) in the middle of the durable primitives, on a SQLite
 * file: while a run waits for a signal, inside a task group, and during compensation. Another worker
 * then completes the run with the outcome an uninterrupted run has, and every step whose completion
 * reached the journal before the crash did its work once.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { fixture, spawnWeft, tempDir, weft } from "./cli.js"

const module = fixture("durable.ts")

const lines = (file: string): Array<string> =>
  Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "") : []

const count = (file: string, line: string) => lines(file).filter((l) => l === line).length

const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const show = async (id: string, store: string) =>
  JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)

const setup = async (workflow: string, ms: number) => {
  const dir = tempDir()
  const store = `sqlite:${Path.join(dir, "weft.db")}`
  const effects = Path.join(dir, "effects")
  const started = await weft(["start", module, workflow, "--input", JSON.stringify({ effects, ms }), "--store", store])
  expect(started.code).toBe(0)
  return { store, effects, id: started.stdout.trim() }
}

const worker = (store: string) => spawnWeft(["worker", module, "--store", store, "--lease", "2 seconds"])

describe("crashes in the durable primitives", () => {
  it("SIGKILL while a run waits for a signal: the signal still reaches it, nothing runs twice", async () => {
    const { effects, id, store } = await setup("awaiting", 10)
    const first = worker(store)
    await until("the run to wait", async () => (await show(id, store)).run.status === "waiting")
    first.child.kill("SIGKILL")
    await first.done
    const signalled = await weft(["signal", id, "go", "--payload", "\"onward\"", "--store", store])
    expect(signalled.code).toBe(0)
    const second = worker(store)
    try {
      await second.waitFor(new RegExp(`✓ awaiting ${id} succeeded`))
    } finally {
      second.child.kill("SIGTERM")
    }
    await second.done
    const final = await show(id, store)
    expect(final.run.output).toBe("onward")
    expect(final.run.recoveries).toBe(0)
    expect(count(effects, "prepare effect")).toBe(1)
    expect(count(effects, "finish effect")).toBe(1)
  }, 60_000)

  it(
    "SIGKILL inside a task group: another worker finishes the group; journaled branches do not run again",
    async () => {
      const { effects, id, store } = await setup("fanout", 1500)
      const first = worker(store)
      // Two parts journaled (not only done: a part's effect comes just before its journal write).
      const journaledParts = async () =>
        (await show(id, store)).steps.filter((s: { stepId: string; status: string }) =>
          s.status === "succeeded" && s.stepId.includes("/part")
        ).length
      await until("two parts journaled", async () => (await journaledParts()) >= 2)
      first.child.kill("SIGKILL")
      await first.done
      const journaled = (await show(id, store)).steps
        .filter((s: { stepId: string; status: string }) => s.status === "succeeded" && s.stepId.includes("/part"))
        .map((s: { stepId: string }) => s.stepId)
      expect(journaled.length).toBeGreaterThanOrEqual(2)
      const second = worker(store)
      try {
        await second.waitFor(new RegExp(`✓ fanout ${id} succeeded`), 30_000)
      } finally {
        second.child.kill("SIGTERM")
      }
      await second.done
      const final = await show(id, store)
      expect(final.run.output).toEqual([0, 10, 20, 30])
      for (const stepId of journaled) expect([stepId, count(effects, `${stepId} effect`)]).toEqual([stepId, 1])
      for (const i of [0, 1, 2, 3]) expect(count(effects, `forEach[${i}]/part effect`)).toBeGreaterThanOrEqual(1)
    },
    60_000
  )

  it("SIGKILL during compensation: another worker finishes undoing; a journaled undo does not run again", async () => {
    const { effects, id, store } = await setup("undoing", 800)
    const first = worker(store)
    // b is undone first; kill the worker while a's undo is in flight.
    await until("the undo of a to begin", () => count(effects, "$undo:a begin") === 1)
    first.child.kill("SIGKILL")
    await first.done
    expect(count(effects, "$undo:b effect")).toBe(1)
    const second = worker(store)
    try {
      await second.waitFor(new RegExp(`✗ undoing ${id} failed`), 30_000)
    } finally {
      second.child.kill("SIGTERM")
    }
    await second.done
    const final = await show(id, store)
    expect(final.run.status).toBe("failed")
    expect(JSON.stringify(final.cause)).toMatch(/Refused/)
    expect(count(effects, "a effect")).toBe(1)
    expect(count(effects, "b effect")).toBe(1)
    expect(count(effects, "$undo:b effect")).toBe(1)
    expect(count(effects, "$undo:a effect")).toBe(1)
    expect(lines(effects).filter((l) => l.startsWith("$undo:")).at(-1)).toBe("$undo:a effect")
  }, 60_000)
})
