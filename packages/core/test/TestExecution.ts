/**
 * An in-memory `Execution` for the tests of @weft/core: what an engine does, minus the storage.
 *
 * - step ids are the name numbered by occurrence (`charge`, `charge#2`, ...);
 * - a journal by position: each entry has the step's id, kind, encoded result (once completed) and
 *   every attempt recorded for it;
 * - a log of the ProgressEvents reported;
 * - `enter` dies with `Failure.NonDeterminism` when the journal it was seeded with has another step
 *   at the same position;
 * - seedable with a previous execution's `journal()`, to test replay and resume (a "crash" is an
 *   interrupted fiber: whatever was recorded before it is what the next execution sees).
 *
 * Everything stored goes through a JSON round trip (as a real store does), so a value that only
 * survives in memory is caught here. Misuse of the contract (completing a step twice, recording an
 * attempt out of order, using a slot that was never entered) dies with an error saying so.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { AttemptRecord, ExecutionService, ProgressEvent, StepKind, StepSlot } from "../src/Execution.js"
import { Execution } from "../src/Execution.js"
import * as Failure from "../src/Failure.js"

/** One step of a run's journal. */
export interface JournalEntry {
  readonly stepId: string
  readonly name: string
  readonly kind: StepKind
  readonly position: number
  /** The encoded Exit, once the step completed. */
  readonly result: Option.Option<unknown>
  /** Every attempt recorded, oldest first (the retried ones, then the final one if completed). */
  readonly attempts: ReadonlyArray<AttemptRecord>
}

/** A run's journal, ordered by position. */
export type Journal = ReadonlyArray<JournalEntry>

export interface Options {
  readonly runId?: string | undefined
  readonly workflow?: string | undefined
  /** A previous execution's journal: this execution replays (and resumes) it. */
  readonly seed?: Journal | undefined
  /** Whether stored values go through `JSON.stringify`/`JSON.parse`. Default true. */
  readonly roundTrip?: boolean | undefined
}

export interface TestExecution {
  /** The service to provide as `Execution`. */
  readonly service: ExecutionService
  /** Provides this execution to an effect. */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Execution>>
  /** This execution as a layer. */
  readonly layer: Layer.Layer<Execution>
  /** The whole journal (seeded entries and new ones), to seed the next execution with. */
  readonly journal: () => Journal
  /** Completed steps: step id → encoded result. */
  readonly completed: () => ReadonlyMap<string, unknown>
  /** The attempts recorded for a step, oldest first (seeded ones included). */
  readonly attempts: (stepId: string) => ReadonlyArray<AttemptRecord>
  /** The progress events reported by this execution, in order. */
  readonly events: () => ReadonlyArray<ProgressEvent>
  /** The step ids entered by this execution, in order. */
  readonly entered: () => ReadonlyArray<string>
  /** How many `complete` calls this execution received (0 on a pure replay). */
  readonly completions: () => number
  /** How many `recordAttempt` calls this execution received. */
  readonly recordedAttempts: () => number
  /** The position the next entered step will get. */
  readonly position: () => number
}

/** The deterministic id of the `occurrence`-th step called `name` (1-based). */
export const stepIdOf = (name: string, occurrence: number): string => occurrence === 1 ? name : `${name}#${occurrence}`

interface MutableEntry {
  readonly stepId: string
  readonly name: string
  readonly kind: StepKind
  readonly position: number
  result: Option.Option<unknown>
  attempts: Array<AttemptRecord>
  /** Entered by this execution. */
  entered: boolean
}

const contractViolation = (message: string) => Effect.dieMessage(`TestExecution: ${message}`)

export const make = (options: Options = {}): TestExecution => {
  const runId = options.runId ?? "run-1"
  const workflow = options.workflow ?? "test-workflow"
  const roundTrip = options.roundTrip ?? true
  const store = <A>(value: A): A => {
    if (!roundTrip || value === undefined) return value
    return JSON.parse(JSON.stringify(value)) as A
  }

  const byPosition: Array<MutableEntry> = []
  for (const entry of options.seed ?? []) {
    byPosition[entry.position] = {
      stepId: entry.stepId,
      name: entry.name,
      kind: entry.kind,
      position: entry.position,
      result: entry.result,
      attempts: [...entry.attempts],
      entered: false
    }
  }
  const occurrences = new Map<string, number>()
  const events: Array<ProgressEvent> = []
  const entered: Array<string> = []
  let position = 0
  let completions = 0
  let recordedAttempts = 0

  const entryOf = (slot: StepSlot): MutableEntry | undefined => {
    const entry = byPosition[slot.position]
    return entry !== undefined && entry.entered && entry.stepId === slot.stepId ? entry : undefined
  }

  const checkNextAttempt = (entry: MutableEntry, attempt: AttemptRecord): string | undefined => {
    const expected = entry.attempts.length + 1
    return attempt.attempt === expected
      ? undefined
      : `step "${entry.stepId}" recorded attempt ${attempt.attempt}, expected attempt ${expected}`
  }

  const service: ExecutionService = {
    runId,
    workflow,
    enter: (name, kind) =>
      Effect.suspend(() => {
        const occurrence = (occurrences.get(name) ?? 0) + 1
        occurrences.set(name, occurrence)
        const stepId = stepIdOf(name, occurrence)
        const at = position++
        const recorded = byPosition[at]
        if (recorded !== undefined && (recorded.stepId !== stepId || recorded.kind !== kind)) {
          return Effect.die(
            new Failure.NonDeterminism({ runId, scope: "", position: at, expected: recorded.stepId, found: stepId })
          )
        }
        const entry: MutableEntry = recorded ?? {
          stepId,
          name,
          kind,
          position: at,
          result: Option.none(),
          attempts: [],
          entered: false
        }
        entry.entered = true
        byPosition[at] = entry
        entered.push(stepId)
        const slot: StepSlot = {
          stepId,
          name,
          kind,
          position: at,
          result: entry.result,
          attempts: [...entry.attempts]
        }
        return Effect.succeed(slot)
      }),
    leave: () => Effect.void,
    registerCompensation: () => Effect.void,
    // Signals need a mailbox: the engine's tests cover them (packages/runtime/test/Signals.test.ts).
    takeSignal: () => Effect.dieMessage("TestExecution has no signal mailbox"),
    startChild: () => Effect.dieMessage("TestExecution runs no children"),
    takeChild: () => Effect.dieMessage("TestExecution runs no children"),
    awaitChild: () => Effect.dieMessage("TestExecution runs no children"),
    awaitSignal: () => Effect.dieMessage("TestExecution has no signal mailbox"),
    waitUntil: (wakeAt) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => now < wakeAt ? Effect.sleep(Duration.millis(wakeAt - now)) : Effect.void
      ),
    recordAttempt: (slot, attempt) =>
      Effect.suspend(() => {
        const entry = entryOf(slot)
        if (entry === undefined) return contractViolation(`recordAttempt for a step never entered: ${slot.stepId}`)
        if (Option.isSome(entry.result)) {
          return contractViolation(`recordAttempt for step "${slot.stepId}", which already completed`)
        }
        const problem = checkNextAttempt(entry, attempt)
        if (problem !== undefined) return contractViolation(problem)
        entry.attempts.push(store(attempt))
        recordedAttempts++
        return Effect.void
      }),
    complete: (slot, attempt, result) =>
      Effect.suspend(() => {
        const entry = entryOf(slot)
        if (entry === undefined) return contractViolation(`complete for a step never entered: ${slot.stepId}`)
        if (Option.isSome(entry.result)) return contractViolation(`step "${slot.stepId}" completed twice`)
        if (attempt !== undefined) {
          const problem = checkNextAttempt(entry, attempt)
          if (problem !== undefined) return contractViolation(problem)
          entry.attempts.push(store(attempt))
        }
        entry.result = Option.some(store(result))
        completions++
        return Effect.void
      }),
    branchOut: () => Effect.succeed(Effect.void),
    progress: (event) => Effect.sync(() => void events.push(event))
  }

  const journal = (): Journal =>
    byPosition.filter((entry) => entry !== undefined).map((entry) => ({
      stepId: entry.stepId,
      name: entry.name,
      kind: entry.kind,
      position: entry.position,
      result: entry.result,
      attempts: [...entry.attempts]
    }))

  return {
    service,
    run: (effect) => Effect.provideService(effect, Execution, service),
    layer: Layer.succeed(Execution, service),
    journal,
    completed: () => {
      const map = new Map<string, unknown>()
      for (const entry of journal()) if (Option.isSome(entry.result)) map.set(entry.stepId, entry.result.value)
      return map
    },
    attempts: (stepId) => journal().find((entry) => entry.stepId === stepId)?.attempts ?? [],
    events: () => [...events],
    entered: () => [...entered],
    completions: () => completions,
    recordedAttempts: () => recordedAttempts,
    position: () => position
  }
}

/** The events of one kind, narrowed. */
export const eventsOf = <Tag extends ProgressEvent["_tag"]>(
  execution: TestExecution,
  tag: Tag
): ReadonlyArray<Extract<ProgressEvent, { readonly _tag: Tag }>> =>
  execution.events().filter((event): event is Extract<ProgressEvent, { readonly _tag: Tag }> => event._tag === tag)
