/**
 * The contract between the DSL and an engine. A workflow body runs with an `Execution` in its
 * context: the DSL asks it for each step's journal slot (deterministic identity, recorded result,
 * earlier attempts) and hands it each attempt and completion to make durable. core implements the
 * step semantics (retries, timeouts, encoding) on top of it; the runtime implements the journal.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import type * as Option from "effect/Option"
import type * as Workflow from "./Workflow.js"

/**
 * What kind of journal entry a step is. Durable primitives are steps of their own kind; a `group`
 * entry records the end of a task group (`Workflow.all`, `Workflow.forEach`).
 */
export type StepKind = "step" | "now" | "random" | "uuid" | "group" | "sleep" | "signal" | "compensation" | "child"

/**
 * The task-group branch the current fiber runs in: `""` in the body itself, `ship[1]` in branch 1
 * of the group `ship`, `ship[1]/boxes[0]` in a group nested in it. Step ids are prefixed with it
 * (`ship[1]/pack#2`), and steps are numbered per branch, so a step's identity does not depend on
 * the order in which concurrent branches happen to run.
 */
export const currentScope: FiberRef.FiberRef<string> = globalValue(
  Symbol.for("@weft/core/Execution/currentScope"),
  () => FiberRef.unsafeMake("")
)

/**
 * Set in the branches of a task group whose end is already in the journal: a step that is not in
 * the journal there waits (to be interrupted by the sibling whose failure ended the group) instead
 * of running, so the replay ends as the first run did without new side effects.
 */
export const journalOnly: FiberRef.FiberRef<boolean> = globalValue(
  Symbol.for("@weft/core/Execution/journalOnly"),
  () => FiberRef.unsafeMake(false)
)

/** A step attempt cut off in flight when its task group ended (a sibling failed). */
export interface InterruptedAttempt {
  readonly stepId: string
  readonly attempt: number
  readonly startedAt: number
  readonly interruptedAt: number
}

/**
 * Set in each branch of a task group: the step attempts interrupted in flight in that branch
 * (nested groups add theirs). A fail-fast group journals them in its entry, so the history shows
 * which steps a sibling's failure cut off, and when, though they never completed.
 */
export const interruptedAttempts: FiberRef.FiberRef<Array<InterruptedAttempt> | undefined> = globalValue(
  Symbol.for("@weft/core/Execution/interruptedAttempts"),
  () => FiberRef.unsafeMake<Array<InterruptedAttempt> | undefined>(undefined)
)

/** One attempt of a step, as recorded in the journal. */
export interface AttemptRecord {
  /** 1-based. */
  readonly attempt: number
  readonly startedAt: number
  readonly finishedAt: number
  readonly outcome: "success" | "failure" | "defect"
  /** The typed error (encoded with the step's error schema) or defect (encoded with `Failure.Defect`). */
  readonly error?: unknown
  /** When the step retries: the delay chosen before the next attempt. */
  readonly delayMillis?: number | undefined
  /** When the step gives up: why (`not-retryable`, `attempts-exhausted`, ...). */
  readonly stopReason?: string | undefined
}

/** A step's place in the journal, as the engine hands it to the DSL. */
export interface StepSlot {
  /**
   * Deterministic identity: the name numbered by occurrence in its branch (`charge`, `charge#2`),
   * under the branch's path (`ship[1]/pack#2`).
   */
  readonly stepId: string
  readonly name: string
  readonly kind: StepKind
  /** Position of this step among the steps of its branch (0-based). */
  readonly position: number
  /** The journaled result (an encoded Exit) when the step already completed. */
  readonly result: Option.Option<unknown>
  /**
   * Attempts that failed and were retried before a crash, oldest first, since the run was last
   * re-driven: the retry policy counts only these.
   */
  readonly attempts: ReadonlyArray<AttemptRecord>
  /**
   * The attempts of this step recorded before the run was last re-driven (they stay in its
   * history): attempt numbers continue after them, while the step's retry policy starts afresh
   * (its attempt count and `within` count from the first attempt after the re-drive). Default 0.
   */
  readonly priorAttempts?: number | undefined
  /** When the journaled result was recorded (epoch milliseconds), once the step completed. */
  readonly finishedAt?: number | undefined
}

/** Live progress of a run, for a watching person (the CLI) or a metrics sink. */
export type ProgressEvent =
  | { readonly _tag: "StepStarted"; readonly stepId: string; readonly attempt: number }
  | { readonly _tag: "StepReplayed"; readonly stepId: string; readonly failed: boolean }
  | {
    readonly _tag: "StepSucceeded"
    readonly stepId: string
    readonly attempt: number
    readonly durationMillis: number
  }
  | {
    readonly _tag: "StepRetrying"
    readonly stepId: string
    readonly attempt: number
    readonly error: unknown
    readonly delayMillis: number
  }
  | {
    readonly _tag: "StepFailed"
    readonly stepId: string
    readonly attempt: number
    readonly error: unknown
    readonly reason: string
  }
  | { readonly _tag: "StepWaiting"; readonly stepId: string; readonly attempt: number; readonly untilMillis: number }

/** The journal of the run being executed. */
export interface ExecutionService {
  readonly runId: string
  readonly workflow: string
  /**
   * The slot of the next step called `name`. When the journal recorded a different step at this
   * place, the engine stops the body (by interruption, so user code cannot catch it) and fails the
   * run with NonDeterminism naming both steps.
   */
  readonly enter: (name: string, kind: StepKind) => Effect.Effect<StepSlot>
  /** Durably records a failed attempt that will be retried. */
  readonly recordAttempt: (slot: StepSlot, attempt: AttemptRecord) => Effect.Effect<void>
  /** Durably records the step's final attempt (if it ran) and its result (an encoded Exit). */
  readonly complete: (slot: StepSlot, attempt: AttemptRecord | undefined, result: unknown) => Effect.Effect<void>
  /**
   * The step entered with `slot` is over, completed or interrupted: another step of its branch may
   * start. Two steps of one branch at once (an `Effect.all` of steps) would make step identity
   * depend on timing, so an engine refuses that, pointing at `Workflow.all`.
   */
  readonly leave: (slot: StepSlot) => Effect.Effect<void>
  /**
   * Returns at `wakeAt` (epoch milliseconds). A short wait sleeps in this fiber; a long one may
   * suspend the whole run instead (it then holds no memory or worker slot, and this effect never
   * returns: the run resumes by replay, and the caller's journaled steps bring it back here with
   * less or nothing left to wait). `reason` says what the run waits for (`sleeping until ...`).
   */
  readonly waitUntil: (wakeAt: number, reason: string) => Effect.Effect<void>
  /**
   * Takes the oldest signal `name` sent to the run (sent no later than `deadline`, when given) and
   * completes the step of `slot` with its encoded payload, in one atomic write: a signal is never
   * consumed without being journaled, nor journaled twice. None when no such signal is waiting.
   */
  readonly takeSignal: (
    slot: StepSlot,
    name: string,
    deadline: number | undefined
  ) => Effect.Effect<Option.Option<unknown>>
  /**
   * Returns when a signal `name` may have arrived, or at `deadline`. In the body itself this
   * suspends the run (`waiting`, no lease, no memory) until a signal `name` is delivered or the
   * deadline passes, and never returns: the run resumes by replay. A signal delivered before the
   * run waits is not lost: it waits in the run's mailbox.
   */
  readonly awaitSignal: (name: string, deadline: number | undefined, reason: string) => Effect.Effect<void>
  /**
   * Registers the compensation of a step that succeeded (on its first execution or on replay),
   * `finishedAt` being when it completed. When the workflow fails, the engine runs the
   * compensations of every completed step, latest completion first, each a durable step itself.
   */
  readonly registerCompensation: (
    slot: StepSlot,
    finishedAt: number,
    compensation: Effect.Effect<void, unknown, unknown>
  ) => Effect.Effect<void>
  /**
   * Starts a child run of `workflow` for the step of `slot` (idempotent: the same id finds the
   * same run), on the parent's queue, and returns its id: `id`, or `<run id>/<step id>`.
   */
  readonly startChild: (
    slot: StepSlot,
    workflow: Workflow.Any,
    input: unknown,
    id: string | undefined
  ) => Effect.Effect<string>
  /**
   * When the child run has ended: completes the step of `slot` with its end (its encoded output
   * or Cause, as an encoded Exit) and returns it. None while it runs.
   */
  readonly takeChild: (slot: StepSlot, childRunId: string) => Effect.Effect<Option.Option<unknown>>
  /**
   * Returns when the child may have ended. In the body itself this suspends the run (`waiting`,
   * no lease, no memory) until the child's end wakes it, and never returns.
   */
  readonly awaitChild: (childRunId: string, reason: string) => Effect.Effect<void>
  /**
   * A task group hands the strand that runs it to `workers` worker fibers; returns the effect each
   * worker runs as it ends. The engine counts strands so that it knows when all of them wait (a
   * long sleep, a signal, a child in every branch): the run may then suspend as a whole.
   */
  readonly branchOut: (workers: number) => Effect.Effect<Effect.Effect<void>>
  /** Reports progress; never fails and never blocks the step for long. */
  readonly progress: (event: ProgressEvent) => Effect.Effect<void>
  /**
   * True when nobody listens to `progress`: steps may skip building their events (a run's hot
   * path). Calling `progress` anyway is harmless.
   */
  readonly silent?: boolean | undefined
}

/** The execution a workflow body runs in, provided by an engine. */
export class Execution extends Context.Tag("@weft/core/Execution")<Execution, ExecutionService>() {}
