/**
 * The storage contract of weft: runs, their journal of completed steps, and every attempt of
 * every step. Memory, SQLite and PostgreSQL implement it and pass one conformance suite.
 *
 * Values crossing this boundary are already encoded (plain JSON); the store never sees schemas.
 * Journal writes are fenced by the run's lease: a worker that lost its lease cannot write.
 */
import type { Execution } from "@weft/core"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type {
  LeaseLost,
  RunConflict,
  RunFinished,
  RunNotClaimable,
  RunNotFound,
  RunNotRedrivable,
  StepNotInJournal,
  StoreUnavailable
} from "./Errors.js"

/** Where a run is in its life. `queued` and `running` runs can be resumed; the last three are final. */
export type RunStatus = "queued" | "running" | "sleeping" | "waiting" | "succeeded" | "failed" | "cancelled"

export const terminalStatuses: ReadonlyArray<RunStatus> = ["succeeded", "failed", "cancelled"]

/** Whether a status is final. */
export const isTerminal = (status: RunStatus): boolean => terminalStatuses.includes(status)

/** A run as stored. Times are epoch milliseconds. */
export interface RunRecord {
  readonly id: string
  readonly workflow: string
  readonly version: string
  readonly status: RunStatus
  /** The input, encoded with the workflow's input schema. */
  readonly input: unknown
  /** The success, encoded with the workflow's success schema, once succeeded. */
  readonly output: unknown
  /** The run's Cause, encoded with `Schema.Cause`, once failed or cancelled. */
  readonly failure: unknown
  readonly idempotencyKey: string | undefined
  readonly queue: string
  /** Higher is claimed first (see `claimNext`); a run started with no priority has 0. */
  readonly priority: number
  readonly leaseOwner: string | undefined
  readonly leaseExpiresAt: number | undefined
  readonly wakeAt: number | undefined
  /** Why a non-final run is not progressing, in words (`interrupted by SIGINT`, `backing off ...`). */
  readonly reason: string | undefined
  /** How many times the run was claimed again after its first claim (crashes, takeovers). */
  readonly recoveries: number
  /** Where the run was started from, e.g. the CLI's module path, so `weft resume` can find the code. */
  readonly origin?: string | undefined
  /** Set once someone asked to cancel the run (the first request wins). */
  readonly cancel?: CancelRequest | undefined
  /** The run and step that started this run as a child. */
  readonly parent?: { readonly runId: string; readonly stepId: string } | undefined
  /**
   * An id the caller gave at start to follow this run in its own logs and traces (a request id);
   * a child run has its parent's. Every log line of the run carries it.
   */
  readonly correlationId?: string | undefined
  /** Set once the run was re-driven (see `redriveRun`); `listRedrives` has each re-drive. */
  readonly redriven?: Redriven | undefined
  /** At most `concurrencyLimit` runs of its queue with this key run at once (see `claimNext`). */
  readonly concurrencyKey?: string | undefined
  /** Set with `concurrencyKey`. */
  readonly concurrencyLimit?: number | undefined
  readonly createdAt: number
  /** The last change: creation, a claim, a step, a lease renewal, the end (the last write of a finished run). */
  readonly updatedAt: number
  /** When its current execution began: its first claim, or the first claim after its last re-drive. */
  readonly startedAt: number | undefined
  readonly finishedAt: number | undefined
}

/** What a run carries from its re-drives. */
export interface Redriven {
  /** How many times it was re-driven. */
  readonly count: number
  /**
   * Per step id, the highest attempt number recorded before the last re-drive: those attempts are
   * history, and the step's retry policy counts only the attempts after them.
   */
  readonly priorAttempts: Readonly<Record<string, number>>
}

/** Who asked to cancel a run, why, and when. */
export interface CancelRequest {
  readonly at: number
  readonly by: string
  readonly reason: string
}

/** A run to create. */
export interface NewRun {
  readonly id: string
  readonly workflow: string
  readonly version: string
  readonly input: unknown
  readonly idempotencyKey?: string | undefined
  readonly queue?: string | undefined
  /** Higher is claimed first. A run with no priority has priority 0. */
  readonly priority?: number | undefined
  readonly origin?: string | undefined
  /** The earliest time `claimNext` may take the run (a delayed start). Default: at once. */
  readonly wakeAt?: number | undefined
  /** The run and step that start this run as a child: its end wakes that run when it waits for it. */
  readonly parent?: { readonly runId: string; readonly stepId: string } | undefined
  /** The caller's id for following the run in its logs (see `RunRecord.correlationId`). */
  readonly correlationId?: string | undefined
  /**
   * At most `concurrencyLimit` (default 1) runs of the queue with this key run at once. The store
   * records the queue as keyed, so that every claim of it counts keys.
   */
  readonly concurrencyKey?: string | undefined
  readonly concurrencyLimit?: number | undefined
  /** Claim it for this owner at once (the `weft run` path), instead of leaving it queued. */
  readonly claim?: { readonly owner: string; readonly leaseMillis: number } | undefined
  readonly now: number
}

/** A completed step: its result is an encoded Exit (success value or failure Cause). */
export interface StepRecord {
  readonly runId: string
  readonly stepId: string
  readonly name: string
  readonly kind: Execution.StepKind
  readonly position: number
  readonly result: unknown
  readonly failed: boolean
  readonly attempts: number
  readonly startedAt: number
  readonly finishedAt: number
}

/** One attempt of a step, with the run and step it belongs to. */
export interface AttemptRow extends Execution.AttemptRecord {
  readonly runId: string
  readonly stepId: string
}

/** A signal in a run's mailbox. */
export interface SignalRecord {
  readonly runId: string
  /** Arrival order across the store. */
  readonly seq: number
  readonly name: string
  /** Encoded with the signal's schema. */
  readonly payload: unknown
  readonly sentAt: number
  /** The step that took it, once taken. */
  readonly takenBy: string | undefined
  readonly takenAt: number | undefined
}

/** A run's journal: completed steps in position order, and every recorded attempt. */
export interface Journal {
  readonly steps: ReadonlyArray<StepRecord>
  readonly attempts: ReadonlyArray<AttemptRow>
}

/** Which runs `listRuns` returns, newest first. */
export interface RunFilter {
  readonly status?: RunStatus | undefined
  readonly workflow?: string | undefined
  /** Only runs created at or after this time. */
  readonly since?: number | undefined
  /**
   * Only runs updated at or after this time (`updatedAt`: created, claimed, progressed or ended then);
   * for a finished run, that is when it finished.
   */
  readonly updatedSince?: number | undefined
  readonly limit?: number | undefined
}

/**
 * Where a re-drive cuts the journal: at the failure (the first step whose failure ended its branch, or
 * the first step whose compensation ran, whichever completed first), at a step named by its id
 * (`charge-card`, `ship[1]/pack#2`), or at the start (nothing is kept: the run starts over).
 */
export type RedrivePoint = "failure" | "start" | { readonly step: string }

/** A re-drive of a run, as its history keeps it. */
export interface RedriveRecord {
  readonly runId: string
  /** 1 for the run's first re-drive. */
  readonly seq: number
  readonly at: number
  /** Who asked (`cli:ann@host`), and why. */
  readonly by: string
  readonly reason: string
  /** How the run had ended before the re-drive. */
  readonly previousStatus: RunStatus
  /** The Cause it had ended with (encoded), cleared from the run by the re-drive. */
  readonly failure: unknown
  /** The step where the journal was cut (discarded with what came after it); none when every completion was kept. */
  readonly fromStep: string | undefined
  /** The completions discarded, to run again, in journal order. */
  readonly discarded: ReadonlyArray<string>
  /** Per step id, the highest attempt number recorded before this re-drive (see `Redriven`). */
  readonly priorAttempts: Readonly<Record<string, number>>
  /** The child runs re-driven with it (their parent's step for them was discarded or never completed). */
  readonly children: ReadonlyArray<string>
}

/** A queue's limits (see `Queue.make` in @weft/core); a limit left undefined is no limit. */
export interface QueueLimits {
  readonly name: string
  readonly concurrency: number | undefined
  readonly rateLimit: { readonly limit: number; readonly intervalMillis: number } | undefined
}

/** A queue as the store records it. */
export interface QueueRecord extends QueueLimits {
  /** Runs of the queue were created with concurrency keys: its claims count keys. */
  readonly keyed: boolean
  /** The worker whose declaration set the limits, and when (none for a queue only marked keyed). */
  readonly declaredBy: string | undefined
  readonly declaredAt: number | undefined
}

/** What holds a queue's runs back now (see `queueState`). */
export interface QueueState {
  /** None when nothing is recorded for the queue: it has no limits and no keys. */
  readonly queue: QueueRecord | undefined
  /** Its runs that hold a slot: status `running`. */
  readonly running: number
  /** With a `key`: the queue's running runs with that key. */
  readonly keyRunning: number | undefined
  /** With a rate limit: the claims in the current window, and when the next claim is allowed when it is full. */
  readonly rate: { readonly claims: number; readonly reopensAt: number | undefined } | undefined
}

/** How a run ended. */
export type Outcome =
  | { readonly status: "succeeded"; readonly output: unknown }
  | { readonly status: "failed" | "cancelled"; readonly failure: unknown }

/** The storage of runs and journals. Every method is atomic. */
export interface StoreService {
  /** Short name of the backend, for messages (`memory`, `sqlite`, `postgres`). */
  readonly dialect: string
  /**
   * Notices that a queue's runnable runs changed: a run was created unclaimed (due now, or delayed:
   * an idle worker then sleeps until its time), released, or suspended until a time. Each element
   * is the queue's name, or `"*"` when notices may have been missed (the stream reconnected) and
   * any queue may have work, or `cancel:<run id>` when a run was asked to stop. Notices are hints: a worker claims on one, and
   * still sleeps no longer than its poll interval or `nextWakeAt` without one. The stream fails
   * with StoreUnavailable when the notice channel breaks; subscribe again to resume.
   */
  readonly wakeups: Stream.Stream<string, StoreUnavailable>
  /**
   * `wakeups` as a callback: calls `listener` with each notice in the tick it arrives, until
   * interrupted; fails with StoreUnavailable when the notice channel breaks. A worker wakes its
   * claim loop from the callback, without a stream's hand-offs on the way from a new run to its start.
   */
  readonly listen: (listener: (notice: string) => void) => Effect.Effect<never, StoreUnavailable>
  /**
   * Whether `wakeups` carries the notices of every process using this store (PostgreSQL's
   * LISTEN/NOTIFY), or only this process's own (Memory, SQLite): a worker then polls more often.
   */
  readonly sharedWakeups: boolean
  /**
   * The earliest time after `now` when a run of `queues` (of `workflows`, when given) becomes
   * claimable with no notice: a delayed or sleeping run's `wakeAt`, the expiry of a running run's
   * lease (its worker may have died), or the reopening of a full rate-limit window. None when there
   * is no such time.
   */
  readonly nextWakeAt: (options: {
    readonly queues: ReadonlyArray<string>
    readonly workflows?: ReadonlyArray<string> | undefined
    readonly now: number
  }) => Effect.Effect<Option.Option<number>, StoreUnavailable>
  /**
   * Records queue declarations, replacing the recorded limits of each (the last declaration wins,
   * so that a deploy that changes a limit takes effect as its workers start), and marks `keyed`
   * queues as keyed (never unmarked). Returns the recorded queues whose limits changed, as they were.
   * Every claim of a recorded queue honours its limits from then on; a worker of another process
   * that was already running learns of a newly limited queue within a second.
   */
  readonly declareQueues: (options: {
    readonly queues: ReadonlyArray<QueueLimits>
    readonly keyed: ReadonlyArray<string>
    readonly by: string
    readonly now: number
  }) => Effect.Effect<ReadonlyArray<QueueRecord>, StoreUnavailable>
  /** A queue's limits and what holds its runs back at `now` (for `weft show`). */
  readonly queueState: (options: {
    readonly queue: string
    readonly key?: string | undefined
    readonly now: number
  }) => Effect.Effect<QueueState, StoreUnavailable>
  /**
   * Creates a run, or returns the one already recorded under the same id or idempotency key
   * (`created: false`). A start under an existing id with another workflow or input is a RunConflict.
   */
  readonly createRun: (
    run: NewRun
  ) => Effect.Effect<{ readonly run: RunRecord; readonly created: boolean }, RunConflict | StoreUnavailable>
  readonly getRun: (id: string) => Effect.Effect<Option.Option<RunRecord>, StoreUnavailable>
  readonly listRuns: (filter: RunFilter) => Effect.Effect<ReadonlyArray<RunRecord>, StoreUnavailable>
  /**
   * Takes the run's lease for `owner`: allowed when the run is not final and nobody holds a live
   * lease (or `force`). Sets it `running`, counts a recovery when it had been claimed before.
   * Queue limits are not checked: this is the explicit "execute this run here, now" of `weft run`
   * and `weft resume`; workers claim through `claimNext`, which honours them.
   */
  readonly claimRun: (options: {
    readonly id: string
    readonly owner: string
    readonly leaseMillis: number
    readonly now: number
    readonly force?: boolean | undefined
  }) => Effect.Effect<RunRecord, RunNotClaimable | StoreUnavailable>
  /**
   * Claims up to `limit` runnable runs of `queues` for `owner`, atomically, and returns them
   * claimed (as `claimRun` leaves a run: `running`, leased until `now + leaseMillis`, started,
   * a recovery counted when it had started before, reason cleared), in claim order.
   *
   * Runnable: `queued` and due (no `wakeAt`, or `wakeAt <= now`), `sleeping` and due (taken in
   * `wakeAt` order, then ordered as the others), or `running` with an expired lease
   * (`leaseExpiresAt <= now`: its worker died, and the run continues from its journal).
   *
   * Order: HIGHER priority first (a run started with no priority has 0, so it comes after
   * positive priorities and before negative ones), then the oldest `createdAt`, then `id` (code
   * point order). Concurrent callers never receive the same run while its lease is live: on
   * PostgreSQL they skip the rows another claim has locked instead of waiting for them.
   *
   * Limits (see `declareQueues`), whoever claims: a run of a queue with a `concurrency` is taken
   * only while fewer than that many of the queue's runs are `running` (a run whose lease expired is
   * still running: taking it over needs no new slot); a run with a concurrency key only while fewer
   * than its `concurrencyLimit` runs of its queue with that key are running; and at most
   * `rateLimit.limit` runs of a rate-limited queue are claimed in any window of its interval (every
   * claim counts: a start, a wake-up, a takeover). A run not claimable for a limit stays as it is,
   * and runs behind it that are claimable are taken. Limited queues are served first, in the order
   * given, then the others in the order above.
   */
  readonly claimNext: (options: {
    readonly owner: string
    readonly queues: ReadonlyArray<string>
    /** Only runs of these workflows (the ones the claiming worker can execute). Default: any. */
    readonly workflows?: ReadonlyArray<string> | undefined
    readonly limit: number
    readonly leaseMillis: number
    readonly now: number
  }) => Effect.Effect<ReadonlyArray<RunRecord>, StoreUnavailable>
  /** Extends the lease; fails with LeaseLost when another owner holds it now. */
  readonly renewLease: (options: {
    readonly id: string
    readonly owner: string
    readonly leaseMillis: number
    readonly now: number
  }) => Effect.Effect<void, LeaseLost | StoreUnavailable>
  /**
   * Suspends the run, giving up its lease, with `reason` saying why: `sleeping` until `wakeAt`, or
   * `waiting` for one of `signals` or the end of one of `children` (or `wakeAt`, when given). The
   * branches of a task group may wait for several things at once: whichever comes first wakes the
   * run. It holds no worker slot; `claimNext` takes it again once due (and `claimRun` at any
   * time); `deliverSignal` of an awaited signal and the end of an awaited child make it due at once.
   *
   * Atomic with deliveries (the lost wake-up): when a signal it waits for, sent no later than that
   * signal's deadline, is already in the mailbox, or a child it waits for has already ended, the run
   * is left `waiting` but due now (`woken`), to be claimed at once. Returns what it did. Resuming a
   * suspended run is not counted as a recovery.
   */
  readonly suspendRun: (options: {
    readonly id: string
    readonly owner: string
    readonly wakeAt: number | undefined
    /** Signals that wake it, each counting when sent no later than its deadline (if any). */
    readonly signals?: ReadonlyArray<{ readonly name: string; readonly deadline: number | undefined }> | undefined
    /** Child runs whose end wakes it. */
    readonly children?: ReadonlyArray<string> | undefined
    readonly reason: string
    readonly now: number
  }) => Effect.Effect<"sleeping" | "waiting" | "woken", LeaseLost | StoreUnavailable>
  /**
   * Puts a signal in the run's mailbox (its payload already validated and encoded), and makes the
   * run due at once (`woke`) when it is `waiting` for this signal. Fails when there is no such run, or it has
   * finished (nothing is stored then).
   */
  readonly deliverSignal: (options: {
    readonly runId: string
    readonly name: string
    readonly payload: unknown
    readonly now: number
  }) => Effect.Effect<{ readonly seq: number; readonly woke: boolean }, RunNotFound | RunFinished | StoreUnavailable>
  /**
   * For the run's lease holder: takes the oldest signal `name` not yet taken (sent no later than
   * `deadline`, when given) and completes `step` with it (result `{ _tag: "Success", value: payload }`),
   * in one transaction. None, and nothing written, when there is no such signal.
   */
  readonly takeSignal: (options: {
    readonly owner: string
    readonly step: Omit<StepRecord, "result" | "failed">
    readonly name: string
    readonly deadline: number | undefined
    readonly now: number
  }) => Effect.Effect<Option.Option<unknown>, LeaseLost | StoreUnavailable>
  /**
   * Asks to cancel the run and every run it started as a child, at any depth (the first request's
   * who, why and when are kept). A run that is not
   * held by a worker (queued, sleeping, waiting) becomes claimable at once, so that a worker runs
   * its cancellation (its compensations); the worker holding a running run learns of it from a
   * notice (`cancel:<run id>` on `wakeups`) or at its next heartbeat. A finished run is left as it
   * is: `requested` is false.
   */
  readonly requestCancel: (options: {
    readonly id: string
    readonly by: string
    readonly reason: string
    readonly now: number
  }) => Effect.Effect<{ readonly status: RunStatus; readonly requested: boolean }, RunNotFound | StoreUnavailable>
  /** Every signal sent to the run, taken or not, in order of arrival. */
  readonly listSignals: (runId: string) => Effect.Effect<ReadonlyArray<SignalRecord>, StoreUnavailable>
  /** Gives the lease up, leaving the run `queued` with `reason`, so it can be resumed at once. */
  readonly releaseRun: (options: {
    readonly id: string
    readonly owner: string
    readonly reason: string
    readonly now: number
  }) => Effect.Effect<void, LeaseLost | StoreUnavailable>
  /**
   * Records the run's end and drops its lease. A child's end wakes its parent when the parent is
   * waiting for it, in the same transaction (no lost wake-up). `step`: the completion of the run's
   * last step, written in the same transaction (the engine holds a run's last completion back to
   * write it with the end: one commit instead of two).
   */
  readonly finishRun: (options: {
    readonly id: string
    readonly owner: string
    readonly outcome: Outcome
    readonly now: number
    readonly step?: { readonly step: StepRecord; readonly attempt: AttemptRow | undefined } | undefined
  }) => Effect.Effect<void, LeaseLost | StoreUnavailable>
  readonly readJournal: (runId: string) => Effect.Effect<Journal, StoreUnavailable>
  /**
   * Re-drives a `failed` or `cancelled` run: in one transaction it goes back to `queued` (claimable
   * through its queue), its failure, end, cancellation request and recovery count are cleared, and
   * its journal is cut at `from` (default `"failure"`): the completions at and after that step, in
   * journal order (completion time), are discarded so that they run again, and so is everything that
   * depends on them (later steps of the same branch, the end of an enclosing task group); a signal a
   * discarded step had taken goes back to the mailbox. A step whose compensation ran is always run
   * again (its effect was undone), and a signal wait whose deadline is journaled just before it
   * waits again with a new deadline. Every attempt stays in the history; the steps' retry policies
   * start afresh (`Redriven.priorAttempts`). An awaited child run that failed or was cancelled, whose
   * step did not stay in the journal, is re-driven with it (from its failure).
   *
   * Fails with RunNotFound, RunNotRedrivable (the run is not failed or cancelled), or
   * StepNotInJournal (`from` names a step the journal does not hold); nothing is written then.
   */
  readonly redriveRun: (options: {
    readonly id: string
    readonly from?: RedrivePoint | undefined
    readonly by: string
    readonly reason: string
    readonly now: number
  }) => Effect.Effect<
    { readonly run: RunRecord; readonly redrive: RedriveRecord },
    RunNotFound | RunNotRedrivable | StepNotInJournal | StoreUnavailable
  >
  /** The run's re-drives, oldest first. */
  readonly listRedrives: (runId: string) => Effect.Effect<ReadonlyArray<RedriveRecord>, StoreUnavailable>
  /** Records a failed attempt that will be retried, and the run's reason (`backing off ...`). */
  readonly recordAttempt: (options: {
    readonly owner: string
    readonly attempt: AttemptRow
    readonly reason: string
    readonly now: number
  }) => Effect.Effect<void, LeaseLost | StoreUnavailable>
  /** Records a step's completion with its final attempt, in one transaction. */
  readonly completeStep: (options: {
    readonly owner: string
    readonly step: StepRecord
    readonly attempt: AttemptRow | undefined
    readonly now: number
  }) => Effect.Effect<void, LeaseLost | StoreUnavailable>
}

/** The store a runtime uses. */
export class Store extends Context.Tag("@weft/runtime/Store")<Store, StoreService>() {}
