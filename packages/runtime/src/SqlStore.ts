/**
 * The Store on a SQL database through @effect/sql's generic `SqlClient`: SQLite (the embedded
 * default) and PostgreSQL share this code, with dialect branches where they differ. The writes of a
 * running run are fenced by its lease and group-committed: those that arrive while a commit is in
 * flight share the next transaction, each with its own fence and its own result.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import type { Execution } from "@weft/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { SchemaTooNew } from "./Errors.js"
import {
  LeaseLost,
  RunConflict,
  RunFinished,
  RunNotClaimable,
  RunNotFound,
  RunNotRedrivable,
  StepNotInJournal,
  StoreUnavailable
} from "./Errors.js"
import * as FreshRuns from "./internal/FreshRuns.js"
import * as GroupCommit from "./internal/GroupCommit.js"
import * as ImpliedAttempts from "./internal/impliedAttempts.js"
import { canonicalJson, decodeJson, encodeJson } from "./internal/json.js"
import { claimOrder } from "./internal/order.js"
import * as PgListener from "./internal/PgListener.js"
import * as PgPrepared from "./internal/PgPrepared.js"
import * as Redrive from "./internal/redrive.js"
import { retryLazily } from "./internal/retryLazily.js"
import * as Waits from "./internal/waits.js"
import * as WakeBus from "./internal/WakeBus.js"
import * as Limits from "./Limits.js"
import * as Migrations from "./Migrations.js"
import type {
  AttemptRow,
  QueueRecord,
  RedrivePoint,
  RedriveRecord,
  RunRecord,
  RunStatus,
  SignalRecord,
  StepRecord,
  StoreService
} from "./Store.js"
import { terminalStatuses } from "./Store.js"

/** How the SQL store commits. */
export interface Options {
  /**
   * The most journal writes committed in one transaction. Default 256: a batch's step and
   * attempt rows then fit a multi-row INSERT well within both dialects' parameter limits.
   */
  readonly maxBatch?: number | undefined
  /**
   * Wake-up notices from other processes (PostgreSQL's LISTEN, see `Store.listen`), heard beside
   * this process's own. Without it, `listen` and `wakeups` carry only this process's writes.
   */
  readonly sharedWakeups?:
    | ((listener: (notice: string) => void) => Effect.Effect<never, StoreUnavailable>)
    | undefined
  /**
   * PostgreSQL only: how many group-commit writers commit concurrently, each on a connection of the
   * pool. Writes are spread over them by run (the writes of one run always share a writer, and
   * stay in order). Default 1; SQLite always has one (it has one writer at a time anyway).
   */
  readonly writers?: number | undefined
  /** For tests: told when a batch starts, with its number of writes. */
  readonly onBatch?: ((writes: number) => void) | undefined
  /**
   * PostgreSQL: runs a compiled statement on a pooled connection of its own (autocommit), without
   * the client's per-statement work (a tracing span, a scope, the connection's acquisition as an
   * effect): ~0.3 ms of the worker's CPU per statement. The store uses it for its two statements
   * that run most and never inside a transaction: the claim and the combined journal write.
   * Default: the `SqlClient`'s own execution.
   */
  readonly direct?:
    | ((sql: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<any>, SqlError>)
    | undefined
}

/**
 * Builds a Store on the `SqlClient` in context, after applying the missing migrations.
 *
 * JSON values (input, output, failure, step results, attempt errors) are stored as TEXT in both
 * dialects; `undefined` is SQL NULL and JSON `null` is the text `null`, so both round-trip. Times
 * are epoch milliseconds (INTEGER on SQLite, BIGINT on PostgreSQL, read back as numbers).
 *
 * Every write (`createRun`, `claimRun`, `claimNext` but PostgreSQL's claim of queues without limits,
 * which is one autocommit statement, and the writes of a running run: `completeStep`,
 * `recordAttempt`, `renewLease`, `releaseRun`, `finishRun`) goes through one writer fiber owned by
 * the current scope, which commits together, in one transaction, the writes that queued while its
 * previous commit was in flight; reads go straight to the client. When the scope closes, the
 * writes already queued are committed; later ones fail with StoreUnavailable.
 *
 * On PostgreSQL (see `Options.writers`) several writers may commit concurrently, each run's writes
 * always through the same one; a batch of step completions, attempts and run ends is one statement
 * (no BEGIN and COMMIT around it), the claim is one statement, and a start sends its NOTIFY from
 * its own INSERT; the frequent statements are prepared once per connection (PgPrepared).
 */
export const make: Effect.Effect<
  StoreService,
  SchemaTooNew | StoreUnavailable,
  SqlClient.SqlClient | Scope.Scope
> = Effect.suspend(() => makeWith({}))

/** `make` with options. */
export const makeWith = (
  options: Options
): Effect.Effect<StoreService, SchemaTooNew | StoreUnavailable, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrations.run

    const dialect = sql.onDialectOrElse({ sqlite: () => "sqlite", pg: () => "postgres", orElse: () => "sql" })
    const writers = dialect === "postgres" ? Math.max(1, Math.floor(options.writers ?? 1)) : 1
    const bus = WakeBus.make()
    // The start of a statement run often and of few shapes: PostgreSQL prepares it once per
    // connection (see PgPrepared) instead of parsing and planning it on every execution.
    const hot = dialect === "postgres" ? sql.literal(PgPrepared.marker) : sql.literal("")
    // A run's `waiting_for` lists `key` among several (see internal/waits.ts).
    const listedIn = (key: string) =>
      dialect === "postgres"
        ? sql`strpos(waiting_for, ${Waits.listed(key)}) > 0`
        : sql`instr(waiting_for, ${Waits.listed(key)}) > 0`
    // On PostgreSQL a batch that made runs claimable tells every listening process, in the batch's
    // own transaction: the notice is delivered at commit, never before the rows are visible.
    const notify = sql.onDialectOrElse({
      pg: () => (queue: string) => sql`SELECT pg_notify(${PgListener.channel}, ${queue})`,
      orElse: () => undefined
    })

    // A statement that never runs inside a transaction, through `options.direct` when given.
    const autocommit = <A extends object>(
      statement: Statement.Statement<A>
    ): Effect.Effect<ReadonlyArray<A>, SqlError> => {
      const direct = options.direct
      if (direct === undefined) return statement
      return Effect.suspend(() => {
        const [text, params] = statement.compile()
        return direct(text, params) as Effect.Effect<ReadonlyArray<A>, SqlError>
      })
    }

    const transaction = <A, E>(effect: Effect.Effect<A, E | SqlError>): Effect.Effect<A, E | SqlError> =>
      sql.onDialectOrElse({
        // SQLite runs in this thread: a transaction that yields to another fiber holding a second
        // connection to the same file would leave that connection's busy handler blocking the
        // thread while this one holds the write lock. Keep each transaction in one slice.
        sqlite: () => sql.withTransaction(effect).pipe(Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER)),
        orElse: () => sql.withTransaction(effect)
      })

    // The fence of a step's completion or attempt: it touches the run only while `owner` holds
    // its lease, and returns its id and owner when it did.
    const fence = (runId: string, owner: string, reason: string | null, now: number) =>
      sql<FencedRow>`${hot}UPDATE weft_runs SET reason = ${reason}, updated_at = ${now}
        WHERE id = ${runId} AND lease_owner = ${owner} RETURNING id, lease_owner`

    // The fences of many writes in one statement, each (run, owner) at most once, so that no run
    // row meets two source rows. The casts give PostgreSQL the types of the VALUES columns
    // (it would read untyped parameters as text) and change nothing on SQLite.
    const fenceMany = (fences: ReadonlyArray<FenceValues>) =>
      sql<FencedRow>`UPDATE weft_runs SET reason = v.column3, updated_at = v.column4
        FROM (VALUES ${
        sql.csv(fences.map((f) =>
          sql`(CAST(${f.runId} AS TEXT), CAST(${f.owner} AS TEXT), CAST(${f.reason} AS TEXT), CAST(${f.now} AS BIGINT))`
        ))
      }) AS v
        WHERE weft_runs.id = v.column1 AND weft_runs.lease_owner = v.column2
        RETURNING weft_runs.id, weft_runs.lease_owner`

    // The fences of consecutive step completions and attempts, which only set the run's reason
    // and time: applying only the last of several for one (run, owner) leaves the run as applying
    // them in order would, and gives each the same answer, since none changes the lease.
    const fenceSegment = (writes: ReadonlyArray<JournalWrite>) =>
      Effect.suspend(() => {
        const last = new Map<string, FenceValues>()
        for (const write of writes) {
          if (write.touch._tag !== "Fence") continue
          last.set(fenceKey(write.runId, write.owner), {
            runId: write.runId,
            owner: write.owner,
            reason: write.touch.reason,
            now: write.touch.now
          })
        }
        const fences = [...last.values()]
        return Effect.forEach(
          powerOfTwoChunks(fences),
          (chunk) =>
            chunk.length === 1 ? fence(chunk[0].runId, chunk[0].owner, chunk[0].reason, chunk[0].now) : fenceMany(chunk)
        ).pipe(
          Effect.map((results) => new Set(results.flat().map((row) => fenceKey(row.id, row.lease_owner))))
        )
      })

    // A repeated write of the same step or attempt is ignored (first write wins), so a write
    // retried after a commit whose acknowledgement was lost does not fail, and two writes of one
    // step in the same batch keep the earlier. Rows go in power-of-two chunks (largest first):
    // one statement per chunk, and at most nine statement shapes per table for the statement
    // cache, where a chunk per batch size would have 256.
    const insertRows = (table: "weft_steps" | "weft_attempts", rows: ReadonlyArray<StepValues | AttemptValues>) =>
      rows.length === 0
        ? Effect.void
        : rows.length === 1
        ? insertChunk(table, rows)
        : Effect.forEach(powerOfTwoChunks(rows), (chunk) => insertChunk(table, chunk), { discard: true })

    const insertChunk = (table: "weft_steps" | "weft_attempts", rows: ReadonlyArray<StepValues | AttemptValues>) =>
      sql`INSERT INTO ${sql(table)} ${sql.insert(rows)} ON CONFLICT DO NOTHING`

    // PostgreSQL: consecutive fences (step completions, attempts) and run ends of distinct runs in
    // ONE statement, without a transaction of its own: each fence and each end is a fenced UPDATE in
    // a data-modifying CTE, and the step and attempt rows are inserted only for the fences that
    // matched (the CTEs share one snapshot, and the INSERTs read the fences' RETURNING). A
    // statement is atomic, so a batch made of one such segment is committed by that statement
    // alone; each write still gets its own answer from the rows returned. The values travel as
    // JSON, typed by `json_to_recordset`: one statement text for every batch size. The planner
    // takes such a list for 100 rows, so with a table of a few ten thousand runs it joined by reading
    // the whole table (a hash join, ~8 ms a batch); `id = ANY(ARRAY(...))` makes the runs' rows
    // come from the primary key, whatever the statistics say.
    // The statement of `combined`. Its text depends on nothing but the dialect: on the direct path it
    // is compiled once, and each batch only sends its four JSON values.
    const combinedStatement = (fv: string, xv: string, sv: string, av: string) =>
      sql<CombinedRow>`${hot}WITH
          fv AS (SELECT * FROM json_to_recordset(${fv}::json) AS x(run_id TEXT, owner TEXT, reason TEXT, now BIGINT)),
          fenced AS (UPDATE weft_runs SET reason = fv.reason, updated_at = fv.now FROM fv
            WHERE weft_runs.id = fv.run_id AND weft_runs.id = ANY(ARRAY(SELECT run_id FROM fv))
              AND weft_runs.lease_owner = fv.owner
            RETURNING weft_runs.id, weft_runs.lease_owner),
          xv AS (SELECT * FROM json_to_recordset(${xv}::json)
            AS x(run_id TEXT, owner TEXT, status TEXT, output TEXT, failure TEXT, now BIGINT)),
          finished AS (UPDATE weft_runs SET status = xv.status, output = xv.output, failure = xv.failure,
              finished_at = xv.now, lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, reason = NULL,
              updated_at = xv.now
            FROM xv WHERE weft_runs.id = xv.run_id AND weft_runs.id = ANY(ARRAY(SELECT run_id FROM xv))
              AND weft_runs.lease_owner = xv.owner
            RETURNING weft_runs.id, xv.owner AS lease_owner, weft_runs.parent_run_id, xv.status, xv.now),
          woke AS (UPDATE weft_runs SET wake_at = finished.now, waiting_for = NULL,
              reason = 'child run ' || finished.id || ' ' || finished.status, updated_at = finished.now
            FROM finished
            WHERE weft_runs.id = finished.parent_run_id AND weft_runs.status = 'waiting'
              AND (weft_runs.waiting_for = 'child/' || finished.id
                OR strpos(weft_runs.waiting_for, chr(10) || 'child/' || finished.id || chr(10)) > 0)
            RETURNING weft_runs.queue),
          steps AS (INSERT INTO weft_steps
              (run_id, step_id, name, kind, position, result, failed, attempts, started_at, finished_at,
                attempt_implied)
            SELECT s.run_id, s.step_id, s.name, s.kind, s.position, s.result, s.failed, s.attempts, s.started_at,
              s.finished_at, s.attempt_implied
            FROM json_to_recordset(${sv}::json) AS s(owner TEXT, run_id TEXT, step_id TEXT,
              name TEXT, kind TEXT, position INTEGER, result TEXT, failed SMALLINT, attempts INTEGER,
              started_at BIGINT, finished_at BIGINT, attempt_implied SMALLINT)
            WHERE EXISTS (SELECT 1 FROM fenced WHERE fenced.id = s.run_id AND fenced.lease_owner = s.owner)
              OR EXISTS (SELECT 1 FROM finished WHERE finished.id = s.run_id AND finished.lease_owner = s.owner)
            ON CONFLICT DO NOTHING),
          attempts AS (INSERT INTO weft_attempts
              (run_id, step_id, attempt, started_at, finished_at, outcome, error, delay_millis, stop_reason)
            SELECT a.run_id, a.step_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.error, a.delay_millis,
              a.stop_reason
            FROM json_to_recordset(${av}::json) AS a(owner TEXT, run_id TEXT, step_id TEXT,
              attempt INTEGER, started_at BIGINT, finished_at BIGINT, outcome TEXT, error TEXT,
              delay_millis BIGINT, stop_reason TEXT)
            WHERE EXISTS (SELECT 1 FROM fenced WHERE fenced.id = a.run_id AND fenced.lease_owner = a.owner)
              OR EXISTS (SELECT 1 FROM finished WHERE finished.id = a.run_id AND finished.lease_owner = a.owner)
            ON CONFLICT DO NOTHING)
          SELECT id, lease_owner, FALSE AS finished, CAST(NULL AS TEXT) AS queue FROM fenced
          UNION ALL SELECT id, lease_owner, TRUE AS finished, CAST(NULL AS TEXT) FROM finished
          UNION ALL SELECT CAST(NULL AS TEXT), CAST(NULL AS TEXT), FALSE, queue FROM woke`
    let combinedText: string | undefined
    // The claim's statement text on PostgreSQL, by how many queues and workflows it names.
    const claimTexts = new Map<string, string>()

    const combined = (segment: ReadonlyArray<JournalWrite>, alone: boolean) =>
      Effect.suspend(() => {
        // Rows built field by field (one shape each, serialized on V8's fast path); a write's key
        // is its kind and its fence key.
        const fences = new Map<string, { run_id: string; owner: string; reason: string | null; now: number }>()
        const finishes: Array<CombinedFinish> = []
        const steps: Array<CombinedStep> = []
        const attempts: Array<CombinedAttempt> = []
        for (const write of segment) {
          if (write.touch._tag === "Fence") {
            fences.set(fenceKey(write.runId, write.owner), {
              run_id: write.runId,
              owner: write.owner,
              reason: write.touch.reason,
              now: write.touch.now
            })
          } else if (write.finish !== undefined) {
            const finish = write.finish
            finishes.push({
              status: finish.status,
              output: finish.output,
              failure: finish.failure,
              now: finish.now,
              run_id: write.runId,
              owner: write.owner
            })
          } else {
            continue
          }
          if (write.step !== undefined) steps.push(combinedStep(write.step, write.owner))
          if (write.attempt !== undefined) attempts.push(combinedAttempt(write.attempt, write.owner))
        }
        const fv = JSON.stringify([...fences.values()])
        const xv = JSON.stringify(finishes)
        const sv = JSON.stringify(steps)
        const av = JSON.stringify(attempts)
        const direct = options.direct
        // A batch that is this statement alone commits with it (no transaction around it).
        const rows: Effect.Effect<ReadonlyArray<CombinedRow>, SqlError> = alone && direct !== undefined
          ? direct(combinedText ??= combinedStatement("", "", "", "").compile()[0], [fv, xv, sv, av]) as Effect.Effect<
            ReadonlyArray<CombinedRow>,
            SqlError
          >
          : combinedStatement(fv, xv, sv, av)
        return Effect.map(rows, (rows) => {
          const matched = new Set<string>()
          // A parent woken by its child's end (the child's row first, then the parent's, as in
          // the two-statement path): its queue is told.
          const woken: Array<string> = []
          for (const row of rows) {
            if (row.queue !== null && row.queue !== undefined) woken.push(row.queue)
            else matched.add(`${row.finished ? "x" : "f"}${fenceKey(row.id, row.lease_owner)}`)
          }
          return {
            woken,
            answers: segment.map((write) =>
              matched.has(`${write.touch._tag === "Fence" ? "f" : "x"}${fenceKey(write.runId, write.owner)}`)
                ? [write.runId]
                : []
            )
          }
        })
      })

    // The end of the segment of combinable writes that starts at `start`: a run ended in it is
    // neither ended again nor fenced in it (one statement cannot change a row twice).
    const combinableEnd = (batch: ReadonlyArray<JournalWrite>, start: number): number => {
      const fencedRuns = new Set<string>()
      const endedRuns = new Set<string>()
      let end = start
      for (; end < batch.length; end++) {
        const write = batch[end]
        if (write.touch._tag === "Fence") {
          if (endedRuns.has(write.runId)) break
          fencedRuns.add(write.runId)
        } else if (write.finish !== undefined) {
          if (endedRuns.has(write.runId) || fencedRuns.has(write.runId)) break
          endedRuns.add(write.runId)
        } else {
          break
        }
      }
      return end
    }

    // One batch in arrival order: the runs' statements first, so that each write sees the runs
    // as the writes before it left them (consecutive fences in one statement, any other statement
    // alone); then the step and attempt rows of the writes whose statement matched, in multi-row
    // INSERTs. A fence that matched no row changed nothing, so skipping that write's rows is all
    // its LeaseLost needs: the others still commit. Every first statement writes, which on SQLite
    // takes the write lock at once (the busy handler waits for another connection instead of
    // failing with SQLITE_BUSY).
    const writeBatch = (batch: ReadonlyArray<JournalWrite>, alone: boolean) =>
      dialect === "postgres" && combinableEnd(batch, 0) === batch.length
        ? writeCombined(batch)
        : writeInSegments(batch, alone)

    // The usual batch on PostgreSQL (step completions and run ends only): one combined statement,
    // without the generator of the general path.
    const writeCombined = (batch: ReadonlyArray<JournalWrite>) =>
      Effect.flatMap(combined(batch, true), ({ answers, woken: parents }) => {
        const results: Array<Exit.Exit<ReadonlyArray<unknown>, StoreUnavailable>> = answers.map((rows) =>
          Exit.succeed(rows)
        )
        const woken = new Set(parents)
        const done = { results, woken }
        return notify === undefined || woken.size === 0
          ? Effect.succeed(done)
          : Effect.as(Effect.forEach(woken, notify, { discard: true }), done)
      })

    const writeInSegments = (batch: ReadonlyArray<JournalWrite>, alone: boolean) =>
      Effect.gen(function*() {
        const results: Array<Exit.Exit<ReadonlyArray<unknown>, StoreUnavailable>> = []
        const steps: Array<StepValues> = []
        const attempts: Array<AttemptValues> = []
        const woken = new Set<string>()
        // Queues whose NOTIFY a write's own statement sent (in this transaction).
        const notified = new Set<string>()
        const settle = (write: JournalWrite, rows: ReadonlyArray<unknown>) => {
          if (rows.length > 0) {
            if (write.step !== undefined) steps.push(write.step)
            if (write.attempt !== undefined) attempts.push(write.attempt)
            const queue = (rows[0] as { readonly queue?: string | null }).queue
            if (write.wakes === true && typeof queue === "string") {
              woken.add(queue)
              if (write.notifies === true) notified.add(queue)
            }
          }
          results.push(Exit.succeed(rows))
        }
        let start = 0
        while (start < batch.length) {
          if (dialect === "postgres") {
            const end = combinableEnd(batch, start)
            if (end > start) {
              const { answers, woken: parents } = yield* combined(batch.slice(start, end), false)
              for (const rows of answers) results.push(Exit.succeed(rows))
              for (const queue of parents) woken.add(queue)
              start = end
              continue
            }
          }
          const touch = batch[start].touch
          if (touch._tag === "Statement") {
            // A write alone whose touch is one statement (a start, usually) commits with it.
            settle(
              batch[start],
              yield* (alone && Statement.isFragment(touch.statement)
                ? autocommit(touch.statement as Statement.Statement<object>)
                : touch.statement)
            )
            start += 1
            continue
          }
          let end = start + 1
          while (end < batch.length && batch[end].touch._tag === "Fence") end += 1
          if (end === start + 1) {
            const write = batch[start]
            settle(write, yield* fence(write.runId, write.owner, touch.reason, touch.now))
            start = end
            continue
          }
          const segment = batch.slice(start, end)
          const matched = yield* fenceSegment(segment)
          for (const write of segment) {
            const key = fenceKey(write.runId, write.owner)
            settle(write, matched.has(key) ? [key] : [])
          }
          start = end
        }
        yield* insertRows("weft_steps", steps)
        yield* insertRows("weft_attempts", attempts)
        if (notify !== undefined) {
          yield* Effect.forEach(woken, (queue) => notified.has(queue) ? Effect.void : notify(queue), {
            discard: true
          })
        }
        return { results, woken }
      })

    // A write alone with no rows is one statement: it needs no BEGIN and COMMIT around it. A SQL
    // error (a failed COMMIT is a defect in @effect/sql) rolls the whole batch back and fails
    // each of its writes with StoreUnavailable; nothing of the batch is written.
    // On PostgreSQL a batch that is one segment of combinable writes is one statement too. Two
    // concurrent batches (several writers, or other processes) may deadlock on rows they both
    // change, and the server then aborts one: that batch was rolled back as a whole (or was one
    // statement), and is run again.
    const commit = (batch: ReadonlyArray<JournalWrite>) => {
      options.onBatch?.(batch.length)
      const alone = (batch.length === 1 && batch[0].step === undefined && batch[0].attempt === undefined &&
        batch[0].atomic !== true) || (dialect === "postgres" && combinableEnd(batch, 0) === batch.length)
      // A batch of several writes refused for good cannot say which write was refused: none is
      // marked permanent, so each is retried (and the refused one, alone, fails for good then).
      const unavailable = (error: SqlError) =>
        Effect.succeed(batch.map((write) => {
          const failed = storeUnavailable(write.operation, error)
          return Exit.fail(
            batch.length > 1 && failed.permanent === true
              ? new StoreUnavailable({ operation: failed.operation, detail: failed.detail, cause: failed.cause })
              : failed
          )
        }))
      const once = alone ? writeBatch(batch, true) : transaction(writeBatch(batch, false))
      return retryLazily(once, { schedule: Schedule.recurs(3), while: isDeadlock }).pipe(
        // Committed: wake this process's workers at once, without the round trip through the server.
        Effect.map(({ results, woken }) => {
          for (const queue of woken) bus.publish(queue)
          return results
        }),
        Effect.catchAll(unavailable),
        Effect.catchSomeDefect((defect) =>
          Migrations.isSqlError(defect) ? Option.some(unavailable(defect)) : Option.none()
        )
      )
    }

    const journal = yield* GroupCommit.make<JournalWrite, ReadonlyArray<unknown>, StoreUnavailable>({
      commit,
      closed: (write) =>
        new StoreUnavailable({
          operation: write.operation,
          detail: "the store was closed before this write was queued"
        }),
      maxBatch: options.maxBatch,
      lanes: writers,
      laneOf: (write) => laneHash(write.runId)
    })

    // A fenced write: its statement returns no row, and it fails with LeaseLost, when `owner`
    // does not hold the run's lease.
    const fenced = (entry: JournalWrite) =>
      Effect.flatMap(
        journal.submit(entry),
        (rows) =>
          rows.length === 0 ? Effect.fail(new LeaseLost({ runId: entry.runId, owner: entry.owner })) : Effect.void
      )

    // The queues recorded in weft_queues, as this process last read them: a claim of a queue found
    // here with limits or keys goes through `claimLimited`, which reads the limits themselves under
    // the queue's lock; any other queue keeps the one-statement claim. Read again at most once a
    // second (`queueRefreshMillis`), so that a queue another process declared is honoured within
    // a second; this process's own declarations and keyed starts update it at once.
    let recorded = new Map<string, QueueRecord>()
    let recordedAt = Number.NEGATIVE_INFINITY
    const readQueues = Effect.map(sql<QueueRow>`SELECT * FROM weft_queues`, (rows) => {
      recorded = new Map(rows.map((row) => [row.name, toQueue(row)]))
      return recorded
    })
    const recordedQueues = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (now < recordedAt + queueRefreshMillis && now >= recordedAt) return Effect.succeed(recorded)
      recordedAt = now
      return readQueues
    })

    // The claims of one limited queue, inside claimNext's transaction, after its row was locked:
    // every limited claim of the queue is serialized from there to the commit, so the running runs
    // it counts cannot change under it (a run ends or suspends without the lock, which only frees
    // slots). Candidates come in claim order (due sleepers, then runnable runs), a page at a time,
    // each page without the runs whose key is full (counted with the runs this claim took already:
    // they are `running` in this transaction), and `Limits.admit` decides run by run.
    const claimLimited = (
      { leaseMillis, now, owner, queue, record, take, workflows }: {
        readonly leaseMillis: number
        readonly now: number
        readonly owner: string
        readonly queue: string
        readonly record: QueueRecord | undefined
        readonly workflows: ReadonlyArray<string> | undefined
        readonly take: number
      }
    ): Effect.Effect<ReadonlyArray<RunRecord>, SqlError> =>
      Effect.gen(function*() {
        const rate = record?.rateLimit
        const running = record?.concurrency === undefined ? 0 : Number(
          (yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM weft_runs
            WHERE queue = ${queue} AND status = 'running'`)[0].n
        )
        const window = rate === undefined ? undefined : Limits.rateWindow(
          rate,
          (yield* sql<{ readonly at: number | string; readonly claims: number | string }>`SELECT at, claims
            FROM weft_queue_claims WHERE queue = ${queue} AND at > ${now - rate.intervalMillis}`).flatMap((row) =>
            Array.from({ length: Number(row.claims) }, () => Number(row.at))
          ),
          now
        )
        const budget: Limits.Budget = {
          slots: record?.concurrency === undefined ? Infinity : record.concurrency - running,
          tokens: window?.free ?? Infinity
        }
        const known = workflows === undefined ? sql.literal("") : sql`AND c.workflow IN ${sql.in(workflows)}`
        const lock = sql.onDialectOrElse({
          pg: () => sql.literal("FOR UPDATE OF c SKIP LOCKED"),
          orElse: () => sql.literal("")
        })
        // A key's running runs in this queue, joined to each candidate.
        const keys = sql`LEFT JOIN (SELECT concurrency_key, COUNT(*) AS n FROM weft_runs
            WHERE queue = ${queue} AND status = 'running' AND concurrency_key IS NOT NULL
            GROUP BY concurrency_key) k ON k.concurrency_key = c.concurrency_key`
        const passed: Array<string> = []
        const page = (sleepers: boolean, size: number) => {
          const skip = passed.length === 0 ? sql.literal("") : sql`AND c.id NOT IN ${sql.in(passed)}`
          const order = sleepers ? sql.literal("c.wake_at, c.id") : sql.literal("c.priority DESC, c.created_at, c.id")
          const candidates = (due: Statement.Fragment) =>
            sql<CandidateRow>`SELECT c.id, c.status, c.concurrency_key, c.concurrency_limit,
                COALESCE(k.n, 0) AS key_running, c.priority, c.created_at
              FROM weft_runs c ${keys}
              WHERE c.queue = ${queue} AND ${due} ${known} ${skip}
                AND (c.concurrency_key IS NULL OR c.status = 'running' OR COALESCE(k.n, 0) < c.concurrency_limit)
              ORDER BY ${order}
              LIMIT ${size}
              ${lock}`
          const expired = sql`c.status = 'running' AND c.lease_expires_at <= ${now}`
          if (sleepers) return candidates(sql`c.status IN ('sleeping', 'waiting') AND c.wake_at <= ${now}`)
          // No slot left: only runs whose worker died, which hold theirs.
          if (budget.slots <= 0) return candidates(expired)
          // Queued runs and runs whose worker died, each kind through its own index in claim order,
          // merged (as in `claimOpen`).
          const queued = sql`c.status = 'queued' AND (c.wake_at IS NULL OR c.wake_at <= ${now})`
          return sql<CandidateRow>`SELECT * FROM (${candidates(queued)}) queued
            UNION ALL SELECT * FROM (${candidates(expired)}) expired
            ORDER BY priority DESC, created_at, id
            LIMIT ${size}`
        }
        const woken: Array<RunRecord> = []
        const started: Array<RunRecord> = []
        const count = () => woken.length + started.length
        for (const sleepers of [true, false]) {
          while (count() < take && budget.tokens > 0 && (budget.slots > 0 || !sleepers)) {
            const want = take - count()
            const size = Math.max(want, 16)
            const candidates = yield* page(sleepers, size)
            const chosen: Array<string> = []
            // The keys' running runs as this page counted them, plus the ones it takes.
            const keyRunning = new Map<string, number>()
            for (const row of candidates) {
              if (chosen.length >= want) break
              const key = row.concurrency_key ?? undefined
              const held = key === undefined ? 0 : keyRunning.get(key) ?? Number(row.key_running)
              const run = { status: row.status, concurrencyKey: key, concurrencyLimit: Number(row.concurrency_limit) }
              if (Limits.admit(budget, run, held)) {
                chosen.push(row.id)
                if (key !== undefined && row.status !== "running") keyRunning.set(key, held + 1)
              } else {
                passed.push(row.id)
              }
            }
            if (chosen.length > 0) {
              if (sleepers) {
                const rows = yield* sql<RunRow>`UPDATE weft_runs
                  SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
                    reason = NULL, waiting_for = NULL, updated_at = ${now}
                  WHERE id IN ${sql.in(chosen)} RETURNING *`
                woken.push(...rows.map(toRun))
              } else {
                const rows = yield* sql<RunRow>`UPDATE weft_runs
                  SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
                    recoveries = recoveries + CASE WHEN started_at IS NULL THEN 0 ELSE 1 END,
                    started_at = COALESCE(started_at, ${now}), reason = NULL, updated_at = ${now}
                  WHERE id IN ${sql.in(chosen)} RETURNING *`
                started.push(...rows.map(toRun))
              }
            }
            // A short page was the last of its kind.
            if (candidates.length < size) break
          }
        }
        if (rate !== undefined && count() > 0) {
          yield* sql`INSERT INTO weft_queue_claims (queue, at, claims) VALUES (${queue}, ${now}, ${count()})
            ON CONFLICT (queue, at) DO UPDATE SET claims = weft_queue_claims.claims + excluded.claims`
          yield* sql`DELETE FROM weft_queue_claims WHERE queue = ${queue} AND at <= ${now - rate.intervalMillis}`
        }
        for (const run of started) {
          // A re-driven run starts again (no recovery counted) with part of its journal kept.
          if (run.recoveries === 0 && run.redriven === undefined) FreshRuns.mark(run)
        }
        return [...woken.sort(wakeOrder), ...started.sort(claimOrder)]
      })

    // The claim of queues without limits (see claimNext): one statement on PostgreSQL, the due
    // sleepers and then the runnable runs on SQLite.
    const claimOpen = (
      { alone, leaseMillis, now, owner, queues, take, workflows }: {
        readonly leaseMillis: number
        readonly now: number
        readonly owner: string
        readonly queues: ReadonlyArray<string>
        readonly workflows: ReadonlyArray<string> | undefined
        readonly take: number
        /** Whether the claim is a statement of its own (autocommit), not part of a transaction. */
        readonly alone: boolean
      }
    ): Effect.Effect<ReadonlyArray<RunRecord>, SqlError> => {
      // PostgreSQL, alone, on the direct path: the statement's text depends only on how many queues
      // and workflows it names, so it is kept per shape and each claim only binds its values.
      const direct = options.direct
      if (dialect === "postgres" && alone && direct !== undefined) {
        const shape = `${queues.length}/${workflows === undefined ? "-" : workflows.length}`
        const params = claimParams(owner, now, leaseMillis, queues, workflows, take)
        const text = claimTexts.get(shape)
        if (text !== undefined) return Effect.map(direct(text, params), claimedOnPg)
        // The first claim of a shape compiles the statement; its text is kept only if the values it
        // binds are those `claimParams` gives (a guard against the two drifting apart).
        const [compiled, bound] = statements().oneStatement.compile()
        if (bound.length === params.length && bound.every((value, i) => value === params[i])) {
          claimTexts.set(shape, compiled)
        }
        return Effect.map(direct(compiled, bound) as Effect.Effect<ReadonlyArray<ClaimedRow>, SqlError>, claimedOnPg)
      }
      const { oneStatement, start, wake } = statements()
      return dialect === "postgres" ?
        Effect.map(alone ? autocommit(oneStatement) : oneStatement, claimedOnPg) :
        Effect.flatMap(wake, (woken) =>
          woken.length >= take ?
            Effect.succeed(woken.map(toRun).sort(wakeOrder)) :
            Effect.map(
              start(sql`${take - woken.length}`),
              (rows) => [...woken.map(toRun).sort(wakeOrder), ...started(rows)]
            ))

      // The runs claimed from the queue (not woken) with no recovery counted had never started
      // (a claim of a started run counts one): their journal is empty, the engine need not read it.
      function started(rows: ReadonlyArray<RunRow>): Array<RunRecord> {
        return rows.map((row) => {
          const run = toRun(row)
          // A re-driven run starts again (no recovery counted) with part of its journal kept.
          if (run.recoveries === 0 && run.redriven === undefined) FreshRuns.mark(run)
          return run
        }).sort(claimOrder)
      }

      function claimedOnPg(rows: ReadonlyArray<ClaimedRow>): ReadonlyArray<RunRecord> {
        return [
          ...rows.filter((row) => row.woke).map(toRun).sort(wakeOrder),
          ...started(rows.filter((row) => !row.woke))
        ]
      }

      function statements() {
        const known = workflows === undefined ? sql.literal("") : sql`AND workflow IN ${sql.in(workflows)}`
        const lock = sql.onDialectOrElse({
          pg: () => sql.literal("FOR UPDATE SKIP LOCKED"),
          orElse: () => sql.literal("")
        })
        // Each kind of claimable run through its own index, in its order, at most `limit`, locked
        // (SKIP LOCKED): due sleepers (sleeping runs are not in the queued index, so many of them
        // never slow a claim), queued runs, and runs whose lease expired. Read separately and merged:
        // one condition with an OR of the kinds let the planner read every queued run of the queue
        // and sort them all on each claim.
        const dueSleepers = (limit: Statement.Fragment) =>
          sql`SELECT id, wake_at FROM weft_runs
            WHERE status IN ('sleeping', 'waiting') AND queue IN ${sql.in(queues)} AND wake_at <= ${now} ${known}
            ORDER BY wake_at, id
            LIMIT ${limit}
            ${lock}`
        const queuedRuns = (limit: Statement.Fragment) =>
          sql`SELECT id, priority, created_at FROM weft_runs
            WHERE status = 'queued' AND queue IN ${sql.in(queues)} AND (wake_at IS NULL OR wake_at <= ${now}) ${known}
            ORDER BY priority DESC, created_at, id
            LIMIT ${limit}
            ${lock}`
        const expiredLeases = (limit: Statement.Fragment) =>
          sql`SELECT id, priority, created_at FROM weft_runs
            WHERE status = 'running' AND queue IN ${sql.in(queues)} AND lease_expires_at <= ${now} ${known}
            ORDER BY priority DESC, created_at, id
            LIMIT ${limit}
            ${lock}`
        // SQLite: due sleepers first, in wake order; waking is not a recovery.
        const wake = sql<RunRow>`UPDATE weft_runs
            SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
              reason = NULL, waiting_for = NULL, updated_at = ${now}
            WHERE id IN (SELECT id FROM (${dueSleepers(sql`${take}`)}) sleepers)
            RETURNING *`
        // SQLite, after the sleepers: queued runs and expired leases, in claim order, at most `limit`.
        const start = (limit: Statement.Fragment) =>
          sql<RunRow>`UPDATE weft_runs
            SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
              recoveries = recoveries + CASE WHEN started_at IS NULL THEN 0 ELSE 1 END,
              started_at = COALESCE(started_at, ${now}), reason = NULL, updated_at = ${now}
            WHERE id IN (
              SELECT id FROM (
                SELECT id, priority, created_at FROM (${queuedRuns(limit)}) queued
                UNION ALL
                SELECT id, priority, created_at FROM (${expiredLeases(limit)}) expired
              ) candidates
              ORDER BY priority DESC, created_at, id
              LIMIT ${limit})
            RETURNING *`
        // PostgreSQL: one UPDATE of the three kinds, merged (sleepers first) and cut at `take`; each
        // row says whether it woke, for what the SET does to it (waking is not a recovery) and for the
        // order the runs are handed back in. (Two UPDATEs in CTEs cost the server twice the work.)
        const limit = sql`${take}`
        const oneStatement = sql<RunRow & { readonly woke: boolean }>`${hot}UPDATE weft_runs
            SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
              recoveries = recoveries + CASE WHEN c.woke OR weft_runs.started_at IS NULL THEN 0 ELSE 1 END,
              started_at = CASE WHEN c.woke THEN weft_runs.started_at ELSE COALESCE(weft_runs.started_at, ${now}) END,
              waiting_for = CASE WHEN c.woke THEN NULL ELSE weft_runs.waiting_for END,
              reason = NULL, updated_at = ${now}
            FROM (
              SELECT id, woke FROM (
                SELECT id, TRUE AS woke, 0 AS kind, wake_at, 0 AS priority, CAST(0 AS BIGINT) AS created_at
                  FROM (${dueSleepers(limit)}) sleepers
                UNION ALL
                SELECT id, FALSE, 1, CAST(NULL AS BIGINT), priority, created_at FROM (${queuedRuns(limit)}) queued
                UNION ALL
                SELECT id, FALSE, 1, CAST(NULL AS BIGINT), priority, created_at FROM (${expiredLeases(limit)}) expired
              ) candidates
              ORDER BY kind, wake_at, priority DESC, created_at, id
              LIMIT ${take}
            ) c
            WHERE weft_runs.id = c.id
            RETURNING weft_runs.*, c.woke`
        return { oneStatement, start, wake }
      }
    }

    const markKeyed = (name: string) =>
      sql`INSERT INTO weft_queues (name, keyed) VALUES (${name}, 1) ON CONFLICT (name) DO UPDATE SET keyed = 1`

    const selectRun = (id: string) => sql<RunRow>`${hot}SELECT * FROM weft_runs WHERE id = ${id}`

    // Re-drives run `id` when it is failed or cancelled, in the caller's transaction, and the awaited
    // children whose steps do not stay in its journal. The run's row is locked first (on SQLite, the
    // write lock), so the journal read next cannot change before the cut is written. Undefined when
    // the run is not there or not re-drivable; the journal's step ids when `from` is not among them
    // (nothing written: the first UPDATE changes no value).
    const redriveOne = (
      id: string,
      from: RedrivePoint,
      by: string,
      reason: string,
      now: number
    ): Effect.Effect<
      | { readonly run: RunRow; readonly record: RedriveRecord; readonly queues: ReadonlyArray<string> }
      | { readonly unknownStep: ReadonlyArray<string> }
      | undefined,
      SqlError
    > =>
      Effect.gen(function*() {
        const locked = yield* sql<RunRow>`UPDATE weft_runs SET updated_at = updated_at
          WHERE id = ${id} AND status IN ('failed', 'cancelled') RETURNING *`
        if (locked.length === 0) return undefined
        const before = locked[0]
        const steps = yield* sql<Omit<StepRow, "result">>`
          SELECT run_id, step_id, name, kind, position, failed, attempts, started_at, finished_at, attempt_implied
          FROM weft_steps WHERE run_id = ${id}`
        const attempts = yield* sql<{ readonly step_id: string; readonly attempt: number | string }>`
          SELECT step_id, MAX(attempt) AS attempt FROM weft_attempts WHERE run_id = ${id} GROUP BY step_id`
        const entries = steps.map((row) => ({
          runId: row.run_id,
          stepId: row.step_id,
          name: row.name,
          kind: row.kind as Execution.StepKind,
          position: Number(row.position),
          failed: Number(row.failed) === 1 || row.failed === true,
          attempts: Number(row.attempts),
          startedAt: Number(row.started_at),
          finishedAt: Number(row.finished_at)
        }))
        // The attempts the step rows stand for (see ImpliedAttempts) are history too.
        const implied = entries.filter((_, i) => isImplied(steps[i])).map(ImpliedAttempts.of)
        const plan = Redrive.plan(
          entries,
          [...attempts.map((row) => ({ stepId: row.step_id, attempt: Number(row.attempt) })), ...implied],
          from
        )
        if ("unknownStep" in plan) return plan
        // A discarded step's row goes, and with it what it implied: that attempt gets a row of its own.
        const discardedSet = new Set(plan.discarded)
        yield* insertRows(
          "weft_attempts",
          implied.filter((attempt) => discardedSet.has(attempt.stepId)).map(attemptValues)
        )
        for (const chunk of chunksOf(plan.discarded, 500)) {
          yield* sql`DELETE FROM weft_steps WHERE run_id = ${id} AND step_id IN ${sql.in(chunk)}`
          // A signal a discarded step had taken goes back to the mailbox, for the step to take again.
          yield* sql`UPDATE weft_signals SET taken_by = NULL, taken_at = NULL
            WHERE run_id = ${id} AND taken_by IN ${sql.in(chunk)}`
        }
        const seq = Number(before.redrives ?? 0) + 1
        const updated = yield* sql<RunRow>`UPDATE weft_runs
          SET status = 'queued', output = NULL, failure = NULL, finished_at = NULL, started_at = NULL, recoveries = 0,
            lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, waiting_for = NULL,
            reason = ${Redrive.queuedReason(by, reason, now)}, cancel_requested_at = NULL, cancel_by = NULL,
            cancel_reason = NULL, redrives = ${seq}, prior_attempts = ${JSON.stringify(plan.priorAttempts)},
            updated_at = ${now}
          WHERE id = ${id} RETURNING *`
        const discarded = new Set(plan.discarded)
        const kept = new Set(steps.map((row) => row.step_id).filter((stepId) => !discarded.has(stepId)))
        const candidates = yield* sql<{ readonly id: string; readonly parent_step_id: string | null }>`
          SELECT id, parent_step_id FROM weft_runs
          WHERE parent_run_id = ${id} AND status IN ('failed', 'cancelled') ORDER BY id`
        const children: Array<string> = []
        const queues = [updated[0].queue]
        for (const child of candidates) {
          const stepId = child.parent_step_id ?? ""
          if (!Redrive.isAwaitedChildStep(stepId) || kept.has(stepId)) continue
          const done = yield* redriveOne(child.id, "failure", by, `${reason} (with its parent run ${id})`, now)
          if (done !== undefined && "run" in done) {
            children.push(child.id)
            queues.push(...done.queues)
          }
        }
        const record: RedriveRecord = {
          runId: id,
          seq,
          at: now,
          by,
          reason,
          previousStatus: before.status as RunStatus,
          failure: decodeJson(before.failure),
          fromStep: plan.cut,
          discarded: plan.discarded,
          priorAttempts: plan.priorAttempts,
          children
        }
        yield* sql`INSERT INTO weft_redrives
          (run_id, seq, at, requested_by, reason, previous_status, failure, from_step, discarded, prior_attempts,
            children)
          VALUES (${id}, ${seq}, ${now}, ${by}, ${reason}, ${before.status}, ${before.failure},
            ${record.fromStep ?? null}, ${JSON.stringify(plan.discarded)}, ${JSON.stringify(plan.priorAttempts)},
            ${JSON.stringify(children)})`
        return { run: updated[0], record, queues }
      })

    // This process's notices and, when given, every process's: both call the listener, and the
    // subscription fails when the shared channel breaks.
    const shared = options.sharedWakeups
    const listen = (listener: (notice: string) => void): Effect.Effect<never, StoreUnavailable> =>
      shared === undefined
        ? bus.listen(listener)
        : Effect.raceFirst(bus.listen(listener), shared(listener))

    const service: StoreService = {
      dialect,
      listen,
      wakeups: WakeBus.fromListen(listen),
      sharedWakeups: options.sharedWakeups !== undefined,

      // Each MIN reads the end of one partial index range per queue.
      nextWakeAt: ({ now, queues, workflows }) =>
        Effect.gen(function*() {
          if (queues.length === 0 || workflows?.length === 0) return Option.none()
          const known = workflows === undefined ? sql.literal("") : sql`AND workflow IN ${sql.in(workflows)}`
          const queue = sql`queue IN ${sql.in(queues)}`
          const rows = yield* sql<{ readonly at: number | string | null }>`${hot}SELECT MIN(at) AS at FROM (
              SELECT MIN(wake_at) AS at FROM weft_runs
              WHERE status = 'queued' AND wake_at IS NOT NULL AND ${queue} AND wake_at > ${now} ${known}
              UNION ALL
              SELECT MIN(wake_at) AS at FROM weft_runs
              WHERE status IN ('sleeping', 'waiting') AND ${queue} AND wake_at > ${now} ${known}
              UNION ALL
              SELECT MIN(lease_expires_at) AS at FROM weft_runs
              WHERE status = 'running' AND queue IN ${sql.in(queues)} AND lease_expires_at > ${now} ${known}
            ) AS due`
          let earliest = optionalNumber(rows[0]?.at ?? null)
          // A full rate-limit window: its queued runs become claimable when it reopens.
          const limitedByRate = queues.filter((queue) => recorded.get(queue)?.rateLimit !== undefined)
          if (limitedByRate.length > 0) {
            const claims = yield* sql<
              { readonly queue: string; readonly at: number | string; readonly claims: number | string }
            >`
              SELECT queue, at, claims FROM weft_queue_claims WHERE queue IN ${sql.in(limitedByRate)}`
            for (const queue of limitedByRate) {
              const reopensAt =
                Limits.rateWindow(recorded.get(queue)!.rateLimit!, claimTimes(claims, queue), now).reopensAt
              if (reopensAt !== undefined && reopensAt > now && (earliest === undefined || reopensAt < earliest)) {
                earliest = reopensAt
              }
            }
          }
          return Option.fromNullable(earliest)
        }).pipe(mapErrors("nextWakeAt")),

      // The rows of the queues as they were first (their UPDATE locks them, and on SQLite takes the
      // write lock, before anything is read), then each declaration and each keyed mark.
      declareQueues: ({ by, keyed, now, queues }) =>
        Effect.gen(function*() {
          const names = [...queues.map((queue) => queue.name), ...keyed]
          if (names.length === 0) return []
          const before = (yield* journal.submit({
            operation: "declareQueues",
            runId: "",
            owner: by,
            atomic: true,
            touch: statement(Effect.gen(function*() {
              const rows = yield* sql<QueueRow>`UPDATE weft_queues SET keyed = keyed WHERE name IN ${sql.in(names)}
                RETURNING *`
              for (const queue of queues) {
                yield* sql`INSERT INTO weft_queues
                    (name, concurrency, rate_limit, rate_interval_millis, keyed, declared_by, declared_at)
                  VALUES (${queue.name}, ${queue.concurrency ?? null}, ${queue.rateLimit?.limit ?? null},
                    ${queue.rateLimit?.intervalMillis ?? null}, 0, ${by}, ${now})
                  ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
                    rate_limit = excluded.rate_limit, rate_interval_millis = excluded.rate_interval_millis,
                    declared_by = excluded.declared_by, declared_at = excluded.declared_at`
              }
              for (const name of keyed) yield* markKeyed(name)
              // At least one row, whatever was there before: an empty answer means nothing here.
              return [rows]
            }))
          }))[0] as ReadonlyArray<QueueRow>
          yield* readQueues
          return before.map(toQueue).filter((old) => {
            const declared = queues.find((queue) => queue.name === old.name)
            return old.declaredBy !== undefined && declared !== undefined && !Limits.sameLimits(old, declared)
          })
        }).pipe(mapErrors("declareQueues")),

      queueState: ({ key, now, queue }) =>
        Effect.gen(function*() {
          const rows = yield* sql<QueueRow>`SELECT * FROM weft_queues WHERE name = ${queue}`
          const record = rows.length === 0 ? undefined : toQueue(rows[0])
          const counts = yield* sql<{ readonly n: number | string; readonly k: number | string | null }>`SELECT
              COUNT(*) AS n, SUM(CASE WHEN concurrency_key = ${key ?? null} THEN 1 ELSE 0 END) AS k
            FROM weft_runs WHERE queue = ${queue} AND status = 'running'`
          const rate = record?.rateLimit
          const window = rate === undefined ? undefined : Limits.rateWindow(
            rate,
            claimTimes(
              yield* sql<{ readonly queue: string; readonly at: number | string; readonly claims: number | string }>`
                SELECT queue, at, claims FROM weft_queue_claims WHERE queue = ${queue}`,
              queue
            ),
            now
          )
          return {
            queue: record,
            running: Number(counts[0]?.n ?? 0),
            keyRunning: key === undefined ? undefined : Number(counts[0]?.k ?? 0),
            rate: window === undefined ? undefined : { claims: window.claims, reopensAt: window.reopensAt }
          }
        }).pipe(mapErrors("queueState")),

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
          const wakeAt = run.wakeAt ?? null
          const concurrencyKey = run.concurrencyKey
          // A keyed run's queue is recorded as keyed first, so that every claim of it counts keys;
          // a run without a key leaves the statement as it was.
          if (concurrencyKey !== undefined && recorded.get(queue)?.keyed !== true) {
            yield* journal.submit({
              operation: "createRun",
              runId: run.id,
              owner: "",
              touch: statement(Effect.as(markKeyed(queue), [{}]))
            })
            yield* readQueues
          }
          const keyColumns = concurrencyKey === undefined
            ? sql.literal("")
            : sql.literal(", concurrency_key, concurrency_limit")
          const keyValues = concurrencyKey === undefined
            ? sql.literal("")
            : sql`, ${concurrencyKey}, ${run.concurrencyLimit ?? 1}`
          // Insert first (group-committed) and look only on conflict: the common path is one
          // statement, and on SQLite a write first means the busy handler, not SQLITE_BUSY, meets
          // a concurrent writer.
          const insert = sql<RunRow>`${hot}INSERT INTO weft_runs
              (id, workflow, version, status, input, idempotency_key, queue, priority, lease_owner, lease_expires_at,
                wake_at, recoveries, origin, created_at, updated_at, started_at, parent_run_id, parent_step_id,
                correlation_id${keyColumns})
              VALUES (${run.id}, ${run.workflow}, ${run.version}, ${status}, ${input}, ${key}, ${queue}, ${priority},
                ${owner}, ${expiresAt}, ${wakeAt}, 0, ${origin}, ${run.now}, ${run.now}, ${startedAt},
                ${run.parent?.runId ?? null}, ${run.parent?.stepId ?? null}, ${run.correlationId ?? null}${keyValues})
              ON CONFLICT DO NOTHING
              RETURNING *`
          // On PostgreSQL a queued run's INSERT sends its NOTIFY itself (delivered at commit): a
          // start alone is one statement, one round trip.
          const notifies = claim === undefined && dialect === "postgres"
          const inserted = (yield* journal.submit({
            operation: "createRun",
            runId: run.id,
            owner: owner ?? "",
            wakes: claim === undefined,
            notifies,
            touch: statement(
              notifies
                ? sql<RunRow>`${hot}WITH inserted AS (${insert})
                    SELECT inserted.*, pg_notify(${PgListener.channel}, inserted.queue) IS NULL AS notified
                    FROM inserted`
                : insert
            )
          })) as ReadonlyArray<RunRow>
          if (inserted.length > 0) {
            const created = toRun(inserted[0])
            // Claimed at creation: nothing can have been journaled yet.
            if (claim !== undefined) FreshRuns.mark(created)
            return { run: created, created: true }
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
          ...(filter.since === undefined ? [] : [sql`created_at >= ${filter.since}`]),
          ...(filter.updatedSince === undefined ? [] : [sql`updated_at >= ${filter.updatedSince}`])
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
          const claimed = (yield* journal.submit({
            operation: "claimRun",
            runId: id,
            owner,
            touch: statement(sql<RunRow>`UPDATE weft_runs
              SET status = 'running', lease_owner = ${owner}, lease_expires_at = ${now + leaseMillis},
                recoveries = recoveries + CASE WHEN started_at IS NULL OR status IN ('sleeping', 'waiting') THEN 0 ELSE 1 END,
                started_at = COALESCE(started_at, ${now}), reason = NULL, waiting_for = NULL, updated_at = ${now}
              WHERE id = ${id} AND status NOT IN ${sql.in(terminalStatuses)} ${free}
              RETURNING *`)
          })) as ReadonlyArray<RunRow>
          if (claimed.length > 0) {
            return toRun(claimed[0])
          }
          // Only to explain the refusal: the UPDATE above alone decided it.
          const rows = yield* selectRun(id)
          return yield* Effect.fail(notClaimable(id, rows.length === 0 ? undefined : toRun(rows[0])))
        }).pipe(mapErrors("claimRun")),

      // One statement: the runnable rows in claim order, locked, and updated. On PostgreSQL,
      // SKIP LOCKED makes a concurrent claimer pass over the rows this one has locked instead of
      // waiting for them (and READ COMMITTED re-checks the WHERE clause on a row another claim
      // changed and committed meanwhile, so a row just claimed is not taken again). SQLite has one
      // writer at a time, so its UPDATEs with the same subqueries are atomic as they are, and go
      // through the group commit like claimRun (one writer). On PostgreSQL the one statement needs
      // no transaction of its own and goes straight to a pooled connection (see below).
      //
      // Queues with limits (recorded in weft_queues) are claimed first, each by `claimLimited`, in
      // one transaction through the group commit; a claim of queues without limits is the one
      // statement above alone.
      claimNext: ({ leaseMillis, limit, now, owner, queues, workflows }) => {
        const take = normalizeLimit(limit)
        if (take === 0 || queues.length === 0 || workflows?.length === 0) return Effect.succeed([])
        return Effect.flatMap(
          recordedQueues,
          (recorded): Effect.Effect<ReadonlyArray<RunRecord>, SqlError | StoreUnavailable> => {
            const limited = queues.filter((queue) => isLimited(recorded.get(queue)))
            const claim = { leaseMillis, now, owner, workflows }
            const open = limited.length === 0 ? queues : queues.filter((queue) => !limited.includes(queue))
            // PostgreSQL, no limits: the claim is one statement of its own (autocommit), so it goes
            // straight to a pooled connection, beside the writer's commits instead of behind them.
            if (dialect === "postgres" && limited.length === 0) {
              return claimOpen({ ...claim, queues: open, take, alone: true })
            }
            return journal.submit({
              operation: "claimNext",
              runId: "",
              owner,
              atomic: limited.length > 0,
              touch: statement(
                limited.length === 0 ?
                  claimOpen({ ...claim, queues: open, take, alone: false }) :
                  Effect.gen(function*() {
                    const runs: Array<RunRecord> = []
                    // Every queue's row is locked at once, in name order: two claimers of the same
                    // limited queues never wait for each other in a cycle.
                    const rows = yield* sql.onDialectOrElse({
                      pg: () =>
                        sql<QueueRow>`SELECT * FROM weft_queues WHERE name IN ${
                          sql.in(limited)
                        } ORDER BY name FOR UPDATE`,
                      orElse: () =>
                        sql<QueueRow>`UPDATE weft_queues SET keyed = keyed WHERE name IN ${sql.in(limited)} RETURNING *`
                    })
                    const locked = new Map(rows.map((row) => [row.name, toQueue(row)]))
                    for (const queue of limited) {
                      if (runs.length >= take) break
                      runs.push(
                        ...(yield* claimLimited({
                          ...claim,
                          queue,
                          record: locked.get(queue),
                          take: take - runs.length
                        }))
                      )
                    }
                    if (runs.length < take && open.length > 0) {
                      runs.push(
                        ...(yield* claimOpen({ ...claim, queues: open, take: take - runs.length, alone: false }))
                      )
                    }
                    return runs
                  })
              )
            }) as Effect.Effect<ReadonlyArray<RunRecord>, StoreUnavailable>
          }
        ).pipe(mapErrors("claimNext"))
      },

      renewLease: ({ id, leaseMillis, now, owner }) =>
        fenced({
          operation: "renewLease",
          runId: id,
          owner,
          touch: statement(sql`${hot}UPDATE weft_runs SET lease_expires_at = ${now + leaseMillis}, updated_at = ${now}
            WHERE id = ${id} AND lease_owner = ${owner} RETURNING id`)
        }),

      // Lock first, then read (the lost wake-up): the fenced UPDATE takes the run's row (and on
      // SQLite the write lock) before the mailbox is read, so a delivery that committed earlier is
      // seen here, and one that comes later waits for this transaction and then finds the run
      // waiting. One `UPDATE ... WHERE NOT EXISTS (mailbox)` would not do on PostgreSQL: after
      // waiting for the row lock it re-checks the row but not its sub-select's snapshot.
      suspendRun: ({ children = [], id, now, owner, reason, signals = [], wakeAt }) =>
        Effect.flatMap(
          journal.submit({
            operation: "suspendRun",
            runId: id,
            owner,
            atomic: true,
            wakes: true,
            touch: statement(Effect.gen(function*() {
              const locked = yield* sql`UPDATE weft_runs SET updated_at = ${now}
                WHERE id = ${id} AND lease_owner = ${owner} RETURNING id`
              if (locked.length === 0) return []
              const wokenBy = (why: string) =>
                sql`UPDATE weft_runs
                  SET status = 'waiting', lease_owner = NULL, lease_expires_at = NULL, wake_at = ${now},
                    waiting_for = NULL, reason = ${why}, updated_at = ${now}
                  WHERE id = ${id}`
              if (children.length > 0) {
                const ended = yield* sql<{ readonly id: string }>`SELECT id FROM weft_runs
                  WHERE id IN ${sql.in(children)} AND status IN ${sql.in(terminalStatuses)} LIMIT 1`
                if (ended.length > 0) {
                  yield* wokenBy(`child run ${ended[0].id} ended`)
                  return [{ status: "woken" }]
                }
              }
              for (const signal of signals) {
                const deadline = signal.deadline === undefined
                  ? sql.literal("")
                  : sql`AND sent_at <= ${signal.deadline}`
                const pending = yield* sql`SELECT seq FROM weft_signals
                  WHERE run_id = ${id} AND name = ${signal.name} AND taken_by IS NULL ${deadline} LIMIT 1`
                if (pending.length > 0) {
                  // No queue: the run is due at once for this worker, which claims it again.
                  yield* wokenBy(`signal ${signal.name} arrived`)
                  return [{ status: "woken" }]
                }
              }
              const waitingFor = Waits.encode([
                ...signals.map((signal) => signal.name),
                ...children.map(Waits.childKey)
              ])
              return yield* sql`UPDATE weft_runs
                SET status = ${waitingFor === null ? "sleeping" : "waiting"}, lease_owner = NULL,
                  lease_expires_at = NULL, wake_at = ${wakeAt ?? null}, waiting_for = ${waitingFor},
                  reason = ${reason}, updated_at = ${now}
                WHERE id = ${id} RETURNING status, queue`
            }))
          }),
          (rows) =>
            rows.length === 0
              ? Effect.fail(new LeaseLost({ runId: id, owner }))
              : Effect.succeed((rows[0] as { readonly status: "sleeping" | "waiting" | "woken" }).status)
        ),

      // Lock first, as suspendRun: the run's row, then the mailbox, then the wake.
      deliverSignal: ({ name, now, payload, runId }) =>
        Effect.gen(function*() {
          const encoded = encodeJson(payload)
          const rows = (yield* journal.submit({
            operation: "deliverSignal",
            runId,
            owner: "",
            atomic: true,
            wakes: true,
            touch: statement(Effect.gen(function*() {
              const locked = yield* sql<
                { readonly status: string; readonly waiting_for: string | null }
              >`UPDATE weft_runs
                SET updated_at = ${now}
                WHERE id = ${runId} AND status NOT IN ${sql.in(terminalStatuses)} RETURNING status, waiting_for`
              if (locked.length === 0) return []
              const inserted = yield* sql<{ readonly seq: number | string }>`INSERT INTO weft_signals
                (run_id, name, payload, sent_at) VALUES (${runId}, ${name}, ${encoded}, ${now}) RETURNING seq`
              const seq = Number(inserted[0].seq)
              if (locked[0].status !== "waiting" || !Waits.includes(locked[0].waiting_for, name)) {
                return [{ seq, woke: false }]
              }
              // Due now, still `waiting`: claimNext takes it as a sleeper that woke, not as a recovery.
              const woken = yield* sql<{ readonly queue: string }>`UPDATE weft_runs
                SET wake_at = ${now}, waiting_for = NULL, reason = ${`signal ${name} arrived`}, updated_at = ${now}
                WHERE id = ${runId} RETURNING queue`
              return [{ seq, woke: true, queue: woken[0].queue }]
            }))
          })) as ReadonlyArray<{ readonly seq: number; readonly woke: boolean }>
          if (rows.length > 0) return { seq: rows[0].seq, woke: rows[0].woke }
          const existing = yield* selectRun(runId)
          return yield* existing.length === 0
            ? Effect.fail(new RunNotFound({ runId }))
            : Effect.fail(new RunFinished({ runId, status: existing[0].status }))
        }).pipe(mapErrors("deliverSignal")),

      takeSignal: ({ deadline, name, now, owner, step }) =>
        Effect.gen(function*() {
          const before = deadline === undefined ? sql.literal("") : sql`AND sent_at <= ${deadline}`
          const oldest = sql`SELECT MIN(seq) FROM weft_signals
            WHERE run_id = ${step.runId} AND name = ${name} AND taken_by IS NULL ${before}`
          // A look first, outside the group commit: most calls find nothing and write nothing.
          const pending = yield* sql<{ readonly seq: number | string | null }>`SELECT (${oldest}) AS seq`
          if (pending[0]?.seq === null || pending[0]?.seq === undefined) return Option.none()
          const rows = (yield* journal.submit({
            operation: "takeSignal",
            runId: step.runId,
            owner,
            atomic: true,
            touch: statement(Effect.gen(function*() {
              const fenced = yield* sql`UPDATE weft_runs SET reason = NULL, updated_at = ${now}
                WHERE id = ${step.runId} AND lease_owner = ${owner} RETURNING id`
              if (fenced.length === 0) return []
              const taken = yield* sql<{ readonly payload: string | null }>`UPDATE weft_signals
                SET taken_by = ${step.stepId}, taken_at = ${now}
                WHERE seq = (${oldest}) RETURNING payload`
              if (taken.length === 0) return [{ taken: false }]
              const payload = decodeJson(taken[0].payload)
              yield* insertRows("weft_steps", [
                stepValues({ ...step, result: { _tag: "Success", value: payload }, failed: false }, false)
              ])
              return [{ taken: true, payload }]
            }))
          })) as ReadonlyArray<{ readonly taken: boolean; readonly payload?: unknown }>
          if (rows.length === 0) return yield* Effect.fail(new LeaseLost({ runId: step.runId, owner }))
          return rows[0].taken ? Option.some(rows[0].payload) : Option.none()
        }).pipe(mapErrors("takeSignal")),

      requestCancel: ({ by, id, now, reason }) =>
        Effect.gen(function*() {
          const rows = (yield* journal.submit({
            operation: "requestCancel",
            runId: id,
            owner: "",
            wakes: true,
            // The run and its descendants (children, their children...), in one statement.
            touch: statement(
              sql<{ readonly id: string; readonly status: RunStatus; readonly queue: string }>`UPDATE weft_runs
              SET cancel_requested_at = COALESCE(cancel_requested_at, ${now}),
                cancel_by = COALESCE(cancel_by, ${by}), cancel_reason = COALESCE(cancel_reason, ${reason}),
                wake_at = CASE WHEN status IN ('sleeping', 'waiting') THEN ${now} ELSE wake_at END,
                updated_at = ${now}
              WHERE id IN (
                WITH RECURSIVE tree(id) AS (
                  SELECT id FROM weft_runs WHERE id = ${id}
                  UNION ALL
                  SELECT r.id FROM weft_runs r JOIN tree t ON r.parent_run_id = t.id
                )
                SELECT id FROM tree)
                AND status NOT IN ${sql.in(terminalStatuses)}
              RETURNING id, status, queue`
            )
          })) as ReadonlyArray<{ readonly id: string; readonly status: RunStatus; readonly queue: string }>
          const self = rows.find((row) => row.id === id)
          if (self !== undefined) {
            // The workers holding these runs stop them at once: on this process's bus and, on
            // PostgreSQL, through NOTIFY (after the commit, so they read the request).
            for (const row of rows) {
              bus.publish(`cancel:${row.id}`)
              if (row.queue !== self.queue) bus.publish(row.queue)
              if (notify !== undefined) yield* notify(`cancel:${row.id}`)
            }
            return { status: self.status, requested: true }
          }
          const existing = yield* selectRun(id)
          if (existing.length === 0) return yield* Effect.fail(new RunNotFound({ runId: id }))
          return { status: existing[0].status as RunStatus, requested: false }
        }).pipe(mapErrors("requestCancel")),

      listSignals: (runId) =>
        sql<SignalRow>`SELECT * FROM weft_signals WHERE run_id = ${runId} ORDER BY seq`.pipe(
          Effect.map((rows) => rows.map(toSignal)),
          mapErrors("listSignals")
        ),

      releaseRun: ({ id, now, owner, reason }) =>
        fenced({
          operation: "releaseRun",
          runId: id,
          owner,
          touch: statement(sql`UPDATE weft_runs
            SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, reason = ${reason}, updated_at = ${now}
            WHERE id = ${id} AND lease_owner = ${owner} RETURNING id, queue`),
          wakes: true
        }),

      // Values are encoded here, in the caller's fiber, before the write is queued: a value JSON
      // cannot hold is the caller's defect alone and never reaches a shared batch.
      finishRun: ({ id, now, outcome, owner, step }) =>
        Effect.suspend(() => {
          const output = outcome.status === "succeeded" ? encodeJson(outcome.output) : null
          const failure = outcome.status === "succeeded" ? null : encodeJson(outcome.failure)
          // Built only when run: on PostgreSQL a run's end is nearly always folded into a combined
          // statement instead, and a statement costs its allocations even unused.
          const finished = () =>
            sql<{ readonly id: string; readonly parent_run_id: string | null }>`${hot}UPDATE weft_runs
              SET status = ${outcome.status}, output = ${output}, failure = ${failure}, finished_at = ${now},
                lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, reason = NULL, updated_at = ${now}
              WHERE id = ${id} AND lease_owner = ${owner} RETURNING id, parent_run_id`
          // A parent waiting for this child is due at once, in the same transaction as the child's
          // end (the child's row is locked first, then the parent's; a suspending parent locks
          // only its own row and reads the child's, so the two cannot deadlock).
          const wakeParent = (parent: string) =>
            sql<{ readonly queue: string }>`UPDATE weft_runs
              SET wake_at = ${now}, waiting_for = NULL, reason = ${`child run ${id} ${outcome.status}`},
                updated_at = ${now}
              WHERE id = ${parent} AND status = 'waiting'
                AND (waiting_for = ${Waits.childKey(id)} OR ${listedIn(Waits.childKey(id))})
              RETURNING queue`
          // The last step's completion: its rows are written when the end is.
          const last = step === undefined ? undefined : journalRows(step.step, step.attempt)
          return fenced({
            operation: "finishRun",
            runId: id,
            owner,
            finish: { status: outcome.status, output, failure, now },
            step: last?.step,
            attempt: last?.attempt,
            // Not folded into a combined statement (SQLite, or a batch that cannot combine): the end
            // and a parent's wake are two statements in one transaction.
            atomic: true,
            wakes: true,
            touch: statement(Effect.flatMap(Effect.suspend(finished), (rows) =>
              rows.length === 0 || rows[0].parent_run_id === null
                ? Effect.succeed(rows)
                : Effect.map(wakeParent(rows[0].parent_run_id), (woken) => [{ ...rows[0], queue: woken[0]?.queue }])))
          })
        }),

      // Two reads without a snapshot: the journal is read by the run's owner, and every other
      // writer is fenced out, so nothing can land between them.
      // A step's first successful attempt is given back from its step row (see ImpliedAttempts).
      readJournal: (runId) =>
        Effect.all({
          steps: sql<StepRow>`${hot}SELECT * FROM weft_steps WHERE run_id = ${runId} ORDER BY position, step_id`,
          attempts: sql<AttemptRowRow>`${hot}SELECT * FROM weft_attempts WHERE run_id = ${runId}
            ORDER BY step_id, attempt`
        }).pipe(
          Effect.map((rows) => {
            const steps = rows.steps.map(toStep)
            const implied = steps.filter((_, i) => isImplied(rows.steps[i])).map(ImpliedAttempts.of)
            return { steps, attempts: ImpliedAttempts.restore(rows.attempts.map(toAttempt), implied) }
          }),
          mapErrors("readJournal")
        ),

      redriveRun: ({ by, from, id, now, reason }) =>
        Effect.gen(function*() {
          const point = from ?? "failure"
          const rows = (yield* journal.submit({
            operation: "redriveRun",
            runId: id,
            owner: "",
            atomic: true,
            wakes: true,
            touch: statement(Effect.gen(function*() {
              const done = yield* redriveOne(id, point, by, reason, now)
              if (done === undefined) return []
              if (!("run" in done)) return [done]
              // The run's own queue is told through `wakes`; the queues of its children, if others, here.
              const others = [...new Set(done.queues)].filter((queue) => queue !== done.run.queue)
              if (notify !== undefined) yield* Effect.forEach(others, notify, { discard: true })
              return [{ ...done, queue: done.run.queue, others }]
            }))
          })) as ReadonlyArray<
            | { readonly unknownStep: ReadonlyArray<string> }
            | { readonly run: RunRow; readonly record: RedriveRecord; readonly others: ReadonlyArray<string> }
          >
          if (rows.length > 0) {
            const done = rows[0]
            if ("unknownStep" in done) {
              return yield* Effect.fail(
                new StepNotInJournal({
                  runId: id,
                  stepId: typeof point === "object" ? point.step : "",
                  steps: done.unknownStep
                })
              )
            }
            for (const queue of done.others) bus.publish(queue)
            return { run: toRun(done.run), redrive: done.record }
          }
          const existing = yield* selectRun(id)
          return yield* existing.length === 0
            ? Effect.fail(new RunNotFound({ runId: id }))
            : Effect.fail(new RunNotRedrivable({ runId: id, status: existing[0].status }))
        }).pipe(mapErrors("redriveRun")),

      listRedrives: (runId) =>
        sql<RedriveRow>`SELECT * FROM weft_redrives WHERE run_id = ${runId} ORDER BY seq`.pipe(
          Effect.map((rows) => rows.map(toRedrive)),
          mapErrors("listRedrives")
        ),

      recordAttempt: ({ attempt, now, owner, reason }) =>
        Effect.suspend(() =>
          fenced({
            operation: "recordAttempt",
            runId: attempt.runId,
            owner,
            touch: { _tag: "Fence", reason, now },
            attempt: attemptValues(attempt)
          })
        ),

      // The step's completion clears the run's reason: a `backing off ...` left by recordAttempt
      // would otherwise describe a run that is progressing.
      completeStep: ({ attempt, now, owner, step }) =>
        Effect.suspend(() => {
          const rows = journalRows(step, attempt)
          return fenced({
            operation: "completeStep",
            runId: step.runId,
            owner,
            touch: { _tag: "Fence", reason: null, now },
            step: rows.step,
            attempt: rows.attempt
          })
        })
    }
    return service
  })

/** The queue of a run created without one. */
export const defaultQueue = "default"

/** A write as the group commit takes it, its values already encoded. */
interface JournalWrite {
  readonly operation: string
  readonly runId: string
  readonly owner: string
  /** What it does to the run: for the fenced writes, only while `owner` holds its lease. */
  readonly touch: Touch
  readonly step?: StepValues | undefined
  readonly attempt?: AttemptValues | undefined
  /** Whether runs of the queue its statement returns (if any) became claimable when it applied. */
  readonly wakes?: boolean | undefined
  /** Whether its statement is several, to be run in a transaction even when the write is alone. */
  readonly atomic?: boolean | undefined
  /** Whether its statement sends the NOTIFY of the queue it returns itself (PostgreSQL). */
  readonly notifies?: boolean | undefined
  /** A run's end (finishRun): PostgreSQL folds it into a combined statement instead of `touch`. */
  readonly finish?: FinishValues | undefined
}

interface FinishValues {
  readonly status: string
  readonly output: string | null
  readonly failure: string | null
  readonly now: number
}

// The lane of a run's writes: a string hash (FNV-1a), stable within the process.
const laneHash = (runId: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < runId.length; i++) {
    hash ^= runId.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

// PostgreSQL's deadlock_detected: the server aborted this transaction to break a lock cycle.
const isDeadlock = (error: SqlError): boolean => {
  const cause = error.cause as { readonly code?: unknown } | undefined
  return typeof cause === "object" && cause !== null && cause.code === "40P01"
}

/**
 * A fence sets the run's reason and time, and folds with its neighbours into one statement; any
 * other write is a statement of its own, returning a row when it applied.
 */
type Touch =
  | { readonly _tag: "Fence"; readonly reason: string | null; readonly now: number }
  | { readonly _tag: "Statement"; readonly statement: Effect.Effect<ReadonlyArray<unknown>, SqlError> }

const statement = (statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>): Touch => ({
  _tag: "Statement",
  statement
})

interface FenceValues {
  readonly runId: string
  readonly owner: string
  readonly reason: string | null
  readonly now: number
}

/** A row the PostgreSQL claim returns: the run, and whether it woke (a due sleeper). */
type ClaimedRow = RunRow & { readonly woke: boolean }

/**
 * The values the PostgreSQL claim binds, in the order of its text (see `claimOpen`): the lease and
 * times, then for each kind of claimable run (due sleepers, queued runs, expired leases) its queues,
 * the time, its workflows and the limit, and the limit of the whole.
 */
const claimParams = (
  owner: string,
  now: number,
  leaseMillis: number,
  queues: ReadonlyArray<string>,
  workflows: ReadonlyArray<string> | undefined,
  take: number
): Array<unknown> => {
  const params: Array<unknown> = [owner, now + leaseMillis, now, now]
  for (let kind = 0; kind < 3; kind++) {
    for (const queue of queues) params.push(queue)
    params.push(now)
    if (workflows !== undefined) { for (const workflow of workflows) params.push(workflow) }
    params.push(take)
  }
  params.push(take)
  return params
}

/** A row `combined` returns: a fence or an end that matched, or the queue of a parent woken. */
interface CombinedRow {
  readonly id: string
  readonly lease_owner: string
  readonly finished: boolean
  readonly queue: string | null
}

type CombinedFinish = FinishValues & { readonly run_id: string; readonly owner: string }
type CombinedStep = StepValues & { readonly owner: string }
type CombinedAttempt = AttemptValues & { readonly owner: string }

const combinedStep = (step: StepValues, owner: string): CombinedStep => ({
  run_id: step.run_id,
  step_id: step.step_id,
  name: step.name,
  kind: step.kind,
  position: step.position,
  result: step.result,
  failed: step.failed,
  attempts: step.attempts,
  started_at: step.started_at,
  finished_at: step.finished_at,
  attempt_implied: step.attempt_implied,
  owner
})

const combinedAttempt = (attempt: AttemptValues, owner: string): CombinedAttempt => ({
  run_id: attempt.run_id,
  step_id: attempt.step_id,
  attempt: attempt.attempt,
  started_at: attempt.started_at,
  finished_at: attempt.finished_at,
  outcome: attempt.outcome,
  error: attempt.error,
  delay_millis: attempt.delay_millis,
  stop_reason: attempt.stop_reason,
  owner
})

interface FencedRow {
  readonly id: string
  readonly lease_owner: string
}

// A (run, owner) pair as one string, unambiguous whatever the two hold (the run id's length first),
// and cheap: it is made for every write of a batch and every row of its answer.
const fenceKey = (runId: string, owner: string): string => `${runId.length}:${runId}${owner}`

// Rows for `sql.insert`, keys in column order, every column present (NULL, not undefined).
type StepValues = {
  readonly run_id: string
  readonly step_id: string
  readonly name: string
  readonly kind: string
  readonly position: number
  readonly result: string | null
  readonly failed: number
  readonly attempts: number
  readonly started_at: number
  readonly finished_at: number
  /** 1 when the row also stands for the step's final attempt, which then has no row (ImpliedAttempts). */
  readonly attempt_implied: number
}
type AttemptValues = {
  readonly run_id: string
  readonly step_id: string
  readonly attempt: number
  readonly started_at: number
  readonly finished_at: number
  readonly outcome: string
  readonly error: string | null
  readonly delay_millis: number | null
  readonly stop_reason: string | null
}

// The rows of a step's completion: the step's, and its final attempt's unless the step row stands
// for it (see ImpliedAttempts).
const journalRows = (
  step: StepRecord,
  attempt: AttemptRow | undefined
): { readonly step: StepValues; readonly attempt: AttemptValues | undefined } => {
  const implied = attempt !== undefined && ImpliedAttempts.implied(step, attempt)
  return {
    step: stepValues(step, implied),
    attempt: attempt === undefined || implied ? undefined : attemptValues(attempt)
  }
}

// `implied`: the row also stands for the step's final attempt.
const stepValues = (step: StepRecord, implied: boolean): StepValues => ({
  run_id: step.runId,
  step_id: step.stepId,
  name: step.name,
  kind: step.kind,
  position: step.position,
  result: encodeJson(step.result),
  failed: step.failed ? 1 : 0,
  attempts: step.attempts,
  started_at: step.startedAt,
  finished_at: step.finishedAt,
  attempt_implied: implied ? 1 : 0
})

const attemptValues = (attempt: AttemptRow): AttemptValues => ({
  run_id: attempt.runId,
  step_id: attempt.stepId,
  attempt: attempt.attempt,
  started_at: attempt.startedAt,
  finished_at: attempt.finishedAt,
  outcome: attempt.outcome,
  error: encodeJson(attempt.error),
  delay_millis: attempt.delayMillis ?? null,
  stop_reason: attempt.stopReason ?? null
})

// The most rows in one INSERT: 256 step rows are 2,560 parameters, far below SQLite's 32,766
// and PostgreSQL's 65,535.
const maxRowsPerInsert = 256

const powerOfTwoChunks = <A>(rows: ReadonlyArray<A>): Array<ReadonlyArray<A>> => {
  const chunks: Array<ReadonlyArray<A>> = []
  let size = maxRowsPerInsert
  for (let start = 0; start < rows.length; start += size) {
    while (size > rows.length - start) size >>= 1
    chunks.push(rows.slice(start, start + size))
  }
  return chunks
}

const storeUnavailable = Migrations.storeUnavailable

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
  readonly cancel_requested_at?: number | string | null
  readonly cancel_by?: string | null
  readonly cancel_reason?: string | null
  readonly parent_run_id?: string | null
  readonly parent_step_id?: string | null
  readonly correlation_id?: string | null
  readonly redrives?: number | string | null
  readonly prior_attempts?: string | null
  readonly concurrency_key?: string | null
  readonly concurrency_limit?: number | string | null
  readonly created_at: number | string
  readonly updated_at: number | string
  readonly started_at: number | string | null
  readonly finished_at: number | string | null
}

interface StepRow {
  readonly attempt_implied: number | string | boolean
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
  ...(row.cancel_requested_at === null || row.cancel_requested_at === undefined
    ? {}
    : { cancel: { at: Number(row.cancel_requested_at), by: row.cancel_by ?? "", reason: row.cancel_reason ?? "" } }),
  ...(row.parent_run_id === null || row.parent_run_id === undefined
    ? {}
    : { parent: { runId: row.parent_run_id, stepId: row.parent_step_id ?? "" } }),
  ...(row.correlation_id === null || row.correlation_id === undefined ? {} : { correlationId: row.correlation_id }),
  ...(row.redrives === null || row.redrives === undefined || Number(row.redrives) === 0
    ? {}
    : {
      redriven: {
        count: Number(row.redrives),
        priorAttempts: (decodeJson(row.prior_attempts ?? null) ?? {}) as Record<string, number>
      }
    }),
  ...(row.concurrency_key === null || row.concurrency_key === undefined
    ? {}
    : { concurrencyKey: row.concurrency_key, concurrencyLimit: Number(row.concurrency_limit ?? 1) }),
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
  startedAt: optionalNumber(row.started_at),
  finishedAt: optionalNumber(row.finished_at)
})

interface QueueRow {
  readonly name: string
  readonly concurrency: number | string | null
  readonly rate_limit: number | string | null
  readonly rate_interval_millis: number | string | null
  readonly keyed: number | string | boolean
  readonly declared_by: string | null
  readonly declared_at: number | string | null
}

const toQueue = (row: QueueRow): QueueRecord => ({
  name: row.name,
  concurrency: optionalNumber(row.concurrency),
  rateLimit: row.rate_limit === null || row.rate_interval_millis === null
    ? undefined
    : { limit: Number(row.rate_limit), intervalMillis: Number(row.rate_interval_millis) },
  keyed: Number(row.keyed) === 1 || row.keyed === true,
  declaredBy: row.declared_by ?? undefined,
  declaredAt: optionalNumber(row.declared_at)
})

/** Whether claims of a recorded queue go through `claimLimited`. */
const isLimited = (record: QueueRecord | undefined): boolean =>
  record !== undefined && (record.keyed || record.concurrency !== undefined || record.rateLimit !== undefined)

/** A candidate of a limited claim, with the running runs of its key. */
interface CandidateRow {
  readonly id: string
  readonly status: string
  readonly concurrency_key: string | null
  readonly concurrency_limit: number | string | null
  readonly key_running: number | string
}

/** The claim times of `queue` in weft_queue_claims rows, one per claimed run. */
const claimTimes = (
  rows: ReadonlyArray<{ readonly queue: string; readonly at: number | string; readonly claims: number | string }>,
  queue: string
): Array<number> =>
  rows.filter((row) => row.queue === queue).flatMap((row) =>
    Array.from({ length: Number(row.claims) }, () => Number(row.at))
  )

/** How often a process reads weft_queues again, to learn of limits another process declared. */
export const queueRefreshMillis = 1_000

const isImplied = (row: Pick<StepRow, "attempt_implied">): boolean =>
  Number(row.attempt_implied) === 1 || row.attempt_implied === true

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

interface RedriveRow {
  readonly run_id: string
  readonly seq: number | string
  readonly at: number | string
  readonly requested_by: string
  readonly reason: string
  readonly previous_status: string
  readonly failure: string | null
  readonly from_step: string | null
  readonly discarded: string
  readonly prior_attempts: string
  readonly children: string
}

const toRedrive = (row: RedriveRow): RedriveRecord => ({
  runId: row.run_id,
  seq: Number(row.seq),
  at: Number(row.at),
  by: row.requested_by,
  reason: row.reason,
  previousStatus: row.previous_status as RunStatus,
  failure: decodeJson(row.failure),
  fromStep: row.from_step ?? undefined,
  discarded: JSON.parse(row.discarded) as Array<string>,
  priorAttempts: JSON.parse(row.prior_attempts) as Record<string, number>,
  children: JSON.parse(row.children) as Array<string>
})

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const chunks: Array<ReadonlyArray<A>> = []
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size))
  return chunks
}

interface SignalRow {
  readonly seq: number | string
  readonly run_id: string
  readonly name: string
  readonly payload: string | null
  readonly sent_at: number | string
  readonly taken_by: string | null
  readonly taken_at: number | string | null
}

const toSignal = (row: SignalRow): SignalRecord => ({
  runId: row.run_id,
  seq: Number(row.seq),
  name: row.name,
  payload: decodeJson(row.payload),
  sentAt: Number(row.sent_at),
  takenBy: row.taken_by ?? undefined,
  takenAt: optionalNumber(row.taken_at)
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

/** How a parent waiting for a child records the wait: `/` cannot be in a signal's name. */

const wakeOrder = (a: RunRecord, b: RunRecord): number =>
  (a.wakeAt ?? 0) - (b.wakeAt ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

const mapErrors = Migrations.mapSqlErrors
