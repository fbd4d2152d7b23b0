/**
 * The engine executes a claimed run by replay: the workflow body runs from the top, every step
 * found in the journal returns its recorded result without running again, and every new attempt
 * and completion is written to the store before the body goes on. The run's end is recorded as
 * its encoded output or its full encoded Cause.
 */
import { Execution, Failure, type Workflow } from "@weft/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import { identity } from "effect/Function"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { LeaseLost, StoreUnavailable } from "./Errors.js"
import { RunSuspended } from "./Errors.js"
import * as FreshRuns from "./internal/FreshRuns.js"
import type * as LeaseKeeper from "./internal/LeaseKeeper.js"
import { retryLazily } from "./internal/retryLazily.js"
import * as Strands from "./internal/Strands.js"
import * as Limits from "./Limits.js"
import type { AttemptRow, Journal, Outcome, RunRecord, StepRecord, StoreService } from "./Store.js"
import { isTerminal } from "./Store.js"
import { Store } from "./Store.js"

/** How to execute a run. */
export interface ExecuteOptions {
  /** The lease owner (this worker); the run must already be claimed by it. */
  readonly owner: string
  /** Lease length; the heartbeat renews it every third of it. Default 30 seconds. */
  readonly leaseMillis?: number | undefined
  /** Receives live progress (the CLI prints it). */
  readonly onProgress?: ((event: Execution.ProgressEvent) => Effect.Effect<void>) | undefined
  /**
   * Asked before every step and before every retry backoff: once true, the run stops there (no new
   * step starts), its lease is released with the reason, and the execution ends interrupted. A
   * worker's graceful shutdown uses it, so that a step in flight finishes and is journaled.
   */
  readonly stopRequested?: (() => string | undefined) | undefined
  /**
   * How the engine retries its own storage calls when the store is unavailable (a database
   * restart, a dropped connection), apart from any retry policy of the workflow's steps. Default
   * `storageRetry`: exponential from 100 ms to 5 s, jittered, for up to 10 minutes.
   */
  readonly storageRetry?: Schedule.Schedule<unknown, StoreUnavailable> | undefined
  /**
   * A wait (durable sleep, retry backoff) at least this long suspends the run: it is recorded
   * `sleeping` until its time, its lease and memory are given up, and execution ends with
   * RunSuspended. Shorter waits sleep in process, as do waits inside a task group's branches.
   * Default 5 seconds.
   */
  readonly suspendAfter?: Duration.DurationInput | undefined
  /**
   * Completes whenever the run's control state should be read at once (a `cancel:<id>` notice):
   * otherwise the engine reads it with every heartbeat.
   */
  readonly checkNow?: Effect.Effect<void> | undefined
  /**
   * Keeps the run's lease instead of a heartbeat of the run's own (a worker keeps all its runs'
   * leases with one), and tells the engine when the lease is lost or a cancellation was asked for.
   */
  readonly leaseKeeper?: LeaseKeeper.LeaseKeeper | undefined
  /**
   * The executing fiber carries the run's log annotations already (`annotateRunFiber`, as the
   * worker does for each run's fiber): the engine does not look for them.
   */
  readonly annotated?: boolean | undefined
  /**
   * Told of each child run this run starts, with its workflow, so that the caller can execute it
   * (a worker then claims that workflow's runs too; `weft run` executes it here).
   */
  readonly onChild?: ((workflow: Workflow.Any, runId: string) => void) | undefined
  /**
   * The poison-run limit for workflows that do not declare `maxRecoveries`: a run recovered more
   * times than this (see `RunRecord.recoveries`) is failed with `Failure.RecoveryLimit` instead of
   * being executed. Default `defaultMaxRecoveries` (5).
   */
  readonly maxRecoveries?: number | undefined
  /**
   * Told once when the run's own code (its body, compensations included) has stopped and only
   * recording where it stands is left (its end, its suspension): a worker frees the run's slot
   * then, so that claiming more work overlaps that write.
   */
  readonly onSettled?: (() => void) | undefined
}

/**
 * The default poison-run limit: how many times a run may be recovered (claimed again after the
 * worker executing it stopped without finishing it) before it fails instead of running again.
 */
export const defaultMaxRecoveries = 5

/** The default of `ExecuteOptions.suspendAfter`. */
export const defaultSuspendAfter: Duration.Duration = Duration.seconds(5)

/**
 * The default retry of the engine's storage calls: exponential backoff from 100 ms, each delay
 * capped at 5 s and jittered, given up after 10 minutes (the run then stops on this worker and
 * resumes from its journal when claimed again).
 */
export const storageRetry: Schedule.Schedule<unknown, StoreUnavailable> = Schedule.exponential(Duration.millis(100))
  .pipe(
    Schedule.either(Schedule.spaced(Duration.seconds(5))),
    Schedule.jittered,
    Schedule.upTo(Duration.minutes(10))
  )

/**
 * Retries `effect` while it fails with a StoreUnavailable that may pass (not `permanent`), on
 * `schedule`, logging each failure; any other error fails at once. `onRetry` hears that a retry
 * happened: a write retried after a commit whose answer was lost may find its own earlier effect.
 */
export const retryStorage = <A, E>(
  effect: Effect.Effect<A, E | StoreUnavailable>,
  schedule: Schedule.Schedule<unknown, StoreUnavailable>,
  context: string,
  onRetry: () => void = () => {}
): Effect.Effect<A, E | StoreUnavailable> => {
  const logged = (error: StoreUnavailable) =>
    Effect.zipRight(
      Effect.sync(onRetry),
      Effect.logWarning(`${context} failed: the store is unavailable; retrying`, Cause.fail(error))
    )
  // The first try runs bare (storage calls nearly always succeed: one failure frame on the hot
  // path); after a first StoreUnavailable it is logged, and the tries go on as `Effect.retry`
  // would, the schedule seeing that first failure too (see retryLazily).
  return retryLazily(effect, {
    schedule: schedule as Schedule.Schedule<unknown, E | StoreUnavailable>,
    while: isPassing,
    onFailure: logged
  })
}

// A StoreUnavailable that may pass: one the database marked permanent (it refused the statement
// itself) is not retried, so that a bug or a broken schema surfaces at once.
const isPassing = (error: unknown): error is StoreUnavailable =>
  typeof error === "object" && error !== null &&
  (error as { readonly _tag?: unknown })._tag === "StoreUnavailable" &&
  (error as { readonly permanent?: unknown }).permanent !== true

/** The result of executing a run to its end. */
export interface Executed {
  readonly outcome: Outcome
  /** The run's decoded exit, as a client would see it. */
  readonly exit: Exit.Exit<unknown, unknown>
}

type CauseSchema = Schema.Schema<Cause.Cause<unknown>, Schema.CauseEncoded<unknown, unknown>>

// Built once per workflow: a Schema.Cause is a new schema class each time it is made, and every
// failed run is encoded with it and every failed result decoded with it.
const causeSchemas = new WeakMap<Workflow.Any, CauseSchema>()

/** The schema of a workflow's stored Cause. */
export const causeSchema = (workflow: Workflow.Any): CauseSchema => {
  let schema = causeSchemas.get(workflow)
  if (schema === undefined) {
    schema = Schema.Cause({ error: workflow.failure, defect: Failure.Defect }) as CauseSchema
    causeSchemas.set(workflow, schema)
  }
  return schema
}

/** Decodes a run's stored end into an Exit with the workflow's types. */
export const decodeOutcome = (
  workflow: Workflow.Any,
  run: RunRecord
): Effect.Effect<Exit.Exit<unknown, unknown>, ParseResult.ParseError> =>
  run.status === "succeeded"
    ? Effect.map(Schema.decodeUnknown(workflow.success)(run.output), Exit.succeed)
    : Effect.map(Schema.decodeUnknown(causeSchema(workflow))(run.failure), Exit.failCause)

/** The first line of a parse error with the path of the offending field, for messages. */
export const describeParseError = (
  error: ParseResult.ParseError
): { readonly path: string; readonly issue: string } => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return { path: "", issue: error.message }
  return {
    path: first.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, ""),
    issue: issues.map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ")
  }
}

/**
 * Sleeps until the clock reads `wakeAt`. A timer may fire a millisecond early (Node's loop time
 * lags the wall clock): a retry woken before a circuit breaker's `retryAfter` would be refused
 * again, and spend an attempt for nothing.
 */
const sleepUntil = (wakeAt: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    now >= wakeAt
      ? Effect.void
      : Effect.zipRight(Effect.sleep(Duration.millis(wakeAt - now)), Effect.suspend(() => sleepUntil(wakeAt))))

/** Why a run whose step will retry is not progressing: an open circuit breaker, or a backoff. */
const backingOffReason = (stepId: string, attempt: Execution.AttemptRecord): string => {
  const until = new Date(attempt.finishedAt + (attempt.delayMillis ?? 0)).toISOString()
  const error = attempt.error as { readonly _tag?: unknown; readonly breaker?: unknown } | undefined
  return error?._tag === "CircuitOpen" && typeof error.breaker === "string"
    ? `blocked by the open circuit breaker "${error.breaker}" until ${until} (attempt ${attempt.attempt} of step ${stepId} was refused)`
    : `backing off until ${until} after attempt ${attempt.attempt} of step ${stepId}`
}

const idFor = (name: string, occurrence: number) => (occurrence === 1 ? name : `${name}#${occurrence}`)

/** The branch path of a step id: everything before its last `/` (names cannot contain one). */
export const scopeOf = (stepId: string): string => {
  const slash = stepId.lastIndexOf("/")
  return slash === -1 ? "" : stepId.slice(0, slash)
}

/**
 * Encodes a run's Cause. A failure its workflow does not declare cannot be stored as a typed
 * error: it is kept as a defect that says so, rather than lost.
 */
const encodeCause = (workflow: Workflow.Any, cause: Cause.Cause<unknown>): unknown => {
  const schema = causeSchema(workflow)
  const direct = Schema.encodeEither(schema)(cause)
  if (Either.isRight(direct)) return direct.right
  const isDeclared = Schema.is(workflow.failure)
  const cleaned = Cause.flatMap(cause, (error) =>
    isDeclared(error)
      ? Cause.fail(error)
      : Cause.die(
        new Error(`workflow "${workflow.name}" failed with an error it does not declare: ${JSON.stringify(error)}`, {
          cause: error
        })
      ))
  return Either.getOrElse(
    Schema.encodeEither(schema)(cleaned),
    () =>
      Schema.encodeSync(schema)(Cause.die(new Error(`the failure of workflow "${workflow.name}" could not be encoded`)))
  )
}

/**
 * Executes a run already claimed by `options.owner` until it ends, and records the end.
 *
 * Fails with the store's error when the store goes away or the lease is lost: the run is then
 * not finished here and resumes elsewhere from its journal. Fails with RunSuspended when the run
 * suspended itself to wait (see `suspendAfter`): not a failure, it continues when due. When the fiber is interrupted
 * (Ctrl-C, shutdown), the lease is released and the run stays resumable.
 *
 * The workflow's code runs in the calling fiber: give each run a fiber of its own (the worker does),
 * since what that code changes in fiber-local state stays with the fiber, and a fiber it forks and
 * leaves running is a child of it.
 */
export const execute = <W extends Workflow.Any>(
  workflow: W,
  run: RunRecord,
  options: ExecuteOptions
): Effect.Effect<Executed, StoreUnavailable | LeaseLost | RunSuspended, Store | Workflow.Requirements<W>> =>
  // No generator on a run's path: V8 tenures the objects of generators that many runs create
  // (measured: a generator per run made every young collection several times dearer).
  Effect.flatMap(Store, (store) => {
    const leaseMillis = options.leaseMillis ?? 30_000
    const owner = options.owner
    const retrySchedule = options.storageRetry ?? storageRetry
    const stopRequested = options.stopRequested ?? (() => undefined)
    const suspendAfterMillis = Duration.toMillis(Duration.decode(options.suspendAfter ?? defaultSuspendAfter))
    const retrying = <A, E>(operation: string, effect: Effect.Effect<A, E | StoreUnavailable>, onRetry?: () => void) =>
      retryStorage(effect, retrySchedule, `run ${run.id}: ${operation}`, onRetry)
    // A poison run: its workers kept stopping without finishing it (a step that kills its process,
    // exhausts its memory, or hangs it until it is killed). It is failed here, before any of its code
    // runs again, and its compensations are not run: they are code of the same run, in the process
    // that would die again, and the journal stays as it was, for a re-drive once the cause is fixed.
    const maxRecoveries = workflow.maxRecoveries ?? options.maxRecoveries ?? defaultMaxRecoveries
    let settledTold = false
    const settled = () => {
      if (settledTold) return
      settledTold = true
      options.onSettled?.()
    }
    if (run.recoveries > maxRecoveries) {
      const poisoned = new Failure.RecoveryLimit({ runId: run.id, recoveries: run.recoveries, limit: maxRecoveries })
      return Effect.zipRight(
        Effect.logWarning(poisoned.message),
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          settled()
          return finish(
            store,
            workflow,
            run.id,
            owner,
            now,
            Exit.fail(poisoned),
            (effect, onRetry) => retrying("recording its end", effect, onRetry)
          )
        })
      )
    }
    // A run its claim started has no journal yet (see FreshRuns): nothing to read.
    return FreshRuns.take(run)
      ? executeWith({ steps: [], attempts: [] })
      : Effect.flatMap(retrying("reading its journal", store.readJournal(run.id)), executeWith)

    // The execution itself, once the journal is known.
    function executeWith(
      journal: Journal
    ): Effect.Effect<Executed, StoreUnavailable | LeaseLost | RunSuspended, Workflow.Requirements<W>> {
      // The journal by branch (task-group path, "" for the body), each in position order.
      const byScope = new Map<string, Array<StepRecord | undefined>>()
      for (const step of journal.steps) {
        const path = scopeOf(step.stepId)
        let steps = byScope.get(path)
        if (steps === undefined) byScope.set(path, steps = [])
        steps[step.position] = step
      }
      // Attempts recorded before the run's last re-drive are history: the steps' retry policies count
      // only the later ones (`StepSlot.priorAttempts`).
      const priorAttempts = run.redriven?.priorAttempts ?? {}
      const attemptsByStep = new Map<string, Array<AttemptRow>>()
      for (const attempt of journal.attempts) {
        if (attempt.attempt <= (priorAttempts[attempt.stepId] ?? 0)) continue
        const list = attemptsByStep.get(attempt.stepId)
        if (list === undefined) attemptsByStep.set(attempt.stepId, [attempt])
        else list.push(attempt)
      }
      // Per branch: how many steps of each name it entered, how many steps in all, and the step it
      // runs now (new steps only; a replayed step returns at once).
      const scopes = new Map<string, { occurrences: Map<string, number>; next: number; running: string | undefined }>()
      const scopeState = (path: string) => {
        let state = scopes.get(path)
        if (state === undefined) scopes.set(path, state = { occurrences: new Map(), next: 0, running: undefined })
        return state
      }
      // Set when the body must stop for a reason that is not the workflow's own: the journal does not
      // match the code, or the store failed or the lease was lost while writing.
      let nonDeterminism: Failure.NonDeterminism | undefined
      let aborted: StoreUnavailable | LeaseLost | undefined
      // Set when the body stopped at a step boundary because the worker asked it to.
      let stoppedFor: string | undefined
      // A cancellation asked for before this execution began: the body replays only what the journal
      // holds (to register the compensations of the completed steps) and stops at the first point it
      // would do something new. Asked for during the execution: the body is interrupted at once.
      let cancelling = run.cancel
      const cancelAtStart = run.cancel !== undefined
      // While true, anything not in the journal stops the body (the replay of a run cancelled before
      // this execution); false once the body has stopped, so that its compensations can run.
      let journalOnlyBody = cancelAtStart
      // The body runs in the fiber executing the run (see the end of this function). The engine
      // stops it (every strand waits, the lease is lost, a cancellation) by interrupting that fiber
      // as `engineStop`, only while the body runs; the interruption is then forgotten, and the rest
      // (recording where the run stands) goes on in the same fiber.
      let runFiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
      let bodyRunning = false
      const stopBodyNow = () => {
        if (bodyRunning) runFiber!.unsafeInterruptAsFork(engineStop)
      }
      const stopBody: Effect.Effect<void> = Effect.sync(stopBodyNow)
      // The body's strands and their waits: when all of them wait, the run suspends (or, replaying a
      // cancelled run, has reached everything it would do anew and stops).
      const strands = Strands.make((waits) =>
        Effect.suspend(() => {
          // Every strand waits: the run suspends, or, cancelled before it began, its replay has
          // reached everything it would do anew and stops there.
          if (!waits.some((wait) => wait.frontier === true)) suspended = waits
          return stopBody
        })
      )
      const atFrontier = <A>(): Effect.Effect<A> =>
        Effect.zipRight(strands.park({ frontier: true, reason: "cancelled" }, Effect.never), Effect.never)
      // The compensations of the steps completed so far (replayed or new), run if the body fails.
      const compensations: Array<{
        readonly stepId: string
        readonly finishedAt: number
        readonly compensation: Effect.Effect<void, unknown, unknown>
      }> = []
      // Set when every strand of the body waits: what for (a time, signals, children).
      let suspended: ReadonlyArray<Strands.Wait> | undefined

      const stopHere = () =>
        Effect.suspend(() => {
          const reason = stopRequested()
          if (reason === undefined) return Effect.void
          stoppedFor ??= reason
          return Effect.interrupt
        })

      const abortWith = (error: StoreUnavailable | LeaseLost) =>
        Effect.suspend(() => {
          aborted ??= error
          return Effect.interrupt
        })

      const progress = options.onProgress ?? (() => Effect.void)

      // Completions not written yet. A step's completion is made durable before anything after it
      // can have an effect (the next step's attempt, a child started, a signal taken, a wait, the
      // run's suspension or release), so holding it back changes nothing a crash could show: only
      // the run's last completion goes out later, with the run's end, one commit instead of two.
      let unwritten: Array<Parameters<typeof store.completeStep>[0]> = []
      // A step's end is reported once it is durable: `✓ step` means it is in the journal.
      let heldEvents: Array<Execution.ProgressEvent> = []
      const silent = options.onProgress === undefined
      // Whether the step's end is still unwritten is read when the report runs, not when it is made.
      const report = (event: Execution.ProgressEvent): Effect.Effect<void> =>
        silent ? Effect.void : Effect.suspend(() =>
          (event._tag === "StepSucceeded" || event._tag === "StepFailed") &&
            unwritten.some((write) => write.step.stepId === event.stepId)
            ? Effect.sync(() => void heldEvents.push(event))
            : progress(event)
        )
      const reportHeld = Effect.suspend(() => {
        const events = heldEvents
        heldEvents = []
        return Effect.forEach(events, progress, { discard: true })
      })
      const writeCompletions: Effect.Effect<void> = Effect.suspend(() => {
        if (unwritten.length === 0) return Effect.void
        const writes = unwritten
        unwritten = []
        const writeOne = (write: (typeof writes)[number]) =>
          retrying(`completing step ${write.step.stepId}`, store.completeStep(write))
        // Usually one (a branch's step): written without a fiber of its own.
        return (writes.length === 1
          ? writeOne(writes[0])
          : Effect.forEach(writes, writeOne, { concurrency: "unbounded", discard: true })).pipe(
            Effect.zipRight(reportHeld),
            Effect.catchAll(abortWith)
          )
      })

      // A journal row's identity: the run, and the step's place in it.
      const stepOf = (slot: Execution.StepSlot) => ({
        runId: run.id,
        stepId: slot.stepId,
        name: slot.name,
        kind: slot.kind,
        position: slot.position
      })

      const execution: Execution.ExecutionService = {
        runId: run.id,
        workflow: run.workflow,
        enter: (name, kind) =>
          Effect.flatMap(FiberRef.get(Execution.currentScope), (path) => {
            const stop = stopRequested()
            if (stop !== undefined) {
              stoppedFor ??= stop
              return Effect.interrupt
            }
            const scope = scopeState(path)
            const occurrence = (scope.occurrences.get(name) ?? 0) + 1
            scope.occurrences.set(name, occurrence)
            const local = idFor(name, occurrence)
            const stepId = path === "" ? local : `${path}/${local}`
            const at = scope.next++
            const recorded = byScope.get(path)?.[at]
            if (recorded !== undefined && (recorded.stepId !== stepId || recorded.kind !== kind)) {
              nonDeterminism ??= new Failure.NonDeterminism({
                runId: run.id,
                scope: path,
                position: at,
                expected: recorded.stepId,
                found: stepId
              })
              return Effect.interrupt
            }
            if (recorded === undefined && journalOnlyBody) return atFrontier()
            if (recorded === undefined) {
              if (scope.running !== undefined) {
                return Effect.die(
                  new Error(
                    `step "${stepId}" started while step "${scope.running}" of the same branch is running: ` +
                      `steps that run concurrently must each be in a branch of Workflow.all or Workflow.forEach, ` +
                      `so that their identity does not depend on timing`
                  )
                )
              }
              scope.running = stepId
            }
            const slot: Execution.StepSlot = {
              stepId,
              name,
              kind,
              position: at,
              result: recorded === undefined ? Option.none() : Option.some(recorded.result),
              attempts: attemptsByStep.get(stepId) ?? [],
              priorAttempts: priorAttempts[stepId] ?? 0,
              finishedAt: recorded?.finishedAt
            }
            // Something new is about to happen: what completed before it is made durable first.
            return recorded === undefined && unwritten.length > 0
              ? Effect.as(writeCompletions, slot)
              : Effect.succeed(slot)
          }),
        recordAttempt: (slot, attempt) =>
          Effect.zipRight(
            writeCompletions,
            Effect.catchAll(
              Effect.tap(
                retrying(
                  `recording attempt ${attempt.attempt} of step ${slot.stepId}`,
                  store.recordAttempt({
                    owner,
                    attempt: { ...attempt, runId: run.id, stepId: slot.stepId },
                    reason: backingOffReason(slot.stepId, attempt),
                    now: attempt.finishedAt
                  })
                ),
                () =>
                  Effect.sync(() => {
                    const row = { ...attempt, runId: run.id, stepId: slot.stepId }
                    const list = attemptsByStep.get(slot.stepId)
                    if (list === undefined) attemptsByStep.set(slot.stepId, [row])
                    else list.push(row)
                  })
              ),
              abortWith
            ).pipe(
              // The attempt is journaled: a backoff is a good place to stop, and resuming continues it.
              Effect.zipLeft(stopHere())
            )
          ),
        // Held back until something follows it (see `unwritten`).
        complete: (slot, attempt, result) => {
          // Built field by field, not spread: every completion then has one shape (a run's hot path).
          const held = (now: number) => {
            const earlier = attemptsByStep.get(slot.stepId)
            const exitTag = (result as { readonly _tag?: string })._tag
            unwritten.push({
              owner,
              step: {
                runId: run.id,
                stepId: slot.stepId,
                name: slot.name,
                kind: slot.kind,
                position: slot.position,
                result,
                failed: exitTag === "Failure",
                attempts: attempt?.attempt ?? earlier?.length ?? 0,
                startedAt: earlier?.[0]?.startedAt ?? attempt?.startedAt ?? now,
                finishedAt: attempt?.finishedAt ?? now
              },
              attempt: attempt === undefined ? undefined : attemptRow(run.id, slot.stepId, attempt),
              now
            })
          }
          // An attempt's end is the time of the completion; only a child's result needs the clock.
          return attempt === undefined
            ? Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => held(now)))
            : Effect.sync(() => held(attempt.finishedAt))
        },
        // A long wait parks its strand: it sleeps here until then, unless every strand of the run
        // waits too, and the run suspends.
        waitUntil: (wakeAt, reason) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const remaining = wakeAt - now
            if (remaining <= 0) return Effect.void
            if (journalOnlyBody) return atFrontier()
            const sleep = sleepUntil(wakeAt)
            return remaining < suspendAfterMillis ? sleep : strands.park({ wakeAt, reason }, sleep)
          }),
        takeSignal: (slot, name, deadline) =>
          Effect.suspend(() => {
            if (journalOnlyBody) return atFrontier()
            if (!Object.hasOwn(workflow.signals, name)) {
              return Effect.die(
                new Error(
                  `workflow "${workflow.name}" waits for signal "${name}" but does not declare it: ` +
                    `add it to Workflow.make({ signals: { "${name}": <its schema> } })`
                )
              )
            }
            return Effect.flatMap(Clock.currentTimeMillis, (now) =>
              retrying(
                `taking signal ${name}`,
                store.takeSignal({
                  owner,
                  step: {
                    ...stepOf(slot),
                    attempts: 0,
                    startedAt: now,
                    finishedAt: now
                  },
                  name,
                  deadline,
                  now
                })
              )).pipe(Effect.catchAll(abortWith))
          }),
        // While other strands of the run go on, a waiting branch looks again every half second.
        awaitSignal: (name, deadline, reason) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            strands.park(
              { wakeAt: deadline, signal: { name, deadline }, reason },
              Effect.sleep(Duration.millis(Math.max(0, Math.min(500, (deadline ?? Infinity) - now))))
            )),
        startChild: (slot, child, input, id) =>
          Effect.gen(function*() {
            const childId = id ?? `${run.id}/${slot.stepId}`
            const encoded = yield* Effect.orDie(Schema.encodeUnknown(child.input)(input))
            const now = yield* Clock.currentTimeMillis
            // The child's own queue when it declares one, else its parent's.
            const placed = Limits.placement(child, input, child.queue === undefined ? run.queue : undefined)
            yield* retrying(
              `starting child run ${childId}`,
              store.createRun({
                id: childId,
                workflow: child.name,
                version: child.version ?? "unversioned",
                input: encoded,
                queue: placed.queue,
                concurrencyKey: placed.concurrencyKey,
                concurrencyLimit: placed.concurrencyLimit,
                parent: { runId: run.id, stepId: slot.stepId },
                correlationId: run.correlationId,
                now
              })
            ).pipe(
              Effect.catchTag(
                "RunConflict",
                (conflict) => Effect.die(new Error(`child run ${childId} of step ${slot.stepId}: ${conflict.message}`))
              )
            )
            options.onChild?.(child, childId)
            return childId
          }).pipe(Effect.catchAll(abortWith)),
        takeChild: (slot, childId) =>
          Effect.gen(function*() {
            const child = yield* retrying(`reading child run ${childId}`, store.getRun(childId))
            if (Option.isNone(child) || !isTerminal(child.value.status)) return Option.none()
            const ended: unknown = child.value.status === "succeeded"
              ? { _tag: "Success", value: child.value.output }
              : { _tag: "Failure", cause: child.value.failure }
            yield* execution.complete(slot, undefined, ended)
            return Option.some(ended)
          }).pipe(Effect.catchAll(abortWith)),
        // While other strands of the run go on, a waiting branch looks again every half second.
        awaitChild: (childId, reason) =>
          Effect.suspend(() =>
            journalOnlyBody
              ? atFrontier()
              : strands.park({ child: childId, reason }, Effect.sleep(Duration.millis(500)))
          ),
        registerCompensation: (slot, finishedAt, compensation) =>
          Effect.sync(() => {
            compensations.push({ stepId: slot.stepId, finishedAt, compensation })
          }),
        leave: (slot) =>
          Effect.sync(() => {
            const scope = scopes.get(scopeOf(slot.stepId))
            if (scope !== undefined && scope.running === slot.stepId) scope.running = undefined
          }),
        branchOut: strands.branchOut,
        progress: report,
        silent
      }

      // When the workflow fails (for its own reasons: not interrupted, not stopped by the engine) or
      // is cancelled, the compensations of its completed steps run, latest completion first, each a
      // durable step (journaled, so a crash meanwhile resumes with the next one). One that fails for
      // good does not stop the others; its failure is added to the run's Cause after the original one.
      const compensate = (cause: Cause.Cause<unknown>) =>
        Effect.gen(function*() {
          const ordered = [...compensations].sort((a, b) =>
            b.finishedAt - a.finishedAt || (a.stepId < b.stepId ? 1 : a.stepId > b.stepId ? -1 : 0)
          )
          let result = cause
          for (const { compensation, stepId } of ordered) {
            const exit = yield* Effect.exit(compensation)
            if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
              result = Cause.sequential(
                result,
                Cause.die(new Error(`the compensation of step ${stepId} failed`, { cause: Cause.squash(exit.cause) }))
              )
            } else if (Exit.isFailure(exit)) {
              return yield* Effect.failCause(exit.cause)
            }
          }
          return yield* Effect.failCause(result)
        })

      // Decoded at once: a valid input costs no effect of its own. (A schema whose transformation
      // throws is a defect of the body, as it would be decoded inside it.)
      const input = decodeInput(workflow, run)
      const body: Effect.Effect<unknown, unknown, Workflow.Requirements<W>> = Effect.flatMap(
        input,
        (input) =>
          // The body runs in a fiber of its own: Execution is put into its context for good, without
          // the save and restore of Effect.provideService.
          Effect.zipRight(
            FiberRef.update(FiberRef.currentContext, Context.add(Execution.Execution, execution)),
            workflow.run(input).pipe(
              Effect.catchAllCause((cause) =>
                compensations.length === 0 || Cause.isInterruptedOnly(cause) || nonDeterminism !== undefined ||
                  aborted !== undefined || suspended !== undefined || stoppedFor !== undefined ||
                  cancelling !== undefined
                  ? Effect.failCause(cause)
                  : (compensate(cause) as Effect.Effect<never, unknown>)
              )
            )
          )
      )

      // The heartbeat runs beside the body, not in it, so a step that hogs its fiber cannot starve
      // it; losing the lease stops the body. While the store is unavailable nobody else can take the
      // lease either, so the heartbeat retries as long as the other storage calls do.
      // Each beat also reads whether someone asked to cancel the run; a notice makes it beat at once.
      const beatMillis = Math.max(10, Math.floor(leaseMillis / 3))
      const heartbeat = (cancel: Effect.Effect<void>) =>
        Effect.gen(function*() {
          while (true) {
            yield* options.checkNow === undefined
              ? Effect.sleep(Duration.millis(beatMillis))
              : Effect.raceFirst(Effect.sleep(Duration.millis(beatMillis)), options.checkNow)
            const now = yield* Clock.currentTimeMillis
            yield* retrying("renewing its lease", store.renewLease({ id: run.id, owner, leaseMillis, now }))
            const current = yield* retrying("reading its state", store.getRun(run.id))
            if (cancelling === undefined && Option.isSome(current) && current.value.cancel !== undefined) {
              cancelling = current.value.cancel
              yield* cancel
            }
          }
        })

      // The body runs in this fiber, interruptibly; everything after it (recording its end, or
      // releasing the lease when interrupted) runs uninterruptibly: an interrupted fiber must still
      // leave the run resumable. (A fiber of the body's own cost a fork, an await and a diff of
      // fiber-local state per run: ~30% of a one-step run's CPU in the engine, garbage included.)
      return Effect.uninterruptibleMask((restore) =>
        Effect.withFiberRuntime<Executed, StoreUnavailable | LeaseLost | RunSuspended, Workflow.Requirements<W>>(
          (fiber) => {
            runFiber = fiber
            // From here on a stop reaches the body: one sent before it begins is taken as soon as
            // its interruptible region starts, and it never runs.
            bodyRunning = true
            const keeper = options.leaseKeeper
            keeper?.hold(run.id, {
              lost: (error) =>
                Effect.sync(() => {
                  aborted ??= error
                  stopBodyNow()
                }),
              cancel: (request) =>
                Effect.sync(() => {
                  if (cancelling !== undefined) return
                  cancelling = request
                  stopBodyNow()
                })
            })
            const inBody = Effect.exit(
              restore(cancelAtStart ? Effect.locally(body, Execution.journalOnly, true) : body)
            )
            // Once the body has stopped: an interruption the engine sent it is forgotten (nothing else
            // of this run is to be interrupted by it), and the run's state is recorded.
            const afterBody = (exit: Exit.Exit<unknown, unknown>) =>
              Effect.suspend(() => {
                bodyRunning = false
                strands.closeNow()
                if (keeper !== undefined) keeper.release(run.id)
                const recorded = Effect.flatMap(
                  Clock.currentTimeMillis,
                  (now) => recordWhereItStands(exit, now, restore)
                )
                const pending = fiber.getFiberRef(FiberRef.interruptedCause)
                return Cause.isEmpty(pending) || !onlyEngineStops(pending)
                  ? recorded
                  : Effect.zipRight(FiberRef.set(FiberRef.interruptedCause, Cause.empty), recorded)
              })
            if (keeper !== undefined) return Effect.flatMap(inBody, afterBody)
            // No keeper (a run executed alone, `weft run`): a heartbeat of its own, beside the body.
            const heartbeatFiber = Effect.fork(restore(
              Effect.catchAll(heartbeat(stopBody), (error) =>
                Effect.sync(() => {
                  aborted ??= error
                  stopBodyNow()
                }))
            ))
            return Effect.flatMap(heartbeatFiber, (beating) =>
              Effect.flatMap(inBody, (exit) => Effect.zipRight(Fiber.interrupt(beating), afterBody(exit))))
          }
        )
      )

      // What the body's end leaves to record: its end, its suspension, its cancellation, or (when
      // interrupted) the release of its lease.
      function recordWhereItStands(
        exit: Exit.Exit<unknown, unknown>,
        now: number,
        restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
      ): Effect.Effect<Executed, StoreUnavailable | LeaseLost | RunSuspended> {
        // The completions held back when the body stopped: all written now but the last, which is
        // handed back to go with the run's end. (Built when needed: the common end needs neither.)
        const heldBack = () =>
          Effect.suspend(() => {
            const held = unwritten
            unwritten = []
            const last = held.pop()
            return Effect.as(
              Effect.forEach(
                held,
                (write) =>
                  retrying(`completing step ${write.step.stepId}`, store.completeStep(write)),
                { discard: true }
              ),
              last
            )
          })
        const writeHeldBack = () =>
          Effect.flatMap(heldBack(), (last) =>
            last === undefined
              ? Effect.void
              : retrying(`completing step ${last.step.stepId}`, store.completeStep(last))).pipe(
              Effect.zipRight(reportHeld)
            )
        const recordEnd = (
          exit: Exit.Exit<unknown, unknown>,
          failedAs: "failed" | "cancelled",
          at: number,
          last: (typeof unwritten)[number] | undefined
        ) =>
          finish(
            store,
            workflow,
            run.id,
            owner,
            at,
            exit,
            (effect, onRetry) => retrying("recording its end", effect, onRetry),
            failedAs,
            last === undefined ? undefined : { step: last.step, attempt: last.attempt }
          )
        const finishing = (exit: Exit.Exit<unknown, unknown>, failedAs: "failed" | "cancelled" = "failed") =>
          Effect.suspend(() => {
            settled()
            // The common end (a run whose last completion, if any, goes with its end): no more
            // than the write of the end, and the progress it held back.
            if (failedAs === "failed" && unwritten.length <= 1) {
              const last = unwritten.pop()
              const ended = recordEnd(exit, failedAs, now, last)
              return heldEvents.length === 0 ? ended : Effect.zipLeft(ended, reportHeld)
            }
            return Effect.flatMap(heldBack(), (last) =>
              Effect.flatMap(
                Clock.currentTimeMillis,
                (at) => recordEnd(exit, failedAs, failedAs === "failed" ? now : at, last)
              )).pipe(Effect.zipLeft(reportHeld))
          })
        // The common end: the body ended by itself (succeeded or failed), nothing stopped it.
        if (
          nonDeterminism === undefined && aborted === undefined && cancelling === undefined &&
          suspended === undefined && !(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause))
        ) return finishing(exit)
        return Effect.gen(function*() {
          if (nonDeterminism !== undefined) {
            return yield* finishing(Exit.failCause(Cause.fail(nonDeterminism)))
          }
          if (aborted !== undefined) return yield* Effect.fail(aborted)
          // Cancelled: whatever the body was doing was interrupted; the completed steps are undone,
          // and the run ends `cancelled` with who asked and why. (A body that ended before the
          // request was noticed ends as it ended.)
          if (cancelling !== undefined && Exit.isFailure(exit) && Cause.isInterrupted(exit.cause)) {
            const request = cancelling
            journalOnlyBody = false
            // Asked again now that the body has stopped: a child it started after the request (before
            // this execution noticed it) is cancelled too. The first request's who and why are kept.
            yield* retrying(
              "cancelling its children",
              store.requestCancel({ id: run.id, by: request.by, reason: request.reason, now })
            ).pipe(Effect.catchTag("RunNotFound", () => Effect.void))
            const cancelled = Cause.fail(
              new Failure.Cancelled({ runId: run.id, by: request.by, reason: request.reason })
            )
            const compensated = yield* restore(
              Effect.provideService(compensate(cancelled), Execution.Execution, execution) as Effect.Effect<
                never,
                unknown
              >
            ).pipe(Effect.exit)
            if (aborted !== undefined) return yield* Effect.fail(aborted)
            const cause = Exit.isFailure(compensated) && !Cause.isInterruptedOnly(compensated.cause)
              ? compensated.cause
              : cancelled
            return yield* finishing(Exit.failCause(cause), "cancelled")
          }
          if (suspended !== undefined && Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
            const waits = suspended
            // The first time one of the waits ends by itself: a wake time, a signal's deadline.
            const deadlines = waits.flatMap((wait) => (wait.wakeAt === undefined ? [] : [wait.wakeAt]))
            const wakeAt = deadlines.length === 0 ? undefined : Math.min(...deadlines)
            const signals = waits.flatMap((wait) => (wait.signal === undefined ? [] : [wait.signal]))
            const children = waits.flatMap((wait) => (wait.child === undefined ? [] : [wait.child]))
            const reason = [...new Set(waits.map((wait) => wait.reason))].join("; ")
            settled()
            yield* writeHeldBack()
            const status = yield* retrying(
              "suspending",
              store.suspendRun({ id: run.id, owner, wakeAt, signals, children, reason, now })
            )
            const names = signals.length === 0 ? undefined : [...new Set(signals.map((signal) => signal.name))]
            const awaited = children.length === 0 ? undefined : children
            // Woken: what it waits for happened while it was deciding to wait; it is claimable at once.
            return yield* Effect.fail(
              status === "woken"
                ? new RunSuspended({
                  runId: run.id,
                  wakeAt: now,
                  children: awaited,
                  reason: `${reason}: ready at once`
                })
                : new RunSuspended({ runId: run.id, wakeAt, signals: names, children: awaited, reason })
            )
          }
          if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
            // Best effort, not retried: this is a shutdown or a Ctrl-C, and a lease that could not be
            // released expires by itself.
            yield* Effect.forEach(unwritten.splice(0), (write) => store.completeStep(write), { discard: true }).pipe(
              Effect.zipRight(reportHeld),
              Effect.catchAll((error) =>
                Effect.logWarning(`run ${run.id}: could not record a completed step; it runs again`, Cause.fail(error))
              )
            )
            yield* store.releaseRun({
              id: run.id,
              owner,
              reason: stoppedFor ??
                `interrupted at ${new Date(now).toISOString()}; resume it with: weft resume ${run.id}`,
              now
            }).pipe(
              Effect.catchAll((error) =>
                Effect.logWarning(`run ${run.id}: could not release its lease; it expires by itself`, Cause.fail(error))
              )
            )
            return yield* Effect.interrupt
          }
          return yield* finishing(exit)
        })
      }
    }
  }).pipe(options.annotated === true ? identity : withRunAnnotations(run)) as never

/** An attempt of a step as the journal keeps it, with one shape whatever fields it has. */
const attemptRow = (runId: string, stepId: string, attempt: Execution.AttemptRecord): AttemptRow => ({
  runId,
  stepId,
  attempt: attempt.attempt,
  startedAt: attempt.startedAt,
  finishedAt: attempt.finishedAt,
  outcome: attempt.outcome,
  error: attempt.error,
  delayMillis: attempt.delayMillis,
  stopReason: attempt.stopReason
})

/**
 * The interruptor of a run's body stopped by its engine (see `execute`): a fiber id of no fiber,
 * so that such an interruption is told apart from one that stops the whole execution (a shutdown).
 */
const engineStop = FiberId.make(-1, 0)

/** Whether every interruption in `cause` is the engine's stop of a body. */
const onlyEngineStops = (cause: Cause.Cause<never>): boolean => {
  for (const id of Cause.interruptors(cause)) if (!Equal.equals(id, engineStop)) return false
  return true
}

/** A run's input decoded by its workflow's schema, as an effect that needs no work of its own. */
const decodeInput = (workflow: Workflow.Any, run: RunRecord): Effect.Effect<unknown, Failure.InputInvalid> => {
  let decoded: Either.Either<unknown, ParseResult.ParseError>
  try {
    decoded = Schema.decodeUnknownEither(workflow.input)(run.input)
  } catch (defect) {
    return Effect.die(defect)
  }
  if (Either.isRight(decoded)) return Effect.succeed(decoded.right)
  const { issue, path } = describeParseError(decoded.left)
  return Effect.fail(new Failure.InputInvalid({ workflow: workflow.name, path, issue }))
}

/**
 * The log annotations of a run: `runId`, `workflow`, and `correlationId` when the run has one. The
 * engine puts them on everything a run logs, its steps' own `Effect.log` calls included.
 */
export const logAnnotations = (run: RunRecord): Record<string, string> =>
  run.correlationId === undefined
    ? { runId: run.id, workflow: run.workflow }
    : { runId: run.id, workflow: run.workflow, correlationId: run.correlationId }

/** `logAnnotations(run)` added to the log annotations of the fiber (which must be the run's alone). */
export const annotateRunFiber = (run: RunRecord): Effect.Effect<void> =>
  FiberRef.update(FiberRef.currentLogAnnotations, (annotations) =>
    // One copy of the annotations, however many are added.
    HashMap.mutate(annotations, (draft) => {
      HashMap.set(draft, "runId", run.id)
      HashMap.set(draft, "workflow", run.workflow)
      if (run.correlationId !== undefined) HashMap.set(draft, "correlationId", run.correlationId)
    }))

/**
 * Runs `effect` with the run's log annotations, unless its fiber has them already (a worker puts
 * them on each run's fiber): Effect.annotateLogs saves and restores them, ~9 µs a run for nothing.
 */
const withRunAnnotations = (run: RunRecord) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    FiberRef.get(FiberRef.currentLogAnnotations),
    (annotations) =>
      Option.getOrUndefined(HashMap.get(annotations, "runId")) === run.id
        ? effect
        : Effect.annotateLogs(effect, logAnnotations(run))
  )

/**
 * What a run's end is recorded as (its encoded output or Cause) and the exit a client reading it
 * would decode. A value the workflow's schemas reject is recorded as a defect that says so.
 */
const recordedEnd = (
  workflow: Workflow.Any,
  exit: Exit.Exit<unknown, unknown>,
  failedAs: "failed" | "cancelled"
): Executed => {
  if (Exit.isSuccess(exit)) {
    const encoded = Schema.encodeEither(workflow.success)(exit.value)
    if (Either.isRight(encoded)) {
      // Hand back what a client reading the store would decode.
      return {
        outcome: { status: "succeeded", output: encoded.right },
        exit: Exit.succeed(Schema.decodeUnknownSync(workflow.success)(encoded.right))
      }
    }
    const cause = Cause.die(
      new Error(`workflow "${workflow.name}" returned a value its success schema rejects: ${encoded.left.message}`)
    )
    return { outcome: { status: "failed", failure: encodeCause(workflow, cause) }, exit: Exit.failCause(cause) }
  }
  const failure = encodeCause(workflow, exit.cause)
  return {
    outcome: { status: failedAs, failure },
    exit: Exit.failCause(Schema.decodeUnknownSync(causeSchema(workflow))(failure))
  }
}

const finish = (
  store: StoreService,
  workflow: Workflow.Any,
  runId: string,
  owner: string,
  now: number,
  exit: Exit.Exit<unknown, unknown>,
  retrying: <A, E>(
    effect: Effect.Effect<A, E | StoreUnavailable>,
    onRetry: () => void
  ) => Effect.Effect<A, E | StoreUnavailable>,
  failedAs: "failed" | "cancelled" = "failed",
  lastStep?: Parameters<StoreService["finishRun"]>[0]["step"]
): Effect.Effect<Executed, StoreUnavailable | LeaseLost> =>
  Effect.suspend(() => {
    const executed = recordedEnd(workflow, exit, failedAs)
    const outcome = executed.outcome
    let retried = false
    return retrying(store.finishRun({ id: runId, owner, outcome, now, step: lastStep }), () => {
      retried = true
    }).pipe(
      // A retry after a commit whose answer was lost finds the lease already dropped by that commit:
      // the run is finished, by this very write.
      Effect.catchTag("LeaseLost", (lost) =>
        retried
          ? Effect.flatMap(store.getRun(runId), (stored) =>
            Option.isSome(stored) && stored.value.status === outcome.status && stored.value.leaseOwner === undefined
              ? Effect.void
              : Effect.fail(lost))
          : Effect.fail(lost)),
      Effect.as(executed)
    )
  })
