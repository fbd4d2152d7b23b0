/**
 * Structured logs end to end, as child processes on a real SQLite file: `weft run` and `weft worker`
 * with `--log-format json` (a worker's default when stderr is not a terminal) write nothing on stderr
 * that is not a JSON record; the user's own log lines carry the run, step, attempt, worker and
 * correlation id; a retried attempt's record carries its error; a child run has its parent's
 * correlation id; `weft show` prints it; bad values are usage errors.
 */
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { fixture, spawnWeft, tempDir, weft } from "./cli.js"

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

type LogRecord = Record<string, unknown> & { readonly message: string; readonly level: string }

/** Every line of stderr as a JSON object; fails on any line that is not one. */
const records = (stderr: string): Array<LogRecord> => {
  const lines = stderr.split("\n").filter((line) => line !== "")
  expect(lines.length).toBeGreaterThan(0)
  return lines.map((line) => {
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      throw new Error(`a stderr line is not JSON: ${line}\n--- stderr:\n${stderr}`)
    }
    expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed), line).toBe(true)
    const record = parsed as LogRecord
    expect(new Date(record.timestamp as string).toISOString()).toBe(record.timestamp)
    expect(["debug", "info", "warning", "error"]).toContain(record.level)
    expect(typeof record.message).toBe("string")
    return record
  })
}

/** The records of the fixture's own `Effect.log` calls. */
const userLines = (all: ReadonlyArray<LogRecord>) =>
  all.filter((r) => r.message.startsWith("fetching the price") || r.message.startsWith("audit:"))

describe("structured logs", () => {
  it("weft run --log-format json: every stderr line is JSON with the run's, step's and attempt's context", async () => {
    const store = storeIn(tempDir())
    const r = await weft([
      "run",
      fixture("logs.ts"),
      "pricing",
      "--input",
      `{"sku":"book"}`,
      "--correlation-id",
      "req-7f3a",
      "--log-format",
      "json",
      "--store",
      store
    ])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ sku: "book", price: 42 })
    const all = records(r.stderr)
    const started = all.find((l) => l.message === "run started")
    const runId = started?.runId as string
    expect(runId).toEqual(expect.any(String))
    // Attempt 1 logs and fails; attempt 2 logs and succeeds; the child logs at warning.
    expect(userLines(all)).toEqual([
      expect.objectContaining({
        message: "fetching the price of book",
        runId,
        workflow: "pricing",
        stepId: "fetch-price",
        attempt: 1,
        correlationId: "req-7f3a"
      }),
      expect.objectContaining({ runId, stepId: "fetch-price", attempt: 2, correlationId: "req-7f3a" }),
      expect.objectContaining({
        message: "audit: book costs 42",
        level: "warning",
        runId: `${runId}/$child:audit`,
        workflow: "audit",
        stepId: "record",
        attempt: 1,
        correlationId: "req-7f3a"
      })
    ])
    // The failed attempt: its typed error as fields and its cause in full.
    const retrying = all.find((l) => l.message === "step attempt failed; retrying")
    expect(retrying).toMatchObject({
      level: "warning",
      runId,
      stepId: "fetch-price",
      attempt: 1,
      error: { _tag: "Unavailable", service: "prices" }
    })
    expect(retrying?.cause).toContain("Unavailable")
    // Every line about a run says which run, with its correlation id.
    for (const line of all.filter((l) => l.runId !== undefined)) {
      expect(line, JSON.stringify(line)).toMatchObject({ correlationId: "req-7f3a", workflow: expect.any(String) })
    }
    expect(all.at(-1)).toMatchObject({ message: "run succeeded", runId, durationMillis: expect.any(Number) })

    // The correlation id is stored with the run (and its child), and shown.
    const shown = await weft(["show", runId, "--store", store, "--json"])
    expect(JSON.parse(shown.stdout).run.correlationId).toBe("req-7f3a")
    const child = await weft(["show", `${runId}/$child:audit`, "--store", store, "--json"])
    expect(JSON.parse(child.stdout).run.correlationId).toBe("req-7f3a")
    const text = await weft(["show", runId, "--store", store])
    expect(text.stdout).toMatch(/correlation\s+req-7f3a/)
  }, 30_000)

  it("weft worker writes JSON by default when stderr is not a terminal, each line with its workerId", async () => {
    const store = storeIn(tempDir())
    const started = await weft([
      "start",
      fixture("logs.ts"),
      "pricing",
      "--input",
      `{"sku":"pen"}`,
      "--correlation-id",
      "req-42",
      "--store",
      store
    ])
    expect(started.code).toBe(0)
    const runId = started.stdout.trim()
    // No --log-format: the default for a worker whose stderr is a pipe.
    const worker = spawnWeft(["worker", fixture("logs.ts"), "--store", store], { env: { WEFT_LOG_FORMAT: "" } })
    try {
      await worker.waitFor(new RegExp(`"message":"run succeeded","workerId":"[^"]+","runId":"${runId}"`))
    } finally {
      worker.child.kill("SIGTERM")
    }
    const r = await worker.done
    expect(r.code).toBe(0)
    const all = records(r.stderr)
    const workerId = all[0].workerId
    expect(all[0]).toMatchObject({ message: "worker started", workerId: expect.any(String) })
    for (const line of all) expect(line, JSON.stringify(line)).toMatchObject({ workerId })
    expect(userLines(all)).toEqual([
      expect.objectContaining({
        runId,
        workflow: "pricing",
        stepId: "fetch-price",
        attempt: 1,
        correlationId: "req-42"
      }),
      expect.objectContaining({ runId, stepId: "fetch-price", attempt: 2, correlationId: "req-42" }),
      expect.objectContaining({ workflow: "audit", stepId: "record", attempt: 1, correlationId: "req-42" })
    ])
    // The parent is claimed again once its child has ended: a "run started" per claim.
    expect(new Set(all.filter((l) => l.message === "run started").map((l) => l.workflow))).toEqual(
      new Set(["audit", "pricing"])
    )
  }, 30_000)

  it("logfmt writes one key=value record per line; --log-level none writes no log line at all", async () => {
    const store = storeIn(tempDir())
    const input = (sku: string) => ["--input", JSON.stringify({ sku }), "--store", store]
    const logfmt = await weft(["run", fixture("logs.ts"), "pricing", ...input("a"), "--log-format", "logfmt"])
    expect(logfmt.code).toBe(0)
    const lines = logfmt.stderr.trimEnd().split("\n")
    for (const line of lines) expect(line).toMatch(/^timestamp=\S+ level=(info|warning) message=("[^"]*"|\S+)( |$)/)
    expect(lines.find((l) => l.includes("fetching the price of a"))).toMatch(/stepId=fetch-price attempt=1/)

    const none = await weft([
      "run",
      fixture("logs.ts"),
      "pricing",
      ...input("b"),
      "--log-format",
      "json",
      "--log-level",
      "none"
    ])
    expect(none.code).toBe(0)
    expect(none.stderr).toBe("")
    expect(JSON.parse(none.stdout)).toEqual({ sku: "b", price: 42 })

    // A failure of the command itself is a record too, whatever the level.
    const missing = await weft(["show", "no-such-run", "--store", store, "--log-format", "json", "--log-level", "none"])
    expect(missing.code).toBe(2)
    expect(records(missing.stderr)).toEqual([
      expect.objectContaining({ level: "error", message: "no run with id no-such-run" })
    ])
  }, 30_000)

  it(
    "bad --log-format, --log-level, $WEFT_LOG_FORMAT and --correlation-id are usage errors that list what is allowed",
    async () => {
      const store = storeIn(tempDir())
      const format = await weft(["list", "--store", store, "--log-format", "xml"])
      expect(format.code).toBe(2)
      expect(format.stderr).toBe(`weft: --log-format must be one of json, logfmt, pretty, got "xml"\n`)
      const level = await weft(["worker", fixture("logs.ts"), "--store", store, "--log-level", "verbose"])
      expect(level.code).toBe(2)
      expect(level.stderr).toBe(`weft: --log-level must be one of debug, info, warning, error, none, got "verbose"\n`)
      const env = await weft(["list", "--store", store], { env: { WEFT_LOG_FORMAT: "yaml" } })
      expect(env.code).toBe(2)
      expect(env.stderr).toContain(`$WEFT_LOG_FORMAT must be one of json, logfmt, pretty, got "yaml"`)
      const empty = await weft([
        "start",
        fixture("logs.ts"),
        "pricing",
        "--input",
        `{"sku":"x"}`,
        "--correlation-id",
        " ",
        "--store",
        store
      ])
      expect(empty.code).toBe(2)
      expect(empty.stderr).toMatch(/--correlation-id must be 1 to 200 printable characters/)
      expect(JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)).toEqual([])
      const notHere = await weft(["show", "x", "--correlation-id", "c", "--store", store])
      expect(notHere.code).toBe(2)
      expect(notHere.stderr).toMatch(/weft show does not take --correlation-id/)
    },
    30_000
  )
})
