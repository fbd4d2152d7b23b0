/**
 * The `weft` command end to end, as a child process on a real SQLite file: results, failure
 * traces, exit codes, `--json`, every kind of bad input, idempotent starts, Ctrl-C and resume.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { example, fixture, runIdOf, spawnWeft, tempDir, weft } from "./cli.js"

const order = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id, items: [{ sku: "book", quantity: 1 }], card: "4242-4242", ...extra })

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

describe("weft run", () => {
  it("runs the checkout example to success: progress on stderr, result on stdout, exit 0", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("checkout.ts"), "--input", order("o-1"), "--store", storeIn(dir)])
    expect(r.stderr).toContain("▶ checkout")
    expect(r.stderr).toMatch(/→ reserve-stock/)
    expect(r.stderr).toMatch(/✓ charge-card/)
    expect(r.stderr).toMatch(/✓ checkout \S+ succeeded/)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ orderId: "o-1", chargeId: "ch_o-1_1", total: 42 })
  })

  it("reads the input from a file with @path", async () => {
    const dir = tempDir()
    const file = Path.join(dir, "order.json")
    Fs.writeFileSync(file, order("o-file"))
    const r = await weft(["run", example("checkout.ts"), "--input", `@${file}`, "--store", storeIn(dir)])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).orderId).toBe("o-file")
  })

  it("prints the result as data with --json", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("checkout.ts"), "--input", order("o-json"), "--store", storeIn(dir), "--json"])
    expect(r.code).toBe(0)
    const data = JSON.parse(r.stdout)
    expect(data.status).toBe("succeeded")
    expect(data.workflow).toBe("checkout")
    expect(data.output).toEqual({ orderId: "o-json", chargeId: "ch_o-json_1", total: 42 })
  })

  it("a typed failure exits 1 with the cause tree: step, attempt, error tag and fields", async () => {
    const dir = tempDir()
    const r = await weft([
      "run",
      example("checkout.ts"),
      "--input",
      order("o-declined", { card: "4000-0002" }),
      "--store",
      storeIn(dir)
    ])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).toMatch(/✗ checkout \S+ failed/)
    expect(r.stderr).toContain("charge-card")
    expect(r.stderr).toMatch(/CardDeclined \{ code: "insufficient_funds" \}/)
    expect(r.stderr).toMatch(/not retryable/)
  })

  it("a typed failure with --json prints the trace as data", async () => {
    const dir = tempDir()
    const r = await weft([
      "run",
      example("checkout.ts"),
      "--input",
      order("o-declined-json", { card: "4000-0002" }),
      "--store",
      storeIn(dir),
      "--json"
    ])
    expect(r.code).toBe(1)
    const trace = JSON.parse(r.stdout)
    expect(trace.run.status).toBe("failed")
    const charge = trace.steps.find((s: { stepId: string }) => s.stepId === "charge-card")
    expect(charge.status).toBe("failed")
    expect(charge.attempts[0].error.tag).toBe("CardDeclined")
    expect(charge.attempts[0].error.fields).toEqual({ code: "insufficient_funds" })
  })

  it("a defect exits 3, is not retried, and its stack points at the user's file and line", async () => {
    const dir = tempDir()
    const r = await weft([
      "run",
      example("checkout.ts"),
      "--input",
      order("o-bug", { coupon: "BUG" }),
      "--store",
      storeIn(dir)
    ])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("TypeError")
    expect(r.stderr).toMatch(/examples\/checkout\.ts:\d+/)
    expect(r.stderr.match(/→ apply-coupon/g)?.length).toBe(1)
  })

  it("retries a transient failure with backoff, then succeeds", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("flaky-dependency.ts"), "--input", `{"failures":2}`, "--store", storeIn(dir)])
    expect(r.code).toBe(0)
    expect(r.stderr.match(/ServiceUnavailable/g)?.length).toBe(2)
    expect(r.stderr).toMatch(/retrying in \d+ms/)
    expect(JSON.parse(r.stdout)).toEqual({ sku: "book", available: 7 })
    const show = await weft(["show", runIdOf(r.stderr), "--store", storeIn(dir), "--json"])
    const trace = JSON.parse(show.stdout)
    expect(trace.steps[0].attempts.map((a: { outcome: string }) => a.outcome)).toEqual([
      "failure",
      "failure",
      "success"
    ])
    expect(trace.steps[0].attempts[0].delayMillis).toBeGreaterThanOrEqual(180)
    expect(trace.steps[0].attempts[1].delayMillis).toBeGreaterThanOrEqual(360)
  })

  it("gives up after the policy's attempts with the last typed error", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("flaky-dependency.ts"), "--input", `{"failures":9}`, "--store", storeIn(dir)])
    expect(r.code).toBe(1)
    expect(r.stderr.match(/→ check-inventory/g)?.length).toBe(5)
    expect(r.stderr).toMatch(/attempts exhausted/)
  }, 30_000)

  it("a step over its timeout fails with StepTimeout after its retries", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("timeout.ts"), "--input", `{"delayMs":1000}`, "--store", storeIn(dir)])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("StepTimeout")
    expect(r.stderr.match(/→ fetch-report/g)?.length).toBe(2)
  })

  it("a circuit breaker opens: refused attempts show CircuitOpen with its fields, and the run recovers", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("circuit-breaker.ts"), "--input", `{"failures":2}`, "--store", storeIn(dir)])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ sku: "book", price: 1299 })
    expect(r.stderr).toMatch(/circuit breaker "pricing-service" opened after 2 failures within 1m/)
    expect(r.stderr).toMatch(
      /✗ look-up-price attempt 3: CircuitOpen \{ breaker: "pricing-service", retryAfter: \d+ \} — retrying in \S+/
    )
    expect(r.stderr).toMatch(/circuit breaker "pricing-service" closed: trial calls succeeded/)
    const show = await weft(["show", runIdOf(r.stderr), "--store", storeIn(dir), "--json"])
    const attempts = JSON.parse(show.stdout).steps[0].attempts
    expect(attempts.map((a: { error?: { tag: string } }) => a.error?.tag)).toEqual([
      "ServiceUnavailable",
      "ServiceUnavailable",
      "CircuitOpen",
      undefined
    ])
    expect(attempts[2].error.fields).toMatchObject({ breaker: "pricing-service" })
    // The retry waited at least what the breaker asked.
    expect(attempts[2].delayMillis).toBeGreaterThanOrEqual(attempts[2].error.fields.retryAfter)
  })

  it("a second start with the same idempotency key returns the recorded run without running it again", async () => {
    const dir = tempDir()
    const first = await weft(["run", example("checkout.ts"), "--input", order("o-once"), "--store", storeIn(dir)])
    const second = await weft(["run", example("checkout.ts"), "--input", order("o-once"), "--store", storeIn(dir)])
    expect(second.code).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(second.stderr).toMatch(/already exists and has succeeded/)
    expect(second.stderr).not.toMatch(/→ charge-card/)
    const list = await weft(["list", "--store", storeIn(dir), "--json"])
    expect(JSON.parse(list.stdout)).toHaveLength(1)
  })

  it("provides the module's exported layer to the steps", async () => {
    const r = await weft(["run", fixture("with-layer.ts"), "--input", `{"name":"ann"}`, "--store", "memory:"])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toBe("good morning, ann")
  })

  it("picks a workflow by name in a module that exports several", async () => {
    const dir = tempDir()
    const r = await weft(["run", fixture("two.ts"), "bye", "--input", `{"name":"ann"}`, "--store", storeIn(dir)])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toBe("bye ann")
  })
})

describe("bad input: exit 2, a clear message, nothing written", () => {
  const expectNothingWritten = (dir: string) => expect(Fs.existsSync(Path.join(dir, "weft.db"))).toBe(false)

  it("malformed JSON", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("checkout.ts"), "--input", "{id: 1", "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--input is not valid JSON/)
    expectNothingWritten(dir)
  })

  it("an input file that does not exist", async () => {
    const dir = tempDir()
    const r = await weft([
      "run",
      example("checkout.ts"),
      "--input",
      "@/nonexistent/order.json",
      "--store",
      storeIn(dir)
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot read input file/)
    expectNothingWritten(dir)
  })

  it("input that fails the schema names the field and why", async () => {
    const dir = tempDir()
    const r = await weft([
      "run",
      example("checkout.ts"),
      "--input",
      `{"id":"x","items":[{"sku":"book","quantity":-1}],"card":"4242"}`,
      "--store",
      storeIn(dir)
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/input does not match workflow "checkout" at items\[0\]\.quantity/)
    expect(r.stderr).toMatch(/positive/)
    expectNothingWritten(dir)
  })

  it("a missing input", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("checkout.ts"), "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/needs an input/)
    expectNothingWritten(dir)
  })

  it("an unknown workflow name lists the known ones", async () => {
    const dir = tempDir()
    const r = await weft(["run", fixture("two.ts"), "nope", "--input", "{}", "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/unknown workflow "nope".*(hello, bye|bye, hello)/)
    expectNothingWritten(dir)
  })

  it("a module with several workflows and no name", async () => {
    const r = await weft(["run", fixture("two.ts"), "--input", "{}", "--store", "memory:"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/exports 2 workflows: name one of (hello, bye|bye, hello)/)
  })

  it("a module that does not exist", async () => {
    const dir = tempDir()
    const r = await weft(["run", "examples/nope.ts", "--input", "{}", "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/module not found: examples\/nope\.ts/)
    expectNothingWritten(dir)
  })

  it("a module that fails to import shows the import error", async () => {
    const dir = tempDir()
    const r = await weft(["run", fixture("throws.ts"), "--input", "{}", "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/failed to load/)
    expect(r.stderr).toContain("configuration missing: PAYMENTS_URL is not set")
    expect(r.stderr).toMatch(/throws\.ts:\d+/)
    expectNothingWritten(dir)
  })

  it("a module outside any project cannot resolve @weft/core, and says so", async () => {
    const dir = tempDir()
    const module = Path.join(dir, "outside.ts")
    Fs.writeFileSync(module, `import { Workflow } from "@weft/core"\nexport const w = Workflow\n`)
    const r = await weft(["run", module, "--input", "{}", "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/imports "@weft\/core", which cannot be resolved/)
    expectNothingWritten(dir)
  })

  it("a module that exports no workflow", async () => {
    const dir = tempDir()
    const r = await weft(["run", fixture("empty.ts"), "--input", "{}", "--store", storeIn(dir)])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/exports no workflow/)
    expectNothingWritten(dir)
  })

  it("an invalid --store", async () => {
    const r = await weft(["run", example("checkout.ts"), "--input", order("x"), "--store", "mysql://db"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/invalid store "mysql:\/\/db": use sqlite:PATH/)
  })

  it("an invalid WEFT_STORE", async () => {
    const r = await weft(["list"], { env: { WEFT_STORE: "nonsense" } })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/invalid store "nonsense"/)
  })

  it("an unknown run id, for show and resume", async () => {
    const dir = tempDir()
    const show = await weft(["show", "no-such-run", "--store", storeIn(dir)])
    expect(show.code).toBe(2)
    expect(show.stderr).toMatch(/no run with id no-such-run/)
    const resume = await weft(["resume", "no-such-run", "--store", storeIn(dir)])
    expect(resume.code).toBe(2)
    expect(resume.stderr).toMatch(/no run with id no-such-run/)
  })

  it("an unknown command and an unknown flag", async () => {
    const a = await weft(["frobnicate"])
    expect(a.code).toBe(2)
    expect(a.stderr).toMatch(/unknown command "frobnicate"/)
    const b = await weft(["run", example("checkout.ts"), "--bogus"])
    expect(b.code).toBe(2)
    expect(b.stderr).toMatch(/--bogus/)
    const c = await weft(["list", "--input", "{}"])
    expect(c.code).toBe(2)
    expect(c.stderr).toMatch(/weft list does not take --input/)
  })

  it("a start with an existing id and a different input is a conflict that names the run", async () => {
    const dir = tempDir()
    const first = await weft([
      "run",
      fixture("two.ts"),
      "hello",
      "--input",
      `{"name":"a"}`,
      "--id",
      "fixed",
      "--store",
      storeIn(dir)
    ])
    expect(first.code).toBe(0)
    const second = await weft([
      "run",
      fixture("two.ts"),
      "hello",
      "--input",
      `{"name":"b"}`,
      "--id",
      "fixed",
      "--store",
      storeIn(dir)
    ])
    expect(second.code).toBe(2)
    expect(second.stderr).toMatch(/run fixed already exists/)
  })
})

describe("list, show, workflows, help", () => {
  it("list and show a finished run", async () => {
    const dir = tempDir()
    const r = await weft([
      "run",
      example("checkout.ts"),
      "--input",
      order("o-show", { card: "4000-1" }),
      "--store",
      storeIn(dir)
    ])
    const id = runIdOf(r.stderr)
    const list = await weft(["list", "--store", storeIn(dir)])
    expect(list.code).toBe(0)
    expect(list.stdout).toContain(id)
    expect(list.stdout).toContain("failed")
    const failed = await weft(["list", "--status", "succeeded", "--store", storeIn(dir), "--json"])
    expect(JSON.parse(failed.stdout)).toEqual([])
    const show = await weft(["show", id, "--store", storeIn(dir)])
    expect(show.code).toBe(0)
    expect(show.stdout).toContain("reserve-stock")
    expect(show.stdout).toContain("CardDeclined")
  })

  it("workflows lists a module's workflows with their schemas", async () => {
    const r = await weft(["workflows", example("checkout.ts")])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("checkout")
    expect(r.stdout).toMatch(/input: +\{ readonly id: string/)
    const json = await weft(["workflows", example("checkout.ts"), "--json"])
    const data = JSON.parse(json.stdout)
    expect(data[0].name).toBe("checkout")
    expect(data[0].idempotencyKey).toBe(true)
  })

  it("help for every command, with an example", async () => {
    const main = await weft(["--help"])
    expect(main.code).toBe(0)
    expect(main.stdout).toMatchSnapshot()
    for (
      const command of ["run", "resume", "list", "show", "workflows", "start", "worker", "signal", "cancel", "retry"]
    ) {
      const r = await weft([command, "--help"])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`Usage: weft ${command}`)
      expect(r.stdout).toContain("Example:")
    }
  })
})

describe("Ctrl-C and resume", () => {
  it("SIGINT interrupts the step (finalizers run), exits 130, and the run resumes to success", async () => {
    const dir = tempDir()
    const marker = Path.join(dir, "marker")
    const p = spawnWeft([
      "run",
      fixture("slow.ts"),
      "--input",
      JSON.stringify({ marker, ms: 60_000 }),
      "--store",
      storeIn(dir)
    ])
    await p.waitFor(/→ slow/)
    p.child.kill("SIGINT")
    const r = await p.done
    expect(r.code).toBe(130)
    expect(Fs.readFileSync(marker, "utf8")).toBe("finalizer ran")
    const id = runIdOf(r.stderr)
    expect(r.stderr).toContain(`weft resume ${id}`)
    const show = JSON.parse((await weft(["show", id, "--store", storeIn(dir), "--json"])).stdout)
    expect(show.run.status).toBe("queued")
    expect(
      show.steps.filter((s: { status: string }) => s.status === "succeeded").map((s: { stepId: string }) => s.stepId)
    )
      .toEqual(["first"])
    const resumed = await weft(["resume", id, "--store", storeIn(dir)])
    expect(resumed.stderr).toMatch(/↻ first/)
    expect(resumed.code).toBe(0)
  }, 60_000)
})
