/**
 * The `weft` command: parses the command line, runs the command, and maps every outcome to a
 * documented exit code. Progress and diagnostics go to stderr, results to stdout. Each command
 * lives in `commands/`.
 */
import type { Logging } from "@weft/runtime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Util from "node:util"
import { cancelCommand } from "./commands/cancel.js"
import { helpCommand } from "./commands/help.js"
import { listCommand } from "./commands/list.js"
import { resumeCommand } from "./commands/resume.js"
import { retryCommand } from "./commands/retry.js"
import { runCommand } from "./commands/run.js"
import type { CommandError } from "./commands/shared.js"
import { showCommand } from "./commands/show.js"
import { signalCommand } from "./commands/signal.js"
import { startCommand } from "./commands/start.js"
import { isWorkerRunning, workerCommand } from "./commands/worker.js"
import { workflowsCommand } from "./commands/workflows.js"
import { type Flags, parseLogOptions } from "./Flags.js"
import * as Help from "./Help.js"
import * as Output from "./Output.js"
import { UsageError } from "./UsageError.js"

const { ExitCode } = Help

/** The version printed by `--version`. */
export const VERSION = "0.1.0"

const parseCommandLine = (argv: ReadonlyArray<string>) =>
  Effect.try({
    try: () =>
      Util.parseArgs({
        args: [...argv],
        allowPositionals: true,
        strict: true,
        options: {
          input: { type: "string" },
          payload: { type: "string" },
          reason: { type: "string" },
          wait: { type: "boolean" },
          id: { type: "string" },
          store: { type: "string" },
          json: { type: "boolean" },
          module: { type: "string" },
          force: { type: "boolean" },
          status: { type: "string" },
          workflow: { type: "string" },
          limit: { type: "string" },
          queue: { type: "string", multiple: true },
          priority: { type: "string" },
          delay: { type: "string" },
          concurrency: { type: "string" },
          grace: { type: "string" },
          "max-recoveries": { type: "string" },
          lease: { type: "string" },
          "correlation-id": { type: "string" },
          "log-format": { type: "string" },
          "log-level": { type: "string" },
          since: { type: "string" },
          "from-step": { type: "string" },
          "if-finished": { type: "string" },
          help: { type: "boolean", short: "h" },
          version: { type: "boolean" }
        }
      }),
    catch: (error) => new UsageError({ message: (error as Error).message })
  })

/** The flags every command takes. */
const global: ReadonlyArray<keyof Flags> = ["log-format", "log-level"]

const allowed: Record<string, ReadonlyArray<keyof Flags>> = {
  run: ["input", "id", "correlation-id", "if-finished", "store", "json"],
  resume: ["module", "force", "store", "json"],
  list: ["status", "workflow", "since", "limit", "store", "json"],
  show: ["store", "json"],
  workflows: ["json"],
  start: ["input", "id", "correlation-id", "queue", "priority", "delay", "if-finished", "store", "json"],
  worker: ["queue", "concurrency", "grace", "lease", "max-recoveries", "store"],
  signal: ["payload", "module", "store", "json"],
  cancel: ["reason", "wait", "store", "json"],
  retry: ["from-step", "reason", "wait", "status", "workflow", "since", "limit", "store", "json"]
}

/**
 * The log format when `--log-format` is not given: a worker's stderr usually goes to a log collector
 * (JSON) unless a person watches it in a terminal; every other command has a person watching.
 */
const defaultLogFormat = (command: keyof typeof commands): Logging.Format =>
  command === "worker" && process.stderr.isTTY !== true ? "json" : "pretty"

const commands = {
  run: runCommand,
  resume: resumeCommand,
  list: listCommand,
  show: showCommand,
  workflows: workflowsCommand,
  start: startCommand,
  worker: workerCommand,
  signal: signalCommand,
  cancel: cancelCommand,
  retry: retryCommand
} as const

/** Runs the command line and returns the process's exit code. */
export const main = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  Effect.gen(function*() {
    const parsed = yield* parseCommandLine(argv)
    const flags = parsed.values as Flags
    const [command, ...positionals] = parsed.positionals
    if (flags.version === true) {
      yield* Output.out(`weft ${VERSION}\n`)
      return ExitCode.ok
    }
    if (command === undefined || command === "help") {
      const code = yield* helpCommand(positionals[0])
      return command === undefined && flags.help !== true ? ExitCode.usage : code
    }
    // Own keys only: `weft constructor` is not a command.
    if (!Object.hasOwn(commands, command)) {
      return yield* Effect.fail(new UsageError({ message: `unknown command "${command}"; run weft help` }))
    }
    const name = command as keyof typeof commands
    if (flags.help === true) {
      return yield* helpCommand(name)
    }
    const unknown = (Object.keys(flags) as Array<keyof Flags>).filter((flag) =>
      !allowed[name].includes(flag) && !global.includes(flag)
    )
    if (unknown.length > 0) {
      return yield* Effect.fail(
        new UsageError({ message: `weft ${name} does not take ${unknown.map((f) => `--${f}`).join(", ")}` })
      )
    }
    const log = yield* parseLogOptions(flags, defaultLogFormat(name))
    // One logger for the whole command: Effect.provide of a logger layer does not undo itself, so a
    // second one would write every line twice. `weft run` prints progress that says which run and
    // step a line belongs to, so its pretty lines leave the annotations out.
    return yield* commands[name](positionals, flags).pipe(
      Effect.catchAll(report),
      Effect.locally(Output.logFormat, log.format),
      Effect.provide(Output.logging({ ...log, annotations: name === "worker" }))
    )
  }).pipe(
    Effect.catchAll(report),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Output.err(`weft: internal error (a bug in weft, please report it):\n${Cause.pretty(Cause.die(defect))}\n`),
        ExitCode.defect
      )
    )
  )

/** Says what a command failed with (see `Output.problem`) and returns its exit code. */
const report = (error: CommandError): Effect.Effect<number> => {
  switch (error._tag) {
    case "UsageError":
    case "RunNotFound":
      return Effect.as(Output.problem(error.message), ExitCode.usage)
    case "StoreUnavailable":
    case "SchemaTooNew":
    case "LeaseLost":
      return Effect.as(Output.problem(error.message), ExitCode.store)
    default:
      return Effect.as(
        Output.problem((error as { message?: string }).message ?? String(error)),
        ExitCode.defect
      )
  }
}

/** Exit code for a main fiber that ended by interruption or an unexpected failure. */
export const exitCodeOf = (exit: Exit.Exit<number>): number =>
  Exit.isSuccess(exit)
    ? exit.value
    : Cause.isInterruptedOnly(exit.cause)
    ? (isWorkerRunning() ? ExitCode.ok : ExitCode.interrupted)
    : ExitCode.defect
