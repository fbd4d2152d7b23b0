/**
 * Dead letters and re-drive from the command line, with real processes and a SQLite file: a run
 * fails (its gateway is down: a file on disk), `weft list --status failed --since` finds it, the
 * gateway comes back, `weft retry` sends it back to its queue and `weft resume` (or a worker)
 * finishes it, its earlier step having run once; `--from-step`, bulk re-drives, `--wait`,
 * `weft start --if-finished restart-failed`, and the refusals (exit 2) with their messages.
 */
import type * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { fixture, spawnWeft, tempDir, weft } from "./cli.js"

const module = fixture("dead-letter.ts")

const children = new Set<ChildProcess.ChildProcess>()
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
})

/** A store and an effects file in a fresh directory, the gateway down. */
const setup = () => {
  const dir = tempDir()
  const effects = Path.join(dir, "effects")
  Fs.writeFileSync(`${effects}.broken`, "")
  return { store: `sqlite:${dir}/w.db`, effects, input: JSON.stringify({ effects }) }
}

/** The side effects so far: `step attempt` lines. */
const effectsOf = (file: string): Array<string> =>
  Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").trim().split("\n") : []

const showJson = async (id: string, store: string) => {
  const r = await weft(["show", id, "--store", store, "--json"])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout)
}

describe("weft retry", () => {
  it("a failed run, re-driven once its cause is fixed, succeeds; its completed step ran once", async () => {
    const { effects, input, store } = setup()
    const failed = await weft(["run", module, "--input", input, "--id", "o-1", "--store", store])
    expect(failed.code, failed.stderr).toBe(1)
    expect(failed.stderr).toContain("GatewayDown")
    expect(effectsOf(effects)).toEqual(["reserve 1", "charge 1", "charge 2"])

    const list = await weft([
      "list",
      "--status",
      "failed",
      "--workflow",
      "fulfil",
      "--since",
      "10m",
      "--store",
      store,
      "--json"
    ])
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout).map((run: { id: string }) => run.id)).toEqual(["o-1"])
    const future = await weft(["list", "--status", "failed", "--since", "2999-01-01", "--store", store, "--json"])
    expect(JSON.parse(future.stdout)).toEqual([])

    Fs.rmSync(`${effects}.broken`)
    const retried = await weft(["retry", "o-1", "--reason", "gateway is back", "--store", store])
    expect(retried.code, retried.stderr).toBe(0)
    expect(retried.stdout).toContain(
      "re-drove run o-1 from step charge (was failed: GatewayDown; 1 completion discarded)"
    )
    const queued = await showJson("o-1", store)
    expect(queued.run.status).toBe("queued")
    expect(queued.run.redrives).toMatchObject([{
      seq: 1,
      reason: "gateway is back",
      fromStep: "charge",
      discarded: ["charge"]
    }])
    expect(queued.run.redrives[0].by).toMatch(/^cli:/)

    const resumed = await weft(["resume", "o-1", "--store", store])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toEqual({ charged: 3 })
    // reserve once; charge twice in its first budget, then its third attempt, the first of a fresh budget.
    expect(effectsOf(effects)).toEqual(["reserve 1", "charge 1", "charge 2", "charge 3", "ship 1"])

    const done = await showJson("o-1", store)
    expect(done.run).toMatchObject({ status: "succeeded", recoveries: 0 })
    const charge = done.steps.find((step: { stepId: string }) => step.stepId === "charge")
    expect(
      charge.attempts.map((
        a: { attempt: number; outcome: string; redrive?: number }
      ) => [a.attempt, a.outcome, a.redrive])
    )
      .toEqual([[1, "failure", undefined], [2, "failure", undefined], [3, "success", 1]])
    const text = await weft(["show", "o-1", "--store", store])
    expect(text.stdout).toMatch(
      /re-driven\s+#1 \S+ by cli:\S+ from step charge: gateway is back \(was failed: GatewayDown\)/
    )
    expect(text.stdout).toContain("↻ re-driven by cli:")

    // It has succeeded now: nothing to re-drive.
    const again = await weft(["retry", "o-1", "--store", store])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain("run o-1 is succeeded: only a failed or cancelled run can be re-driven")
  }, 60_000)

  it("--from-step runs that step and what follows again; an unknown step lists the steps; an unknown run", async () => {
    const { effects, input, store } = setup()
    expect((await weft(["run", module, "--input", input, "--id", "o-2", "--store", store])).code).toBe(1)
    Fs.rmSync(`${effects}.broken`)
    const unknown = await weft(["retry", "o-2", "--from-step", "charge#2", "--store", store])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain(`run o-2 has no step "charge#2" in its journal; its steps: reserve, charge`)
    const missing = await weft(["retry", "nope", "--store", store])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("no run with id nope")

    const retried = await weft(["retry", "o-2", "--from-step", "reserve", "--store", store, "--json"])
    expect(retried.code, retried.stderr).toBe(0)
    expect(JSON.parse(retried.stdout)).toMatchObject({
      runId: "o-2",
      status: "queued",
      seq: 1,
      previousStatus: "failed",
      fromStep: "reserve",
      discarded: ["reserve", "charge"]
    })
    expect((await weft(["resume", "o-2", "--store", store])).code).toBe(0)
    expect(effectsOf(effects)).toEqual(["reserve 1", "charge 1", "charge 2", "reserve 2", "charge 3", "ship 1"])
  }, 60_000)

  it("in bulk: every failed run of the workflow since then, each printed; a worker finishes them", async () => {
    const { effects, input, store } = setup()
    for (const id of ["b-1", "b-2", "b-3"]) {
      expect((await weft(["run", module, "--input", input, "--id", id, "--store", store])).code).toBe(1)
    }
    Fs.rmSync(`${effects}.broken`)
    const none = await weft(["retry", "--status", "failed", "--workflow", "other", "--store", store])
    expect(none.code).toBe(0)
    expect(none.stderr).toContain("no failed runs of workflow other to re-drive")

    const limited = await weft(["retry", "--status", "failed", "--limit", "1", "--store", store])
    expect(limited.code, limited.stderr).toBe(0)
    expect(limited.stdout.trim().split("\n")).toEqual([
      "re-drove run b-3 (fulfil) from step charge (was failed: GatewayDown; 1 completion discarded)"
    ])
    expect(limited.stderr).toContain("re-drove 1 failed run (--limit 1 reached: there may be more)")

    const bulk = await weft([
      "retry",
      "--status",
      "failed",
      "--workflow",
      "fulfil",
      "--since",
      "1 hour",
      "--store",
      store,
      "--json"
    ])
    expect(bulk.code, bulk.stderr).toBe(0)
    const { redriven, skipped } = JSON.parse(bulk.stdout)
    expect(redriven.map((r: { runId: string }) => r.runId)).toEqual(["b-2", "b-1"])
    expect(skipped).toEqual([])

    const worker = spawnWeft(["worker", module, "--store", store])
    children.add(worker.child)
    for (const id of ["b-1", "b-2", "b-3"]) await worker.waitFor(new RegExp(`✓ fulfil ${id} succeeded`), 30_000)
    worker.child.kill("SIGTERM")
    expect((await worker.done).code).toBe(0)
    const lines = effectsOf(effects)
    expect(lines.filter((l) => l.startsWith("reserve"))).toHaveLength(3)
    expect(lines.filter((l) => l === "charge 3")).toHaveLength(3)
    expect(lines.filter((l) => l.startsWith("ship"))).toHaveLength(3)
  }, 90_000)

  it("--wait waits for the run to end (a worker runs it) and exits as weft run would", async () => {
    const { effects, input, store } = setup()
    expect((await weft(["run", module, "--input", input, "--id", "w-1", "--store", store])).code).toBe(1)
    const worker = spawnWeft(["worker", module, "--store", store])
    children.add(worker.child)
    try {
      // Still broken: it fails again, with the second budget's two attempts.
      const failedAgain = await weft(["retry", "w-1", "--wait", "--store", store])
      expect(failedAgain.code, failedAgain.stderr).toBe(1)
      expect(failedAgain.stderr).toContain("GatewayDown")
      Fs.rmSync(`${effects}.broken`)
      const succeeded = await weft(["retry", "w-1", "--wait", "--store", store])
      expect(succeeded.code, succeeded.stderr).toBe(0)
      expect(JSON.parse(succeeded.stdout)).toEqual({ charged: 5 })
      expect(effectsOf(effects).filter((l) => l.startsWith("charge"))).toEqual([
        "charge 1",
        "charge 2",
        "charge 3",
        "charge 4",
        "charge 5"
      ])
      expect((await showJson("w-1", store)).run.redrives.map((r: { seq: number }) => r.seq)).toEqual([1, 2])
    } finally {
      worker.child.kill("SIGTERM")
      await worker.done
    }
  }, 90_000)

  it(
    "weft start --if-finished restart-failed starts a failed run over under its id; by default it is returned",
    async () => {
      const { effects, input, store } = setup()
      expect((await weft(["run", module, "--input", input, "--id", "s-1", "--store", store])).code).toBe(1)
      const returned = await weft(["start", module, "--input", input, "--id", "s-1", "--store", store])
      expect(returned.code).toBe(0)
      expect(returned.stderr).toContain("run s-1 already exists (failed); nothing new was queued")
      Fs.rmSync(`${effects}.broken`)
      const restarted = await weft([
        "start",
        module,
        "--input",
        input,
        "--id",
        "s-1",
        "--if-finished",
        "restart-failed",
        "--store",
        store
      ])
      expect(restarted.code, restarted.stderr).toBe(0)
      expect(restarted.stderr).toContain("run s-1 had failed or been cancelled: started over")
      expect(restarted.stdout.trim()).toBe("s-1")
      expect((await weft(["resume", "s-1", "--store", store])).code).toBe(0)
      // Started over: reserve ran again.
      expect(effectsOf(effects)).toEqual(["reserve 1", "charge 1", "charge 2", "reserve 2", "charge 3", "ship 1"])
      const ran = await weft([
        "run",
        module,
        "--input",
        input,
        "--id",
        "s-1",
        "--if-finished",
        "restart-failed",
        "--store",
        store
      ])
      expect(ran.code).toBe(0)
      expect(ran.stderr).toContain("already exists and has succeeded")
    },
    60_000
  )

  it("bad usage is exit 2 with a message that says what to do, and writes nothing", async () => {
    const { input, store } = setup()
    expect((await weft(["run", module, "--input", input, "--id", "u-1", "--store", store])).code).toBe(1)
    const cases: Array<[ReadonlyArray<string>, string]> = [
      [["retry"], "retry needs a run id (weft retry <run-id>), or --status failed"],
      [["retry", "--status", "running"], "--status running: only failed or cancelled runs can be re-driven"],
      [
        ["retry", "u-1", "--status", "failed"],
        "weft retry u-1 re-drives that run; --status select runs for a bulk re-drive"
      ],
      [["retry", "--status", "failed", "--from-step", "charge"], "--from-step names a step of one run"],
      [["retry", "--status", "failed", "--since", "yesterday"], `--since "yesterday" is neither a duration nor a date`],
      [["retry", "--status", "failed", "--limit", "0"], "--limit must be a positive whole number"],
      [["list", "--since", "soon"], `--since "soon" is neither a duration nor a date`],
      [["start", module, "--input", input, "--if-finished", "maybe"], `--if-finished must be "return"`],
      [["retry", "u-1", "--delay", "1s"], "weft retry does not take --delay"]
    ]
    for (const [args, message] of cases) {
      const r = await weft([...args, "--store", store])
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(message)
    }
    expect((await showJson("u-1", store)).run).toMatchObject({ status: "failed" })
    expect((await showJson("u-1", store)).run.redrives).toBeUndefined()
  }, 60_000)
})
