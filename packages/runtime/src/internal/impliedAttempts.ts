/**
 * A step that succeeded at its first try has an attempt row that says nothing its step row does not:
 * attempt number, start, end and outcome are the step's own. The SQL store does not write that row
 * (one row and one index entry fewer per step: most steps of most runs succeed at once); it marks
 * the step row instead (`attempt_implied`) and gives the attempt back when the journal is read, so
 * readers see the journal the memory store keeps. A re-drive that discards such a step writes the
 * attempt's row first: the attempt stays in the history when the step row goes.
 *
 * Schema version 12 introduced the mark, so that older code, which would read those steps as never
 * attempted, refuses to run against a database written this way.
 */
import type { AttemptRow, StepRecord } from "../Store.js"
import { compareCodePoints } from "./order.js"

/** Whether the step row restores `attempt` field for field, so that the attempt needs no row. */
export const implied = (step: StepRecord, attempt: AttemptRow): boolean =>
  !step.failed && attempt.outcome === "success" && attempt.attempt === step.attempts &&
  attempt.startedAt === step.startedAt && attempt.finishedAt === step.finishedAt &&
  attempt.error === undefined && attempt.delayMillis === undefined && attempt.stopReason === undefined &&
  attempt.runId === step.runId && attempt.stepId === step.stepId

/** The attempt a step row marked `attempt_implied` stands for. */
export const of = (
  step: Pick<StepRecord, "runId" | "stepId" | "attempts" | "startedAt" | "finishedAt">
): AttemptRow => ({
  runId: step.runId,
  stepId: step.stepId,
  attempt: step.attempts,
  startedAt: step.startedAt,
  finishedAt: step.finishedAt,
  outcome: "success"
})

/**
 * The run's attempts with the implied ones put back: `attempts` in (step id, attempt) order in, the
 * same order out. An implied attempt was written with its step, as the step's final attempt, so
 * it is the one kept when a row of the same number exists too (written later: the first write of
 * an attempt wins).
 */
export const restore = (
  attempts: ReadonlyArray<AttemptRow>,
  implied: ReadonlyArray<AttemptRow>
): ReadonlyArray<AttemptRow> => {
  if (implied.length === 0) return attempts
  const replaced = new Set(implied.map((attempt) => `${attempt.attempt}:${attempt.stepId}`))
  return [...attempts.filter((attempt) => !replaced.has(`${attempt.attempt}:${attempt.stepId}`)), ...implied]
    .sort((a, b) => compareCodePoints(a.stepId, b.stepId) || a.attempt - b.attempt)
}
