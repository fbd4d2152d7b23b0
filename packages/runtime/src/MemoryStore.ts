/**
 * A Store in memory, for tests: the same rules as the SQL store (it passes the same conformance
 * suite), nothing durable. Values are kept as JSON text, as a database keeps them, so a test sees
 * the same round trip (no shared references, `undefined` fields dropped).
 */
import type { Execution } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import {
  LeaseLost,
  RunConflict,
  RunFinished,
  RunNotClaimable,
  RunNotFound,
  RunNotRedrivable,
  StepNotInJournal
} from "./Errors.js"
import { canonicalJson, decodeJson, encodeJson } from "./internal/json.js"
import { claimOrder, compareCodePoints } from "./internal/order.js"
import * as Redrive from "./internal/redrive.js"
import * as Waits from "./internal/waits.js"
import * as WakeBus from "./internal/WakeBus.js"
import * as Limits from "./Limits.js"
import type {
  AttemptRow,
  Outcome,
  QueueRecord,
  Redriven,
  RedrivePoint,
  RedriveRecord,
  RunRecord,
  RunStatus,
  StepRecord,
  StoreService
} from "./Store.js"
import { isTerminal, Store } from "./Store.js"

/** Makes an empty in-memory store. Every method runs in one synchronous block, so each is atomic. */
export const make: Effect.Effect<StoreService> = Effect.sync(() => {
  const runs = new Map<string, StoredRun>()
  // `${workflow}\u0000${idempotencyKey}` -> run id, as the SQL stores' unique index.
  const keys = new Map<string, string>()
  const steps = new Map<string, Map<string, StoredStep>>()
  const attempts = new Map<string, Map<string, StoredAttempt>>()
  const bus = WakeBus.make()
  const signals: Array<StoredSignal> = []
  const redrives = new Map<string, Array<StoredRedrive>>()
  const queueRecords = new Map<string, QueueRecord>()
  // Per rate-limited queue: the times of its claims still in the window.
  const rateClaims = new Map<string, Array<number>>()
  const isLimited = (queue: string): boolean => {
    const record = queueRecords.get(queue)
    return record !== undefined &&
      (record.keyed || record.concurrency !== undefined || record.rateLimit !== undefined)
  }
  const windowOf = (record: QueueRecord, now: number) =>
    record.rateLimit === undefined
      ? undefined
      : Limits.rateWindow(record.rateLimit, rateClaims.get(record.name) ?? [], now)
  const pendingSignal = (runId: string, name: string, deadline: number | undefined) =>
    signals.find((signal) =>
      signal.runId === runId && signal.name === name && signal.takenBy === undefined &&
      (deadline === undefined || signal.sentAt <= deadline)
    )

  const fence = (runId: string, owner: string): StoredRun | undefined => {
    const run = runs.get(runId)
    return run !== undefined && run.leaseOwner === owner ? run : undefined
  }

  const insertAttempt = (attempt: StoredAttempt): void => {
    let ofRun = attempts.get(attempt.runId)
    if (ofRun === undefined) {
      ofRun = new Map()
      attempts.set(attempt.runId, ofRun)
    }
    const key = `${attempt.stepId}\u0000${attempt.attempt}`
    // First write wins, as the SQL stores' ON CONFLICT DO NOTHING.
    if (!ofRun.has(key)) ofRun.set(key, attempt)
  }

  // Re-drives `run` (known to be failed or cancelled) and the awaited children whose steps do not
  // stay in its journal. Nothing is changed when `from` names a step the journal does not hold.
  const redrive = (
    run: StoredRun,
    from: RedrivePoint,
    by: string,
    reason: string,
    now: number
  ): StoredRedrive | { readonly unknownStep: ReadonlyArray<string> } => {
    const journal = steps.get(run.id) ?? new Map<string, StoredStep>()
    const plan = Redrive.plan([...journal.values()], [...(attempts.get(run.id)?.values() ?? [])], from)
    if ("unknownStep" in plan) return plan
    for (const stepId of plan.discarded) journal.delete(stepId)
    const discarded = new Set(plan.discarded)
    for (const signal of signals) {
      if (signal.runId === run.id && signal.takenBy !== undefined && discarded.has(signal.takenBy)) {
        signal.takenBy = undefined
        signal.takenAt = undefined
      }
    }
    const seq = (run.redriven?.count ?? 0) + 1
    const previousStatus = run.status
    const failure = run.failure
    run.status = "queued"
    run.output = null
    run.failure = null
    run.finishedAt = undefined
    run.startedAt = undefined
    run.recoveries = 0
    run.leaseOwner = undefined
    run.leaseExpiresAt = undefined
    run.wakeAt = undefined
    run.waitingFor = undefined
    run.cancel = undefined
    run.reason = Redrive.queuedReason(by, reason, now)
    run.redriven = { count: seq, priorAttempts: plan.priorAttempts }
    run.updatedAt = now
    bus.publish(run.queue)
    const children: Array<string> = []
    for (const child of runs.values()) {
      if (
        child.parent?.runId === run.id && Redrive.isAwaitedChildStep(child.parent.stepId) &&
        !journal.has(child.parent.stepId) && Redrive.redrivable(child.status)
      ) {
        redrive(child, "failure", by, `${reason} (with its parent run ${run.id})`, now)
        children.push(child.id)
      }
    }
    const record: StoredRedrive = {
      runId: run.id,
      seq,
      at: now,
      by,
      reason,
      previousStatus,
      failure,
      fromStep: plan.cut,
      discarded: plan.discarded,
      priorAttempts: plan.priorAttempts,
      children
    }
    const list = redrives.get(run.id)
    if (list === undefined) redrives.set(run.id, [record])
    else list.push(record)
    return record
  }

  const markKeyed = (name: string): void => {
    const before = queueRecords.get(name)
    queueRecords.set(
      name,
      before === undefined
        ? {
          name,
          concurrency: undefined,
          rateLimit: undefined,
          keyed: true,
          declaredBy: undefined,
          declaredAt: undefined
        }
        : { ...before, keyed: true }
    )
  }

  const service: StoreService = {
    dialect: "memory",
    listen: bus.listen,
    wakeups: bus.notices,
    sharedWakeups: false,

    nextWakeAt: ({ now, queues, workflows }) =>
      Effect.sync(() => {
        let earliest: number | undefined
        for (const run of runs.values()) {
          if (!queues.includes(run.queue) || (workflows !== undefined && !workflows.includes(run.workflow))) continue
          const at = run.status === "queued" || run.status === "sleeping" || run.status === "waiting"
            ? run.wakeAt
            : run.status === "running"
            ? run.leaseExpiresAt
            : undefined
          if (at !== undefined && at > now && (earliest === undefined || at < earliest)) earliest = at
        }
        // A full rate-limit window: its queued runs become claimable when it reopens.
        for (const queue of queues) {
          const record = queueRecords.get(queue)
          const at = record === undefined ? undefined : windowOf(record, now)?.reopensAt
          if (at !== undefined && at > now && (earliest === undefined || at < earliest)) earliest = at
        }
        return Option.fromNullable(earliest)
      }),

    declareQueues: ({ by, keyed, now, queues }) =>
      Effect.sync(() => {
        const changed: Array<QueueRecord> = []
        for (const queue of queues) {
          const before = queueRecords.get(queue.name)
          if (before?.declaredBy !== undefined && !Limits.sameLimits(before, queue)) changed.push(before)
          queueRecords.set(queue.name, {
            name: queue.name,
            concurrency: queue.concurrency,
            rateLimit: queue.rateLimit,
            keyed: before?.keyed ?? false,
            declaredBy: by,
            declaredAt: now
          })
        }
        for (const name of keyed) markKeyed(name)
        return changed
      }),

    queueState: ({ key, now, queue }) =>
      Effect.sync(() => {
        const record = queueRecords.get(queue)
        const running = Array.from(runs.values()).filter((run) => run.queue === queue && run.status === "running")
        const window = record === undefined ? undefined : windowOf(record, now)
        return {
          queue: record,
          running: running.length,
          keyRunning: key === undefined ? undefined : running.filter((run) => run.concurrencyKey === key).length,
          rate: window === undefined ? undefined : { claims: window.claims, reopensAt: window.reopensAt }
        }
      }),

    createRun: (run) =>
      Effect.suspend((): Effect.Effect<{ run: RunRecord; created: boolean }, RunConflict> => {
        const byId = runs.get(run.id)
        if (byId !== undefined) {
          if (byId.workflow !== run.workflow) {
            return Effect.fail(new RunConflict({ runId: run.id, detail: `it is a run of workflow "${byId.workflow}"` }))
          }
          if (canonicalJson(decodeJson(byId.input)) !== canonicalJson(run.input)) {
            return Effect.fail(new RunConflict({ runId: run.id, detail: "it was started with another input" }))
          }
          return Effect.succeed({ run: toRun(byId), created: false })
        }
        const key = run.idempotencyKey === undefined ? undefined : `${run.workflow}\u0000${run.idempotencyKey}`
        const byKey = key === undefined ? undefined : keys.get(key)
        if (byKey !== undefined) {
          return Effect.succeed({ run: toRun(runs.get(byKey)!), created: false })
        }
        const claim = run.claim
        const stored: StoredRun = {
          id: run.id,
          workflow: run.workflow,
          version: run.version,
          status: claim === undefined ? "queued" : "running",
          input: encodeJson(run.input),
          output: null,
          failure: null,
          idempotencyKey: run.idempotencyKey,
          queue: run.queue ?? "default",
          priority: run.priority ?? 0,
          leaseOwner: claim?.owner,
          leaseExpiresAt: claim === undefined ? undefined : run.now + claim.leaseMillis,
          wakeAt: run.wakeAt,
          reason: undefined,
          recoveries: 0,
          origin: run.origin,
          parent: run.parent,
          ...(run.correlationId === undefined ? {} : { correlationId: run.correlationId }),
          concurrencyKey: run.concurrencyKey,
          concurrencyLimit: run.concurrencyKey === undefined ? undefined : run.concurrencyLimit ?? 1,
          createdAt: run.now,
          updatedAt: run.now,
          startedAt: claim === undefined ? undefined : run.now,
          finishedAt: undefined
        }
        runs.set(run.id, stored)
        if (key !== undefined) keys.set(key, run.id)
        if (stored.concurrencyKey !== undefined) markKeyed(stored.queue)
        if (claim === undefined) bus.publish(stored.queue)
        return Effect.succeed({ run: toRun(stored), created: true })
      }),

    getRun: (id) =>
      Effect.sync(() => {
        const run = runs.get(id)
        return run === undefined ? Option.none() : Option.some(toRun(run))
      }),

    listRuns: (filter) =>
      Effect.sync(() => {
        const selected = Array.from(runs.values())
          .filter((run) =>
            (filter.status === undefined || run.status === filter.status) &&
            (filter.workflow === undefined || run.workflow === filter.workflow) &&
            (filter.since === undefined || run.createdAt >= filter.since) &&
            (filter.updatedSince === undefined || run.updatedAt >= filter.updatedSince)
          )
          .sort((a, b) => b.createdAt - a.createdAt || compareCodePoints(b.id, a.id))
        const limited = filter.limit === undefined
          ? selected
          : selected.slice(0, Math.max(0, Math.floor(filter.limit)))
        return limited.map(toRun)
      }),

    claimRun: ({ force, id, leaseMillis, now, owner }) =>
      Effect.suspend(() => {
        const run = runs.get(id)
        if (run === undefined) {
          return Effect.fail(new RunNotClaimable({ runId: id, status: "unknown", detail: "no run has this id" }))
        }
        if (isTerminal(run.status)) {
          return Effect.fail(
            new RunNotClaimable({ runId: id, status: run.status, detail: `the run has ${run.status}` })
          )
        }
        const heldByOther = run.leaseOwner !== undefined && run.leaseOwner !== owner &&
          run.leaseExpiresAt !== undefined && run.leaseExpiresAt > now
        if (heldByOther && force !== true) {
          const until = ` until ${new Date(run.leaseExpiresAt!).toISOString()}`
          return Effect.fail(
            new RunNotClaimable({
              runId: id,
              status: run.status,
              detail: `worker ${run.leaseOwner} holds its lease${until}`
            })
          )
        }
        // Resuming a suspended run is its own plan, not a recovery.
        if (run.status === "sleeping" || run.status === "waiting") run.recoveries -= 1
        take(run, owner, leaseMillis, now)
        return Effect.succeed(toRun(run))
      }),

    claimNext: ({ leaseMillis, limit, now, owner, queues, workflows }) =>
      Effect.sync(() => {
        const mine = (run: StoredRun) =>
          queues.includes(run.queue) && (workflows === undefined || workflows.includes(run.workflow))
        // Due sleepers first, in wake order: resuming started work comes before starting new runs.
        const dueSleeper = (run: StoredRun) =>
          (run.status === "sleeping" || run.status === "waiting") && run.wakeAt !== undefined && run.wakeAt <= now
        const runnable = (run: StoredRun) =>
          (run.status === "queued" && (run.wakeAt === undefined || run.wakeAt <= now)) ||
          (run.status === "running" && run.leaseExpiresAt !== undefined && run.leaseExpiresAt <= now)
        const candidates = (of: (run: StoredRun) => boolean) => [
          ...Array.from(runs.values()).filter((run) => of(run) && dueSleeper(run))
            .sort((a, b) => a.wakeAt! - b.wakeAt! || compareCodePoints(a.id, b.id)),
          ...Array.from(runs.values()).filter((run) => of(run) && runnable(run)).sort(claimOrder)
        ]
        let left = Math.max(0, Math.floor(limit))
        const taken: Array<StoredRun> = []
        // Limited queues first, each through its budget (see Limits.admit).
        for (const queue of queues.filter(isLimited)) {
          const record = queueRecords.get(queue)!
          const running = Array.from(runs.values()).filter((run) => run.queue === queue && run.status === "running")
          const keyRunning = new Map<string, number>()
          for (const run of running) {
            if (run.concurrencyKey !== undefined) {
              keyRunning.set(run.concurrencyKey, (keyRunning.get(run.concurrencyKey) ?? 0) + 1)
            }
          }
          const budget: Limits.Budget = {
            slots: record.concurrency === undefined ? Infinity : record.concurrency - running.length,
            tokens: windowOf(record, now)?.free ?? Infinity
          }
          let claims = 0
          for (const run of candidates((run) => run.queue === queue && mine(run))) {
            if (left === 0 || budget.tokens <= 0) break
            const key = run.concurrencyKey
            if (!Limits.admit(budget, run, key === undefined ? 0 : keyRunning.get(key) ?? 0)) continue
            if (key !== undefined && run.status !== "running") keyRunning.set(key, (keyRunning.get(key) ?? 0) + 1)
            taken.push(run)
            claims += 1
            left -= 1
          }
          if (record.rateLimit !== undefined && claims > 0) {
            const interval = record.rateLimit.intervalMillis
            const kept = (rateClaims.get(queue) ?? []).filter((at) => at > now - interval)
            for (let i = 0; i < claims; i++) kept.push(now)
            rateClaims.set(queue, kept)
          }
        }
        if (left > 0) {
          taken.push(...candidates((run) => mine(run) && !isLimited(run.queue)).slice(0, left))
        }
        return taken.map((run) => {
          // Waking from a sleep is the run's own plan, not a recovery.
          if (run.status === "sleeping" || run.status === "waiting") run.recoveries -= 1
          take(run, owner, leaseMillis, now)
          return toRun(run)
        })
      }),

    renewLease: ({ id, leaseMillis, now, owner }) =>
      Effect.suspend(() => {
        const run = fence(id, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: id, owner }))
        run.leaseExpiresAt = now + leaseMillis
        run.updatedAt = now
        return Effect.void
      }),

    suspendRun: ({ children = [], id, now, owner, reason, signals = [], wakeAt }) =>
      Effect.suspend(() => {
        const run = fence(id, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: id, owner }))
        run.leaseOwner = undefined
        run.leaseExpiresAt = undefined
        run.updatedAt = now
        bus.publish(run.queue)
        const ended = children.find((child) => isTerminal(runs.get(child)?.status ?? "queued"))
        const arrived = signals.find((signal) => pendingSignal(id, signal.name, signal.deadline) !== undefined)
        if (ended !== undefined || arrived !== undefined) {
          run.status = "waiting"
          run.wakeAt = now
          run.waitingFor = undefined
          run.reason = ended !== undefined ? `child run ${ended} ended` : `signal ${arrived!.name} arrived`
          return Effect.succeed("woken" as const)
        }
        run.status = signals.length === 0 && children.length === 0 ? "sleeping" : "waiting"
        run.waitingFor = Waits.encode([...signals.map((signal) => signal.name), ...children.map(Waits.childKey)]) ??
          undefined
        run.wakeAt = wakeAt
        run.reason = reason
        return Effect.succeed(run.status)
      }),

    deliverSignal: ({ name, now, payload, runId }) =>
      Effect.suspend((): Effect.Effect<{ seq: number; woke: boolean }, RunNotFound | RunFinished> => {
        const run = runs.get(runId)
        if (run === undefined) return Effect.fail(new RunNotFound({ runId }))
        if (isTerminal(run.status)) return Effect.fail(new RunFinished({ runId, status: run.status }))
        const seq = signals.length + 1
        signals.push({
          runId,
          seq,
          name,
          payload: encodeJson(payload),
          sentAt: now,
          takenBy: undefined,
          takenAt: undefined
        })
        run.updatedAt = now
        const woke = run.status === "waiting" && Waits.includes(run.waitingFor, name)
        if (woke) {
          run.wakeAt = now
          run.waitingFor = undefined
          run.reason = `signal ${name} arrived`
          bus.publish(run.queue)
        }
        return Effect.succeed({ seq, woke })
      }),

    takeSignal: ({ deadline, name, now, owner, step }) =>
      Effect.suspend(() => {
        const signal = pendingSignal(step.runId, name, deadline)
        if (signal === undefined) return Effect.succeed(Option.none())
        const run = fence(step.runId, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: step.runId, owner }))
        signal.takenBy = step.stepId
        signal.takenAt = now
        run.reason = undefined
        run.updatedAt = now
        const payload = decodeJson(signal.payload)
        let ofRun = steps.get(step.runId)
        if (ofRun === undefined) steps.set(step.runId, ofRun = new Map())
        if (!ofRun.has(step.stepId)) {
          ofRun.set(step.stepId, { ...step, failed: false, result: encodeJson({ _tag: "Success", value: payload }) })
        }
        return Effect.succeed(Option.some(payload))
      }),

    requestCancel: ({ by, id, now, reason }) =>
      Effect.suspend((): Effect.Effect<{ status: RunStatus; requested: boolean }, RunNotFound> => {
        const run = runs.get(id)
        if (run === undefined) return Effect.fail(new RunNotFound({ runId: id }))
        if (isTerminal(run.status)) return Effect.succeed({ status: run.status, requested: false })
        // The run and its descendants, breadth first.
        const tree = [run]
        for (let i = 0; i < tree.length; i++) {
          for (const other of runs.values()) {
            if (other.parent?.runId === tree[i].id) tree.push(other)
          }
        }
        for (const target of tree) {
          if (isTerminal(target.status)) continue
          target.cancel ??= { at: now, by, reason }
          if (target.status === "sleeping" || target.status === "waiting") target.wakeAt = now
          target.updatedAt = now
          bus.publish(target.queue)
          bus.publish(`cancel:${target.id}`)
        }
        return Effect.succeed({ status: run.status, requested: true })
      }),

    listSignals: (runId) =>
      Effect.sync(() =>
        signals.filter((signal) => signal.runId === runId).map((signal) => ({
          ...signal,
          payload: decodeJson(signal.payload)
        }))
      ),

    releaseRun: ({ id, now, owner, reason }) =>
      Effect.suspend(() => {
        const run = fence(id, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: id, owner }))
        run.status = "queued"
        run.leaseOwner = undefined
        run.leaseExpiresAt = undefined
        run.reason = reason
        run.updatedAt = now
        bus.publish(run.queue)
        return Effect.void
      }),

    finishRun: ({ id, now, outcome, owner, step }) =>
      Effect.suspend(() => {
        const run = fence(id, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: id, owner }))
        if (step !== undefined) {
          // The last step's completion, with the end (one write in the SQL stores).
          const result = encodeJson(step.step.result)
          let ofRun = steps.get(id)
          if (ofRun === undefined) steps.set(id, ofRun = new Map())
          if (!ofRun.has(step.step.stepId)) ofRun.set(step.step.stepId, { ...step.step, result })
          if (step.attempt !== undefined) insertAttempt(toStoredAttempt(step.attempt))
        }
        finish(run, outcome, now)
        // A parent waiting for this child is due at once.
        const parent = run.parent === undefined ? undefined : runs.get(run.parent.runId)
        if (
          parent !== undefined && parent.status === "waiting" && Waits.includes(parent.waitingFor, Waits.childKey(id))
        ) {
          parent.wakeAt = now
          parent.waitingFor = undefined
          parent.reason = `child run ${id} ${outcome.status}`
          parent.updatedAt = now
          bus.publish(parent.queue)
        }
        return Effect.void
      }),

    readJournal: (runId) =>
      Effect.sync(() => ({
        steps: Array.from(steps.get(runId)?.values() ?? [])
          .sort((a, b) => a.position - b.position || compareCodePoints(a.stepId, b.stepId))
          .map(toStep),
        attempts: Array.from(attempts.get(runId)?.values() ?? [])
          .sort((a, b) => compareCodePoints(a.stepId, b.stepId) || a.attempt - b.attempt)
          .map(toAttempt)
      })),

    redriveRun: ({ by, from, id, now, reason }) =>
      Effect.suspend((): Effect.Effect<
        { run: RunRecord; redrive: RedriveRecord },
        RunNotFound | RunNotRedrivable | StepNotInJournal
      > => {
        const run = runs.get(id)
        if (run === undefined) return Effect.fail(new RunNotFound({ runId: id }))
        if (!Redrive.redrivable(run.status)) return Effect.fail(new RunNotRedrivable({ runId: id, status: run.status }))
        const done = redrive(run, from ?? "failure", by, reason, now)
        if ("unknownStep" in done) {
          const step = typeof from === "object" ? from.step : ""
          return Effect.fail(new StepNotInJournal({ runId: id, stepId: step, steps: done.unknownStep }))
        }
        return Effect.succeed({ run: toRun(run), redrive: toRedrive(done) })
      }),

    listRedrives: (runId) => Effect.sync(() => (redrives.get(runId) ?? []).map(toRedrive)),

    recordAttempt: ({ attempt, now, owner, reason }) =>
      Effect.suspend(() => {
        const run = fence(attempt.runId, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: attempt.runId, owner }))
        const stored = toStoredAttempt(attempt)
        run.reason = reason
        run.updatedAt = now
        insertAttempt(stored)
        return Effect.void
      }),

    completeStep: ({ attempt, now, owner, step }) =>
      Effect.suspend(() => {
        const run = fence(step.runId, owner)
        if (run === undefined) return Effect.fail(new LeaseLost({ runId: step.runId, owner }))
        // Encode before the first mutation, so a value JSON cannot hold leaves the store unchanged.
        const result = encodeJson(step.result)
        const stored = attempt === undefined ? undefined : toStoredAttempt(attempt)
        run.reason = undefined
        run.updatedAt = now
        let ofRun = steps.get(step.runId)
        if (ofRun === undefined) {
          ofRun = new Map()
          steps.set(step.runId, ofRun)
        }
        if (!ofRun.has(step.stepId)) {
          ofRun.set(step.stepId, { ...step, result })
        }
        if (stored !== undefined) insertAttempt(stored)
        return Effect.void
      })
  }
  return service
})

/** A fresh in-memory store per layer build. */
export const layer: Layer.Layer<Store> = Layer.effect(Store, make)

interface StoredRun {
  readonly id: string
  readonly workflow: string
  readonly version: string
  status: RunStatus
  readonly input: string | null
  output: string | null
  failure: string | null
  readonly idempotencyKey: string | undefined
  readonly queue: string
  readonly priority: number
  leaseOwner: string | undefined
  leaseExpiresAt: number | undefined
  wakeAt: number | undefined
  /** The signal a `waiting` run waits for. */
  waitingFor?: string | undefined
  cancel?: { readonly at: number; readonly by: string; readonly reason: string } | undefined
  readonly parent?: { readonly runId: string; readonly stepId: string } | undefined
  readonly correlationId?: string | undefined
  readonly concurrencyKey: string | undefined
  readonly concurrencyLimit: number | undefined
  reason: string | undefined
  recoveries: number
  redriven?: Redriven | undefined
  readonly origin: string | undefined
  readonly createdAt: number
  updatedAt: number
  startedAt: number | undefined
  finishedAt: number | undefined
}

interface StoredRedrive extends Omit<RedriveRecord, "failure"> {
  /** As JSON text. */
  readonly failure: string | null
}

interface StoredSignal {
  readonly runId: string
  readonly seq: number
  readonly name: string
  readonly payload: string | null
  readonly sentAt: number
  takenBy: string | undefined
  takenAt: number | undefined
}

interface StoredStep {
  readonly runId: string
  readonly stepId: string
  readonly name: string
  readonly kind: Execution.StepKind
  readonly position: number
  readonly result: string | null
  readonly failed: boolean
  readonly attempts: number
  readonly startedAt: number
  readonly finishedAt: number
}

interface StoredAttempt {
  readonly runId: string
  readonly stepId: string
  readonly attempt: number
  readonly startedAt: number
  readonly finishedAt: number
  readonly outcome: AttemptRow["outcome"]
  readonly error: string | null
  readonly delayMillis: number | undefined
  readonly stopReason: string | undefined
}

// What a claim does to a run, by `claimRun` or `claimNext`.
/** How a parent waiting for a child records the wait: `/` cannot be in a signal's name. */

const take = (run: StoredRun, owner: string, leaseMillis: number, now: number): void => {
  run.waitingFor = undefined
  run.status = "running"
  run.leaseOwner = owner
  run.leaseExpiresAt = now + leaseMillis
  if (run.startedAt !== undefined) run.recoveries += 1
  run.startedAt = run.startedAt ?? now
  run.reason = undefined
  run.updatedAt = now
}

const finish = (run: StoredRun, outcome: Outcome, now: number): void => {
  const output = outcome.status === "succeeded" ? encodeJson(outcome.output) : null
  const failure = outcome.status === "succeeded" ? null : encodeJson(outcome.failure)
  run.status = outcome.status
  run.output = output
  run.failure = failure
  run.finishedAt = now
  run.leaseOwner = undefined
  run.leaseExpiresAt = undefined
  run.wakeAt = undefined
  run.reason = undefined
  run.updatedAt = now
}

const toStoredAttempt = (attempt: AttemptRow): StoredAttempt => ({
  runId: attempt.runId,
  stepId: attempt.stepId,
  attempt: attempt.attempt,
  startedAt: attempt.startedAt,
  finishedAt: attempt.finishedAt,
  outcome: attempt.outcome,
  error: encodeJson(attempt.error),
  delayMillis: attempt.delayMillis,
  stopReason: attempt.stopReason
})

const toRun = ({ waitingFor: _, ...run }: StoredRun): RunRecord => ({
  ...run,
  input: decodeJson(run.input),
  output: decodeJson(run.output),
  failure: decodeJson(run.failure)
})

const toRedrive = (redrive: StoredRedrive): RedriveRecord => ({ ...redrive, failure: decodeJson(redrive.failure) })

const toStep = (step: StoredStep): StepRecord => ({ ...step, result: decodeJson(step.result) })

const toAttempt = (attempt: StoredAttempt): AttemptRow => ({
  runId: attempt.runId,
  stepId: attempt.stepId,
  attempt: attempt.attempt,
  startedAt: attempt.startedAt,
  finishedAt: attempt.finishedAt,
  outcome: attempt.outcome,
  ...(attempt.error === null ? {} : { error: decodeJson(attempt.error) }),
  ...(attempt.delayMillis === undefined ? {} : { delayMillis: attempt.delayMillis }),
  ...(attempt.stopReason === undefined ? {} : { stopReason: attempt.stopReason })
})
