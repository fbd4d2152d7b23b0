/**
 * `Effect.retry`, paying for the schedule only once the effect has failed. `Effect.retry` makes the
 * schedule's driver (its state) before the first try, and the runtime's storage calls, claims and
 * commits nearly always succeed the first time: on a hot path (a step's completion, a claim), that
 * allocation was a measurable share of the CPU a run costs. Here the first try runs bare; after a
 * failure that `while` accepts, the retries go on exactly as `Effect.retry` would have: the
 * schedule sees that first failure, then each later one.
 */
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"

export const retryLazily = <A, E, R, E2 extends E, R2>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly schedule: Schedule.Schedule<unknown, E2, R2>; readonly while: (error: E) => error is E2 } | {
    readonly schedule: Schedule.Schedule<unknown, E, R2>
    readonly while: (error: E) => boolean
  }
): Effect.Effect<A, E, R | R2> =>
  Effect.catchIf(effect, options.while, (first) => {
    let replayFirst = true
    return Effect.retry(
      Effect.suspend(() => (replayFirst ? ((replayFirst = false), Effect.fail(first)) : effect)),
      options as { readonly schedule: Schedule.Schedule<unknown, E, R2>; readonly while: (error: E) => boolean }
    )
  })
