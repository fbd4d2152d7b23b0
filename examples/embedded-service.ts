/**
 * weft embedded in a service: an HTTP endpoint places orders by starting the checkout workflow
 * (examples/checkout.ts) and answers with its typed result, while a worker in the same process
 * executes the runs. The store is a SQLite file; give `WEFT_STORE=postgres://...` to share the
 * work with `weft worker` processes on other machines.
 *
 *   node --import tsx examples/embedded-service.ts            # PORT=3000, store .weft/embedded.db
 *   curl -s -X POST localhost:3000/orders -d @examples/order.json
 *     → 200 {"orderId":"order-1","chargeId":"ch_order-1_1","total":42}
 *   curl -s -X POST localhost:3000/orders -d '{"id":"o-2","items":[{"sku":"book","quantity":1}],"card":"4000-0002"}'
 *     → 402 {"error":"CardDeclined","code":"insufficient_funds"}
 *
 * Ctrl-C (or SIGTERM) shuts the worker down gracefully: runs in flight finish their step, and are
 * released for another worker if they have more to do.
 */
import { Client, PgStore, SqliteStore, Weft } from "@weft/runtime"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Http from "node:http"
import { checkout, Order } from "./checkout.js"

const store = process.env.WEFT_STORE?.startsWith("postgres")
  ? PgStore.layer({ url: process.env.WEFT_STORE })
  : SqliteStore.layer({ filename: process.env.WEFT_STORE?.replace(/^sqlite:/, "") ?? ".weft/embedded.db" })

// A Client to start runs and a Worker to execute them, on one store. Services the steps need
// would be provided here too.
const WeftLive = Weft.layer({ workflows: [checkout], worker: { concurrency: 16, grace: "10 seconds" } }).pipe(
  Layer.provideMerge(store)
)

const runtime = ManagedRuntime.make(WeftLive)

/** Starts the order's run (idempotent by order id) and waits for its result. */
const placeOrder = (body: string) =>
  Effect.gen(function*() {
    const order = yield* Schema.decodeUnknown(Schema.parseJson(Order))(body)
    const client = yield* Client.Client
    const run = yield* client.start(checkout, order)
    return yield* client.result(run)
  })

const server = Http.createServer((request, response) => {
  if (request.method !== "POST" || request.url !== "/orders") {
    response.writeHead(404).end()
    return
  }
  let body = ""
  request.on("data", (chunk) => (body += chunk))
  request.on("end", () => {
    const reply = (status: number, value: unknown) => {
      response.writeHead(status, { "content-type": "application/json" }).end(`${JSON.stringify(value)}\n`)
    }
    runtime.runPromise(
      placeOrder(body).pipe(
        Effect.match({
          onSuccess: (receipt) => reply(200, receipt),
          onFailure: (error) => {
            switch (error._tag) {
              case "ParseError":
                return reply(400, { error: "InvalidOrder", detail: error.message })
              case "CardDeclined":
                return reply(402, { error: error._tag, code: error.code })
              case "OutOfStock":
                return reply(409, { error: error._tag, sku: error.sku })
              default:
                return reply(500, { error: error._tag, detail: error.message })
            }
          }
        })
      )
    ).catch((defect) => reply(500, { error: "Defect", detail: String(defect) }))
  })
})

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  const address = server.address() as { port: number }
  process.stdout.write(`listening on http://127.0.0.1:${address.port}\n`)
})

// Graceful: stop taking requests, then release the runtime (the worker drains within its grace).
const shutdown = () => {
  process.stdout.write("shutting down\n")
  server.close()
  runtime.dispose().then(() => process.stdout.write("worker stopped\n"))
}
process.once("SIGINT", shutdown)
process.once("SIGTERM", shutdown)
