/**
 * The Store on a SQL database through @effect/sql's generic `SqlClient`: SQLite (the embedded
 * default) and PostgreSQL share this code, with dialect branches where they differ. Journal writes
 * are fenced by the run's lease inside the same transaction, and a step completion is one
 * transaction of three statements.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Execution } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { SchemaTooNew } from "./Errors.js"
import { LeaseLost, RunConflict, RunNotClaimable, StoreUnavailable } from "./Errors.js"
import * as Migrations from "./Migrations.js"
import type { AttemptRow, RunRecord, RunStatus, StepRecord, StoreService } from "./Store.js"
import { terminalStatuses } from "./Store.js"

/**
 * Builds a Store on the `SqlClient` in context, after applying the missing migrations.
 *
 * JSON values (input, output, failure, step results, attempt errors) are stored as TEXT in both
 * dialects; `undefined` is SQL NULL and JSON `null` is the text `null`, so both round-trip. Times
 * are epoch milliseconds (INTEGER on SQLite, BIGINT on PostgreSQL, read back as numbers).
 */
export const make: Effect.Effect<StoreService, SchemaTooNew | StoreUnavailable, SqlClient.SqlClient> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrations.run

    const dialect = sql.onDialectOrElse({ sqlite: () => "sqlite", pg: () => "postgres", orElse: () => "sql" })

    const transaction = <A, E>(effect: Effect.Effect<A, E | SqlError>): Effect.Effect<A, E | SqlError> =>
      sql.onDialectOrElse({
        // SQLite runs in this thread: a transaction that yields to another fiber holding a second
        // connection to the same file would leave that connection's busy handler blocking the
        // thread while this one holds the write lock. Keep each transaction in one slice.
        sqlite: () => sql.withTransaction(effect).pipe(Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER)),
        orElse: () => sql.withTransaction(effect)
      })

    // The first statement of every write transaction is this UPDATE: on SQLite that takes the
    // write lock at once (so the busy handler waits instead of failing), and a worker that lost
    // its lease writes nothing, because the failure rolls the transaction back.
    const fence = (runId: string, owner: string, reason: string | null, now: number) =>
      sql<{ id: string }>`UPDATE weft_runs SET reason = ${reason}, updated_at = ${now}
        WHERE id = ${runId} AND lease_owner = ${owner} RETURNING id`.pipe(
        Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(new LeaseLost({ runId, owner })) : Effect.void)
      )

    // A repeated write of the same step or attempt is ignored (first write wins), so a write
    // retried after a commit whose acknowledgement was lost does not fail.
    const insertAttempt = (attempt: AttemptRow) =>
      Effect.suspend(() => {
        const error = encodeJson(attempt.error)
        const delay = attempt.delayMillis ?? null
        const stopReason = attempt.stopReason ?? null
        return sql`INSERT INTO weft_attempts
        (run_id, step_id, attempt, started_at, finished_at, outcome, error, delay_millis, stop_reason)
        VALUES (${attempt.runId}, ${attempt.stepId}, ${attempt.attempt}, ${attempt.startedAt}, ${attempt.finishedAt},
          ${attempt.outcome}, ${error}, ${delay}, ${stopReason})
        ON CONFLICT DO NOTHING`
      })

    const insertStep = (step: StepRecord) =>
      Effect.suspend(() => {
        const result = encodeJson(step.result)
        const failed = step.failed ? 1 : 0
        return sql`INSERT INTO weft_steps
        (run_id, step_id, name, kind, position, result, failed, attempts, started_at, finished_at)
        VALUES (${step.runId}, ${step.stepId}, ${step.name}, ${step.kind}, ${step.position}, ${result}, ${failed},
          ${step.attempts}, ${step.startedAt}, ${step.finishedAt})
        ON CONFLICT DO NOTHING`
      })

    const selectRun = (id: string) => sql<RunRow>`SELECT * FROM weft_runs WHERE id = ${id}`

    const leaseLostUnless = (runId: string, owner: string) => (rows: ReadonlyArray<unknown>) =>
      rows.length === 0 ? Effect.fail(new LeaseLost({ runId, owner })) : Effect.void

    const service: StoreService = {
      dialect,

      createRun: (run) =>
        Effect.gen(function*() {
          const claim = run.claim
          const status: RunStatus = claim === undefined ? "queued" : "running"
          const input = encodeJson(run.input)
          const key = run.idempotencyKey ?? null
          const queue = run.queue ?? defaultQueue
          const priority = run.priority ?? 0
          const owner = claim === undefined ? null : claim.owner
          const expiresAt = claim === undefined ? null : run.now + claim.leaseMillis
          const startedAt = claim === undefined ? null : run.now
          const origin = run.origin ?? null
          // Insert first and look only on conflict: the common path is one statement, and on
          // SQLite a write first means the busy handler, not SQLITE_BUSY, meets a concurrent writer.
          const inserted = yield* sql<RunRow>`INSERT INTO weft_runs
            (id, workflow, version, status, input, idempotency_key, queue, priority, lease_owner, lease_expires_at,
              recoveries, origin, created_at, updated_at, started_at)
            VALUES (${run.id}, ${run.workflow}, ${run.version}, ${status}, ${input}, ${key}, ${queue}, ${priority},
              ${owner}, ${expiresAt}, 0, ${origin}, ${run.now}, ${run.now}, ${startedAt})
            ON CONFLICT DO NOTHING
            RETURNING *`
          if (inserted.length > 0) {
            return { run: toRun(inserted[0]), created: true }
          }
          const byId = yield* selectRun(run.id)
          if (byId.length > 0) {
            const existing = byId[0]
            if (existing.workflow !== run.workflow) {
              return yield* Effect.fail(
                new RunConflict({ runId: run.id, detail: `it is a run of workflow "${existing.workflow}"` })
              )
            }
            if (canonicalJson(decodeJson(existing.input)) !== canonicalJson(run.input)) {
              return yield* Effect.fail(new RunConflict({ runId: run.id, detail: "it was started with another input" }))
            }
            return { run: toRun(existing), created: false }
          }
          if (run.idempotencyKey !== undefined) {
            const byKey = yield* sql<RunRow>`SELECT * FROM weft_runs
              WHERE workflow = ${run.workflow} AND idempotency_key = ${run.idempotencyKey}`
            if (byKey.length > 0) {
              return { run: toRun(byKey[0]), created: false }
            }
          }
          return yield* Effect.fail(
            new StoreUnavailable({
              operation: "createRun",
              detail: `run ${run.id} conflicted with a recorded run that could not be read back`
            })
          )
        }).pipe(mapErrors("createRun")),

      getRun: (id) =>
        selectRun(id).pipe(
          Effect.map((rows) => rows.length === 0 ? Option.none() : Option.some(toRun(rows[0]))),
          mapErrors("getRun")
        ),

      listRuns: (filter) => {
        const conditions = [
          ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`]),
          ...(filter.workflow === undefined ? [] : [sql`workflow = ${filter.workflow}`]),
          ...(filter.since === undefined ? [] : [sql`created_at >= ${filter.since}`])
        ]
        const limit = filter.limit === undefined ? sql.literal("") : sql`LIMIT ${normalizeLimit(filter.limit)}`
        return sql<RunRow>`SELECT * FROM weft_runs WHERE ${sql.and(conditions)}
          ORDER BY created_at DESC, id DESC ${limit}`.pipe(
          Effect.map((rows) => rows.map(toRun)),
          mapErrors("listRuns")
        )
      },

      claimRun: ({ force, id, leaseMillis, now, owner }) =>
        Effect.gen(function*() {
          const free = force === true
            ? sql.literal("")
            : sql`AND (lease_owner IS NULL OR lease_owner = ${owner} OR lease_expires_at <= ${now})`
          const claimed = yield* sql<RunRow>`UPDATE weft_runs
            SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
              recoveries = recoveries + CASE WHEN started_at IS NULL THEN 0 ELSE 1 END,
              started_at = COALESCE(started_at, ${now}), reason = NULL, updated_at = ${now}
            WHERE id = ${id} AND status NOT IN ${sql.in(terminalStatuses)} ${free}
            RETURNING *`
          if (claimed.length > 0) {
            return toRun(claimed[0])
          }
          // Only to explain the refusal: the UPDATE above alone decided it.
          const rows = yield* selectRun(id)
          return yield* Effect.fail(notClaimable(id, rows.length === 0 ? undefined : toRun(rows[0])))
        }).pipe(mapErrors("claimRun")),

      renewLease: ({ id, leaseMillis, now, owner }) =>
        sql`UPDATE weft_runs SET lease_expires_at = ${now + leaseMillis}, updated_at = ${now}
          WHERE id = ${id} AND lease_owner = ${owner} RETURNING id`.pipe(
          Effect.flatMap(leaseLostUnless(id, owner)),
          mapErrors("renewLease")
        ),

      releaseRun: ({ id, now, owner, reason }) =>
        sql`UPDATE weft_runs
          SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, reason = ${reason}, updated_at = ${now}
          WHERE id = ${id} AND lease_owner = ${owner} RETURNING id`.pipe(
          Effect.flatMap(leaseLostUnless(id, owner)),
          mapErrors("releaseRun")
        ),

      finishRun: ({ id, now, outcome, owner }) =>
        Effect.suspend(() => {
          const output = outcome.status === "succeeded" ? encodeJson(outcome.output) : null
          const failure = outcome.status === "succeeded" ? null : encodeJson(outcome.failure)
          return sql`UPDATE weft_runs
            SET status = ${outcome.status}, output = ${output}, failure = ${failure}, finished_at = ${now},
              lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, reason = NULL, updated_at = ${now}
            WHERE id = ${id} AND lease_owner = ${owner} RETURNING id`
        }).pipe(
          Effect.flatMap(leaseLostUnless(id, owner)),
          mapErrors("finishRun")
        ),

      // Two reads without a snapshot: the journal is read by the run's owner, and every other
      // writer is fenced out, so nothing can land between them.
      readJournal: (runId) =>
        Effect.all({
          steps: sql<StepRow>`SELECT * FROM weft_steps WHERE run_id = ${runId} ORDER BY position, step_id`.pipe(
            Effect.map((rows) => rows.map(toStep))
          ),
          attempts: sql<AttemptRowRow>`SELECT * FROM weft_attempts WHERE run_id = ${runId}
            ORDER BY step_id, attempt`.pipe(Effect.map((rows) => rows.map(toAttempt)))
        }).pipe(mapErrors("readJournal")),

      recordAttempt: ({ attempt, now, owner, reason }) =>
        transaction(
          fence(attempt.runId, owner, reason, now).pipe(Effect.zipRight(insertAttempt(attempt)))
        ).pipe(Effect.asVoid, mapErrors("recordAttempt")),

      // The step's completion clears the run's reason: a `backing off ...` left by recordAttempt
      // would otherwise describe a run that is progressing.
      completeStep: ({ attempt, now, owner, step }) =>
        transaction(
          fence(step.runId, owner, null, now).pipe(
            Effect.zipRight(insertStep(step)),
            Effect.zipRight(attempt === undefined ? Effect.void : insertAttempt(attempt))
          )
        ).pipe(Effect.asVoid, mapErrors("completeStep"))
    }
    return service
  }
)

/** The queue of a run created without one. */
export const defaultQueue = "default"

interface RunRow {
  readonly id: string
  readonly workflow: string
  readonly version: string
  readonly status: string
  readonly input: string | null
  readonly output: string | null
  readonly failure: string | null
  readonly idempotency_key: string | null
  readonly queue: string
  readonly priority: number | string
  readonly lease_owner: string | null
  readonly lease_expires_at: number | string | null
  readonly wake_at: number | string | null
  readonly reason: string | null
  readonly recoveries: number | string
  readonly origin: string | null
  readonly created_at: number | string
  readonly updated_at: number | string
  readonly started_at: number | string | null
  readonly finished_at: number | string | null
}

interface StepRow {
  readonly run_id: string
  readonly step_id: string
  readonly name: string
  readonly kind: string
  readonly position: number | string
  readonly result: string | null
  readonly failed: number | string | boolean
  readonly attempts: number | string
  readonly started_at: number | string
  readonly finished_at: number | string
}

interface AttemptRowRow {
  readonly run_id: string
  readonly step_id: string
  readonly attempt: number | string
  readonly started_at: number | string
  readonly finished_at: number | string
  readonly outcome: string
  readonly error: string | null
  readonly delay_millis: number | string | null
  readonly stop_reason: string | null
}

// node-postgres returns BIGINT as a string (it may exceed 2^53); epoch milliseconds never do.
const optionalNumber = (value: number | string | null): number | undefined => value === null ? undefined : Number(value)

const toRun = (row: RunRow): RunRecord => ({
  id: row.id,
  workflow: row.workflow,
  version: row.version,
  status: row.status as RunStatus,
  input: decodeJson(row.input),
  output: decodeJson(row.output),
  failure: decodeJson(row.failure),
  idempotencyKey: row.idempotency_key ?? undefined,
  queue: row.queue,
  priority: Number(row.priority),
  leaseOwner: row.lease_owner ?? undefined,
  leaseExpiresAt: optionalNumber(row.lease_expires_at),
  wakeAt: optionalNumber(row.wake_at),
  reason: row.reason ?? undefined,
  recoveries: Number(row.recoveries),
  origin: row.origin ?? undefined,
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
  startedAt: optionalNumber(row.started_at),
  finishedAt: optionalNumber(row.finished_at)
})

const toStep = (row: StepRow): StepRecord => ({
  runId: row.run_id,
  stepId: row.step_id,
  name: row.name,
  kind: row.kind as Execution.StepKind,
  position: Number(row.position),
  result: decodeJson(row.result),
  failed: Number(row.failed) === 1 || row.failed === true,
  attempts: Number(row.attempts),
  startedAt: Number(row.started_at),
  finishedAt: Number(row.finished_at)
})

const toAttempt = (row: AttemptRowRow): AttemptRow => ({
  runId: row.run_id,
  stepId: row.step_id,
  attempt: Number(row.attempt),
  startedAt: Number(row.started_at),
  finishedAt: Number(row.finished_at),
  outcome: row.outcome as AttemptRow["outcome"],
  ...(row.error === null ? {} : { error: decodeJson(row.error) }),
  ...(row.delay_millis === null ? {} : { delayMillis: Number(row.delay_millis) }),
  ...(row.stop_reason === null ? {} : { stopReason: row.stop_reason })
})

const notClaimable = (runId: string, run: RunRecord | undefined): RunNotClaimable => {
  if (run === undefined) {
    return new RunNotClaimable({ runId, status: "unknown", detail: "no run has this id" })
  }
  if (terminalStatuses.includes(run.status)) {
    return new RunNotClaimable({ runId, status: run.status, detail: `the run has ${run.status}` })
  }
  const until = run.leaseExpiresAt === undefined ? "" : ` until ${new Date(run.leaseExpiresAt).toISOString()}`
  return new RunNotClaimable({
    runId,
    status: run.status,
    detail: `worker ${run.leaseOwner ?? "unknown"} holds its lease${until}`
  })
}

const normalizeLimit = (limit: number): number => Math.max(0, Math.floor(limit))

const encodeJson = (value: unknown): string | null => value === undefined ? null : JSON.stringify(value)

const decodeJson = (text: string | null): unknown => text === null ? undefined : JSON.parse(text)

// JSON with object keys sorted, so that two encodings of the same value compare equal whatever
// the order their keys were written in.
const canonicalJson = (value: unknown): string | undefined =>
  JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === "object" && inner !== null && !Array.isArray(inner)
      ? Object.fromEntries(Object.keys(inner).sort().map((key) => [key, (inner as Record<string, unknown>)[key]]))
      : inner)

const mapErrors = Migrations.mapSqlErrors
