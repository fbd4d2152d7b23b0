/**
 * A queue with limits: at most `concurrency` of its runs running at once across every worker, and
 * at most `rateLimit.limit` claims of its runs in any window of `rateLimit.interval`. Declared in
 * code, on a workflow (`Workflow.make({ queue })`) or given to a worker (`Worker.start({ queues })`);
 * workers record the declaration in their store, where every worker's claims honour it.
 */
import * as Duration from "effect/Duration"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@weft/core/Queue")
export type TypeId = typeof TypeId

/** At most `limit` claims in any window of `intervalMillis` (a sliding window). */
export interface RateLimit {
  readonly limit: number
  readonly intervalMillis: number
}

/** A queue's declaration. A limit left out is no limit. */
export interface Queue {
  readonly [TypeId]: TypeId
  readonly name: string
  /** The most runs of the queue running at once, across all workers. */
  readonly concurrency: number | undefined
  readonly rateLimit: RateLimit | undefined
}

/** The queue of a run started with none, from a workflow that declares none. */
export const defaultName = "default"

/**
 * Declares a queue. Bad numbers throw when the queue is made, at module load, not in a worker.
 *
 * @example
 * export const emails = Queue.make({
 *   name: "emails",
 *   concurrency: 5,                                      // at most 5 running at once, all workers together
 *   rateLimit: { limit: 100, interval: "1 minute" }      // at most 100 claims in any minute
 * })
 */
export const make = (options: {
  /** The name runs are queued under (`Client.start(..., { queue })`, `weft start --queue`). */
  readonly name: string
  /** The most runs of the queue running at once across all workers. Default: no limit. */
  readonly concurrency?: number | undefined
  /**
   * At most `limit` claims of the queue's runs (starts, and resumptions after a sleep, a release or a
   * crash) in any window of `interval`. Default: no limit.
   */
  readonly rateLimit?: { readonly limit: number; readonly interval: Duration.DurationInput } | undefined
}): Queue => {
  if (typeof options.name !== "string" || options.name === "") {
    throw new TypeError("a queue needs a name: a non-empty string")
  }
  const concurrency = options.concurrency
  if (concurrency !== undefined) wholeAtLeastOne(`queue "${options.name}": concurrency`, concurrency)
  let rateLimit: RateLimit | undefined
  if (options.rateLimit !== undefined) {
    wholeAtLeastOne(`queue "${options.name}": rateLimit.limit`, options.rateLimit.limit)
    const intervalMillis = Duration.toMillis(Duration.decode(options.rateLimit.interval))
    if (!(intervalMillis >= 1 && Number.isFinite(intervalMillis))) {
      throw new RangeError(
        `queue "${options.name}": rateLimit.interval must be at least 1 millisecond and finite, got ${
          String(options.rateLimit.interval)
        }`
      )
    }
    rateLimit = { limit: options.rateLimit.limit, intervalMillis: Math.round(intervalMillis) }
  }
  return { [TypeId]: TypeId, name: options.name, concurrency, rateLimit }
}

/** Whether a value is a queue declaration (by a global symbol, so it holds across copies of this package). */
export const isQueue = (u: unknown): u is Queue => typeof u === "object" && u !== null && TypeId in u

/** The name of a queue given as a declaration or a name. */
export const nameOf = (queue: Queue | string): string => typeof queue === "string" ? queue : queue.name

/** Whether two declarations set the same limits. */
export const sameLimits = (a: Queue, b: Queue): boolean =>
  a.concurrency === b.concurrency &&
  a.rateLimit?.limit === b.rateLimit?.limit &&
  a.rateLimit?.intervalMillis === b.rateLimit?.intervalMillis

/** The limits in words: `concurrency 5, 100 per 1m`, or `no limits`. */
export const describeLimits = (
  queue: { readonly concurrency: number | undefined; readonly rateLimit: RateLimit | undefined }
): string => {
  const parts = [
    ...(queue.concurrency === undefined ? [] : [`concurrency ${queue.concurrency}`]),
    ...(queue.rateLimit === undefined ? [] : [
      `${queue.rateLimit.limit} per ${Duration.format(Duration.millis(queue.rateLimit.intervalMillis))}`
    ])
  ]
  return parts.length === 0 ? "no limits" : parts.join(", ")
}

const wholeAtLeastOne = (what: string, n: number): void => {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a whole number of at least 1, got ${n}`)
}
