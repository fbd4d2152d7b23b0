/**
 * A circuit breaker stops calling a dependency that keeps failing: after `failureThreshold`
 * failures it opens, and calls fail fast with `CircuitOpen` (retryable, with `retryAfter`) without
 * reaching the dependency; after `cooldown` it lets trial calls through (half-open), and closes
 * again when they succeed. Defined once at module load; its state lives in the process (every run
 * shares it) or, with `shared: true` on a store that supports it, in the store (every worker does).
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Failure from "./Failure.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@weft/core/CircuitBreaker")
export type TypeId = typeof TypeId

/**
 * How failures are counted while closed: `"window"`, those of the last `window` (a success does
 * not reset the count); `"consecutive"`, failures in a row (a success resets it).
 */
export type Counting = "window" | "consecutive"

/** Options of `make`. */
export interface Options {
  /** Names the breaker in CircuitOpen, logs, metrics and the shared store. */
  readonly name: string
  /** Failures that open the breaker. Default 5. */
  readonly failureThreshold?: number | undefined
  /** How failures are counted while closed. Default `"window"`. */
  readonly counting?: Counting | undefined
  /** With `counting: "window"`: how long a failure counts. Default 1 minute. */
  readonly window?: Duration.DurationInput | undefined
  /** How long the breaker stays open before it lets a trial call through. Default 30 seconds. */
  readonly cooldown?: Duration.DurationInput | undefined
  /** How many trial calls may be in flight at once while half-open. Default 1. */
  readonly halfOpenAttempts?: number | undefined
  /** How many trial calls must succeed to close the breaker again. Default 1. */
  readonly halfOpenSuccesses?: number | undefined
  /**
   * Whether a failure counts against the dependency, given the typed error or the defect (the
   * thrown value). One it rejects is ignored: neither a failure nor a success. Default: defects
   * count, and typed errors count when they say `retryable = true` (StepTimeout, CircuitOpen, a
   * GatewayTimeout): a typed error that is not retryable (CardDeclined) is an answer from a
   * dependency that works, and five declined cards must not cut every customer off.
   */
  readonly isFailure?: ((error: unknown) => boolean) | undefined
  /**
   * Keep the state in the store, so every worker sees the same breaker (PostgreSQL); where the
   * store cannot (memory, SQLite), in the process as without it. Default false.
   */
  readonly shared?: boolean | undefined
}

/** A circuit breaker: its configuration, as data. Its state is kept by the `Backend`. */
export interface CircuitBreaker {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly failureThreshold: number
  readonly counting: Counting
  readonly windowMillis: number
  readonly cooldownMillis: number
  readonly halfOpenAttempts: number
  readonly halfOpenSuccesses: number
  readonly isFailure: (error: unknown) => boolean
  readonly shared: boolean
}

/** The name of a state, as logs, metrics and `state` show it. */
export type StateName = "closed" | "open" | "half-open"

/**
 * A breaker's state, as plain JSON data (a shared backend stores it as is). `epoch` changes with
 * every transition: a call's outcome counts only in the state it started in.
 */
export type State =
  | {
    readonly _tag: "Closed"
    readonly epoch: number
    /** When the failures still counted happened (epoch milliseconds), oldest first. */
    readonly failures: ReadonlyArray<number>
  }
  | {
    readonly _tag: "Open"
    readonly epoch: number
    readonly openedAt: number
    /** When it lets a trial call through. */
    readonly until: number
    /** The failures that opened it. */
    readonly failures: number
  }
  | {
    readonly _tag: "HalfOpen"
    readonly epoch: number
    /** Trial calls in flight. */
    readonly trials: number
    /** Trial calls that succeeded. */
    readonly successes: number
    /** When the latest trial call was let through. */
    readonly lastTrialAt: number
  }

/** The state of a breaker that never failed. */
export const initial: State = { _tag: "Closed", epoch: 0, failures: [] }

/** What `admit` gives a call that may go through; `settle` takes it back with the call's outcome. */
export interface Permit {
  readonly epoch: number
  readonly trial: boolean
}

/** Whether a call may go through, and if not, in how many milliseconds a trial call could. */
export type Admission =
  | { readonly _tag: "Admitted"; readonly permit: Permit }
  | { readonly _tag: "Rejected"; readonly retryAfter: number }

/** How a call went, for the breaker: `ignored` for interruptions and failures `isFailure` rejects. */
export type Verdict = "success" | "failure" | "ignored"

/** A change of state, for logs and metrics. `failures`: those that opened it, 0 otherwise. */
export interface Transition {
  readonly from: StateName
  readonly to: StateName
  readonly failures: number
  readonly at: number
}

const DEFAULT_THRESHOLD = 5
const DEFAULT_WINDOW: Duration.DurationInput = "1 minute"
const DEFAULT_COOLDOWN: Duration.DurationInput = "30 seconds"

const toMillis = (d: Duration.DurationInput): number => Duration.toMillis(Duration.decode(d))

const wholeAtLeast = (what: string, value: number, min: number): number => {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${what} must be a whole number of at least ${min}, got ${value}`)
  }
  return value
}

const positiveMillis = (what: string, d: Duration.DurationInput): number => {
  const millis = toMillis(d)
  if (!(millis > 0 && Number.isFinite(millis))) throw new RangeError(`${what} must be a finite positive duration`)
  return millis
}

/** Defects count; typed errors count when they say they are transient. */
const defaultIsFailure = (error: unknown): boolean => Failure.tagOf(error) === undefined || Failure.isRetryable(error)

/**
 * Defines a circuit breaker once (at module load), to protect every call of one dependency: give
 * it to steps (`circuitBreaker:`) or wrap any effect with `protect`. Bad numbers throw here, at
 * module load, not in the middle of a run.
 *
 * @example
 * const gateway = CircuitBreaker.make({
 *   name: "payment-gateway",
 *   failureThreshold: 5,
 *   window: "30 seconds",
 *   cooldown: "1 minute"
 * })
 */
export const make = (options: Options): CircuitBreaker => {
  if (options.name.length === 0) throw new TypeError("a circuit breaker's name must not be empty")
  const counting = options.counting ?? "window"
  if (counting !== "window" && counting !== "consecutive") {
    throw new TypeError(`counting must be "window" or "consecutive", got ${String(counting)}`)
  }
  if (counting === "consecutive" && options.window !== undefined) {
    throw new TypeError(`circuit breaker "${options.name}": window has no meaning with counting: "consecutive"`)
  }
  return {
    [TypeId]: TypeId,
    name: options.name,
    failureThreshold: wholeAtLeast("failureThreshold", options.failureThreshold ?? DEFAULT_THRESHOLD, 1),
    counting,
    windowMillis: counting === "window" ? positiveMillis("window", options.window ?? DEFAULT_WINDOW) : 0,
    cooldownMillis: positiveMillis("cooldown", options.cooldown ?? DEFAULT_COOLDOWN),
    halfOpenAttempts: wholeAtLeast("halfOpenAttempts", options.halfOpenAttempts ?? 1, 1),
    halfOpenSuccesses: wholeAtLeast("halfOpenSuccesses", options.halfOpenSuccesses ?? 1, 1),
    isFailure: options.isFailure ?? defaultIsFailure,
    shared: options.shared ?? false
  }
}

/** Whether a value is a circuit breaker. */
export const isCircuitBreaker = (u: unknown): u is CircuitBreaker => typeof u === "object" && u !== null && TypeId in u

/** The name of a state. */
export const stateName = (state: State): StateName =>
  state._tag === "Closed" ? "closed" : state._tag === "Open" ? "open" : "half-open"

const counted = (breaker: CircuitBreaker, failures: ReadonlyArray<number>, now: number): ReadonlyArray<number> =>
  breaker.counting === "consecutive" ? failures : failures.filter((at) => now - at < breaker.windowMillis)

const transition = (from: State, to: State, at: number): Transition => ({
  from: stateName(from),
  to: stateName(to),
  failures: to._tag === "Open" ? to.failures : 0,
  at
})

/**
 * Whether a call starting at `now` may go through. The one interpreter of the state machine with
 * `settle`: every backend uses both, so a breaker in the process and one in the store cannot
 * disagree. Open past its `until`, the breaker turns half-open and this call is the first trial.
 * When nothing changes, the state returned is the one given (a backend may skip its write).
 */
export const admit = (
  breaker: CircuitBreaker,
  state: State,
  now: number
): { readonly state: State; readonly admission: Admission; readonly transition?: Transition | undefined } => {
  switch (state._tag) {
    case "Closed":
      return { state, admission: { _tag: "Admitted", permit: { epoch: state.epoch, trial: false } } }
    case "Open": {
      if (now < state.until) return { state, admission: { _tag: "Rejected", retryAfter: state.until - now } }
      const next: State = { _tag: "HalfOpen", epoch: state.epoch + 1, trials: 1, successes: 0, lastTrialAt: now }
      return {
        state: next,
        admission: { _tag: "Admitted", permit: { epoch: next.epoch, trial: true } },
        transition: transition(state, next, now)
      }
    }
    case "HalfOpen": {
      if (state.trials < breaker.halfOpenAttempts) {
        return {
          state: { ...state, trials: state.trials + 1, lastTrialAt: now },
          admission: { _tag: "Admitted", permit: { epoch: state.epoch, trial: true } }
        }
      }
      // Every trial slot is taken. Trials in flight for a whole cooldown are given up on (a worker
      // that died holding one must not keep a shared breaker half-open for good): a new trial goes
      // through, and the late ones count for nothing (a new epoch). Until then, a retry could only
      // find the breaker still busy, open again, or closed.
      const freedAt = state.lastTrialAt + breaker.cooldownMillis
      if (now < freedAt) return { state, admission: { _tag: "Rejected", retryAfter: freedAt - now } }
      const next: State = { ...state, epoch: state.epoch + 1, trials: 1, lastTrialAt: now }
      return { state: next, admission: { _tag: "Admitted", permit: { epoch: next.epoch, trial: true } } }
    }
  }
}

/**
 * The breaker's state after a call admitted with `permit` ended at `now`. A call that started in
 * another state (another epoch) no longer counts: a slow call that fails after the breaker opened
 * does not extend its cooldown, nor does one that succeeds close it. When nothing changes, the
 * state returned is the one given.
 */
export const settle = (
  breaker: CircuitBreaker,
  state: State,
  permit: Permit,
  verdict: Verdict,
  now: number
): { readonly state: State; readonly transition?: Transition | undefined } => {
  if (permit.epoch !== state.epoch) return { state }
  switch (state._tag) {
    case "Closed": {
      if (verdict === "ignored") return { state }
      if (verdict === "success") {
        return breaker.counting === "consecutive" && state.failures.length > 0 ?
          { state: { ...state, failures: [] } } :
          {
            state
          }
      }
      const failures = [...counted(breaker, state.failures, now), now]
      if (failures.length < breaker.failureThreshold) return { state: { ...state, failures } }
      const next: State = {
        _tag: "Open",
        epoch: state.epoch + 1,
        openedAt: now,
        until: now + breaker.cooldownMillis,
        failures: failures.length
      }
      return { state: next, transition: transition(state, next, now) }
    }
    case "HalfOpen": {
      const trials = Math.max(0, state.trials - 1)
      if (verdict === "ignored") return { state: { ...state, trials } }
      if (verdict === "failure") {
        const next: State = {
          _tag: "Open",
          epoch: state.epoch + 1,
          openedAt: now,
          until: now + breaker.cooldownMillis,
          failures: 1
        }
        return { state: next, transition: transition(state, next, now) }
      }
      const successes = state.successes + 1
      if (successes < breaker.halfOpenSuccesses) return { state: { ...state, trials, successes } }
      const next: State = { _tag: "Closed", epoch: state.epoch + 1, failures: [] }
      return { state: next, transition: transition(state, next, now) }
    }
    case "Open":
      // Only a permit of an earlier epoch can meet an open breaker, and it returned above.
      return { state }
  }
}

/** How a call ended, for the breaker: interruptions never count; failures as `isFailure` says. */
export const verdictOf = (breaker: CircuitBreaker, exit: Exit.Exit<unknown, unknown>): Verdict => {
  if (Exit.isSuccess(exit)) return "success"
  if (Cause.isInterruptedOnly(exit.cause)) return "ignored"
  const failure = Cause.failureOption(exit.cause)
  const error = Option.isSome(failure) ? failure.value : Option.getOrElse(Cause.dieOption(exit.cause), () => undefined)
  return breaker.isFailure(error) ? "failure" : "ignored"
}

/** A breaker's state as `state` reports it. */
export interface Snapshot {
  readonly state: StateName
  /** Failures counted now: toward the threshold while closed, those that opened it while open. */
  readonly failures: number
  /** Milliseconds until a trial call may go through (0: the next call may be one). */
  readonly retryAfter: number
  /** While half-open: trial calls in flight, and those that succeeded. */
  readonly trials: number
  readonly successes: number
}

/** What `state` reports for `state` at `now`. */
export const snapshot = (breaker: CircuitBreaker, state: State, now: number): Snapshot => {
  switch (state._tag) {
    case "Closed":
      return {
        state: "closed",
        failures: counted(breaker, state.failures, now).length,
        retryAfter: 0,
        trials: 0,
        successes: 0
      }
    case "Open":
      return {
        state: "open",
        failures: state.failures,
        retryAfter: Math.max(0, state.until - now),
        trials: 0,
        successes: 0
      }
    case "HalfOpen":
      return {
        state: "half-open",
        failures: 0,
        retryAfter: state.trials < breaker.halfOpenAttempts
          ? 0
          : Math.max(0, state.lastTrialAt + breaker.cooldownMillis - now),
        trials: state.trials,
        successes: state.successes
      }
  }
}

/**
 * Where breakers keep their state. The default keeps it in this process, shared by every run in
 * it; the runtime provides one that keeps `shared` breakers in the store. An implementation applies
 * `admit` and `settle` atomically per breaker, and never fails: a store that cannot answer is its
 * own business (it may fall back to the process's state), not the protected call's.
 */
export interface BackendService {
  readonly admit: (
    breaker: CircuitBreaker,
    now: number
  ) => Effect.Effect<{ readonly admission: Admission; readonly transition?: Transition | undefined }>
  readonly settle: (
    breaker: CircuitBreaker,
    permit: Permit,
    verdict: Verdict,
    now: number
  ) => Effect.Effect<Transition | undefined>
  readonly read: (breaker: CircuitBreaker) => Effect.Effect<State>
}

// Keyed by the breaker value and global, so two copies of this package in one process still share
// a breaker's state.
const processStates = globalValue(
  Symbol.for("@weft/core/CircuitBreaker/processStates"),
  () => new WeakMap<CircuitBreaker, State>()
)

/** The backend that keeps every breaker's state in this process. */
export const processBackend: BackendService = {
  admit: (breaker, now) =>
    Effect.sync(() => {
      const result = admit(breaker, processStates.get(breaker) ?? initial, now)
      processStates.set(breaker, result.state)
      return result
    }),
  settle: (breaker, permit, verdict, now) =>
    Effect.sync(() => {
      const result = settle(breaker, processStates.get(breaker) ?? initial, permit, verdict, now)
      processStates.set(breaker, result.state)
      return result.transition
    }),
  read: (breaker) => Effect.sync(() => processStates.get(breaker) ?? initial)
}

/** The backend in use: `processBackend` unless a layer provides another. */
export class Backend extends Context.Reference<Backend>()("@weft/core/CircuitBreaker/Backend", {
  defaultValue: (): BackendService => processBackend
}) {}

/** State changes, by `breaker` and the state entered (`to`). */
export const transitions = Metric.counter("weft_circuit_transitions", {
  description: "circuit breaker state changes, by breaker and the state entered",
  incremental: true
})

/** Calls refused by an open breaker, by `breaker`. */
export const rejections = Metric.counter("weft_circuit_rejections", {
  description: "calls refused by an open circuit breaker, by breaker",
  incremental: true
})

const describeTransition = (breaker: CircuitBreaker, t: Transition): string => {
  const cooldown = Duration.format(Duration.millis(breaker.cooldownMillis))
  if (t.to === "open" && t.from === "half-open") {
    return `circuit breaker "${breaker.name}" reopened: a trial call failed; calls fail fast for ${cooldown}`
  }
  if (t.to === "open") {
    const within = breaker.counting === "window"
      ? ` within ${Duration.format(Duration.millis(breaker.windowMillis))}`
      : " in a row"
    return `circuit breaker "${breaker.name}" opened after ${t.failures} failures${within}; calls fail fast for ${cooldown}`
  }
  if (t.to === "half-open") return `circuit breaker "${breaker.name}" is half-open: letting a trial call through`
  return `circuit breaker "${breaker.name}" closed: trial calls succeeded`
}

const report = (breaker: CircuitBreaker, t: Transition | undefined): Effect.Effect<void> => {
  if (t === undefined) return Effect.void
  const message = describeTransition(breaker, t)
  return Effect.zipRight(
    (t.to === "open" ? Effect.logWarning(message) : Effect.logInfo(message)).pipe(
      Effect.annotateLogs({ breaker: breaker.name, from: t.from, to: t.to, failures: t.failures })
    ),
    Metric.increment(Metric.taggedWithLabels(transitions, [
      MetricLabel.make("breaker", breaker.name),
      MetricLabel.make("to", t.to)
    ]))
  )
}

/**
 * Runs `self` through the breaker: refused with CircuitOpen while it is open (without running
 * `self`), counted when it ends. The call that opens the breaker fails with its own error; the
 * calls after it get CircuitOpen. Uses the Effect's Clock, so TestClock drives it.
 *
 * @example
 * const charge = (order: Order) => Payments.charge(order).pipe(CircuitBreaker.protect(gateway))
 */
export const protect: {
  (breaker: CircuitBreaker): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Failure.CircuitOpen, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, breaker: CircuitBreaker): Effect.Effect<A, E | Failure.CircuitOpen, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, breaker: CircuitBreaker): Effect.Effect<A, E | Failure.CircuitOpen, R> =>
    // Uninterruptible around the call: an admitted call always gives its permit back (an
    // interrupted trial must free its slot at once). Asking for a permit stays interruptible, so a
    // store that does not answer cannot hold up a shutdown; a permit lost that way is a trial slot
    // taken for one cooldown at most (see `admit`).
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const backend = yield* Backend
        const { admission, transition } = yield* restore(backend.admit(breaker, yield* Clock.currentTimeMillis))
        yield* report(breaker, transition)
        if (admission._tag === "Rejected") {
          yield* Metric.increment(Metric.tagged(rejections, "breaker", breaker.name))
          return yield* Effect.fail(
            new Failure.CircuitOpen({ breaker: breaker.name, retryAfter: admission.retryAfter })
          )
        }
        const exit = yield* Effect.exit(restore(self))
        const settled = yield* backend.settle(
          breaker,
          admission.permit,
          verdictOf(breaker, exit),
          yield* Clock.currentTimeMillis
        )
        yield* report(breaker, settled)
        return yield* exit
      })
    )
)

/** The breaker's state now, for tests and the command line. */
export const state = (breaker: CircuitBreaker): Effect.Effect<Snapshot> =>
  Effect.gen(function*() {
    const backend = yield* Backend
    const current = yield* backend.read(breaker)
    return snapshot(breaker, current, yield* Clock.currentTimeMillis)
  })
