/**
 * The semantics of one step, independent of storage: look up the journal, replay a recorded
 * result, or run attempts under the retry policy, timeout and circuit breaker, recording each one.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type { AttemptRecord, InterruptedAttempt, StepKind } from "../Execution.js"
import { Execution, interruptedAttempts, journalOnly } from "../Execution.js"
import * as Failure from "../Failure.js"
import * as Retry from "../Retry.js"

/** What a step gives to its attempts through `Step.context`. */
export interface StepInfo {
  readonly runId: string
  readonly workflow: string
  readonly stepId: string
  readonly attempt: number
  /** Stable across attempts and crashes of the same run: pass it to external APIs. */
  readonly idempotencyKey: string
}

export class StepContext extends Context.Tag("@weft/core/StepContext")<StepContext, StepInfo>() {}

/**
 * A JSON value, stored as is: the success schema of a step that declares none. Encoding checks
 * the value really is JSON, so a Date or a class instance fails loudly instead of coming back
 * from the journal as something else.
 */
export const Json: Schema.Schema<unknown> = Schema.transformOrFail(Schema.Unknown, Schema.Unknown, {
  strict: true,
  decode: (value) => Either.right(value),
  encode: (value, _, ast) => {
    const problem = findNonJson(value, "")
    return problem === undefined
      ? Either.right(value)
      : Either.left(
        new ParseResult.Type(ast, value, `${problem}: declare a success schema for values that are not plain JSON`)
      )
  }
}).annotations({ identifier: "Json" })

const findNonJson = (value: unknown, path: string): string | undefined => {
  if (value === null || value === undefined || typeof value === "string" || typeof value === "boolean") return
  if (typeof value === "number") return Number.isFinite(value) ? undefined : `${path || "value"} is ${value}`
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      // JSON stores it as null: the replay would see another value than the first run.
      if (value[i] === undefined) return `${path || "value"}[${i}] is undefined (JSON stores it as null)`
      const p = findNonJson(value[i], `${path}[${i}]`)
      if (p !== undefined) return p
    }
    return
  }
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      return `${path || "value"} is a ${proto?.constructor?.name ?? "non-plain object"}`
    }
    for (const [k, v] of Object.entries(value)) {
      const p = findNonJson(v, path === "" ? k : `${path}.${k}`)
      if (p !== undefined) return p
    }
    return
  }
  return `${path || "value"} is a ${typeof value}`
}

/** A step, compiled once when it is defined: per call there is only a lookup and the attempt loop. */
export interface CompiledStep {
  readonly name: string
  readonly kind: StepKind
  readonly policy: Retry.Policy
  readonly timeoutMillis: number | undefined
  readonly circuitBreaker: CircuitBreaker.CircuitBreaker | undefined
  readonly encodeExit: (exit: Exit.Exit<unknown, unknown>) => Either.Either<unknown, unknown>
  readonly decodeExit: (encoded: unknown) => Either.Either<Exit.Exit<unknown, unknown>, unknown>
  /**
   * A successful attempt's value, through the journal encoding and back (`encodeExit` then
   * `decodeExit` of a success, without the Exit schema's own work): the encoded result to store
   * and the value the step returns, or the encoding's error.
   */
  readonly roundTripSuccess: (
    value: unknown
  ) => Either.Either<
    { readonly encoded: unknown; readonly value: unknown },
    { readonly encoding: boolean; readonly error: unknown }
  >
  readonly encodeError: (error: unknown) => Either.Either<unknown, unknown>
  readonly decodeError: (encoded: unknown) => Either.Either<unknown, unknown>
}

export const compile = (options: {
  readonly name: string
  readonly kind: StepKind
  readonly success: Schema.Schema.AnyNoContext | undefined
  readonly error: Schema.Schema.AnyNoContext | undefined
  readonly retry: Retry.Policy | undefined
  readonly timeout: Duration.DurationInput | undefined
  readonly circuitBreaker?: CircuitBreaker.CircuitBreaker | undefined
}): CompiledStep => {
  const errorSchema: Schema.Schema.AnyNoContext = options.error === undefined
    ? Schema.Union(Failure.StepTimeout, Failure.CircuitOpen)
    : Schema.Union(options.error, Failure.StepTimeout, Failure.CircuitOpen)
  const successSchema: Schema.Schema.AnyNoContext = options.success ?? Json
  const exitSchema = Schema.Exit({
    success: successSchema,
    failure: errorSchema,
    defect: Failure.Defect
  })
  const encodeSuccess = Schema.encodeEither(successSchema)
  const decodeSuccess = Schema.decodeUnknownEither(successSchema)
  return {
    name: options.name,
    kind: options.kind,
    policy: options.retry ?? Retry.defaultPolicy,
    timeoutMillis: options.timeout === undefined ? undefined : Duration.toMillis(Duration.decode(options.timeout)),
    circuitBreaker: options.circuitBreaker,
    encodeExit: Schema.encodeEither(exitSchema) as CompiledStep["encodeExit"],
    decodeExit: Schema.decodeUnknownEither(exitSchema) as CompiledStep["decodeExit"],
    // An encoded success is `{ _tag: "Success", value }` with the value encoded by the success schema.
    roundTripSuccess: (value) => {
      const encoded = encodeSuccess(value)
      if (Either.isLeft(encoded)) return Either.left({ encoding: true, error: encoded.left })
      const decoded = decodeSuccess(encoded.right)
      if (Either.isLeft(decoded)) return Either.left({ encoding: false, error: decoded.left })
      return Either.right({ encoded: { _tag: "Success", value: encoded.right }, value: decoded.right })
    },
    encodeError: Schema.encodeEither(errorSchema),
    decodeError: Schema.decodeUnknownEither(errorSchema)
  }
}

const backingOff = (stepId: string, attempt: number, until: number, error?: unknown) =>
  error instanceof Failure.CircuitOpen
    ? `blocked by the open circuit breaker "${error.breaker}" until ${
      new Date(until).toISOString()
    } (attempt ${attempt} of step ${stepId} was refused)`
    : `backing off until ${new Date(until).toISOString()} after attempt ${attempt} of step ${stepId}`

/**
 * How a compensation retries unless its step says otherwise: patiently, defects included (an error
 * a compensation does not declare is recorded as a defect), because a half-undone saga is worse
 * than a slow one.
 */
export const compensationPolicy: Retry.Policy = Retry.exponential({
  base: "1 second",
  max: "1 minute",
  attempts: 10,
  jitter: 0.2,
  retryDefects: true
})

/** The durable step that undoes `stepId` (a `/` of a branch path would read as a path of its own). */
export const compensationStep = (stepId: string, policy: Retry.Policy | undefined): CompiledStep =>
  compile({
    name: `$undo:${stepId.replace(/\//g, "|")}`,
    kind: "compensation",
    success: Schema.Void as Schema.Schema<any, any, never>,
    error: undefined,
    retry: policy ?? compensationPolicy,
    timeout: undefined
  })

/** A compensation declared on a step: given the step's result, undoes what it did. */
export interface Compensation<A> {
  readonly undo: (result: A) => Effect.Effect<void, unknown, any>
  readonly retry?: Retry.Policy | undefined
}

/** Validates a step name: the journal builds paths from names, so `/`, `#`, `[`, `]` are reserved. */
export const checkName = (name: string): string | undefined =>
  name.length === 0
    ? "a step name must not be empty"
    : /[/#[\]]/.test(name)
    ? `step name "${name}" must not contain "/", "#", "[" or "]": they build step paths`
    : name.startsWith("$")
    ? `step name "${name}" must not start with "$": that prefix is reserved for weft's durable primitives`
    : undefined

const outcomeOf = (cause: Cause.Cause<unknown>): Retry.Outcome => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return { _tag: "Fail", error: failure.value }
  const defect = Cause.dieOption(cause)
  return { _tag: "Die", defect: Option.isSome(defect) ? defect.value : Cause.squash(cause) }
}

const showValue = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const dieEncoding = (step: string, what: string, error: unknown) =>
  Effect.die(new Error(`step "${step}": ${what}: ${String(error)}`))

/**
 * Runs one attempt in its frame: a scope of its own (what the attempt acquires with
 * Effect.acquireRelease is released when it ends, whether it succeeds, fails, times out or is
 * interrupted), `StepContext`, and log annotations with its step and attempt beside the run's.
 * The same as `Effect.scoped`, `Effect.provideService` and two `Effect.annotateLogs` around it, in
 * one region instead of four: each of those saves and restores fiber state on its own, and an
 * attempt of a no-op step cost ~30 µs in them (~10 µs this way). The context and the annotations
 * are each built in one copy (a Map of the services, a mutation of the annotations).
 */
const inAttemptFrame = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  info: StepInfo
): Effect.Effect<A, E, Exclude<R, StepContext | Scope.Scope>> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      Scope.make(),
      (scope) =>
        Effect.withFiberRuntime<A, E, Exclude<R, StepContext | Scope.Scope>>((fiber) => {
          const context = fiber.getFiberRef(FiberRef.currentContext)
          const annotations = fiber.getFiberRef(FiberRef.currentLogAnnotations)
          // The attempt's context and annotations, each made in one copy of the run's.
          const services = new Map(context.unsafeMap)
          services.set(StepContext.key, info)
          services.set(Scope.Scope.key, scope)
          const enter = Effect.zipRight(
            FiberRef.set(FiberRef.currentContext, Context.unsafeMake(services)),
            FiberRef.set(
              FiberRef.currentLogAnnotations,
              HashMap.mutate(annotations, (draft) => {
                HashMap.set(draft, "stepId", info.stepId)
                HashMap.set(draft, "attempt", info.attempt)
              })
            )
          )
          // The scope closes while the annotations still hold, so that its finalizers' logs carry them.
          const leave = (exit: Exit.Exit<A, E>) =>
            Effect.zipRight(
              Scope.close(scope, exit),
              Effect.zipRight(
                FiberRef.set(FiberRef.currentContext, context),
                FiberRef.set(FiberRef.currentLogAnnotations, annotations)
              )
            )
          // Effect.onExit's own work, in this region rather than one more of its own.
          return Effect.zipRight(
            enter,
            Effect.matchCauseEffect(restore(effect as Effect.Effect<A, E>), {
              onSuccess: (value) => Effect.as(leave(Exit.succeed(value)), value),
              onFailure: (cause) =>
                Effect.matchCauseEffect(leave(Exit.failCause(cause)), {
                  onSuccess: () => Effect.failCause(cause),
                  onFailure: (leaveCause) => Effect.failCause(Cause.sequential(cause, leaveCause))
                })
            })
          )
        })
    )
  )

/**
 * Runs a step in the current execution. Whatever happens, the value returned is the one decoded
 * from the journal encoding, on the first execution as on replay, so both paths see the same type.
 */
export const run = <A, E, R>(
  step: CompiledStep,
  effect: Effect.Effect<A, E, R>,
  compensation?: Compensation<A> | undefined
): Effect.Effect<
  A,
  E | Failure.StepTimeout | Failure.CircuitOpen,
  Exclude<R, StepContext | Scope.Scope> | Execution
> =>
  Effect.flatMap(Execution, (execution) =>
    Effect.flatMap(execution.enter(step.name, step.kind), (slot) => {
      // A step that succeeded registers its compensation, on replay as on its first run, so the
      // engine knows every completed step's undo whenever the workflow fails.
      const compensate = (value: A, finishedAt: number): Effect.Effect<void> =>
        compensation === undefined ? Effect.void : execution.registerCompensation(
          slot,
          finishedAt,
          Effect.asVoid(
            run(compensationStep(slot.stepId, compensation.retry), Effect.suspend(() => compensation.undo(value)))
          )
        )
      if (Option.isSome(slot.result)) {
        const decoded = step.decodeExit(slot.result.value)
        if (Either.isLeft(decoded)) {
          return dieEncoding(slot.stepId, "its journaled result does not decode", decoded.left)
        }
        const replayed = decoded.right as Exit.Exit<A, E>
        return Effect.zipRight(
          execution.progress({ _tag: "StepReplayed", stepId: slot.stepId, failed: Exit.isFailure(decoded.right) }),
          Exit.isSuccess(replayed)
            ? Effect.as(compensate(replayed.value, slot.finishedAt ?? 0), replayed.value)
            : replayed
        )
      }
      const silent = execution.silent === true
      // One attempt in its frame, with the step's timeout, circuit breaker, and (in a task group's
      // branch) the note of an attempt cut off in flight.
      const attemptOf = (attempt: number, startedAt: number, cut: Array<InterruptedAttempt> | undefined) => {
        const info: StepInfo = {
          runId: execution.runId,
          workflow: execution.workflow,
          stepId: slot.stepId,
          attempt,
          idempotencyKey: `${execution.runId}/${slot.stepId}`
        }
        let attemptEffect = inAttemptFrame(effect, info) as Effect.Effect<
          A,
          E | Failure.StepTimeout | Failure.CircuitOpen,
          Exclude<R, StepContext | Scope.Scope>
        >
        if (step.timeoutMillis !== undefined) {
          const timeoutMillis = step.timeoutMillis
          attemptEffect = Effect.timeoutFail(attemptEffect, {
            duration: Duration.millis(timeoutMillis),
            onTimeout: () => new Failure.StepTimeout({ step: slot.stepId, attempt, timeoutMillis })
          })
        }
        // Outside the timeout: a timed-out attempt is the classic symptom of a dead dependency.
        if (step.circuitBreaker !== undefined) {
          attemptEffect = CircuitBreaker.protect(attemptEffect, step.circuitBreaker)
        }
        // In a task group's branch, an attempt cut off in flight is noted for the group's entry
        // (when a sibling's failure ended the group, the history shows what it interrupted).
        if (cut !== undefined) {
          attemptEffect = Effect.onInterrupt(attemptEffect, () =>
            Effect.flatMap(Clock.currentTimeMillis, (interruptedAt) =>
              Effect.sync(() => cut.push({ stepId: slot.stepId, attempt, startedAt, interruptedAt }))))
        }
        return Effect.exit(attemptEffect)
      }

      // A successful attempt's end: its completion held by the engine, its compensation registered,
      // then (made once the completion is held, not before: an engine reports a step's end when it
      // is durable) its report.
      const succeeded = (
        attempt: number,
        startedAt: number,
        finishedAt: number,
        result: { readonly encoded: unknown; readonly value: unknown }
      ): Effect.Effect<A> => {
        const value = result.value as A
        const completed = execution.complete(
          slot,
          { attempt, startedAt, finishedAt, outcome: "success" },
          result.encoded
        )
        if (compensation === undefined && silent) {
          return Effect.as(completed, value)
        }
        return completed.pipe(
          Effect.zipRight(compensate(value, finishedAt)),
          Effect.zipRight(
            silent ? Effect.void : Effect.suspend(() =>
              execution.progress({
                _tag: "StepSucceeded",
                stepId: slot.stepId,
                attempt,
                durationMillis: finishedAt - startedAt
              })
            )
          ),
          Effect.as(value)
        )
      }

      // Every attempt after the first of this execution, and what the first one's end asks for when
      // it is not a plain success: recorded attempts replayed through the retry policy, what is left
      // of a backoff waited out, then attempts until the policy stops.
      const attempts = (
        cut: Array<InterruptedAttempt> | undefined,
        first?: {
          readonly exit: Exit.Exit<A, E | Failure.StepTimeout | Failure.CircuitOpen>
          readonly attempt: number
          readonly startedAt: number
          readonly finishedAt: number
        }
      ) =>
        Effect.gen(function*() {
          // Made once an attempt fails (or a resumed schedule needs it): most steps succeed first.
          let madeDriver: Retry.Driver | undefined
          const driver = () => (madeDriver ??= Retry.unsafeDriver(step.policy))
          let firstStartedAt: number | undefined = slot.attempts[0]?.startedAt ?? first?.startedAt
          // A resumed step continues its schedule: replay the recorded attempts through the driver
          // (this matters for Schedule policies, whose state lives in the schedule), then wait out
          // what is left of the backoff the last attempt chose.
          if (step.policy._tag === "Schedule") {
            for (const recorded of slot.attempts) {
              const decodedError = recorded.outcome === "defect"
                ? Schema.decodeUnknownEither(Failure.Defect)(recorded.error)
                : step.decodeError(recorded.error)
              const error = Either.getOrElse(decodedError, () =>
                recorded.error)
              yield* driver().replay(
                recorded.outcome === "defect" ? { _tag: "Die", defect: error } : { _tag: "Fail", error },
                recorded.finishedAt
              )
            }
          }
          const last = slot.attempts.at(-1)
          if (last?.delayMillis !== undefined) {
            const remaining = last.finishedAt + last.delayMillis - (yield* Clock.currentTimeMillis)
            if (remaining > 0) {
              yield* execution.progress({
                _tag: "StepWaiting",
                stepId: slot.stepId,
                attempt: last.attempt + 1,
                untilMillis: last.finishedAt + last.delayMillis
              })
              const until = last.finishedAt + last.delayMillis
              const lastError = last.outcome === "failure"
                ? Either.getOrUndefined(step.decodeError(last.error))
                : undefined
              yield* execution.waitUntil(until, backingOff(slot.stepId, last.attempt, until, lastError))
            }
          }
          // After a re-drive, numbering continues from the attempts in the history while the policy
          // counts from the re-drive: it gets its whole budget again.
          const prior = slot.priorAttempts ?? 0
          let attempt = last?.attempt ?? prior
          let pending = first
          while (true) {
            let exit: Exit.Exit<A, E | Failure.StepTimeout | Failure.CircuitOpen>
            let startedAt: number
            let finishedAt: number
            if (pending !== undefined) {
              ;({ attempt, exit, finishedAt, startedAt } = pending)
              pending = undefined
            } else {
              attempt++
              startedAt = yield* Clock.currentTimeMillis
              firstStartedAt ??= startedAt
              if (!silent) yield* execution.progress({ _tag: "StepStarted", stepId: slot.stepId, attempt })
              exit = yield* attemptOf(attempt, startedAt, cut)
              // Interruption is never a failed attempt: nothing is recorded, the step runs again on resume.
              if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
                return yield* exit
              }
              finishedAt = yield* Clock.currentTimeMillis
            }

            if (Exit.isSuccess(exit)) {
              const roundTrip = step.roundTripSuccess(exit.value)
              if (Either.isRight(roundTrip)) {
                return yield* succeeded(attempt, startedAt, finishedAt, roundTrip.right)
              }
              if (!roundTrip.left.encoding) {
                return yield* dieEncoding(
                  slot.stepId,
                  "its result does not survive a journal round trip",
                  roundTrip.left.error
                )
              }
              // A result the step's schema cannot encode is a bug in the step: treat it as a defect.
              const defect = new Error(
                `step "${slot.stepId}" returned a value its success schema rejects: ${roundTrip.left.error}`
              )
              const failed = Exit.die(defect)
              const encodedExit = step.encodeExit(failed)
              yield* execution.complete(slot, {
                attempt,
                startedAt,
                finishedAt,
                outcome: "defect",
                error: Either.getOrUndefined(Schema.encodeEither(Failure.Defect)(defect)),
                stopReason: "defect"
              }, Either.getOrThrow(encodedExit))
              yield* execution.progress({
                _tag: "StepFailed",
                stepId: slot.stepId,
                attempt,
                error: defect,
                reason: "defect"
              })
              return yield* failed
            }

            let outcome = outcomeOf(exit.cause)
            if (outcome._tag === "Fail" && Either.isLeft(step.encodeError(outcome.error))) {
              // An error the step does not declare is a bug of the step: decided on and recorded as a defect.
              outcome = {
                _tag: "Die",
                defect: new Error(
                  `step "${slot.stepId}" failed with an undeclared error: ${showValue(outcome.error)}`,
                  { cause: outcome.error }
                )
              }
            }
            const random = yield* Random.next
            const decision = yield* driver().next({
              attempt: attempt - prior,
              outcome,
              elapsedMillis: finishedAt - firstStartedAt,
              random
            }, finishedAt)
            const encodedError = outcome._tag === "Fail"
              ? step.encodeError(outcome.error)
              : Schema.encodeEither(Failure.Defect)(outcome.defect)
            const record: AttemptRecord = {
              attempt,
              startedAt,
              finishedAt,
              outcome: outcome._tag === "Fail" ? "failure" : "defect",
              error: Either.getOrUndefined(encodedError)
            }
            const shown = outcome._tag === "Fail" ? outcome.error : outcome.defect
            if (decision._tag === "Retry") {
              yield* execution.recordAttempt(slot, { ...record, delayMillis: decision.delayMillis })
              yield* execution.progress({
                _tag: "StepRetrying",
                stepId: slot.stepId,
                attempt,
                error: shown,
                delayMillis: decision.delayMillis
              })
              // A zero delay must not go through a timer.
              if (decision.delayMillis > 0) {
                const until = finishedAt + decision.delayMillis
                yield* execution.waitUntil(until, backingOff(slot.stepId, attempt, until, shown))
              }
              continue
            }
            let finalExit: Exit.Exit<unknown, unknown> = exit
            let encodedExit = step.encodeExit(finalExit)
            if (Either.isLeft(encodedExit)) {
              // The step failed with an error its schema does not declare: that is a defect of the step.
              finalExit = Exit.die(
                outcome._tag === "Die"
                  ? outcome.defect
                  : new Error(`step "${slot.stepId}" failed with an undeclared error: ${showValue(shown)}`, {
                    cause: shown
                  })
              )
              encodedExit = step.encodeExit(finalExit)
            }
            yield* execution.complete(slot, { ...record, stopReason: decision.reason }, Either.getOrThrow(encodedExit))
            yield* execution.progress({
              _tag: "StepFailed",
              stepId: slot.stepId,
              attempt,
              error: shown,
              reason: decision.reason
            })
            // Hand back the decoded failure, as replay would.
            const decoded = step.decodeExit(Either.getOrThrow(encodedExit))
            return yield* (Either.isRight(decoded) ? decoded.right : finalExit) as Exit.Exit<A, E>
          }
        })

      return Effect.ensuring(
        // The fiber's state, read once: whether the end of this step's task group is journaled and
        // the step is not (it was cut off by a sibling's failure: wait for that failure to interrupt
        // it, as it did the first time), where a task group's branch notes the attempts cut off in
        // flight, and the clock.
        Effect.withFiberRuntime<
          A,
          E | Failure.StepTimeout | Failure.CircuitOpen,
          Exclude<R, StepContext | Scope.Scope>
        >(
          (fiber) => {
            if (fiber.getFiberRef(journalOnly)) return Effect.never
            const cut = fiber.getFiberRef(interruptedAttempts)
            // A step resumed with attempts in its journal continues its retry policy.
            if (slot.attempts.length > 0) return attempts(cut)
            // The first attempt, without a generator (a run's hot path); anything but a plain
            // success goes on in `attempts`.
            const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
            const attempt = (slot.priorAttempts ?? 0) + 1
            const startedAt = clock.unsafeCurrentTimeMillis()
            const tried = Effect.flatMap(attemptOf(attempt, startedAt, cut), (exit) => {
              // Interruption is never a failed attempt: nothing is recorded, the step runs again on resume.
              if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return exit
              const finishedAt = clock.unsafeCurrentTimeMillis()
              const roundTrip = Exit.isSuccess(exit) ? step.roundTripSuccess(exit.value) : undefined
              if (roundTrip === undefined || Either.isLeft(roundTrip)) {
                return attempts(cut, { exit, attempt, startedAt, finishedAt })
              }
              return succeeded(attempt, startedAt, finishedAt, roundTrip.right)
            })
            return silent
              ? tried
              : Effect.zipRight(execution.progress({ _tag: "StepStarted", stepId: slot.stepId, attempt }), tried)
          }
        ),
        execution.leave(slot)
      )
    }))
