/**
 * The strands of one execution of a run: the body, or while it is in a task group, the group's
 * workers (each running branches one after another), and the waits they are parked in. When every
 * live strand waits (a long sleep, a signal, a child, or, replaying a cancelled run, the first new
 * thing it would do), the run is quiescent: nothing can happen in this process until one of those
 * waits ends, so the engine may suspend the run (or stop the cancelled replay) rather than hold it.
 *
 * Counting is synchronous bookkeeping (JavaScript runs one fiber step at a time). A group hands its
 * caller's strand to its k workers (`branchOut`: k - 1 more); a worker that ends gives its strand
 * up, except the group's last one, whose strand goes back to the caller: the count never dips
 * between a branch ending and the code after the group going on, so a run is never taken for
 * quiescent while it could still do something.
 */
import * as Effect from "effect/Effect"

/** What a parked strand waits for. */
export interface Wait {
  /** When it ends by itself: a wake time, a signal's deadline; none for a child or a signal with no timeout. */
  readonly wakeAt?: number | undefined
  readonly signal?: { readonly name: string; readonly deadline: number | undefined } | undefined
  readonly child?: string | undefined
  /** The replay of a cancelled run reached something new here. */
  readonly frontier?: boolean | undefined
  readonly reason: string
}

export interface Strands {
  /** The caller's strand becomes `workers` strands; returns what each worker runs as it ends. */
  readonly branchOut: (workers: number) => Effect.Effect<Effect.Effect<void>>
  /**
   * Parks the strand in `wait` while `inProcess` runs (the wait as this process would do it: a
   * timer, a poll), so that when every strand is parked the run is found quiescent (`onQuiescent`
   * is told what they wait for); from then on the strand never returns (the engine stops the body).
   */
  readonly park: (wait: Wait, inProcess: Effect.Effect<void>) => Effect.Effect<void>
  /** The body has ended: from now on a wait (a compensation's backoff) just waits in process. */
  readonly closeNow: () => void
}

export const make = (onQuiescent: (waits: ReadonlyArray<Wait>) => Effect.Effect<void>): Strands => {
  let live = 1
  const parked = new Set<Wait>()
  let quiesced = false
  let closed = false
  // Whether the run has just become quiescent (the caller then tells `onQuiescent`).
  const check = (): boolean => {
    if (quiesced || parked.size === 0 || parked.size < live) return false
    quiesced = true
    return true
  }
  return {
    branchOut: (workers) =>
      Effect.sync(() => {
        live += workers - 1
        let remaining = workers
        return Effect.suspend(() => {
          remaining--
          // The last worker's strand goes back to the code after the group.
          if (remaining === 0) return Effect.void
          live--
          return check() ? onQuiescent([...parked]) : Effect.void
        })
      }),
    park: (wait, inProcess) =>
      Effect.suspend(() => {
        if (closed) return inProcess
        if (quiesced) return Effect.never
        parked.add(wait)
        if (check()) return Effect.zipRight(onQuiescent([...parked]), Effect.never)
        return inProcess.pipe(
          Effect.ensuring(Effect.sync(() => parked.delete(wait))),
          Effect.zipRight(Effect.suspend(() => (quiesced ? Effect.never : Effect.void)))
        )
      }),
    closeNow: () => {
      closed = true
    }
  }
}
