/**
 * A workflow that calls a flaky HTTP service through a circuit breaker, with retries. The module
 * starts the service itself (a local node:http server on a free port, see `layer` below), so the
 * example needs nothing else: the service answers 503 to the first `failures` requests for a
 * product, then its price.
 *
 * The step classifies responses with `Http.get` (503 is a retryable HttpRetryable; a 404 would be a
 * non-retryable HttpRejected), retries every 300 ms, and goes through the `pricing-service` breaker:
 * two failures within a minute open it; while it is open, attempts fail fast with CircuitOpen without
 * calling the service, and the retry waits at least the breaker's `retryAfter`; after a 2 s
 * cooldown one trial call goes through, and its success closes the breaker.
 *
 *   weft run examples/flaky-http.ts --input '{"sku": "book", "failures": 3}'
 *     → attempts 1 and 2 get 503 (the breaker opens: "circuit breaker pricing-service opened"),
 *       attempt 3 is refused with CircuitOpen, the trial call after the cooldown gets the third
 *       503 and reopens it, the next trial succeeds and closes it: {"sku":"book","price":1299}
 *   weft run examples/flaky-http.ts --input '{"sku": "book", "failures": 0}'
 *     → one call, no breaker activity
 *   weft run examples/flaky-http.ts --input '{"sku": "book", "failures": 20}'
 *     → gives up after 8 attempts with the last HttpRetryable (exit code 1); `weft show <id>`
 *       lists every attempt: which reached the service, which the breaker refused
 */
import { CircuitBreaker, Retry, Step, Workflow } from "@weft/core"
import { Http } from "@weft/runtime"
import { Context, Effect, Layer, Schema } from "effect"
import * as NodeHttp from "node:http"

/** Where the pricing service listens. */
export class PricingService
  extends Context.Tag("examples/PricingService")<PricingService, { readonly url: string }>()
{}

const Price = Schema.Struct({ sku: Schema.String, price: Schema.Number })

/** One breaker for every call to the pricing service from this process. */
const pricingBreaker = CircuitBreaker.make({
  name: "pricing-service",
  failureThreshold: 2,
  window: "1 minute",
  cooldown: "2 seconds"
})

const lookUpPrice = Step.make({
  name: "look-up-price",
  success: Price,
  error: Http.HttpError,
  retry: Retry.fixed({ delay: "300 millis", attempts: 8 }),
  timeout: "2 seconds",
  circuitBreaker: pricingBreaker,
  run: (sku: string, failures: number) =>
    Effect.flatMap(
      PricingService,
      ({ url }) => Http.get(`${url}/prices/${encodeURIComponent(sku)}?failures=${failures}`, { success: Price })
    )
})

export const priceOverHttp = Workflow.make({
  name: "price-over-http",
  description: "an HTTP call to a flaky service through a circuit breaker, with retries",
  input: Schema.Struct({
    sku: Schema.String,
    failures: Schema.Number.pipe(Schema.int(), Schema.nonNegative())
  }),
  success: Price,
  error: Http.HttpError,
  run: ({ failures, sku }) => lookUpPrice(sku, failures)
})

/**
 * The flaky service, for as long as the command runs: answers 503 (with the number of the call) to
 * the first `failures` requests for a product, then its price. Its port is chosen by the system.
 */
export const layer = Layer.scoped(
  PricingService,
  Effect.acquireRelease(
    Effect.async<NodeHttp.Server & { readonly url: string }>((resume) => {
      const calls = new Map<string, number>()
      const server = NodeHttp.createServer((request, response) => {
        const url = new URL(request.url ?? "/", "http://localhost")
        const sku = decodeURIComponent(url.pathname.replace(/^\/prices\//, ""))
        const failures = Number(url.searchParams.get("failures") ?? "0")
        const call = (calls.get(sku) ?? 0) + 1
        calls.set(sku, call)
        if (call <= failures) {
          response.writeHead(503, { "content-type": "text/plain" }).end(`down for maintenance (call ${call})`)
        } else {
          response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ sku, price: 1299 }))
        }
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address() as { readonly port: number }
        resume(Effect.succeed(Object.assign(server, { url: `http://127.0.0.1:${address.port}` })))
      })
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => ({ url: server.url })))
)
