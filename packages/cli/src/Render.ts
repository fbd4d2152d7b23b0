/**
 * The text the CLI prints about runs: the failure tree of a run (steps, attempts and the full
 * Cause), the timeline of `weft show`, the table of `weft list` and the live progress lines. Pure
 * functions of the stored history; ANSI colors only when asked.
 */
import type { Execution } from "@weft/core"
import type { Store } from "@weft/runtime"
import type {
  AttemptView,
  BranchOutcome,
  CauseView,
  ChildView,
  ErrorView,
  RedriveView,
  SignalView,
  StepView,
  Trace
} from "./Trace.js"
import { causeSummary, summary } from "./Trace.js"

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
 * then its Cause with stacks and `cause` chains. A task group is a node (`⇉ ship  fail-fast, 2
 * branches`) with a child per branch (`[1] ✗ failed`) holding the branch's steps; in the Cause, the
 * parts that come from a group's branches are labeled with the branch (`ship[0]: interrupted (a
 * sibling failed)`).
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
  // Steps and groups are aligned together (their notes in one column), each step's attempts apart.
  const rows: Array<readonly [string, string] | string> = []
  const draw = (nodes: ReadonlyArray<Node>, prefix: string, trace: Trace) => {
    nodes.forEach((node, i) => {
      const head = `${prefix}${branch(i, nodes.length)}`
      const under = `${prefix}${continuation(i, nodes.length)}`
      if (node._tag === "group") {
        rows.push([`${head}${groupLabel(node, p)}`, groupNote(node, trace, p, true)])
        node.branches.forEach((b, k) => {
          rows.push(`${under}${branch(k, node.branches.length)}${branchLabel(node, b, p)}`)
          draw(b.children, `${under}${continuation(k, node.branches.length)}`, trace)
        })
        return
      }
      const { step } = node
      rows.push([`${head}${stepLabel(step, p)}`, stepNote(step, p, trace)])
      if (step.child !== undefined) {
        // A child that did not succeed shows its own steps (a succeeded one is a line).
        const sub = step.child.detached || step.child.status === "succeeded" ? undefined : childTrace(trace, step.child)
        if (sub !== undefined) {
          draw(treeOf(shownSteps(sub)), under, sub)
        } else if (step.cause !== undefined && some(step.cause, (c) => c.kind === "defect")) {
          // Its note has the error's line; a defect's stack is worth its lines.
          const block = causeBlock(step.cause, p)
          rows.push(`${under}└─ ${block[0]}`, ...block.slice(1).map((line) => `${under}   ${line}`))
        }
      } else if (showsAttempts(step)) {
        rows.push(...align(step.attempts.map((attempt, j) => [
          `${under}${branch(j, step.attempts.length)}${attempt.attempt} ${attemptText(attempt, p)}`,
          attemptNote(step, attempt, j === step.attempts.length - 1, p)
        ])))
      } else if (step.status === "failed" && step.cause !== undefined && step.signal === undefined) {
        // (A signal that timed out says so in its note; the run's cause repeats it.)
        const block = causeBlock(step.cause, p)
        rows.push(`${under}└─ ${block[0]}`, ...block.slice(1).map((line) => `${under}   ${line}`))
      }
    })
  }
  draw(treeOf(shownSteps(trace)), "", trace)
  lines.push(...alignSome(rows))
  if (trace.cause !== undefined) lines.push(...causePart(trace.cause, p, causeLabels(trace)))
  return lines.join("\n")
}

/**
 * The history of a run for `weft show`: a header (status, version, times, the reason a run is not
 * progressing, recoveries), each step and attempt with its offset from the run's start and its
 * duration, and the Cause of a failed run. Task groups hang their branches and the branches' steps
 * from the group's row as a tree, as in the failure tree.
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
  if (run.queue !== undefined) facts.push(["queue", run.queue])
  if (run.concurrencyKey !== undefined) {
    facts.push(["key", `${run.concurrencyKey.key} (at most ${run.concurrencyKey.limit} running at once)`])
  }
  if (run.blocked !== undefined) facts.push(["blocked", run.blocked])
  if (run.recoveries > 0) facts.push(["recoveries", String(run.recoveries)])
  if (run.parent !== undefined) facts.push(["parent", `${run.parent.runId} step ${run.parent.stepId}`])
  if (run.correlationId !== undefined) facts.push(["correlation", run.correlationId])
  for (const redrive of run.redrives ?? []) facts.push(["re-driven", redriveText(redrive)])
  if ("output" in trace.run) facts.push(["output", cut(formatValue(run.output), 100)])
  lines.push(...align(facts.map(([key, value]) => [`  ${p("dim", key)}`, value])))
  lines.push("")

  if (trace.steps.length === 0) {
    lines.push(`  ${p("dim", "(no steps ran)")}`)
  } else {
    // Fixed columns first (offset from the run's start, duration), the variable text last, so long
    // step names and errors never push the numbers out of line. A re-driven run started again
    // after its first steps: offsets count from the first of them.
    const origin = Math.min(run.startedAt ?? run.createdAt, ...trace.steps.map((step) => step.startedAt))
    const offset = (at: number) => `+${formatDuration(Math.max(0, at - origin))}`
    // Rows are [offset, duration, text]; the texts of steps and groups are aligned together.
    const rows: Array<readonly [string, string, readonly [string, string] | string]> = []
    // The body's steps start at the left; the branches of a group hang from it as a tree.
    const draw = (nodes: ReadonlyArray<Node>, prefix: string, tree: boolean, trace: Trace) => {
      nodes.forEach((node, i) => {
        const head = tree ? `${prefix}${branch(i, nodes.length)}` : prefix
        const under = tree ? `${prefix}${continuation(i, nodes.length)}` : prefix
        if (node._tag === "group") {
          const entry = node.entry
          const start = entry?.startedAt ?? firstStart(node)
          rows.push([
            start === undefined ? "" : offset(start),
            entry?.durationMillis === undefined ? "" : formatDuration(entry.durationMillis),
            [`${head}${groupLabel(node, p)}`, groupNote(node, trace, p, false)]
          ])
          node.branches.forEach((b, k) => {
            rows.push(["", "", `${under}${branch(k, node.branches.length)}${branchLabel(node, b, p)}`])
            draw(b.children, `${under}${continuation(k, node.branches.length)}`, true, trace)
          })
          return
        }
        const { step } = node
        const { start, took } = when(step)
        rows.push([
          start === undefined ? "" : offset(start),
          took === undefined ? "" : formatDuration(took),
          [`${head}${stepLabel(step, p)}`, stepCount(step, p, trace)]
        ])
        if (step.child !== undefined) {
          // An awaited child's steps hang from its row, times from the parent's start.
          const sub = step.child.detached ? undefined : childTrace(trace, step.child)
          if (sub !== undefined) draw(treeOf(shownSteps(sub)), under, true, sub)
          return
        }
        if (!showsAttempts(step)) return
        const attempts = align(step.attempts.map((attempt, j) => [
          `${under}  ${attempt.attempt} ${attemptText(attempt, p)}`,
          attemptNote(step, attempt, j === step.attempts.length - 1, p)
        ]))
        step.attempts.forEach((attempt, j) => {
          const redrive = attempt.redrive === undefined
            ? undefined
            : run.redrives?.find((r) => r.seq === attempt.redrive)
          if (redrive !== undefined) {
            rows.push([
              offset(redrive.at),
              "",
              `${under}  ${p("cyan", "↻")} re-driven by ${redrive.by}: ${redrive.reason}`
            ])
          }
          rows.push([offset(attempt.startedAt), formatDuration(attempt.durationMillis), attempts[j]])
        })
      })
    }
    draw(treeOf(shownSteps(trace)), "", false, trace)
    const texts = alignSome(rows.map(([, , text]) => text))
    const atWidth = Math.max(...rows.map(([at]) => at.length))
    const tookWidth = Math.max(...rows.map(([, took]) => took.length))
    lines.push(
      ...rows.map(([at, took], i) =>
        `  ${p("dim", at.padEnd(atWidth))}  ${p("dim", took.padEnd(tookWidth))}  ${texts[i]}`
      )
    )
  }
  if (trace.cause !== undefined) lines.push("", ...causePart(trace.cause, p, causeLabels(trace)))
  return lines.join("\n")
}

/**
 * A re-drive in one line: `#1 2024-05-01T12:00:00Z by cli:ann@host from step charge: card fixed (was
 * failed: CardDeclined)`.
 */
const redriveText = (redrive: RedriveView): string => {
  const what = redrive.cause === undefined ? undefined : causeSummary(redrive.cause)
  const was = what === undefined ? redrive.previousStatus : `${redrive.previousStatus}: ${what}`
  const from = redrive.fromStep === undefined ? "where it stopped" : `step ${redrive.fromStep}`
  const children = redrive.children.length === 0 ? "" : `; with child runs ${redrive.children.join(", ")}`
  return `#${redrive.seq} ${
    new Date(redrive.at).toISOString().replace(/\.\d{3}Z$/, "Z")
  } by ${redrive.by} from ${from}: ${redrive.reason} (was ${was})${children}`
}

/**
 * The runs of `weft list` as a table: id, workflow, status, created (ISO, no milliseconds), duration.
 * `blocked` says, by run id, why a queued run is not starting (`queued: queue emails is at ...`).
 */
export const runTable = (
  runs: ReadonlyArray<Store.RunRecord>,
  options: Options & { readonly blocked?: ReadonlyMap<string, string> | undefined }
): string => {
  if (runs.length === 0) return "(no runs)"
  const p = painter(options)
  const header = ["ID", "WORKFLOW", "STATUS", "CREATED", "DURATION"].map((title) => p("dim", title))
  const rows = runs.map((run) => [
    run.id,
    run.workflow,
    `${statusSymbol(run.status, p)} ${
      options.blocked?.has(run.id) === true ? `queued: ${options.blocked.get(run.id)}` : statusText(run)
    }`,
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
 * A run's status, with the reason of a run that sleeps or waits: `sleeping until
 * 2024-05-01T12:10:00Z`, `waiting for signal approved`, `sleeping: backing off until ...`.
 */
const statusText = (run: Store.RunRecord): string => {
  if ((run.status !== "sleeping" && run.status !== "waiting") || run.reason === undefined) return run.status
  const reason = run.reason.replace(/(T\d\d:\d\d:\d\d)\.\d{3}Z/g, "$1Z")
  return reason.startsWith(`${run.status} `) ? reason : `${run.status}: ${reason}`
}

/**
 * One line of live progress for stderr. The errors in progress events are live values (a tagged
 * error instance or a thrown Error), formatted like stored ones.
 */
export const progress = (event: Execution.ProgressEvent, options: ProgressOptions): string => {
  const p = painter(options)
  const { kind, label } = progressLabel(event.stepId)
  switch (event._tag) {
    case "StepStarted":
      return `${kind === "compensation" ? p("yellow", "↺") : p("cyan", "→")} ${label}${
        event.attempt > 1 ? ` attempt ${event.attempt}` : ""
      }`
    case "StepSucceeded":
      // A sleep's entry only journals its wake time: the sleep itself starts now.
      if (kind === "sleep") return `${p("cyan", "⏾")} ${label}ing`
      if (kind === "deadline") return `${p("cyan", "◷")} ${label} set`
      return `${p("green", "✓")} ${label} ${p("dim", formatDuration(event.durationMillis))}`
    case "StepReplayed":
      return `${p("dim", "↻")} ${label} ${p("dim", event.failed ? "(from journal, failed)" : "(from journal)")}`
    case "StepRetrying":
      return `${p("yellow", "✗")} ${label} attempt ${event.attempt}: ${formatError(event.error)} — ${
        p("yellow", event.delayMillis > 0 ? `retrying in ${formatDuration(event.delayMillis)}` : "retrying now")
      }`
    case "StepFailed":
      return `${p("red", "✗")} ${label} attempt ${event.attempt}: ${formatError(event.error)} — ${
        p("red", stopReasonText(event.reason))
      }`
    case "StepWaiting": {
      const left = Math.max(0, event.untilMillis - (options.now ?? Date.now()))
      return `${p("yellow", "…")} ${label} waiting ${formatDuration(left)} before attempt ${event.attempt}`
    }
  }
}

/**
 * A progress line about a child run the run waits for: that it waits (`⤷ child payment 3f2a6c1e/
 * $child:payment`), and how the child ended (`✗ child payment 3f2a6c1e/$child:payment failed:
 * CardDeclined`).
 */
export const childProgress = (
  event:
    | { readonly _tag: "ChildAwaited"; readonly runId: string; readonly workflow: string }
    | { readonly _tag: "ChildEnded"; readonly trace: Trace },
  options: Options
): string => {
  const p = painter(options)
  if (event._tag === "ChildAwaited") {
    return `${p("cyan", "⤷")} child ${event.workflow} ${shortRunId(event.runId)} ${p("dim", "(the run waits for it)")}`
  }
  const { run } = event.trace
  const took = run.durationMillis === undefined ? "" : ` in ${formatDuration(run.durationMillis)}`
  const why = run.status === "failed" || run.status === "cancelled" ? `: ${summary(event.trace)}` : ""
  return `${statusSymbol(run.status, p)} child ${run.workflow} ${shortRunId(run.id)} ${run.status}${
    run.status === "succeeded" ? p("dim", took) : ""
  }${why}`
}

/**
 * How a progress line names a step: durable primitives by what they do (`$sleep` → `sleep`,
 * `$deadline` → `signal deadline`, `$undo:book-hotel` → `book-hotel (compensation)`), other steps
 * by their id.
 */
const progressLabel = (
  stepId: string
): { readonly kind: "sleep" | "deadline" | "compensation" | "step"; readonly label: string } => {
  const slash = stepId.lastIndexOf("/")
  const scope = stepId.slice(0, slash + 1)
  const local = stepId.slice(slash + 1)
  const name = local.replace(/#\d+$/, "")
  if (name === "$sleep") return { kind: "sleep", label: `${scope}sleep` }
  if (name === "$deadline") return { kind: "deadline", label: `${scope}signal deadline` }
  if (local.startsWith(UNDO)) {
    return { kind: "compensation", label: `${scope}${undoneStep(local)} (compensation)` }
  }
  return { kind: "step", label: stepId }
}

const UNDO = "$undo:"

/** `$undo:ship[1]|pack` → `ship[1]/pack`. */
const undoneStep = (name: string): string => name.slice(UNDO.length).replace(/\|/g, "/")

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

/**
 * A span of time in its two largest whole units, for waits people set: `300ms`, `6s`, `1m 30s`,
 * `10m`, `1h`, `1h 5m`, `2d 3h`.
 */
export const formatSpan = (millis: number): string => {
  if (millis < 1000) return `${Math.max(0, Math.round(millis))}ms`
  let rest = Math.round(millis / 1000)
  const parts: Array<number> = []
  for (const size of [86_400, 3_600, 60, 1]) {
    parts.push(Math.floor(rest / size))
    rest %= size
  }
  const units = ["d", "h", "m", "s"]
  const first = parts.findIndex((n) => n > 0)
  const shown = [`${parts[first]}${units[first]}`]
  if (first < 3 && parts[first + 1] > 0) shown.push(`${parts[first + 1]}${units[first + 1]}`)
  return shown.join(" ")
}

/**
 * A time of day for a person, in UTC like every other time weft prints: `12:10:00Z`, with its date
 * (`2024-05-02 09:00:00Z`) when it is not on the day of `reference`.
 */
export const formatClock = (at: number, reference: number): string => {
  const iso = new Date(at).toISOString()
  const time = `${iso.slice(11, 19)}Z`
  return iso.slice(0, 10) === new Date(reference).toISOString().slice(0, 10) ? time : `${iso.slice(0, 10)} ${time}`
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

/** Like `align`, for rows among which some (plain strings) are left as they are. */
const alignSome = (rows: ReadonlyArray<readonly [string, string] | string>): Array<string> => {
  const pairs = rows.filter((row): row is readonly [string, string] => typeof row !== "string")
  const aligned = align(pairs)
  let next = 0
  return rows.map((row) => (typeof row === "string" ? row : aligned[next++]))
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
  if (step.sleep?.sleeping === true || step.signal?.outcome === "waiting") return p("cyan", "◷")
  if (step.child !== undefined && !step.child.detached && step.status === "retrying") return p("cyan", "◷")
  switch (step.status) {
    case "succeeded":
      return p("green", "✓")
    case "failed":
      return p("red", "✗")
    case "interrupted":
      return cutInFlight(step) ? p("yellow", "⊘") : p("yellow", "⋯")
    case "retrying":
      return p("yellow", "⋯")
  }
}

/** A step whose last attempt its task group's end cut off in flight. */
const cutInFlight = (step: StepView): boolean => step.attempts[step.attempts.length - 1]?.outcome === "interrupted"

/** A step's id in its branch: `ship[1]/pack#2` → `pack#2` (the tree shows the branch). */
const localId = (step: StepView): string =>
  step.scope === undefined ? step.stepId : step.stepId.slice(step.scope.length + 1)

/**
 * A step's symbol and name; durable primitives say what they did: `⏾ sleep until 12:10:00Z (10m)`,
 * `✉ signal approved`, `↺ book-hotel (compensation)`, `◷ signal deadline 13:00:00Z (1h)`.
 */
const stepLabel = (step: StepView, p: Paint): string => {
  const symbol = stepSymbol(step, p)
  if (step.signal !== undefined) return `${symbol} ${p("cyan", "✉")} signal ${step.signal.name}`
  if (step.child !== undefined) {
    const { detached, runId, workflow } = step.child
    const id = runId === undefined ? "" : ` ${shortRunId(runId)}`
    return detached
      ? `${symbol} ${p("cyan", "⤷")} started ${workflow}${id} ${p("dim", "(detached)")}`
      : `${symbol} ${p("cyan", "⤷")} child ${workflow}${id}`
  }
  if (step.compensates !== undefined) {
    return `${symbol} ${p("yellow", "↺")} ${step.compensates} ${p("dim", "(compensation)")}`
  }
  if (step.sleep !== undefined) {
    const { durationMillis, until } = step.sleep
    const span = `${formatClock(until, step.startedAt)} (${formatSpan(durationMillis)})`
    return step.name === "$deadline"
      ? `${symbol} ${p("cyan", "◷")} signal deadline ${span}`
      : `${symbol} ${p("cyan", "⏾")} sleep until ${span}`
  }
  return `${symbol} ${localId(step)}${step.kind === "step" ? "" : p("dim", ` (${step.kind})`)}`
}

/** What a signal wait brought: its payload, a timeout, or that the run still waits. */
const signalNote = (signal: SignalView, p: Paint): string => {
  const timeout = signal.timeoutMillis ??
    (signal.deadline === undefined || signal.waitStartedAt === undefined
      ? undefined
      : signal.deadline - signal.waitStartedAt)
  switch (signal.outcome) {
    case "received":
      return fieldText(signal.payload)
    case "timed-out":
      return p("red", timeout === undefined ? "timed out" : `timed out after ${formatSpan(timeout)}`)
    case "waiting":
      return p(
        "cyan",
        signal.deadline === undefined || timeout === undefined
          ? "waiting"
          : `waiting, times out at ${formatClock(signal.deadline, signal.waitStartedAt ?? signal.deadline)} (after ${
            formatSpan(timeout)
          })`
      )
  }
}

/**
 * The note of a durable wait (a sleep, a deadline, a signal, a child), in place of its count and
 * duration.
 */
const waitNote = (step: StepView, p: Paint, trace?: Trace): string | undefined => {
  if (step.signal !== undefined) return signalNote(step.signal, p)
  if (step.child !== undefined) return childNote(step, step.child, p, trace)
  if (step.sleep !== undefined) return step.sleep.sleeping ? p("cyan", "sleeping") : ""
  return undefined
}

/**
 * Where a step's row starts and how long it took, for the timeline: a signal wait from the start
 * of its deadline to the signal (unknown without a timeout); a sleep or deadline has its times in
 * its label.
 */
const when = (step: StepView): { readonly start?: number | undefined; readonly took?: number | undefined } => {
  if (step.signal !== undefined) {
    const from = step.signal.waitStartedAt
    if (step.signal.outcome === "waiting") return { start: from }
    return from === undefined || step.finishedAt === undefined
      ? { start: step.startedAt }
      : { start: from, took: step.finishedAt - from }
  }
  if (step.sleep !== undefined) return { start: step.startedAt }
  return { start: step.startedAt, took: step.durationMillis }
}

/**
 * The steps the trees draw: a signal's `$deadline` entry is drawn as part of its signal, and a run
 * waiting for a signal ends with that wait.
 */
const shownSteps = (trace: Trace): ReadonlyArray<StepView> => {
  const steps = trace.steps.filter((step) => step.deadlineOf === undefined)
  const awaited = trace.run.waitingForChild
  if (awaited !== undefined) {
    const { stepId, ...child } = awaited
    const sub = childTrace(trace, child)
    return [
      ...steps,
      {
        stepId,
        name: stepId.replace(/#\d+$/, ""),
        kind: "child",
        status: "retrying",
        startedAt: sub?.run.createdAt ?? trace.run.startedAt ?? trace.run.createdAt,
        attempts: [],
        child
      }
    ]
  }
  const waiting = trace.run.waitingFor
  if (waiting === undefined) return steps
  const { stepId, ...signal } = waiting
  return [
    ...steps,
    {
      stepId,
      name: `$signal:${waiting.name}`,
      kind: "signal",
      status: "retrying",
      startedAt: waiting.waitStartedAt ?? trace.run.startedAt ?? trace.run.createdAt,
      attempts: [],
      signal
    }
  ]
}

// --- child workflows -----------------------------------------------------------------------------

/** The embedded trace of a child run, when its history was read. */
const childTrace = (trace: Trace, child: ChildView): Trace | undefined =>
  child.runId === undefined ? undefined : trace.children?.[child.runId]

/**
 * What a child run did, in place of a step's count: an awaited child's error when it failed, its
 * status while the parent waits (`running`, `waiting for signal approved`); a detached child's status
 * when it is known.
 */
const childNote = (step: StepView, child: ChildView, p: Paint, trace: Trace | undefined): string => {
  const status = child.status
  if (child.detached) {
    if (status === undefined) return ""
    const took = child.durationMillis === undefined ? "" : ` in ${formatDuration(child.durationMillis)}`
    return p("dim", `${status}${status === "succeeded" || status === "failed" ? took : ""}`)
  }
  if (step.status === "retrying") {
    // Not in the journal yet: the parent waits; the child's record says what it does.
    const sub = trace === undefined ? undefined : childTrace(trace, child)
    const reason = sub?.run.reason ?? child.reason
    const what = status === undefined ? "running" : reason === undefined ? status : statusReason(status, reason)
    return p("cyan", what)
  }
  if (status === "cancelled") return p("red", "cancelled")
  if (step.status === "failed" && step.cause !== undefined) {
    const first = firstFailureOf(step.cause)
    if (first !== undefined) return p("red", errorText(first.error))
    if (isInterruptOnly(step.cause)) return p("yellow", "interrupted")
  }
  return step.status === "failed" ? p("red", status ?? "failed") : ""
}

/** `waiting` and `waiting for signal approved` → `waiting for signal approved`; dates without milliseconds. */
const statusReason = (status: Store.RunStatus, reason: string): string => {
  const text = reason.replace(/(T\d\d:\d\d:\d\d)\.\d{3}Z/g, "$1Z")
  return text.startsWith(`${status} `) ? text : `${status}: ${text}`
}

const firstFailureOf = (cause: CauseView): Extract<CauseView, { readonly kind: "fail" | "defect" }> | undefined => {
  if (cause.kind === "fail" || cause.kind === "defect") return cause
  if (cause.kind === "sequential" || cause.kind === "parallel") {
    for (const child of cause.children) {
      const found = firstFailureOf(child)
      if (found !== undefined) return found
    }
  }
  return undefined
}

const some = (cause: CauseView, predicate: (node: CauseView) => boolean): boolean =>
  predicate(cause) ||
  ((cause.kind === "sequential" || cause.kind === "parallel") && cause.children.some((child) => some(child, predicate)))

/** A child's id with each UUID in it cut to 8 characters: `3f2a6c1e/$child:payment`. */
export const shortRunId = (id: string): string => id.split("/").map(shortId).join("/")

// --- task groups as a tree ---------------------------------------------------------------------

/** A step, or a task group with its branches. */
type Node = { readonly _tag: "step"; readonly step: StepView } | GroupNode

interface GroupNode {
  readonly _tag: "group"
  /** The group's step id in its parent branch (`ship`, `ship[1]/boxes`). */
  readonly id: string
  /** Its journal entry, once it ended. */
  entry?: StepView
  /** By branch index: those with steps, and every branch its entry names. */
  readonly branches: Array<BranchNode>
}

interface BranchNode {
  readonly index: number
  readonly children: Array<Node>
}

/** The steps of a trace (in its tree order) as a tree of steps, groups and branches. */
const treeOf = (steps: ReadonlyArray<StepView>): Array<Node> => {
  const root: Array<Node> = []
  const groups = new Map<string, GroupNode>()
  const branchNode = (group: GroupNode, index: number): BranchNode => {
    const found = group.branches.find((b) => b.index === index)
    if (found !== undefined) return found
    const created: BranchNode = { index, children: [] }
    group.branches.push(created)
    group.branches.sort((a, b) => a.index - b.index)
    return created
  }
  const groupNode = (id: string): GroupNode => {
    const found = groups.get(id)
    if (found !== undefined) return found
    const created: GroupNode = { _tag: "group", id, branches: [] }
    groups.set(id, created)
    container(parentScope(id)).push(created)
    return created
  }
  // The nodes of the branch at `scope` (`ship[1]/boxes[0]`), its group and branch made as needed.
  const container = (scope: string): Array<Node> => {
    const match = /^(.*)\[(\d+)\]$/.exec(scope)
    return match === null ? root : branchNode(groupNode(match[1]), Number(match[2])).children
  }
  for (const step of steps) {
    if (step.kind === "group") {
      const group = groupNode(step.stepId)
      group.entry = step
      step.group?.branches.forEach((_, index) => branchNode(group, index))
    } else {
      container(step.scope ?? "").push({ _tag: "step", step })
    }
  }
  return root
}

/** When the first step of a group started. */
const firstStart = (group: GroupNode): number | undefined => {
  const starts = group.branches.flatMap((b) =>
    b.children.flatMap((node) => {
      const at = node._tag === "step" ? node.step.startedAt : node.entry?.startedAt ?? firstStart(node)
      return at === undefined ? [] : [at]
    })
  )
  return starts.length === 0 ? undefined : Math.min(...starts)
}

/** `ship[1]/boxes` → `ship[1]`, `ship` → `""`. */
const parentScope = (id: string): string => {
  const slash = id.lastIndexOf("/")
  return slash === -1 ? "" : id.slice(0, slash)
}

const groupLabel = (group: GroupNode, p: Paint): string => {
  const symbol = group.entry === undefined ? p("yellow", "⋯") : stepSymbol(group.entry, p)
  return `${symbol} ${p("bold", "⇉")} ${group.id.slice(group.id.lastIndexOf("/") + 1)}`
}

const branches = (n: number): string => (n === 1 ? "1 branch" : `${n} branches`)

/** A running run's groups are running; otherwise a group with no entry was cut off. */
const unfinished = (trace: Trace): string => (trace.run.status === "running" ? "running" : "cut off, no end recorded")

const groupNote = (group: GroupNode, trace: Trace, p: Paint, withDuration: boolean): string => {
  const { entry } = group
  if (entry === undefined) return p("yellow", unfinished(trace))
  const info = entry.group === undefined ? [] : [entry.group.mode, branches(entry.group.branches.length)]
  const took = withDuration && entry.durationMillis !== undefined
    ? [p("dim", formatDuration(entry.durationMillis))]
    : []
  return [...info, ...took].join(", ")
}

/** `[1] ✗ failed`; only `[1]` while the group has not ended (its entry says how branches ended). */
const branchLabel = (group: GroupNode, node: BranchNode, p: Paint): string => {
  const index = p("dim", `[${node.index}]`)
  const outcome = group.entry?.group?.branches[node.index]
  return outcome === undefined || group.entry === undefined
    ? index
    : `${index} ${outcomeText(outcome, group.entry, p)}`
}

const outcomeText = (outcome: BranchOutcome, entry: StepView, p: Paint): string => {
  switch (outcome) {
    case "succeeded":
      return `${p("green", "✓")} succeeded`
    case "failed":
      return `${p("red", "✗")} failed`
    case "interrupted":
      return `${p("yellow", "⊘")} interrupted${
        entry.group?.mode === "fail-fast" && entry.status === "failed" ? p("yellow", " (a sibling failed)") : ""
      }`
    case "not-started":
      return p("dim", "○ not started")
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const stepCount = (step: StepView, p: Paint, trace?: Trace): string => {
  const wait = waitNote(step, p, trace)
  if (wait !== undefined) return wait
  const n = step.attempts.length
  switch (step.status) {
    case "succeeded":
      return n > 1 ? p("dim", plural(n, "attempt")) : ""
    case "failed":
      return p("red", plural(Math.max(n, 1), "attempt"))
    case "interrupted":
      return cutInFlight(step)
        ? p("yellow", `interrupted in attempt ${step.attempts[n - 1].attempt}`)
        : p("yellow", `interrupted after ${plural(n, "attempt")}`)
    case "retrying":
      return p("yellow", `retrying after ${plural(n, "attempt")}`)
  }
}

const stepNote = (step: StepView, p: Paint, trace?: Trace): string => {
  if (step.child !== undefined && !step.child.detached && step.status === "succeeded") {
    return step.durationMillis === undefined ? "" : formatDuration(step.durationMillis)
  }
  const wait = waitNote(step, p, trace)
  if (wait !== undefined) return wait
  const took = step.durationMillis === undefined ? "" : formatDuration(step.durationMillis)
  return step.status === "succeeded"
    ? [took, stepCount(step, p)].filter((part) => part !== "").join(", ")
    : [stepCount(step, p), p("dim", took)].filter((part) => part !== "").join(", ")
}

// A step cut off in its first attempt has nothing more to say than its own line.
const showsAttempts = (step: StepView): boolean =>
  step.attempts.length > 0 && (step.status !== "succeeded" || step.attempts.length > 1) &&
  !(cutInFlight(step) && step.attempts.length === 1)

const attemptText = (attempt: AttemptView, p: Paint): string =>
  attempt.outcome === "success"
    ? p("green", "succeeded")
    : attempt.outcome === "interrupted"
    ? p("yellow", "interrupted in flight")
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
const causePart = (cause: CauseView, p: Paint, labels: CauseLabels = new Map()): Array<string> => {
  const block = causeBlock(cause, p, labels)
  return [`${p("bold", "cause:")} ${block[0]}`, ...block.slice(1).map((line) => `  ${line}`)]
}

/** A Cause as lines: the first is the node itself, the others are relative to its start. */
const causeBlock = (cause: CauseView, p: Paint, labels: CauseLabels = new Map()): Array<string> => {
  const label = labels.get(cause)
  const where = label?.branch === undefined ? "" : p("dim", `${label.branch}: `)
  // A fiber interrupted many times over (each finalizer adds one) is one interruption to a reader.
  if (cause.kind !== "empty" && isInterruptOnly(cause)) {
    const fibers = [
      ...new Set(interruptsOf(cause).flatMap((node) => (node.fiberId === undefined ? [] : [node.fiberId])))
    ]
    const why = label?.sibling === true
      ? p("yellow", " (a sibling failed)")
      : fibers.length === 0
      ? ""
      : p("dim", ` (fiber${fibers.length === 1 ? "" : "s"} ${fibers.join(", ")})`)
    return [`${where}${p("yellow", "interrupted")}${why}`]
  }
  switch (cause.kind) {
    case "empty":
    case "interrupt": // drawn above
      return [p("dim", "(none recorded)")]
    case "fail":
    case "defect": {
      const [first, ...rest] = errorBlock(cause.error, p)
      return [`${where}${first}`, ...rest]
    }
    case "sequential":
    case "parallel": {
      const lines = [`${where}${p("dim", cause.kind)}`]
      cause.children.forEach((child, i) => {
        const block = causeBlock(child, p, labels)
        const under = continuation(i, cause.children.length)
        lines.push(`${branch(i, cause.children.length)}${block[0]}`, ...block.slice(1).map((line) => under + line))
      })
      return lines
    }
  }
}

/** What the cause tree says of a node that ended a task-group branch: which branch, and why. */
interface CauseLabel {
  /** The branch path (`ship[1]`), when the Cause could be matched to the group's branches. */
  readonly branch?: string
  /** An interruption of a fail-fast group's branch because another branch failed. */
  readonly sibling: boolean
}

type CauseLabels = ReadonlyMap<CauseView, CauseLabel>

const isInterruptOnly = (cause: CauseView): boolean =>
  cause.kind === "interrupt" ||
  ((cause.kind === "sequential" || cause.kind === "parallel") && cause.children.every(isInterruptOnly))

const interruptsOf = (cause: CauseView): Array<Extract<CauseView, { readonly kind: "interrupt" }>> =>
  cause.kind === "interrupt"
    ? [cause]
    : cause.kind === "sequential" || cause.kind === "parallel"
    ? cause.children.flatMap(interruptsOf)
    : []

const hasFailure = (cause: CauseView): boolean =>
  cause.kind === "fail" || cause.kind === "defect" ||
  ((cause.kind === "sequential" || cause.kind === "parallel") && cause.children.some(hasFailure))

/** How many ways of reading a group's Cause are tried. */
const MAX_SHAPES = 64

/**
 * Labels the parts of a run's Cause that come from failed task groups. A group fails with the
 * causes of its failed and interrupted branches in branch order, in parallel (nested parallel
 * causes are flattened, so a failed branch may stand for the branches of a group nested in it):
 * when a parallel node's children read as one such group, each is labeled with its branch, and a
 * fail-fast group's interrupted branches as interrupted because a sibling failed. When no group
 * reads that way but a fail-fast group failed with interrupted branches, the interruptions beside
 * a failure are still labeled as such.
 */
const causeLabels = (trace: Trace): CauseLabels => {
  const labels = new Map<CauseView, CauseLabel>()
  if (trace.cause === undefined) return labels
  const failedGroups = trace.steps
    .filter((step) => step.kind === "group" && step.status === "failed" && step.group !== undefined)
    .sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0))
  if (failedGroups.length === 0) return labels
  const siblingsFailed = failedGroups.some((step) =>
    step.group?.mode === "fail-fast" && step.group.branches.includes("interrupted")
  )
  const lastIn = (scope: string): StepView | undefined =>
    trace.steps.filter((step) => (step.scope ?? "") === scope).at(-1)

  interface Expected {
    readonly outcome: "failed" | "interrupted"
    readonly label: CauseLabel
  }
  // The ways a failed group's Cause can read, as its parallel children.
  const shapes = (entry: StepView, depth: number): Array<Array<Expected>> => {
    const group = entry.group
    if (group === undefined) return []
    let ways: Array<Array<Expected>> = [[]]
    group.branches.forEach((outcome, index) => {
      if (outcome !== "failed" && outcome !== "interrupted") return
      const branch = `${entry.stepId}[${index}]`
      const own: Expected = {
        outcome,
        label: { branch, sibling: outcome === "interrupted" && group.mode === "fail-fast" }
      }
      const options = [[own]]
      const last = outcome === "failed" ? lastIn(branch) : undefined
      if (last !== undefined && last.kind === "group" && last.status === "failed" && depth < 4) {
        options.push(...shapes(last, depth + 1))
      }
      ways = ways.flatMap((way) => options.map((option) => [...way, ...option])).slice(0, MAX_SHAPES)
    })
    return ways
  }
  const readings = failedGroups.flatMap((entry) => shapes(entry, 0))

  const visit = (cause: CauseView) => {
    if (cause.kind !== "sequential" && cause.kind !== "parallel") return
    if (cause.kind === "parallel") {
      const reading = readings.find((way) =>
        way.length === cause.children.length &&
        way.every((expected, i) =>
          expected.outcome === "interrupted" ? isInterruptOnly(cause.children[i]) : hasFailure(cause.children[i])
        )
      )
      if (reading !== undefined) {
        reading.forEach((expected, i) => labels.set(cause.children[i], expected.label))
      } else if (siblingsFailed && cause.children.some(hasFailure)) {
        for (const child of cause.children) if (isInterruptOnly(child)) labels.set(child, { sibling: true })
      }
    }
    cause.children.forEach(visit)
  }
  visit(trace.cause)
  return labels
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
