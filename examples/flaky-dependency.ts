/**
 * A transient dependency retried with exponential backoff and jitter.
 *
 * The inventory service fails with a retryable `ServiceUnavailable` on the first `failures`
 * attempts, then answers. Each failed attempt is recorded with the delay chosen before the next.
 *
 *   weft run examples/flaky-dependency.ts --input '{"failures": 2}'
 *     → attempt 1 and 2 fail ("retrying in ~200ms", "~400ms"), attempt 3 succeeds: {"sku":"book","available":7}
 *   weft run examples/flaky-dependency.ts --input '{"failures": 9}'
 *     → gives up after 5 attempts (the policy's limit) with the last ServiceUnavailable, exit code 1
 */
import { Retry, Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

/** The dependency is down for now: retryable. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  service: Schema.String,
  status: Schema.Number
}) {
  readonly retryable = true
}

const checkInventory = Step.make({
  name: "check-inventory",
  success: Schema.Struct({ sku: Schema.String, available: Schema.Number }),
  error: ServiceUnavailable,
  retry: Retry.exponential({ base: "200 millis", factor: 2, max: "3 seconds", attempts: 5, jitter: 0.1 }),
  run: (failures: number) =>
    Effect.gen(function*() {
      const { attempt } = yield* Step.context
      if (attempt <= failures) return yield* new ServiceUnavailable({ service: "inventory", status: 503 })
      return { sku: "book", available: 7 }
    })
})

export const flakyDependency = Workflow.make({
  name: "flaky-dependency",
  description: "a call to a dependency that is down for the first few attempts",
  input: Schema.Struct({ failures: Schema.Number.pipe(Schema.int(), Schema.nonNegative()) }),
  success: Schema.Struct({ sku: Schema.String, available: Schema.Number }),
  error: ServiceUnavailable,
  run: ({ failures }) => checkInventory(failures)
})
