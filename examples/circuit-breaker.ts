/**
 * A circuit breaker in front of a dependency that is down: after two failures the breaker opens,
 * and the attempts that follow fail fast with CircuitOpen, without calling the dependency, until
 * its cooldown lets a trial call through. The retry policy waits at least the `retryAfter` of
 * each CircuitOpen.
 *
 * The pricing service fails its first `failures` calls (in this process), then answers.
 *
 *   weft run examples/circuit-breaker.ts --input '{"failures": 2}'
 *     → attempts 1 and 2 fail (the second opens the breaker: "opened after 2 failures"); attempt 3
 *       is refused: CircuitOpen { breaker: "pricing-service", retryAfter: 1800 }, retried after
 *       about 1.8s; attempt 4 is the trial call, succeeds and closes it: {"sku":"book","price":1299}
 *   weft run examples/circuit-breaker.ts --input '{"failures": 3}'
 *     → the same, but the trial call fails and reopens the breaker; attempt 5 is refused;
 *       attempt 6 is a trial that succeeds
 *   weft run examples/circuit-breaker.ts --input '{"failures": 9}'
 *     → gives up after 6 attempts (the sixth a failed trial call), exit code 1
 */
import { CircuitBreaker, Retry, Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

/** The dependency is down for now: retryable, and counted by the breaker. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  service: Schema.String,
  status: Schema.Number
}) {
  readonly retryable = true
}

/** One breaker for every call to the pricing service from this process. */
const pricingService = CircuitBreaker.make({
  name: "pricing-service",
  failureThreshold: 2,
  window: "1 minute",
  cooldown: "2 seconds"
})

// The simulated service counts the calls that reach it: a refused attempt never does.
let calls = 0

const lookUpPrice = Step.make({
  name: "look-up-price",
  success: Schema.Struct({ sku: Schema.String, price: Schema.Number }),
  error: ServiceUnavailable,
  retry: Retry.fixed({ delay: "200 millis", attempts: 6 }),
  circuitBreaker: pricingService,
  run: (failures: number) =>
    Effect.suspend(() =>
      ++calls <= failures
        ? Effect.fail(new ServiceUnavailable({ service: "pricing", status: 503 }))
        : Effect.succeed({ sku: "book", price: 1299 })
    )
})

export const priceLookup = Workflow.make({
  name: "price-lookup",
  description: "a call through a circuit breaker to a dependency that is down for a while",
  input: Schema.Struct({ failures: Schema.Number.pipe(Schema.int(), Schema.nonNegative()) }),
  success: Schema.Struct({ sku: Schema.String, price: Schema.Number }),
  error: ServiceUnavailable,
  run: ({ failures }) => lookUpPrice(failures)
})
