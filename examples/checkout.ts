/**
 * An order checkout with typed domain errors.
 *
 *   weft run examples/checkout.ts --input @examples/order.json
 *     → succeeds: prints {"orderId": "order-1", "chargeId": "ch_order-1_1", "total": 42}
 *   weft run examples/checkout.ts --input '{"id":"order-2","items":[{"sku":"book","quantity":1}],"card":"4000-0002"}'
 *     → fails with CardDeclined { code: "insufficient_funds" }: not retryable, exit code 1
 *   weft run examples/checkout.ts --input '{"id":"order-3","items":[{"sku":"unobtainium","quantity":1}],"card":"4242"}'
 *     → fails with OutOfStock { sku: "unobtainium" } at the first step, exit code 1
 *   weft run examples/checkout.ts --input '{"id":"order-4","items":[{"sku":"book","quantity":1}],"card":"4242","coupon":"BUG"}'
 *     → a defect (a TypeError thrown by buggy coupon code), not retried, exit code 3, with a stack
 *       pointing at this file
 *
 * Run the first command twice: the second start finds the run by its idempotency key (the order id)
 * and prints the recorded result without charging again.
 */
import { Retry, Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

const Item = Schema.Struct({ sku: Schema.String, quantity: Schema.Number.pipe(Schema.int(), Schema.positive()) })

export const Order = Schema.Struct({
  id: Schema.String,
  items: Schema.NonEmptyArray(Item),
  card: Schema.String,
  coupon: Schema.optional(Schema.String)
})
export type Order = typeof Order.Type

export const Receipt = Schema.Struct({ orderId: Schema.String, chargeId: Schema.String, total: Schema.Number })

/** The card was declined: retrying cannot help. */
export class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { code: Schema.String }) {}

/** An item is not in stock. */
export class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", { sku: Schema.String }) {}

/** The payment gateway did not answer in time: transient, so it says it is retryable. */
export class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()("GatewayTimeout", {
  afterMs: Schema.Number
}) {
  readonly retryable = true
}

const prices: Record<string, number> = { book: 42, pen: 3 }

const reserveStock = Step.make({
  name: "reserve-stock",
  success: Schema.Struct({ reservationId: Schema.String, total: Schema.Number }),
  error: OutOfStock,
  run: (order: Order) =>
    Effect.gen(function*() {
      let total = 0
      for (const item of order.items) {
        const price = prices[item.sku]
        if (price === undefined) return yield* new OutOfStock({ sku: item.sku })
        total += price * item.quantity
      }
      return { reservationId: `res_${order.id}`, total }
    })
})

const applyCoupon = Step.make({
  name: "apply-coupon",
  success: Schema.Number,
  run: (coupon: string, total: number) =>
    Effect.sync(() => {
      const table: Record<string, { percent: number }> = { SAVE10: { percent: 10 } }
      // The bug this example shows: an unknown coupon is read without a check.
      const discount = coupon === "BUG" ? (table[coupon] as { percent: number }).percent : table[coupon]?.percent ?? 0
      return total - (total * discount) / 100
    })
})

const chargeCard = Step.make({
  name: "charge-card",
  success: Schema.Struct({ chargeId: Schema.String }),
  error: Schema.Union(CardDeclined, GatewayTimeout),
  retry: Retry.exponential({ base: "100 millis", max: "2 seconds", attempts: 4, jitter: true }),
  timeout: "5 seconds",
  run: (order: Order, _amount: number) =>
    Effect.gen(function*() {
      const { attempt } = yield* Step.context
      if (order.card.startsWith("4000")) return yield* new CardDeclined({ code: "insufficient_funds" })
      return { chargeId: `ch_${order.id}_${attempt}` }
    })
})

const sendReceipt = Step.make({
  name: "send-receipt",
  run: (order: Order, chargeId: string) => Effect.log(`receipt for ${order.id}: ${chargeId}`)
})

export const checkout = Workflow.make({
  name: "checkout",
  description: "reserve stock, charge the card, send the receipt",
  input: Order,
  success: Receipt,
  error: Schema.Union(CardDeclined, OutOfStock, GatewayTimeout),
  idempotencyKey: (order) => order.id,
  run: (order) =>
    Effect.gen(function*() {
      const { total } = yield* reserveStock(order)
      const amount = order.coupon === undefined ? total : yield* applyCoupon(order.coupon, total)
      const { chargeId } = yield* chargeCard(order, amount)
      yield* sendReceipt(order, chargeId)
      return { orderId: order.id, chargeId, total: amount }
    })
})
