/**
 * `Effect.retry`, paying for the schedule only once the effect has failed. `Effect.retry` makes the
 * schedule's driver (its state) before the first try, and the runtime's storage calls, claims and
 * commits nearly always succeed the first time: on a hot path (a step's completion, a claim), that
 * allocation was a measurable share of the CPU a run costs. Here the first try runs bare; after a
 * failure that `while` accepts, the retries go on exactly as `Effect.retry` would have: the
 * schedule sees that first failure, then each later one. `onFailure` sees every failure that
 * `while` accepts (to log it), before the schedule decides.
 */
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"

export const retryLazily = <A, E, R, E2 extends E, R2>(
  effect: Effect.Effect<A, E, R>,
  options: {
    readonly schedule: Schedule.Schedule<unknown, E2, R2>
    readonly while: (error: E) => error is E2
    readonly onFailure?: ((error: E2) => Effect.Effect<void>) | undefined
  } | {
    readonly schedule: Schedule.Schedule<unknown, E, R2>
    readonly while: (error: E) => boolean
    readonly onFailure?: ((error: E) => Effect.Effect<void>) | undefined
  }
): Effect.Effect<A, E, R | R2> => {
  const onFailure = options.onFailure as ((error: E) => Effect.Effect<void>) | undefined
  const retry = { schedule: options.schedule, while: options.while } as {
    readonly schedule: Schedule.Schedule<unknown, E, R2>
    readonly while: (error: E) => boolean
  }
  return Effect.catchIf(effect, options.while, (first) => {
    let replayFirst = true
    const tried = onFailure === undefined
      ? effect
      : Effect.tapError(effect, (error) => (options.while(error) ? onFailure(error) : Effect.void))
    const retried = Effect.retry(
      Effect.suspend(() => (replayFirst ? ((replayFirst = false), Effect.fail(first)) : tried)),
      retry
    )
    return onFailure === undefined ? retried : Effect.zipRight(onFailure(first), retried)
  })
}
