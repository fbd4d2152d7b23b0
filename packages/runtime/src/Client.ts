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
import {
  type RunConflict,
  type RunFinished,
  RunNotFound,
  type RunNotRedrivable,
  SignalInvalid,
  type StepNotInJournal,
  type StoreUnavailable
} from "./Errors.js"
import * as Limits from "./Limits.js"
import type { Journal, RedrivePoint, RedriveRecord, RunRecord } from "./Store.js"
import { isTerminal, Store } from "./Store.js"

/** A started run, typed by its workflow. */
export interface RunHandle<W extends Workflow.Any> {
  readonly runId: string
  readonly workflow: W
  /** False when the start found an existing run (same id or idempotency key). */
  readonly created: boolean
  /** True when it found a failed or cancelled run and started it over (`ifFinished: "restart-failed"`). */
  readonly restarted?: boolean | undefined
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
  /**
   * Your id for following the run in your logs and traces (a request id): stored with the run, put
   * on every log line the run writes (`correlationId`), and inherited by its child runs. A start
   * that finds an existing run keeps that run's own.
   */
  readonly correlationId?: string | undefined
  /** Claim the run for this owner at creation (used to run it in this process at once). */
  readonly claim?: { readonly owner: string; readonly leaseMillis: number } | undefined
  /**
   * What a start does when it finds the run (same id or idempotency key) finished. `"return"`
   * (default): returns that run, whatever its end: a start is idempotent. `"restart-failed"`: a run
   * that failed or was cancelled is started over under the same id (re-driven from the start: its
   * journal is discarded, its history kept, its recorded input used), and the handle says
   * `restarted`; a run that succeeded is returned as it is. A run that has not finished is returned.
   */
  readonly ifFinished?: "return" | "restart-failed" | undefined
}

/** Options of `retry`. */
export interface RetryOptions {
  /**
   * Where the journal is cut: `"failure"` (default: the failed step and what came after it run
   * again), `{ step: "charge-card" }` (that step and everything journaled after it), or `"start"`.
   */
  readonly from?: RedrivePoint | undefined
  /** Who asks, recorded with the re-drive. Default `"client"`. */
  readonly by?: string | undefined
  /** Why, recorded with the re-drive. Default `"re-driven"`. */
  readonly reason?: string | undefined
}

/** A run with its journal and its re-drives. */
export interface History {
  readonly run: RunRecord
  readonly journal: Journal
  /** The run's re-drives, oldest first (empty for a run never re-driven). */
  readonly redrives: ReadonlyArray<RedriveRecord>
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
  /**
   * Re-drives a failed or cancelled run (a dead letter): it goes back to its queue, keeping the
   * journal of its completed steps before `from` (they do not run again) and every attempt in its
   * history; the steps that run again get their retry policies' whole budget. See `Store.redriveRun`.
   */
  readonly retry: (
    runId: string,
    options?: RetryOptions
  ) => Effect.Effect<
    { readonly run: RunRecord; readonly redrive: RedriveRecord },
    RunNotFound | RunNotRedrivable | StepNotInJournal | StoreUnavailable
  >
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
        correlationId: options.correlationId,
        claim: options.claim,
        now
      })
      if (
        created || options.ifFinished !== "restart-failed" || (run.status !== "failed" && run.status !== "cancelled")
      ) {
        return { runId: run.id, workflow, created } satisfies RunHandle<W>
      }
      // Started over under the same id: ids are primary keys, and the history stays with the run.
      // A concurrent start that restarted it first leaves it not re-drivable: it is returned as is.
      const restarted = yield* store.redriveRun({
        id: run.id,
        from: "start",
        by: "start",
        reason: "started again (ifFinished: restart-failed)",
        now
      }).pipe(
        Effect.as(true),
        Effect.catchTags({ RunNotRedrivable: () => Effect.succeed(false), RunNotFound: () => Effect.succeed(false) }),
        Effect.catchTag("StepNotInJournal", (error) => Effect.die(error))
      )
      return { runId: run.id, workflow, created, restarted } satisfies RunHandle<W>
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
    retry: (runId, options = {}) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.redriveRun({
          id: runId,
          from: options.from,
          by: options.by ?? "client",
          reason: options.reason ?? "re-driven",
          now
        })),
    status,
    history: (runId) =>
      Effect.gen(function*() {
        const run = yield* status(runId)
        const journal = yield* store.readJournal(runId)
        const redrives = run.redriven === undefined ? [] : yield* store.listRedrives(runId)
        return { run, journal, redrives }
      })
  }
})

/** The client as a layer over the store in context. */
export const layer: Layer.Layer<Client, never, Store> = Layer.effect(Client, make)
