/**
 * A worker: claims runnable runs of its queues and workflows (priority, then age), and executes
 * each in a fiber of its own, at most `concurrency` at once. It claims when told that work arrived
 * (the store's wake-up notices: LISTEN/NOTIFY on PostgreSQL), when a run ends and frees a slot,
 * when a delayed run falls due or a dead worker's lease expires (`nextWakeAt`), and otherwise
 * polls on a slow, jittered interval as a fallback.
 *
 * Every run is a fiber owned by the worker's scope. Closing the scope (or interrupting `run`) is a
 * graceful shutdown: the worker stops claiming, lets each run finish the step in flight and stop
 * at the next step boundary within a grace period, interrupts what is left, and releases every
 * lease, so that the runs resume at once on another worker from their journal.
 */
import { type Execution, Queue as WeftQueue, type Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Engine from "./Engine.js"
import type { LeaseLost, RunSuspended, StoreUnavailable } from "./Errors.js"
import * as LeaseKeeper from "./internal/LeaseKeeper.js"
import { retryLazily } from "./internal/retryLazily.js"
import { anyQueue } from "./internal/WakeBus.js"
import * as Limits from "./Limits.js"
import * as Owner from "./Owner.js"
import type { Outcome, QueueRecord, RunRecord } from "./Store.js"
import { Store } from "./Store.js"

/** What happens in a worker, for logs and the CLI. */
export type WorkerEvent =
  | { readonly _tag: "RunStarted"; readonly run: RunRecord }
  | { readonly _tag: "RunFinished"; readonly run: RunRecord; readonly outcome: Outcome }
  /** The run suspended itself until `wakeAt` (a durable sleep, a long backoff); it holds no slot meanwhile. */
  | {
    readonly _tag: "RunSuspended"
    readonly run: RunRecord
    /** None when it waits for a signal with no deadline. */
    readonly wakeAt: number | undefined
    readonly reason: string
  }
  /** The run stopped here without an end (shutdown, store gone, lease lost); it resumes from its journal. */
  | { readonly _tag: "RunStopped"; readonly run: RunRecord; readonly reason: string }
  /** Shutdown began: no more claims; `inFlight` runs get `graceMillis` to reach a step boundary. */
  | { readonly _tag: "ShutdownStarted"; readonly inFlight: number; readonly graceMillis: number }
  /** Shutdown ended; `interrupted` runs did not reach a step boundary in time and were interrupted. */
  | { readonly _tag: "ShutdownFinished"; readonly interrupted: number }
  /** Pushed wake-ups broke (the notice connection); the worker polls until they are back. */
  | { readonly _tag: "WakeupsLost"; readonly reason: string }
  | { readonly _tag: "WakeupsRestored" }
  /** The worker recorded its queue declarations, changing these recorded ones (the last declaration wins). */
  | {
    readonly _tag: "QueuesDeclared"
    readonly queues: ReadonlyArray<WeftQueue.Queue>
    readonly changed: ReadonlyArray<QueueRecord>
  }

/** Options of `start` and `run`. */
export interface Options<W extends Workflow.Any> {
  /** The workflows this worker can execute; it claims only their runs. */
  readonly workflows: ReadonlyArray<W>
  /**
   * The queues to claim from: names, or declarations (`Queue.make`) whose limits the worker records
   * in its store at start, as it does those its workflows declare (the last declaration recorded
   * wins). Default: the queues its workflows declare, "default" for those that declare none.
   */
  readonly queues?: ReadonlyArray<WeftQueue.Queue | string> | undefined
  /** At most this many runs in flight at once. Default 10. */
  readonly concurrency?: number | undefined
  /** Lease length; the engine renews it by heartbeat. Default 30 seconds. */
  readonly leaseMillis?: number | undefined
  /**
   * The fallback poll when idle, jittered by ±20%. Default 5 seconds when the store pushes the
   * wake-ups of every process (PostgreSQL), 1 second when it pushes only this process's own
   * (SQLite: a run started by another process is found by polling).
   */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * How long a shutdown (the worker's interruption, or its scope closing) lets runs in flight
   * reach their next step boundary before interrupting them. Default 30 seconds.
   */
  readonly grace?: Duration.DurationInput | undefined
  /** The lease owner. Default: a new `host:pid:random` id. */
  readonly owner?: string | undefined
  /** Waits at least this long suspend the run (see `Engine.ExecuteOptions.suspendAfter`). Default 5 seconds. */
  readonly suspendAfter?: Duration.DurationInput | undefined
  /** How the engine retries its storage calls (see `Engine.storageRetry`, the default). */
  readonly storageRetry?: Schedule.Schedule<unknown, StoreUnavailable> | undefined
  /**
   * The poison-run limit of the workflows that declare none (`Workflow.make({ maxRecoveries })`): a
   * run recovered more times than this fails with `Failure.RecoveryLimit` instead of running again.
   * Default 5 (`Engine.defaultMaxRecoveries`).
   */
  readonly maxRecoveries?: number | undefined
  /** Live progress of every run. */
  readonly onProgress?: ((event: Execution.ProgressEvent, run: RunRecord) => Effect.Effect<void>) | undefined
  /** Runs started, finished and stopped; shutdown; wake-ups lost and restored. */
  readonly onEvent?: ((event: WorkerEvent) => Effect.Effect<void>) | undefined
}

/** A started worker. */
export interface WorkerService {
  /** The lease owner of its runs. */
  readonly owner: string
  /** How many runs it executes now. */
  readonly inFlight: Effect.Effect<number>
  /**
   * Shuts down gracefully (see the module's doc) and returns once every run has stopped. Closing
   * the worker's scope does the same; calling it twice waits for the first.
   */
  readonly shutdown: Effect.Effect<void>
}

/** The worker a layer started (see `layer`). */
export class Worker extends Context.Tag("@weft/runtime/Worker")<Worker, WorkerService>() {}

/** The default grace period of a shutdown. */
export const defaultGrace: Duration.Duration = Duration.seconds(30)

/**
 * Starts a worker in the current scope and returns at once. Storage errors while claiming are
 * logged and retried on a backoff; a run's own failure or defect is recorded by the engine; an
 * unexpected error of the runtime while executing a run is logged with its full cause. Everything
 * the worker and its runs log carries `workerId` (the lease owner).
 */
export const start = <W extends Workflow.Any>(
  options: Options<W>
): Effect.Effect<WorkerService, never, Store | Scope.Scope | Workflow.Requirements<W>> =>
  Effect.suspend(() => {
    const owner = options.owner ?? Owner.make()
    // The fibers the worker forks (claim loop, runs, listener) keep the annotation they were forked with.
    return Effect.annotateLogs(startAs(options, owner), "workerId", owner)
  })

/** Runs a worker until interrupted; the interruption is a graceful shutdown (see `start`). */
export const run = <W extends Workflow.Any>(
  options: Options<W>
): Effect.Effect<never, never, Store | Workflow.Requirements<W>> =>
  Effect.scoped(Effect.zipRight(start(options), Effect.never))

/**
 * A worker that starts when the layer is built and shuts down gracefully when it is released: the
 * way to run one inside a service (see `Weft.layer`).
 */
export const layer = <W extends Workflow.Any>(
  options: Options<W>
): Layer.Layer<Worker, never, Store | Workflow.Requirements<W>> => Layer.scoped(Worker, start(options))

/** The body of `start`, for the lease owner `owner`. */
const startAs = <W extends Workflow.Any>(
  options: Options<W>,
  owner: string
): Effect.Effect<WorkerService, never, Store | Scope.Scope | Workflow.Requirements<W>> =>
  Effect.gen(function*() {
    const store = yield* Store
    const declarations = Limits.declarations(options.workflows, options.queues)
    // Two declarations of one queue with different limits: a mistake in the code, not a condition.
    if (Either.isLeft(declarations)) return yield* Effect.dieMessage(declarations.left)
    const declared = declarations.right
    const queues = declared.names
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 10))
    const leaseMillis = options.leaseMillis ?? 30_000
    const pollMillis = Duration.toMillis(
      Duration.decode(options.pollInterval ?? (store.sharedWakeups ? "5 seconds" : "1 second"))
    )
    const graceMillis = Duration.toMillis(Duration.decode(options.grace ?? defaultGrace))
    const emit = options.onEvent ?? (() => Effect.void)
    const emits = options.onEvent !== undefined
    const known = new Map<string, Workflow.Any>(options.workflows.map((w) => [w.name, w]))
    // Grows as runs start children of workflows the worker was not given: it executes those too.
    let workflows = Array.from(known.keys())

    const fibers = yield* FiberSet.make<void, never>()
    // Something may be claimable: a notice, a freed slot, a due time. One pending wake is enough.
    const wake = yield* Queue.sliding<void>(1)
    let inFlight = 0
    // What the claim loop knows between claims. `news` counts the events that may have made runs
    // claimable (a notice, a due time or the poll reached, a run stopped here without its end); a
    // claim that came back short records in `quietAt` the count it started from, and until the
    // next event the loop does not claim again, not even when a run ends and frees a slot: at low
    // load every run's end would otherwise cost an empty claim and a look-up of the next due time.
    let news = 0
    let quietAt = -1
    // A workflow learned is news: its runs (the child just started among them) may be claimable,
    // and a claim that ran before it was learned passed over them.
    const learn = (workflow: Workflow.Any) => {
      if (!known.has(workflow.name)) {
        known.set(workflow.name, workflow)
        workflows = Array.from(known.keys())
        news++
        Queue.unsafeOffer(wake, undefined)
      }
    }
    // A run's end frees a slot of its queue's limit or of its key, which may make runs claimable
    // without a notice: with limits declared, every end is news.
    const limited = declared.keyed.length > 0 ||
      declared.queues.some((queue) => queue.concurrency !== undefined || queue.rateLimit !== undefined)
    // The next due time the store gave (a delayed run, a sleeper, a lease expiry), lowered by the
    // runs that suspend here; and when the fallback poll is due.
    let dueAt = Number.POSITIVE_INFINITY
    let pollAt = 0
    // Once set, runs stop at their next step boundary and release their lease with this reason.
    let stopReason: string | undefined

    // One heartbeat for every run in flight: it renews their leases and passes cancellations on.
    const leaseKeeper = yield* LeaseKeeper.make({
      owner,
      leaseMillis,
      retry: (effect, context) => Engine.retryStorage(effect, options.storageRetry ?? Engine.storageRetry, context)
    })

    // Each run has a fiber of its own, annotated with the run for good (see Engine.annotateRunFiber).
    // Its slot is freed once its code has stopped and only its end is being written (`onSettled`),
    // so that the next claim overlaps that commit instead of waiting for it; at the latest when
    // the fiber ends.
    const slotOf = () => {
      let holdsSlot = true
      return () => {
        if (!holdsSlot) return
        holdsSlot = false
        inFlight--
        if (limited) news++
        Queue.unsafeOffer(wake, undefined)
      }
    }
    const executeOne = (workflow: Workflow.Any, run: RunRecord, freeSlot: () => void): Effect.Effect<void> => {
      const executed = Engine.execute(workflow, run, {
        leaseKeeper,
        annotated: true,
        onChild: learn,
        owner,
        leaseMillis,
        storageRetry: options.storageRetry,
        suspendAfter: options.suspendAfter,
        maxRecoveries: options.maxRecoveries,
        onSettled: freeSlot,
        stopRequested: () => stopReason,
        onProgress: options.onProgress === undefined ? undefined : (event) => options.onProgress!(event, run)
      }) as Effect.Effect<Engine.Executed, StoreUnavailable | LeaseLost | RunSuspended>
      // How the execution ended, told in one handler (a run's hot path: one frame, not four).
      const ended = Effect.matchCauseEffect(executed, {
        onSuccess: (done) => emits ? emit({ _tag: "RunFinished", run, outcome: done.outcome }) : Effect.void,
        onFailure: (cause): Effect.Effect<void> => {
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure) && failure.value._tag === "RunSuspended") {
            const { reason, wakeAt } = failure.value
            if (wakeAt !== undefined && wakeAt < dueAt) {
              dueAt = wakeAt
              Queue.unsafeOffer(wake, undefined)
            }
            return emit({ _tag: "RunSuspended", run, wakeAt, reason })
          }
          if (Option.isSome(failure)) {
            // Its lease expires, or another worker may take it: worth a look at the store again.
            news++
            Queue.unsafeOffer(wake, undefined)
            return Effect.zipRight(
              Effect.logWarning(
                `worker ${owner}: run ${run.id} stopped here; it resumes from its journal`,
                Cause.fail(failure.value)
              ),
              emit({ _tag: "RunStopped", run, reason: `${failure.value.message}; the run resumes from its journal` })
            )
          }
          return Cause.isInterruptedOnly(cause)
            ? Effect.zipRight(
              emit({
                _tag: "RunStopped",
                run,
                reason: stopReason === undefined
                  ? "interrupted"
                  : "released at shutdown; it resumes on another worker"
              }),
              // Interrupted only: no failure in it.
              Effect.failCause(cause as Cause.Cause<never>)
            )
            : Effect.logError(`worker ${owner}: unexpected error of the runtime while executing run ${run.id}`, cause)
        }
      })
      const started = emits
        ? Effect.zipRight(Engine.annotateRunFiber(run), emit({ _tag: "RunStarted", run }))
        : Engine.annotateRunFiber(run)
      return Effect.zipRight(started, ended)
    }

    // A claim retries on storage errors until shutdown; the statement in flight is never
    // abandoned, since runs it claimed and nobody executes would sit leased until expiry.
    const claimRetry = Schedule.exponential(Duration.millis(100)).pipe(
      Schedule.either(Schedule.spaced(Duration.seconds(5))),
      Schedule.jittered
    )
    const claim = (limit: number) =>
      retryLazily(
        Effect.flatMap(
          Clock.currentTimeMillis,
          (now) => store.claimNext({ owner, queues, workflows, limit, leaseMillis, now })
        ).pipe(
          Effect.tapError((error) => Effect.logWarning(`worker ${owner}: claiming failed; retrying`, Cause.fail(error)))
        ),
        { schedule: claimRetry, while: () => stopReason === undefined }
      ).pipe(Effect.orElseSucceed((): ReadonlyArray<RunRecord> => []))

    // The worker's queue declarations go to the store before its first claim, so that its claims
    // (and every other worker's) honour them. Retried like a claim.
    const declare = Effect.gen(function*() {
      if (declared.queues.length === 0 && declared.keyed.length === 0) return
      const now = yield* Clock.currentTimeMillis
      const changed = yield* store.declareQueues({
        queues: declared.queues.map(Limits.toLimits),
        keyed: declared.keyed,
        by: owner,
        now
      })
      for (const old of changed) {
        const queue = declared.queues.find((queue) => queue.name === old.name)!
        yield* Effect.logWarning(
          `worker ${owner}: queue ${old.name} had ${WeftQueue.describeLimits(old)} (declared by ${
            old.declaredBy ?? "unknown"
          }${old.declaredAt === undefined ? "" : ` at ${new Date(old.declaredAt).toISOString()}`}); it has ${
            WeftQueue.describeLimits(queue)
          } now: the last declaration wins`
        )
      }
      yield* emit({ _tag: "QueuesDeclared", queues: declared.queues, changed })
    }).pipe(
      Effect.tapError((error) =>
        Effect.logWarning(`worker ${owner}: declaring its queues failed, retrying: ${error.message}`)
      ),
      Effect.retry({
        schedule: Schedule.exponential(Duration.millis(100)).pipe(
          Schedule.either(Schedule.spaced(Duration.seconds(5))),
          Schedule.jittered
        ),
        while: () => stopReason === undefined
      }),
      Effect.orElse(() => Effect.interrupt)
    )

    // Until a wake (a notice, a freed slot), the next due time or the fallback poll, whichever is
    // first; reaching a due time or the poll is news.
    // The timer is a fiber that wakes the loop through the same queue, interrupted once the loop is
    // awake: one fiber, where a race of the take and a sleep forks two and coordinates them (on the
    // path from a notice to a claim). A timer that fires late only wakes the loop once for nothing.
    const waitForNews = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const until = Math.min(dueAt, pollAt)
      if (until <= now) {
        news++
        return Effect.void
      }
      let timedOut = false
      const timer = Effect.zipRight(
        Effect.sleep(Duration.millis(until - now)),
        Effect.sync(() => {
          timedOut = true
          Queue.unsafeOffer(wake, undefined)
        })
      )
      return Effect.flatMap(Effect.fork(timer), (timerFiber) =>
        Queue.take(wake).pipe(
          Effect.ensuring(Fiber.interruptFork(timerFiber)),
          Effect.zipRight(Effect.sync(() => {
            if (timedOut) news++
          }))
        ))
    })

    // Idle after a short claim: look up the next due time the store knows of (a failed look-up
    // only means polling), set the fallback poll, jittered, and wait.
    const idle = Effect.gen(function*() {
      const factor = yield* Random.nextRange(0.8, 1.2)
      const now = yield* Clock.currentTimeMillis
      const due = yield* store.nextWakeAt({ queues, workflows, now }).pipe(
        Effect.orElseSucceed(() => Option.none<number>())
      )
      dueAt = Option.getOrElse(due, () => Number.POSITIVE_INFINITY)
      pollAt = now + Math.round(pollMillis * factor)
      yield* waitForNews
    })

    // Interruptible only while it waits: a claim in flight completes and its runs are forked
    // before a shutdown stops the loop, so no claimed run is left without a fiber. (A fiber forked
    // here would inherit the uninterruptible region: each run makes itself interruptible.)
    const loop = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        yield* restore(declare)
        while (true) {
          const free = concurrency - inFlight
          if (free <= 0) {
            yield* restore(Queue.take(wake))
            continue
          }
          // Nothing new since a claim found too little: a freed slot alone changes nothing.
          if (quietAt === news) {
            yield* restore(waitForNews)
            continue
          }
          const from = news
          // Only runs this worker can execute are claimed: another workflow's runs stay queued for
          // a worker that knows it, without counting recoveries or churning leases.
          const claimed = yield* claim(free)
          for (const run of claimed) {
            inFlight++
            const freeSlot = slotOf()
            const fiber = yield* FiberSet.run(
              fibers,
              Effect.interruptible(executeOne(known.get(run.workflow)!, run, freeSlot))
            )
            // The slot is free at the latest when the run's fiber ends, however it ends: an observer
            // of the fiber, called at once if it has ended already (no finalizer on the run's path).
            fiber.addObserver(freeSlot)
          }
          // With slots left, nothing more was claimable when the claim began.
          if (claimed.length < free) {
            quietAt = from
            yield* restore(idle)
          }
        }
      })
    ).pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.void
          : Effect.logError(`worker ${owner}: the claim loop failed unexpectedly`, cause)
      )
    )
    const loopFiber = yield* Effect.forkScoped(loop)

    // Wake-up notices of this worker's queues. When the channel breaks the worker says so, polls,
    // and subscribes again on a backoff; a new subscription starts with "*" (notices were missed).
    let wakeupsLost = false
    // Heard in the tick a notice arrives: on the path from a new run to its start, the claim loop
    // is woken at once. What takes an effect (a cancellation, the news that wake-ups are back) is
    // handed to a fiber of its own.
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const listen = store.listen((notice) => {
      // A cancellation notice for a run this worker holds is looked at at once.
      if (notice.startsWith("cancel:")) {
        runFork(leaseKeeper.check(notice.slice("cancel:".length)))
        return
      }
      if (notice !== anyQueue && !queues.includes(notice)) return
      news++
      Queue.unsafeOffer(wake, undefined)
      if (!wakeupsLost) return
      wakeupsLost = false
      runFork(emit({ _tag: "WakeupsRestored" }))
    }).pipe(
      Effect.tapError((error) =>
        wakeupsLost ? Effect.void : Effect.zipRight(
          Effect.sync(() => (wakeupsLost = true)),
          Effect.zipRight(
            Effect.logWarning(
              `worker ${owner}: wake-ups lost; polling every ${pollMillis} ms until they are back`,
              Cause.fail(error)
            ),
            emit({ _tag: "WakeupsLost", reason: error.message })
          )
        )
      ),
      Effect.retry(
        Schedule.exponential(Duration.millis(200)).pipe(Schedule.either(Schedule.spaced(Duration.seconds(5))))
      ),
      Effect.orElse(() => Effect.void)
    )
    const listenFiber = yield* Effect.forkScoped(listen)

    const finished = yield* Deferred.make<void>()
    let shuttingDown = false
    const shutdown: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
      if (shuttingDown) return Deferred.await(finished)
      shuttingDown = true
      return Effect.gen(function*() {
        stopReason = `worker ${owner} shut down at a step boundary; the run resumes from its journal`
        yield* Fiber.interrupt(loopFiber)
        yield* Fiber.interrupt(listenFiber)
        const running = yield* FiberSet.size(fibers)
        yield* emit({ _tag: "ShutdownStarted", inFlight: running, graceMillis })
        const drained = yield* FiberSet.awaitEmpty(fibers).pipe(
          Effect.interruptible,
          Effect.timeoutOption(Duration.millis(graceMillis))
        )
        const interrupted = Option.isSome(drained) ? 0 : yield* FiberSet.size(fibers)
        // Interrupted runs release their leases as they stop (the engine does it uninterruptibly).
        yield* FiberSet.clear(fibers)
        yield* emit({ _tag: "ShutdownFinished", interrupted })
        yield* Deferred.succeed(finished, undefined)
      })
    }))

    // Added after the FiberSet, so it runs first when the scope closes: the runs get their grace.
    yield* Effect.addFinalizer(() => shutdown)

    return { owner, inFlight: Effect.sync(() => inFlight), shutdown }
  })
