/**
 * The durable primitives in traces and their rendering: a sleep (`$sleep`) with its wake time, in
 * progress or over; a signal wait (`$signal:<name>`) with its `$deadline` folded in, received,
 * timed out, or still waiting (not in the journal yet); compensations (`$undo:<step>`) that
 * succeeded or failed with their attempts; the progress lines of each; and `weft list`'s reasons.
 */
import type { Store } from "@weft/runtime"
import { describe, expect, it } from "vitest"
import * as Render from "../src/Render.js"
import * as Trace from "../src/Trace.js"
import { runRecord } from "./runs.js"

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0)
const RUN_ID = "5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d"
const plain = { color: false }
const MINUTE = 60_000

const makeRun = (overrides: Partial<Store.RunRecord>): Store.RunRecord =>
  runRecord(T0, { id: RUN_ID, workflow: "trip", status: "succeeded", ...overrides })

const ok = (value: unknown) => ({ _tag: "Success", value })
const failure = (cause: unknown) => ({ _tag: "Failure", cause })

/** A journal entry, `at` and `to` in milliseconds from T0; kind from its name like the engine's. */
const entry = (stepId: string, position: number, at: number, to: number, result: unknown): Store.StepRecord => {
  const name = stepId.replace(/#\d+$/, "")
  const kind = name === "$sleep" || name === "$deadline"
    ? "sleep"
    : name.startsWith("$signal:")
    ? "signal"
    : name.startsWith("$undo:")
    ? "compensation"
    : name === "$now"
    ? "now"
    : "step"
  return {
    runId: RUN_ID,
    stepId,
    name,
    kind,
    position,
    result,
    failed: (result as { _tag: string })._tag === "Failure",
    attempts: kind === "signal" ? 0 : 1,
    startedAt: T0 + at,
    finishedAt: T0 + to
  }
}

const attempt = (stepId: string, n: number, at: number, to: number, rest: Partial<Store.AttemptRow> = {}) => ({
  runId: RUN_ID,
  stepId,
  attempt: n,
  startedAt: T0 + at,
  finishedAt: T0 + to,
  outcome: "success" as const,
  ...rest
})

/** Every entry that ran an attempt gets its successful one. */
const journalOf = (steps: ReadonlyArray<Store.StepRecord>, extra: ReadonlyArray<Store.AttemptRow> = []) => ({
  steps,
  attempts: [
    ...steps
      .filter((s) => s.kind !== "signal" && !extra.some((a) => a.stepId === s.stepId))
      .map((s) => attempt(s.stepId, 1, s.startedAt - T0, s.finishedAt - T0)),
    ...extra
  ]
})

// --- sleeps -----------------------------------------------------------------------------------

const sleepSteps = [
  entry("prepare", 0, 5, 17, ok("ready")),
  entry("$sleep", 1, 20, 20, ok(T0 + 20 + 10 * MINUTE))
]
const sleepingRun = {
  run: makeRun({
    status: "sleeping",
    wakeAt: T0 + 20 + 10 * MINUTE,
    reason: "sleeping until 2024-05-01T12:10:00.020Z"
  }),
  journal: journalOf(sleepSteps)
}
const sleptRun = {
  run: makeRun({ output: "done", finishedAt: T0 + 10 * MINUTE + 40 }),
  journal: journalOf([...sleepSteps, entry("finish", 2, 10 * MINUTE + 30, 10 * MINUTE + 32, ok("done"))])
}

// --- signals ----------------------------------------------------------------------------------

const approval = { by: "ann", approve: true }
const hour = 3_600_000
const receivedRun = {
  run: makeRun({ output: "paid", finishedAt: T0 + 25 * MINUTE }),
  journal: journalOf([
    entry("validate", 0, 5, 6, ok(4250)),
    entry("$deadline", 1, 10, 10, ok(T0 + 10 + hour)),
    entry("$signal:approved", 2, 24 * MINUTE, 24 * MINUTE, ok(approval)),
    entry("pay", 3, 24 * MINUTE + 5, 24 * MINUTE + 9, ok("pay_1"))
  ])
}
const signalTimeout = { _tag: "SignalTimeout", signal: "approved", step: "$signal:approved", timeoutMillis: 2000 }
const timedOutRun = {
  run: makeRun({ status: "failed", failure: { _tag: "Fail", error: signalTimeout }, finishedAt: T0 + 2020 }),
  journal: journalOf([
    entry("validate", 0, 5, 6, ok(4250)),
    entry("$deadline", 1, 10, 10, ok(T0 + 2010)),
    entry("$signal:approved", 2, 2015, 2015, failure({ _tag: "Fail", error: signalTimeout }))
  ])
}
/** Waiting for its second `approved`, with a deadline; the first came without one. */
const waitingRun = {
  run: makeRun({
    status: "waiting",
    wakeAt: T0 + 30 + hour,
    reason: "waiting for signal approved until 2024-05-01T13:00:00.030Z"
  }),
  journal: journalOf([
    entry("$signal:approved", 0, 5, 5, ok({ by: "bob", approve: true })),
    entry("$deadline", 1, 30, 30, ok(T0 + 30 + hour))
  ])
}

// --- compensations ----------------------------------------------------------------------------

const noCar = { _tag: "NoCarAvailable", city: "Oslo", class: "convertible" }
const hotelDown = {
  name: "Error",
  message: "hotel API down",
  stack: "Error: hotel API down\n    at cancel (/app/trip.ts:31:9)"
}
const sagaRun = {
  run: makeRun({
    status: "failed",
    finishedAt: T0 + 1600,
    failure: {
      _tag: "Sequential",
      left: { _tag: "Fail", error: noCar },
      right: {
        _tag: "Die",
        defect: { name: "Error", message: "the compensation of step book-hotel failed", cause: hotelDown }
      }
    }
  }),
  journal: journalOf(
    [
      entry("book-flight", 0, 5, 10, ok("FL-1")),
      entry("book-hotel", 1, 12, 20, ok("HT-1")),
      entry("book-car", 2, 22, 25, failure({ _tag: "Fail", error: noCar })),
      entry("$undo:book-hotel", 3, 30, 1530, failure({ _tag: "Die", defect: hotelDown })),
      entry("$undo:book-flight", 4, 1540, 1545, ok(null))
    ],
    [
      attempt("book-car", 1, 22, 25, { outcome: "failure", error: noCar, stopReason: "not-retryable" }),
      attempt("$undo:book-hotel", 1, 30, 35, { outcome: "defect", error: hotelDown, delayMillis: 1000 }),
      attempt("$undo:book-hotel", 2, 1035, 1530, {
        outcome: "defect",
        error: hotelDown,
        stopReason: "attempts-exhausted"
      })
    ]
  )
}

const traceOf = (fixture: { run: Store.RunRecord; journal: Store.Journal }) =>
  Trace.fromHistory(fixture.run, fixture.journal)

describe("Trace of durable primitives", () => {
  it("gives a sleep its wake time, and says whether the run is still in it", () => {
    const sleeping = traceOf(sleepingRun)
    expect(sleeping.steps[1]).toMatchObject({
      stepId: "$sleep",
      kind: "sleep",
      status: "succeeded",
      sleep: { until: T0 + 20 + 10 * MINUTE, durationMillis: 10 * MINUTE, sleeping: true }
    })
    expect(sleeping.run.wakeAt).toBe(T0 + 20 + 10 * MINUTE)
    expect(traceOf(sleptRun).steps[1].sleep?.sleeping).toBe(false)
    expect(traceOf(sleptRun).run.wakeAt).toBeUndefined()
  })

  it("folds a deadline into its signal, with the payload or the timeout", () => {
    const received = traceOf(receivedRun)
    expect(received.steps[1]).toMatchObject({ stepId: "$deadline", deadlineOf: "$signal:approved" })
    expect(received.steps[2].signal).toStrictEqual({
      name: "approved",
      outcome: "received",
      payload: approval,
      deadline: T0 + 10 + hour,
      waitStartedAt: T0 + 10
    })
    expect(traceOf(timedOutRun).steps[2].signal).toStrictEqual({
      name: "approved",
      outcome: "timed-out",
      deadline: T0 + 2010,
      waitStartedAt: T0 + 10,
      timeoutMillis: 2000
    })
  })

  it("describes the signal a waiting run waits for, with the step id its wait will have", () => {
    const trace = traceOf(waitingRun)
    expect(trace.run.waitingFor).toStrictEqual({
      stepId: "$signal:approved#2",
      name: "approved",
      outcome: "waiting",
      deadline: T0 + 30 + hour,
      waitStartedAt: T0 + 30
    })
    expect(trace.steps[1].deadlineOf).toBe("$signal:approved#2")
    // The first signal came with no deadline: nothing to fold into it.
    expect(trace.steps[0].signal).toStrictEqual({
      name: "approved",
      outcome: "received",
      payload: { by: "bob", approve: true }
    })
    const noDeadline = traceOf({
      run: makeRun({ status: "waiting", reason: "waiting for signal go" }),
      journal: journalOf([entry("validate", 0, 5, 6, ok(1))])
    })
    expect(noDeadline.run.waitingFor).toStrictEqual({ stepId: "$signal:go", name: "go", outcome: "waiting" })
  })

  it("names the step a compensation undoes, a branch's step with its path", () => {
    const trace = traceOf(sagaRun)
    expect(trace.steps.map((s) => [s.stepId, s.kind, s.status, s.compensates])).toStrictEqual([
      ["book-flight", "step", "succeeded", undefined],
      ["book-hotel", "step", "succeeded", undefined],
      ["book-car", "step", "failed", undefined],
      ["$undo:book-hotel", "compensation", "failed", "book-hotel"],
      ["$undo:book-flight", "compensation", "succeeded", "book-flight"]
    ])
    const branch = traceOf({
      run: makeRun({ status: "running" }),
      journal: {
        steps: [],
        attempts: [attempt("$undo:ship[1]|pack", 1, 5, 6, { outcome: "defect", error: hotelDown, delayMillis: 1000 })]
      }
    })
    expect(branch.steps[0]).toMatchObject({ kind: "compensation", status: "retrying", name: "$undo:ship[1]|pack" })
  })

  it("is plain JSON, and the exit code and summary are the run's", () => {
    for (const fixture of [sleepingRun, sleptRun, receivedRun, timedOutRun, waitingRun, sagaRun]) {
      const trace = traceOf(fixture)
      expect(JSON.parse(JSON.stringify(trace))).toStrictEqual(trace)
    }
    expect(Trace.exitCode(timedOutRun.run)).toBe(1)
    expect(Trace.summary(traceOf(timedOutRun))).toBe("SignalTimeout")
    expect(Trace.exitCode(sagaRun.run)).toBe(3)
    expect(Trace.summary(traceOf(sagaRun))).toBe("NoCarAvailable")
  })
})

describe("Render of durable primitives", () => {
  it("draws a sleep with its wake time, in the timeline and while the run sleeps", () => {
    expect(Render.timeline(traceOf(sleptRun), plain)).toMatchInlineSnapshot(`
      "trip 5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d  ✓ succeeded
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  10m 0s
        output    "done"

        +5ms     12ms  ✓ prepare
        +20ms          ✓ ⏾ sleep until 12:10:00Z (10m)
        +10m 0s  2ms   ✓ finish"
    `)
    expect(Render.timeline(traceOf(sleepingRun), plain)).toMatchInlineSnapshot(`
      "trip 5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d  ◷ sleeping
        version  v1
        created  2024-05-01T12:00:00.000Z
        reason   sleeping until 2024-05-01T12:10:00.020Z

        +5ms   12ms  ✓ prepare
        +20ms        ◷ ⏾ sleep until 12:10:00Z (10m)  sleeping"
    `)
  })

  it("draws a signal as one row: its payload, its timeout, or the wait in progress", () => {
    expect(Render.timeline(traceOf(receivedRun), plain)).toMatchInlineSnapshot(`
      "trip 5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d  ✓ succeeded
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  25m 0s
        output    "paid"

        +5ms     1ms      ✓ validate
        +10ms    23m 59s  ✓ ✉ signal approved  { by: "ann", approve: true }
        +24m 0s  4ms      ✓ pay"
    `)
    expect(Render.failureTree(traceOf(timedOutRun), plain)).toMatchInlineSnapshot(`
      "✗ trip 5b9e0c1d failed in 2s: SignalTimeout
      trip(5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d)
      ├─ ✓ validate           1ms
      └─ ✗ ✉ signal approved  timed out after 2s
      cause: SignalTimeout { signal: "approved", step: "$signal:approved", timeoutMillis: 2000 }
          no signal "approved" arrived within 2000 ms (step $signal:approved)"
    `)
    expect(Render.timeline(traceOf(waitingRun), plain)).toMatchInlineSnapshot(`
      "trip 5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d  ◷ waiting
        version  v1
        created  2024-05-01T12:00:00.000Z
        reason   waiting for signal approved until 2024-05-01T13:00:00.030Z

        +5ms     ✓ ✉ signal approved  { by: "bob", approve: true }
        +30ms    ◷ ✉ signal approved  waiting, times out at 13:00:00Z (after 1h)"
    `)
  })

  it("draws compensations after the failure, a failed one with its attempts", () => {
    expect(Render.failureTree(traceOf(sagaRun), plain)).toMatchInlineSnapshot(`
      "✗ trip 5b9e0c1d failed in 1.6s: NoCarAvailable
      trip(5b9e0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d)
      ├─ ✓ book-flight                   5ms
      ├─ ✓ book-hotel                    8ms
      ├─ ✗ book-car                      1 attempt, 3ms
      │  └─ 1 NoCarAvailable { city: "Oslo", class: "convertible" }  not retryable
      ├─ ✗ ↺ book-hotel (compensation)   2 attempts, 1.5s
      │  ├─ 1 Error: hotel API down  retried after 1s
      │  └─ 2 Error: hotel API down  attempts exhausted
      └─ ✓ ↺ book-flight (compensation)  5ms
      cause: sequential
        ├─ NoCarAvailable { city: "Oslo", class: "convertible" }
        └─ Error: the compensation of step book-hotel failed
           caused by: Error: hotel API down
             at cancel (/app/trip.ts:31:9)"
    `)
  })

  it("colors only when asked", () => {
    for (const fixture of [sleepingRun, receivedRun, timedOutRun, waitingRun, sagaRun]) {
      const trace = traceOf(fixture)
      const colored = Render.timeline(trace, { color: true })
      expect(colored).toContain("\u001b[")
      expect(colored.replace(/\u001b\[[0-9;]*m/g, "")).toBe(Render.timeline(trace, plain))
    }
  })

  it("names durable primitives in progress lines by what they do", () => {
    const line = (event: Parameters<typeof Render.progress>[0]) => Render.progress(event, { color: false, now: T0 })
    expect(line({ _tag: "StepStarted", stepId: "$sleep", attempt: 1 })).toBe("→ sleep")
    expect(line({ _tag: "StepSucceeded", stepId: "$sleep", attempt: 1, durationMillis: 0 })).toBe("⏾ sleeping")
    expect(line({ _tag: "StepReplayed", stepId: "ship[0]/$sleep#2", failed: false })).toBe(
      "↻ ship[0]/sleep (from journal)"
    )
    expect(line({ _tag: "StepStarted", stepId: "$deadline", attempt: 1 })).toBe("→ signal deadline")
    expect(line({ _tag: "StepSucceeded", stepId: "$deadline", attempt: 1, durationMillis: 0 })).toBe(
      "◷ signal deadline set"
    )
    expect(line({ _tag: "StepStarted", stepId: "$undo:book-hotel", attempt: 1 })).toBe("↺ book-hotel (compensation)")
    expect(line({ _tag: "StepStarted", stepId: "$undo:ship[1]|pack", attempt: 2 })).toBe(
      "↺ ship[1]/pack (compensation) attempt 2"
    )
    expect(line({ _tag: "StepSucceeded", stepId: "$undo:book-hotel", attempt: 1, durationMillis: 3 })).toBe(
      "✓ book-hotel (compensation) 3ms"
    )
    expect(line({
      _tag: "StepRetrying",
      stepId: "$undo:book-hotel",
      attempt: 1,
      error: new Error("hotel API down"),
      delayMillis: 1000
    })).toBe("✗ book-hotel (compensation) attempt 1: Error: hotel API down — retrying in 1s")
    // Unchanged: `$now`, `$random`, `$uuid` and ordinary steps.
    expect(line({ _tag: "StepStarted", stepId: "$now", attempt: 1 })).toBe("→ $now")
    expect(line({ _tag: "StepSucceeded", stepId: "$uuid#2", attempt: 1, durationMillis: 0 })).toBe("✓ $uuid#2 0ms")
    expect(line({ _tag: "StepStarted", stepId: "ship[0]/pack#2", attempt: 1 })).toBe("→ ship[0]/pack#2")
  })

  it("lists a sleeping or waiting run with its reason", () => {
    const runs = [
      makeRun({ id: "r-1", status: "sleeping", reason: "sleeping until 2024-05-01T12:10:00.020Z" }),
      makeRun({ id: "r-2", status: "waiting", reason: "waiting for signal approved" }),
      makeRun({
        id: "r-3",
        status: "sleeping",
        reason: "backing off until 2024-05-01T12:01:00.000Z after attempt 2 of step charge"
      }),
      makeRun({ id: "r-4", status: "queued", reason: "interrupted at 2024-05-01T12:00:01.300Z" })
    ]
    expect(Render.runTable(runs, plain)).toMatchInlineSnapshot(`
      "ID   WORKFLOW  STATUS                                                                             CREATED               DURATION
      r-1  trip      ◷ sleeping until 2024-05-01T12:10:00Z                                              2024-05-01T12:00:00Z  -
      r-2  trip      ◷ waiting for signal approved                                                      2024-05-01T12:00:00Z  -
      r-3  trip      ◷ sleeping: backing off until 2024-05-01T12:01:00Z after attempt 2 of step charge  2024-05-01T12:00:00Z  -
      r-4  trip      ⋯ queued                                                                           2024-05-01T12:00:00Z  -"
    `)
  })
})

describe("Render.formatSpan and formatClock", () => {
  it("gives a wait in its two largest whole units", () => {
    expect([0, 300, 999, 1000, 6001, 90_000, 600_000, 3_600_001, 3_900_000, 93_600_000].map(Render.formatSpan))
      .toStrictEqual(["0ms", "300ms", "999ms", "1s", "6s", "1m 30s", "10m", "1h", "1h 5m", "1d 2h"])
  })

  it("gives a time of day in UTC, with its date when it is another day", () => {
    expect(Render.formatClock(T0 + 10 * MINUTE, T0)).toBe("12:10:00Z")
    expect(Render.formatClock(T0 + 21 * 3_600_000, T0)).toBe("2024-05-02 09:00:00Z")
  })
})
