/**
 * Type tests for the DSL, checked by `tsc` (not run). Each `// @ts-expect-error` line must be an
 * error; each `Assert<Equals<...>>` must hold exactly.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Execution } from "../src/Execution.js"
import type { Failure } from "../src/index.js"
import { CircuitBreaker, Queue, Retry, Step, Workflow } from "../src/index.js"

type Equals<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true : false
type Assert<T extends true> = T

type SuccessOf<S> = S extends (...args: ReadonlyArray<any>) => Effect.Effect<infer A, any, any> ? A : never
type ErrorOf<S> = S extends (...args: ReadonlyArray<any>) => Effect.Effect<any, infer E, any> ? E : never
type ContextOf<S> = S extends (...args: ReadonlyArray<any>) => Effect.Effect<any, any, infer R> ? R : never
type ArgsOf<S> = S extends (...args: infer Args) => any ? Args : never

class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}

class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()("GatewayTimeout", { afterMs: Schema.Number }) {
  readonly retryable = true
}

class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", { sku: Schema.String }) {}

class Payments extends Context.Tag("Payments")<Payments, {
  readonly charge: (amount: number) => Effect.Effect<{ readonly chargeId: string }, CardDeclined | GatewayTimeout>
}>() {}

class Inventory extends Context.Tag("Inventory")<Inventory, {
  readonly reserve: (sku: string) => Effect.Effect<void, OutOfStock>
}>() {}

const Order = Schema.Struct({ id: Schema.String, sku: Schema.String, amount: Schema.Number })
type Order = typeof Order.Type

// --- Step.make: inferred success, error and requirements -------------------------------------

export const charge = Step.make({
  name: "charge-card",
  success: Schema.Struct({ chargeId: Schema.String }),
  error: Schema.Union(CardDeclined, GatewayTimeout),
  retry: Retry.exponential({ base: "200 millis", attempts: 5, jitter: true, retryOn: ["GatewayTimeout"] }),
  run: (order: Order) => Effect.flatMap(Payments, (payments) => payments.charge(order.amount))
})
export type ChargeChecks = [
  Assert<Equals<ArgsOf<typeof charge>, [order: Order]>>,
  Assert<Equals<SuccessOf<typeof charge>, { readonly chargeId: string }>>,
  // No timeout: no StepTimeout.
  Assert<Equals<ErrorOf<typeof charge>, CardDeclined | GatewayTimeout>>,
  Assert<Equals<ContextOf<typeof charge>, Payments | Execution>>
]

export const chargeWithTimeout = Step.make({
  name: "charge-card",
  success: Schema.Struct({ chargeId: Schema.String }),
  error: Schema.Union(CardDeclined, GatewayTimeout),
  // StepTimeout may be named by a policy.
  retry: Retry.fixed({ delay: "1 second", retryOn: ["GatewayTimeout", "StepTimeout"] }),
  timeout: "10 seconds",
  run: (order: Order) => Effect.flatMap(Payments, (payments) => payments.charge(order.amount))
})
export type ChargeWithTimeoutChecks = [
  Assert<Equals<ErrorOf<typeof chargeWithTimeout>, CardDeclined | GatewayTimeout | Failure.StepTimeout>>,
  Assert<Equals<ContextOf<typeof chargeWithTimeout>, Payments | Execution>>
]

// Without schemas: the success is the run's, no error, and Step.context is not a requirement.
export const plain = Step.make({
  name: "plain",
  run: (a: number, b: string) => Effect.map(Step.context, (info) => ({ sum: a, label: b, key: info.idempotencyKey }))
})
export type PlainChecks = [
  Assert<Equals<ArgsOf<typeof plain>, [a: number, b: string]>>,
  Assert<Equals<SuccessOf<typeof plain>, { sum: number; label: string; key: string }>>,
  Assert<Equals<ErrorOf<typeof plain>, never>>,
  Assert<Equals<ContextOf<typeof plain>, Execution>>
]

export const plainWithTimeout = Step.make({ name: "plain", timeout: 1000, run: () => Effect.succeed(1) })
export type PlainWithTimeoutChecks = [Assert<Equals<ErrorOf<typeof plainWithTimeout>, Failure.StepTimeout>>]

// A success schema decides the success type (the decoded one).
export const dated = Step.make({
  name: "dated",
  success: Schema.Struct({ at: Schema.Date }),
  run: () => Effect.succeed({ at: new Date() })
})
export type DatedChecks = [Assert<Equals<SuccessOf<typeof dated>, { readonly at: Date }>>]

// The success the run returns must fit the success schema.
export const wrongSuccess = Step.make({
  name: "wrong-success",
  success: Schema.Number,
  // @ts-expect-error a string is not the declared number
  run: () => Effect.succeed("one")
})

// --- Step.make: errors must be declared -------------------------------------------------------

export const undeclared = Step.make({
  name: "undeclared",
  error: CardDeclined,
  // @ts-expect-error OutOfStock is not in the step's error schema
  run: () => Effect.fail(new OutOfStock({ sku: "a" }))
})

// Without an error schema a typed error cannot be journaled: it would die at run time.
export const noErrorSchema = Step.make({
  name: "no-error-schema",
  // @ts-expect-error CardDeclined is not declared (no error schema)
  run: () => Effect.fail(new CardDeclined({ code: "x" }))
})

// --- Retry policies are checked against the step's declared errors ----------------------------

export const badRetryOn = Step.make({
  name: "bad-retry-on",
  error: Schema.Union(CardDeclined, GatewayTimeout),
  // @ts-expect-error OutOfStock is not an error of this step
  retry: Retry.exponential({ base: "1 second", retryOn: ["OutOfStock"] }),
  run: () => Effect.fail(new CardDeclined({ code: "x" }))
})

export const badAbortOn = Step.make({
  name: "bad-abort-on",
  error: CardDeclined,
  // @ts-expect-error a typo in a tag is caught
  retry: Retry.fixed({ delay: "1 second", abortOn: ["CardDecline"] }),
  run: () => Effect.fail(new CardDeclined({ code: "x" }))
})

const gatewayOnly = Retry.fixed({ delay: "1 second", retryOn: ["GatewayTimeout"] })
export const sharedPolicyMismatch = Step.make({
  name: "shared-policy",
  error: CardDeclined,
  // @ts-expect-error a policy made elsewhere for other errors does not fit
  retry: gatewayOnly,
  run: () => Effect.fail(new CardDeclined({ code: "x" }))
})

// Policies that name no tag fit any step.
export const anyPolicy = Step.make({ name: "any-policy", retry: Retry.none, run: () => Effect.succeed(1) })
export const defaultPolicyStep = Step.make({
  name: "default-policy",
  error: CardDeclined,
  retry: Retry.defaultPolicy,
  run: () => Effect.fail(new CardDeclined({ code: "x" }))
})

// --- Step.run (inline) -----------------------------------------------------------------------

export const inline = Step.run("inline", Effect.succeed(1))
export const inlineTyped = Step.run("inline", Effect.fail(new CardDeclined({ code: "x" })), {
  error: CardDeclined,
  timeout: "1 second"
})
export type InlineChecks = [
  Assert<Equals<Effect.Effect.Success<typeof inline>, number>>,
  Assert<Equals<Effect.Effect.Error<typeof inline>, never>>,
  Assert<Equals<Effect.Effect.Context<typeof inline>, Execution>>,
  Assert<Equals<Effect.Effect.Error<typeof inlineTyped>, CardDeclined | Failure.StepTimeout>>
]

// @ts-expect-error an inline step's typed error must be declared too
export const inlineUndeclared = Step.run("inline", Effect.fail(new CardDeclined({ code: "x" })))

// --- Workflow.make ---------------------------------------------------------------------------

const reserve = Step.make({
  name: "reserve",
  error: OutOfStock,
  run: (order: Order) => Effect.flatMap(Inventory, (inventory) => inventory.reserve(order.sku))
})

const Receipt = Schema.Struct({ orderId: Schema.String, chargeId: Schema.String })

export const checkout = Workflow.make({
  name: "checkout",
  input: Order,
  success: Receipt,
  error: Schema.Union(CardDeclined, GatewayTimeout, OutOfStock),
  idempotencyKey: (order) => order.id,
  queue: Queue.make({ name: "checkout", concurrency: 8 }),
  // The key function sees the decoded input, typed.
  concurrencyKey: (order) => order.id.slice(0, 3),
  concurrencyLimit: 2,
  run: (order) =>
    Effect.gen(function*() {
      yield* reserve(order)
      const { chargeId } = yield* charge(order)
      return { orderId: order.id, chargeId }
    })
})
export type CheckoutChecks = [
  Assert<Equals<Workflow.Input<typeof checkout>, Order>>,
  Assert<Equals<Workflow.Success<typeof checkout>, { readonly orderId: string; readonly chargeId: string }>>,
  // No step with a timeout: no StepTimeout.
  Assert<
    Equals<
      Workflow.Error<typeof checkout>,
      CardDeclined | GatewayTimeout | OutOfStock | Failure.NonDeterminism | Failure.Cancelled | Failure.RecoveryLimit
    >
  >,
  Assert<Equals<Workflow.Requirements<typeof checkout>, Payments | Inventory>>,
  Assert<Equals<typeof checkout.name, "checkout">>
]

export const checkoutWithTimeout = Workflow.make({
  name: "checkout-with-timeout",
  input: Order,
  success: Receipt,
  error: Schema.Union(CardDeclined, GatewayTimeout),
  run: (order) => Effect.map(chargeWithTimeout(order), ({ chargeId }) => ({ orderId: order.id, chargeId }))
})
export type CheckoutWithTimeoutChecks = [
  Assert<
    Equals<
      Workflow.Error<typeof checkoutWithTimeout>,
      | CardDeclined
      | GatewayTimeout
      | Failure.StepTimeout
      | Failure.NonDeterminism
      | Failure.Cancelled
      | Failure.RecoveryLimit
    >
  >,
  Assert<Equals<Workflow.Requirements<typeof checkoutWithTimeout>, Payments>>
]

// A workflow with no errors and no services.
export const hello = Workflow.make({
  name: "hello",
  input: Schema.String,
  success: Schema.String,
  run: (name) => Effect.map(Workflow.now, (now) => `hello ${name} at ${now}`)
})
export type HelloChecks = [
  Assert<Equals<Workflow.Error<typeof hello>, Failure.NonDeterminism | Failure.Cancelled | Failure.RecoveryLimit>>,
  Assert<Equals<Workflow.Requirements<typeof hello>, never>>
]

export const undeclaredInWorkflow = Workflow.make({
  name: "undeclared",
  input: Order,
  success: Receipt,
  error: CardDeclined,
  run: (order) =>
    // @ts-expect-error OutOfStock (from the reserve step) is not declared by the workflow
    Effect.gen(function*() {
      yield* reserve(order)
      return { orderId: order.id, chargeId: "c" }
    })
})

export const undeclaredNoSchema = Workflow.make({
  name: "undeclared-no-schema",
  input: Schema.String,
  success: Schema.String,
  // @ts-expect-error a workflow without an error schema may not fail with a typed error
  run: (s) => Effect.fail(new CardDeclined({ code: s }))
})

// The body may use the durable primitives, which add no error.
export type PrimitiveChecks = [
  Assert<Equals<typeof Workflow.now, Effect.Effect<number, never, Execution>>>,
  Assert<Equals<typeof Workflow.random, Effect.Effect<number, never, Execution>>>,
  Assert<Equals<typeof Workflow.uuid, Effect.Effect<string, never, Execution>>>,
  Assert<Equals<typeof Step.context, Effect.Effect<Step.Info, never, typeof Step.StepContext.Identifier>>>
]

// --- Circuit breakers ------------------------------------------------------------------------

const gateway = CircuitBreaker.make({ name: "payment-gateway", failureThreshold: 5, window: "30 seconds" })

// A breaker adds CircuitOpen to the step's errors, and a policy may name it.
export const chargeWithBreaker = Step.make({
  name: "charge-card",
  error: Schema.Union(CardDeclined, GatewayTimeout),
  retry: Retry.fixed({ delay: "1 second", retryOn: ["GatewayTimeout", "CircuitOpen"] }),
  timeout: "10 seconds",
  circuitBreaker: gateway,
  run: (order: Order) => Effect.flatMap(Payments, (payments) => payments.charge(order.amount))
})
export const inlineWithBreaker = Step.run("inline", Effect.succeed(1), { circuitBreaker: gateway })
export type BreakerChecks = [
  Assert<
    Equals<
      ErrorOf<typeof chargeWithBreaker>,
      CardDeclined | GatewayTimeout | Failure.StepTimeout | Failure.CircuitOpen
    >
  >,
  Assert<Equals<Effect.Effect.Error<typeof inlineWithBreaker>, Failure.CircuitOpen>>
]

// Around any effect, data-last or data-first.
export const protectedEffect = Effect.fail(new CardDeclined({ code: "x" })).pipe(CircuitBreaker.protect(gateway))
export const protectedFirst = CircuitBreaker.protect(Effect.succeed("ok"), gateway)
export type ProtectChecks = [
  Assert<Equals<Effect.Effect.Error<typeof protectedEffect>, CardDeclined | Failure.CircuitOpen>>,
  Assert<Equals<typeof protectedFirst, Effect.Effect<string, Failure.CircuitOpen>>>
]

export const withoutCircuitOpen = Step.make({
  name: "plain",
  // @ts-expect-error a policy names the step's tags, StepTimeout and CircuitOpen only
  retry: Retry.fixed({ delay: "1 second", retryOn: ["Nope"] }),
  run: () => Effect.succeed(1)
})

// A workflow body may fail with CircuitOpen without declaring it.
export const checkoutWithBreaker = Workflow.make({
  name: "checkout-with-breaker",
  input: Order,
  success: Receipt,
  error: Schema.Union(CardDeclined, GatewayTimeout),
  run: (order) => Effect.map(chargeWithBreaker(order), ({ chargeId }) => ({ orderId: order.id, chargeId }))
})
export type CheckoutWithBreakerChecks = [
  Assert<
    Equals<
      Workflow.Error<typeof checkoutWithBreaker>,
      | CardDeclined
      | GatewayTimeout
      | Failure.StepTimeout
      | Failure.CircuitOpen
      | Failure.NonDeterminism
      | Failure.Cancelled
      | Failure.RecoveryLimit
    >
  >
]
