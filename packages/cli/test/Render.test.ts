import type { Store } from "@weft/runtime"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import * as Render from "../src/Render.js"
import * as Trace from "../src/Trace.js"
import { runRecord } from "./runs.js"

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0)
const RUN_ID = "3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a"
const plain = { color: false }

const makeRun = (overrides: Partial<Store.RunRecord>): Store.RunRecord =>
  runRecord(T0, {
    id: RUN_ID,
    workflow: "checkout",
    status: "failed",
    input: { orderId: "o-17" },
    updatedAt: T0 + 2305,
    startedAt: T0 + 5,
    finishedAt: T0 + 2305,
    ...overrides
  })

const step = (
  stepId: string,
  position: number,
  startedAt: number,
  finishedAt: number,
  result: unknown,
  attempts = 1
): Store.StepRecord => ({
  runId: RUN_ID,
  stepId,
  name: stepId.replace(/#\d+$/, ""),
  kind: "step",
  position,
  result,
  failed: (result as { _tag: string })._tag === "Failure",
  attempts,
  startedAt,
  finishedAt
})

const attempt = (
  stepId: string,
  n: number,
  startedAt: number,
  finishedAt: number,
  rest: Partial<Store.AttemptRow> = {}
): Store.AttemptRow => ({
  runId: RUN_ID,
  stepId,
  attempt: n,
  startedAt,
  finishedAt,
  outcome: "success",
  ...rest
})

const success = (value: unknown) => ({ _tag: "Success", value })
const failure = (cause: unknown) => ({ _tag: "Failure", cause })

const reserveStock = step("reserve-stock", 0, T0 + 5, T0 + 17, success({ reserved: 2 }))
const reserveStockAttempt = attempt("reserve-stock", 1, T0 + 5, T0 + 17)

// --- fixture: success, with one retried step -------------------------------------------------

const succeeded = {
  run: makeRun({ status: "succeeded", output: { orderId: "o-17", charged: 4200 }, finishedAt: T0 + 1250 }),
  journal: {
    steps: [reserveStock, step("charge-card", 1, T0 + 17, T0 + 1240, success({ chargeId: "ch_1" }), 2)],
    attempts: [
      reserveStockAttempt,
      attempt("charge-card", 1, T0 + 17, T0 + 1017, {
        outcome: "failure",
        error: { _tag: "GatewayTimeout", afterMs: 1000 },
        delayMillis: 200
      }),
      attempt("charge-card", 2, T0 + 1217, T0 + 1240)
    ]
  } satisfies Store.Journal
}

// --- fixture: a typed failure after 3 attempts ----------------------------------------------

const declined = { _tag: "CardDeclined", code: "insufficient_funds" }
const typedFailure = {
  run: makeRun({ failure: { _tag: "Fail", error: declined } }),
  journal: {
    steps: [reserveStock, step("charge-card", 1, T0 + 17, T0 + 2300, failure({ _tag: "Fail", error: declined }), 3)],
    attempts: [
      reserveStockAttempt,
      attempt("charge-card", 1, T0 + 17, T0 + 1017, {
        outcome: "failure",
        error: { _tag: "GatewayTimeout", afterMs: 1000 },
        delayMillis: 200
      }),
      attempt("charge-card", 2, T0 + 1217, T0 + 2217, {
        outcome: "failure",
        error: { _tag: "GatewayTimeout", afterMs: 1000 },
        delayMillis: 400
      }),
      attempt("charge-card", 3, T0 + 2290, T0 + 2300, {
        outcome: "failure",
        error: declined,
        stopReason: "not-retryable"
      })
    ]
  } satisfies Store.Journal
}

// --- fixture: a defect with a stack and a 2-level cause chain --------------------------------

const crash = {
  name: "Error",
  message: "payment client crashed",
  stack: [
    "Error: payment client crashed",
    "    at chargeCard (/home/u/proj/checkout.ts:42:7)",
    "    at FiberRuntime.runLoop (/home/u/proj/node_modules/effect/dist/esm/internal/fiberRuntime.js:1200:13)",
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    "    at new Promise (<anonymous>)",
    "    at main (/home/u/proj/checkout.ts:80:3)"
  ].join("\n"),
  cause: {
    name: "GatewayError",
    message: "upstream returned 502",
    fields: { status: 502, retryAfter: null },
    stack: [
      "GatewayError: upstream returned 502",
      "    at post (/home/u/proj/gateway.ts:17:11)",
      "    at node:internal/deps/undici/undici:13185:13"
    ].join("\n"),
    cause: {
      name: "TypeError",
      message: "fetch failed",
      stack: [
        "TypeError: fetch failed",
        "    at node:internal/deps/undici/undici:13185:13",
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
      ].join("\n")
    }
  }
}
const defect = {
  run: makeRun({ failure: { _tag: "Die", defect: crash }, finishedAt: T0 + 60 }),
  journal: {
    steps: [reserveStock, step("charge-card", 1, T0 + 17, T0 + 58, failure({ _tag: "Die", defect: crash }))],
    attempts: [
      reserveStockAttempt,
      attempt("charge-card", 1, T0 + 17, T0 + 58, { outcome: "defect", error: crash, stopReason: "defect" })
    ]
  } satisfies Store.Journal
}

// --- fixture: a parallel cause ---------------------------------------------------------------

const parallelCause = {
  _tag: "Parallel",
  left: { _tag: "Fail", error: { _tag: "OutOfStock", sku: "A-1" } },
  right: {
    _tag: "Parallel",
    left: {
      _tag: "Sequential",
      left: { _tag: "Empty" },
      right: {
        _tag: "Die",
        defect: {
          name: "RangeError",
          message: "quantity must be positive",
          stack: "RangeError: x\n    at pack (/home/u/proj/ship.ts:9:5)"
        }
      }
    },
    right: { _tag: "Interrupt", fiberId: { _tag: "Runtime", id: 12, startTimeMillis: T0 } }
  }
}
const parallel = {
  run: makeRun({ failure: parallelCause, finishedAt: T0 + 30 }),
  journal: { steps: [reserveStock], attempts: [reserveStockAttempt] } satisfies Store.Journal
}

// --- fixture: a step in flight when the process crashed --------------------------------------

const crashed = {
  run: makeRun({
    status: "queued",
    finishedAt: undefined,
    recoveries: 1,
    reason: `interrupted at 2024-05-01T12:00:01.300Z; resume it with: weft resume ${RUN_ID}`
  }),
  journal: {
    steps: [reserveStock],
    attempts: [
      reserveStockAttempt,
      attempt("charge-card", 1, T0 + 17, T0 + 1017, {
        outcome: "failure",
        error: { _tag: "GatewayTimeout", afterMs: 1000 },
        delayMillis: 200
      })
    ]
  } satisfies Store.Journal
}

// --- fixture: a step timeout -----------------------------------------------------------------

const timeout = (n: number) => ({ _tag: "StepTimeout", step: "ship", attempt: n, timeoutMillis: 5000 })
const timedOut = {
  run: makeRun({ failure: { _tag: "Fail", error: timeout(2) }, finishedAt: T0 + 10_030 }),
  journal: {
    steps: [reserveStock, step("ship", 1, T0 + 17, T0 + 10_025, failure({ _tag: "Fail", error: timeout(2) }), 2)],
    attempts: [
      reserveStockAttempt,
      attempt("ship", 1, T0 + 17, T0 + 5017, { outcome: "failure", error: timeout(1), delayMillis: 0 }),
      attempt("ship", 2, T0 + 5025, T0 + 10_025, {
        outcome: "failure",
        error: timeout(2),
        stopReason: "attempts-exhausted"
      })
    ]
  } satisfies Store.Journal
}

// --- fixture: a circuit breaker opens ---------------------------------------------------------

const gatewayDown = (n: number) => ({ _tag: "GatewayTimeout", afterMs: n })
const circuitOpen = (retryAfter: number) => ({ _tag: "CircuitOpen", breaker: "payment-gateway", retryAfter })
const breakerOpen = {
  run: makeRun({ failure: { _tag: "Fail", error: circuitOpen(29_800) }, finishedAt: T0 + 30_250 }),
  journal: {
    steps: [
      reserveStock,
      step("charge-card", 1, T0 + 17, T0 + 30_240, failure({ _tag: "Fail", error: circuitOpen(29_800) }), 3)
    ],
    attempts: [
      reserveStockAttempt,
      attempt("charge-card", 1, T0 + 17, T0 + 217, { outcome: "failure", error: gatewayDown(1), delayMillis: 200 }),
      attempt("charge-card", 2, T0 + 417, T0 + 440, {
        outcome: "failure",
        error: circuitOpen(29_800),
        delayMillis: 29_800
      }),
      attempt("charge-card", 3, T0 + 30_240, T0 + 30_240, {
        outcome: "failure",
        error: circuitOpen(29_800),
        stopReason: "attempts-exhausted"
      })
    ]
  } satisfies Store.Journal
}

const traceOf = (fixture: { run: Store.RunRecord; journal: Store.Journal }) =>
  Trace.fromHistory(fixture.run, fixture.journal)

describe("Trace", () => {
  it("summarises a succeeded run with its steps and attempts", () => {
    const trace = traceOf(succeeded)
    expect(trace.run).toStrictEqual({
      id: RUN_ID,
      workflow: "checkout",
      version: "v1",
      status: "succeeded",
      createdAt: T0,
      startedAt: T0 + 5,
      finishedAt: T0 + 1250,
      durationMillis: 1245,
      recoveries: 0,
      output: { orderId: "o-17", charged: 4200 }
    })
    expect(trace.cause).toBeUndefined()
    expect(trace.steps.map((s) => [s.stepId, s.status, s.durationMillis, s.attempts.length])).toStrictEqual([
      ["reserve-stock", "succeeded", 12, 1],
      ["charge-card", "succeeded", 1223, 2]
    ])
    expect(trace.steps[1].attempts[0]).toStrictEqual({
      attempt: 1,
      outcome: "failure",
      startedAt: T0 + 17,
      finishedAt: T0 + 1017,
      durationMillis: 1000,
      error: { tag: "GatewayTimeout", tagged: true, fields: { afterMs: 1000 } },
      delayMillis: 200
    })
    expect(Trace.exitCode(succeeded.run)).toBe(0)
    expect(Trace.summary(trace)).toBe("succeeded")
  })

  it("keeps a typed failure's attempts, stop reason and cause", () => {
    const trace = traceOf(typedFailure)
    const charge = trace.steps[1]
    expect(charge.status).toBe("failed")
    expect(charge.attempts.map((a) => [a.attempt, a.error?.tag, a.delayMillis, a.stopReason])).toStrictEqual([
      [1, "GatewayTimeout", 200, undefined],
      [2, "GatewayTimeout", 400, undefined],
      [3, "CardDeclined", undefined, "not-retryable"]
    ])
    expect(charge.cause).toStrictEqual({
      kind: "fail",
      error: { tag: "CardDeclined", tagged: true, fields: { code: "insufficient_funds" } }
    })
    expect(trace.cause).toStrictEqual(charge.cause)
    expect(trace.run.durationMillis).toBe(2300)
    expect(Trace.exitCode(typedFailure.run)).toBe(1)
    expect(Trace.summary(trace)).toBe("CardDeclined")
  })

  it("keeps only the user's stack frames and follows the cause chain of a defect", () => {
    const trace = traceOf(defect)
    expect(trace.cause).toStrictEqual({
      kind: "defect",
      error: {
        tag: "Error",
        tagged: false,
        message: "payment client crashed",
        fields: {},
        stack: ["at chargeCard (/home/u/proj/checkout.ts:42:7)", "at main (/home/u/proj/checkout.ts:80:3)"],
        cause: {
          tag: "GatewayError",
          tagged: false,
          message: "upstream returned 502",
          fields: { status: 502, retryAfter: null },
          stack: ["at post (/home/u/proj/gateway.ts:17:11)"],
          cause: {
            tag: "TypeError",
            tagged: false,
            message: "fetch failed",
            fields: {},
            // Only internal frames: the first one is kept, so the trace still says where.
            stack: ["at node:internal/deps/undici/undici:13185:13"]
          }
        }
      }
    })
    expect(trace.steps[1].attempts[0].stopReason).toBe("defect")
    expect(Trace.exitCode(defect.run)).toBe(3)
    expect(Trace.summary(trace)).toBe("Error: payment client crashed")
  })

  it("flattens parallel causes and drops empty ones", () => {
    const trace = traceOf(parallel)
    expect(trace.cause?.kind).toBe("parallel")
    const children = trace.cause?.kind === "parallel" ? trace.cause.children : []
    expect(children.map((c) => c.kind)).toStrictEqual(["fail", "defect", "interrupt"])
    expect(children[2]).toStrictEqual({ kind: "interrupt", fiberId: "#12" })
    expect(Trace.exitCode(parallel.run)).toBe(3)
    expect(Trace.summary(trace)).toBe("OutOfStock")
    const typedOnly = makeRun({
      failure: { _tag: "Parallel", left: parallelCause.left, right: parallelCause.right.right }
    })
    expect(Trace.exitCode(typedOnly)).toBe(1)
    expect(Trace.exitCode(makeRun({ failure: parallelCause.right.right }))).toBe(130)
  })

  it("shows a step in flight at a crash as interrupted, or as retrying while the run backs off", () => {
    const trace = traceOf(crashed)
    expect(trace.run.reason).toContain("interrupted at")
    expect(trace.run.recoveries).toBe(1)
    expect(trace.run.durationMillis).toBeUndefined()
    expect(trace.cause).toBeUndefined()
    const inFlight = trace.steps[1]
    expect(inFlight).toMatchObject({ stepId: "charge-card", name: "charge-card", kind: "step", status: "interrupted" })
    expect(inFlight.position).toBeUndefined()
    expect(Trace.exitCode(crashed.run)).toBe(130)
    const backingOff = traceOf({
      run: makeRun({
        status: "running",
        finishedAt: undefined,
        reason: "backing off until 2024-05-01T12:00:01.217Z after attempt 1 of step charge-card"
      }),
      journal: crashed.journal
    })
    expect(backingOff.steps[1].status).toBe("retrying")
    expect(Trace.summary(backingOff)).toBe(
      "backing off until 2024-05-01T12:00:01.217Z after attempt 1 of step charge-card"
    )
  })

  it("explains built-in errors from their fields", () => {
    const trace = traceOf(timedOut)
    expect(trace.cause).toStrictEqual({
      kind: "fail",
      error: {
        tag: "StepTimeout",
        tagged: true,
        message: "step \"ship\" attempt 2 timed out after 5000ms",
        fields: { step: "ship", attempt: 2, timeoutMillis: 5000 }
      }
    })
    expect(Trace.exitCode(timedOut.run)).toBe(1)
  })

  it("follows the cause of a tagged error, encoded by Schema.Defect or as another tagged error", () => {
    const view = Trace.errorView({
      _tag: "PaymentFailed",
      provider: { name: "stripe", region: "eu" },
      cause: { _tag: "Upstream", status: 503, cause: { name: "Error", message: "socket hang up" } }
    })
    expect(view).toStrictEqual({
      tag: "PaymentFailed",
      tagged: true,
      fields: { provider: { name: "stripe", region: "eu" } },
      cause: {
        tag: "Upstream",
        tagged: true,
        fields: { status: 503 },
        cause: { tag: "Error", tagged: false, message: "socket hang up", fields: {} }
      }
    })
  })

  it("shows a typed error that died as the tagged error it is", () => {
    const view = Trace.errorView({
      name: "CardDeclined",
      message: "{ \"code\": \"x\" }",
      stack: "CardDeclined: { \"code\": \"x\" }\n    at charge (/home/u/proj/checkout.ts:12:3)",
      fields: { code: "x", _tag: "CardDeclined", retryable: false }
    })
    expect(view).toStrictEqual({
      tag: "CardDeclined",
      tagged: true,
      fields: { code: "x" },
      stack: ["at charge (/home/u/proj/checkout.ts:12:3)"]
    })
  })

  it("is plain JSON: every fixture's trace survives a round trip", () => {
    for (const fixture of [succeeded, typedFailure, defect, parallel, crashed, timedOut]) {
      const trace = traceOf(fixture)
      expect(JSON.parse(JSON.stringify(trace))).toStrictEqual(trace)
    }
  })

  it("counts a cancelled run as a typed failure", () => {
    const cancelled = makeRun({
      status: "cancelled",
      failure: { _tag: "Fail", error: { _tag: "Cancelled", runId: RUN_ID, by: "cli", reason: "wrong order" } }
    })
    expect(Trace.exitCode(cancelled)).toBe(1)
    expect(Trace.summary(Trace.fromHistory(cancelled, { steps: [], attempts: [] }))).toBe("Cancelled")
  })
})

describe("Render.failureTree", () => {
  it("draws a typed failure with every attempt and the run's cause", () => {
    expect(Render.failureTree(traceOf(typedFailure), plain)).toMatchInlineSnapshot(`
      "✗ checkout 3f2a6c1e failed in 2.3s: CardDeclined
      checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
      ├─ ✓ reserve-stock  12ms
      └─ ✗ charge-card    3 attempts, 2.3s
         ├─ 1 GatewayTimeout { afterMs: 1000 }             retried after 200ms
         ├─ 2 GatewayTimeout { afterMs: 1000 }             retried after 400ms
         └─ 3 CardDeclined { code: "insufficient_funds" }  not retryable
      cause: CardDeclined { code: "insufficient_funds" }"
    `)
  })

  it("draws a defect with the user's frames and the cause chain", () => {
    const text = Render.failureTree(traceOf(defect), plain)
    expect(text).toMatchInlineSnapshot(`
      "✗ checkout 3f2a6c1e failed in 55ms: Error: payment client crashed
      checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
      ├─ ✓ reserve-stock  12ms
      └─ ✗ charge-card    1 attempt, 41ms
         └─ 1 Error: payment client crashed  defect (not retried)
      cause: Error: payment client crashed
          at chargeCard (/home/u/proj/checkout.ts:42:7)
          at main (/home/u/proj/checkout.ts:80:3)
        caused by: GatewayError: upstream returned 502 { status: 502, retryAfter: null }
          at post (/home/u/proj/gateway.ts:17:11)
        caused by: TypeError: fetch failed
          at node:internal/deps/undici/undici:13185:13"
    `)
    expect(text).not.toContain("node_modules")
    expect(text).not.toContain("processTicksAndRejections")
  })

  it("draws a parallel cause as branches", () => {
    expect(Render.failureTree(traceOf(parallel), plain)).toMatchInlineSnapshot(`
      "✗ checkout 3f2a6c1e failed in 25ms: OutOfStock
      checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
      └─ ✓ reserve-stock  12ms
      cause: parallel
        ├─ OutOfStock { sku: "A-1" }
        ├─ RangeError: quantity must be positive
        │    at pack (/home/u/proj/ship.ts:9:5)
        └─ interrupted (fiber #12)"
    `)
  })

  it("draws a step cut off by a crash", () => {
    expect(Render.failureTree(traceOf(crashed), plain)).toMatchInlineSnapshot(`
      "⋯ checkout 3f2a6c1e queued: interrupted at 2024-05-01T12:00:01.300Z; resume it with: weft resume 3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a
      checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
      ├─ ✓ reserve-stock  12ms
      └─ ⋯ charge-card    interrupted after 1 attempt
         └─ 1 GatewayTimeout { afterMs: 1000 }  retry due after 200ms"
    `)
  })

  it("draws a step timeout with its explanation", () => {
    expect(Render.failureTree(traceOf(timedOut), plain)).toMatchInlineSnapshot(`
      "✗ checkout 3f2a6c1e failed in 10s: StepTimeout
      checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
      ├─ ✓ reserve-stock  12ms
      └─ ✗ ship           2 attempts, 10s
         ├─ 1 StepTimeout { step: "ship", attempt: 1, timeoutMillis: 5000 }  retried at once
         └─ 2 StepTimeout { step: "ship", attempt: 2, timeoutMillis: 5000 }  attempts exhausted
      cause: StepTimeout { step: "ship", attempt: 2, timeoutMillis: 5000 }
          step "ship" attempt 2 timed out after 5000ms"
    `)
  })

  it("draws refusals of an open circuit breaker with the breaker and its retryAfter", () => {
    expect(Render.failureTree(traceOf(breakerOpen), plain)).toMatchInlineSnapshot(`
      "✗ checkout 3f2a6c1e failed in 30.2s: CircuitOpen
      checkout(3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a)
      ├─ ✓ reserve-stock  12ms
      └─ ✗ charge-card    3 attempts, 30.2s
         ├─ 1 GatewayTimeout { afterMs: 1 }  retried after 200ms
         ├─ 2 CircuitOpen { breaker: "payment-gateway", retryAfter: 29800 }  retried after 29.8s
         └─ 3 CircuitOpen { breaker: "payment-gateway", retryAfter: 29800 }  attempts exhausted
      cause: CircuitOpen { breaker: "payment-gateway", retryAfter: 29800 }
          circuit breaker "payment-gateway" is open: calls fail fast for another 29800ms"
    `)
  })

  it("cuts long values and does not break on long names", () => {
    const long = "x".repeat(200)
    const stepId = `a-step-with-a-name-much-longer-than-any-column-would-hold-${"y".repeat(30)}`
    const run = makeRun({ failure: { _tag: "Fail", error: { _tag: "Invalid", value: long, nested: { a: [1, 2] } } } })
    const text = Render.failureTree(
      Trace.fromHistory(run, {
        steps: [reserveStock, step(stepId, 1, T0 + 17, T0 + 30, failure({ _tag: "Fail", error: { _tag: "Invalid" } }))],
        attempts: [
          reserveStockAttempt,
          attempt(stepId, 1, T0 + 17, T0 + 30, {
            outcome: "failure",
            error: { _tag: "Invalid" },
            stopReason: "not-retryable"
          })
        ]
      }),
      plain
    )
    expect(text).toContain(`└─ ✗ ${stepId}  1 attempt, 13ms`)
    expect(text).toContain("├─ ✓ reserve-stock  12ms")
    expect(text).toContain(`cause: Invalid { value: "${"x".repeat(78)}…, nested: { a: [1, 2] } }`)
  })

  it("colors only when asked", () => {
    const trace = traceOf(typedFailure)
    expect(Render.failureTree(trace, plain)).not.toContain("\u001b[")
    const colored = Render.failureTree(trace, { color: true })
    expect(colored).toContain("\u001b[31m✗\u001b[0m")
    expect(colored.replace(/\u001b\[[0-9;]*m/g, "")).toBe(Render.failureTree(trace, plain))
  })
})

describe("Render.timeline", () => {
  it("lists steps and attempts with offsets and durations", () => {
    expect(Render.timeline(traceOf(succeeded), plain)).toMatchInlineSnapshot(`
      "checkout 3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a  ✓ succeeded
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  1.2s
        output    { orderId: "o-17", charged: 4200 }

        +0ms   12ms  ✓ reserve-stock
        +12ms  1.2s  ✓ charge-card  2 attempts
        +12ms  1s      1 GatewayTimeout { afterMs: 1000 }  retried after 200ms
        +1.2s  23ms    2 succeeded"
    `)
  })

  it("adds the cause of a failed run", () => {
    expect(Render.timeline(traceOf(typedFailure), plain)).toMatchInlineSnapshot(`
      "checkout 3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a  ✗ failed
        version   v1
        created   2024-05-01T12:00:00.000Z
        duration  2.3s

        +0ms   12ms  ✓ reserve-stock
        +12ms  2.3s  ✗ charge-card  3 attempts
        +12ms  1s      1 GatewayTimeout { afterMs: 1000 }             retried after 200ms
        +1.2s  1s      2 GatewayTimeout { afterMs: 1000 }             retried after 400ms
        +2.3s  10ms    3 CardDeclined { code: "insufficient_funds" }  not retryable

      cause: CardDeclined { code: "insufficient_funds" }"
    `)
  })

  it("says why a run is not progressing and how often it was recovered", () => {
    expect(Render.timeline(traceOf(crashed), plain)).toMatchInlineSnapshot(`
      "checkout 3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a  ⋯ queued
        version     v1
        created     2024-05-01T12:00:00.000Z
        reason      interrupted at 2024-05-01T12:00:01.300Z; resume it with: weft resume 3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a
        recoveries  1

        +0ms   12ms  ✓ reserve-stock
        +12ms        ⋯ charge-card  interrupted after 1 attempt
        +12ms  1s      1 GatewayTimeout { afterMs: 1000 }  retry due after 200ms"
    `)
  })
})

describe("Render.runTable", () => {
  it("prints runs as a table", () => {
    const runs = [
      makeRun({ status: "succeeded", finishedAt: T0 + 1250 }),
      makeRun({ id: "order-17", workflow: "refund", status: "running", createdAt: T0 + 61_000, finishedAt: undefined })
    ]
    expect(Render.runTable(runs, plain)).toMatchInlineSnapshot(`
      "ID                                    WORKFLOW  STATUS       CREATED               DURATION
      3f2a6c1e-8d0b-4c3e-9a57-1f0e2d3c4b5a  checkout  ✓ succeeded  2024-05-01T12:00:00Z  1.2s
      order-17                              refund    ⋯ running    2024-05-01T12:01:01Z  -"
    `)
  })

  it("says so when there are no runs", () => {
    expect(Render.runTable([], plain)).toBe("(no runs)")
  })
})

class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()("GatewayTimeout", { afterMs: Schema.Number }) {
  readonly retryable = true
}
class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", {
  code: Schema.String,
  message: Schema.String
}) {}
class Wrapped extends Schema.TaggedError<Wrapped>()("Wrapped", { step: Schema.String, cause: Schema.Defect }) {}

describe("Render.progress", () => {
  const at = (event: Parameters<typeof Render.progress>[0]) => Render.progress(event, { color: false, now: T0 })

  it("prints one line per event", () => {
    expect(at({ _tag: "StepStarted", stepId: "charge-card", attempt: 1 })).toBe("→ charge-card")
    expect(at({ _tag: "StepStarted", stepId: "charge-card", attempt: 2 })).toBe("→ charge-card attempt 2")
    expect(at({ _tag: "StepSucceeded", stepId: "charge-card", attempt: 2, durationMillis: 12 })).toBe(
      "✓ charge-card 12ms"
    )
    expect(at({ _tag: "StepReplayed", stepId: "reserve-stock", failed: false })).toBe(
      "↻ reserve-stock (from journal)"
    )
    expect(at({ _tag: "StepReplayed", stepId: "charge-card", failed: true })).toBe(
      "↻ charge-card (from journal, failed)"
    )
    expect(at({
      _tag: "StepRetrying",
      stepId: "charge-card",
      attempt: 1,
      error: new GatewayTimeout({ afterMs: 1000 }),
      delayMillis: 200
    })).toBe("✗ charge-card attempt 1: GatewayTimeout { afterMs: 1000 } — retrying in 200ms")
    expect(at({
      _tag: "StepFailed",
      stepId: "charge-card",
      attempt: 3,
      error: new CardDeclined({ code: "x", message: "card declined" }),
      reason: "not-retryable"
    })).toBe("✗ charge-card attempt 3: CardDeclined { code: \"x\", message: \"card declined\" } — not retryable")
    expect(at({
      _tag: "StepFailed",
      stepId: "charge-card",
      attempt: 1,
      error: new TypeError("Cannot read properties of undefined (reading 'id')"),
      reason: "defect"
    })).toBe(
      "✗ charge-card attempt 1: TypeError: Cannot read properties of undefined (reading 'id') — defect (not retried)"
    )
    expect(at({ _tag: "StepWaiting", stepId: "charge-card", attempt: 3, untilMillis: T0 + 150 })).toBe(
      "… charge-card waiting 150ms before attempt 3"
    )
  })
})

describe("Render.formatError", () => {
  it("formats live tagged errors without their derived message, stack or cause", () => {
    expect(Render.formatError(new GatewayTimeout({ afterMs: 1000 }))).toBe("GatewayTimeout { afterMs: 1000 }")
    expect(Render.formatError(new Wrapped({ step: "ship", cause: new Error("boom") }))).toBe(
      "Wrapped { step: \"ship\" }"
    )
  })

  it("formats encoded tagged errors, nested objects included", () => {
    expect(Render.formatError({ _tag: "Bad", n: 1, at: { x: "y" }, list: [1, "a"], cause: { name: "E" } })).toBe(
      "Bad { n: 1, at: { x: \"y\" }, list: [1, \"a\"] }"
    )
    expect(Render.formatError({ _tag: "Empty" })).toBe("Empty")
  })

  it("formats errors and encoded defects as name and message", () => {
    const error = Object.assign(new Error("connect refused"), { code: "ECONNREFUSED" })
    expect(Render.formatError(error)).toBe("Error: connect refused { code: \"ECONNREFUSED\" }")
    expect(Render.formatError(crash)).toBe("Error: payment client crashed")
    expect(Render.formatError(crash.cause)).toBe(
      "GatewayError: upstream returned 502 { status: 502, retryAfter: null }"
    )
    expect(Render.formatError({ name: "Error", message: "line one\nline two" })).toBe("Error: line one …")
    expect(Render.formatError("a thrown string")).toBe("a thrown string")
  })
})

describe("Render.formatDuration", () => {
  it("picks a readable unit", () => {
    expect([0, 12, 999, 1000, 2345, 59_999, 61_000, 3_725_000].map(Render.formatDuration)).toStrictEqual([
      "0ms",
      "12ms",
      "999ms",
      "1s",
      "2.3s",
      "60s",
      "1m 1s",
      "1h 2m"
    ])
  })
})
