/**
 * Wake-up notices within one process: a store publishes the queue of a run that became claimable
 * (created, released), and every subscribed worker of this process hears it at once. Subscribers
 * that fall behind keep only the newest notices: a notice is a hint to claim now, and the newest
 * one is as good as all of them.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/** In-process wake-up notices. */
export interface WakeBus {
  /** Tells every subscriber that runs of `queue` may be claimable. */
  readonly publish: (queue: string) => void
  /** The notices published while the stream is being pulled. */
  readonly notices: Stream.Stream<string>
}

/** A bus with no subscribers yet. */
export const make = (): WakeBus => {
  const listeners = new Set<(queue: string) => void>()
  return {
    publish: (queue) => {
      for (const listener of listeners) listener(queue)
    },
    notices: Stream.asyncPush<string>(
      (emit) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const listener = (queue: string) => {
              emit.single(queue)
            }
            listeners.add(listener)
            return listener
          }),
          (listener) => Effect.sync(() => listeners.delete(listener))
        ),
      { bufferSize: 16, strategy: "sliding" }
    )
  }
}

/** The notice that means "any queue": sent when notices may have been missed (a reconnect). */
export const anyQueue = "*"
