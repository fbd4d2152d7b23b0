/**
 * Structured logs: Effect's log lines, from the runtime and from the user's steps, written one
 * record per line as JSON (for a log collector), logfmt, or a pretty form for a person watching.
 * Every record carries the log's annotations as fields (the engine adds `runId`, `workflow` and
 * `correlationId`, the step runner `stepId` and `attempt`, a worker `workerId`) and, when the log
 * has a cause, the cause rendered in full with the typed error's tag and fields.
 */
import * as Cause from "effect/Cause"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as List from "effect/List"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

/** How a record is written. */
export type Format = "json" | "logfmt" | "pretty"

/** Every format, in the order the CLI lists them. */
export const formats: ReadonlyArray<Format> = ["json", "logfmt", "pretty"]

/** The least severe level written; `none` writes nothing. */
export type Level = "debug" | "info" | "warning" | "error" | "none"

/** Every level, least severe first. */
export const levels: ReadonlyArray<Level> = ["debug", "info", "warning", "error", "none"]

/** Whether `u` names a format. */
export const isFormat = (u: unknown): u is Format => formats.includes(u as Format)

/** Whether `u` names a level. */
export const isLevel = (u: unknown): u is Level => levels.includes(u as Level)

/** Effect's LogLevel for a level. */
export const toLogLevel = (level: Level): LogLevel.LogLevel => {
  switch (level) {
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warning":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
    case "none":
      return LogLevel.None
  }
}

/** Options of `logger` and `layer`. */
export interface Options {
  /** How records are written. */
  readonly format: Format
  /** The least severe level written. Default `info`. */
  readonly level?: Level | undefined
  /** Where each line goes (without its newline). Default: a write to stderr. */
  readonly write?: ((line: string) => void) | undefined
  /** `pretty` only: show the annotations after the message. Default true. */
  readonly annotations?: boolean | undefined
  /** `pretty` only: color the level and the annotations. Default false. */
  readonly color?: boolean | undefined
}

/** The record fields a format writes itself: an annotation of the same name is written as `_<name>`. */
const reserved = new Set(["timestamp", "level", "message", "spans", "cause", "error"])

/**
 * One record as a JSON object on one line: `timestamp` (ISO 8601), `level`, `message`, every
 * annotation as a field of its own, `spans` (name to elapsed milliseconds) when there are some, and
 * for a log with a cause, `cause` (`Cause.pretty`: the error with its stack and `cause` chain, every
 * parallel failure, interruptions) and `error` (the first typed failure: its `_tag`, `message` and
 * fields).
 */
export const formatJson = (options: Logger.Logger.Options<unknown>): string => safeStringify(recordOf(options))

/**
 * One record in logfmt: `timestamp=... level=info message="..." runId=...`, the same fields as
 * `formatJson`, values quoted when they need it and newlines escaped, so a record stays one line.
 */
export const formatLogfmt = (options: Logger.Logger.Options<unknown>): string =>
  Object.entries(recordOf(options)).map(([key, value]) => `${key}=${logfmtValue(value)}`).join(" ")

/**
 * One record for a person, as `weft run` prints it beside its progress: `    info: message`, the
 * annotations after it (unless `annotations` is false), and the cause, indented, on the lines below.
 */
export const formatPretty = (
  options: Logger.Logger.Options<unknown>,
  style: { readonly annotations?: boolean | undefined; readonly color?: boolean | undefined } = {}
): string => {
  const color = style.color === true
  const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text)
  const level = levelName(options.logLevel)
  const label = level === "error" || level === "fatal"
    ? paint(31, level)
    : level === "warning"
    ? paint(33, level)
    : level
  let line = `    ${label}: ${messageText(options.message)}`
  if (style.annotations !== false) {
    const fields = annotationsInOrder(options.annotations)
    if (fields.length > 0) line += `  ${paint(2, fields.map(([k, v]) => `${k}=${logfmtValue(jsonSafe(v))}`).join(" "))}`
  }
  if (!Cause.isEmpty(options.cause)) {
    line += "\n" + Cause.pretty(options.cause, { renderErrorCause: true }).split("\n").map((l) => `      ${l}`).join(
      "\n"
    )
  }
  return line
}

/** A logger that writes each record in `options.format` (the level is applied by `layer`). */
export const logger = (options: Options): Logger.Logger<unknown, void> => {
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`))
  const style = { annotations: options.annotations, color: options.color }
  switch (options.format) {
    case "json":
      return Logger.make((record) => write(formatJson(record)))
    case "logfmt":
      return Logger.make((record) => write(formatLogfmt(record)))
    case "pretty":
      return Logger.make((record) => write(formatPretty(record, style)))
  }
}

/**
 * Replaces Effect's default logger with `logger(options)` and sets the minimum level: the way an
 * embedding service gets weft's structured logs.
 *
 * @example
 * const WeftLive = Weft.layer({ workflows: [checkout] }).pipe(
 *   Layer.provide(Logging.layer({ format: "json", level: "info" }))
 * )
 */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, logger(options)),
    Logger.minimumLogLevel(toLogLevel(options.level ?? "info"))
  )

// -- private helpers --

const levelName = (level: LogLevel.LogLevel): string => {
  switch (level._tag) {
    case "Warning":
      return "warning"
    default:
      return level._tag.toLowerCase()
  }
}

const recordOf = (options: Logger.Logger.Options<unknown>): Record<string, unknown> => {
  const record: Record<string, unknown> = {
    timestamp: options.date.toISOString(),
    level: levelName(options.logLevel),
    message: messageText(options.message)
  }
  for (const [key, value] of annotationsInOrder(options.annotations)) {
    record[reserved.has(key) ? `_${key}` : key] = jsonSafe(value)
  }
  if (List.isCons(options.spans)) {
    const now = options.date.getTime()
    const spans: Record<string, number> = {}
    for (const span of options.spans) spans[span.label] = now - span.startTime
    record.spans = spans
  }
  if (!Cause.isEmpty(options.cause)) {
    record.cause = Cause.pretty(options.cause, { renderErrorCause: true })
    const failure = Cause.failureOption(options.cause)
    if (Option.isSome(failure)) record.error = errorFields(failure.value)
  }
  return record
}

/** The context weft adds comes first, in this order; other annotations follow by name. */
const contextOrder = ["workerId", "runId", "workflow", "correlationId", "stepId", "attempt"]

// HashMap iteration order is arbitrary: sorted, the fields of every record read the same way.
const annotationsInOrder = (annotations: HashMap.HashMap<string, unknown>): Array<readonly [string, unknown]> =>
  [...HashMap.toEntries(annotations)].sort(([a], [b]) => {
    const i = contextOrder.indexOf(a)
    const j = contextOrder.indexOf(b)
    if (i !== -1 || j !== -1) return (i === -1 ? contextOrder.length : i) - (j === -1 ? contextOrder.length : j)
    return a < b ? -1 : a > b ? 1 : 0
  })

/** A log's message: Effect passes the values given to `Effect.log` as an array. */
const messageText = (message: unknown): string =>
  Array.isArray(message) ? message.map(valueText).join(" ") : valueText(message)

const valueText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value instanceof Error) return `${value.name}: ${value.message}`
  return safeStringify(jsonSafe(value)) ?? String(value)
}

/** A typed error as data: its tag, its message, and its own fields. */
const errorFields = (error: unknown): unknown => {
  if (!Predicate.isObject(error)) return jsonSafe(error)
  const fields: Record<string, unknown> = {}
  if ("_tag" in error) fields._tag = error._tag
  const message = (error as { readonly message?: unknown }).message
  if (typeof message === "string" && message !== "") fields.message = message
  for (const [key, value] of Object.entries(error)) {
    if (key !== "stack" && key !== "_tag") fields[key] = jsonSafe(value)
  }
  return fields
}

/**
 * A value that JSON.stringify accepts and that says what it was: bigints as strings, errors as name
 * and message, cycles cut, functions and symbols dropped.
 */
const jsonSafe = (value: unknown, seen: Set<unknown> = new Set()): unknown => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value)
  if (typeof value === "bigint") return value.toString()
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return undefined
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString()
  if (seen.has(value)) return "[Circular]"
  seen.add(value)
  try {
    if (value instanceof Error) {
      return { name: value.name, message: value.message, ...(jsonSafe({ ...value }, seen) as object) }
    }
    if (Array.isArray(value)) return value.map((item) => jsonSafe(item, seen) ?? null)
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value as object)) {
      const safe = jsonSafe(item, seen)
      if (safe !== undefined) out[key] = safe
    }
    return out
  } finally {
    seen.delete(value)
  }
}

const safeStringify = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? "null"
  } catch (error) {
    return JSON.stringify({ unserializable: String(error) })
  }
}

const needsQuotes = /[\s"=\\]|[\u0000-\u001f]/

const logfmtValue = (value: unknown): string => {
  const text = typeof value === "string" ? value : safeStringify(value)
  if (text !== "" && !needsQuotes.test(text)) return text
  return `"${
    text.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")
      .replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  }"`
}
