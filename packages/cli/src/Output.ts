/**
 * Where the CLI writes: results to stdout, progress and diagnostics to stderr. Writes are
 * synchronous enough for a CLI and never interleave within a line.
 */
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"

/** Writes to stdout. */
export const out = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stdout.write(text))

/** Writes to stderr. */
export const err = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stderr.write(text))

const codes = { green: 32, red: 31, yellow: 33, cyan: 36, dim: 2 } as const

/** Colors a piece of text when `enabled` (a TTY, and NO_COLOR unset). */
export const paint = (text: string, color: keyof typeof codes, enabled: boolean): string =>
  enabled ? `\u001b[${codes[color]}m${text}\u001b[0m` : text

/**
 * Effect's log lines (from the user's steps and the runtime) go to stderr beside the progress
 * lines, never to stdout, which holds only the result.
 */
export const stderrLogger = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
    process.stderr.write(`    ${logLevel.label.toLowerCase()}: ${text}\n`)
  })
)
