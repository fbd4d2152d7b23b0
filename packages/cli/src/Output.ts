/**
 * Where the CLI writes: results to stdout, progress and diagnostics to stderr. Writes are
 * synchronous enough for a CLI and never interleave within a line. With `--log-format json` or
 * `logfmt`, every line on stderr is a log record: progress lines become records with their fields.
 */
import { Logging } from "@weft/runtime"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

/** Writes to stdout. */
export const out = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stdout.write(text))

/** Writes to stderr. */
export const err = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stderr.write(text))

const codes = { green: 32, red: 31, yellow: 33, cyan: 36, dim: 2 } as const

/** Colors a piece of text when `enabled` (a TTY, and NO_COLOR unset). */
export const paint = (text: string, color: keyof typeof codes, enabled: boolean): string =>
  enabled ? `\u001b[${codes[color]}m${text}\u001b[0m` : text

/** The log format of this command (`--log-format`): `main` sets it for the command's fiber. */
export const logFormat: FiberRef.FiberRef<Logging.Format> = globalValue(
  Symbol.for("@weft/cli/Output/logFormat"),
  () => FiberRef.unsafeMake<Logging.Format>("pretty")
)

/** The logger of a command: stderr, in its format, from its level; `pretty` hides annotations when asked. */
export const logging = (options: {
  readonly format: Logging.Format
  readonly level: Logging.Level
  readonly annotations: boolean
}) =>
  Logging.layer({
    format: options.format,
    level: options.level,
    annotations: options.annotations,
    color: process.stderr.isTTY === true && process.env.NO_COLOR === undefined
  })

/** The severity of a notice written as a log record. */
export type Severity = "info" | "warning" | "error"

/**
 * A line for the person watching, on stderr: as it is in the `pretty` format; otherwise a log record
 * at `severity` whose message is `message` (default: the text without colors and symbols' padding)
 * and whose fields are `fields`. Use it for every progress or status line of a command, so that
 * `--log-format json` leaves nothing on stderr that is not JSON.
 */
export const notice = (
  text: string,
  options: {
    readonly message?: string | undefined
    readonly fields?: Record<string, unknown> | undefined
    readonly severity?: Severity | undefined
    readonly cause?: Cause.Cause<unknown> | undefined
  } = {}
): Effect.Effect<void> =>
  Effect.flatMap(FiberRef.get(logFormat), (format) => {
    if (format === "pretty") return err(text.endsWith("\n") ? text : `${text}\n`)
    const message = options.message ?? plain(text)
    const args: Array<unknown> = options.cause === undefined ? [message] : [message, options.cause]
    const log = options.severity === "error"
      ? Effect.logError(...args)
      : options.severity === "warning"
      ? Effect.logWarning(...args)
      : Effect.logInfo(...args)
    return options.fields === undefined ? log : Effect.annotateLogs(log, options.fields)
  })

/**
 * What a command failed with, on stderr: `weft: message` in the `pretty` format, otherwise an
 * `error` record, written whatever `--log-level` says (the exit code alone would not say why).
 */
export const problem = (message: string): Effect.Effect<void> =>
  Effect.flatMap(
    FiberRef.get(logFormat),
    (format) =>
      format === "pretty"
        ? err(`weft: ${message}\n`)
        : Logger.withMinimumLogLevel(Effect.logError(message), LogLevel.All)
  )

/** Text without ANSI colors, trimmed: the message of a progress line as a log record. */
export const plain = (text: string): string => text.replace(/\u001b\[[0-9;]*m/g, "").trim()
