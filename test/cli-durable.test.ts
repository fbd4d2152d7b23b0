/**
 * The durable primitives end to end, as child processes on a real SQLite file: the saga example's
 * compensations (examples/saga.ts), the approval example's signals through `weft start`,
 * `weft worker` and `weft signal` (examples/approval.ts), and a durable sleep (test/fixtures/
 * sleepy.ts) waited out by `weft run` and by a worker that replaces one killed in the middle of it.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, it } from "vitest"
import { example, fixture, runIdOf, spawnWeft, tempDir, weft } from "./cli.js"

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

/** Masks run ids, dates, times of day and durations. */
const mask = (text: string, runId: string) =>
  text
    .replaceAll(runId, "<run-id>")
    .replaceAll(runId.slice(0, 8), "<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<date>")
    .replace(/\b(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\dZ/g, "<time>")
    .replace(/\b\d+(?:\.\d+)?(?:ms|s)\b/g, "<t>")

const showJson = async (id: string, store: string) =>
  JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)

const listJson = async (store: string): Promise<Array<{ id: string; status: string; [key: string]: unknown }>> =>
  JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)

/** Polls `weft list` until the run has the status. */
const awaitStatus = async (id: string, store: string, status: string, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const run = (await listJson(store)).find((r) => r.id === id)
    if (run?.status === status) return run
    if (Date.now() > deadline) throw new Error(`run ${id} is ${run?.status}, not ${status}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** The `<stepId> <pid>` lines the sleepy fixture's steps append when they run. */
const effectsOf = (file: string) =>
  Fs.readFileSync(file, "utf8").trim().split("\n").map((line) => {
    const [step, pid] = line.split(" ")
    return { step, pid: Number(pid) }
  })

// The tests wait on sleeps and workers much of the time: they run at once, each on a store of its own.
describe.concurrent("durable primitives", () => {
  describe("the saga example", () => {
    it("a car that cannot be booked cancels the hotel, then the flight: exit 1 and the compensations", async ({ expect }) => {
      const store = storeIn(tempDir())
      const input = JSON.stringify({ id: "trip-2", city: "Oslo", nights: 3, car: "convertible" })
      const r = await weft(["run", example("saga.ts"), "--input", input, "--store", store])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      const id = runIdOf(r.stderr)
      // Live: each compensation starts and succeeds, latest booking first.
      const progress = r.stderr.slice(0, r.stderr.indexOf("✗ book-trip"))
      const order = [
        "✗ book-car",
        "↺ book-hotel (compensation)",
        "hotel HT-trip-2-3n cancelled",
        "✓ book-hotel (compensation)"
      ]
        .concat(["↺ book-flight (compensation)", "flight FL-trip-2 cancelled", "✓ book-flight (compensation)"])
        .map((text) => progress.indexOf(text))
      expect(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]))).toBe(true)

      expect(mask(r.stderr.slice(r.stderr.indexOf("✗ book-trip")), id)).toMatchInlineSnapshot(`
        "✗ book-trip <id> failed in <t>: NoCarAvailable
        book-trip(<run-id>)
        ├─ ✓ book-flight                   <t>
        ├─ ✓ book-hotel                    <t>
        ├─ ✗ book-car                      1 attempt, <t>
        │  └─ 1 NoCarAvailable { city: "Oslo", class: "convertible" }  not retryable
        ├─ ✓ ↺ book-hotel (compensation)   <t>
        └─ ✓ ↺ book-flight (compensation)  <t>
        cause: NoCarAvailable { city: "Oslo", class: "convertible" }
        "
      `)

      const trace = await showJson(id, store)
      expect(trace.run.status).toBe("failed")
      expect(trace.steps.map((s: { stepId: string; kind: string }) => [s.stepId, s.kind])).toEqual([
        ["book-flight", "step"],
        ["book-hotel", "step"],
        ["book-car", "step"],
        ["$undo:book-hotel", "compensation"],
        ["$undo:book-flight", "compensation"]
      ])
      expect(trace.steps[3]).toMatchObject({
        status: "succeeded",
        compensates: "book-hotel",
        attempts: [{ attempt: 1 }]
      })
      expect(trace.steps[4]).toMatchObject({ status: "succeeded", compensates: "book-flight" })
      expect(trace.cause).toMatchObject({ kind: "fail", error: { tag: "NoCarAvailable" } })
    })

    it("a trip that books compensates nothing", async ({ expect }) => {
      const store = storeIn(tempDir())
      const input = JSON.stringify({ id: "trip-1", city: "Oslo", nights: 3, car: "compact" })
      const r = await weft(["run", example("saga.ts"), "--input", input, "--store", store])
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toEqual({ flight: "FL-trip-1", hotel: "HT-trip-1-3n", car: "CR-trip-1-compact" })
      expect(r.stderr).not.toContain("compensation")
    })
  })

  describe("the approval example: signals", () => {
    it(
      "a worker waits for the signal; an invalid payload is refused (exit 2), a valid one wakes the run",
      async ({ expect }) => {
        const store = storeIn(tempDir())
        const start = async (report: Record<string, unknown>) => {
          const r = await weft(["start", example("approval.ts"), "--input", JSON.stringify(report), "--store", store])
          expect(r.code).toBe(0)
          return r.stdout.trim()
        }
        const [waiting, early] = await Promise.all([
          start({ id: "exp-1", employee: "bob", amount: 42.5 }),
          start({ id: "exp-2", employee: "eve", amount: 9 })
        ])

        // Sent before any worker runs: it waits in the run's mailbox.
        const mailed = await weft([
          "signal",
          early,
          "approved",
          "--payload",
          `{"by":"carl","approve":false}`,
          "--store",
          store
        ])
        expect(mailed.code).toBe(0)
        expect(mailed.stdout).toBe(`signal approved delivered to run ${early}: it waits in the run's mailbox\n`)

        const worker = spawnWeft(["worker", example("approval.ts"), "--store", store])
        try {
          await worker.waitFor(new RegExp(`✓ expense-approval ${early} succeeded`))
          const suspended = await awaitStatus(waiting, store, "waiting")
          expect(suspended.leaseOwner).toBeUndefined()
          expect(suspended.reason).toMatch(/^waiting for signal approved until \d{4}-/)
          await worker.waitFor(new RegExp(`⏾ expense-approval ${waiting} suspended, waiting for signal approved until`))
          const [shown, rejected] = await Promise.all([
            weft(["show", waiting, "--store", store]),
            showJson(early, store)
          ])
          // The deadline is an hour away: shown with its date when that is tomorrow (a run after 23:00 UTC).
          expect(shown.stdout).toMatch(
            /◷ ✉ signal approved {2}waiting, times out at (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\dZ \(after 1h\)/
          )
          expect(shown.stdout).not.toContain("deadline")
          expect(rejected.run.output).toEqual({ report: "exp-2", status: "rejected", by: "carl" })

          // An invalid payload and an undeclared signal: exit 2, nothing stored, the run untouched.
          const snapshot = () => Promise.all([listJson(store), showJson(waiting, store)])
          const before = await snapshot()
          const [invalid, undeclared] = await Promise.all([
            weft(["signal", waiting, "approved", "--payload", `{"by":"ann","approve":"yes"}`, "--store", store]),
            weft(["signal", waiting, "rejected", "--payload", "{}", "--store", store])
          ])
          expect(invalid.code).toBe(2)
          expect(invalid.stdout).toBe("")
          expect(invalid.stderr).toMatch(/does not match its schema at approve/)
          expect(undeclared.code).toBe(2)
          expect(undeclared.stderr).toMatch(/declares the signals approved/)
          expect(await snapshot()).toEqual(before)

          const valid = await weft([
            "signal",
            waiting,
            "approved",
            "--payload",
            `{"by":"ann","approve":true}`,
            "--store",
            store
          ])
          expect(valid.code).toBe(0)
          expect(valid.stdout).toBe(`signal approved delivered to run ${waiting}: it was waiting for it and resumes\n`)
          await worker.waitFor(new RegExp(`✓ expense-approval ${waiting} succeeded`))
        } finally {
          worker.child.kill("SIGTERM")
        }
        const r = await worker.done
        expect(r.code).toBe(0)

        const [trace, text] = await Promise.all([
          showJson(waiting, store),
          weft(["show", waiting, "--store", store]).then((shown) => shown.stdout)
        ])
        expect(trace.run.output).toEqual({ report: "exp-1", status: "paid", by: "ann", payment: "pay_exp-1" })
        const signal = trace.steps.find((s: { kind: string }) => s.kind === "signal")
        expect(signal).toMatchObject({
          stepId: "$signal:approved",
          status: "succeeded",
          signal: { name: "approved", outcome: "received", payload: { by: "ann", approve: true } }
        })
        expect(signal.signal.deadline - signal.signal.waitStartedAt).toBeGreaterThanOrEqual(3_600_000)
        expect(trace.steps.find((s: { stepId: string }) => s.stepId === "$deadline").deadlineOf).toBe(
          "$signal:approved"
        )
        expect(text).toMatch(/✓ ✉ signal approved {2}\{ by: "ann", approve: true \}/)
        expect(text).toMatch(/✓ pay$/m)
      },
      60_000
    )
  })

  describe("a durable sleep", () => {
    it("weft run waits out a suspension in its process and finishes", async ({ expect }) => {
      const dir = tempDir()
      const effects = Path.join(dir, "effects")
      const store = storeIn(dir)
      const input = JSON.stringify({ effects, name: "ann", seconds: 6 })
      const r = await weft(["run", fixture("sleepy.ts"), "--input", input, "--store", store])
      expect(r.code).toBe(0)
      const output = JSON.parse(r.stdout)
      expect(output).toMatchObject({ before: "ann is tired", after: "ann rested" })
      expect(output.sleptMillis).toBeGreaterThanOrEqual(6_000)
      const id = runIdOf(r.stderr)
      expect(r.stderr).toContain("⏾ sleeping\n")
      expect(r.stderr).toMatch(/⏾ sleeping until \d{4}-\S+Z: suspended; waiting here/)
      expect(r.stderr).toContain("↻ sleep (from journal)")
      expect(effectsOf(effects).map((e) => e.step)).toEqual(["prepare", "finish"])
      const shown = await weft(["show", id, "--store", store])
      // With its date when the wake time falls on the next day (a run just before midnight UTC).
      expect(shown.stdout).toMatch(/✓ ⏾ sleep until (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\dZ \(6s\)/)
    }, 30_000)

    it(
      "a worker killed while the run sleeps: another worker wakes it on time, the step before ran once",
      async ({ expect }) => {
        const dir = tempDir()
        const effects = Path.join(dir, "effects")
        const store = storeIn(dir)
        const input = JSON.stringify({ effects, name: "bob", seconds: 6 })
        const started = await weft(["start", fixture("sleepy.ts"), "--input", input, "--store", store])
        expect(started.code).toBe(0)
        const id = started.stdout.trim()

        const first = spawnWeft(["worker", fixture("sleepy.ts"), "--store", store])
        try {
          await first.waitFor(new RegExp(`⏾ sleepy ${id} suspended, sleeping until \\d{4}-`))
        } finally {
          first.child.kill("SIGKILL")
        }
        expect((await first.done).signal).toBe("SIGKILL")
        const sleeping = await awaitStatus(id, store, "sleeping")
        expect(sleeping.leaseOwner).toBeUndefined()
        const trace = await showJson(id, store)
        const sleep = trace.steps.find((s: { stepId: string }) => s.stepId === "$sleep")
        expect(sleep.sleep).toMatchObject({ sleeping: true, until: trace.run.wakeAt })
        expect((await weft(["show", id, "--store", store])).stdout).toMatch(
          /◷ ⏾ sleep until (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\dZ \(6s\) {2}sleeping/
        )

        const second = spawnWeft(["worker", fixture("sleepy.ts"), "--store", store])
        try {
          await second.waitFor(new RegExp(`✓ sleepy ${id} succeeded`), 20_000)
        } finally {
          second.child.kill("SIGTERM")
        }
        expect((await second.done).code).toBe(0)
        const done = await showJson(id, store)
        expect(done.run.status).toBe("succeeded")
        expect(done.run.recoveries).toBe(0)
        expect(done.run.output.sleptMillis).toBeGreaterThanOrEqual(6_000)
        const ran = effectsOf(effects)
        expect(ran.map((e) => e.step)).toEqual(["prepare", "finish"])
        expect(ran[0].pid).toBe(first.child.pid)
        expect(ran[1].pid).toBe(second.child.pid)
      },
      40_000
    )
  })
})
