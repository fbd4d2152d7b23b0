/**
 * Crash recovery with real processes: a `weft run` child is killed with SIGKILL at several points
 * of a five-step run; `weft resume` completes it with the same result as an uninterrupted run, and
 * every step whose completion reached the journal before the crash ran its side effect once.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { fixture, runIdOf, spawnWeft, tempDir, weft } from "./cli.js"

const steps = ["one", "two", "three", "four", "five"]

const effectsOf = (file: string) => Fs.readFileSync(file, "utf8").trim().split("\n")

const count = (lines: ReadonlyArray<string>, step: string) => lines.filter((l) => l === step).length

const expectedTotal = steps.reduce((acc, name) => acc * 2 + name.length, 1)

describe("crash and resume", () => {
  it("an uninterrupted run: every side effect once", async () => {
    const dir = tempDir()
    const effects = Path.join(dir, "effects")
    const r = await weft([
      "run",
      fixture("multistep.ts"),
      "--input",
      JSON.stringify({ effects }),
      "--store",
      `sqlite:${dir}/w.db`
    ])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).total).toBe(expectedTotal)
    expect(effectsOf(effects)).toEqual(steps)
  })

  for (const after of ["one", "three", "four"]) {
    it(`SIGKILL after step "${after}" completed: resume runs only the rest`, async () => {
      const dir = tempDir()
      const effects = Path.join(dir, "effects")
      const store = `sqlite:${dir}/w.db`
      const p = spawnWeft(["run", fixture("multistep.ts"), "--input", JSON.stringify({ effects }), "--store", store])
      await p.waitFor(new RegExp(`✓ ${after} `))
      p.child.kill("SIGKILL")
      const crashed = await p.done
      expect(crashed.signal).toBe("SIGKILL")
      const id = runIdOf(crashed.stderr)

      const before = JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)
      expect(before.run.status).toBe("running")
      const journaled: Array<string> = before.steps
        .filter((s: { status: string; kind: string }) => s.status === "succeeded" && s.kind === "step")
        .map((s: { stepId: string }) => s.stepId)
      expect(journaled).toContain(after)

      const resumed = await weft(["resume", id, "--store", store])
      expect(resumed.code).toBe(0)
      expect(JSON.parse(resumed.stdout).total).toBe(expectedTotal)
      // The journaled `now` is replayed: the run keeps the start time its first execution saw.
      const after_ = JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)
      expect(after_.run.status).toBe("succeeded")
      expect(after_.run.recoveries).toBe(1)

      const lines = effectsOf(effects)
      for (const step of steps) {
        expect(count(lines, step), `side effects of ${step}`).toBeGreaterThanOrEqual(1)
        if (journaled.includes(step)) expect(count(lines, step), `side effects of journaled ${step}`).toBe(1)
      }
      for (const step of journaled) expect(resumed.stderr).toMatch(new RegExp(`↻ ${step}`))
    }, 60_000)
  }

  it("SIGKILL inside a step after its side effect: only that step runs again (at least once)", async () => {
    const dir = tempDir()
    const effects = Path.join(dir, "effects")
    const store = `sqlite:${dir}/w.db`
    const crashed = await weft([
      "run",
      fixture("multistep.ts"),
      "--input",
      JSON.stringify({ effects }),
      "--store",
      store
    ], {
      env: { CRASH_AT: "three" }
    })
    expect(crashed.signal).toBe("SIGKILL")
    const id = runIdOf(crashed.stderr)
    expect(effectsOf(effects)).toEqual(["one", "two", "three"])

    const resumed = await weft(["resume", id, "--store", store], { env: { CRASH_AT: "three" } })
    expect(resumed.code).toBe(0)
    expect(JSON.parse(resumed.stdout).total).toBe(expectedTotal)
    expect(effectsOf(effects)).toEqual(["one", "two", "three", "three", "four", "five"])
  }, 60_000)

  it("the result after a crash equals the result of an uninterrupted run, including journaled time", async () => {
    const dir = tempDir()
    const effects = Path.join(dir, "effects")
    const store = `sqlite:${dir}/w.db`
    const p = spawnWeft(["run", fixture("multistep.ts"), "--input", JSON.stringify({ effects }), "--store", store])
    await p.waitFor(/✓ two /)
    p.child.kill("SIGKILL")
    const crashed = await p.done
    const id = runIdOf(crashed.stderr)
    const show = JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)
    const nowStep = show.steps.find((s: { kind: string }) => s.kind === "now")
    expect(nowStep).toBeDefined()
    await new Promise((r) => setTimeout(r, 50))
    const resumed = await weft(["resume", id, "--store", store])
    expect(resumed.code).toBe(0)
    const output = JSON.parse(resumed.stdout)
    expect(output.startedAt).toBeLessThan(Date.now() - 40)
    expect(output.startedAt).toBeGreaterThan(Date.now() - 60_000)
  }, 60_000)
})
