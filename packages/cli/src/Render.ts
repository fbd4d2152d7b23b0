/**
 * The text the CLI prints about runs: the failure tree of a run (steps, attempts and the full
 * Cause), the timeline of `weft show`, the table of `weft list` and the live progress lines. Pure
 * functions of the stored history; ANSI colors only when asked.
 */
import type { Execution } from "@weft/core"
import type { Store } from "@weft/runtime"
import type { AttemptView, CauseView, ErrorView, StepView, Trace } from "./Trace.js"
import { summary } from "./Trace.js"

/** How to render: `color` turns ANSI colors on (a TTY, and NO_COLOR unset). */
export interface Options {
  readonly color: boolean
}

/** How to render a progress line: `now` (epoch milliseconds, default the clock) dates waits. */
export interface ProgressOptions extends Options {
  readonly now?: number | undefined
}

/**
 * The tree of a run that did not succeed: a header line, the run with its steps and their attempts,
 * then its Cause with stacks and `cause` chains.
 *
 * @example
 * ✗ checkout 3f2a6c1e failed in 2.3s: CardDeclined
 * checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
 * ├─ ✓ reserve-stock  12ms
 * └─ ✗ charge-card    3 attempts, 2.3s
 *    ├─ 1 GatewayTimeout { afterMs: 1000 }             retried after 200ms
 *    ├─ 2 GatewayTimeout { afterMs: 1000 }             retried after 400ms
 *    └─ 3 CardDeclined { code: "insufficient_funds" }  not retryable
 * cause: CardDeclined { code: "insufficient_funds" }
 */
export const failureTree = (trace: Trace, options: Options): string => {
  const p = painter(options)
  const { run } = trace
  const took = run.durationMillis === undefined ? "" : ` in ${formatDuration(run.durationMillis)}`
  const why = run.status === "failed" || run.status === "cancelled"
    ? `: ${summary(trace)}`
    : run.reason === undefined
    ? ""
    : `: ${run.reason}`
  const lines = [
    `${statusSymbol(run.status, p)} ${run.workflow} ${shortId(run.id)} ${run.status}${took}${p("bold", why)}`,
    `${run.workflow}(${run.id})`
  ]
  if (trace.steps.length === 0) lines.push(`└─ ${p("dim", "(no steps ran)")}`)
  const stepRows = align(
    trace.steps.map((step, i) => [`${branch(i, trace.steps.length)}${stepLabel(step, p)}`, stepNote(step, p)])
  )
  trace.steps.forEach((step, i) => {
    lines.push(stepRows[i])
    const under = continuation(i, trace.steps.length)
    if (showsAttempts(step)) {
      const rows = align(step.attempts.map((attempt, j) => [
        `${under}${branch(j, step.attempts.length)}${attempt.attempt} ${attemptText(attempt, p)}`,
        attemptNote(step, attempt, j === step.attempts.length - 1, p)
      ]))
      lines.push(...rows)
    } else if (step.status === "failed" && step.cause !== undefined) {
      const block = causeBlock(step.cause, p)
      lines.push(`${under}└─ ${block[0]}`, ...block.slice(1).map((line) => `${under}   ${line}`))
    }
  })
  if (trace.cause !== undefined) lines.push(...causePart(trace.cause, p))
  return lines.join("\n")
}

/**
 * The history of a run for `weft show`: a header (status, version, times, the reason a run is not
 * progressing, recoveries), each step and attempt with its offset from the run's start and its
 * duration, and the Cause of a failed run.
 */
export const timeline = (trace: Trace, options: Options): string => {
  const p = painter(options)
  const { run } = trace
  const lines = [`${run.workflow} ${run.id}  ${statusSymbol(run.status, p)} ${run.status}`]
  const facts: Array<readonly [string, string]> = [
    ["version", run.version],
    ["created", new Date(run.createdAt).toISOString()]
  ]
  if (run.durationMillis !== undefined) facts.push(["duration", formatDuration(run.durationMillis)])
  if (run.reason !== undefined) facts.push(["reason", run.reason])
  if (run.recoveries > 0) facts.push(["recoveries", String(run.recoveries)])
  if ("output" in trace.run) facts.push(["output", cut(formatValue(run.output), 100)])
  lines.push(...align(facts.map(([key, value]) => [`  ${p("dim", key)}`, value])))
  lines.push("")

  if (trace.steps.length === 0) {
    lines.push(`  ${p("dim", "(no steps ran)")}`)
  } else {
    // Fixed columns first (offset from the run's start, duration), the variable text last, so long
    // step names and errors never push the numbers out of line.
    const origin = run.startedAt ?? run.createdAt
    const offset = (at: number) => `+${formatDuration(Math.max(0, at - origin))}`
    const steps = align(trace.steps.map((step) => [stepLabel(step, p), stepCount(step, p)]))
    const rows: Array<readonly [string, string, string]> = []
    trace.steps.forEach((step, i) => {
      const took = step.durationMillis === undefined ? "" : formatDuration(step.durationMillis)
      rows.push([offset(step.startedAt), took, steps[i]])
      if (!showsAttempts(step)) return
      const attempts = align(step.attempts.map((attempt, j) => [
        `  ${attempt.attempt} ${attemptText(attempt, p)}`,
        attemptNote(step, attempt, j === step.attempts.length - 1, p)
      ]))
      step.attempts.forEach((attempt, j) => {
        rows.push([offset(attempt.startedAt), formatDuration(attempt.durationMillis), attempts[j]])
      })
    })
    const atWidth = Math.max(...rows.map(([at]) => at.length))
    const tookWidth = Math.max(...rows.map(([, took]) => took.length))
    lines.push(
      ...rows.map(([at, took, text]) =>
        `  ${p("dim", at.padEnd(atWidth))}  ${p("dim", took.padEnd(tookWidth))}  ${text}`
      )
    )
  }
  if (trace.cause !== undefined) lines.push("", ...causePart(trace.cause, p))
  return lines.join("\n")
}

/** The runs of `weft list` as a table: id, workflow, status, created (ISO, no milliseconds), duration. */
export const runTable = (runs: ReadonlyArray<Store.RunRecord>, options: Options): string => {
  if (runs.length === 0) return "(no runs)"
  const p = painter(options)
  const header = ["ID", "WORKFLOW", "STATUS", "CREATED", "DURATION"].map((title) => p("dim", title))
  const rows = runs.map((run) => [
    run.id,
    run.workflow,
    `${statusSymbol(run.status, p)} ${run.status}`,
    new Date(run.createdAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
    run.finishedAt === undefined ? "-" : formatDuration(run.finishedAt - (run.startedAt ?? run.createdAt))
  ])
  const all = [header, ...rows]
  const widths = header.map((_, column) => Math.max(...all.map((row) => visibleLength(row[column]))))
  return all
    .map((row) => row.map((cell, column) => padEnd(cell, column === row.length - 1 ? 0 : widths[column])).join("  "))
    .join("\n")
}

/**
 * One line of live progress for stderr. The errors in progress events are live values (a tagged
 * error instance or a thrown Error), formatted like stored ones.
 */
export const progress = (event: Execution.ProgressEvent, options: ProgressOptions): string => {
  const p = painter(options)
  switch (event._tag) {
    case "StepStarted":
      return `${p("cyan", "→")} ${event.stepId}${event.attempt > 1 ? ` attempt ${event.attempt}` : ""}`
    case "StepSucceeded":
      return `${p("green", "✓")} ${event.stepId} ${p("dim", formatDuration(event.durationMillis))}`
    case "StepReplayed":
      return `${p("dim", "↻")} ${event.stepId} ${p("dim", event.failed ? "(from journal, failed)" : "(from journal)")}`
    case "StepRetrying":
      return `${p("yellow", "✗")} ${event.stepId} attempt ${event.attempt}: ${formatError(event.error)} — ${
        p("yellow", event.delayMillis > 0 ? `retrying in ${formatDuration(event.delayMillis)}` : "retrying now")
      }`
    case "StepFailed":
      return `${p("red", "✗")} ${event.stepId} attempt ${event.attempt}: ${formatError(event.error)} — ${
        p("red", stopReasonText(event.reason))
      }`
    case "StepWaiting": {
      const left = Math.max(0, event.untilMillis - (options.now ?? Date.now()))
      return `${p("yellow", "…")} ${event.stepId} waiting ${formatDuration(left)} before attempt ${event.attempt}`
    }
  }
}

/**
 * One line for any error value: `Tag { a: 1, b: "x" }` for a tagged error (encoded, or a live
 * instance whose derived message, stack and cause are left out), `Name: message` for an Error or an
 * encoded defect.
 */
export const formatError = (value: unknown): string => {
  if (isRecord(value) && typeof value._tag === "string") {
    const fields: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      if (key === "_tag" || key === "cause" || key === "stack") continue
      // `retryable` is a class member of live errors, not data.
      if (key === "retryable" && value instanceof Error && typeof value.retryable === "boolean") continue
      fields[key] = value[key]
    }
    // A declared `message` is an own (non-enumerable) property of a live error; a derived one is a getter.
    const own = value instanceof Error ? Object.getOwnPropertyDescriptor(value, "message") : undefined
    if (own !== undefined && typeof own.value === "string" && !("message" in fields)) fields.message = own.value
    return tagText(value._tag, fields)
  }
  if (value instanceof Error) {
    const fields: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      if (key !== "cause" && key !== "stack" && key !== "message" && key !== "name") {
        fields[key] = (value as unknown as Record<string, unknown>)[key]
      }
    }
    return exceptionText(value.name, value.message, fields)
  }
  if (isRecord(value) && typeof value.name === "string" && typeof value.message === "string") {
    const fields = isRecord(value.fields) ? value.fields : {}
    return typeof fields._tag === "string"
      ? tagText(fields._tag, omit(fields, ["_tag", "retryable"]))
      : exceptionText(value.name, value.message, fields)
  }
  if (typeof value === "string") return oneLine(value)
  return cut(formatValue(value), VALUE_WIDTH)
}

/** A duration in the unit a person reads best: `12ms`, `2.3s`, `4m 5s`, `1h 2m`. */
export const formatDuration = (millis: number): string => {
  if (millis < 1000) return `${Math.round(millis)}ms`
  if (millis < 60_000) return `${(millis / 1000).toFixed(1).replace(/\.0$/, "")}s`
  if (millis < 3_600_000) return `${Math.floor(millis / 60_000)}m ${Math.floor((millis % 60_000) / 1000)}s`
  return `${Math.floor(millis / 3_600_000)}h ${Math.floor((millis % 3_600_000) / 60_000)}m`
}

/** Why a step stopped retrying, in words. */
export const stopReasonText = (reason: string): string => {
  switch (reason) {
    case "not-retryable":
      return "not retryable"
    case "attempts-exhausted":
      return "attempts exhausted"
    case "defect":
      return "defect (not retried)"
    case "within-exceeded":
      return "retry limit (within) reached"
    case "schedule-done":
      return "retry schedule ended"
    default:
      return reason.replace(/-/g, " ")
  }
}

type Style = "red" | "green" | "yellow" | "cyan" | "dim" | "bold"

type Paint = (style: Style, text: string) => string

const codes: Record<Style, number> = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 }

const painter = (options: Options): Paint => (style, text) =>
  options.color && text !== "" ? `\u001b[${codes[style]}m${text}\u001b[0m` : text

const ansi = /\u001b\[[0-9;]*m/g

const visibleLength = (text: string): number => text.replace(ansi, "").length

const padEnd = (text: string, width: number): string => text + " ".repeat(Math.max(0, width - visibleLength(text)))

/** Right-hand cells start in one column, unless a left cell is too long to wait for it. */
const ALIGN_MAX = 56

const align = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const widths = rows
    .filter(([, right]) => right !== "")
    .map(([left]) => visibleLength(left))
    .filter((width) => width <= ALIGN_MAX)
  const width = Math.max(0, ...widths)
  return rows.map(([left, right]) => (right === "" ? left : `${padEnd(left, width)}  ${right}`))
}

const branch = (i: number, count: number): string => (i === count - 1 ? "└─ " : "├─ ")

const continuation = (i: number, count: number): string => (i === count - 1 ? "   " : "│  ")

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const omit = (record: Record<string, unknown>, keys: ReadonlyArray<string>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(record)) if (!keys.includes(key)) out[key] = value
  return out
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const shortId = (id: string): string => (uuid.test(id) ? id.slice(0, 8) : id)

const statusSymbol = (status: Store.RunStatus, p: Paint): string => {
  switch (status) {
    case "succeeded":
      return p("green", "✓")
    case "failed":
      return p("red", "✗")
    case "cancelled":
      return p("red", "⊘")
    case "running":
      return p("cyan", "⋯")
    case "queued":
      return p("yellow", "⋯")
    case "sleeping":
    case "waiting":
      return p("cyan", "◷")
  }
}

const stepSymbol = (step: StepView, p: Paint): string => {
  switch (step.status) {
    case "succeeded":
      return p("green", "✓")
    case "failed":
      return p("red", "✗")
    case "interrupted":
    case "retrying":
      return p("yellow", "⋯")
  }
}

const stepLabel = (step: StepView, p: Paint): string =>
  `${stepSymbol(step, p)} ${step.stepId}${step.kind === "step" ? "" : p("dim", ` (${step.kind})`)}`

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const stepCount = (step: StepView, p: Paint): string => {
  const n = step.attempts.length
  switch (step.status) {
    case "succeeded":
      return n > 1 ? p("dim", plural(n, "attempt")) : ""
    case "failed":
      return p("red", plural(Math.max(n, 1), "attempt"))
    case "interrupted":
      return p("yellow", `interrupted after ${plural(n, "attempt")}`)
    case "retrying":
      return p("yellow", `retrying after ${plural(n, "attempt")}`)
  }
}

const stepNote = (step: StepView, p: Paint): string => {
  const took = step.durationMillis === undefined ? "" : formatDuration(step.durationMillis)
  return step.status === "succeeded"
    ? [took, stepCount(step, p)].filter((part) => part !== "").join(", ")
    : [stepCount(step, p), p("dim", took)].filter((part) => part !== "").join(", ")
}

const showsAttempts = (step: StepView): boolean =>
  step.attempts.length > 0 && (step.status !== "succeeded" || step.attempts.length > 1)

const attemptText = (attempt: AttemptView, p: Paint): string =>
  attempt.outcome === "success"
    ? p("green", "succeeded")
    : attempt.error === undefined
    ? p("red", attempt.outcome)
    : errorText(attempt.error)

const attemptNote = (step: StepView, attempt: AttemptView, last: boolean, p: Paint): string => {
  if (attempt.outcome === "success") return ""
  if (attempt.stopReason !== undefined) return p("red", stopReasonText(attempt.stopReason))
  if (attempt.delayMillis !== undefined) {
    const after = attempt.delayMillis === 0 ? "at once" : `after ${formatDuration(attempt.delayMillis)}`
    return last && step.status !== "succeeded" && step.status !== "failed"
      ? p("yellow", `retry due ${after}`)
      : p("yellow", `retried ${after}`)
  }
  return ""
}

/** The Cause section: `cause: <tree>`, the lines after the first indented by two. */
const causePart = (cause: CauseView, p: Paint): Array<string> => {
  const block = causeBlock(cause, p)
  return [`${p("bold", "cause:")} ${block[0]}`, ...block.slice(1).map((line) => `  ${line}`)]
}

/** A Cause as lines: the first is the node itself, the others are relative to its start. */
const causeBlock = (cause: CauseView, p: Paint): Array<string> => {
  switch (cause.kind) {
    case "empty":
      return [p("dim", "(none recorded)")]
    case "interrupt":
      return [p("yellow", "interrupted") + (cause.fiberId === undefined ? "" : p("dim", ` (fiber ${cause.fiberId})`))]
    case "fail":
    case "defect":
      return errorBlock(cause.error, p)
    case "sequential":
    case "parallel": {
      const lines = [p("dim", cause.kind)]
      cause.children.forEach((child, i) => {
        const block = causeBlock(child, p)
        const under = continuation(i, cause.children.length)
        lines.push(`${branch(i, cause.children.length)}${block[0]}`, ...block.slice(1).map((line) => under + line))
      })
      return lines
    }
  }
}

/** How many stack frames of each error in a chain the tree shows. */
const MAX_FRAMES = 5

const errorBlock = (error: ErrorView, p: Paint): Array<string> => {
  const lines = [errorText(error, p)]
  if (error.message !== undefined) {
    const extra = error.tagged
      ? ("message" in error.fields ? [] : error.message.split("\n"))
      : error.message.split("\n").slice(1)
    lines.push(...extra.map((line) => `  ${p("dim", line)}`))
  }
  const frames = error.stack ?? []
  lines.push(...frames.slice(0, MAX_FRAMES).map((frame) => `  ${p("dim", frame)}`))
  if (frames.length > MAX_FRAMES) lines.push(`  ${p("dim", `… ${plural(frames.length - MAX_FRAMES, "more frame")}`)}`)
  if (error.cause !== undefined) {
    const [first, ...rest] = errorBlock(error.cause, p)
    lines.push(`${p("dim", "caused by:")} ${first}`, ...rest)
  }
  return lines
}

const errorText = (error: ErrorView, p?: Paint): string => {
  const text = error.tagged
    ? tagText(error.tag, error.fields)
    : exceptionText(error.tag, error.message ?? "", error.fields)
  return p === undefined ? text : p("red", text)
}

const tagText = (tag: string, fields: Record<string, unknown>): string => {
  const entries = Object.entries(fields)
  return entries.length === 0 ? tag : `${tag} { ${entries.map(([k, v]) => `${key(k)}: ${fieldText(v)}`).join(", ")} }`
}

const exceptionText = (name: string, message: string, fields: Record<string, unknown>): string => {
  const head = message === "" ? name : `${name}: ${oneLine(message)}`
  const entries = Object.entries(fields)
  return entries.length === 0 ? head : `${head} { ${entries.map(([k, v]) => `${key(k)}: ${fieldText(v)}`).join(", ")} }`
}

const oneLine = (text: string): string => {
  const [first, ...rest] = text.split("\n")
  return cut(rest.length > 0 ? `${first} …` : first, 200)
}

/** Where a field's value is cut. */
const VALUE_WIDTH = 80

const fieldText = (value: unknown): string => cut(formatValue(value), VALUE_WIDTH)

const cut = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text)

const key = (name: string): string => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name))

const formatValue = (value: unknown, depth = 0): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "bigint") return `${value}n`
  if (value === null || typeof value !== "object") return String(value)
  if (depth > 4) return Array.isArray(value) ? "[…]" : "{…}"
  if (Array.isArray(value)) return `[${value.map((item) => formatValue(item, depth + 1)).join(", ")}]`
  if (value instanceof Error) return formatError(value)
  const entries = Object.entries(value)
  return entries.length === 0
    ? "{}"
    : `{ ${entries.map(([k, v]) => `${key(k)}: ${formatValue(v, depth + 1)}`).join(", ")} }`
}
