/**
 * The schema of weft's SQL stores as an ordered list of versioned, named migrations, each in a
 * SQLite and a PostgreSQL flavour, and the migrator that applies the missing ones on start. It
 * records what it applied in `weft_migrations` and refuses a database newer than this code.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { SchemaTooNew, StoreUnavailable } from "./Errors.js"

/** One schema change. `sqlite` and `pg` hold statements separated by a `;` at the end of a line. */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly sqlite: string
  readonly pg: string
}

/** A migration recorded in `weft_migrations`. */
export interface AppliedMigration {
  readonly version: number
  readonly name: string
  readonly appliedAt: number
}

/**
 * The tables the migrator itself needs, created before any migration and never changed. The lock
 * table exists because SQLite's `BEGIN` is deferred: a transaction that reads first and writes
 * later fails at once with SQLITE_BUSY when another connection wrote meanwhile, while one whose
 * first statement is a write waits in the busy handler. PostgreSQL uses an advisory lock instead.
 */
export const bootstrap: { readonly sqlite: string; readonly pg: string } = {
  sqlite: `CREATE TABLE IF NOT EXISTS weft_migrations (
  version INTEGER PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS weft_locks (
  name TEXT PRIMARY KEY NOT NULL,
  locked_at INTEGER NOT NULL
) STRICT;`,
  pg: `CREATE TABLE IF NOT EXISTS weft_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS weft_locks (
  name TEXT PRIMARY KEY,
  locked_at BIGINT NOT NULL
);`
}

// JSON values are TEXT in both dialects: the store never queries inside them, TEXT round-trips
// any JSON exactly (jsonb reorders keys and rejects "\u0000"), and writes skip jsonb's parse.
// Identifiers are `COLLATE "C"` on PostgreSQL so that ORDER BY sorts by code point, as SQLite's
// BINARY collation and the memory store do. Booleans are 0/1 integers in both dialects.

/** Every migration, oldest first. Append only: never edit one that was released. */
export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "runs, steps and attempts",
    sqlite: `CREATE TABLE weft_runs (
  id TEXT PRIMARY KEY NOT NULL,
  workflow TEXT NOT NULL,
  version TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'sleeping', 'waiting', 'succeeded', 'failed', 'cancelled')),
  input TEXT,
  output TEXT,
  failure TEXT,
  idempotency_key TEXT,
  queue TEXT NOT NULL,
  priority INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  wake_at INTEGER,
  reason TEXT,
  recoveries INTEGER NOT NULL DEFAULT 0,
  origin TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
) STRICT;
CREATE UNIQUE INDEX weft_runs_idempotency ON weft_runs (workflow, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX weft_runs_claim ON weft_runs (status, queue, priority, created_at);
CREATE INDEX weft_runs_created ON weft_runs (created_at);
CREATE INDEX weft_runs_workflow_created ON weft_runs (workflow, created_at);
CREATE TABLE weft_steps (
  run_id TEXT NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  step_id TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  position INTEGER NOT NULL,
  result TEXT,
  failed INTEGER NOT NULL CHECK (failed IN (0, 1)),
  attempts INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_id)
) STRICT;
CREATE TABLE weft_attempts (
  run_id TEXT NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  step_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'defect')),
  error TEXT,
  delay_millis INTEGER,
  stop_reason TEXT,
  PRIMARY KEY (run_id, step_id, attempt)
) STRICT;`,
    pg: `CREATE TABLE weft_runs (
  id TEXT COLLATE "C" PRIMARY KEY,
  workflow TEXT COLLATE "C" NOT NULL,
  version TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'sleeping', 'waiting', 'succeeded', 'failed', 'cancelled')),
  input TEXT,
  output TEXT,
  failure TEXT,
  idempotency_key TEXT COLLATE "C",
  queue TEXT COLLATE "C" NOT NULL,
  priority INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  wake_at BIGINT,
  reason TEXT,
  recoveries INTEGER NOT NULL DEFAULT 0,
  origin TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT
);
CREATE UNIQUE INDEX weft_runs_idempotency ON weft_runs (workflow, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX weft_runs_claim ON weft_runs (status, queue, priority, created_at);
CREATE INDEX weft_runs_created ON weft_runs (created_at);
CREATE INDEX weft_runs_workflow_created ON weft_runs (workflow, created_at);
CREATE TABLE weft_steps (
  run_id TEXT COLLATE "C" NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  step_id TEXT COLLATE "C" NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  position INTEGER NOT NULL,
  result TEXT,
  failed SMALLINT NOT NULL CHECK (failed IN (0, 1)),
  attempts INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL,
  PRIMARY KEY (run_id, step_id)
);
CREATE TABLE weft_attempts (
  run_id TEXT COLLATE "C" NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  step_id TEXT COLLATE "C" NOT NULL,
  attempt INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'defect')),
  error TEXT,
  delay_millis BIGINT,
  stop_reason TEXT,
  PRIMARY KEY (run_id, step_id, attempt)
);`
  },
  // claimNext reads one queue's runnable runs in its order (priority DESC, created_at, id):
  // weft_runs_claim has status first and priority ascending, so it cannot give that order. Only
  // queued and running rows are indexed: finished runs, the bulk of the table, never are.
  {
    version: 2,
    name: "runnable runs in claim order",
    sqlite:
      `CREATE INDEX weft_runs_runnable ON weft_runs (queue, priority DESC, created_at, id) WHERE status IN ('queued', 'running');`,
    pg:
      `CREATE INDEX weft_runs_runnable ON weft_runs (queue, priority DESC, created_at, id) WHERE status IN ('queued', 'running');`
  },
  // nextWakeAt: an idle worker sleeps until the earliest delayed or sleeping run of its queues is
  // due, or the earliest lease of a running run expires (its worker may be dead), instead of
  // polling for them. Sleeping runs stay out of weft_runs_runnable: claimNext promotes the due ones
  // through weft_runs_sleeping, so a million sleepers never slow a claim.
  {
    version: 3,
    name: "wake times and lease expiries per queue",
    sqlite: `CREATE INDEX weft_runs_wake ON weft_runs (queue, wake_at) WHERE status = 'queued' AND wake_at IS NOT NULL;
CREATE INDEX weft_runs_lease ON weft_runs (queue, lease_expires_at) WHERE status = 'running';
CREATE INDEX weft_runs_sleeping ON weft_runs (queue, wake_at) WHERE status IN ('sleeping', 'waiting');`,
    pg: `CREATE INDEX weft_runs_wake ON weft_runs (queue, wake_at) WHERE status = 'queued' AND wake_at IS NOT NULL;
CREATE INDEX weft_runs_lease ON weft_runs (queue, lease_expires_at) WHERE status = 'running';
CREATE INDEX weft_runs_sleeping ON weft_runs (queue, wake_at) WHERE status IN ('sleeping', 'waiting');`
  },
  // Signals: a mailbox per run. A delivery inserts; the run's lease holder takes the oldest of a
  // name and journals it in one transaction. `waiting_for` is the signal a `waiting` run awaits, so
  // that a delivery wakes only the run that waits for it.
  {
    version: 4,
    name: "signals",
    sqlite: `ALTER TABLE weft_runs ADD COLUMN waiting_for TEXT;
CREATE TABLE weft_signals (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  payload TEXT,
  sent_at INTEGER NOT NULL,
  taken_by TEXT,
  taken_at INTEGER
) STRICT;
CREATE INDEX weft_signals_pending ON weft_signals (run_id, name, seq) WHERE taken_by IS NULL;
CREATE INDEX weft_signals_run ON weft_signals (run_id, seq);`,
    pg: `ALTER TABLE weft_runs ADD COLUMN waiting_for TEXT;
CREATE TABLE weft_signals (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id TEXT COLLATE "C" NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  payload TEXT,
  sent_at BIGINT NOT NULL,
  taken_by TEXT,
  taken_at BIGINT
);
CREATE INDEX weft_signals_pending ON weft_signals (run_id, name, seq) WHERE taken_by IS NULL;
CREATE INDEX weft_signals_run ON weft_signals (run_id, seq);`
  },
  // Cancellation: who asked, why and when; the first request wins, so the record is stable.
  {
    version: 5,
    name: "cancellation requests",
    sqlite: `ALTER TABLE weft_runs ADD COLUMN cancel_requested_at INTEGER;
ALTER TABLE weft_runs ADD COLUMN cancel_by TEXT;
ALTER TABLE weft_runs ADD COLUMN cancel_reason TEXT;`,
    pg: `ALTER TABLE weft_runs ADD COLUMN cancel_requested_at BIGINT;
ALTER TABLE weft_runs ADD COLUMN cancel_by TEXT;
ALTER TABLE weft_runs ADD COLUMN cancel_reason TEXT;`
  },
  // Children: the run and step that started a run; a child's end wakes its parent, and cancelling
  // a run reaches its descendants through this link.
  {
    version: 6,
    name: "child runs",
    sqlite: `ALTER TABLE weft_runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE weft_runs ADD COLUMN parent_step_id TEXT;
CREATE INDEX weft_runs_parent ON weft_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;`,
    pg: `ALTER TABLE weft_runs ADD COLUMN parent_run_id TEXT COLLATE "C";
ALTER TABLE weft_runs ADD COLUMN parent_step_id TEXT;
CREATE INDEX weft_runs_parent ON weft_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;`
  },
  // Queue limits: the declared limits of each queue (the last declaration wins), whether its runs
  // carry concurrency keys, and the claims of a rate-limited queue still in its window (one row
  // per claim time, with how many runs were claimed then). A run carries its key and the key's
  // limit, set when it starts; the running runs of a key are counted through their own index.
  {
    version: 7,
    name: "queue limits",
    sqlite: `ALTER TABLE weft_runs ADD COLUMN concurrency_key TEXT;
ALTER TABLE weft_runs ADD COLUMN concurrency_limit INTEGER;
CREATE INDEX weft_runs_running_key ON weft_runs (queue, concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
CREATE TABLE weft_queues (
  name TEXT PRIMARY KEY NOT NULL,
  concurrency INTEGER,
  rate_limit INTEGER,
  rate_interval_millis INTEGER,
  keyed INTEGER NOT NULL DEFAULT 0 CHECK (keyed IN (0, 1)),
  declared_by TEXT,
  declared_at INTEGER
) STRICT;
CREATE TABLE weft_queue_claims (
  queue TEXT NOT NULL,
  at INTEGER NOT NULL,
  claims INTEGER NOT NULL,
  PRIMARY KEY (queue, at)
) STRICT;`,
    pg: `ALTER TABLE weft_runs ADD COLUMN concurrency_key TEXT COLLATE "C";
ALTER TABLE weft_runs ADD COLUMN concurrency_limit INTEGER;
CREATE INDEX weft_runs_running_key ON weft_runs (queue, concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
CREATE TABLE weft_queues (
  name TEXT COLLATE "C" PRIMARY KEY,
  concurrency INTEGER,
  rate_limit INTEGER,
  rate_interval_millis BIGINT,
  keyed SMALLINT NOT NULL DEFAULT 0 CHECK (keyed IN (0, 1)),
  declared_by TEXT,
  declared_at BIGINT
);
CREATE TABLE weft_queue_claims (
  queue TEXT COLLATE "C" NOT NULL,
  at BIGINT NOT NULL,
  claims INTEGER NOT NULL,
  PRIMARY KEY (queue, at)
);`
  },
  // Re-drives: a failed or cancelled run sent back to its queue with part of its journal. The run
  // keeps how many times it was re-driven and, per step, the last attempt before the latest re-drive
  // (the steps' retry policies count only the attempts after it); each re-drive is kept in
  // weft_redrives with who asked, why, the failure it cleared and the completions it discarded.
  {
    version: 8,
    name: "re-drives",
    sqlite: `ALTER TABLE weft_runs ADD COLUMN redrives INTEGER NOT NULL DEFAULT 0;
ALTER TABLE weft_runs ADD COLUMN prior_attempts TEXT;
CREATE TABLE weft_redrives (
  run_id TEXT NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  requested_by TEXT NOT NULL,
  reason TEXT NOT NULL,
  previous_status TEXT NOT NULL,
  failure TEXT,
  from_step TEXT,
  discarded TEXT NOT NULL,
  prior_attempts TEXT NOT NULL,
  children TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) STRICT;`,
    pg: `ALTER TABLE weft_runs ADD COLUMN redrives INTEGER NOT NULL DEFAULT 0;
ALTER TABLE weft_runs ADD COLUMN prior_attempts TEXT;
CREATE TABLE weft_redrives (
  run_id TEXT COLLATE "C" NOT NULL REFERENCES weft_runs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  at BIGINT NOT NULL,
  requested_by TEXT NOT NULL,
  reason TEXT NOT NULL,
  previous_status TEXT NOT NULL,
  failure TEXT,
  from_step TEXT,
  discarded TEXT NOT NULL,
  prior_attempts TEXT NOT NULL,
  children TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
);`
  },
  // Circuit breakers declared `shared`: one row per
  // breaker name, its state (CircuitBreaker.State as JSON) changed under the row's lock, so every
  // worker sees the same breaker. Only the PostgreSQL store uses it; the table exists in both
  // dialects so that the schemas keep the same versions.
  {
    version: 9,
    name: "shared circuit breakers",
    sqlite: `CREATE TABLE weft_circuit_breakers (
  name TEXT PRIMARY KEY NOT NULL,
  state TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;`,
    pg: `CREATE TABLE weft_circuit_breakers (
  name TEXT COLLATE "C" PRIMARY KEY,
  state TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);`
  },
  // The correlation id is the caller's, given at start and put on every log line.
  {
    version: 10,
    name: "correlation ids",
    sqlite: `ALTER TABLE weft_runs ADD COLUMN correlation_id TEXT;`,
    pg: `ALTER TABLE weft_runs ADD COLUMN correlation_id TEXT;`
  },
  // Claims read queued runs and runs whose lease expired separately, each through an index in
  // claim order (see SqlStore's claimOpen): queued runs alone here, expired leases through
  // weft_runs_lease. The index of version 2 also held every running run, so each claim added an
  // entry to it; this one is left as soon as a run is claimed. weft_runs_claim (status first) goes:
  // a planner that had not yet seen a burst of new runs (its statistics say few are queued) took
  // it for a claim, then read and sorted every queued run of the queue on each claim. Listing by
  // status keeps an index for the statuses that are few (failed, cancelled, running, waiting...);
  // queued runs are listed through weft_runs_queued, succeeded ones, the bulk, through created_at.
  {
    version: 11,
    name: "narrower indexes for claims and status listings",
    sqlite: `CREATE INDEX weft_runs_queued ON weft_runs (queue, priority DESC, created_at, id) WHERE status = 'queued';
DROP INDEX weft_runs_runnable;
CREATE INDEX weft_runs_status ON weft_runs (status, created_at) WHERE status NOT IN ('queued', 'succeeded');
DROP INDEX weft_runs_claim;`,
    pg: `CREATE INDEX weft_runs_queued ON weft_runs (queue, priority DESC, created_at, id) WHERE status = 'queued';
DROP INDEX weft_runs_runnable;
CREATE INDEX weft_runs_status ON weft_runs (status, created_at) WHERE status NOT IN ('queued', 'succeeded');
DROP INDEX weft_runs_claim;`
  },
  // The journal's hot path, lighter. (1) PostgreSQL checks a foreign key with a trigger that locks
  // the run's row (SELECT ... FOR KEY SHARE) for every step and attempt row inserted: ~12% of the
  // server's CPU per one-step run. weft writes those rows only in the statement whose fence on the
  // run's row (id and lease owner) matched, which proves the run exists; runs are never deleted by
  // weft. SQLite keeps its keys (its check is one index lookup, and dropping one rebuilds the table).
  // (2) A step that succeeded at its first try (its one attempt began and ended with the step) has
  // no weft_attempts row: its step row is marked `attempt_implied` and stands for it, and the store
  // gives the attempt back when reading the journal (one row fewer per step; internal/impliedAttempts).
  // The version keeps older code, which would read those steps as never attempted, away.
  {
    version: 12,
    name: "journal rows without foreign keys; first successful attempts kept in the step row",
    sqlite:
      `ALTER TABLE weft_steps ADD COLUMN attempt_implied INTEGER NOT NULL DEFAULT 0 CHECK (attempt_implied IN (0, 1));`,
    pg: `ALTER TABLE weft_steps DROP CONSTRAINT weft_steps_run_id_fkey;
ALTER TABLE weft_attempts DROP CONSTRAINT weft_attempts_run_id_fkey;
ALTER TABLE weft_steps ADD COLUMN attempt_implied SMALLINT NOT NULL DEFAULT 0 CHECK (attempt_implied IN (0, 1));`
  }
]

/** The newest schema version this code knows. */
export const latestVersion: number = migrations.reduce((max, migration) => Math.max(max, migration.version), 0)

/** Splits a migration's text into its statements (a `;` at the end of a line ends one). */
export const statements = (ddl: string): ReadonlyArray<string> =>
  ddl.split(/;[ \t]*(?:\r?\n|$)/).map((statement) => statement.trim()).filter((statement) => statement.length > 0)

/** Whether a failure or defect is @effect/sql's SqlError. */
export const isSqlError = (u: unknown): u is SqlError => u instanceof SqlError

/**
 * Turns @effect/sql's SqlError, failed or as the defect a failed COMMIT becomes, into
 * StoreUnavailable for `operation`. Shared by the SQL store.
 */
export const mapSqlErrors =
  (operation: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, SqlError> | StoreUnavailable, R> =>
    Effect.catchAll(
      effect,
      (error): Effect.Effect<never, Exclude<E, SqlError> | StoreUnavailable> =>
        isSqlError(error)
          ? Effect.fail(storeUnavailable(operation, error))
          : Effect.fail(error as Exclude<E, SqlError>)
    ).pipe(
      // @effect/sql turns a failed COMMIT or ROLLBACK into a defect: a disk or lock failure is still the store's.
      Effect.catchSomeDefect((defect) =>
        isSqlError(defect)
          ? Option.some(Effect.fail(storeUnavailable(operation, defect)))
          : Option.none()
      )
    )

/** StoreUnavailable for a SqlError of `operation`: described, and marked permanent when it is. */
export const storeUnavailable = (operation: string, error: SqlError): StoreUnavailable =>
  new StoreUnavailable({
    operation,
    detail: describeSqlError(error),
    cause: error,
    ...(isPermanent(error) ? { permanent: true } : {})
  })

// PostgreSQL's SQLSTATE classes where the statement itself is refused: data exceptions (22),
// integrity constraints (23), syntax, undefined objects and privileges (42), features not
// supported (0A), and data corruption (XX001, XX002). Everything else (connection exceptions 08,
// rollbacks for serialization or deadlock 40, resources 53, locks 55, shutdowns 57, I/O 58, the
// server's internal errors) may pass.
const permanentPgClasses = new Set(["22", "23", "42", "0A"])
const permanentPgCodes = new Set(["XX001", "XX002"])
// SQLite's result codes of the same kind: a constraint, a type mismatch, a value too big, a bad
// parameter index, an error in the statement (a missing table or column), a corrupt file or one
// that is not a database. BUSY, LOCKED, IOERR, FULL, CANTOPEN and the like may pass.
const permanentSqlitePrefixes = [
  "SQLITE_CONSTRAINT",
  "SQLITE_MISMATCH",
  "SQLITE_TOOBIG",
  "SQLITE_RANGE",
  "SQLITE_CORRUPT",
  "SQLITE_NOTADB"
]

/**
 * Whether retrying `error`'s statement cannot help, by the database's own error code (a
 * PostgreSQL SQLSTATE or a SQLite result code); an error without a code may pass.
 */
export const isPermanent = (error: SqlError): boolean => {
  const cause = error.cause
  const code = cause instanceof Error && "code" in cause && typeof cause.code === "string" ? cause.code : undefined
  if (code === undefined) return false
  if (code.startsWith("SQLITE_")) {
    return code === "SQLITE_ERROR" || permanentSqlitePrefixes.some((prefix) => code.startsWith(prefix))
  }
  return code.length === 5 && (permanentPgClasses.has(code.slice(0, 2)) || permanentPgCodes.has(code))
}

/** A SqlError in words: its message and the driver's message and code underneath. */
export const describeSqlError = (error: SqlError): string => {
  const cause = error.cause
  const inner = cause instanceof Error
    ? `${cause.message}${"code" in cause && typeof cause.code === "string" ? ` (${cause.code})` : ""}`
    : cause === undefined
    ? ""
    : String(cause)
  return inner === "" ? error.message : `${error.message}: ${inner}`
}

/**
 * Applies the missing migrations in one transaction. Safe to run twice and from several
 * processes at once: the second starter waits for the first and then finds nothing to do.
 */
export const run: Effect.Effect<void, SchemaTooNew | StoreUnavailable, SqlClient.SqlClient> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const migrate: Effect.Effect<void, SchemaTooNew | StoreUnavailable | SqlError> = sql.onDialectOrElse({
      sqlite: () =>
        execute(sql, bootstrap.sqlite).pipe(
          Effect.zipRight(
            sql.withTransaction(
              sql`INSERT INTO weft_locks (name, locked_at) VALUES ('migrations', ${now})
                ON CONFLICT (name) DO UPDATE SET locked_at = excluded.locked_at`.pipe(
                Effect.zipRight(applyMissing(sql, "sqlite", now))
              )
            ).pipe(
              // Two connections in one thread (two stores on one file in a process): if this fiber
              // yielded while holding the write lock, the other connection's busy handler would block
              // the thread, so the lock could never be released. Keep the transaction in one slice.
              Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER)
            )
          )
        ),
      pg: () =>
        sql.withTransaction(
          // Concurrent `CREATE TABLE IF NOT EXISTS` can fail on PostgreSQL (a pg_type unique
          // violation), so even the bootstrap tables are created under the lock.
          sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`.pipe(
            Effect.zipRight(execute(sql, bootstrap.pg)),
            Effect.zipRight(applyMissing(sql, "pg", now))
          )
        ),
      orElse: () =>
        Effect.fail(
          new StoreUnavailable({ operation: "migrate", detail: "weft's SQL store supports SQLite and PostgreSQL only" })
        )
    })
    yield* mapSqlErrors("migrate")(migrate)
  }
)

/** The migrations recorded in the database, oldest first (empty before the first `run`). */
export const applied: Effect.Effect<ReadonlyArray<AppliedMigration>, StoreUnavailable, SqlClient.SqlClient> = Effect
  .gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ version: number | string; name: string; applied_at: number | string }>`
      SELECT version, name, applied_at FROM weft_migrations ORDER BY version`
    return rows.map((row) => ({ version: Number(row.version), name: row.name, appliedAt: Number(row.applied_at) }))
  }).pipe(mapSqlErrors("migrate"))

// An arbitrary constant: the advisory lock key that serializes weft migrations on PostgreSQL.
const MIGRATION_LOCK_KEY = 0x77656674

// Prepared, not `.unprepared`: @effect/sql-sqlite-node's unprepared path lets a preparation error
// (a syntax error, a file that is not a database) escape as a defect instead of a SqlError.
const execute = (sql: SqlClient.SqlClient, ddl: string): Effect.Effect<void, SqlError> =>
  Effect.forEach(statements(ddl), (statement) => sql.unsafe(statement), { discard: true })

const applyMissing = (
  sql: SqlClient.SqlClient,
  dialect: "sqlite" | "pg",
  now: number
): Effect.Effect<void, SqlError | SchemaTooNew> =>
  Effect.gen(function*() {
    const rows = yield* sql<{ version: number | string }>`SELECT version FROM weft_migrations`
    const done = new Set(rows.map((row) => Number(row.version)))
    const found = Math.max(0, ...done)
    if (found > latestVersion) {
      return yield* Effect.fail(new SchemaTooNew({ found, supported: latestVersion }))
    }
    for (const migration of migrations) {
      if (done.has(migration.version)) continue
      yield* execute(sql, migration[dialect])
      yield* sql`INSERT INTO weft_migrations (version, name, applied_at)
        VALUES (${migration.version}, ${migration.name}, ${now})`
    }
  })
