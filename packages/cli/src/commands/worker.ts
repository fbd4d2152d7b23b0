/**
 * `weft worker <module...>`: claims queued runs of the workflows the modules export and executes
 * them, several at once, until SIGINT or SIGTERM; then runs in flight get `--grace` to reach their
 * next step boundary before they are interrupted and released. Each run it executes is leased to it
 * for `--lease`, renewed by heartbeat: when the worker dies, another takes the run over once that
 * lease expires.
 */
import { Queue, type Workflow } from "@weft/core"
import { Engine, Limits, Owner, type Store, Worker } from "@weft/runtime"
import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import { parseDuration, parseQueues, parseWhole, storeSpec } from "../Flags.js"
import * as ModuleLoader from "../ModuleLoader.js"
import * as Output from "../Output.js"
import * as StoreConfig from "../StoreConfig.js"
import { UsageError } from "../UsageError.js"
import { color, type Command, LEASE_MILLIS } from "./shared.js"

/** How long a shutdown waits for runs in flight when `--grace` is not given. */
const DEFAULT_GRACE = Duration.seconds(30)

/**
 * The shortest `--lease`: the heartbeat renews a lease every third of it, so a shorter one would be
 * lost to a slow round trip or a busy event loop, and the run taken over while it still runs here.
 */
const MIN_LEASE = Duration.seconds(1)

/** `--lease`: how long a run stays leased to this worker without a heartbeat (default 30 seconds). */
const parseLease = (raw: string | undefined): Effect.Effect<number, UsageError> =>
  Effect.flatMap(parseDuration("lease", raw), (lease) => {
    if (lease === undefined) return Effect.succeed(LEASE_MILLIS)
    if (Duration.lessThan(lease, MIN_LEASE)) {
      return Effect.fail(
        new UsageError({
          message: `--lease "${raw}" is too short: it must be at least 1 second (the heartbeat renews it ` +
            `every third of it), e.g. "10 seconds"`
        })
      )
    }
    return Effect.succeed(Duration.toMillis(lease))
  })

// Set once a worker runs: interrupting it (SIGINT, SIGTERM) is then its normal end, exit 0.
let workerRunning = false

/** Whether a worker has started in this process, so that its interruption is a normal end. */
export const isWorkerRunning = (): boolean => workerRunning

export const workerCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    if (positionals.length === 0) {
      return yield* Effect.fail(
        new UsageError({ message: "worker needs at least one module: weft worker <module...>" })
      )
    }
    const queues = yield* parseQueues(flags.queue)
    const concurrency = (yield* parseWhole("concurrency", flags.concurrency, { min: 1 })) ?? 10
    const grace = (yield* parseDuration("grace", flags.grace)) ?? DEFAULT_GRACE
    const leaseMillis = yield* parseLease(flags.lease)
    // The poison-run limit of the workflows that declare none (Workflow.make({ maxRecoveries })).
    const maxRecoveries = yield* parseWhole("max-recoveries", flags["max-recoveries"], { min: 0 })
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
    // Every line is a notice: as it reads in the pretty format, a record with the run's fields in the others.
    const say = (
      text: string,
      message: string,
      options: {
        readonly run?: Store.RunRecord | undefined
        readonly fields?: Record<string, unknown> | undefined
        readonly severity?: Output.Severity | undefined
        readonly cause?: Cause.Cause<unknown> | undefined
      } = {}
    ) =>
      Output.notice(text, {
        message,
        severity: options.severity,
        cause: options.cause,
        fields: {
          workerId: owner,
          ...(options.run === undefined ? {} : Engine.logAnnotations(options.run)),
          ...options.fields
        }
      })
    // A failed run's log record carries its whole Cause, decoded with its workflow's schemas.
    const failureOf = (run: Store.RunRecord, outcome: Store.Outcome) =>
      outcome.status === "succeeded" || !workflows.has(run.workflow)
        ? Effect.succeed(undefined)
        : Engine.decodeOutcome(workflows.get(run.workflow)!, { ...run, ...outcome }).pipe(
          Effect.map((exit) => (Exit.isFailure(exit) ? exit.cause : undefined)),
          Effect.orElseSucceed(() => undefined)
        )
    const onEvent = (event: Worker.WorkerEvent): Effect.Effect<void> => {
      switch (event._tag) {
        case "RunStarted":
          return say(
            `${Output.paint("▶", "cyan", c)} ${event.run.workflow} ${event.run.id} started`,
            "run started",
            { run: event.run }
          )
        case "RunFinished": {
          const { id, workflow } = event.run
          const { outcome } = event
          if (outcome.status === "succeeded") {
            return say(`${Output.paint("✓", "green", c)} ${workflow} ${id} succeeded`, "run succeeded", {
              run: event.run
            })
          }
          return Effect.flatMap(failureOf(event.run, outcome), (cause) =>
            say(
              `${Output.paint("✗", "red", c)} ${workflow} ${id} ${outcome.status} (weft show ${id})`,
              `run ${outcome.status}`,
              { run: event.run, severity: outcome.status === "failed" ? "error" : "warning", cause }
            ))
        }
        case "RunSuspended":
          // The reason says until when, or for what: "sleeping until T", "waiting for signal S".
          return say(
            `${Output.paint("⏾", "cyan", c)} ${event.run.workflow} ${event.run.id} suspended, ${event.reason}`,
            `run suspended, ${event.reason}`,
            { run: event.run, fields: event.wakeAt === undefined ? {} : { wakeAt: new Date(event.wakeAt) } }
          )
        case "RunStopped":
          return say(
            `! ${event.run.workflow} ${event.run.id} stopped here: ${event.reason}`,
            `run stopped here: ${event.reason}`,
            { run: event.run, severity: "warning" }
          )
        case "ShutdownStarted":
          return say(
            event.inFlight === 0
              ? `worker ${owner} stopping: no run in flight`
              : `worker ${owner} stopping: ${event.inFlight} run${event.inFlight === 1 ? "" : "s"} in flight get ${
                Duration.format(Duration.millis(event.graceMillis))
              } to finish their step (a second signal exits at once)`,
            "worker stopping",
            { fields: { inFlight: event.inFlight, graceMillis: event.graceMillis } }
          )
        case "ShutdownFinished":
          return event.interrupted === 0 ? Effect.void : say(
            `worker ${owner}: ${event.interrupted} run${
              event.interrupted === 1 ? "" : "s"
            } did not finish their step in time and were interrupted`,
            "runs interrupted at shutdown",
            { severity: "warning", fields: { interrupted: event.interrupted } }
          )
        case "WakeupsLost":
          // The worker's own warning says so, with its cause, in the structured formats.
          return Effect.flatMap(
            FiberRef.get(Output.logFormat),
            (format) =>
              format === "pretty"
                ? Output.err(`! worker ${owner}: wake-ups lost (${event.reason}); polling until they are back\n`)
                : Effect.void
          )
        case "WakeupsRestored":
          return say(`worker ${owner}: wake-ups restored`, "wake-ups restored")
        case "QueuesDeclared":
          return say(
            `worker ${owner}: recorded the limits of ${
              event.queues.map((queue) => `${queue.name} (${Queue.describeLimits(queue)})`).join(", ")
            }`,
            "queue limits recorded",
            { fields: { queues: event.queues.map((queue) => queue.name) } }
          )
      }
    }
    return yield* Effect.gen(function*() {
      const claimed = Either.match(
        Limits.declarations([...workflows.values()], queues.length === 0 ? undefined : queues),
        {
          onLeft: () => queues.length === 0 ? ["default"] : queues,
          onRight: (declared) => declared.names
        }
      )
      yield* say(
        `worker ${owner} on ${StoreConfig.describe(spec)}: queues ${claimed.join(", ")}; concurrency ${concurrency}; ` +
          `lease ${Duration.format(Duration.millis(leaseMillis))}; workflows ${names.join(", ")}`,
        "worker started",
        {
          fields: {
            store: StoreConfig.describe(spec),
            queues: claimed,
            concurrency,
            leaseMillis,
            workflows: names
          }
        }
      )
      workerRunning = true
      return yield* (Worker.run({
        workflows: [...workflows.values()],
        queues: queues.length === 0 ? undefined : queues,
        concurrency,
        leaseMillis,
        maxRecoveries,
        grace,
        owner,
        onEvent
      }) as Effect.Effect<never, never, Store.Store>).pipe(
        Effect.onInterrupt(() =>
          say(`worker ${owner} stopped; unfinished runs were released and stay queued`, "worker stopped")
        )
      )
    }).pipe(Effect.provide(Layer.provideMerge(StoreConfig.layer(spec), Layer.mergeAll(Layer.empty, ...layers))))
  })
