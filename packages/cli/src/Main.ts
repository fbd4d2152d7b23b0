/**
 * The `weft` command: parses the command line, runs the command, and maps every outcome to a
 * documented exit code. Progress and diagnostics go to stderr, results to stdout.
 */
import type { Workflow } from "@weft/core"
import { Client, Engine, type Errors, Owner, Runner, Store, Worker } from "@weft/runtime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as JSONSchema from "effect/JSONSchema"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Fs from "node:fs"
import * as Util from "node:util"
import * as Help from "./Help.js"
import * as ModuleLoader from "./ModuleLoader.js"
import * as Output from "./Output.js"
import * as Render from "./Render.js"
import * as StoreConfig from "./StoreConfig.js"
import * as Trace from "./Trace.js"
import { UsageError } from "./UsageError.js"

const { ExitCode } = Help

/** The version printed by `--version`. */
export const VERSION = "0.1.0"

const LEASE_MILLIS = 30_000

const statuses: ReadonlyArray<Store.RunStatus> = [
  "queued",
  "running",
  "sleeping",
  "waiting",
  "succeeded",
  "failed",
  "cancelled"
]

type Flags = {
  readonly input?: string | undefined
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
  readonly help?: boolean | undefined
  readonly version?: boolean | undefined
}

const parseCommandLine = (argv: ReadonlyArray<string>) =>
  Effect.try({
    try: () =>
      Util.parseArgs({
        args: [...argv],
        allowPositionals: true,
        strict: true,
        options: {
          input: { type: "string" },
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
          help: { type: "boolean", short: "h" },
          version: { type: "boolean" }
        }
      }),
    catch: (error) => new UsageError({ message: (error as Error).message })
  })

const allowed: Record<string, ReadonlyArray<keyof Flags>> = {
  run: ["input", "id", "store", "json"],
  resume: ["module", "force", "store", "json"],
  list: ["status", "workflow", "limit", "store", "json"],
  show: ["store", "json"],
  workflows: ["json"],
  start: ["input", "id", "queue", "priority", "delay", "store", "json"],
  worker: ["queue", "concurrency", "store"]
}

const color = (stream: NodeJS.WriteStream) => stream.isTTY === true && process.env.NO_COLOR === undefined

/** Reads `--input`: inline JSON or `@path` to a JSON file. */
const parseInput = (raw: string | undefined): Effect.Effect<unknown, UsageError> =>
  Effect.gen(function*() {
    if (raw === undefined) return undefined
    let text = raw
    let source = "--input"
    if (raw.startsWith("@")) {
      const file = raw.slice(1)
      source = file
      text = yield* Effect.try({
        try: () => Fs.readFileSync(file, "utf8"),
        catch: (error) =>
          new UsageError({ message: `cannot read input file ${file}: ${(error as NodeJS.ErrnoException).message}` })
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

/** Checks the input against the workflow's schema before anything is written. */
const validateInput = (workflow: Workflow.Any, input: unknown, given: boolean) => {
  const decoded = Schema.decodeUnknownEither(workflow.input)(input)
  if (Either.isRight(decoded)) return Effect.void
  const { issue, path } = Engine.describeParseError(decoded.left)
  const expected = String(workflow.input.ast)
  return Effect.fail(
    new UsageError({
      message: given
        ? `input does not match workflow "${workflow.name}"${
          path === "" ? "" : ` at ${path}`
        }: ${issue}\n  expected: ${expected}`
        : `workflow "${workflow.name}" needs an input: --input '<json>' or --input @file.json\n  expected: ${expected}`
    })
  )
}

const storeSpec = (flags: Flags) =>
  Effect.suspend(() => {
    const spec = StoreConfig.parse(flags.store)
    return spec instanceof UsageError ? Effect.fail(spec) : Effect.succeed(spec)
  })

/** Prints a finished run the way `run` and `resume` do, and returns its exit code. */
const report = (runId: string, json: boolean) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const history = yield* client.history(runId)
    const trace = Trace.fromHistory(history.run, history.journal)
    const code = Trace.exitCode(history.run)
    const run = history.run
    if (run.status === "succeeded") {
      const took = run.finishedAt !== undefined && run.startedAt !== undefined ? run.finishedAt - run.startedAt : 0
      yield* Output.err(
        `${Output.paint("✓", "green", color(process.stderr))} ${run.workflow} ${run.id} succeeded in ${
          Render.formatDuration(took)
        }\n`
      )
      yield* Output.out(
        json
          ? `${JSON.stringify({ runId: run.id, workflow: run.workflow, status: run.status, output: run.output })}\n`
          : `${JSON.stringify(run.output, null, 2) ?? "null"}\n`
      )
    } else {
      yield* Output.err(Render.failureTree(trace, { color: color(process.stderr) }) + "\n")
      if (json) yield* Output.out(`${JSON.stringify(trace)}\n`)
    }
    return code
  })

const progressPrinter = (event: Parameters<typeof Render.progress>[0]) =>
  Output.err(`  ${Render.progress(event, { color: color(process.stderr) })}\n`)

const executeHere = (
  workflow: Workflow.Any,
  runId: string,
  options: { readonly owner: string; readonly force: boolean; readonly json: boolean }
) =>
  // The module's own layer (provided by the caller) satisfies the workflow's requirements.
  (Runner.claimAndExecute(workflow, runId, {
    owner: options.owner,
    leaseMillis: LEASE_MILLIS,
    force: options.force,
    onProgress: progressPrinter
  }) as Effect.Effect<
    unknown,
    Errors.RunNotClaimable | Errors.StoreUnavailable | Errors.LeaseLost,
    Store.Store
  >).pipe(
    Effect.catchTag("RunNotClaimable", (error) => Effect.fail(new UsageError({ message: error.message }))),
    Effect.flatMap(() => report(runId, options.json)),
    Effect.onInterrupt(() => Output.err(`\ninterrupted: run ${runId} is resumable with: weft resume ${runId}\n`))
  )

const runCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    const [modulePath, workflowName, ...extra] = positionals
    if (modulePath === undefined) {
      return yield* Effect.fail(new UsageError({ message: "run needs a module: weft run <module> [workflow]" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const input = yield* parseInput(flags.input)
    const spec = yield* storeSpec(flags)
    const loaded = yield* ModuleLoader.load(modulePath)
    const workflow = yield* ModuleLoader.pick(loaded, workflowName)
    yield* validateInput(workflow, input, flags.input !== undefined)
    const owner = Owner.make()
    const json = flags.json === true
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const handle = yield* client.startUnknown(workflow, input, {
        id: flags.id,
        origin: loaded.path,
        claim: { owner, leaseMillis: LEASE_MILLIS }
      }).pipe(
        Effect.catchTags({
          RunConflict: (error) => Effect.fail(new UsageError({ message: error.message })),
          InputInvalid: (error) => Effect.fail(new UsageError({ message: error.message }))
        })
      )
      const existing = yield* client.status(handle.runId)
      if (!handle.created) {
        if (Store.isTerminal(existing.status)) {
          yield* Output.err(`run ${handle.runId} already exists and has ${existing.status}; showing its result\n`)
          return yield* report(handle.runId, json)
        }
        yield* Output.err(`run ${handle.runId} already exists (${existing.status}); resuming it\n`)
      }
      yield* Output.err(
        `${Output.paint("▶", "cyan", color(process.stderr))} ${workflow.name} ${handle.runId} on ${
          StoreConfig.describe(spec)
        }\n`
      )
      return yield* executeHere(workflow, handle.runId, { owner, force: false, json })
    }).pipe(Effect.provide(Layer.provideMerge(StoreConfig.layer(spec), loaded.layer ?? Layer.empty)))
  })

const resumeCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    const [runId, ...extra] = positionals
    if (runId === undefined) {
      return yield* Effect.fail(new UsageError({ message: "resume needs a run id: weft resume <run-id>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const spec = yield* storeSpec(flags)
    const json = flags.json === true
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const run = yield* client.status(runId)
      if (Store.isTerminal(run.status)) {
        return yield* Effect.fail(
          new UsageError({
            message: `run ${runId} has already ${run.status}: nothing to resume (see weft show ${runId})`
          })
        )
      }
      const modulePath = flags.module ?? run.origin
      if (modulePath === undefined) {
        return yield* Effect.fail(
          new UsageError({ message: `run ${runId} does not record its module: give it with --module <path>` })
        )
      }
      const loaded = yield* ModuleLoader.load(modulePath)
      const workflow = yield* ModuleLoader.pick(loaded, run.workflow)
      yield* Output.err(
        `${Output.paint("▶", "cyan", color(process.stderr))} resuming ${workflow.name} ${runId} on ${
          StoreConfig.describe(spec)
        }\n`
      )
      return yield* executeHere(workflow, runId, { owner: Owner.make(), force: flags.force === true, json }).pipe(
        Effect.provide(loaded.layer ?? Layer.empty)
      )
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })

/** `--queue a --queue b,c`: the queues named, in order, without repeats. */
const parseQueues = (raw: ReadonlyArray<string> | undefined): Effect.Effect<ReadonlyArray<string>, UsageError> => {
  const queues = [...new Set((raw ?? []).flatMap((q) => q.split(",")).map((q) => q.trim()))]
  if (queues.some((q) => q === "")) {
    return Effect.fail(new UsageError({ message: "--queue needs a queue name, e.g. --queue default" }))
  }
  return Effect.succeed(queues)
}

const parseWhole = (
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

/** `--delay`: a duration as effect's Duration reads it ("5 seconds", "2 minutes", "1500 millis"). */
const parseDelay = (raw: string | undefined): Effect.Effect<Duration.Duration | undefined, UsageError> => {
  if (raw === undefined) return Effect.succeed(undefined)
  const decoded = Duration.decodeUnknown(raw.trim())
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
    return Effect.fail(
      new UsageError({
        message: `--delay "${raw}" is not a duration: write a number and a unit, e.g. "30 seconds", "5 minutes", ` +
          `"2 hours" (units: millis, seconds, minutes, hours, days, weeks)`
      })
    )
  }
  return Effect.succeed(decoded.value)
}

const startCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    const [modulePath, workflowName, ...extra] = positionals
    if (modulePath === undefined) {
      return yield* Effect.fail(new UsageError({ message: "start needs a module: weft start <module> [workflow]" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const queues = yield* parseQueues(flags.queue)
    if (queues.length > 1) {
      return yield* Effect.fail(new UsageError({ message: `a run goes to one queue, got --queue ${queues.join(",")}` }))
    }
    const priority = yield* parseWhole("priority", flags.priority, {})
    const delay = yield* parseDelay(flags.delay)
    const input = yield* parseInput(flags.input)
    const spec = yield* storeSpec(flags)
    const loaded = yield* ModuleLoader.load(modulePath)
    const workflow = yield* ModuleLoader.pick(loaded, workflowName)
    yield* validateInput(workflow, input, flags.input !== undefined)
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const now = yield* Clock.currentTimeMillis
      const handle = yield* client.startUnknown(workflow, input, {
        id: flags.id,
        queue: queues[0],
        priority,
        origin: loaded.path,
        wakeAt: delay === undefined ? undefined : now + Duration.toMillis(delay)
      }).pipe(
        Effect.catchTags({
          RunConflict: (error) => Effect.fail(new UsageError({ message: error.message })),
          InputInvalid: (error) => Effect.fail(new UsageError({ message: error.message }))
        })
      )
      if (!handle.created) {
        const existing = yield* client.status(handle.runId)
        yield* Output.err(`run ${handle.runId} already exists (${existing.status}); nothing new was queued\n`)
      } else {
        yield* Output.err(
          `queued ${workflow.name} ${handle.runId} on ${StoreConfig.describe(spec)}${
            delay === undefined ? "" : ` to start after ${Duration.format(delay)}`
          }\n`
        )
      }
      yield* Output.out(flags.json === true ? `${JSON.stringify({ runId: handle.runId })}\n` : `${handle.runId}\n`)
      return ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })

// Set once a worker runs: interrupting it (SIGINT, SIGTERM) is then its normal end, exit 0.
let workerRunning = false

const workerCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    if (positionals.length === 0) {
      return yield* Effect.fail(
        new UsageError({ message: "worker needs at least one module: weft worker <module...>" })
      )
    }
    const queues = yield* parseQueues(flags.queue)
    const concurrency = (yield* parseWhole("concurrency", flags.concurrency, { min: 1 })) ?? 10
    const spec = yield* storeSpec(flags)
    const workflows = new Map<string, Workflow.Any>()
    const layers: Array<Layer.Layer<any, any, never>> = []
    for (const modulePath of positionals) {
      const loaded = yield* ModuleLoader.load(modulePath)
      for (const { workflow } of loaded.workflows) {
        const other = workflows.get(workflow.name)
        if (other !== undefined && other !== workflow) {
          return yield* Effect.fail(
            new UsageError({ message: `two modules export a workflow named "${workflow.name}"; names must be unique` })
          )
        }
        workflows.set(workflow.name, workflow)
      }
      if (loaded.layer !== undefined) layers.push(loaded.layer)
    }
    if (workflows.size === 0) {
      return yield* Effect.fail(
        new UsageError({ message: `no workflow in ${positionals.join(", ")}: export one made with Workflow.make` })
      )
    }
    const owner = Owner.make()
    const c = color(process.stderr)
    const names = [...workflows.keys()]
    const onEvent = (event: Worker.WorkerEvent) => {
      const { id, workflow } = event.run
      switch (event._tag) {
        case "RunStarted":
          return Output.err(`${Output.paint("▶", "cyan", c)} ${workflow} ${id} started\n`)
        case "RunFinished":
          return Output.err(
            event.outcome.status === "succeeded"
              ? `${Output.paint("✓", "green", c)} ${workflow} ${id} succeeded\n`
              : `${Output.paint("✗", "red", c)} ${workflow} ${id} ${event.outcome.status} (weft show ${id})\n`
          )
        case "RunStopped":
          return Output.err(`! ${workflow} ${id} stopped here: ${event.reason}\n`)
        default:
          return Effect.void
      }
    }
    return yield* Effect.gen(function*() {
      yield* Output.err(
        `worker ${owner} on ${StoreConfig.describe(spec)}: queues ${
          (queues.length === 0 ? ["default"] : queues).join(", ")
        }; concurrency ${concurrency}; workflows ${names.join(", ")}\n`
      )
      workerRunning = true
      return yield* (Worker.run({
        workflows: [...workflows.values()],
        queues: queues.length === 0 ? undefined : queues,
        concurrency,
        leaseMillis: LEASE_MILLIS,
        owner,
        onEvent
      }) as Effect.Effect<never, Errors.StoreUnavailable, Store.Store>).pipe(
        Effect.onInterrupt(() => Output.err(`worker ${owner} stopped; runs in flight were released and stay queued\n`))
      )
    }).pipe(Effect.provide(Layer.provideMerge(StoreConfig.layer(spec), Layer.mergeAll(Layer.empty, ...layers))))
  })

const listCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    if (positionals.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${positionals.join(" ")}` }))
    }
    if (flags.status !== undefined && !statuses.includes(flags.status as Store.RunStatus)) {
      return yield* Effect.fail(
        new UsageError({ message: `unknown status "${flags.status}": use one of ${statuses.join(", ")}` })
      )
    }
    const limit = flags.limit === undefined ? 50 : Number(flags.limit)
    if (!Number.isInteger(limit) || limit < 1) {
      return yield* Effect.fail(
        new UsageError({ message: `--limit must be a positive whole number, got "${flags.limit}"` })
      )
    }
    const spec = yield* storeSpec(flags)
    return yield* Effect.gen(function*() {
      const store = yield* Store.Store
      const runs = yield* store.listRuns({
        status: flags.status as Store.RunStatus | undefined,
        workflow: flags.workflow,
        limit
      })
      yield* Output.out(
        flags.json === true
          ? `${JSON.stringify(runs)}\n`
          : Render.runTable(runs, { color: color(process.stdout) }) + "\n"
      )
      return ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })

const showCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    const [runId, ...extra] = positionals
    if (runId === undefined) {
      return yield* Effect.fail(new UsageError({ message: "show needs a run id: weft show <run-id>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const spec = yield* storeSpec(flags)
    return yield* Effect.gen(function*() {
      const client = yield* Client.Client
      const history = yield* client.history(runId)
      const trace = Trace.fromHistory(history.run, history.journal)
      yield* Output.out(
        flags.json === true
          ? `${JSON.stringify(trace)}\n`
          : Render.timeline(trace, { color: color(process.stdout) }) + "\n"
      )
      return ExitCode.ok
    }).pipe(Effect.provide(StoreConfig.layer(spec)))
  })

// Schema's own printing shows a tagged error class as `(X (Encoded side) <-> X)`; a person wants
// the class name and its fields.
const astText = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "Union":
      return ast.types.map(astText).join(" | ")
    case "Transformation": {
      const name = SchemaAST.getIdentifierAnnotation(ast.to).pipe(Option.getOrUndefined)
      if (name === undefined || ast.from._tag !== "TypeLiteral") return String(ast)
      const fields = ast.from.propertySignatures
        .filter((p) => p.name !== "_tag")
        .map((p) => `${String(p.name)}${p.isOptional ? "?" : ""}: ${String(p.type)}`)
      return fields.length === 0 ? name : `${name} { ${fields.join("; ")} }`
    }
    default:
      return String(ast)
  }
}

const schemaText = (schema: Schema.Schema.AnyNoContext) => astText(schema.ast)

const jsonSchema = (schema: Schema.Schema.AnyNoContext): unknown => {
  try {
    return JSONSchema.make(schema)
  } catch {
    return { description: String(schema.ast) }
  }
}

const workflowsCommand = (positionals: ReadonlyArray<string>, flags: Flags) =>
  Effect.gen(function*() {
    const [modulePath, ...extra] = positionals
    if (modulePath === undefined) {
      return yield* Effect.fail(new UsageError({ message: "workflows needs a module: weft workflows <module>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const loaded = yield* ModuleLoader.load(modulePath)
    if (flags.json === true) {
      const data = loaded.workflows.map(({ exportName, workflow }) => ({
        name: workflow.name,
        export: exportName,
        description: workflow.description,
        version: workflow.version,
        idempotencyKey: workflow.idempotencyKey !== undefined,
        input: jsonSchema(workflow.input),
        success: jsonSchema(workflow.success),
        error: jsonSchema(workflow.error)
      }))
      yield* Output.out(`${JSON.stringify(data)}\n`)
      return ExitCode.ok
    }
    if (loaded.workflows.length === 0) {
      yield* Output.out(`${loaded.path} exports no workflow\n`)
      return ExitCode.ok
    }
    const lines: Array<string> = []
    for (const { exportName, workflow } of loaded.workflows) {
      lines.push(`${workflow.name}${exportName === workflow.name ? "" : ` (export ${exportName})`}`)
      if (workflow.description !== undefined) lines.push(`  ${workflow.description}`)
      lines.push(`  input:   ${schemaText(workflow.input)}`)
      lines.push(`  success: ${schemaText(workflow.success)}`)
      lines.push(`  error:   ${schemaText(workflow.error)}`)
      if (workflow.idempotencyKey !== undefined) {
        lines.push(`  idempotent: a second start with the same key is the same run`)
      }
      lines.push("")
    }
    yield* Output.out(lines.join("\n"))
    return ExitCode.ok
  })

const commands = {
  run: runCommand,
  resume: resumeCommand,
  list: listCommand,
  show: showCommand,
  workflows: workflowsCommand,
  start: startCommand,
  worker: workerCommand
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
      const topic = positionals[0]
      yield* Output.out(topic !== undefined && topic in Help.commands ? Help.commands[topic] : Help.main)
      return command === undefined && flags.help !== true ? ExitCode.usage : ExitCode.ok
    }
    if (!(command in commands)) {
      return yield* Effect.fail(new UsageError({ message: `unknown command "${command}"; run weft help` }))
    }
    const name = command as keyof typeof commands
    if (flags.help === true) {
      yield* Output.out(Help.commands[name])
      return ExitCode.ok
    }
    const unknown = (Object.keys(flags) as Array<keyof Flags>).filter((flag) => !allowed[name].includes(flag))
    if (unknown.length > 0) {
      return yield* Effect.fail(
        new UsageError({ message: `weft ${name} does not take ${unknown.map((f) => `--${f}`).join(", ")}` })
      )
    }
    return yield* commands[name](positionals, flags)
  }).pipe(
    Effect.catchAll((error): Effect.Effect<number> => {
      switch (error._tag) {
        case "UsageError":
          return Effect.as(Output.err(`weft: ${error.message}\n`), ExitCode.usage)
        case "RunNotFound":
          return Effect.as(Output.err(`weft: ${error.message}\n`), ExitCode.usage)
        case "StoreUnavailable":
        case "SchemaTooNew":
        case "LeaseLost":
          return Effect.as(Output.err(`weft: ${error.message}\n`), ExitCode.store)
        default:
          return Effect.as(
            Output.err(`weft: ${(error as { message?: string }).message ?? String(error)}\n`),
            ExitCode.defect
          )
      }
    }),
    Effect.provide(Output.stderrLogger),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Output.err(`weft: internal error (a bug in weft, please report it):\n${Cause.pretty(Cause.die(defect))}\n`),
        ExitCode.defect
      )
    )
  )

/** Exit code for a main fiber that ended by interruption or an unexpected failure. */
export const exitCodeOf = (exit: Exit.Exit<number>): number =>
  Exit.isSuccess(exit)
    ? exit.value
    : Cause.isInterruptedOnly(exit.cause)
    ? (workerRunning ? ExitCode.ok : ExitCode.interrupted)
    : ExitCode.defect
