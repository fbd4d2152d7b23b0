/**
 * A run's history as plain data: the run, its steps with every attempt, and its failure Cause as a
 * tree of error views. Built from the store's encoded records alone (no workflow module needed), it
 * is what `--json` prints for a failed run and for `weft show`, and what the text renderers draw.
 */
import { type Execution, Failure } from "@weft/core"
import type { Store } from "@weft/runtime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * An error as shown to a person: a tagged error (`tagged: true`, drawn `Tag { field: value }`) or a
 * thrown exception (`tagged: false`, drawn `Name: message` with its stack), with its `cause` chain.
 */
export interface ErrorView {
  /** The `_tag` of a typed error, or the `name` of an exception (`Error`, `TypeError`). */
  readonly tag: string
  readonly tagged: boolean
  /** The exception's message, or a built-in error's explanation of itself. */
  readonly message?: string
  /** The error's own fields, without `_tag` and `cause`. */
  readonly fields: Record<string, unknown>
  /** Stack frames in the user's code (`at charge (/app/checkout.ts:42:7)`), innermost first. */
  readonly stack?: ReadonlyArray<string>
  /** What caused this error, followed in full. */
  readonly cause?: ErrorView
}

/** A run's failure Cause as a tree; nested sequential and parallel causes are flattened. */
export type CauseView =
  | { readonly kind: "empty" }
  | { readonly kind: "fail"; readonly error: ErrorView }
  | { readonly kind: "defect"; readonly error: ErrorView }
  | { readonly kind: "interrupt"; readonly fiberId?: string }
  | { readonly kind: "sequential" | "parallel"; readonly children: ReadonlyArray<CauseView> }

/** One attempt of a step. Times are epoch milliseconds. */
export interface AttemptView {
  readonly attempt: number
  /** `interrupted`: cut off in flight when its task group ended (a sibling failed). */
  readonly outcome: "success" | "failure" | "defect" | "interrupted"
  readonly startedAt: number
  readonly finishedAt: number
  readonly durationMillis: number
  readonly error?: ErrorView
  /** The delay chosen before the next attempt, when the step retried. */
  readonly delayMillis?: number
  /** Why the step gave up after this attempt (`not-retryable`, `attempts-exhausted`, ...). */
  readonly stopReason?: string
  /** The re-drive (its `seq`) that this attempt is the first of, for the step: the attempts before it are history. */
  readonly redrive?: number
}

/**
 * Where a step is: completed (`succeeded`, `failed`), or with attempts but no completion, either cut
 * off by a crash, Ctrl-C or the run's end (`interrupted`) or due to run again (`retrying`).
 */
export type StepStatus = "succeeded" | "failed" | "interrupted" | "retrying"

/** What a branch of a task group did, as the group's journal entry records it. */
export type BranchOutcome = "succeeded" | "failed" | "interrupted" | "not-started"

/** How a task group (`Workflow.all`, `Workflow.forEach`) ended: its mode and each branch's outcome. */
export interface GroupView {
  readonly mode: "fail-fast" | "settle"
  /** One outcome per branch, in branch order. */
  readonly branches: ReadonlyArray<BranchOutcome>
}

/**
 * A durable sleep (`Workflow.sleep`, a `$sleep` entry) or a signal's deadline (a `$deadline` entry):
 * the wake time, and how long from the entry's start.
 */
export interface SleepView {
  /** The wake time or deadline (epoch milliseconds), journaled when the sleep or wait began. */
  readonly until: number
  /** From the start of its entry to `until`. */
  readonly durationMillis: number
  /** Whether the run is still in this sleep: not final, and nothing came after it (never for a deadline). */
  readonly sleeping: boolean
}

/**
 * A wait for a signal (`Workflow.signal`, a `$signal:<name>` entry), with its timeout taken from
 * the `$deadline` entry that precedes it.
 */
export interface SignalView {
  /** The signal's name (`approved`). */
  readonly name: string
  /** `waiting` only on `RunView.waitingFor`: a wait that is not in the journal yet. */
  readonly outcome: "received" | "timed-out" | "waiting"
  /** The payload received, as encoded by the signal's schema. */
  readonly payload?: unknown
  /** When the wait times out (epoch milliseconds), when it has a timeout. */
  readonly deadline?: number
  /** Its timeout, as the SignalTimeout of a wait that timed out says. */
  readonly timeoutMillis?: number
  /** When the wait began (the start of its `$deadline` entry), when it has a timeout. */
  readonly waitStartedAt?: number
}

/**
 * A step of the run with all its attempts, or (`kind: "group"`) the end of a task group. Times are
 * epoch milliseconds.
 *
 * Steps come as a tree in depth-first order: each step in the order of its branch, a group's entry
 * followed by the steps of its branches in branch order. A step with no completion, or a group with
 * no entry yet, comes after the completed steps of its branch.
 */
export interface StepView {
  /** The step's id, under its branch path for a step in a task group (`ship[1]/pack#2`). */
  readonly stepId: string
  readonly name: string
  readonly kind: string
  /** Place among the steps of its branch; absent for a step that never completed. */
  readonly position?: number
  /** The task-group branch the step ran in (`ship[1]`, `ship[1]/boxes[0]`); absent in the body itself. */
  readonly scope?: string
  /** How many task-group branches deep the step is (`ship[1]/pack`: 1); absent in the body itself. */
  readonly depth?: number
  readonly status: StepStatus
  /** For a group: the first start of a step in it, as its entry is written when it ends. */
  readonly startedAt: number
  readonly finishedAt?: number
  readonly durationMillis?: number
  readonly attempts: ReadonlyArray<AttemptView>
  /** The Cause the step failed with, when it failed (never for a group: see its branches). */
  readonly cause?: CauseView
  /** For a group entry: its mode and each branch's outcome. */
  readonly group?: GroupView
  /** For a `$sleep` entry: its wake time; for a `$deadline` entry: the deadline. */
  readonly sleep?: SleepView
  /** For a `$signal:<name>` entry: the signal, what it brought, and its timeout. */
  readonly signal?: SignalView
  /**
   * For a `$deadline` entry: the step id of the signal wait whose timeout it is (`$signal:approved`),
   * which shows it (a text view draws the two as one).
   */
  readonly deadlineOf?: string
  /** For a compensation (`$undo:<step>`): the id of the step it undoes (`book-hotel`, `ship[1]/pack`). */
  readonly compensates?: string
  /** For a child workflow's entry (`$child:<workflow>`, `$start:<workflow>`): the child run. */
  readonly child?: ChildView
}

/**
 * A child run, as its parent's journal (and, when it was read, the child's own record) says: started
 * and awaited by `Workflow.child` (a `$child:<workflow>` entry, written when the child ended), or
 * detached by `Workflow.startChild` (a `$start:<workflow>` entry).
 */
export interface ChildView {
  /**
   * The child run's id: journaled for a detached child; for an awaited one, its default id
   * (`<parent run id>/<step id>`) or the one found by its parent link. Absent when the run read
   * under the default id is another step's.
   */
  readonly runId?: string
  readonly workflow: string
  /** Started by `Workflow.startChild`: the parent did not wait for it. */
  readonly detached: boolean
  /** The child run's status, when its record was read, or (for an awaited child) how it ended. */
  readonly status?: Store.RunStatus
  /** The child run's own duration, when its record was read and it has ended. */
  readonly durationMillis?: number
  /** Why a child that is not final is not progressing (`waiting for signal approved`). */
  readonly reason?: string
}

/** The run itself. Times are epoch milliseconds. */
export interface RunView {
  readonly id: string
  readonly workflow: string
  readonly version: string
  readonly status: Store.RunStatus
  /** Why a run that is not final is not progressing. */
  readonly reason?: string
  readonly createdAt: number
  readonly startedAt?: number
  readonly finishedAt?: number
  readonly durationMillis?: number
  readonly recoveries: number
  /** The encoded output, when succeeded. */
  readonly output?: unknown
  /** When a run that is not final is due (the end of its sleep, its signal's deadline, a delayed start). */
  readonly wakeAt?: number
  /**
   * The signal a `waiting` run waits for: its name, the step id its wait will have (`$signal:approved`),
   * and its deadline when it has a timeout.
   */
  readonly waitingFor?: SignalView & { readonly stepId: string }
  /**
   * The child a `waiting` run waits for (`Workflow.child`): the step id its entry will have
   * (`$child:payment`), and the child run. Its entry is not in the journal until the child ends.
   */
  readonly waitingForChild?: ChildView & { readonly stepId: string }
  /** For a child run: the run and the step that started it. */
  readonly parent?: { readonly runId: string; readonly stepId: string }
  /** The caller's id for the run, given at start (`--correlation-id`); a child has its parent's. */
  readonly correlationId?: string
  /** The run's re-drives (`weft retry`), oldest first; absent when it was never re-driven. */
  readonly redrives?: ReadonlyArray<RedriveView>
  /** Its queue, when not "default". */
  readonly queue?: string
  /** Its concurrency key and that key's limit. */
  readonly concurrencyKey?: { readonly key: string; readonly limit: number }
  /**
   * Why a queued run that is due is not starting: the queue limits that hold it back (`queue emails
   * is at its concurrency limit 5 (5 running)`), from the store when the trace was read.
   */
  readonly blocked?: string
}

/** A re-drive of the run: who sent it back to its queue, when, why, from which step, and how it had ended. */
export interface RedriveView {
  readonly seq: number
  readonly at: number
  readonly by: string
  readonly reason: string
  /** How the run had ended before (`failed`, `cancelled`), and with what. */
  readonly previousStatus: Store.RunStatus
  readonly cause?: CauseView
  /** The step the journal was cut at (it and what came after it ran again); absent when nothing was discarded. */
  readonly fromStep?: string
  /** The completions discarded, in journal order. */
  readonly discarded: ReadonlyArray<string>
  /** The child runs re-driven with it. */
  readonly children: ReadonlyArray<string>
}

/** A run's full history as JSON-serializable data. */
export interface Trace {
  readonly run: RunView
  readonly steps: ReadonlyArray<StepView>
  /** The run's failure, when it failed or was cancelled. */
  readonly cause?: CauseView
  /**
   * The traces of the child runs whose histories were given to `fromHistory`, by child run id (each
   * with its own `children`).
   */
  readonly children?: Readonly<Record<string, Trace>>
}

/** A run's stored record and journal, as `Client.history` returns them (with its re-drives, when read). */
export interface History {
  readonly run: Store.RunRecord
  readonly journal: Store.Journal
  readonly redrives?: ReadonlyArray<Store.RedriveRecord>
}

/** A child run a run's journal (or its wait) names; see `childRefs`. */
export interface ChildRef {
  /** The parent's step id for it (`$child:payment`, `$start:payment#2`). */
  readonly stepId: string
  /** Its id: journaled or named by the wait (`known`), or else the default `<parent run id>/<step id>`. */
  readonly runId: string
  readonly known: boolean
  readonly workflow: string
  readonly detached: boolean
  /** When the parent's step began: the child was created after. */
  readonly startedAt: number
}

/**
 * The child runs of a run: its `$child:` and `$start:` entries, and the child a waiting run waits
 * for. An awaited child's id is not journaled: it is its default id unless the child was given one
 * (then only a lookup by its parent link finds it, see `RunRecord.parent`).
 */
export const childRefs = (run: Store.RunRecord, journal: Store.Journal): Array<ChildRef> => {
  const refs: Array<ChildRef> = []
  for (const step of journal.steps) {
    if (step.name.startsWith(START)) {
      const value = successValue(step.result)?.value
      if (isRecord(value) && typeof value.runId === "string") {
        const workflow = step.name.slice(START.length)
        refs.push({
          stepId: step.stepId,
          runId: value.runId,
          known: true,
          workflow,
          detached: true,
          startedAt: step.startedAt
        })
      }
    } else if (step.name.startsWith(CHILD)) {
      refs.push({
        stepId: step.stepId,
        runId: `${run.id}/${step.stepId}`,
        known: false,
        workflow: step.name.slice(CHILD.length),
        detached: false,
        startedAt: step.startedAt
      })
    }
  }
  const waiting = waitedChild(run, journal.steps)
  if (waiting !== undefined) {
    refs.push({ ...waiting, known: true, detached: false, startedAt: run.startedAt ?? run.createdAt })
  }
  return refs
}

const childWait = /^waiting for child run (.+) \(([^()]*)\)$/

/** The child a waiting run waits for, from its reason: its id, workflow, and its entry's step id. */
const waitedChild = (
  run: Store.RunRecord,
  steps: ReadonlyArray<Store.StepRecord>
): { readonly stepId: string; readonly runId: string; readonly workflow: string } | undefined => {
  const match = run.status === "waiting" ? childWait.exec(run.reason ?? "") : null
  if (match === null) return undefined
  const [, runId, workflow] = match
  const name = `${CHILD}${workflow}`
  const local = runId.startsWith(`${run.id}/`) ? runId.slice(run.id.length + 1) : undefined
  if (local !== undefined && local.replace(/#\d+$/, "") === name) return { stepId: local, runId, workflow }
  const taken = steps.filter((step) => scopeOf(step.stepId) === "" && step.name === name).length
  return { stepId: taken === 0 ? name : `${name}#${taken + 1}`, runId, workflow }
}

/** How many levels of children `fromHistory` embeds at most (the commands read 3). */
const MAX_CHILD_DEPTH = 8

/**
 * Builds the trace of a run from its stored record and journal. With `children` (the histories of
 * its descendants, by run id), its child entries have the children's status and the trace embeds
 * their traces (`children`). With `redrives`, the run's re-drives, and the first attempt of each
 * step after each re-drive says so.
 */
export const fromHistory = (
  run: Store.RunRecord,
  journal: Store.Journal,
  children?: ReadonlyMap<string, History>,
  redrives?: ReadonlyArray<Store.RedriveRecord>
): Trace => traceOf(run, journal, children, 0, redrives ?? [])

const traceOf = (
  run: Store.RunRecord,
  journal: Store.Journal,
  histories: ReadonlyMap<string, History> | undefined,
  depth: number,
  redrives: ReadonlyArray<Store.RedriveRecord>
): Trace => {
  const attemptsByStep = new Map<string, Array<Store.AttemptRow>>()
  for (const attempt of journal.attempts) {
    const list = attemptsByStep.get(attempt.stepId)
    if (list === undefined) attemptsByStep.set(attempt.stepId, [attempt])
    else list.push(attempt)
  }
  for (const list of attemptsByStep.values()) list.sort((a, b) => a.attempt - b.attempt)
  // The first attempt of a step after a re-drive: the first numbered above what that re-drive found.
  const attemptView = (row: Store.AttemptRow): AttemptView => {
    const view = attemptViewOf(row)
    for (let i = redrives.length - 1; i >= 0; i--) {
      const floor = redrives[i].priorAttempts[row.stepId] ?? 0
      const next = (attemptsByStep.get(row.stepId) ?? []).find((a) => a.attempt > floor)
      if (next === row) return { ...view, redrive: redrives[i].seq }
    }
    return view
  }

  const completed = journal.steps
  const done = new Set(completed.map((step) => step.stepId))
  // Attempts with no completion belong to the step that was in flight when the run (or its group) stopped.
  const pending = [...attemptsByStep.entries()].filter(([stepId]) => !done.has(stepId))

  // Groups by id: where their entry is in the parent branch, and when their first step started (a
  // group's entry is written at its end).
  const groupPosition = new Map<string, number>()
  for (const step of completed) if (step.kind === "group") groupPosition.set(step.stepId, step.position)
  const groupStart = new Map<string, number>()
  const noteStart = (stepId: string, at: number) => {
    for (const { group } of branchesOf(scopeOf(stepId))) {
      const first = groupStart.get(group)
      if (first === undefined || at < first) groupStart.set(group, at)
    }
  }
  for (const step of completed) noteStart(step.stepId, step.startedAt)
  for (const [stepId, attempts] of pending) noteStart(stepId, attempts[0].startedAt)

  const steps: Array<StepView> = completed.map((step) => {
    // A group's entry records its branches' outcomes, not an Exit: its failures are its branches'.
    const group = step.kind === "group" ? groupView(step.result) : undefined
    const cause = step.kind !== "group" && step.failed && isRecord(step.result) && step.result._tag === "Failure"
      ? causeView(step.result.cause)
      : undefined
    const startedAt = step.kind === "group"
      ? Math.min(step.startedAt, groupStart.get(step.stepId) ?? step.startedAt)
      : step.startedAt
    return {
      stepId: step.stepId,
      name: step.name,
      kind: step.kind,
      position: step.position,
      ...placeOf(step.stepId),
      status: step.failed ? "failed" : "succeeded",
      startedAt,
      finishedAt: step.finishedAt,
      durationMillis: step.finishedAt - startedAt,
      attempts: (attemptsByStep.get(step.stepId) ?? []).map(attemptView),
      ...(cause === undefined ? {} : { cause }),
      ...(group === undefined ? {} : { group })
    }
  })

  // A run that is not final and was not interrupted will run the step again (it is backing off, or
  // a worker holds it); otherwise the step was cut off. A step of a group that ended was cut off by
  // the group's end (a sibling failed), whatever the run does next.
  const willRetry = !isFinal(run.status) && !(run.reason ?? "").startsWith("interrupted")
  // The attempts a group's end cut off in flight, from the group entries (they have no row of their own).
  const cutOff = new Map<string, AttemptView>()
  for (const step of completed) {
    if (step.kind !== "group") continue
    for (const cut of interruptedOf(step.result)) {
      cutOff.set(cut.stepId, {
        attempt: cut.attempt,
        outcome: "interrupted",
        startedAt: cut.startedAt,
        finishedAt: cut.interruptedAt,
        durationMillis: cut.interruptedAt - cut.startedAt
      })
    }
  }
  const unfinishedStep = (stepId: string, attempts: Array<AttemptView>): StepView => {
    const groupEnded = branchesOf(scopeOf(stepId)).some(({ group }) => groupPosition.has(group))
    const last = attempts[attempts.length - 1]
    return {
      stepId,
      name: nameOf(stepId),
      kind: kindOf(stepId),
      ...placeOf(stepId),
      status: willRetry && !groupEnded ? "retrying" : "interrupted",
      startedAt: attempts[0].startedAt,
      ...(last.outcome === "interrupted"
        ? { finishedAt: last.finishedAt, durationMillis: last.finishedAt - attempts[0].startedAt }
        : {}),
      attempts
    }
  }
  for (const [stepId, attempts] of pending) {
    const cut = cutOff.get(stepId)
    cutOff.delete(stepId)
    steps.push(unfinishedStep(stepId, [...attempts.map(attemptView), ...(cut === undefined ? [] : [cut])]))
  }
  for (const [stepId, cut] of cutOff) {
    noteStart(stepId, cut.startedAt)
    steps.push(unfinishedStep(stepId, [cut]))
  }

  // Order as a tree: by the positions along each step's branch path, a group with no entry and a
  // step with no completion after the completed ones of their branch (among them, by start).
  const keyOf = (step: StepView): Array<number> => {
    const key: Array<number> = []
    for (const { group, branch } of branchesOf(step.scope ?? "")) {
      const position = groupPosition.get(group)
      key.push(position ?? Infinity, position === undefined ? groupStart.get(group) ?? Infinity : 0, branch)
    }
    key.push(step.position ?? Infinity, step.position === undefined ? step.startedAt : 0)
    return key
  }
  const keys = new Map(steps.map((step) => [step, keyOf(step)]))
  steps.sort((a, b) =>
    compareKeys(keys.get(a)!, keys.get(b)!) || (a.stepId < b.stepId ? -1 : a.stepId > b.stepId ? 1 : 0)
  )

  const { steps: withWaits, waiting } = durableWaits(
    run,
    steps,
    new Map(completed.map((step) => [step.stepId, step.result]))
  )

  // The child runs: each entry's child, found by its id or its parent link.
  const childTraces: Record<string, Trace> = {}
  const childRuns = new Map<string, Store.RunRecord>()
  const childOf = (ref: ChildRef): ChildView & { readonly stepId: string } => {
    const direct = histories?.get(ref.runId)
    const isOurs = (h: History) => h.run.parent?.runId === run.id && h.run.parent.stepId === ref.stepId
    const found = direct !== undefined && (ref.known || isOurs(direct))
      ? direct
      : histories === undefined
      ? undefined
      : [...histories.values()].find(isOurs)
    // The default id names another step's run: this child was given an id of its own, not found.
    const runId = found?.run.id ?? (direct !== undefined && !ref.known ? undefined : ref.runId)
    if (found !== undefined && depth < MAX_CHILD_DEPTH) {
      childTraces[found.run.id] = traceOf(found.run, found.journal, histories, depth + 1, found.redrives ?? [])
    }
    const child = found?.run
    if (child !== undefined) childRuns.set(ref.stepId, child)
    const ended = child?.finishedAt === undefined ? undefined : child.finishedAt - (child.startedAt ?? child.createdAt)
    return {
      stepId: ref.stepId,
      ...(runId === undefined ? {} : { runId }),
      workflow: ref.workflow,
      detached: ref.detached,
      ...(child === undefined ? {} : { status: child.status }),
      ...(ended === undefined ? {} : { durationMillis: ended }),
      ...(child?.reason === undefined || isFinal(child.status) ? {} : { reason: child.reason })
    }
  }
  const refs = childRefs(run, journal)
  const childByStep = new Map<string, ChildView>()
  let waitingChild: (ChildView & { readonly stepId: string }) | undefined
  for (const ref of refs) {
    const { stepId, ...child } = childOf(ref)
    if (done.has(ref.stepId)) childByStep.set(ref.stepId, child)
    else waitingChild = { stepId, ...child }
  }
  const shownSteps = withWaits.map((step): StepView => {
    const child = childByStep.get(step.stepId)
    if (child === undefined) return step
    // An awaited child's entry says how it ended when its record was not read.
    const status = child.status ?? (child.detached ? undefined : step.status === "failed" ? "failed" : "succeeded")
    const withChild = { ...step, child: status === undefined ? child : { ...child, status } }
    // An awaited child's entry is written when the parent takes its end: the wait began when the
    // child was created.
    const created = child.detached ? undefined : childRuns.get(step.stepId)?.createdAt
    if (created === undefined || created >= step.startedAt || step.finishedAt === undefined) return withChild
    return { ...withChild, startedAt: created, durationMillis: step.finishedAt - created }
  })

  const startedAt = run.startedAt ?? run.createdAt
  const runView: RunView = {
    id: run.id,
    workflow: run.workflow,
    version: run.version,
    status: run.status,
    ...(run.reason === undefined || isFinal(run.status) ? {} : { reason: run.reason }),
    createdAt: run.createdAt,
    ...(run.startedAt === undefined ? {} : { startedAt: run.startedAt }),
    ...(run.finishedAt === undefined ? {} : { finishedAt: run.finishedAt, durationMillis: run.finishedAt - startedAt }),
    recoveries: run.recoveries,
    ...(run.status === "succeeded" && run.output !== undefined ? { output: run.output } : {}),
    ...(run.wakeAt === undefined || isFinal(run.status) ? {} : { wakeAt: run.wakeAt }),
    ...(waiting === undefined ? {} : { waitingFor: waiting }),
    ...(waitingChild === undefined ? {} : { waitingForChild: waitingChild }),
    ...(run.parent === undefined ? {} : { parent: { runId: run.parent.runId, stepId: run.parent.stepId } }),
    ...(run.correlationId === undefined ? {} : { correlationId: run.correlationId }),
    ...(redrives.length === 0 ? {} : { redrives: redrives.map(redriveView) }),
    ...(run.queue === "default" ? {} : { queue: run.queue }),
    ...(run.concurrencyKey === undefined
      ? {}
      : { concurrencyKey: { key: run.concurrencyKey, limit: run.concurrencyLimit ?? 1 } })
  }
  return {
    run: runView,
    steps: shownSteps,
    ...(run.failure === undefined || run.failure === null || run.status === "succeeded"
      ? {}
      : { cause: causeView(run.failure) }),
    ...(Object.keys(childTraces).length === 0 ? {} : { children: childTraces })
  }
}

/**
 * The exit code of the command that waited for a run: 0 succeeded, 3 its failure holds a defect (a
 * bug), 1 it failed with a typed error, 130 it was interrupted and can be resumed.
 */
export const exitCode = (run: Store.RunRecord): 0 | 1 | 3 | 130 => {
  if (run.status === "succeeded") return 0
  if (!isFinal(run.status)) return 130
  const cause = causeView(run.failure)
  if (some(cause, (node) => node.kind === "defect")) return 3
  if (some(cause, (node) => node.kind === "fail")) return 1
  if (run.status === "failed" && some(cause, (node) => node.kind === "interrupt")) return 130
  return 1
}

/**
 * The reason of a run's failure in a few words: the first typed error's tag, or the first defect as
 * `Name: message`; for a run that did not fail, its status or the reason it is not progressing.
 */
export const summary = (trace: Trace): string =>
  (trace.cause === undefined ? undefined : causeSummary(trace.cause)) ?? trace.run.reason ?? trace.run.status

/**
 * A Cause in a few words: its first typed error's tag, or its first defect as `Name: message`, or
 * `interrupted`; undefined when it holds none of these.
 */
export const causeSummary = (cause: CauseView): string | undefined => {
  const first = firstFailure(cause)
  if (first !== undefined) {
    if (first.kind === "fail") return first.error.tag
    const message = (first.error.message ?? "").split("\n")[0]
    const text = message === "" ? first.error.tag : `${first.error.tag}: ${message}`
    return text.length > 80 ? `${text.slice(0, 79)}…` : text
  }
  return some(cause, (node) => node.kind === "interrupt") ? "interrupted" : undefined
}

/** Views an encoded Cause (`Schema.CauseEncoded`) as a tree. */
export const causeView = (encoded: unknown): CauseView => {
  if (!isRecord(encoded)) return { kind: "empty" }
  switch (encoded._tag) {
    case "Empty":
      return { kind: "empty" }
    case "Fail":
      return { kind: "fail", error: errorView(encoded.error) }
    case "Die":
      return { kind: "defect", error: errorView(encoded.defect) }
    case "Interrupt": {
      const fiberId = fiberIdText(encoded.fiberId)
      return fiberId === undefined ? { kind: "interrupt" } : { kind: "interrupt", fiberId }
    }
    case "Sequential":
    case "Parallel": {
      const kind = encoded._tag === "Sequential" ? "sequential" : "parallel"
      const children: Array<CauseView> = []
      const collect = (node: CauseView) => {
        if (node.kind === kind) node.children.forEach(collect)
        else if (node.kind !== "empty") children.push(node)
      }
      collect(causeView(encoded.left))
      collect(causeView(encoded.right))
      if (children.length === 0) return { kind: "empty" }
      if (children.length === 1) return children[0]
      return { kind, children }
    }
    default:
      return { kind: "defect", error: errorView(encoded) }
  }
}

/**
 * Views an encoded error: a tagged error encoded by its schema, a defect encoded by `Failure.Defect`
 * (`{ name, message, stack?, fields?, cause? }`), or a defect encoded by effect's `Schema.Defect`.
 */
export const errorView = (value: unknown): ErrorView => view(value, 0)

/**
 * The frames of a stack trace that are the user's: without `node:internal`, `node_modules` and
 * native frames, keeping at least the first frame when none is left.
 */
export const userFrames = (stack: string): Array<string> => {
  const frames = stack.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("at "))
  const user = frames.filter((frame) => !isInternalFrame(frame))
  return user.length > 0 ? user : frames.slice(0, 1)
}

const MAX_CAUSE_DEPTH = 16

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const isFinal = (status: Store.RunStatus): boolean =>
  status === "succeeded" || status === "failed" || status === "cancelled"

const redriveView = (redrive: Store.RedriveRecord): RedriveView => ({
  seq: redrive.seq,
  at: redrive.at,
  by: redrive.by,
  reason: redrive.reason,
  previousStatus: redrive.previousStatus,
  ...(redrive.failure === undefined || redrive.failure === null ? {} : { cause: causeView(redrive.failure) }),
  ...(redrive.fromStep === undefined ? {} : { fromStep: redrive.fromStep }),
  discarded: redrive.discarded,
  children: redrive.children
})

const attemptViewOf = (row: Store.AttemptRow): AttemptView => ({
  attempt: row.attempt,
  outcome: row.outcome,
  startedAt: row.startedAt,
  finishedAt: row.finishedAt,
  durationMillis: row.finishedAt - row.startedAt,
  ...(row.error === undefined || row.outcome === "success" ? {} : { error: errorView(row.error) }),
  ...(row.delayMillis === undefined ? {} : { delayMillis: row.delayMillis }),
  ...(row.stopReason === undefined ? {} : { stopReason: row.stopReason })
})

/** The branch path of a step id: `ship[1]/pack#2` → `ship[1]`, `pack` → `""`. */
export const scopeOf = (stepId: string): string => {
  const slash = stepId.lastIndexOf("/")
  return slash === -1 ? "" : stepId.slice(0, slash)
}

/**
 * The task-group branches along a branch path, outermost first: `ship[1]/boxes[0]` →
 * `{ group: "ship", branch: 1 }`, `{ group: "ship[1]/boxes", branch: 0 }` (a group's id is its step
 * id in its parent branch).
 */
export const branchesOf = (scope: string): Array<{ readonly group: string; readonly branch: number }> => {
  if (scope === "") return []
  const out: Array<{ group: string; branch: number }> = []
  let parent = ""
  for (const segment of scope.split("/")) {
    const match = /^(.*)\[(\d+)\]$/.exec(segment)
    if (match === null) break
    out.push({ group: parent === "" ? match[1] : `${parent}/${match[1]}`, branch: Number(match[2]) })
    parent = parent === "" ? segment : `${parent}/${segment}`
  }
  return out
}

const placeOf = (stepId: string): { readonly scope?: string; readonly depth?: number } => {
  const scope = scopeOf(stepId)
  return scope === "" ? {} : { scope, depth: branchesOf(scope).length }
}

const compareKeys = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  }
  return a.length - b.length
}

const outcomes: ReadonlyArray<string> = ["succeeded", "failed", "interrupted", "not-started"]

/** A group entry's result (`{ _tag, mode, branches }`), or undefined when it is not one. */
const groupView = (result: unknown): GroupView | undefined => {
  if (!isRecord(result) || (result.mode !== "fail-fast" && result.mode !== "settle")) return undefined
  const branches = result.branches
  if (!Array.isArray(branches) || !branches.every((b) => typeof b === "string" && outcomes.includes(b))) {
    return undefined
  }
  return { mode: result.mode, branches: branches as Array<BranchOutcome> }
}

/** The attempts a group entry (`{ interrupted: [...] }`) records as cut off in flight. */
const interruptedOf = (result: unknown): ReadonlyArray<Execution.InterruptedAttempt> => {
  if (!isRecord(result) || !Array.isArray(result.interrupted)) return []
  return result.interrupted.filter((cut): cut is Execution.InterruptedAttempt =>
    isRecord(cut) && typeof cut.stepId === "string" && typeof cut.attempt === "number" &&
    typeof cut.startedAt === "number" && typeof cut.interruptedAt === "number"
  )
}

/** `ship[1]/pack#2` → `pack`. */
const nameOf = (stepId: string): string => (stepId.split("/").at(-1) ?? stepId).replace(/#\d+$/, "")

const kindOf = (stepId: string): string => {
  const name = nameOf(stepId)
  if (name === "$now" || name === "$random" || name === "$uuid") return name.slice(1)
  if (name === "$sleep" || name === "$deadline") return "sleep"
  if (name.startsWith("$signal:")) return "signal"
  if (name.startsWith(UNDO)) return "compensation"
  if (name.startsWith(CHILD) || name.startsWith(START)) return "child"
  return "step"
}

const UNDO = "$undo:"
const SIGNAL = "$signal:"
const CHILD = "$child:"
const START = "$start:"

/** `$undo:ship[1]|pack` → `ship[1]/pack`: a compensation's name holds its step's id, `/` written `|`. */
const compensated = (name: string): string | undefined =>
  name.startsWith(UNDO) ? name.slice(UNDO.length).replace(/\|/g, "/") : undefined

/** The encoded value of a journaled success (`{ _tag: "Success", value }`), if it is one. */
const successValue = (result: unknown): { readonly value: unknown } | undefined =>
  isRecord(result) && result._tag === "Success" ? { value: result.value } : undefined

const waitingReason = /^waiting for signal (.+?)(?: until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)?$/

/**
 * Adds to the steps what their durable primitives mean: a sleep's wake time, a signal's payload or
 * timeout (its `$deadline` entry linked to it), the step a compensation undoes; and, for a run
 * waiting for a signal, that wait (it is not in the journal until the signal comes).
 */
const durableWaits = (
  run: Store.RunRecord,
  steps: ReadonlyArray<StepView>,
  results: ReadonlyMap<string, unknown>
): { readonly steps: Array<StepView>; readonly waiting?: SignalView & { readonly stepId: string } } => {
  const final = isFinal(run.status)
  const byPlace = new Map<string, StepView>()
  const byId = new Map<string, StepView>()
  for (const step of steps) {
    byId.set(step.stepId, step)
    if (step.position !== undefined) byPlace.set(`${step.scope ?? ""}\u0000${step.position}`, step)
  }
  const journaled = (step: StepView): unknown => successValue(results.get(step.stepId))?.value
  // Whether anything happened in the step's branch after it: a later entry, a step in flight, or a
  // task group it started (whose entry comes at the group's end).
  const isLast = (step: StepView): boolean => {
    const scope = step.scope ?? ""
    const position = step.position ?? Infinity
    return steps.every((other) => {
      if (other === step) return true
      const otherScope = other.scope ?? ""
      if (otherScope === scope) return other.position !== undefined && other.position < position
      if (scope !== "" && !otherScope.startsWith(`${scope}/`)) return true
      const group = branchesOf(otherScope).find(({ group }) => scopeOf(group) === scope)?.group
      if (group === undefined) return true
      const entry = byId.get(group)
      return entry?.position !== undefined && entry.position < position
    })
  }
  const deadlineBefore = (step: StepView): StepView | undefined => {
    if (step.position === undefined || step.position === 0) return undefined
    const before = byPlace.get(`${step.scope ?? ""}\u0000${step.position - 1}`)
    return before !== undefined && before.name === "$deadline" && numberOf(journaled(before)) !== undefined
      ? before
      : undefined
  }
  const timing = (deadline: StepView | undefined) => {
    const until = deadline === undefined ? undefined : numberOf(journaled(deadline))
    return until === undefined || deadline === undefined
      ? {}
      : { deadline: until, waitStartedAt: deadline.startedAt }
  }

  // A waiting run waits in its body, for the signal its reason names; its deadline is journaled.
  const match = run.status === "waiting" ? waitingReason.exec(run.reason ?? "") : null
  let waiting: (SignalView & { readonly stepId: string }) | undefined
  let pendingDeadline: StepView | undefined
  if (match !== null) {
    const name = match[1]
    const taken = steps.filter((s) => s.scope === undefined && s.name === `${SIGNAL}${name}`).length
    const tail = steps.find((s) => s.scope === undefined && s.name === "$deadline" && isLast(s))
    pendingDeadline = tail !== undefined && numberOf(journaled(tail)) !== undefined ? tail : undefined
    waiting = {
      stepId: taken === 0 ? `${SIGNAL}${name}` : `${SIGNAL}${name}#${taken + 1}`,
      name,
      outcome: "waiting",
      ...timing(pendingDeadline)
    }
  }

  const signalOf = new Map<StepView, StepView>()
  for (const step of steps) {
    const deadline = step.kind === "signal" ? deadlineBefore(step) : undefined
    if (deadline !== undefined) signalOf.set(deadline, step)
  }

  const out = steps.map((step): StepView => {
    if (step.kind === "sleep" && step.name === "$sleep") {
      const until = numberOf(journaled(step))
      if (until === undefined) return step
      const sleeping = !final && isLast(step) && (run.status !== "sleeping" || run.wakeAt === until)
      return { ...step, sleep: { until, durationMillis: Math.max(0, until - step.startedAt), sleeping } }
    }
    if (step.kind === "sleep" && step.name === "$deadline") {
      const until = numberOf(journaled(step))
      const sleep = until === undefined
        ? {}
        : { sleep: { until, durationMillis: Math.max(0, until - step.startedAt), sleeping: false } }
      const signal = signalOf.get(step)?.stepId ?? (step === pendingDeadline ? waiting?.stepId : undefined)
      return { ...step, ...sleep, ...(signal === undefined ? {} : { deadlineOf: signal }) }
    }
    if (step.kind === "signal" && step.name.startsWith(SIGNAL) && step.position !== undefined) {
      const name = step.name.slice(SIGNAL.length)
      const received = successValue(results.get(step.stepId))
      const signal: SignalView = received !== undefined
        ? { name, outcome: "received", payload: received.value, ...timing(deadlineBefore(step)) }
        : { name, outcome: "timed-out", ...timing(deadlineBefore(step)), ...timedOutAfter(step.cause) }
      return { ...step, signal }
    }
    const undone = step.kind === "compensation" ? compensated(step.name) : undefined
    return undone === undefined ? step : { ...step, compensates: undone }
  })
  return waiting === undefined ? { steps: out } : { steps: out, waiting }
}

const numberOf = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined

/** A signal's timeout as its SignalTimeout says (`timeoutMillis`), when that is the failure. */
const timedOutAfter = (cause: CauseView | undefined): { readonly timeoutMillis?: number } => {
  if (cause?.kind !== "fail" || cause.error.tag !== "SignalTimeout") return {}
  const millis = numberOf(cause.error.fields.timeoutMillis)
  return millis === undefined ? {} : { timeoutMillis: millis }
}

const isInternalFrame = (frame: string): boolean =>
  frame.includes("node_modules") ||
  frame.includes("node:internal") ||
  /^at (?:.* \()?node:/.test(frame) ||
  frame.endsWith("(<anonymous>)") ||
  frame.endsWith("(native)")

const fiberIdText = (fiberId: unknown): string | undefined => {
  if (!isRecord(fiberId)) return undefined
  if (fiberId._tag === "Runtime") return `#${String(fiberId.id)}`
  if (fiberId._tag === "Composite") {
    const parts = [fiberIdText(fiberId.left), fiberIdText(fiberId.right)].filter((p) => p !== undefined)
    return parts.length === 0 ? undefined : parts.join("+")
  }
  return undefined
}

const some = (cause: CauseView, predicate: (node: CauseView) => boolean): boolean =>
  predicate(cause) ||
  ((cause.kind === "sequential" || cause.kind === "parallel") && cause.children.some((child) => some(child, predicate)))

const firstFailure = (
  cause: CauseView
): Extract<CauseView, { readonly kind: "fail" | "defect" }> | undefined => {
  if (cause.kind === "fail" || cause.kind === "defect") return cause
  if (cause.kind === "sequential" || cause.kind === "parallel") {
    for (const child of cause.children) {
      const found = firstFailure(child)
      if (found !== undefined) return found
    }
  }
  return undefined
}

const decodeBuiltIn = Schema.decodeUnknownOption(Failure.BuiltIn)

// Built-in errors explain themselves from their fields; the encoding keeps only the fields.
const builtInMessage = (value: Record<string, unknown>): string | undefined =>
  Option.getOrUndefined(Option.map(decodeBuiltIn(value), (error) => error.message))

const omit = (record: Record<string, unknown>, keys: ReadonlyArray<string>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(record)) if (!keys.includes(key)) out[key] = value
  return out
}

const withCause = (error: ErrorView, cause: unknown, depth: number): ErrorView =>
  cause === undefined || cause === null || depth >= MAX_CAUSE_DEPTH
    ? error
    : { ...error, cause: view(cause, depth + 1) }

const view = (value: unknown, depth: number): ErrorView => {
  if (isRecord(value) && typeof value._tag === "string") {
    const message = typeof value.message === "string" ? value.message : builtInMessage(value)
    return withCause(
      {
        tag: value._tag,
        tagged: true,
        ...(message === undefined ? {} : { message }),
        fields: omit(value, ["_tag", "cause"])
      },
      value.cause,
      depth
    )
  }
  if (isRecord(value) && typeof value.name === "string" && typeof value.message === "string") {
    const stack = typeof value.stack === "string" ? userFrames(value.stack) : []
    const fields = isRecord(value.fields) ? value.fields : {}
    // A typed error that was thrown or died keeps its tag in its fields: show it as the tagged error
    // it is. Its message is then the error's own rendering of its fields (`{ "code": ... }`) unless
    // it declared one.
    const tag = typeof fields._tag === "string" ? fields._tag : undefined
    const base: ErrorView = tag === undefined
      ? { tag: value.name, tagged: false, message: value.message, fields }
      : {
        tag,
        tagged: true,
        ...(value.message.startsWith("{") || value.message === "" ? {} : { message: value.message }),
        fields: omit(fields, typeof fields.retryable === "boolean" ? ["_tag", "retryable"] : ["_tag"])
      }
    return withCause(stack.length === 0 ? base : { ...base, stack }, value.cause, depth)
  }
  if (typeof value === "string") return { tag: "NonError", tagged: false, message: value, fields: {} }
  if (isRecord(value)) return { tag: "(untagged)", tagged: true, fields: value }
  return { tag: "NonError", tagged: false, message: String(value), fields: {} }
}
