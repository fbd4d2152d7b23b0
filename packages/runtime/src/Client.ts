/**
 * The client starts runs and reads them back with their declared types: a start is idempotent
 * (by caller-given id or by the workflow's idempotency key), `result` waits for the run's end and
 * returns its success or fails with its decoded Cause, `status` and `history` read the store.
 */
import { Failure, type Workflow } from "@weft/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import * as Engine from "./Engine.js"
import { type RunConflict, type RunFinished, RunNotFound, SignalInvalid, type StoreUnavailable } from "./Errors.js"
import * as Limits from "./Limits.js"
import type { Journal, RunRecord } from "./Store.js"
import { isTerminal, Store } from "./Store.js"

/** A started run, typed by its workflow. */
export interface RunHandle<W extends Workflow.Any> {
  readonly runId: string
  readonly workflow: W
  /** False when the start found an existing run (same id or idempotency key). */
  readonly created: boolean
}

/** Options of a start. */
export interface StartOptions {
  /** The run's id. Default: the run found by the workflow's idempotency key, or a new UUID. */
  readonly id?: string | undefined
  /** The queue to put the run in. Default: the queue the workflow declares, else "default". */
  readonly queue?: string | undefined
  readonly priority?: number | undefined
  /** Where the run is started from (the CLI records the module path, for `weft resume`). */
  readonly origin?: string | undefined
  /** The earliest time (epoch milliseconds) a worker may claim the run: a delayed start. */
  readonly wakeAt?: number | undefined
  /** Claim the run for this owner at creation (used to run it in this process at once). */
  readonly claim?: { readonly owner: string; readonly leaseMillis: number } | undefined
}

/** A run with its journal. */
export interface History {
  readonly run: RunRecord
  readonly journal: Journal
}

/** The client API. */
export interface ClientService {
  /** Starts a run from a typed input. */
  readonly start: <W extends Workflow.Any>(
    workflow: W,
    input: Workflow.Input<W>,
    options?: StartOptions
  ) => Effect.Effect<RunHandle<W>, Failure.InputInvalid | RunConflict | StoreUnavailable>
  /** Starts a run from an untyped (encoded) input, validating it against the workflow's schema. */
  readonly startUnknown: <W extends Workflow.Any>(
    workflow: W,
    input: unknown,
    options?: StartOptions
  ) => Effect.Effect<RunHandle<W>, Failure.InputInvalid | RunConflict | StoreUnavailable>
  /** Waits for the run to end; succeeds with its output or fails with its Cause. */
  readonly result: <W extends Workflow.Any>(
    handle: RunHandle<W> | { readonly runId: string; readonly workflow: W },
    options?: { readonly pollInterval?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Workflow.Success<W>, Workflow.Error<W> | RunNotFound | StoreUnavailable>
  /**
   * Delivers signal `name` with a typed payload to a run of `workflow`: checked against the schema
   * the workflow declares for it and stored in the run's mailbox (nothing is stored when it does
   * not match, or when the run has finished). A run waiting for it wakes.
   */
  readonly signal: <W extends Workflow.Any>(
    workflow: W,
    runId: string,
    name: string,
    payload: unknown
  ) => Effect.Effect<SignalDelivered, SignalInvalid | RunNotFound | RunFinished | StoreUnavailable>
  /** `signal` with an encoded (JSON) payload, validated by decoding it with the declared schema. */
  readonly signalUnknown: <W extends Workflow.Any>(
    workflow: W,
    runId: string,
    name: string,
    payload: unknown
  ) => Effect.Effect<SignalDelivered, SignalInvalid | RunNotFound | RunFinished | StoreUnavailable>
  readonly status: (runId: string) => Effect.Effect<RunRecord, RunNotFound | StoreUnavailable>
  readonly history: (runId: string) => Effect.Effect<History, RunNotFound | StoreUnavailable>
}

/** A signal in a run's mailbox: its arrival number, and whether it woke the run. */
export interface SignalDelivered {
  readonly seq: number
  readonly woke: boolean
}

/** The client service. */
export class Client extends Context.Tag("@weft/runtime/Client")<Client, ClientService>() {}

const inputInvalid = (workflow: Workflow.Any) => (error: ParseResult.ParseError) => {
  const { issue, path } = Engine.describeParseError(error)
  return new Failure.InputInvalid({ workflow: workflow.name, path, issue })
}

/** Makes a client over the store in context. */
export const make: Effect.Effect<ClientService, never, Store> = Effect.gen(function*() {
  const store = yield* Store

  const create = <W extends Workflow.Any>(workflow: W, decoded: unknown, options: StartOptions) =>
    Effect.gen(function*() {
      const encoded = yield* Effect.mapError(Schema.encode(workflow.input)(decoded), inputInvalid(workflow))
      const now = yield* Clock.currentTimeMillis
      const placed = Limits.placement(workflow, decoded, options.queue)
      const { created, run } = yield* store.createRun({
        id: options.id ?? Crypto.randomUUID(),
        workflow: workflow.name,
        version: workflow.version ?? "unversioned",
        input: encoded,
        idempotencyKey: workflow.idempotencyKey?.(decoded),
        queue: placed.queue,
        concurrencyKey: placed.concurrencyKey,
        concurrencyLimit: placed.concurrencyLimit,
        priority: options.priority,
        origin: options.origin,
        wakeAt: options.wakeAt,
        claim: options.claim,
        now
      })
      return { runId: run.id, workflow, created } satisfies RunHandle<W>
    })

  const deliver = (
    workflow: Workflow.Any,
    runId: string,
    name: string,
    encode: (schema: Schema.Schema.AnyNoContext) => Effect.Effect<unknown, ParseResult.ParseError>
  ) =>
    Effect.gen(function*() {
      const invalid = (detail: string) => new SignalInvalid({ runId, signal: name, detail })
      if (!Object.hasOwn(workflow.signals, name)) {
        const declared = Object.keys(workflow.signals)
        return yield* Effect.fail(
          invalid(
            `workflow "${workflow.name}" declares ${
              declared.length === 0 ? "no signals" : `the signals ${declared.join(", ")}`
            }`
          )
        )
      }
      const run = yield* status(runId)
      if (run.workflow !== workflow.name) {
        return yield* Effect.fail(invalid(`it is a run of workflow "${run.workflow}", not "${workflow.name}"`))
      }
      const payload = yield* Effect.mapError(encode(workflow.signals[name]), (error) => {
        const { issue, path } = Engine.describeParseError(error)
        // The issue names the field already (`approve: Expected boolean, ...`).
        return invalid(
          `the payload does not match its schema${path === "" ? "" : ` at ${path}`}: ${
            issue.startsWith(`${path}: `) ? issue.slice(path.length + 2) : issue
          }`
        )
      })
      const now = yield* Clock.currentTimeMillis
      return yield* store.deliverSignal({ runId, name, payload, now })
    })

  const status = (runId: string) =>
    Effect.flatMap(
      store.getRun(runId),
      Option.match({ onNone: () => Effect.fail(new RunNotFound({ runId })), onSome: Effect.succeed })
    )

  return {
    start: (workflow, input, options = {}) => create(workflow, input, options),
    startUnknown: (workflow, input, options = {}) =>
      Effect.flatMap(
        Effect.mapError(Schema.decodeUnknown(workflow.input)(input), inputInvalid(workflow)),
        (decoded) => create(workflow, decoded, options)
      ),
    result: (handle, options = {}) =>
      Effect.gen(function*() {
        const poll = Duration.decode(options.pollInterval ?? "1 second")
        // Poll with a short start so a quick run returns quickly; push notification comes with workers.
        const run = yield* status(handle.runId).pipe(
          Effect.filterOrFail((run) => isTerminal(run.status), () => "pending" as const),
          Effect.retry({
            while: (e) => e === "pending",
            schedule: Schedule.exponential(Duration.millis(10)).pipe(
              Schedule.union(Schedule.spaced(poll))
            )
          }),
          Effect.catchIf((e): e is "pending" => e === "pending", () => Effect.die("unreachable"))
        )
        const exit = yield* Effect.orDie(Engine.decodeOutcome(handle.workflow, run))
        return yield* exit
      }) as never,
    signal: (workflow, runId, name, payload) =>
      deliver(workflow, runId, name, (schema) => Schema.encodeUnknown(schema)(payload)),
    signalUnknown: (workflow, runId, name, payload) =>
      deliver(
        workflow,
        runId,
        name,
        (schema) => Effect.flatMap(Schema.decodeUnknown(schema)(payload), Schema.encodeUnknown(schema))
      ),
    status,
    history: (runId) =>
      Effect.gen(function*() {
        const run = yield* status(runId)
        const journal = yield* store.readJournal(runId)
        return { run, journal }
      })
  }
})

/** The client as a layer over the store in context. */
export const layer: Layer.Layer<Client, never, Store> = Layer.effect(Client, make)
