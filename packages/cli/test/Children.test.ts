/**
 * Child workflows in traces and their rendering: an awaited child (`$child:<workflow>`) that
 * succeeded, failed with a typed error (the failure tree hangs the child's own steps and attempts
 * under it), or is still running while its parent waits (from the parent's reason); a detached child
 * (`$start:<workflow>`); a child given an id of its own, found by its parent link; the parent link of
 * a child in `weft show`; and the progress lines about a child.
 */
import type { Store } from "@weft/runtime"
import { describe, expect, it } from "vitest"
import * as Render from "../src/Render.js"
import * as Trace from "../src/Trace.js"
import { runRecord } from "./runs.js"

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0)
const PARENT = "5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d"
const CHILD = `${PARENT}/$child:payment`
const plain = { color: false }

const makeRun = (overrides: Partial<Store.RunRecord>): Store.RunRecord =>
  runRecord(T0, { id: PARENT, workflow: "order", status: "succeeded", ...overrides })

const ok = (value: unknown) => ({ _tag: "Success", value })
const failure = (cause: unknown) => ({ _tag: "Failure", cause })

const entry = (
  runId: string,
  stepId: string,
  position: number,
  at: number,
  to: number,
  result: unknown
): Store.StepRecord => {
  const name = stepId.replace(/#\d+$/, "")
  const child = name.startsWith("$child:") || name.startsWith("$start:")
  return {
    runId,
    stepId,
    name,
    kind: child ? "child" : name.startsWith("$undo:") ? "compensation" : "step",
    position,
    result,
    failed: (result as { _tag: string })._tag === "Failure",
    attempts: child ? 0 : 1,
    startedAt: T0 + at,
    finishedAt: T0 + to
  }
}

/** Every step that is not a child's entry gets one attempt: a success, or the given failure. */
const journalOf = (steps: ReadonlyArray<Store.StepRecord>, extra: ReadonlyArray<Store.AttemptRow> = []) => ({
  steps,
  attempts: [
    ...steps
      .filter((s) => s.kind !== "child" && !extra.some((a) => a.stepId === s.stepId))
      .map((s) => ({
        runId: s.runId,
        stepId: s.stepId,
        attempt: 1,
        startedAt: s.startedAt,
        finishedAt: s.finishedAt,
        outcome: "success" as const
      })),
    ...extra
  ]
})

const declined = { _tag: "CardDeclined", card: "4000-0002", code: "insufficient_funds" }
const declinedCause = { _tag: "Fail", error: declined }

// --- an awaited child that succeeded ---------------------------------------------------------------

const paidChild: Trace.History = {
  run: makeRun({
    id: CHILD,
    workflow: "payment",
    output: "ch_1",
    createdAt: T0 + 10,
    startedAt: T0 + 12,
    finishedAt: T0 + 132,
    parent: { runId: PARENT, stepId: "$child:payment" }
  }),
  journal: journalOf([
    entry(CHILD, "authorize", 0, 20, 60, ok("auth_1")),
    entry(CHILD, "capture", 1, 70, 120, ok("ch_1"))
  ])
}
const paidParent: Trace.History = {
  run: makeRun({ output: { charge: "ch_1" }, finishedAt: T0 + 200 }),
  journal: journalOf([
    entry(PARENT, "reserve-stock", 0, 2, 5, ok("rsv-1")),
    // The entry is written when the parent takes the child's end, after it woke.
    entry(PARENT, "$child:payment", 1, 150, 150, ok("ch_1"))
  ])
}

// --- an awaited child that failed with a typed error -----------------------------------------------

const declinedChild: Trace.History = {
  run: makeRun({
    id: CHILD,
    workflow: "payment",
    status: "failed",
    failure: declinedCause,
    createdAt: T0 + 10,
    startedAt: T0 + 12,
    finishedAt: T0 + 40,
    parent: { runId: PARENT, stepId: "$child:payment" }
  }),
  journal: journalOf([entry(CHILD, "authorize", 0, 20, 32, failure(declinedCause))], [{
    runId: CHILD,
    stepId: "authorize",
    attempt: 1,
    startedAt: T0 + 20,
    finishedAt: T0 + 32,
    outcome: "failure",
    error: declined,
    stopReason: "not-retryable"
  }])
}
const declinedParent: Trace.History = {
  run: makeRun({ status: "failed", failure: declinedCause, finishedAt: T0 + 90 }),
  journal: journalOf([
    entry(PARENT, "reserve-stock", 0, 2, 5, ok("rsv-1")),
    entry(PARENT, "$child:payment", 1, 60, 60, failure(declinedCause)),
    entry(PARENT, "$undo:reserve-stock", 2, 70, 72, ok(null))
  ])
}

// --- a parent waiting for its child ----------------------------------------------------------------

const runningChild: Trace.History = {
  run: makeRun({
    id: CHILD,
    workflow: "payment",
    status: "running",
    createdAt: T0 + 10,
    startedAt: T0 + 12,
    parent: { runId: PARENT, stepId: "$child:payment" }
  }),
  journal: journalOf([entry(CHILD, "authorize", 0, 20, 60, ok("auth_1"))])
}
const waitingParent: Trace.History = {
  run: makeRun({ status: "waiting", reason: `waiting for child run ${CHILD} (payment)` }),
  journal: journalOf([entry(PARENT, "reserve-stock", 0, 2, 5, ok("rsv-1"))])
}

const mapOf = (...histories: ReadonlyArray<Trace.History>) => new Map(histories.map((h) => [h.run.id, h]))
const traceOf = (parent: Trace.History, ...children: ReadonlyArray<Trace.History>) =>
  Trace.fromHistory(parent.run, parent.journal, children.length === 0 ? undefined : mapOf(...children))

describe("an awaited child in the trace", () => {
  it("names the child run, its workflow and status; the wait starts when the child was created", () => {
    const trace = traceOf(paidParent, paidChild)
    const step = trace.steps.find((s) => s.stepId === "$child:payment")
    expect(step).toMatchObject({
      kind: "child",
      status: "succeeded",
      startedAt: T0 + 10,
      durationMillis: 140,
      child: { runId: CHILD, workflow: "payment", detached: false, status: "succeeded", durationMillis: 120 }
    })
    expect(Object.keys(trace.children ?? {})).toEqual([CHILD])
    expect(trace.children?.[CHILD].run.parent).toEqual({ runId: PARENT, stepId: "$child:payment" })
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace)
  })

  it("without the children's histories, the journal says how the child ended and its default id", () => {
    const trace = traceOf(declinedParent)
    expect(trace.steps[1]).toMatchObject({
      startedAt: T0 + 60,
      child: { runId: CHILD, workflow: "payment", detached: false, status: "failed" }
    })
    expect(trace.children).toBeUndefined()
    expect(Trace.childRefs(declinedParent.run, declinedParent.journal)).toEqual([
      {
        stepId: "$child:payment",
        runId: CHILD,
        known: false,
        workflow: "payment",
        detached: false,
        startedAt: T0 + 60
      }
    ])
  })

  it("a child given its own id is found by its parent link; a run under the default id that is not its own is not it", () => {
    const own = { ...paidChild, run: { ...paidChild.run, id: "pay-order-1" } }
    const stranger = { ...paidChild, run: { ...paidChild.run, parent: { runId: "someone-else", stepId: "x" } } }
    expect(traceOf(paidParent, own).steps[1].child).toMatchObject({ runId: "pay-order-1", status: "succeeded" })
    const unknown = traceOf(paidParent, stranger).steps[1].child
    expect(unknown).toEqual({ workflow: "payment", detached: false, status: "succeeded" })
  })

  it("a waiting parent's child comes from its reason, with the child's status", () => {
    const trace = traceOf(waitingParent, runningChild)
    expect(trace.run.waitingForChild).toEqual({
      stepId: "$child:payment",
      runId: CHILD,
      workflow: "payment",
      detached: false,
      status: "running"
    })
    expect(traceOf(waitingParent).run.waitingForChild).toEqual({
      stepId: "$child:payment",
      runId: CHILD,
      workflow: "payment",
      detached: false
    })
    // A child with an id of its own, the parent's second child of that workflow.
    const second = makeRun({ status: "waiting", reason: "waiting for child run pay-2 (payment)" })
    const journal = journalOf([entry(PARENT, "$child:payment", 0, 2, 5, ok("ch_1"))])
    expect(Trace.fromHistory(second, journal).run.waitingForChild).toMatchObject({
      stepId: "$child:payment#2",
      runId: "pay-2"
    })
  })

  it("a child run's trace has its parent", () => {
    expect(traceOf(paidChild).run.parent).toEqual({ runId: PARENT, stepId: "$child:payment" })
    expect(traceOf(paidParent).run.parent).toBeUndefined()
  })
})

describe("children drawn", () => {
  it("the failure tree hangs the failed child's steps and attempts under it", () => {
    expect(Render.failureTree(traceOf(declinedParent, declinedChild), plain)).toMatchInlineSnapshot(`
      "✗ order 5b9e0c1d failed in 90ms: CardDeclined
      order(5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d)
      ├─ ✓ reserve-stock                            3ms
      ├─ ✗ ⤷ child payment 5b9e0c1d/$child:payment  CardDeclined { card: "4000-0002", code: "insufficient_funds" }
      │  └─ ✗ authorize                             1 attempt, 12ms
      │     └─ 1 CardDeclined { card: "4000-0002", code: "insufficient_funds" }  not retryable
      └─ ✓ ↺ reserve-stock (compensation)           2ms
      cause: CardDeclined { card: "4000-0002", code: "insufficient_funds" }"
    `)
  })

  it("without the child's history, the failed child is its line", () => {
    expect(Render.failureTree(traceOf(declinedParent), plain)).toContain(
      `├─ ✗ ⤷ child payment 5b9e0c1d/$child:payment  CardDeclined { card: "4000-0002", code: "insufficient_funds" }\n` +
        `└─ ✓ ↺ reserve-stock (compensation)`
    )
  })

  it("weft show hangs a child's steps from its row, offsets from the parent's start", () => {
    expect(Render.timeline(traceOf(paidParent, paidChild), plain)).toMatchInlineSnapshot(`
      "order 5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d  ✓ succeeded
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  200ms
        output    { charge: "ch_1" }

        +2ms   3ms    ✓ reserve-stock
        +10ms  140ms  ✓ ⤷ child payment 5b9e0c1d/$child:payment
        +20ms  40ms   ├─ ✓ authorize
        +70ms  50ms   └─ ✓ capture"
    `)
  })

  it("a parent waiting for its child: the child's row says what the child does", () => {
    const text = Render.timeline(traceOf(waitingParent, runningChild), plain)
    expect(text).toContain(`reason   waiting for child run ${CHILD} (payment)`)
    expect(text).toMatch(/\+10ms {8}◷ ⤷ child payment 5b9e0c1d\/\$child:payment {2}running\n.*└─ ✓ authorize$/)
    const waitingForSignal = {
      ...runningChild,
      run: { ...runningChild.run, status: "waiting" as const, reason: "waiting for signal approved" }
    }
    expect(Render.timeline(traceOf(waitingParent, waitingForSignal), plain)).toContain(
      "◷ ⤷ child payment 5b9e0c1d/$child:payment  waiting for signal approved"
    )
    // Its history not read: the parent's reason alone.
    expect(Render.timeline(traceOf(waitingParent), plain)).toContain(
      "◷ ⤷ child payment 5b9e0c1d/$child:payment  running"
    )
  })

  it("a detached child: started, with its status when known", () => {
    const started = entry(PARENT, "$start:payment", 0, 2, 3, ok({ runId: "pay-9" }))
    const parent = { run: makeRun({ output: "pay-9", finishedAt: T0 + 5 }), journal: journalOf([started]) }
    const trace = traceOf(parent)
    expect(trace.steps[0].child).toEqual({ runId: "pay-9", workflow: "payment", detached: true })
    expect(Render.timeline(trace, plain)).toMatch(/✓ ⤷ started payment pay-9 \(detached\)$/m)
    const child = {
      ...paidChild,
      run: { ...paidChild.run, id: "pay-9", parent: { runId: PARENT, stepId: "$start:payment" } }
    }
    const known = traceOf(parent, child)
    expect(known.steps[0].child).toMatchObject({ status: "succeeded", durationMillis: 120 })
    const text = Render.timeline(known, plain)
    expect(text).toMatch(/✓ ⤷ started payment pay-9 \(detached\) {2}succeeded in 120ms$/m)
    // Its steps are its own business.
    expect(text).not.toContain("authorize")
  })

  it("weft show of a child names its parent", () => {
    expect(Render.timeline(traceOf(paidChild), plain)).toContain(
      `  parent    ${PARENT} step $child:payment\n`
    )
  })

  it("progress lines: the run waits for its child, and how the child ended", () => {
    expect(Render.childProgress({ _tag: "ChildAwaited", runId: CHILD, workflow: "payment" }, plain)).toBe(
      "⤷ child payment 5b9e0c1d/$child:payment (the run waits for it)"
    )
    const ended = (h: Trace.History) =>
      Render.childProgress({ _tag: "ChildEnded", trace: Trace.fromHistory(h.run, h.journal) }, plain)
    expect(ended(paidChild)).toBe("✓ child payment 5b9e0c1d/$child:payment succeeded in 120ms")
    expect(ended(declinedChild)).toBe("✗ child payment 5b9e0c1d/$child:payment failed: CardDeclined")
  })

  it("short ids cut each UUID in a child's id", () => {
    expect(Render.shortRunId(`${CHILD}/$child:charge`)).toBe("5b9e0c1d/$child:payment/$child:charge")
    expect(Render.shortRunId("pay-9")).toBe("pay-9")
  })
})
