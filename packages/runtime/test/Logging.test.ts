/**
 * Structured logs: the formatters (one valid JSON object or logfmt record per line, fields present,
 * the cause in full with the typed error's fields), the level filter, and the context the runtime
 * puts on every line: the run's id, workflow and correlation id from the engine, the step and attempt
 * from the step runner (inherited by the user's own `Effect.log` calls), the worker's id.
 */
import { describe, expect, it } from "@effect/vitest"
import { Retry, Step, Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.js"
import * as Engine from "../src/Engine.js"
import { StoreUnavailable } from "../src/Errors.js"
import * as Logging from "../src/Logging.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import { Store } from "../src/Store.js"
import * as Worker from "../src/Worker.js"
import { awaitStatus, final } from "./runs.js"

class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}
class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { n: Schema.Number }) {
  readonly retryable = true
}

/** A logger layer whose lines land in an array. */
const capture = (format: Logging.Format, level?: Logging.Level) => {
  const lines: Array<string> = []
  return { lines, layer: Logging.layer({ format, level, write: (line) => void lines.push(line) }) }
}

/** Every line as JSON; fails the test on a line that is not one JSON object. */
const parseAll = (lines: ReadonlyArray<string>): Array<Record<string, unknown>> =>
  lines.map((line) => {
    expect(line).not.toContain("\n")
    const parsed = JSON.parse(line) as unknown
    expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed), line).toBe(true)
    return parsed as Record<string, unknown>
  })

/** A strict logfmt reader: the whole line is `key=value` pairs (values quoted as JSON strings when needed). */
const parseLogfmt = (line: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const pair = /([^\s="]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))/y
  let at = 0
  while (at < line.length) {
    pair.lastIndex = at
    const match = pair.exec(line)
    if (match === null) throw new Error(`not logfmt at ${at}: ${line}`)
    out[match[1]] = match[2] !== undefined ? JSON.parse(`"${match[2]}"`) as string : match[3]
    at = pair.lastIndex
    if (at < line.length && line[at++] !== " ") throw new Error(`not logfmt at ${at - 1}: ${line}`)
  }
  return out
}

describe("Logging formats", () => {
  it.effect("json: one object per line with timestamp, level, message and every annotation as a field", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      yield* Effect.log("charged", "card").pipe(Effect.annotateLogs({ runId: "r-1", attempt: 2, nested: { a: [1] } }))
      yield* Effect.logWarning("multi\nline \"quoted\"")
      const [first, second] = parseAll(lines)
      expect(first).toMatchObject({
        level: "info",
        message: "charged card",
        runId: "r-1",
        attempt: 2,
        nested: { a: [1] }
      })
      expect(new Date(first.timestamp as string).toISOString()).toBe(first.timestamp)
      expect(first).not.toHaveProperty("cause")
      expect(second).toMatchObject({ level: "warning", message: "multi\nline \"quoted\"" })
    }).pipe(Effect.provide(layer))
  })

  it.effect("json: a typed failure is the cause in full and the error's tag and fields", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      yield* Effect.logError("charging failed", Cause.fail(new CardDeclined({ code: "insufficient_funds" })))
      const [line] = parseAll(lines)
      expect(line.message).toBe("charging failed")
      expect(line.error).toEqual({ _tag: "CardDeclined", code: "insufficient_funds", message: expect.any(String) })
      expect(line.cause).toContain("CardDeclined")
      expect(line.cause).toContain("insufficient_funds")
    }).pipe(Effect.provide(layer))
  })

  it.effect("json: a defect's cause chain and stack are in the cause; the message is not polluted by it", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      const root = new Error("connection reset by peer")
      yield* Effect.logError("step crashed", Cause.die(new Error("could not charge", { cause: root })))
      const [line] = parseAll(lines)
      expect(line.message).toBe("step crashed")
      expect(line.cause).toContain("could not charge")
      expect(line.cause).toContain("connection reset by peer")
      expect(line.cause).toMatch(/at .*Logging\.test\.ts/)
      expect(line).not.toHaveProperty("error")
    }).pipe(Effect.provide(layer))
  })

  it.effect("json: values that JSON cannot hold are made safe, and annotations cannot overwrite the record's fields", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      const cyclic: Record<string, unknown> = { name: "loop" }
      cyclic.self = cyclic
      yield* Effect.log("odd values").pipe(
        Effect.annotateLogs({ big: 10n ** 20n, cyclic, level: "mine", when: new Date(0), nan: Number.NaN })
      )
      const [line] = parseAll(lines)
      expect(line).toMatchObject({
        level: "info",
        _level: "mine",
        big: "100000000000000000000",
        cyclic: { name: "loop", self: "[Circular]" },
        when: "1970-01-01T00:00:00.000Z",
        nan: "NaN"
      })
    }).pipe(Effect.provide(layer))
  })

  it.effect("logfmt: one line of key=value pairs with the same fields, quoted and escaped", () => {
    const { layer, lines } = capture("logfmt")
    return Effect.gen(function*() {
      yield* Effect.logError("charge failed", Cause.fail(new CardDeclined({ code: "expired" }))).pipe(
        Effect.annotateLogs({ runId: "r 1", stepId: "charge" })
      )
      expect(lines).toHaveLength(1)
      expect(lines[0]).not.toContain("\n")
      const fields = parseLogfmt(lines[0])
      expect(fields).toMatchObject({ level: "error", message: "charge failed", runId: "r 1", stepId: "charge" })
      expect(fields.cause).toContain("CardDeclined")
      expect(JSON.parse(fields.error)).toMatchObject({ _tag: "CardDeclined", code: "expired" })
    }).pipe(Effect.provide(layer))
  })

  it.effect("pretty: the level and message, the annotations after it, the cause indented below", () => {
    const { layer, lines } = capture("pretty")
    return Effect.gen(function*() {
      yield* Effect.log("receipt sent").pipe(Effect.annotateLogs({ runId: "r-1", stepId: "send" }))
      yield* Effect.logWarning("retrying", Cause.fail(new Flaky({ n: 1 })))
      expect(lines[0]).toBe("    info: receipt sent  runId=r-1 stepId=send")
      expect(lines[1].split("\n")[0]).toBe("    warning: retrying")
      expect(lines[1].split("\n")[1]).toMatch(/^ {6}Flaky/)
    }).pipe(Effect.provide(layer))
  })

  it.effect("pretty without annotations is the line weft run prints beside its progress", () => {
    const lines: Array<string> = []
    return Effect.gen(function*() {
      yield* Effect.log("receipt sent").pipe(Effect.annotateLogs({ runId: "r-1" }))
      expect(lines).toEqual(["    info: receipt sent"])
    }).pipe(
      Effect.provide(Logging.layer({ format: "pretty", annotations: false, write: (line) => void lines.push(line) }))
    )
  })

  // Each in a run of its own: Effect.provide of a logger layer leaves the logger installed in the fiber.
  it("the level filters: warning drops info and debug, none drops everything, debug keeps debug", async () => {
    const logAll = Effect.all([Effect.logDebug("d"), Effect.logInfo("i"), Effect.logWarning("w"), Effect.logError("e")])
    const at = async (level: Logging.Level) => {
      const { layer, lines } = capture("json", level)
      await Effect.runPromise(Effect.provide(logAll, layer))
      return parseAll(lines).map((l) => l.level)
    }
    expect(await at("warning")).toEqual(["warning", "error"])
    expect(await at("none")).toEqual([])
    expect(await at("debug")).toEqual(["debug", "info", "warning", "error"])
    expect(await at("info")).toEqual(["info", "warning", "error"])
  })

  it("knows its formats and levels", () => {
    expect(Logging.formats.filter(Logging.isFormat)).toEqual(["json", "logfmt", "pretty"])
    expect(Logging.isFormat("xml")).toBe(false)
    expect(Logging.isLevel("warning")).toBe(true)
    expect(Logging.isLevel("warn")).toBe(false)
  })
})

describe("Log context from the runtime", () => {
  const charge = Step.make({
    name: "charge",
    success: Schema.String,
    error: Flaky,
    retry: Retry.fixed({ delay: "0 millis", attempts: 3 }),
    run: () =>
      Effect.gen(function*() {
        const { attempt } = yield* Step.context
        yield* Effect.log(`charging, attempt ${attempt}`)
        if (attempt === 1) return yield* Effect.fail(new Flaky({ n: attempt }))
        return "ch_1"
      })
  })
  const child = Workflow.make({
    name: "receipt",
    input: Schema.String,
    success: Schema.String,
    run: (chargeId) => Step.run("send", Effect.as(Effect.log(`receipt for ${chargeId}`), chargeId))
  })
  const checkout = Workflow.make({
    name: "checkout",
    input: Schema.String,
    success: Schema.String,
    error: Flaky,
    run: () => Effect.flatMap(charge(), (chargeId) => Workflow.child(child, chargeId))
  })

  it.live("every line of a run carries runId, workflow and correlationId; a step's lines its stepId and attempt", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      const client = yield* Client.Client
      const store = yield* Store
      const { runId } = yield* client.start(checkout, "order-1", { correlationId: "req-42" })
      expect((yield* client.status(runId)).correlationId).toBe("req-42")
      yield* Runner.claimAndExecute(checkout, runId)
      const records = parseAll(lines)
      const userLines = records.filter((r) => String(r.message).startsWith("charging"))
      expect(userLines).toEqual([
        expect.objectContaining({
          message: "charging, attempt 1",
          runId,
          workflow: "checkout",
          correlationId: "req-42",
          stepId: "charge",
          attempt: 1
        }),
        expect.objectContaining({ message: "charging, attempt 2", stepId: "charge", attempt: 2 })
      ])
      // The child run has its own id and workflow, and its parent's correlation id.
      const childLine = records.find((r) => String(r.message).startsWith("receipt for"))
      const childRun = (yield* store.listRuns({ workflow: "receipt" }))[0]
      expect(childRun.correlationId).toBe("req-42")
      expect(childLine).toMatchObject({
        runId: childRun.id,
        workflow: "receipt",
        correlationId: "req-42",
        stepId: "send",
        attempt: 1
      })
    }).pipe(Effect.provide(Layer.mergeAll(Layer.provideMerge(Client.layer, MemoryStore.layer), layer)))
  })

  it.live("a run started without a correlation id has none, and its lines carry none", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      const client = yield* Client.Client
      const { runId } = yield* client.start(child, "ch_9")
      expect((yield* client.status(runId)).correlationId).toBeUndefined()
      yield* Runner.claimAndExecute(child, runId)
      const line = parseAll(lines).find((r) => r.message === "receipt for ch_9")
      expect(line).toMatchObject({ runId, workflow: "receipt", stepId: "send" })
      expect(line).not.toHaveProperty("correlationId")
    }).pipe(Effect.provide(Layer.mergeAll(Layer.provideMerge(Client.layer, MemoryStore.layer), layer)))
  })

  it.live("a worker's runs log with its workerId", () => {
    const { layer, lines } = capture("json")
    return Effect.gen(function*() {
      const client = yield* Client.Client
      const { runId } = yield* client.start(child, "ch_7", { correlationId: "req-7" })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Worker.start({ workflows: [child], owner: "worker-a", pollInterval: "20 millis" })
        yield* awaitStatus(runId, final)
      }))
      const line = parseAll(lines).find((r) => r.message === "receipt for ch_7")
      expect(line).toMatchObject({ runId, workerId: "worker-a", correlationId: "req-7", stepId: "send", attempt: 1 })
    }).pipe(Effect.provide(Layer.mergeAll(Layer.provideMerge(Client.layer, MemoryStore.layer), layer)))
  })

  it.live("the engine's storage warnings carry the store's error as their cause, not pasted into the message", () => {
    const { layer, lines } = capture("json")
    let failures = 1
    const flakyStore = Layer.effect(
      Store,
      Effect.map(Store, (store) => ({
        ...store,
        readJournal: (runId: string) =>
          Effect.suspend(() =>
            failures-- > 0
              ? Effect.fail(new StoreUnavailable({ operation: "readJournal", detail: "connection refused" }))
              : store.readJournal(runId)
          )
      }))
    ).pipe(Layer.provide(MemoryStore.layer))
    return Effect.gen(function*() {
      const client = yield* Client.Client
      const store = yield* Store
      const { runId } = yield* client.start(child, "ch_1", { correlationId: "req-1" })
      const run = yield* store.claimRun({ id: runId, owner: "w1", leaseMillis: 30_000, now: Date.now() })
      yield* Engine.execute(child, run, { owner: "w1", storageRetry: Schedule.recurs(3) })
      const warning = parseAll(lines).find((r) => r.level === "warning")
      expect(warning).toMatchObject({
        runId,
        workflow: "receipt",
        correlationId: "req-1",
        error: { _tag: "StoreUnavailable", operation: "readJournal", detail: "connection refused" }
      })
      expect(warning?.message).not.toContain("connection refused")
      expect(warning?.cause).toContain("connection refused")
    }).pipe(Effect.provide(Layer.mergeAll(Layer.provideMerge(Client.layer, flakyStore), layer)))
  })
})
