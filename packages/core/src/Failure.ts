/**
 * The built-in failures of weft. Each is a `Schema.TaggedError`, so it travels through the
 * journal with its fields and decodes back into the same class, and each names the condition
 * it reports. `Defect` is the schema that keeps a bug's name, message, stack and cause chain.
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/** A step attempt ran longer than its `timeout`. Retryable: a slow call may be fast next time. */
export class StepTimeout extends Schema.TaggedError<StepTimeout>("@weft/core/StepTimeout")("StepTimeout", {
  step: Schema.String,
  attempt: Schema.Number,
  timeoutMillis: Schema.Number
}) {
  readonly retryable = true
  get message(): string {
    return `step "${this.step}" attempt ${this.attempt} timed out after ${this.timeoutMillis}ms`
  }
}

/** The input of a run does not match its workflow's input schema. `path` names the bad field. */
export class InputInvalid extends Schema.TaggedError<InputInvalid>("@weft/core/InputInvalid")("InputInvalid", {
  workflow: Schema.String,
  path: Schema.String,
  issue: Schema.String
}) {
  get message(): string {
    return `input of workflow "${this.workflow}" is invalid${this.path === "" ? "" : ` at ${this.path}`}: ${this.issue}`
  }
}

/**
 * The workflow's code no longer matches the run's journal: replay met `found` where the journal
 * recorded `expected` (at `position` within `scope`). The run fails instead of doing something wrong.
 */
export class NonDeterminism extends Schema.TaggedError<NonDeterminism>("@weft/core/NonDeterminism")(
  "NonDeterminism",
  {
    runId: Schema.String,
    scope: Schema.String,
    position: Schema.Number,
    expected: Schema.String,
    found: Schema.String
  }
) {
  get message(): string {
    return `run ${this.runId} no longer matches its journal: at position ${this.position}${
      this.scope === "" ? "" : ` of ${this.scope}`
    } the journal has step "${this.expected}" but the workflow now runs "${this.found}"`
  }
}

/** The run was cancelled; `by` and `reason` say who asked and why. */
export class Cancelled extends Schema.TaggedError<Cancelled>("@weft/core/Cancelled")("Cancelled", {
  runId: Schema.String,
  by: Schema.String,
  reason: Schema.String
}) {
  get message(): string {
    return `run ${this.runId} was cancelled by ${this.by}: ${this.reason}`
  }
}

/** No signal `signal` arrived within `timeoutMillis` of the run starting to wait for it at step `step`. */
export class SignalTimeout extends Schema.TaggedError<SignalTimeout>("@weft/core/SignalTimeout")("SignalTimeout", {
  signal: Schema.String,
  step: Schema.String,
  timeoutMillis: Schema.Number
}) {
  get message(): string {
    return `no signal "${this.signal}" arrived within ${this.timeoutMillis} ms (step ${this.step})`
  }
}

/**
 * A poison run: it was recovered `recoveries` times (claimed again after the worker executing it
 * stopped without finishing it: the process died, its lease expired, or it was released), more than
 * its `limit`, so the engine failed it instead of executing it again. Its journal is kept: fix the
 * cause, then re-drive it (`weft retry`).
 */
export class RecoveryLimit extends Schema.TaggedError<RecoveryLimit>("@weft/core/RecoveryLimit")("RecoveryLimit", {
  runId: Schema.String,
  recoveries: Schema.Number,
  limit: Schema.Number
}) {
  get message(): string {
    return `run ${this.runId} was recovered ${this.recoveries} times, more than its limit of ${this.limit}: ` +
      `the worker executing it kept stopping without finishing it (a poison run?), so it was not executed ` +
      `again; fix the cause, then re-drive it with: weft retry ${this.runId}`
  }
}

/** Failures the engine itself can add to any workflow's error channel. */
export type RunFailure = NonDeterminism | Cancelled | RecoveryLimit

/** Whether an error asks to be retried (`retryable = true` on the error value). */
export const isRetryable = (error: unknown): boolean =>
  Predicate.isObject(error) && "retryable" in error && error.retryable === true

/** The tag of a typed error, if it has one. */
export const tagOf = (error: unknown): string | undefined =>
  Predicate.isObject(error) && "_tag" in error && typeof error._tag === "string" ? error._tag : undefined

/**
 * How a defect (a thrown value, a bug) is stored: name, message, stack, the own fields of the
 * error (such as `code`), and its `cause` chain followed in full.
 */
export interface DefectEncoded {
  readonly name: string
  readonly message: string
  readonly stack?: string | undefined
  readonly fields?: { readonly [key: string]: unknown } | undefined
  readonly cause?: DefectEncoded | undefined
}

const MAX_CAUSE_DEPTH = 16

const jsonSafe = (value: unknown): unknown => {
  try {
    return JSON.parse(JSON.stringify(value))
  } catch {
    return String(value)
  }
}

const encodeDefect = (value: unknown, depth = 0): DefectEncoded => {
  if (value instanceof Error) {
    const fields: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      if (key !== "cause" && key !== "stack" && key !== "message" && key !== "name") {
        fields[key] = jsonSafe((value as unknown as Record<string, unknown>)[key])
      }
    }
    return {
      name: value.name,
      message: value.message,
      stack: value.stack,
      ...(Object.keys(fields).length > 0 ? { fields } : {}),
      ...(value.cause !== undefined && depth < MAX_CAUSE_DEPTH ? { cause: encodeDefect(value.cause, depth + 1) } : {})
    }
  }
  if (Predicate.isObject(value) && "_tag" in value) {
    return { name: String(value._tag), message: JSON.stringify(jsonSafe(value)) }
  }
  return {
    name: "NonError",
    message: typeof value === "string" ? value : JSON.stringify(jsonSafe(value)) ?? "undefined"
  }
}

const decodeDefect = (encoded: DefectEncoded): Error => {
  const error = new Error(encoded.message)
  error.name = encoded.name
  error.stack = encoded.stack ?? `${encoded.name}: ${encoded.message}`
  if (encoded.fields !== undefined) Object.assign(error, encoded.fields)
  if (encoded.cause !== undefined) error.cause = decodeDefect(encoded.cause)
  return error
}

const DefectEncodedSchema: Schema.Schema<DefectEncoded> = Schema.Struct({
  name: Schema.String,
  message: Schema.String,
  stack: Schema.optional(Schema.String),
  fields: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  cause: Schema.optional(Schema.suspend((): Schema.Schema<DefectEncoded> => DefectEncodedSchema))
})

/**
 * The defect schema of weft: unlike `Schema.Defect` it keeps the stack (so the CLI can point at
 * the user's file and line), the error's own fields and the whole `cause` chain.
 */
export const Defect: Schema.Schema<unknown, DefectEncoded> = Schema.transform(DefectEncodedSchema, Schema.Unknown, {
  strict: true,
  decode: decodeDefect,
  encode: (value) => encodeDefect(value)
}).annotations({ identifier: "Defect" })

/**
 * A circuit breaker is open: the call was refused without reaching the dependency. `retryAfter` is
 * the number of milliseconds until the breaker will let a trial call through; a retry policy waits
 * at least that long. Retryable: the dependency may be back by then.
 */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>("@weft/core/CircuitOpen")("CircuitOpen", {
  breaker: Schema.String,
  retryAfter: Schema.Number
}) {
  readonly retryable = true
  get message(): string {
    return `circuit breaker "${this.breaker}" is open: calls fail fast for another ${this.retryAfter}ms`
  }
}

/**
 * Every built-in failure, for encoding a run's Cause whatever its workflow declared. (Last in the
 * file: a class cannot be used before its declaration runs.)
 */
export const BuiltIn = Schema.Union(
  StepTimeout,
  SignalTimeout,
  InputInvalid,
  NonDeterminism,
  Cancelled,
  RecoveryLimit,
  CircuitOpen
)
export type BuiltIn = typeof BuiltIn.Type
