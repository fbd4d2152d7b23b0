/**
 * `weft cancel` end to end, as child processes on a real SQLite file: a run held by a worker in
 * another process is stopped (its step interrupted, its resource released), its completed step is
 * compensated, and it ends cancelled with who asked and why; a queued run is cancelled by the next
 * worker; a finished run is left alone; bad usage exits 2.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { fixture, spawnWeft, tempDir, weft } from "./cli.js"

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

const waitForFile = async (file: string, text: string, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(Fs.existsSync(file) && Fs.readFileSync(file, "utf8").includes(text))) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in ${file}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("weft cancel", () => {
  it("stops a run held by a worker in another process, compensates it, and records who and why", async () => {
    const dir = tempDir()
    const store = storeIn(dir)
    const notes = Path.join(dir, "notes.txt")
    const started = await weft([
      "start",
      fixture("cancellable.ts"),
      "--input",
      JSON.stringify({ file: notes }),
      "--store",
      store
    ])
    expect(started.code).toBe(0)
    const id = started.stdout.trim()
    // A short lease: on SQLite a worker in another process learns of the request at its heartbeat.
    const worker = spawnWeft(["worker", fixture("cancellable.ts"), "--store", store, "--lease", "3 seconds"])
    try {
      await waitForFile(notes, "shipping started")
      const cancelled = await weft(["cancel", id, "--reason", "customer changed plans", "--wait", "--store", store])
      expect(cancelled.code).toBe(0)
      expect(cancelled.stdout).toBe(`run ${id} cancelled\n`)
      await worker.waitFor(new RegExp(`✗ booking ${id} cancelled`))
    } finally {
      worker.child.kill("SIGTERM")
    }
    expect((await worker.done).code).toBe(0)
    expect(Fs.readFileSync(notes, "utf8")).toBe(
      "reserved\nshipping started\nshipping connection closed\nreleased R-1\n"
    )
    const shown = JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)
    expect(shown.run.status).toBe("cancelled")
    const listed = JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)
    expect(listed[0].cancel).toMatchObject({ reason: "customer changed plans" })
    expect(listed[0].cancel.by).toMatch(/^cli:/)
    // Cancelled is a typed failure with its fields.
    expect(JSON.stringify(shown.cause)).toMatch(/Cancelled/)
    expect(JSON.stringify(shown.cause)).toMatch(/customer changed plans/)
  }, 60_000)

  it("a queued run is cancelled by the next worker without running; a finished run is left alone", async () => {
    const dir = tempDir()
    const store = storeIn(dir)
    const notes = Path.join(dir, "notes.txt")
    const started = await weft([
      "start",
      fixture("cancellable.ts"),
      "--input",
      JSON.stringify({ file: notes }),
      "--store",
      store
    ])
    const id = started.stdout.trim()
    const asked = await weft(["cancel", id, "--store", store, "--json"])
    expect(asked.code).toBe(0)
    expect(JSON.parse(asked.stdout)).toEqual({ runId: id, requested: true, status: "queued" })
    const worker = spawnWeft(["worker", fixture("cancellable.ts"), "--store", store])
    try {
      await worker.waitFor(new RegExp(`✗ booking ${id} cancelled`))
    } finally {
      worker.child.kill("SIGTERM")
    }
    await worker.done
    expect(Fs.existsSync(notes)).toBe(false)
    const again = await weft(["cancel", id, "--store", store])
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(`run ${id} has already cancelled: nothing to cancel\n`)
  }, 60_000)

  it("bad usage exits 2: no run id, an unknown run", async () => {
    const store = storeIn(tempDir())
    const none = await weft(["cancel", "--store", store])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/cancel needs a run id/)
    const unknown = await weft(["cancel", "no-such-run", "--store", store])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/no run with id no-such-run/)
  }, 30_000)
})
