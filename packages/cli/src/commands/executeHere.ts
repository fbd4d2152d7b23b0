/**
 * Executing a run in this process, as `weft run` and `weft resume` do: claim it, print its progress
 * on stderr, and report how it ended (result on stdout, or its failure tree) with its exit code.
 */
import { type Execution, Failure, type Workflow } from "@weft/core"
import { Client, Engine, type Errors, Runner, Store } from "@weft/runtime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Output from "../Output.js"
import * as Render from "../Render.js"
import * as Trace from "../Trace.js"
import { UsageError } from "../UsageError.js"
import { color, LEASE_MILLIS } from "./shared.js"

/** How many levels of child runs `weft show` and `weft run` read. */
const CHILD_DEPTH = 3

/**
 * The history of a run with those of its child runs, their children, ... `depth` levels down, by
 * run id. A child given an id of its own is found by its parent link among the runs of its workflow
 * created since its step began.
 */
export const historyWithChildren = (runId: string, depth = CHILD_DEPTH) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    const store = yield* Store.Store
    const history = yield* client.history(runId)
    const children = new Map<string, Trace.History>()
    let level: Array<Trace.History> = [history]
    for (let d = 0; d < depth && level.length > 0; d++) {
      const refs = level.flatMap((parent) =>
        Trace.childRefs(parent.run, parent.journal).map((ref) => ({ parent: parent.run.id, ref }))
      )
      const found = yield* Effect.forEach(refs, ({ parent, ref }) =>
        Effect.gen(function*() {
          if (children.has(ref.runId)) return Option.none<Trace.History>()
          const direct = yield* Effect.option(client.history(ref.runId))
          const ours = (run: Store.RunRecord) => run.parent?.runId === parent && run.parent.stepId === ref.stepId
          if (Option.isSome(direct) && (ref.known || ours(direct.value.run))) return direct
          const runs = yield* store.listRuns({ workflow: ref.workflow, since: ref.startedAt })
          const run = runs.find(ours)
          return run === undefined ? Option.none<Trace.History>() : yield* Effect.option(client.history(run.id))
        }), { concurrency: 8 })
      level = []
      for (const h of found) {
        if (Option.isSome(h) && !children.has(h.value.run.id)) {
          children.set(h.value.run.id, h.value)
          level.push(h.value)
        }
      }
    }
    return { history, children }
  })

/**
 * Prints a finished run the way `run` and `resume` do, and returns its exit code. With `workflow`,
 * a failed run's log record (in the structured log formats) carries its decoded Cause.
 */
export const report = (runId: string, json: boolean, workflow?: Workflow.Any) =>
  Effect.gen(function*() {
    const { children, history } = yield* historyWithChildren(runId)
    const trace = Trace.fromHistory(history.run, history.journal, children, history.redrives)
    const code = Trace.exitCode(history.run)
    const run = history.run
    const took = run.finishedAt !== undefined && run.startedAt !== undefined ? run.finishedAt - run.startedAt : 0
    const fields = { ...Engine.logAnnotations(run), durationMillis: took }
    if (run.status === "succeeded") {
      yield* Output.notice(
        `${Output.paint("✓", "green", color(process.stderr))} ${run.workflow} ${run.id} succeeded in ${
          Render.formatDuration(took)
        }`,
        { message: "run succeeded", fields }
      )
      yield* Output.out(
        json
          ? `${JSON.stringify({ runId: run.id, workflow: run.workflow, status: run.status, output: run.output })}\n`
          : `${JSON.stringify(run.output, null, 2) ?? "null"}\n`
      )
    } else {
      const cause = workflow === undefined ? undefined : yield* Engine.decodeOutcome(workflow, run).pipe(
        Effect.map((exit) => (Exit.isFailure(exit) ? exit.cause : undefined)),
        Effect.orElseSucceed(() => undefined)
      )
      yield* Output.notice(Render.failureTree(trace, { color: color(process.stderr) }), {
        message: `run ${run.status}: ${Trace.summary(trace)}`,
        severity: run.status === "failed" ? "error" : "warning",
        fields: { ...fields, tree: Render.failureTree(trace, { color: false }) },
        cause
      })
      if (json) yield* Output.out(`${JSON.stringify(trace)}\n`)
    }
    return code
  })

/** A progress event as a log record: what happened to which step and attempt, with the error as its cause. */
const progressRecord = (event: Execution.ProgressEvent): {
  readonly message: string
  readonly severity: Output.Severity
  readonly fields: Record<string, unknown>
  readonly cause?: Cause.Cause<unknown> | undefined
} => {
  const causeOf = (error: unknown) => Failure.tagOf(error) === undefined ? Cause.die(error) : Cause.fail(error)
  switch (event._tag) {
    case "StepStarted":
      return { message: "step started", severity: "info", fields: { stepId: event.stepId, attempt: event.attempt } }
    case "StepReplayed":
      return {
        message: "step replayed from the journal",
        severity: "info",
        fields: { stepId: event.stepId, failed: event.failed }
      }
    case "StepSucceeded":
      return {
        message: "step succeeded",
        severity: "info",
        fields: { stepId: event.stepId, attempt: event.attempt, durationMillis: event.durationMillis }
      }
    case "StepRetrying":
      return {
        message: "step attempt failed; retrying",
        severity: "warning",
        fields: { stepId: event.stepId, attempt: event.attempt, delayMillis: event.delayMillis },
        cause: causeOf(event.error)
      }
    case "StepFailed":
      return {
        message: "step failed",
        severity: "error",
        fields: { stepId: event.stepId, attempt: event.attempt, reason: event.reason },
        cause: causeOf(event.error)
      }
    case "StepWaiting":
      return {
        message: "step waiting to retry",
        severity: "info",
        fields: { stepId: event.stepId, attempt: event.attempt, until: new Date(event.untilMillis) }
      }
  }
}

const childWait = /waiting for child run (.+?) \(([^()]*)\)(?:;|$)/g

/**
 * Prints the progress of a run and of the children it waits for, which this process executes
 * meanwhile (their events come through the same callbacks): a child's lines are indented under the
 * line that says the run waits for it, until the child has ended (seen at the next line).
 */
const progressPrinter = (store: Store.StoreService) => {
  const options = { color: color(process.stderr) }
  // The children awaited, the next to be executed last, each with how deep it is.
  const awaited: Array<{ readonly runId: string; readonly depth: number }> = []
  const depth = () => awaited[awaited.length - 1]?.depth ?? 0
  const indent = () => "  ".repeat(depth() + 1)
  /** Says how the children that ended since the last line ended, innermost first. */
  const ended = Effect.gen(function*() {
    while (awaited.length > 0) {
      const { depth, runId } = awaited[awaited.length - 1]
      const run = yield* Effect.orElseSucceed(store.getRun(runId), () => Option.none<Store.RunRecord>())
      if (Option.isSome(run) && !Store.isTerminal(run.value.status)) return
      awaited.pop()
      if (Option.isSome(run)) {
        const trace = Trace.fromHistory(run.value, { steps: [], attempts: [] })
        yield* Output.notice(`${"  ".repeat(depth)}${Render.childProgress({ _tag: "ChildEnded", trace }, options)}`, {
          message: `child run ${run.value.status}`,
          fields: Engine.logAnnotations(run.value)
        })
      }
    }
  })
  return {
    ended,
    onProgress: (event: Execution.ProgressEvent) => {
      const line = Effect.suspend(() =>
        Output.notice(`${indent()}${Render.progress(event, options)}`, progressRecord(event))
      )
      // A step's end is reported once durable: a child's last step with the child's end, so the
      // line comes before the one that says the child ended.
      return event._tag === "StepSucceeded" || event._tag === "StepFailed"
        ? Effect.zipRight(line, ended)
        : Effect.zipRight(ended, line)
    },
    onSuspended: (runId: string, suspended: Errors.RunSuspended) =>
      Effect.zipRight(
        ended,
        Effect.suspend(() => {
          // The children it waits for (their workflows are in the reason), executed here in order.
          const workflows = new Map([...suspended.reason.matchAll(childWait)].map((match) => [match[1], match[2]]))
          const children = (suspended.children ?? []).filter((child) => workflows.has(child))
          if (children.length > 0) {
            const level = depth() + 1
            const lines = children.map((child) =>
              `${"  ".repeat(level)}${
                Render.childProgress({ _tag: "ChildAwaited", runId: child, workflow: workflows.get(child)! }, options)
              }`
            )
            for (const child of [...children].reverse()) awaited.push({ runId: child, depth: level })
            return Effect.forEach(children, (child, i) =>
              Output.notice(lines[i], {
                message: "run waiting for its child run",
                fields: { runId, childRunId: child, childWorkflow: workflows.get(child) }
              }), { discard: true })
          }
          return Output.notice(
            `${indent()}${Output.paint("⏾", "cyan", options.color)} ${suspended.reason}: suspended; waiting here ` +
              `(Ctrl-C leaves it to any worker: weft worker, or weft resume ${runId})`,
            {
              message: `run suspended, ${suspended.reason}; waiting here`,
              fields: {
                runId,
                ...(suspended.wakeAt === undefined ? {} : { wakeAt: new Date(suspended.wakeAt) })
              }
            }
          )
        })
      )
  }
}

/** Claims the run, executes it here with live progress, and reports it; Ctrl-C leaves it resumable. */
export const executeHere = (
  workflow: Workflow.Any,
  runId: string,
  options: { readonly owner: string; readonly force: boolean; readonly json: boolean }
) =>
  Effect.flatMap(Store.Store, (store) => {
    const printer = progressPrinter(store)
    // What is printed about the run outside its engine (suspensions, its end) carries its context too.
    const context = Effect.map(
      Effect.orElseSucceed(store.getRun(runId), () => Option.none<Store.RunRecord>()),
      Option.match({
        onNone: () => ({ runId, workflow: workflow.name }),
        onSome: (run) => Engine.logAnnotations(run)
      })
    )
    // The module's own layer (provided by the caller) satisfies the workflow's requirements.
    return (Runner.claimAndExecute(workflow, runId, {
      owner: options.owner,
      leaseMillis: LEASE_MILLIS,
      force: options.force,
      onProgress: printer.onProgress,
      // A long sleep or wait suspends the run: this process waits without holding it, so a worker
      // may take it meanwhile, and Ctrl-C leaves it sleeping or waiting, not lost. A child the run
      // waits for is executed here meanwhile.
      onSuspended: (suspended) => printer.onSuspended(runId, suspended)
    }) as Effect.Effect<
      unknown,
      Errors.RunNotClaimable | Errors.StoreUnavailable | Errors.LeaseLost,
      Store.Store
    >).pipe(
      Effect.catchTag("RunNotClaimable", (error) => Effect.fail(new UsageError({ message: error.message }))),
      Effect.zipLeft(printer.ended),
      Effect.flatMap(() => report(runId, options.json, workflow)),
      Effect.onInterrupt(() =>
        Effect.flatMap(FiberRef.get(Output.logFormat), (format) =>
          Output.notice(
            `${format === "pretty" ? "\n" : ""}interrupted: run ${runId} is resumable with: weft resume ${runId}`,
            { message: `run interrupted; resume it with: weft resume ${runId}`, severity: "warning" }
          ))
      ),
      (effect) => Effect.flatMap(context, (annotations) => Effect.annotateLogs(effect, annotations))
    )
  })
