/**
 * A step is the unit of durable work in a workflow: an Effect whose result (or typed failure) is
 * journaled, so a resumed run returns it without running it again. Steps declare their success
 * and error schemas, a retry policy, a per-attempt timeout and a circuit breaker.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import type { Execution } from "./Execution.js"
import type * as Failure from "./Failure.js"
import * as internal from "./internal/stepRunner.js"
import type * as Retry from "./Retry.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@weft/core/Step")
export type TypeId = typeof TypeId

/** What an attempt can read about itself: `runId`, `stepId`, `attempt` and a stable `idempotencyKey`. */
export type Info = internal.StepInfo

/** The service behind `Step.context`, provided to every attempt. */
export const StepContext = internal.StepContext

/**
 * The running attempt's identity. `idempotencyKey` is the same for every attempt of this step in
 * this run, before and after a crash: pass it to payment APIs and the like.
 */
export const context: Effect.Effect<Info, never, internal.StepContext> = internal.StepContext

/** The tags of the errors in `E`. */
export type TagsOf<E> = E extends { readonly _tag: infer T extends string } ? T : never

/**
 * The step's error channel: what it declares, StepTimeout when it has a timeout, and CircuitOpen
 * when it has a circuit breaker.
 */
export type ErrorOf<E, Timeout, Breaker = undefined> =
  | E
  | ([Timeout] extends [undefined] ? never : Failure.StepTimeout)
  | ([Breaker] extends [undefined] ? never : Failure.CircuitOpen)

/** Options shared by `Step.make` and `Step.run`. */
export interface Options<
  A,
  AI,
  E,
  EI,
  Timeout extends Duration.DurationInput | undefined,
  Breaker extends CircuitBreaker.CircuitBreaker | undefined = undefined
> {
  /** Encodes the result into the journal. Without it, the result must be plain JSON. */
  readonly success?: Schema.Schema<A, AI, never> | undefined
  /** Encodes typed failures into the journal, keeping their class and fields. */
  readonly error?: Schema.Schema<E, EI, never> | undefined
  /** The retry policy. Default `Retry.defaultPolicy` (3 attempts, retryable errors only). */
  readonly retry?: Retry.Policy<TagsOf<E> | "StepTimeout" | "CircuitOpen"> | undefined
  /** The limit on one attempt; past it the attempt is interrupted and fails with StepTimeout. */
  readonly timeout?: Timeout
  /**
   * Every attempt (its timeout included) goes through this breaker: while it is open, an attempt
   * fails with CircuitOpen without running, is recorded like any failed attempt, and is retried
   * (CircuitOpen is retryable) no sooner than its `retryAfter`.
   */
  readonly circuitBreaker?: Breaker
  /**
   * Undoes the step (a saga's compensation): when the workflow fails later, the compensations of
   * its completed steps run, latest first, each as a durable step with its own retries. Given the
   * step's result.
   */
  readonly compensate?: ((result: A) => Effect.Effect<void, unknown, any>) | undefined
  /** How a compensation retries. Default: exponential from 1 s to 1 min, 10 attempts, defects too. */
  readonly compensateRetry?: Retry.Policy | undefined
}

/** A defined step: call it with its input to get the Effect that runs it durably. */
export interface Step<Args extends ReadonlyArray<unknown>, A, E, R> {
  (...args: Args): Effect.Effect<A, E, R | Execution>
  readonly [TypeId]: TypeId
  readonly stepName: string
  readonly policy: Retry.Policy
  readonly timeoutMillis: number | undefined
  readonly circuitBreaker: CircuitBreaker.CircuitBreaker | undefined
}

/**
 * Defines a step once (at module load), so each call is only a journal lookup and the attempt loop.
 *
 * @example
 * const charge = Step.make({
 *   name: "charge-card",
 *   success: Schema.Struct({ chargeId: Schema.String }),
 *   error: Schema.Union(CardDeclined, GatewayTimeout),
 *   retry: Retry.exponential({ base: "200 millis", attempts: 5, jitter: true }),
 *   timeout: "10 seconds",
 *   circuitBreaker: gateway, // CircuitBreaker.make({ name: "payment-gateway", ... })
 *   run: (order: Order) => Payments.charge(order)
 * })
 */
export const make = <
  Args extends ReadonlyArray<unknown>,
  A,
  E = never,
  R = never,
  AI = unknown,
  EI = never,
  Timeout extends Duration.DurationInput | undefined = undefined,
  Breaker extends CircuitBreaker.CircuitBreaker | undefined = undefined
>(
  options: Options<A, AI, E, EI, Timeout, Breaker> & {
    /** The step's name: unique per step, it identifies the step in the journal. */
    readonly name: string
    /** Its typed errors are those of `error` (none without it): an undeclared one could not be journaled. */
    readonly run: (...args: Args) => Effect.Effect<A, NoInfer<E>, R>
  }
): Step<Args, A, ErrorOf<E, Timeout, Breaker>, Exclude<R, internal.StepContext | Scope.Scope>> => {
  const problem = internal.checkName(options.name)
  if (problem !== undefined) throw new TypeError(problem)
  const compiled = internal.compile({
    name: options.name,
    kind: "step",
    success: options.success,
    error: options.error,
    retry: options.retry as Retry.Policy | undefined,
    timeout: options.timeout,
    circuitBreaker: options.circuitBreaker
  })
  const compensation = options.compensate === undefined
    ? undefined
    : { undo: options.compensate, retry: options.compensateRetry }
  const call = (...args: Args) => internal.run(compiled, Effect.suspend(() => options.run(...args)), compensation)
  return Object.assign(call, {
    [TypeId]: TypeId,
    stepName: options.name,
    policy: compiled.policy,
    timeoutMillis: compiled.timeoutMillis,
    circuitBreaker: compiled.circuitBreaker
  }) as never
}

/**
 * Runs an effect as an inline step. Prefer `Step.make` for steps called often: this form compiles
 * the step's schemas on every call.
 *
 * @example
 * const total = yield* Step.run("sum", Effect.succeed(1 + 2))
 */
export const run = <
  A,
  E = never,
  R = never,
  AI = unknown,
  EI = never,
  Timeout extends Duration.DurationInput | undefined = undefined,
  Breaker extends CircuitBreaker.CircuitBreaker | undefined = undefined
>(
  name: string,
  effect: Effect.Effect<A, NoInfer<E>, R>,
  options: Options<A, AI, E, EI, Timeout, Breaker> = {}
): Effect.Effect<A, ErrorOf<E, Timeout, Breaker>, Exclude<R, internal.StepContext | Scope.Scope> | Execution> => {
  const problem = internal.checkName(name)
  if (problem !== undefined) return Effect.die(new TypeError(problem))
  return internal.run(
    internal.compile({
      name,
      kind: "step",
      success: options.success,
      error: options.error,
      retry: options.retry as Retry.Policy | undefined,
      timeout: options.timeout,
      circuitBreaker: options.circuitBreaker
    }),
    effect,
    options.compensate === undefined ? undefined : { undo: options.compensate, retry: options.compensateRetry }
  ) as never
}

/** Whether a value is a step made by `Step.make`. */
export const isStep = (u: unknown): u is Step<ReadonlyArray<unknown>, unknown, unknown, unknown> =>
  typeof u === "function" && TypeId in u
