-- weft's SQLite schema after every migration (latest version 12).
-- Generated: do not edit. Regenerate with: npx tsx --conditions @weft/source packages/runtime/test/dumpSchema.ts

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
) STRICT;

CREATE TABLE weft_circuit_breakers (
  name TEXT PRIMARY KEY NOT NULL,
  state TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE weft_locks (
  name TEXT PRIMARY KEY NOT NULL,
  locked_at INTEGER NOT NULL
) STRICT;

CREATE TABLE weft_migrations (
  version INTEGER PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE weft_queue_claims (
  queue TEXT NOT NULL,
  at INTEGER NOT NULL,
  claims INTEGER NOT NULL,
  PRIMARY KEY (queue, at)
) STRICT;

CREATE TABLE weft_queues (
  name TEXT PRIMARY KEY NOT NULL,
  concurrency INTEGER,
  rate_limit INTEGER,
  rate_interval_millis INTEGER,
  keyed INTEGER NOT NULL DEFAULT 0 CHECK (keyed IN (0, 1)),
  declared_by TEXT,
  declared_at INTEGER
) STRICT;

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
) STRICT;

CREATE TABLE weft_runs (
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
, waiting_for TEXT, cancel_requested_at INTEGER, cancel_by TEXT, cancel_reason TEXT, parent_run_id TEXT, parent_step_id TEXT, concurrency_key TEXT, concurrency_limit INTEGER, redrives INTEGER NOT NULL DEFAULT 0, prior_attempts TEXT, correlation_id TEXT) STRICT;

CREATE INDEX weft_runs_created ON weft_runs (created_at);

CREATE UNIQUE INDEX weft_runs_idempotency ON weft_runs (workflow, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX weft_runs_lease ON weft_runs (queue, lease_expires_at) WHERE status = 'running';

CREATE INDEX weft_runs_parent ON weft_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE INDEX weft_runs_queued ON weft_runs (queue, priority DESC, created_at, id) WHERE status = 'queued';

CREATE INDEX weft_runs_running_key ON weft_runs (queue, concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;

CREATE INDEX weft_runs_sleeping ON weft_runs (queue, wake_at) WHERE status IN ('sleeping', 'waiting');

CREATE INDEX weft_runs_status ON weft_runs (status, created_at) WHERE status NOT IN ('queued', 'succeeded');

CREATE INDEX weft_runs_wake ON weft_runs (queue, wake_at) WHERE status = 'queued' AND wake_at IS NOT NULL;

CREATE INDEX weft_runs_workflow_created ON weft_runs (workflow, created_at);

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

CREATE INDEX weft_signals_run ON weft_signals (run_id, seq);

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
  finished_at INTEGER NOT NULL, attempt_implied INTEGER NOT NULL DEFAULT 0 CHECK (attempt_implied IN (0, 1)),
  PRIMARY KEY (run_id, step_id)
) STRICT;
