/**
 * Child workflows: a run started by a step of another run, with its own journal, awaited durably.
 *
 * `$child:<workflow>` is the awaiting step: its result is the child's end, encoded as the child
 * encodes it (its success, or its Cause with its declared errors), so the child's typed failure is
 * re-raised unchanged in the parent. The child's id is deterministic (`<parent run id>/<step id>`
 * unless given), so a parent that crashed after starting it finds the same child when it replays.
 * While the child runs, the parent suspends (`waiting`, no slot); the child's end wakes it.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Execution } from "../Execution.js"
import * as Retry from "../Retry.js"
import type * as Workflow from "../Workflow.js"
import { compile, type CompiledStep } from "./stepRunner.js"

/** Options of `child` and `startChild`. */
export interface ChildOptions {
  /** The child run's id. Default: `<parent run id>/<step id>`, the same on every replay. */
  readonly id?: string | undefined
}

// Built once per child workflow: the schemas of its end, as a step's result.
const awaitSteps = new WeakMap<Workflow.Any, CompiledStep>()
const awaitStep = (workflow: Workflow.Any): CompiledStep => {
  let step = awaitSteps.get(workflow)
  if (step === undefined) {
    step = compile({
      name: `$child:${workflow.name}`,
      kind: "child",
      success: workflow.success as Schema.Schema<any, any, never>,
      error: workflow.failure as Schema.Schema<any, any, never>,
      retry: Retry.none,
      timeout: undefined
    })
    awaitSteps.set(workflow, step)
  }
  return step
}

const startStep = compile({
  name: "$start",
  kind: "child",
  success: Schema.Struct({ runId: Schema.String }) as Schema.Schema<any, any, never>,
  error: undefined,
  retry: Retry.none,
  timeout: undefined
})

/** Starts a child run of `workflow` and waits for its end; its failure is this step's failure. */
export const child = <W extends Workflow.Any>(
  workflow: W,
  input: Workflow.Input<W>,
  options: ChildOptions = {}
): Effect.Effect<Workflow.Success<W>, Workflow.Error<W>, Execution> =>
  Effect.gen(function*() {
    const execution = yield* Execution
    const step = awaitStep(workflow)
    const slot = yield* execution.enter(step.name, step.kind)
    return yield* Effect.gen(function*() {
      if (Option.isNone(slot.result)) {
        const childId = yield* execution.startChild(slot, workflow, input, options.id)
        while (true) {
          const ended = yield* execution.takeChild(slot, childId)
          if (Option.isSome(ended)) return yield* decoded(step, slot.stepId, ended.value)
          yield* execution.awaitChild(childId, `waiting for child run ${childId} (${workflow.name})`)
        }
      }
      return yield* decoded(step, slot.stepId, slot.result.value)
    }).pipe(Effect.ensuring(execution.leave(slot)))
  }) as never

/** Starts a child run of `workflow` and goes on without waiting for it; returns its id. */
export const startChild = <W extends Workflow.Any>(
  workflow: W,
  input: Workflow.Input<W>,
  options: ChildOptions = {}
): Effect.Effect<{ readonly runId: string }, never, Execution> =>
  Effect.gen(function*() {
    const execution = yield* Execution
    const slot = yield* execution.enter(`${startStep.name}:${workflow.name}`, "child")
    return yield* Effect.gen(function*() {
      if (Option.isSome(slot.result)) {
        return (yield* Effect.orDie(decoded(startStep, slot.stepId, slot.result.value))) as { readonly runId: string }
      }
      const runId = yield* execution.startChild(slot, workflow, input, options.id)
      const result = { _tag: "Success", value: { runId } }
      yield* execution.complete(slot, undefined, result)
      return { runId }
    }).pipe(Effect.ensuring(execution.leave(slot)))
  })

const decoded = (step: CompiledStep, stepId: string, encoded: unknown): Effect.Effect<unknown, unknown> => {
  const exit = step.decodeExit(encoded)
  return Either.isRight(exit)
    ? exit.right
    : Effect.die(new Error(`step "${stepId}": the child's recorded end does not decode: ${String(exit.left)}`))
}
