/**
 * Task groups in traces and their rendering: steps ordered as a tree (positions repeat across
 * branches), group entries that are not Exits, groups cut off before their end, nested groups in
 * the failure tree and the timeline, and the labels of a failed group's Cause.
 */
import type { Store } from "@weft/runtime"
import { describe, expect, it } from "vitest"
import * as Render from "../src/Render.js"
import * as Trace from "../src/Trace.js"
import { runRecord } from "./runs.js"

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0)
const RUN_ID = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
const plain = { color: false }

const makeRun = (overrides: Partial<Store.RunRecord>): Store.RunRecord =>
  runRecord(T0, {
    id: RUN_ID,
    workflow: "shipping",
    status: "failed",
    updatedAt: T0 + 200,
    finishedAt: T0 + 200,
    ...overrides
  })

const localName = (stepId: string) => (stepId.split("/").at(-1) ?? stepId).replace(/#\d+$/, "")

/** A completed step, as the engine journals it: `position` is its place in its branch. */
const step = (stepId: string, position: number, startedAt: number, finishedAt: number, result: unknown) => ({
  runId: RUN_ID,
  stepId,
  name: localName(stepId),
  kind: "step" as const,
  position,
  result,
  failed: (result as { _tag: string })._tag === "Failure",
  attempts: 1,
  startedAt: T0 + startedAt,
  finishedAt: T0 + finishedAt
})

/** A group's entry, written when it ends (so it starts and finishes then), with no attempts. */
const group = (
  stepId: string,
  position: number,
  at: number,
  mode: "fail-fast" | "settle",
  branches: ReadonlyArray<Trace.BranchOutcome>
): Store.StepRecord => {
  const failed = branches.includes("failed")
  return {
    runId: RUN_ID,
    stepId,
    name: localName(stepId),
    kind: "group",
    position,
    result: { _tag: failed ? "Failure" : "Success", mode, branches },
    failed,
    attempts: 0,
    startedAt: T0 + at,
    finishedAt: T0 + at
  }
}

const attempt = (
  stepId: string,
  startedAt: number,
  finishedAt: number,
  rest: Partial<Store.AttemptRow> = {}
): Store.AttemptRow => ({
  runId: RUN_ID,
  stepId,
  attempt: 1,
  startedAt: T0 + startedAt,
  finishedAt: T0 + finishedAt,
  outcome: "success",
  ...rest
})

const ok = (value: unknown) => ({ _tag: "Success", value })
const jammed = { _tag: "Jammed", box: 1 }
const fail = { _tag: "Fail", error: jammed }
// An interrupted branch's Cause, as effect records it: the same fiber once per finalizer.
const interrupted = (id: number) => ({
  _tag: "Sequential",
  left: { _tag: "Interrupt", fiberId: { _tag: "Runtime", id, startTimeMillis: T0 } },
  right: { _tag: "Interrupt", fiberId: { _tag: "Runtime", id, startTimeMillis: T0 } }
})
const parallel = (left: unknown, right: unknown) => ({ _tag: "Parallel", left, right })

/** Steps with their attempts, for journals whose attempts are the completions' own. */
const journalOf = (
  steps: ReadonlyArray<Store.StepRecord>,
  extra: ReadonlyArray<Store.AttemptRow> = []
): Store.Journal => ({
  steps,
  attempts: [
    ...steps.filter((s) => s.kind !== "group").map((s) =>
      attempt(
        s.stepId,
        s.startedAt - T0,
        s.finishedAt - T0,
        s.failed ? { outcome: "failure", error: jammed, stopReason: "not-retryable" } : {}
      )
    ),
    ...extra
  ]
})

// --- fixture: a settle group that succeeded, between two steps ------------------------------
// The store returns steps by position, which repeats across branches: the trace must not.

const settled = {
  run: makeRun({ status: "succeeded", output: "done", finishedAt: T0 + 90 }),
  journal: journalOf([
    step("plan", 0, 1, 3, ok(3)),
    step("ship[0]/pack", 0, 4, 20, ok("a")),
    step("ship[1]/pack", 0, 4, 30, ok("b")),
    step("ship[2]/pack", 0, 20, 40, ok("c")),
    step("ship[1]/label", 1, 30, 35, ok("b")),
    group("ship", 1, 41, "settle", ["succeeded", "succeeded", "succeeded"]),
    step("notify", 2, 42, 45, ok(null))
  ])
}

// --- fixture: nested fail-fast groups ---------------------------------------------------------
// ship[1]/boxes[1]/seal failed: its sibling box and the branch ship[0] were interrupted; ship[0]'s
// pack was backing off after a failed attempt (an attempt with no completion).

const nestedCause = parallel(interrupted(2), parallel(interrupted(6), fail))
const nested = {
  run: makeRun({ failure: nestedCause, finishedAt: T0 + 60 }),
  journal: journalOf(
    [
      step("plan", 0, 1, 3, ok(2)),
      step("ship[0]/pick", 0, 4, 5, ok(0)),
      step("ship[1]/pick", 0, 4, 6, ok(1)),
      step("ship[1]/boxes[1]/seal", 0, 7, 30, { _tag: "Failure", cause: fail }),
      group("ship[1]/boxes", 1, 50, "fail-fast", ["interrupted", "failed"]),
      group("ship", 1, 55, "fail-fast", ["interrupted", "failed"])
    ],
    [attempt("ship[0]/pack", 6, 16, { outcome: "failure", error: { _tag: "Busy" }, delayMillis: 500 })]
  )
}

// --- fixture: a run cut off in the middle of a group (no entry yet) ---------------------------

const cutOff = (status: Store.RunStatus, reason: string) => ({
  run: makeRun({ status, reason, finishedAt: undefined }),
  journal: journalOf(
    [step("plan", 0, 1, 3, ok(2)), step("ship[1]/pick", 0, 4, 6, ok(1)), step("ship[0]/pick", 0, 4, 8, ok(0))],
    [attempt("ship[1]/pack", 7, 9, { outcome: "failure", error: { _tag: "Busy" }, delayMillis: 500 })]
  )
})
const crashed = cutOff("queued", `interrupted at 2024-05-01T12:00:00.010Z; resume it with: weft resume ${RUN_ID}`)
const backingOff = cutOff("running", "backing off until 2024-05-01T12:00:00.509Z after attempt 1 of step ship[1]/pack")

const traceOf = (fixture: { run: Store.RunRecord; journal: Store.Journal }) =>
  Trace.fromHistory(fixture.run, fixture.journal)

const ids = (trace: Trace.Trace) => trace.steps.map((s) => s.stepId)

describe("Trace of task groups", () => {
  it("orders steps as a tree: the group's entry, then its branches in order, then what follows it", () => {
    const trace = traceOf(settled)
    expect(ids(trace)).toStrictEqual([
      "plan",
      "ship",
      "ship[0]/pack",
      "ship[1]/pack",
      "ship[1]/label",
      "ship[2]/pack",
      "notify"
    ])
    expect(trace.steps.map((s) => [s.scope, s.depth])).toStrictEqual([
      [undefined, undefined],
      [undefined, undefined],
      ["ship[0]", 1],
      ["ship[1]", 1],
      ["ship[1]", 1],
      ["ship[2]", 1],
      [undefined, undefined]
    ])
  })

  it("keeps a group entry's mode and branches, dates it from its first step, and never reads it as an Exit", () => {
    const trace = traceOf(nested)
    const ship = trace.steps.find((s) => s.stepId === "ship")!
    expect(ship).toStrictEqual({
      stepId: "ship",
      name: "ship",
      kind: "group",
      position: 1,
      status: "failed",
      startedAt: T0 + 4,
      finishedAt: T0 + 55,
      durationMillis: 51,
      attempts: [],
      group: { mode: "fail-fast", branches: ["interrupted", "failed"] }
    })
    expect(ship.cause).toBeUndefined()
    const boxes = trace.steps.find((s) => s.stepId === "ship[1]/boxes")!
    expect(boxes).toMatchObject({ scope: "ship[1]", depth: 1, startedAt: T0 + 7, status: "failed" })
    expect(boxes.cause).toBeUndefined()
    // A malformed entry is still not an Exit.
    const odd = Trace.fromHistory(nested.run, {
      steps: [{ ...group("g", 0, 5, "settle", ["failed"]), result: { _tag: "Failure", cause: fail } }],
      attempts: []
    })
    expect(odd.steps[0].cause).toBeUndefined()
    expect(odd.steps[0].group).toBeUndefined()
  })

  it("orders nested groups depth first, a step with no completion last in its branch", () => {
    const trace = traceOf(nested)
    expect(ids(trace)).toStrictEqual([
      "plan",
      "ship",
      "ship[0]/pick",
      "ship[0]/pack",
      "ship[1]/pick",
      "ship[1]/boxes",
      "ship[1]/boxes[1]/seal"
    ])
    const seal = trace.steps.at(-1)!
    expect([seal.scope, seal.depth, seal.position]).toStrictEqual(["ship[1]/boxes[1]", 2, 0])
    // The run is over, and so is the group: the step backing off was cut off.
    expect(trace.steps[3]).toMatchObject({ stepId: "ship[0]/pack", name: "pack", status: "interrupted" })
    expect(Trace.summary(trace)).toBe("Jammed")
    expect(Trace.exitCode(nested.run)).toBe(1)
  })

  it("puts a group with no entry yet after the completed steps of its branch", () => {
    const trace = traceOf({
      run: makeRun({ status: "running", finishedAt: undefined }),
      journal: journalOf([step("a", 0, 1, 2, ok(1)), step("g[0]/x", 0, 3, 4, ok(1)), step("b", 1, 2, 3, ok(1))])
    })
    expect(ids(trace)).toStrictEqual(["a", "b", "g[0]/x"])
  })

  it("says a step of a group that ended was cut off, even while the run goes on", () => {
    const trace = traceOf({ ...nested, run: makeRun({ status: "running", finishedAt: undefined }) })
    expect(trace.steps.find((s) => s.stepId === "ship[0]/pack")?.status).toBe("interrupted")
    const running = traceOf(backingOff)
    expect(running.steps.find((s) => s.stepId === "ship[1]/pack")?.status).toBe("retrying")
  })

  it("adds no field to the steps of a run without groups", () => {
    const trace = traceOf({
      run: makeRun({ status: "succeeded", finishedAt: T0 + 10 }),
      journal: journalOf([step("a", 0, 1, 2, ok(1)), step("b", 1, 2, 3, ok(1))])
    })
    expect(Object.keys(trace.steps[0])).toStrictEqual([
      "stepId",
      "name",
      "kind",
      "position",
      "status",
      "startedAt",
      "finishedAt",
      "durationMillis",
      "attempts"
    ])
  })

  it("is plain JSON", () => {
    for (const fixture of [settled, nested, crashed, backingOff]) {
      const trace = traceOf(fixture)
      expect(JSON.parse(JSON.stringify(trace))).toStrictEqual(trace)
    }
  })

  it("reads branch paths", () => {
    expect(Trace.scopeOf("ship[1]/boxes[0]/seal#2")).toBe("ship[1]/boxes[0]")
    expect(Trace.scopeOf("seal")).toBe("")
    expect(Trace.branchesOf("ship#2[1]/boxes[0]")).toStrictEqual([
      { group: "ship#2", branch: 1 },
      { group: "ship#2[1]/boxes", branch: 0 }
    ])
  })
})

describe("Render of task groups", () => {
  it("draws nested groups and their branches in the failure tree, and labels the Cause by branch", () => {
    expect(Render.failureTree(traceOf(nested), plain)).toMatchInlineSnapshot(`
      "✗ shipping 7c1d2e3f failed in 60ms: Jammed
      shipping(7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f)
      ├─ ✓ plan              2ms
      └─ ✗ ⇉ ship            fail-fast, 2 branches, 51ms
         ├─ [0] ⊘ interrupted (a sibling failed)
         │  ├─ ✓ pick        1ms
         │  └─ ⋯ pack        interrupted after 1 attempt
         │     └─ 1 Busy  retry due after 500ms
         └─ [1] ✗ failed
            ├─ ✓ pick        2ms
            └─ ✗ ⇉ boxes     fail-fast, 2 branches, 43ms
               ├─ [0] ⊘ interrupted (a sibling failed)
               └─ [1] ✗ failed
                  └─ ✗ seal  1 attempt, 23ms
                     └─ 1 Jammed { box: 1 }  not retryable
      cause: parallel
        ├─ ship[0]: interrupted (a sibling failed)
        ├─ ship[1]/boxes[0]: interrupted (a sibling failed)
        └─ ship[1]/boxes[1]: Jammed { box: 1 }"
    `)
  })

  it("draws them in the timeline", () => {
    expect(Render.timeline(traceOf(nested), plain)).toMatchInlineSnapshot(`
      "shipping 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f  ✗ failed
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  60ms

        +1ms  2ms   ✓ plan
        +4ms  51ms  ✗ ⇉ ship            fail-fast, 2 branches
                    ├─ [0] ⊘ interrupted (a sibling failed)
        +4ms  1ms   │  ├─ ✓ pick
        +6ms        │  └─ ⋯ pack        interrupted after 1 attempt
        +6ms  10ms  │       1 Busy  retry due after 500ms
                    └─ [1] ✗ failed
        +4ms  2ms      ├─ ✓ pick
        +7ms  43ms     └─ ✗ ⇉ boxes     fail-fast, 2 branches
                          ├─ [0] ⊘ interrupted (a sibling failed)
                          └─ [1] ✗ failed
        +7ms  23ms           └─ ✗ seal  1 attempt
        +7ms  23ms                1 Jammed { box: 1 }  not retryable

      cause: parallel
        ├─ ship[0]: interrupted (a sibling failed)
        ├─ ship[1]/boxes[0]: interrupted (a sibling failed)
        └─ ship[1]/boxes[1]: Jammed { box: 1 }"
    `)
  })

  it("draws a settled group with the steps that follow it", () => {
    expect(Render.timeline(traceOf(settled), plain)).toMatchInlineSnapshot(`
      "shipping 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f  ✓ succeeded
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  90ms
        output    "done"

        +1ms   2ms   ✓ plan
        +4ms   37ms  ✓ ⇉ ship  settle, 3 branches
                     ├─ [0] ✓ succeeded
        +4ms   16ms  │  └─ ✓ pack
                     ├─ [1] ✓ succeeded
        +4ms   26ms  │  ├─ ✓ pack
        +30ms  5ms   │  └─ ✓ label
                     └─ [2] ✓ succeeded
        +20ms  20ms     └─ ✓ pack
        +42ms  3ms   ✓ notify"
    `)
  })

  it("draws a group cut off before its end", () => {
    expect(Render.failureTree(traceOf(crashed), plain)).toMatchInlineSnapshot(`
      "⋯ shipping 7c1d2e3f queued: interrupted at 2024-05-01T12:00:00.010Z; resume it with: weft resume 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f
      shipping(7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f)
      ├─ ✓ plan        2ms
      └─ ⋯ ⇉ ship      cut off, no end recorded
         ├─ [0]
         │  └─ ✓ pick  4ms
         └─ [1]
            ├─ ✓ pick  2ms
            └─ ⋯ pack  interrupted after 1 attempt
               └─ 1 Busy  retry due after 500ms"
    `)
    expect(Render.timeline(traceOf(backingOff), plain)).toMatchInlineSnapshot(`
      "shipping 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f  ⋯ running
        version  v1
        created  2024-05-01T12:00:00.000Z
        reason   backing off until 2024-05-01T12:00:00.509Z after attempt 1 of step ship[1]/pack

        +1ms  2ms  ✓ plan
        +4ms       ⋯ ⇉ ship      running
                   ├─ [0]
        +4ms  4ms  │  └─ ✓ pick
                   └─ [1]
        +4ms  2ms     ├─ ✓ pick
        +7ms          └─ ⋯ pack  retrying after 1 attempt
        +7ms  2ms          1 Busy  retry due after 500ms"
    `)
  })

  it("labels interruptions beside a failure when the Cause cannot be matched to branches", () => {
    // A Cause the body rewrapped: its parallel node has more children than the group has branches.
    const run = makeRun({
      failure: parallel(parallel(interrupted(2), fail), { _tag: "Fail", error: { _tag: "Late" } })
    })
    const trace = Trace.fromHistory(run, journalOf([group("g", 0, 5, "fail-fast", ["interrupted", "failed"])]))
    expect(Render.failureTree(trace, plain)).toMatchInlineSnapshot(`
      "✗ shipping 7c1d2e3f failed in 200ms: Jammed
      shipping(7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f)
      └─ ✗ ⇉ g  fail-fast, 2 branches, 0ms
         ├─ [0] ⊘ interrupted (a sibling failed)
         └─ [1] ✗ failed
      cause: parallel
        ├─ interrupted (a sibling failed)
        ├─ Jammed { box: 1 }
        └─ Late"
    `)
  })

  it("leaves the interruptions of a run without failed groups alone", () => {
    const run = makeRun({ failure: parallel(interrupted(2), fail) })
    const text = Render.failureTree(Trace.fromHistory(run, journalOf([])), plain)
    expect(text).toContain("├─ interrupted (fiber #2)")
    expect(text).not.toContain("sibling")
  })

  it("colors only when asked", () => {
    for (const fixture of [nested, settled, crashed]) {
      const trace = traceOf(fixture)
      for (const render of [Render.failureTree, Render.timeline]) {
        expect(render(trace, plain)).not.toContain("\u001b[")
        const colored = render(trace, { color: true })
        expect(colored).toContain("\u001b[")
        expect(colored.replace(/\u001b\[[0-9;]*m/g, "")).toBe(render(trace, plain))
      }
    }
  })
})
