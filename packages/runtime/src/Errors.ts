/**
 * The runtime's own failures: a store that cannot be reached, a start that conflicts with a
 * recorded run, a lease that another worker took over, a run or workflow that does not exist.
 */
import { Failure } from "@weft/core"
import * as Schema from "effect/Schema"

/**
 * The store could not do `operation` (after the runtime's own retries, where it has them).
 * `permanent`: the database refused the statement itself (a constraint, a missing table or column,
 * a value it cannot take, a corrupt file), so trying again cannot help: the runtime's storage
 * retries give up at once instead of retrying for minutes. Absent means it may pass (a dropped
 * connection, a restart, a lock, a full disk).
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>("@weft/runtime/StoreUnavailable")(
  "StoreUnavailable",
  {
    operation: Schema.String,
    detail: Schema.String,
    cause: Schema.optional(Failure.Defect),
    permanent: Schema.optional(Schema.Boolean)
  }
) {
  get message(): string {
    return `store unavailable during ${this.operation}: ${this.detail}`
  }
}

/** A start named an existing run but differs from it (another workflow or another input). */
export class RunConflict extends Schema.TaggedError<RunConflict>("@weft/runtime/RunConflict")("RunConflict", {
  runId: Schema.String,
  detail: Schema.String
}) {
  get message(): string {
    return `run ${this.runId} already exists: ${this.detail}`
  }
}

/** No run has this id. */
export class RunNotFound extends Schema.TaggedError<RunNotFound>("@weft/runtime/RunNotFound")("RunNotFound", {
  runId: Schema.String
}) {
  get message(): string {
    return `no run with id ${this.runId}`
  }
}

/** The worker no longer holds the run's lease (it expired and another worker took the run). */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("@weft/runtime/LeaseLost")("LeaseLost", {
  runId: Schema.String,
  owner: Schema.String
}) {
  get message(): string {
    return `worker ${this.owner} no longer holds the lease of run ${this.runId}`
  }
}

/**
 * Not a failure: the run suspended itself (a durable sleep, a long retry backoff) and holds no
 * lease, memory or worker slot until `wakeAt`; a worker claims it then and it continues by replay.
 */
export class RunSuspended extends Schema.TaggedError<RunSuspended>("@weft/runtime/RunSuspended")("RunSuspended", {
  runId: Schema.String,
  /** When it wakes by itself; none when it waits for a signal with no timeout. */
  wakeAt: Schema.optional(Schema.Number),
  /** The signals it waits for (several when branches of a task group wait for different ones). */
  signals: Schema.optional(Schema.Array(Schema.String)),
  /** The child runs it waits for (the first to end wakes it). */
  children: Schema.optional(Schema.Array(Schema.String)),
  reason: Schema.String
}) {
  get message(): string {
    return `run ${this.runId} is ${this.reason}`
  }
}

/** The run has finished: it takes no more signals. */
export class RunFinished extends Schema.TaggedError<RunFinished>("@weft/runtime/RunFinished")("RunFinished", {
  runId: Schema.String,
  status: Schema.String
}) {
  get message(): string {
    return `run ${this.runId} has ${this.status}: it takes no more signals`
  }
}

/** A signal the workflow does not declare, or whose payload does not match its schema; nothing was stored. */
export class SignalInvalid extends Schema.TaggedError<SignalInvalid>("@weft/runtime/SignalInvalid")("SignalInvalid", {
  runId: Schema.String,
  signal: Schema.String,
  detail: Schema.String
}) {
  get message(): string {
    return `signal "${this.signal}" for run ${this.runId} rejected: ${this.detail}`
  }
}

/** The run is held by a live worker, or is finished, so it cannot be claimed now. */
export class RunNotClaimable extends Schema.TaggedError<RunNotClaimable>("@weft/runtime/RunNotClaimable")(
  "RunNotClaimable",
  { runId: Schema.String, status: Schema.String, detail: Schema.String }
) {
  get message(): string {
    return `run ${this.runId} cannot be resumed now (${this.status}): ${this.detail}`
  }
}

/** No workflow of this name is known to this process. */
export class WorkflowNotFound extends Schema.TaggedError<WorkflowNotFound>("@weft/runtime/WorkflowNotFound")(
  "WorkflowNotFound",
  { workflow: Schema.String, known: Schema.Array(Schema.String) }
) {
  get message(): string {
    return `unknown workflow "${this.workflow}"${this.known.length === 0 ? "" : `; known: ${this.known.join(", ")}`}`
  }
}

/** The database's schema is newer than this code understands: refuse rather than corrupt it. */
export class SchemaTooNew extends Schema.TaggedError<SchemaTooNew>("@weft/runtime/SchemaTooNew")("SchemaTooNew", {
  found: Schema.Number,
  supported: Schema.Number
}) {
  get message(): string {
    return `the store's schema is at version ${this.found} but this weft supports up to ${this.supported}: upgrade weft`
  }
}

/** A re-drive was asked for a run that has not failed nor been cancelled: only those can be re-driven. */
export class RunNotRedrivable extends Schema.TaggedError<RunNotRedrivable>("@weft/runtime/RunNotRedrivable")(
  "RunNotRedrivable",
  { runId: Schema.String, status: Schema.String }
) {
  get message(): string {
    return `run ${this.runId} is ${this.status}: only a failed or cancelled run can be re-driven`
  }
}

/** A re-drive named a step that is not in the run's journal; `steps` are those it holds, in journal order. */
export class StepNotInJournal extends Schema.TaggedError<StepNotInJournal>("@weft/runtime/StepNotInJournal")(
  "StepNotInJournal",
  { runId: Schema.String, stepId: Schema.String, steps: Schema.Array(Schema.String) }
) {
  get message(): string {
    return `run ${this.runId} has no step "${this.stepId}" in its journal; ${
      this.steps.length === 0 ? "its journal is empty" : `its steps: ${this.steps.join(", ")}`
    }`
  }
}
