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
  /** Calls `listener` with every notice published until interrupted (see `Store.listen`). */
  readonly listen: (listener: (notice: string) => void) => Effect.Effect<never>
  /** The notices published while the stream is being pulled. */
  readonly notices: Stream.Stream<string>
}

/** A bus with no subscribers yet. */
export const make = (): WakeBus => {
  const listeners = new Set<(queue: string) => void>()
  const listen = (listener: (notice: string) => void): Effect.Effect<never> =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        // Its own entry, even for a listener given twice.
        const entry = (queue: string) => listener(queue)
        listeners.add(entry)
        return entry
      }),
      () => Effect.never,
      (entry) => Effect.sync(() => listeners.delete(entry))
    )
  return {
    publish: (queue) => {
      for (const listener of listeners) listener(queue)
    },
    listen,
    notices: fromListen(listen)
  }
}

/**
 * The stream of a `listen`: it fails as the subscription does. Subscribers that fall behind keep
 * only the newest notices.
 */
export const fromListen = <E>(
  listen: (listener: (notice: string) => void) => Effect.Effect<never, E>
): Stream.Stream<string, E> =>
  Stream.asyncPush<string, E>(
    (emit) =>
      Effect.forkScoped(
        Effect.catchAll(
          listen((notice) => void emit.single(notice)),
          (error) => Effect.sync(() => void emit.fail(error))
        )
      ),
    { bufferSize: 64, strategy: "sliding" }
  )

/** The notice that means "any queue": sent when notices may have been missed (a reconnect). */
export const anyQueue = "*"
