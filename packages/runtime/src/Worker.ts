/**
 * A polling worker: claims runnable runs of its queues and workflows (priority, then age), and
 * executes each in a fiber of its own, at most `concurrency` at once. An idle worker sleeps its
 * poll interval between claims (jittered), and claims again at once when a run ends and frees a
 * slot. Interrupting the worker interrupts every run it holds; the engine releases their leases,
 * so the runs stay queued and resumable by any worker.
 */
import type { Execution, Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Engine from "./Engine.js"
import type { LeaseLost, StoreUnavailable } from "./Errors.js"
import * as Owner from "./Owner.js"
import type { Outcome, RunRecord } from "./Store.js"
import { Store } from "./Store.js"

/** What happens to the runs a worker claims, for logs and the CLI. */
export type WorkerEvent =
  | { readonly _tag: "RunStarted"; readonly run: RunRecord }
  | { readonly _tag: "RunFinished"; readonly run: RunRecord; readonly outcome: Outcome }
  /** The run stopped here without an end (store gone, lease lost); it resumes from its journal. */
  | { readonly _tag: "RunStopped"; readonly run: RunRecord; readonly reason: string }

/** Options of `run`. */
export interface Options<W extends Workflow.Any> {
  /** The workflows this worker can execute; it claims only their runs. */
  readonly workflows: ReadonlyArray<W>
  /** The queues to claim from. Default `["default"]`. */
  readonly queues?: ReadonlyArray<string> | undefined
  /** At most this many runs in flight at once. Default 10. */
  readonly concurrency?: number | undefined
  /** Lease length; the engine renews it by heartbeat. Default 30 seconds. */
  readonly leaseMillis?: number | undefined
  /** Sleep between claims when idle, jittered by ±20%. Default 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * How long a shutdown (the worker's interruption, or its scope closing) lets runs in flight
   * reach their next step boundary before interrupting them. Default 30 seconds.
   */
  readonly grace?: Duration.DurationInput | undefined
  /** The lease owner. Default: a new `host:pid:random` id. */
  readonly owner?: string | undefined
  /** Live progress of every run. */
  readonly onProgress?: ((event: Execution.ProgressEvent, run: RunRecord) => Effect.Effect<void>) | undefined
  /** Runs started, finished and stopped. */
  readonly onEvent?: ((event: WorkerEvent) => Effect.Effect<void>) | undefined
}

/**
 * Runs a worker until interrupted. Storage errors while claiming are logged and retried on a
 * backoff; a run's own failure or defect is recorded by the engine; an unexpected error of the
 * runtime while executing a run is logged with its full cause.
 */
export const run = <W extends Workflow.Any>(
  options: Options<W>
): Effect.Effect<never, StoreUnavailable, Store | Workflow.Requirements<W>> =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* Store
    const queues = options.queues ?? ["default"]
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 10))
    const leaseMillis = options.leaseMillis ?? 30_000
    const pollMillis = Duration.toMillis(Duration.decode(options.pollInterval ?? "1 second"))
    const owner = options.owner ?? Owner.make()
    const emit = options.onEvent ?? (() => Effect.void)
    const known = new Map<string, Workflow.Any>(options.workflows.map((w) => [w.name, w]))
    const workflows = Array.from(known.keys())

    const fibers = yield* FiberSet.make<void, never>()
    // A slot freed: wake the loop at once (one pending signal is enough).
    const wake = yield* Queue.sliding<void>(1)
    let inFlight = 0

    const executeOne = (workflow: Workflow.Any, run: RunRecord): Effect.Effect<void> =>
      Effect.zipRight(
        emit({ _tag: "RunStarted", run }),
        (Engine.execute(workflow, run, {
          owner,
          leaseMillis,
          onProgress: options.onProgress === undefined ? undefined : (event) => options.onProgress!(event, run)
        }) as Effect.Effect<Engine.Executed, StoreUnavailable | LeaseLost>).pipe(
          Effect.flatMap((executed) => emit({ _tag: "RunFinished", run, outcome: executed.outcome })),
          Effect.catchAll((error) => {
            const reason = `${error.message}; the run resumes from its journal`
            return Effect.zipRight(
              Effect.logWarning(`worker ${owner}: run ${run.id} stopped: ${reason}`),
              emit({ _tag: "RunStopped", run, reason })
            )
          }),
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.failCause(cause)
              : Effect.logError(
                `worker ${owner}: unexpected error of the runtime while executing run ${run.id}:\n${
                  Cause.pretty(cause)
                }`
              )
          )
        )
      ).pipe(
        Effect.ensuring(Effect.zipRight(Effect.sync(() => inFlight--), Queue.offer(wake, undefined)))
      )

    const claim = (limit: number) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        return yield* store.claimNext({ owner, queues, workflows, limit, leaseMillis, now })
      }).pipe(
        Effect.tapError((error) => Effect.logWarning(`worker ${owner}: claiming failed, retrying: ${error.message}`)),
        Effect.retry(
          Schedule.exponential(Duration.millis(100)).pipe(
            Schedule.either(Schedule.spaced(Duration.seconds(10))),
            Schedule.jittered
          )
        )
      )

    const idle = Effect.gen(function*() {
      const factor = yield* Random.nextRange(0.8, 1.2)
      yield* Effect.race(Queue.take(wake), Effect.sleep(Duration.millis(Math.round(pollMillis * factor))))
    })

    return yield* Effect.forever(Effect.gen(function*() {
      const free = concurrency - inFlight
      if (free <= 0) {
        yield* Queue.take(wake)
        return
      }
      // Only runs this worker can execute are claimed: another workflow's runs stay queued for a
      // worker that knows it, without counting recoveries or churning leases.
      const claimed = yield* claim(free)
      for (const run of claimed) {
        inFlight++
        yield* FiberSet.run(fibers, executeOne(known.get(run.workflow)!, run))
      }
      // With slots left, nothing more is claimable now: wait for a slot to free or the poll interval.
      if (claimed.length < free) yield* idle
    }))
  })) as never
