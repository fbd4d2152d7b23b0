/**
 * Queue limits as the runtime applies them: the queue and concurrency key a run gets when it starts,
 * the declarations a worker records in its store, the sliding rate-limit window and the admission
 * rule every store claims with, and why a queued run is not starting.
 */
import { Queue, type Workflow } from "@weft/core"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import type { QueueLimits, QueueState, RunRecord } from "./Store.js"

/** Where a new run goes and what limits it. */
export interface Placement {
  readonly queue: string | undefined
  readonly concurrencyKey: string | undefined
  readonly concurrencyLimit: number | undefined
}

/**
 * The queue and concurrency key of a new run of `workflow`: the queue a start names, else the one
 * the workflow declares; the key computed from the decoded input, with the workflow's limit.
 */
export const placement = (workflow: Workflow.Any, input: unknown, queue?: string | undefined): Placement => {
  const key = workflow.concurrencyKey?.(input)
  return {
    queue: queue ?? (workflow.queue === undefined ? undefined : Queue.nameOf(workflow.queue)),
    concurrencyKey: key,
    concurrencyLimit: key === undefined ? undefined : workflow.concurrencyLimit ?? 1
  }
}

/** What a worker claims from and records in its store (see `declarations`). */
export interface Declarations {
  /** The queues it claims from, in order. */
  readonly names: ReadonlyArray<string>
  /** The queue declarations (with their limits) it records. */
  readonly queues: ReadonlyArray<Queue.Queue>
  /** The queues whose runs its workflows start with a concurrency key. */
  readonly keyed: ReadonlyArray<string>
}

/**
 * What a worker for `workflows` claims from and declares: the queues it is given (names or
 * declarations), else the queues its workflows declare ("default" for those that declare none);
 * every declaration among them and its workflows'; the queues of its keyed workflows. Two different
 * declarations of one queue name are a mistake in the code: Left with a message that names both.
 */
export const declarations = (
  workflows: ReadonlyArray<Workflow.Any>,
  queues: ReadonlyArray<Queue.Queue | string> | undefined
): Either.Either<Declarations, string> => {
  const declared = new Map<string, { readonly queue: Queue.Queue; readonly by: string }>()
  const given = (queues ?? []).map((queue) => ({ queue, by: `the worker's queues` }))
  const ofWorkflows = workflows.flatMap((workflow) =>
    workflow.queue === undefined ? [] : [{ queue: workflow.queue, by: `workflow "${workflow.name}"` }]
  )
  for (const { by, queue } of [...given, ...ofWorkflows]) {
    if (typeof queue === "string") continue
    const other = declared.get(queue.name)
    if (other === undefined) declared.set(queue.name, { queue, by })
    else if (!Queue.sameLimits(other.queue, queue)) {
      return Either.left(
        `queue "${queue.name}" is declared twice with different limits: ${
          Queue.describeLimits(other.queue)
        } by ${other.by}, ` +
          `${Queue.describeLimits(queue)} by ${by}; declare it once (Queue.make) and use that everywhere`
      )
    }
  }
  const queueOf = (workflow: Workflow.Any) =>
    workflow.queue === undefined ? Queue.defaultName : Queue.nameOf(workflow.queue)
  const names = queues === undefined ? workflows.map(queueOf) : queues.map(Queue.nameOf)
  return Either.right({
    names: unique(names.length === 0 ? [Queue.defaultName] : names),
    queues: Array.from(declared.values(), ({ queue }) => queue),
    keyed: unique(workflows.filter((workflow) => workflow.concurrencyKey !== undefined).map(queueOf))
  })
}

/** What the store records of a declaration. */
export const toLimits = (queue: Queue.Queue): QueueLimits => ({
  name: queue.name,
  concurrency: queue.concurrency,
  rateLimit: queue.rateLimit
})

/** Whether two recorded or declared queues have the same limits. */
export const sameLimits = (a: QueueLimits, b: QueueLimits): boolean =>
  a.concurrency === b.concurrency && a.rateLimit?.limit === b.rateLimit?.limit &&
  a.rateLimit?.intervalMillis === b.rateLimit?.intervalMillis

/** The state of a rate limit's window at some time (see `rateWindow`). */
export interface RateWindow {
  /** Claims in the window. */
  readonly claims: number
  /** How many more claims the window allows now. */
  readonly free: number
  /** When none is allowed: the time the next one is. */
  readonly reopensAt: number | undefined
}

/**
 * The sliding window of a rate limit: from the times of earlier claims (in any order; those older
 * than the window are ignored), how many more claims are allowed at `now`. A claim at `t` counts
 * in the windows of the times in `[t, t + interval)`, so at most `limit` claims fall in any
 * `interval`-long span. The stores count with this function.
 */
export const rateWindow = (
  rate: { readonly limit: number; readonly intervalMillis: number },
  claims: ReadonlyArray<number>,
  now: number
): RateWindow => {
  const recent = claims.filter((at) => at > now - rate.intervalMillis).sort((a, b) => a - b)
  const free = Math.max(0, rate.limit - recent.length)
  // Full: the next claim is allowed once all but limit - 1 of these have left the window.
  return {
    claims: recent.length,
    free,
    reopensAt: free > 0 ? undefined : recent[recent.length - rate.limit] + rate.intervalMillis
  }
}

/**
 * The budget of one claim in one limited queue, spent run by run in claim order by `admit`:
 * how many more may start (`concurrency` minus its running runs), and how many claims the rate
 * window still allows.
 */
export interface Budget {
  slots: number
  tokens: number
}

/**
 * Whether a claim with `budget` takes `run` (a candidate in claim order), spending what it uses.
 * The one admission rule of every store: a run whose lease expired is still running, so taking it
 * over needs no slot; any other needs a slot of its queue and, with a concurrency key, fewer than
 * its `concurrencyLimit` running runs of that key (`keyRunning`); every claim needs a token.
 */
export const admit = (
  budget: Budget,
  run: {
    readonly status: string
    readonly concurrencyKey?: string | undefined
    readonly concurrencyLimit?: number | undefined
  },
  keyRunning: number
): boolean => {
  if (budget.tokens <= 0) return false
  if (run.status !== "running") {
    if (budget.slots <= 0) return false
    if (run.concurrencyKey !== undefined && keyRunning >= (run.concurrencyLimit ?? 1)) return false
    budget.slots -= 1
  }
  budget.tokens -= 1
  return true
}

/**
 * Why a queued run that is due is not starting, from its queue's state (`Store.queueState`):
 * `queue emails is at its concurrency limit 5 (5 running)`, `key customer-7 is at its limit 2 in
 * queue emails`, `queue emails is rate limited (100 per 1m) until T`, joined by `; `. None when no
 * limit holds it back (a worker has not claimed it yet), or it is not a due queued run.
 */
export const whyQueued = (run: RunRecord, state: QueueState, now: number): string | undefined => {
  if (run.status !== "queued" || (run.wakeAt !== undefined && run.wakeAt > now)) return undefined
  const queue = state.queue
  const reasons: Array<string> = []
  if (queue?.concurrency !== undefined && state.running >= queue.concurrency) {
    reasons.push(`queue ${run.queue} is at its concurrency limit ${queue.concurrency} (${state.running} running)`)
  }
  const limit = run.concurrencyLimit ?? 1
  if (run.concurrencyKey !== undefined && state.keyRunning !== undefined && state.keyRunning >= limit) {
    reasons.push(`key ${run.concurrencyKey} is at its limit ${limit} in queue ${run.queue}`)
  }
  if (queue?.rateLimit !== undefined && state.rate?.reopensAt !== undefined && state.rate.reopensAt > now) {
    reasons.push(
      `queue ${run.queue} is rate limited (${queue.rateLimit.limit} per ${
        Duration.format(Duration.millis(queue.rateLimit.intervalMillis))
      }) until ${new Date(state.rate.reopensAt).toISOString()}`
    )
  }
  return reasons.length === 0 ? undefined : reasons.join("; ")
}

const unique = (names: ReadonlyArray<string>): ReadonlyArray<string> => Array.from(new Set(names))
