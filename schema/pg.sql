-- weft's PostgreSQL schema after every migration (latest version 12).
-- Generated: do not edit. Regenerate with: npx tsx --conditions @weft/source packages/runtime/test/dumpSchema.ts

-- bootstrap (created by the migrator itself)

CREATE TABLE IF NOT EXISTS weft_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS weft_locks (
  name TEXT PRIMARY KEY,
  locked_at BIGINT NOT NULL
);

-- version 1: runs, steps and attempts

CREATE TABLE weft_runs (
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
);

-- version 2: runnable runs in claim order

CREATE INDEX weft_runs_runnable ON weft_runs (queue, priority DESC, created_at, id) WHERE status IN ('queued', 'running');

-- version 3: wake times and lease expiries per queue

CREATE INDEX weft_runs_wake ON weft_runs (queue, wake_at) WHERE status = 'queued' AND wake_at IS NOT NULL;

CREATE INDEX weft_runs_lease ON weft_runs (queue, lease_expires_at) WHERE status = 'running';

CREATE INDEX weft_runs_sleeping ON weft_runs (queue, wake_at) WHERE status IN ('sleeping', 'waiting');

-- version 4: signals

ALTER TABLE weft_runs ADD COLUMN waiting_for TEXT;

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

CREATE INDEX weft_signals_run ON weft_signals (run_id, seq);

-- version 5: cancellation requests

ALTER TABLE weft_runs ADD COLUMN cancel_requested_at BIGINT;

ALTER TABLE weft_runs ADD COLUMN cancel_by TEXT;

ALTER TABLE weft_runs ADD COLUMN cancel_reason TEXT;

-- version 6: child runs

ALTER TABLE weft_runs ADD COLUMN parent_run_id TEXT COLLATE "C";

ALTER TABLE weft_runs ADD COLUMN parent_step_id TEXT;

CREATE INDEX weft_runs_parent ON weft_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- version 7: queue limits

ALTER TABLE weft_runs ADD COLUMN concurrency_key TEXT COLLATE "C";

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
);

-- version 8: re-drives

ALTER TABLE weft_runs ADD COLUMN redrives INTEGER NOT NULL DEFAULT 0;

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
);

-- version 9: shared circuit breakers

CREATE TABLE weft_circuit_breakers (
  name TEXT COLLATE "C" PRIMARY KEY,
  state TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- version 10: correlation ids

ALTER TABLE weft_runs ADD COLUMN correlation_id TEXT;

-- version 11: narrower indexes for claims and status listings

CREATE INDEX weft_runs_queued ON weft_runs (queue, priority DESC, created_at, id) WHERE status = 'queued';

DROP INDEX weft_runs_runnable;

CREATE INDEX weft_runs_status ON weft_runs (status, created_at) WHERE status NOT IN ('queued', 'succeeded');

DROP INDEX weft_runs_claim;

-- version 12: journal rows without foreign keys; first successful attempts kept in the step row

ALTER TABLE weft_steps DROP CONSTRAINT weft_steps_run_id_fkey;

ALTER TABLE weft_attempts DROP CONSTRAINT weft_attempts_run_id_fkey;

ALTER TABLE weft_steps ADD COLUMN attempt_implied SMALLINT NOT NULL DEFAULT 0 CHECK (attempt_implied IN (0, 1));
