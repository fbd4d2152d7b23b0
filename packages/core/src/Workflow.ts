/**
 * A workflow: a named, schema-typed Effect program made of steps, executed durably by an engine.
 * Its error channel is exactly what it declares plus the built-in failures it can meet. Durable
 * primitives (`now`, `random`, `uuid`) are journaled so a replay sees the values the first run saw.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import { Execution as ExecutionTag } from "./Execution.js"
import type { Execution } from "./Execution.js"
import * as Failure from "./Failure.js"
import * as children from "./internal/children.js"
import * as internal from "./internal/stepRunner.js"
import * as taskGroup from "./internal/taskGroup.js"
import type * as Queue from "./Queue.js"
import * as Retry from "./Retry.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@weft/core/Workflow")
export type TypeId = typeof TypeId

/** The built-in failures a workflow body may fail with without declaring them. */
export type BodyBuiltIn = Failure.StepTimeout | Failure.CircuitOpen | Failure.SignalTimeout | Failure.RunFailure

/**
 * A workflow definition.
 *
 * - `In`: the decoded input, `A`: the success, `E`: the declared errors plus the built-in ones the
 *   body can meet, `R`: the services its steps need (provided by the worker or the CLI).
 */
export interface Workflow<Name extends string, In, A, E, R> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly description: string | undefined
  /** The declared version; without one, runs record a fingerprint of the definition. */
  readonly version: string | undefined
  readonly input: Schema.Schema<In, any>
  readonly success: Schema.Schema<A, any>
  /** The declared errors. */
  readonly error: Schema.Schema.AnyNoContext
  /** Everything the run's Cause may fail with: declared and built-in errors. */
  readonly failure: Schema.Schema.AnyNoContext
  readonly idempotencyKey: ((input: In) => string) | undefined
  /** The queue its runs go to unless a start names another: a declaration with limits, or a name. */
  readonly queue: Queue.Queue | string | undefined
  /** The key of a run's concurrency limit: at most `concurrencyLimit` runs with one key run at once. */
  readonly concurrencyKey: ((input: In) => string) | undefined
  /** With `concurrencyKey`: how many runs with the same key may run at once (default 1). */
  readonly concurrencyLimit: number | undefined
  /** The signals a run accepts (`Workflow.signal`), by name, with the schema a delivery must match. */
  readonly signals: Readonly<Record<string, Schema.Schema.AnyNoContext>>
  /**
   * How many times a run may be recovered (claimed again after its worker stopped without
   * finishing it) before it fails with `RecoveryLimit` instead of running again; undefined leaves
   * it to the worker (default 5).
   */
  readonly maxRecoveries: number | undefined
  readonly run: (input: In) => Effect.Effect<A, E, R | Execution>
}

/** Any workflow. */
export type Any = Workflow<string, any, any, any, any>

/** The decoded input of a workflow. */
export type Input<W> = W extends Workflow<any, infer In, any, any, any> ? In : never
/** The success value of a workflow. */
export type Success<W> = W extends Workflow<any, any, infer A, any, any> ? A : never
/** What a run of the workflow can fail with: its errors and the engine's (NonDeterminism, Cancelled). */
export type Error<W> = W extends Workflow<any, any, any, infer E, any> ? E | Failure.RunFailure : never
/** The services a workflow's steps need. */
export type Requirements<W> = W extends Workflow<any, any, any, any, infer R> ? R : never

/**
 * Defines a workflow.
 *
 * @example
 * export const checkout = Workflow.make({
 *   name: "checkout",
 *   input: Order,
 *   success: Receipt,
 *   error: Schema.Union(CardDeclined, OutOfStock),
 *   idempotencyKey: (order) => order.id,
 *   run: (order) => Effect.gen(function*() { ... })
 * })
 */
export const make = <
  const Name extends string,
  In,
  InI,
  A,
  AI,
  RunE extends E | BodyBuiltIn,
  R,
  E = never,
  EI = never
>(options: {
  /** Unique among the workflows a worker knows; stored with each run. */
  readonly name: Name
  /** One line shown by `weft workflows`. */
  readonly description?: string | undefined
  readonly version?: string | undefined
  readonly input: Schema.Schema<In, InI, never>
  readonly success: Schema.Schema<A, AI, never>
  /** The typed failures the workflow may end with. Default: none. */
  readonly error?: Schema.Schema<E, EI, never> | undefined
  /** A second start with the same key is the same run: nothing is duplicated. */
  readonly idempotencyKey?: ((input: In) => string) | undefined
  /**
   * The queue the workflow's runs go to (a start may name another): a name, or a declaration made
   * with `Queue.make`, whose limits every worker that knows this workflow records in its store.
   * Default: the queue "default".
   */
  readonly queue?: Queue.Queue | string | undefined
  /**
   * A key computed from the input when a run starts (e.g. the customer's id): at most
   * `concurrencyLimit` runs with the same key, in the same queue, run at once across all workers;
   * the others stay queued. Sleeping and waiting runs do not count.
   */
  readonly concurrencyKey?: ((input: In) => string) | undefined
  /** How many runs with one `concurrencyKey` may run at once. Default 1; needs `concurrencyKey`. */
  readonly concurrencyLimit?: number | undefined
  /**
   * The signals a run accepts, by name, each with the schema of its payload (the same schema the
   * body passes to `Workflow.signal`): a delivery is checked against it before it is stored.
   */
  readonly signals?: Readonly<Record<string, Schema.Schema<any, any, never>>> | undefined
  /**
   * The poison-run limit: a run recovered more times than this (its worker died, its lease
   * expired, or it was released, each time before it finished) fails with `Failure.RecoveryLimit`
   * instead of being executed again, so a run that kills its worker cannot do so for ever. A whole
   * number, 0 or more. Default: the worker's (`maxRecoveries`, 5).
   */
  readonly maxRecoveries?: number | undefined
  readonly run: (input: In) => Effect.Effect<A, RunE, R>
}): Workflow<Name, In, A, E | Extract<RunE, BodyBuiltIn>, Exclude<R, Execution>> => {
  const error: Schema.Schema.AnyNoContext = options.error ?? (Schema.Never as unknown as Schema.Schema.AnyNoContext)
  const maxRecoveries = options.maxRecoveries
  if (maxRecoveries !== undefined && (!Number.isSafeInteger(maxRecoveries) || maxRecoveries < 0)) {
    throw new RangeError(
      `maxRecoveries of workflow "${options.name}" must be a whole number of at least 0, got ${maxRecoveries}`
    )
  }
  const limit = options.concurrencyLimit
  if (limit !== undefined) {
    if (options.concurrencyKey === undefined) {
      throw new TypeError(
        `workflow "${options.name}": concurrencyLimit needs a concurrencyKey (for one limit over all its runs, ` +
          `return the same key for every input, or give it a queue with a concurrency)`
      )
    }
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `workflow "${options.name}": concurrencyLimit must be a whole number of at least 1, got ${limit}`
      )
    }
  }
  return {
    [TypeId]: TypeId,
    name: options.name,
    description: options.description,
    version: options.version,
    input: options.input,
    success: options.success,
    error,
    failure: Schema.Union(error, Failure.BuiltIn),
    idempotencyKey: options.idempotencyKey,
    queue: options.queue,
    concurrencyKey: options.concurrencyKey,
    concurrencyLimit: options.concurrencyKey === undefined ? undefined : limit ?? 1,
    signals: options.signals ?? {},
    maxRecoveries,
    run: options.run as never
  }
}

/** Whether a value is a workflow (by a global symbol, so it holds across copies of this package). */
export const isWorkflow = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

const nowStep = internal.compile({
  name: "$now",
  kind: "now",
  success: Schema.Number,
  error: undefined,
  retry: Retry.none,
  timeout: undefined
})
const randomStep = internal.compile({
  name: "$random",
  kind: "random",
  success: Schema.Number,
  error: undefined,
  retry: Retry.none,
  timeout: undefined
})
const uuidStep = internal.compile({
  name: "$uuid",
  kind: "uuid",
  success: Schema.String,
  error: undefined,
  retry: Retry.none,
  timeout: undefined
})

/** The current time in milliseconds, journaled: a replay returns the time the first run saw. */
export const now: Effect.Effect<number, never, Execution> = internal.run(nowStep, Clock.currentTimeMillis) as never

/** A random number in [0, 1), journaled. */
export const random: Effect.Effect<number, never, Execution> = internal.run(randomStep, Random.next) as never

const sleepStep = internal.compile({
  name: "$sleep",
  kind: "sleep",
  success: Schema.Number,
  error: undefined,
  retry: Retry.none,
  timeout: undefined
})

const waitUntil = (wakeAt: number): Effect.Effect<void, never, Execution> =>
  Effect.flatMap(
    ExecutionTag,
    (execution) => execution.waitUntil(wakeAt, `sleeping until ${new Date(wakeAt).toISOString()}`)
  )

/**
 * A durable sleep: the wake time is journaled when the sleep starts, so a run that crashes or
 * suspends wakes at the original time, not later. A long sleep suspends the run (no memory, no
 * worker slot; the process may exit) and any worker resumes it on time; a short one sleeps in
 * process. A sleep of zero or less does nothing and journals nothing.
 */
export const sleep = (duration: Duration.DurationInput): Effect.Effect<void, never, Execution> => {
  const millis = Duration.toMillis(Duration.decode(duration))
  if (!(millis > 0)) return Effect.void
  return Effect.flatMap(
    internal.run(sleepStep, Effect.map(Clock.currentTimeMillis, (now) => now + millis)) as Effect.Effect<
      number,
      never,
      Execution
    >,
    waitUntil
  )
}

/**
 * Sleeps until `date` (see `sleep`). Compute the date from the input or from `Workflow.now`, not
 * from `Date.now()`, so that a replay waits for the same time.
 */
export const sleepUntil = (date: Date | number): Effect.Effect<void, never, Execution> =>
  waitUntil(typeof date === "number" ? date : date.getTime())

const deadlineStep = internal.compile({
  name: "$deadline",
  kind: "sleep",
  success: Schema.Number,
  error: undefined,
  retry: Retry.none,
  timeout: undefined
})

const timeoutExit = Schema.Exit({ success: Schema.Unknown, failure: Failure.SignalTimeout, defect: Schema.Defect })

/** Options of `signal`. */
export interface SignalOptions {
  /** Fail with SignalTimeout when no signal arrives within this time. Default: wait for ever. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Waits for an external event: a signal `name` delivered to this run (`weft signal`, or
 * `Client.signal`), validated by `schema` on delivery and returned decoded. The workflow declares
 * its signals (`Workflow.make({ signals: { name: schema } })`) so that a delivery can be checked
 * before it is stored. A signal sent before the run waits is kept in the run's mailbox and taken
 * here; signals of one name are taken oldest first, each once. While waiting, the run is
 * suspended (`waiting`: no memory, no worker slot). With a `timeout`, the wait fails with the
 * typed SignalTimeout once it passes; a signal sent before the deadline still counts if the run
 * reads it later.
 */
export const signal = <A, I>(
  name: string,
  schema: Schema.Schema<A, I, never>,
  options: SignalOptions = {}
): Effect.Effect<A, Failure.SignalTimeout, Execution> =>
  Effect.suspend(() => {
    const problem = internal.checkName(name)
    if (problem !== undefined) return Effect.dieMessage(problem.replace("step name", "signal name"))
    const timeoutMillis = options.timeout === undefined
      ? undefined
      : Duration.toMillis(Duration.decode(options.timeout))
    const decode = Schema.decodeUnknownEither(schema)
    const decoded = (payload: unknown): Effect.Effect<A> => {
      const value = decode(payload)
      return Either.isRight(value)
        ? Effect.succeed(value.right)
        : Effect.dieMessage(`signal "${name}" holds a payload its schema rejects: ${value.left.message}`)
    }
    return Effect.gen(function*() {
      const execution = yield* ExecutionTag
      const deadline = timeoutMillis === undefined
        ? undefined
        : yield* (internal.run(
          deadlineStep,
          Effect.map(Clock.currentTimeMillis, (now) => now + timeoutMillis)
        )) as Effect.Effect<
          number
        >
      const slot = yield* execution.enter(`$signal:${name}`, "signal")
      const timedOut = new Failure.SignalTimeout({ signal: name, step: slot.stepId, timeoutMillis: timeoutMillis ?? 0 })
      return yield* Effect.gen(function*() {
        if (Option.isSome(slot.result)) {
          const recorded = slot.result.value as { readonly _tag: string; readonly value?: unknown }
          return yield* (recorded._tag === "Success" ? decoded(recorded.value) : Effect.fail(timedOut))
        }
        const reason = `waiting for signal ${name}${
          deadline === undefined ? "" : ` until ${new Date(deadline).toISOString()}`
        }`
        while (true) {
          const taken = yield* execution.takeSignal(slot, name, deadline)
          if (Option.isSome(taken)) return yield* decoded(taken.value)
          if (deadline !== undefined && (yield* Clock.currentTimeMillis) >= deadline) {
            yield* execution.complete(slot, undefined, Schema.encodeSync(timeoutExit)(Exit.fail(timedOut)))
            return yield* Effect.fail(timedOut)
          }
          yield* execution.awaitSignal(name, deadline, reason)
        }
      }).pipe(Effect.ensuring(execution.leave(slot)))
    })
  })

const hex = (n: number) => n.toString(16).padStart(2, "0")

/** A random (version 4) UUID, journaled. */
export const uuid: Effect.Effect<string, never, Execution> = internal.run(
  uuidStep,
  Effect.gen(function*() {
    const bytes: Array<number> = []
    for (let i = 0; i < 16; i++) bytes.push(yield* Random.nextIntBetween(0, 256))
    bytes[6] = (bytes[6] & 0x0f) | 0x40
    bytes[8] = (bytes[8] & 0x3f) | 0x80
    const h = bytes.map(hex).join("")
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
  })
) as never

/** How a task group runs: its name in step paths, its concurrency, and its failure mode. */
export type GroupOptions = taskGroup.GroupOptions

/**
 * Runs effects as a task group: concurrently (up to `concurrency`), each in a branch of its own
 * (`all[0]/charge`, `all[1]/charge`), so replay is deterministic whatever order they ran in.
 * `mode: "fail-fast"` (default): the first failure interrupts the other branches and the group
 * fails with it and their interruptions, in parallel. `mode: "settle"`: every branch runs to its
 * end; the group succeeds with every value, or fails with every failure combined.
 *
 * @example
 * const [a, b] = yield* Workflow.all([shipFrom("a", order), shipFrom("b", order)], { name: "ship", concurrency: 2 })
 */
export const all = <const Branches extends ReadonlyArray<Effect.Effect<any, any, any>>>(
  branches: Branches,
  options?: GroupOptions
): Effect.Effect<
  { -readonly [K in keyof Branches]: Effect.Effect.Success<Branches[K]> },
  Effect.Effect.Error<Branches[number]>,
  Effect.Effect.Context<Branches[number]> | Execution
> => taskGroup.run("all", branches, options) as never

/**
 * `f` for every item as a task group (see `all`): branch `i` handles item `i`, and the values come
 * back in item order.
 */
export const forEach = <A, B, E, R>(
  items: Iterable<A>,
  f: (item: A, index: number) => Effect.Effect<B, E, R>,
  options?: GroupOptions
): Effect.Effect<Array<B>, E, R | Execution> => taskGroup.run("forEach", Array.from(items, f), options)

/** Options of `child` and `startChild`: the child run's id (default `<parent run id>/<step id>`). */
export type ChildOptions = children.ChildOptions

/**
 * Runs `workflow` as a child: a run of its own, with its own journal, that any worker may execute,
 * awaited durably (the parent suspends meanwhile, holding no worker slot). Its success is this
 * step's value; its typed failure is this step's failure, unchanged, so the parent declares the
 * child's errors it lets through. Cancelling the parent cancels the child.
 */
export const child: <W extends Any>(
  workflow: W,
  input: Input<W>,
  options?: ChildOptions
) => Effect.Effect<Success<W>, Error<W>, Execution> = children.child

/** Starts `workflow` as a detached child run and goes on; returns its id (see `child`). */
export const startChild: <W extends Any>(
  workflow: W,
  input: Input<W>,
  options?: ChildOptions
) => Effect.Effect<{ readonly runId: string }, never, Execution> = children.startChild

/**
 * A fingerprint of a workflow's definition, recorded with each run that declares no version, so a
 * changed definition is visible in history.
 */
export const versionOf = (workflow: Any): string => workflow.version ?? "unversioned"
