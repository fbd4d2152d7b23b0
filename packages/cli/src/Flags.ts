/**
 * The flags of the `weft` command line as the commands receive them, and the parsers that turn
 * their text into values. A bad value is a `UsageError` that names the flag and says what it wants.
 */
import { Logging } from "@weft/runtime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as StoreConfig from "./StoreConfig.js"
import { UsageError } from "./UsageError.js"

/** Every flag of every command, as `util.parseArgs` returns them: unchecked text. */
export type Flags = {
  readonly input?: string | undefined
  readonly payload?: string | undefined
  readonly reason?: string | undefined
  readonly wait?: boolean | undefined
  readonly id?: string | undefined
  readonly store?: string | undefined
  readonly json?: boolean | undefined
  readonly module?: string | undefined
  readonly force?: boolean | undefined
  readonly status?: string | undefined
  readonly workflow?: string | undefined
  readonly limit?: string | undefined
  readonly queue?: ReadonlyArray<string> | undefined
  readonly priority?: string | undefined
  readonly delay?: string | undefined
  readonly concurrency?: string | undefined
  readonly grace?: string | undefined
  readonly "max-recoveries"?: string | undefined
  readonly lease?: string | undefined
  readonly "correlation-id"?: string | undefined
  readonly "log-format"?: string | undefined
  readonly "log-level"?: string | undefined
  readonly since?: string | undefined
  readonly "from-step"?: string | undefined
  readonly "if-finished"?: string | undefined
  readonly help?: boolean | undefined
  readonly version?: boolean | undefined
}

/** Reads `--input`: inline JSON or `@path` to a JSON file. */
export const parseInput = (raw: string | undefined): Effect.Effect<unknown, UsageError> => parseJson("input", raw)

/** Reads a JSON flag (`--input`, `--payload`): inline JSON or `@path` to a JSON file. */
export const parseJson = (flag: string, raw: string | undefined): Effect.Effect<unknown, UsageError> =>
  Effect.gen(function*() {
    if (raw === undefined) return undefined
    let text = raw
    let source = `--${flag}`
    if (raw.startsWith("@")) {
      const file = raw.slice(1)
      source = file
      text = yield* Effect.try({
        try: () => Fs.readFileSync(file, "utf8"),
        catch: (error) =>
          new UsageError({
            message: `cannot read ${flag} file ${file}: ${(error as NodeJS.ErrnoException).message}`
          })
      })
    }
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) =>
        new UsageError({
          message: `${source} is not valid JSON: ${(error as Error).message}\n  got: ${text.slice(0, 200)}`
        })
    })
  })

/** `--store` (else `$WEFT_STORE`, else the default) as a store location. */
export const storeSpec = (flags: Flags) =>
  Effect.suspend(() => {
    const spec = StoreConfig.parse(flags.store)
    return spec instanceof UsageError ? Effect.fail(spec) : Effect.succeed(spec)
  })

/** `--queue a --queue b,c`: the queues named, in order, without repeats. */
export const parseQueues = (
  raw: ReadonlyArray<string> | undefined
): Effect.Effect<ReadonlyArray<string>, UsageError> => {
  const queues = [...new Set((raw ?? []).flatMap((q) => q.split(",")).map((q) => q.trim()))]
  if (queues.some((q) => q === "")) {
    return Effect.fail(new UsageError({ message: "--queue needs a queue name, e.g. --queue default" }))
  }
  return Effect.succeed(queues)
}

/** A whole-number flag (`--priority`, `--concurrency`), at least `min` when given. */
export const parseWhole = (
  flag: string,
  raw: string | undefined,
  options: { readonly min?: number }
): Effect.Effect<number | undefined, UsageError> => {
  if (raw === undefined) return Effect.succeed(undefined)
  const n = Number(raw)
  if (raw.trim() === "" || !Number.isSafeInteger(n) || (options.min !== undefined && n < options.min)) {
    return Effect.fail(
      new UsageError({
        message: `--${flag} must be a ${options.min === 1 ? "positive " : ""}whole number, got "${raw}"`
      })
    )
  }
  return Effect.succeed(n)
}

/**
 * A duration flag (`--delay`, `--grace`) as effect's Duration reads it ("5 seconds", "2 minutes",
 * "1500 millis").
 */
export const parseDuration = (
  flag: string,
  raw: string | undefined
): Effect.Effect<Duration.Duration | undefined, UsageError> => {
  if (raw === undefined) return Effect.succeed(undefined)
  const decoded = Duration.decodeUnknown(raw.trim())
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
    return Effect.fail(
      new UsageError({
        message: `--${flag} "${raw}" is not a duration: write a number and a unit, e.g. "30 seconds", "5 minutes", ` +
          `"2 hours" (units: millis, seconds, minutes, hours, days, weeks)`
      })
    )
  }
  return Effect.succeed(decoded.value)
}

/** What `--log-format` and `--log-level` chose, with the command's defaults filled in. */
export interface LogOptions {
  readonly format: Logging.Format
  readonly level: Logging.Level
}

/**
 * `--log-format json|logfmt|pretty` (else `$WEFT_LOG_FORMAT`, else `defaultFormat`: the command's,
 * pretty where a person watches) and `--log-level debug|info|warning|error|none` (else
 * `$WEFT_LOG_LEVEL`, else info). An empty variable counts as unset.
 */
export const parseLogOptions = (
  flags: Flags,
  defaultFormat: Logging.Format
): Effect.Effect<LogOptions, UsageError> => {
  const fromEnv = (name: string) => {
    const value = process.env[name]
    return value === undefined || value === "" ? undefined : value
  }
  const format = flags["log-format"] ?? fromEnv("WEFT_LOG_FORMAT") ?? defaultFormat
  if (!Logging.isFormat(format)) {
    const source = flags["log-format"] === undefined ? "$WEFT_LOG_FORMAT" : "--log-format"
    return Effect.fail(
      new UsageError({ message: `${source} must be one of ${Logging.formats.join(", ")}, got "${format}"` })
    )
  }
  const level = flags["log-level"] ?? fromEnv("WEFT_LOG_LEVEL") ?? "info"
  if (!Logging.isLevel(level)) {
    const source = flags["log-level"] === undefined ? "$WEFT_LOG_LEVEL" : "--log-level"
    return Effect.fail(
      new UsageError({ message: `${source} must be one of ${Logging.levels.join(", ")}, got "${level}"` })
    )
  }
  return Effect.succeed({ format, level })
}

/** The longest `--correlation-id`: it is stored with the run and put on every log line. */
const MAX_CORRELATION_ID = 200

/** `--correlation-id`: your id for the run in your logs (a request id); printable text, at most 200 characters. */
export const parseCorrelationId = (raw: string | undefined): Effect.Effect<string | undefined, UsageError> => {
  if (raw === undefined) return Effect.succeed(undefined)

  if (raw.trim() === "" || raw.length > MAX_CORRELATION_ID || /[\u0000-\u001f\u007f]/.test(raw)) {
    return Effect.fail(
      new UsageError({
        message: `--correlation-id must be 1 to ${MAX_CORRELATION_ID} printable characters, e.g. ` +
          `--correlation-id req-7f3a, got ${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw)}`
      })
    )
  }
  return Effect.succeed(raw)
}

const shortUnits: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/**
 * `--since`: a time, as a duration before `now` (`"2 hours"` as effect's Duration reads it, or the
 * short `30m`, `2h`, `1d`, `45s`, `500ms`, `1w`) or an ISO date (`2024-05-01`, `2024-05-01T12:00:00Z`),
 * in epoch milliseconds.
 */
export const parseSince = (raw: string | undefined, now: number): Effect.Effect<number | undefined, UsageError> => {
  if (raw === undefined) return Effect.succeed(undefined)
  const text = raw.trim()
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text)
  if (short !== null) return Effect.succeed(now - Number(short[1]) * shortUnits[short[2]])
  const decoded = Duration.decodeUnknown(text)
  if (Option.isSome(decoded) && Duration.isFinite(decoded.value)) {
    return Effect.succeed(now - Duration.toMillis(decoded.value))
  }
  const date = /^\d{4}-\d\d-\d\d(?:[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?)?$/.test(text) ? Date.parse(text) : NaN
  if (Number.isFinite(date)) return Effect.succeed(date)
  return Effect.fail(
    new UsageError({
      message: `--since "${raw}" is neither a duration nor a date: write how long ago, e.g. "2 hours", "30m", "1d", ` +
        `or an ISO date, e.g. 2024-05-01 or 2024-05-01T12:00:00Z`
    })
  )
}

/** `--if-finished`: what a start does when it finds its run finished (see `Client.StartOptions.ifFinished`). */
export const parseIfFinished = (
  raw: string | undefined
): Effect.Effect<"return" | "restart-failed" | undefined, UsageError> =>
  raw === undefined || raw === "return" || raw === "restart-failed"
    ? Effect.succeed(raw)
    : Effect.fail(
      new UsageError({
        message: `--if-finished must be "return" (give back the finished run, the default) or "restart-failed" ` +
          `(start a failed or cancelled run over), got "${raw}"`
      })
    )
