/**
 * An order that runs its payment and its shipping as child workflows: each child is a run of its
 * own, with its own journal, retries and history (`weft show <child id>`), which any worker may
 * execute. The order waits for each child durably (`waiting`, holding no worker slot); a child's
 * typed failure is the order's failure, unchanged, and the order's completed steps are compensated.
 * All three workflows are exported, so a worker given this module can execute any of them.
 *
 *   weft run examples/order-children.ts order --input '{"id":"order-1","card":"4242-4242","amount":42,"address":"1 Main St"}'
 *     → succeeds; `weft run` executes each child in its own process while the order waits, its
 *       progress indented under the order's:
 *
 *         ▶ order aa296527-cfb5-41e0-b638-d623fd825587 on sqlite:.weft/weft.db
 *           → reserve-stock
 *           ✓ reserve-stock 2ms
 *           ⤷ child payment aa296527/$child:payment (the run waits for it)
 *             → authorize
 *             ✓ authorize 0ms
 *             → capture
 *             ✓ capture 1ms
 *           ✓ child payment aa296527/$child:payment succeeded in 20ms
 *           ↻ reserve-stock (from journal)
 *           ⤷ child shipping aa296527/$child:shipping (the run waits for it)
 *             → pack
 *             ✓ pack 1ms
 *             → label
 *             ✓ label 1ms
 *           ✓ child shipping aa296527/$child:shipping succeeded in 131ms
 *           ↻ reserve-stock (from journal)
 *         ✓ order aa296527-cfb5-41e0-b638-d623fd825587 succeeded in 323ms
 *         {
 *           "orderId": "order-1",
 *           "charge": "ch_order-1",
 *           "tracking": "TRK-box-order-1-9"
 *         }
 *
 *   weft show aa296527-cfb5-41e0-b638-d623fd825587
 *     → each child's steps hang from its row (`weft show <child id>` shows a child alone, with a
 *       `parent` line; `--json` has `child: { runId, workflow, status }` on the step and the
 *       children's traces in `children`):
 *
 *         order aa296527-cfb5-41e0-b638-d623fd825587  ✓ succeeded
 *           version   unversioned
 *           created   2026-11-22T08:55:11.615Z
 *           duration  323ms
 *           output    { orderId: "order-1", charge: "ch_order-1", tracking: "TRK-box-order-1-9" }
 *
 *           +19ms   2ms    ✓ reserve-stock
 *           +41ms   66ms   ✓ ⤷ child payment aa296527/$child:payment
 *           +71ms   0ms    ├─ ✓ authorize
 *           +81ms   1ms    └─ ✓ capture
 *           +119ms  197ms  ✓ ⤷ child shipping aa296527/$child:shipping
 *           +187ms  1ms    ├─ ✓ pack
 *           +241ms  1ms    └─ ✓ label
 *
 *   weft run examples/order-children.ts order --input '{"id":"order-2","card":"4000-0002","amount":42,"address":"1 Main St"}'
 *     → the card is declined: the payment child fails with CardDeclined, and so does the order
 *       (exit code 1), whose reserved stock is released by its compensation. The failure tree shows
 *       the child's own steps and attempts under it:
 *
 *         ▶ order 6c014d07-7db8-4614-8f82-292152ba71df on sqlite:.weft/weft.db
 *           → reserve-stock
 *           ✓ reserve-stock 1ms
 *           ⤷ child payment 6c014d07/$child:payment (the run waits for it)
 *             → authorize
 *             ✗ authorize attempt 1: CardDeclined { card: "4000-0002", code: "insufficient_funds" } — not retryable
 *           ✗ child payment 6c014d07/$child:payment failed: CardDeclined
 *           ↻ reserve-stock (from journal)
 *           ↺ reserve-stock (compensation)
 *             info: stock reservation rsv-order-2 released
 *           ✓ reserve-stock (compensation) 6ms
 *         ✗ order 6c014d07 failed in 157ms: CardDeclined
 *         order(6c014d07-7db8-4614-8f82-292152ba71df)
 *         ├─ ✓ reserve-stock                            1ms
 *         ├─ ✗ ⤷ child payment 6c014d07/$child:payment  CardDeclined { card: "4000-0002", code: "insufficient_funds" }
 *         │  └─ ✗ authorize                             1 attempt, 2ms
 *         │     └─ 1 CardDeclined { card: "4000-0002", code: "insufficient_funds" }  not retryable
 *         └─ ✓ ↺ reserve-stock (compensation)           6ms
 *         cause: CardDeclined { card: "4000-0002", code: "insufficient_funds" }
 *
 * With a worker instead (`weft start examples/order-children.ts order --input ...`, then
 * `weft worker examples/order-children.ts`), the order and its children may run on any worker; while
 * a child runs, `weft show <order id>` draws it `◷ ⤷ child payment <id>  running`, and `weft cancel
 * <order id>` cancels the children too.
 */
import { Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

export const Order = Schema.Struct({
  id: Schema.String,
  card: Schema.String,
  amount: Schema.Number.pipe(Schema.positive()),
  address: Schema.String
})
export type Order = typeof Order.Type

/** The card was refused: the order cannot be paid. */
export class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", {
  card: Schema.String,
  code: Schema.String
}) {}

// --- payment: a child workflow -------------------------------------------------------------------

const Charge = Schema.Struct({ card: Schema.String, amount: Schema.Number, orderId: Schema.String })

const authorize = Step.make({
  name: "authorize",
  success: Schema.String,
  error: CardDeclined,
  run: (charge: typeof Charge.Type) =>
    charge.card.startsWith("4000")
      ? Effect.fail(new CardDeclined({ card: charge.card, code: "insufficient_funds" }))
      : Effect.succeed(`auth_${charge.orderId}`)
})

const capture = Step.make({
  name: "capture",
  success: Schema.String,
  run: (authorization: string) => Effect.succeed(authorization.replace(/^auth_/, "ch_"))
})

export const payment = Workflow.make({
  name: "payment",
  description: "authorize and capture a card payment",
  input: Charge,
  success: Schema.String,
  error: CardDeclined,
  run: (charge) => Effect.flatMap(authorize(charge), capture)
})

// --- shipping: a child workflow ------------------------------------------------------------------

const Parcel = Schema.Struct({ orderId: Schema.String, address: Schema.String })

const pack = Step.make({
  name: "pack",
  success: Schema.String,
  run: (parcel: typeof Parcel.Type) => Effect.succeed(`box-${parcel.orderId}`)
})

const label = Step.make({
  name: "label",
  success: Schema.String,
  run: (box: string, address: string) => Effect.succeed(`TRK-${box}-${address.length}`)
})

export const shipping = Workflow.make({
  name: "shipping",
  description: "pack a parcel and print its label",
  input: Parcel,
  success: Schema.String,
  run: (parcel) => Effect.flatMap(pack(parcel), (box) => label(box, parcel.address))
})

// --- the order: the parent -----------------------------------------------------------------------

const reserveStock = Step.make({
  name: "reserve-stock",
  success: Schema.String,
  run: (order: Order) => Effect.succeed(`rsv-${order.id}`),
  compensate: (reservation) => Effect.log(`stock reservation ${reservation} released`)
})

export const order = Workflow.make({
  name: "order",
  description: "reserve stock, then pay and ship through child workflows",
  input: Order,
  success: Schema.Struct({ orderId: Schema.String, charge: Schema.String, tracking: Schema.String }),
  error: CardDeclined,
  idempotencyKey: (order) => order.id,
  run: (order) =>
    Effect.gen(function*() {
      yield* reserveStock(order)
      const charge = yield* Workflow.child(payment, { card: order.card, amount: order.amount, orderId: order.id })
      const tracking = yield* Workflow.child(shipping, { orderId: order.id, address: order.address })
      return { orderId: order.id, charge, tracking }
    })
})
