/**
 * A step with a timeout. Each attempt of `fetch-report` may take at most 300ms; a slower one is
 * interrupted (its finalizer runs) and fails with the built-in, retryable `StepTimeout`.
 *
 *   weft run examples/timeout.ts --input '{"delayMs": 50}'
 *     → succeeds: {"report":"ready after 50ms"}
 *   weft run examples/timeout.ts --input '{"delayMs": 1000}'
 *     → attempts 1 and 2 time out after 300ms each, the step gives up: StepTimeout, exit code 1
 */
import { Retry, Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

const fetchReport = Step.make({
  name: "fetch-report",
  success: Schema.Struct({ report: Schema.String }),
  timeout: "300 millis",
  retry: Retry.fixed({ delay: "100 millis", attempts: 2 }),
  run: (delayMs: number) =>
    Effect.sleep(`${delayMs} millis`).pipe(
      Effect.as({ report: `ready after ${delayMs}ms` }),
      Effect.onInterrupt(() => Effect.logDebug("fetch-report interrupted: connection closed"))
    )
})

export const slowReport = Workflow.make({
  name: "slow-report",
  description: "a slow call bounded by a per-attempt timeout",
  input: Schema.Struct({ delayMs: Schema.Number }),
  success: Schema.Struct({ report: Schema.String }),
  run: ({ delayMs }) => fetchReport(delayMs)
})
