/**
 * Retry policies as data: `exponential`, `fixed`, `none`, and `schedule` for any Effect Schedule.
 * One interpreter, `decide`, says for attempt n whether to retry and after which delay; the step
 * runner and `toSchedule` both use it, so the in-process schedule and the stored next-attempt time
 * cannot disagree, and a resumed run continues the same backoff from its recorded attempts.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import * as Failure from "./Failure.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@weft/core/Retry")
export type TypeId = typeof TypeId

/**
 * Options every policy shares.
 *
 * `Tag` is the union of error tags the policy may name in `retryOn` / `abortOn`, checked against
 * the step's declared errors.
 */
export interface Limits<Tag extends string = string> {
  /** Total attempts, the first included. Default 3 for `exponential` and `fixed`. */
  readonly attempts?: number | undefined
  /** Stop retrying when the next attempt would start later than this after the first began. */
  readonly within?: Duration.DurationInput | undefined
  /** Retry only errors with these tags (otherwise: errors that say `retryable = true`). */
  readonly retryOn?: ReadonlyArray<Tag> | undefined
  /** Never retry errors with these tags, even when they say they are retryable. */
  readonly abortOn?: ReadonlyArray<Tag> | undefined
  /** Retry defects (thrown exceptions) too. Default false: a bug retried is a retry storm. */
  readonly retryDefects?: boolean | undefined
}

interface Common<Tag extends string> {
  readonly [TypeId]: TypeId
  readonly attempts: number
  readonly withinMillis: number | undefined
  readonly retryOn: ReadonlyArray<Tag> | undefined
  readonly abortOn: ReadonlyArray<Tag> | undefined
  readonly retryDefects: boolean
}

/** No retry: the first failure is final. */
export interface None extends Common<never> {
  readonly _tag: "None"
}

/** Delay `base * factor^(n-1)` after attempt n, capped at `max`, with jitter. */
export interface Exponential<Tag extends string = string> extends Common<Tag> {
  readonly _tag: "Exponential"
  readonly baseMillis: number
  readonly factor: number
  readonly maxMillis: number
  readonly jitter: number
}

/** The same delay after every attempt, with jitter. */
export interface Fixed<Tag extends string = string> extends Common<Tag> {
  readonly _tag: "Fixed"
  readonly delayMillis: number
  readonly jitter: number
}

/** Any Effect Schedule decides the delays; `attempts` and the tag filters still apply. */
export interface FromSchedule<Tag extends string = string> extends Common<Tag> {
  readonly _tag: "Schedule"
  readonly schedule: Schedule.Schedule<unknown, unknown>
}

/** A retry policy. */
export type Policy<Tag extends string = string> = None | Exponential<Tag> | Fixed<Tag> | FromSchedule<Tag>

/** The default multiplicative jitter when `jitter: true`: the delay varies by ±20%. */
export const DEFAULT_JITTER = 0.2

const DEFAULT_ATTEMPTS = 3

const toMillis = (d: Duration.DurationInput): number => Duration.toMillis(Duration.decode(d))

const jitterOf = (jitter: boolean | number | undefined): number => {
  if (jitter === undefined || jitter === false) return 0
  if (jitter === true) return DEFAULT_JITTER
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`jitter must be between 0 and 1, got ${jitter}`)
  return jitter
}

const common = <Tag extends string>(limits: Limits<Tag>, defaultAttempts: number): Common<Tag> => {
  const attempts = limits.attempts ?? defaultAttempts
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`attempts must be a whole number of at least 1, got ${attempts}`)
  }
  return {
    [TypeId]: TypeId,
    attempts,
    withinMillis: limits.within === undefined ? undefined : toMillis(limits.within),
    retryOn: limits.retryOn,
    abortOn: limits.abortOn,
    retryDefects: limits.retryDefects ?? false
  }
}

/** No retry. */
export const none: None = { _tag: "None", ...common<never>({}, 1) }

/**
 * Exponential backoff: after attempt n wait `base * factor^(n-1)`, at most `max`, varied by
 * `jitter` (a fraction, or `true` for ±20%). A policy with bad numbers throws when it is made,
 * at module load, not in the middle of a run.
 *
 * @example
 * Retry.exponential({ base: "200 millis", max: "10 seconds", attempts: 5, jitter: true })
 */
export const exponential = <const Tag extends string = never>(
  options: Limits<Tag> & {
    /** Delay after the first failed attempt. */
    readonly base: Duration.DurationInput
    /** Growth per attempt. Default 2. */
    readonly factor?: number | undefined
    /** Cap on any one delay. Default: none. */
    readonly max?: Duration.DurationInput | undefined
    /** Fraction by which each delay varies (uniform in [d·(1-j), d·(1+j)], then capped). Default 0. */
    readonly jitter?: boolean | number | undefined
  }
): Exponential<Tag> => {
  const factor = options.factor ?? 2
  if (!(factor >= 1)) throw new RangeError(`factor must be at least 1, got ${factor}`)
  return {
    _tag: "Exponential",
    ...common(options, DEFAULT_ATTEMPTS),
    baseMillis: toMillis(options.base),
    factor,
    maxMillis: options.max === undefined ? Number.POSITIVE_INFINITY : toMillis(options.max),
    jitter: jitterOf(options.jitter)
  }
}

/** The same delay between every two attempts. */
export const fixed = <const Tag extends string = never>(
  options: Limits<Tag> & {
    readonly delay: Duration.DurationInput
    readonly jitter?: boolean | number | undefined
  }
): Fixed<Tag> => ({
  _tag: "Fixed",
  ...common(options, DEFAULT_ATTEMPTS),
  delayMillis: toMillis(options.delay),
  jitter: jitterOf(options.jitter)
})

/**
 * Any Effect Schedule as the source of delays (the escape hatch). The schedule sees each failure
 * as its input; when it stops, retrying stops. `attempts` defaults to unlimited here, so the
 * schedule is the limit.
 */
export const schedule = <const Tag extends string = never>(
  schedule: Schedule.Schedule<unknown, any>,
  options: Limits<Tag> = {}
): FromSchedule<Tag> => ({
  _tag: "Schedule",
  ...common(options, Number.MAX_SAFE_INTEGER),
  schedule: schedule as Schedule.Schedule<unknown, unknown>
})

/**
 * The default policy of a step that declares none: 3 attempts, exponential from 200ms, doubling,
 * capped at 30s, ±20% jitter. Only retryable errors are retried under it.
 */
export const defaultPolicy: Exponential<never> = exponential({
  base: "200 millis",
  max: "30 seconds",
  attempts: 3,
  jitter: true
})

/** Whether a value is a retry policy. */
export const isPolicy = (u: unknown): u is Policy => typeof u === "object" && u !== null && TypeId in u

/** How an attempt ended, as the interpreter needs to know it. */
export type Outcome =
  | { readonly _tag: "Fail"; readonly error: unknown }
  | { readonly _tag: "Die"; readonly defect: unknown }

/** What to do after a failed attempt. */
export type Decision =
  | { readonly _tag: "Retry"; readonly delayMillis: number }
  | {
    readonly _tag: "Stop"
    readonly reason: "not-retryable" | "defect" | "attempts-exhausted" | "within-exceeded" | "schedule-done"
  }

/** Whether the policy would retry this outcome at all, leaving limits aside. */
export const isRetryableOutcome = (policy: Policy, outcome: Outcome): boolean => {
  if (outcome._tag === "Die") return policy.retryDefects
  const tag = Failure.tagOf(outcome.error)
  if (tag !== undefined && policy.abortOn?.includes(tag as never) === true) return false
  if (policy.retryOn !== undefined) return tag !== undefined && policy.retryOn.includes(tag as never)
  return Failure.isRetryable(outcome.error)
}

/**
 * The delay after failed attempt `attempt` (1-based) for the data policies, before `within`;
 * `random` is a number in [0, 1) used for jitter.
 */
export const delayFor = (policy: Exponential | Fixed, attempt: number, random: number): number => {
  const raw = policy._tag === "Fixed"
    ? policy.delayMillis
    : Math.min(policy.baseMillis * Math.pow(policy.factor, attempt - 1), policy.maxMillis)
  const cap = policy._tag === "Fixed" ? Number.POSITIVE_INFINITY : policy.maxMillis
  const lower = raw * (1 - policy.jitter)
  const upper = Math.min(cap, raw * (1 + policy.jitter))
  const jittered = Math.min(raw * (1 - policy.jitter + 2 * policy.jitter * random), upper)
  // Whole milliseconds, but never outside [lower, upper] (rounding 233.1 down would leave it).
  const rounded = Math.min(Math.max(Math.round(jittered), Math.ceil(lower)), Math.floor(upper))
  return Math.max(0, rounded >= lower ? rounded : jittered)
}

/**
 * The `retryAfter` of an error (milliseconds until the failing dependency can take a call again),
 * when it has a finite, non-negative numeric one: `Failure.CircuitOpen` does, and any error may.
 */
export const retryAfterOf = (error: unknown): number | undefined => {
  if (typeof error !== "object" || error === null || !("retryAfter" in error)) return undefined
  const value = error.retryAfter
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.ceil(value) : undefined
}

/** The input of `decide`. */
export interface DecideInput {
  /** The attempt that just failed, 1-based. */
  readonly attempt: number
  readonly outcome: Outcome
  /** Milliseconds since the first attempt started. */
  readonly elapsedMillis: number
  /** A number in [0, 1) for jitter. */
  readonly random: number
  /** For `schedule` policies: the delay the schedule chose, or none when it is done. */
  readonly scheduleDelayMillis?: Option.Option<number> | undefined
}

/**
 * The one interpreter of retry policies. The delay is at least the error's `retryAfter` when it
 * has one (`retryAfterOf`). `within` never lets a retry sleep past the limit: when
 * `elapsed + delay` exceeds it, retrying stops now.
 */
export const decide = (policy: Policy, input: DecideInput): Decision => {
  if (!isRetryableOutcome(policy, input.outcome)) {
    return { _tag: "Stop", reason: input.outcome._tag === "Die" ? "defect" : "not-retryable" }
  }
  if (policy._tag === "None" || input.attempt >= policy.attempts) return { _tag: "Stop", reason: "attempts-exhausted" }
  let delayMillis: number
  if (policy._tag === "Schedule") {
    const chosen = input.scheduleDelayMillis ?? Option.none()
    if (Option.isNone(chosen)) return { _tag: "Stop", reason: "schedule-done" }
    delayMillis = chosen.value
  } else {
    delayMillis = delayFor(policy, input.attempt, input.random)
  }
  // An error that says when the dependency can take a call again (CircuitOpen, an HTTP 429's
  // Retry-After) is not retried sooner: an earlier attempt could only fail the same way.
  const floor = input.outcome._tag === "Fail" ? retryAfterOf(input.outcome.error) : undefined
  if (floor !== undefined && floor > delayMillis) delayMillis = floor
  if (policy.withinMillis !== undefined && input.elapsedMillis + delayMillis > policy.withinMillis) {
    return { _tag: "Stop", reason: "within-exceeded" }
  }
  return { _tag: "Retry", delayMillis }
}

/**
 * A stateful driver for one step's retries. For data policies it is `decide`; for `schedule`
 * policies it steps the Schedule, and `replay` feeds it the recorded attempts of a resumed run so
 * the schedule's state matches what it was before the crash.
 */
export interface Driver {
  readonly next: (input: Omit<DecideInput, "scheduleDelayMillis">, now: number) => Effect.Effect<Decision>
  /**
   * Feeds an attempt recorded before a crash (one that was retried) back into the driver: for
   * `schedule` policies it steps the schedule, so the resumed backoff continues where it was.
   */
  readonly replay: (outcome: Outcome, now: number) => Effect.Effect<void>
}

/** Makes a driver for a policy. */
export const driver = (policy: Policy): Effect.Effect<Driver> => Effect.sync(() => unsafeDriver(policy))

/** `driver`, made at once: for code already running in an effect. */
export const unsafeDriver = (policy: Policy): Driver => {
  if (policy._tag !== "Schedule") {
    return { next: (input) => Effect.succeed(decide(policy, input)), replay: () => Effect.void }
  }
  const sched = policy.schedule
  let state: unknown = sched.initial
  let done = false
  return {
    next: (input, now) =>
      Effect.suspend(() => {
        if (done || !isRetryableOutcome(policy, input.outcome)) {
          return Effect.succeed(decide(policy, { ...input, scheduleDelayMillis: Option.none() }))
        }
        const scheduleInput = input.outcome._tag === "Fail" ? input.outcome.error : input.outcome.defect
        return Effect.map(sched.step(now, scheduleInput, state), ([nextState, _out, decision]) => {
          state = nextState
          if (ScheduleDecision.isDone(decision)) {
            done = true
            return decide(policy, { ...input, scheduleDelayMillis: Option.none() })
          }
          const delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
          return decide(policy, { ...input, scheduleDelayMillis: Option.some(delay) })
        })
      }),
    // A recorded attempt was retried: step the schedule whatever the filters say now (a recorded
    // error is not the live value, and the decision was taken before the crash).
    replay: (outcome, now) =>
      Effect.suspend(() =>
        done ? Effect.void : Effect.map(
          sched.step(now, outcome._tag === "Fail" ? outcome.error : outcome.defect, state),
          ([nextState, _out, decision]) => {
            state = nextState
            if (ScheduleDecision.isDone(decision)) done = true
          }
        )
      )
  }
}

/**
 * The policy as an Effect Schedule over failures, for use with `Effect.retry` outside weft. It
 * uses the same interpreter, so it retries exactly when a step would, with the same delays.
 */
export const toSchedule = (policy: Policy): Schedule.Schedule<number, unknown> =>
  Schedule.makeWithState<
    { readonly attempt: number; readonly startedAt: number | undefined; readonly driver: Driver | undefined },
    unknown,
    number
  >(
    { attempt: 0, startedAt: undefined, driver: undefined },
    (now, error, state) =>
      Effect.gen(function*() {
        // One driver per run of the schedule: for `schedule` policies it holds the inner schedule's
        // state, and it applies `attempts`, `within` and the tag filters as a step would.
        const current = state.driver ?? (yield* driver(policy))
        const random = yield* Effect.randomWith((r) => r.next)
        const attempt = state.attempt + 1
        const startedAt = state.startedAt ?? now
        const decision = yield* current.next(
          { attempt, outcome: { _tag: "Fail", error }, elapsedMillis: now - startedAt, random },
          now
        )
        const next = { attempt, startedAt, driver: current }
        return decision._tag === "Retry"
          ? [
            next,
            decision.delayMillis,
            ScheduleDecision.continueWith(intervalAfter(now, decision.delayMillis))
          ] as const
          : [next, 0, ScheduleDecision.done] as const
      })
  )

const intervalAfter = (now: number, delay: number) => ScheduleInterval.make(now + delay, now + delay)

/** A one-line description of a policy, for the CLI. */
export const describe = (policy: Policy): string => {
  const limit = (p: Common<string>) =>
    [
      p.attempts === Number.MAX_SAFE_INTEGER ? undefined : `${p.attempts} attempts`,
      p.withinMillis === undefined ? undefined : `within ${Duration.format(Duration.millis(p.withinMillis))}`,
      p.retryOn === undefined ? undefined : `on ${p.retryOn.join("|")}`,
      p.abortOn === undefined ? undefined : `not on ${p.abortOn.join("|")}`,
      p.retryDefects ? "defects too" : undefined
    ].filter((s) => s !== undefined).join(", ")
  switch (policy._tag) {
    case "None":
      return "no retry"
    case "Exponential":
      return `exponential ${policy.baseMillis}ms ×${policy.factor}${
        Number.isFinite(policy.maxMillis) ? ` max ${policy.maxMillis}ms` : ""
      }${policy.jitter > 0 ? ` ±${Math.round(policy.jitter * 100)}%` : ""}, ${limit(policy)}`
    case "Fixed":
      return `fixed ${policy.delayMillis}ms${policy.jitter > 0 ? ` ±${Math.round(policy.jitter * 100)}%` : ""}, ${
        limit(policy)
      }`
    case "Schedule":
      return `custom schedule${limit(policy) === "" ? "" : `, ${limit(policy)}`}`
  }
}
