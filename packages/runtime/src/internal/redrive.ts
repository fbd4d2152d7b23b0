/**
 * Where a re-drive cuts a run's journal, decided from the journal alone so that every store cuts
 * it the same way. The journal after a cut is a prefix of the run's history in completion order,
 * closed under what depends on a discarded entry: the state a crash at that moment would have
 * left, which replay is built to continue from.
 */
import type { RedrivePoint, StepRecord } from "../Store.js"

/** What a re-drive does to a journal. */
export interface Plan {
  /** The entry where the journal is cut, none when every completion is kept. */
  readonly cut: string | undefined
  /** The completions to discard, in journal order: those from the cut on, and what depends on them. */
  readonly discarded: ReadonlyArray<string>
  /** Per step, the highest attempt recorded so far (all of them become history). */
  readonly priorAttempts: Readonly<Record<string, number>>
}

/** A journal entry as the planner needs it. */
export type Entry = Pick<StepRecord, "stepId" | "name" | "kind" | "position" | "failed" | "finishedAt">

/**
 * The plan of a re-drive from `from`, or the step ids of the journal (in journal order) when
 * `from` names a step that is not in it.
 */
export const plan = (
  steps: ReadonlyArray<Entry>,
  attempts: ReadonlyArray<{ readonly stepId: string; readonly attempt: number }>,
  from: RedrivePoint
): Plan | { readonly unknownStep: ReadonlyArray<string> } => {
  const ordered = [...steps].sort(journalOrder)
  const priorAttempts: Record<string, number> = {}
  for (const { attempt, stepId } of attempts) {
    priorAttempts[stepId] = Math.max(priorAttempts[stepId] ?? 0, attempt)
  }
  let cut: number
  if (from === "start") {
    cut = 0
  } else if (from === "failure") {
    cut = ordered.findIndex((entry) => entry.failed && entry.kind !== "compensation" && endsBranch(entry, ordered))
    if (cut === -1) cut = ordered.length
  } else {
    cut = ordered.findIndex((entry) => entry.stepId === from.step)
    if (cut === -1) return { unknownStep: ordered.map((entry) => entry.stepId) }
  }
  // A step whose compensation ran was undone: it must run again, and so must everything after it.
  const undone = new Set(
    ordered.filter((entry) => entry.kind === "compensation" && entry.name.startsWith(UNDO)).map((entry) =>
      entry.name.slice(UNDO.length).replace(/\|/g, "/")
    )
  )
  const firstUndone = ordered.findIndex((entry) => undone.has(entry.stepId))
  if (firstUndone !== -1 && firstUndone < cut) cut = firstUndone
  // A signal wait cut with its deadline journaled just before it would time out again at once: the
  // deadline goes too, so the wait gets its whole timeout again.
  if (cut < ordered.length && ordered[cut].kind === "signal") {
    const wait = ordered[cut]
    const deadline = ordered.findIndex((entry) =>
      entry.name === "$deadline" && scopeOf(entry.stepId) === scopeOf(wait.stepId) &&
      entry.position === wait.position - 1
    )
    if (deadline !== -1 && deadline < cut) cut = deadline
  }
  const discarded = new Set(ordered.slice(cut).map((entry) => entry.stepId))
  // Close the cut under dependence: a discarded entry takes with it the later entries of its branch
  // and the end of every task group it is in (the group runs again, its branches replaying what
  // they keep). Completion order gives this already unless the clock went backwards; this makes sure.
  let changed = discarded.size > 0
  while (changed) {
    changed = false
    for (const entry of ordered) {
      if (discarded.has(entry.stepId)) continue
      const scope = scopeOf(entry.stepId)
      const dropped = ordered.some((other) =>
        discarded.has(other.stepId) && (
          (scopeOf(other.stepId) === scope && other.position < entry.position) ||
          (entry.kind === "group" && scopeOf(other.stepId).startsWith(`${entry.stepId}[`))
        )
      )
      if (dropped) {
        discarded.add(entry.stepId)
        changed = true
      }
    }
  }
  return {
    cut: ordered[cut]?.stepId,
    discarded: ordered.filter((entry) => discarded.has(entry.stepId)).map((entry) => entry.stepId),
    priorAttempts
  }
}

/** Whether a step id is that of an awaited child's entry (`$child:<workflow>`, in any branch). */
export const isAwaitedChildStep = (stepId: string): boolean =>
  (stepId.slice(stepId.lastIndexOf("/") + 1)).startsWith(CHILD)

/** The reason a re-driven run is queued with, for `weft show` and `weft list`. */
export const queuedReason = (by: string, reason: string, at: number): string =>
  `re-driven by ${by} at ${new Date(at).toISOString()}: ${reason}`

/** Whether a status can be re-driven. */
export const redrivable = (status: string): boolean => status === "failed" || status === "cancelled"

const UNDO = "$undo:"
const CHILD = "$child:"

/** Completion order: when each entry completed, then its place in its branch, then its id. */
const journalOrder = (a: Entry, b: Entry): number =>
  a.finishedAt - b.finishedAt || a.position - b.position || (a.stepId < b.stepId ? -1 : a.stepId > b.stepId ? 1 : 0)

/** Whether nothing but compensations follows `entry` in its branch: its failure ended the branch. */
const endsBranch = (entry: Entry, ordered: ReadonlyArray<Entry>): boolean => {
  const scope = scopeOf(entry.stepId)
  return !ordered.some((other) =>
    other !== entry && other.kind !== "compensation" && scopeOf(other.stepId) === scope &&
    other.position > entry.position
  )
}

const scopeOf = (stepId: string): string => {
  const slash = stepId.lastIndexOf("/")
  return slash === -1 ? "" : stepId.slice(0, slash)
}
