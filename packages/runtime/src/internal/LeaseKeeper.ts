/**
 * One heartbeat for all the runs a worker holds, instead of one fiber and one timer per run: every
 * third of the lease it renews each held run's lease (the renewals of one beat meet in the store's
 * group commit) and reads whether someone asked to cancel it. A cancellation notice (`cancel:<id>`)
 * makes it look at that run at once. It tells a run's engine when its lease is lost (the run then
 * stops here and resumes elsewhere) or a cancellation was asked for.
 *
 * It runs in a fiber of its own, not in any run's, so a step that keeps its fiber busy cannot
 * starve it. While the store is unavailable it retries as the engine's other storage calls do:
 * nobody else can take the lease meanwhile either.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { LeaseLost, StoreUnavailable } from "../Errors.js"
import type { CancelRequest } from "../Store.js"
import { Store } from "../Store.js"

/** How the keeper reaches the engine executing a run. */
export interface Holder {
  /** The lease could not be renewed: the run must stop here. */
  readonly lost: (error: StoreUnavailable | LeaseLost) => Effect.Effect<void>
  /** Someone asked to cancel the run (told once). */
  readonly cancel: (request: CancelRequest) => Effect.Effect<void>
}

export interface LeaseKeeper {
  /**
   * Keeps the run's lease from now on, until `release`. Bookkeeping done at once, not an effect:
   * it is on every run's path, called from inside the engine's effects.
   */
  readonly hold: (runId: string, holder: Holder) => void
  readonly release: (runId: string) => void
  /** A cancellation notice for the run: read its state now rather than at the next beat. */
  readonly check: (runId: string) => Effect.Effect<void>
}

export const make = (options: {
  readonly owner: string
  readonly leaseMillis: number
  /** How a renewal retries while the store is unavailable. */
  readonly retry: <A, E>(
    effect: Effect.Effect<A, E | StoreUnavailable>,
    context: string
  ) => Effect.Effect<A, E | StoreUnavailable>
}): Effect.Effect<LeaseKeeper, never, Store | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* Store
    const held = new Map<string, { readonly holder: Holder; cancelTold: boolean }>()
    const checks = yield* Queue.unbounded<string>()
    const beatMillis = Math.max(10, Math.floor(options.leaseMillis / 3))

    // Reads the run's cancellation request and tells its engine, once.
    const lookAt = (runId: string) =>
      Effect.suspend(() => {
        const entry = held.get(runId)
        if (entry === undefined || entry.cancelTold) return Effect.void
        return options.retry(store.getRun(runId), `run ${runId}: reading its state`).pipe(
          Effect.flatMap((current) => {
            const request = Option.getOrUndefined(current)?.cancel
            if (request === undefined || entry.cancelTold || !held.has(runId)) return Effect.void
            entry.cancelTold = true
            return entry.holder.cancel(request)
          }),
          Effect.catchAll(() => Effect.void)
        )
      })

    const renew = (runId: string, entry: { readonly holder: Holder }) =>
      Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (at) =>
        options.retry(
          store.renewLease({ id: runId, owner: options.owner, leaseMillis: options.leaseMillis, now: at }),
          `run ${runId}: renewing its lease`
        )).pipe(
          Effect.zipRight(lookAt(runId)),
          // Only for the holding this beat renewed: the run may have ended here meanwhile (its lease
          // given up), or even been claimed again.
          Effect.catchAll((error) =>
            Effect.suspend(() => {
              if (held.get(runId) !== entry) return Effect.void
              held.delete(runId)
              return entry.holder.lost(error)
            })
          )
        )

    const beat = Effect.suspend(() =>
      Effect.forEach([...held], ([runId, entry]) => renew(runId, entry), { concurrency: "unbounded", discard: true })
    )

    // Between beats, the runs named by cancellation notices are looked at as they come.
    const now = Effect.clockWith((clock) => clock.currentTimeMillis)
    const loop = Effect.gen(function*() {
      let next = (yield* now) + beatMillis
      while (true) {
        // Holding nothing, it waits for a run to hold (no beat ticks in an idle worker).
        if (held.size === 0) {
          yield* Queue.take(checks)
          next = (yield* now) + beatMillis
          continue
        }
        const wait = Math.max(0, next - (yield* now))
        const checked = yield* Queue.take(checks).pipe(Effect.timeoutOption(Duration.millis(wait)))
        if (Option.isSome(checked)) {
          yield* lookAt(checked.value)
          continue
        }
        yield* beat
        next = (yield* now) + beatMillis
      }
    })
    yield* Effect.forkScoped(loop)

    const hold = (runId: string, holder: Holder) => {
      const first = held.size === 0
      held.set(runId, { holder, cancelTold: false })
      // Wakes the idle loop (no run is named "": nothing is looked at).
      if (first) Queue.unsafeOffer(checks, "")
    }

    return {
      hold,
      release: (runId) => void held.delete(runId),
      check: (runId) => Effect.suspend(() => (held.has(runId) ? Queue.offer(checks, runId) : Effect.void))
    }
  })
