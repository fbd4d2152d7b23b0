/**
 * Wake-up notices from PostgreSQL: a connection of its own that LISTENs on weft's channel. Our own
 * rather than @effect/sql-pg's `listen`, which ignores the connection's errors: after a server
 * restart its stream would stay open and silent. Here a broken connection fails the subscription, so
 * the subscriber knows to resubscribe (and to poll meanwhile).
 */
import * as Effect from "effect/Effect"
import Pg from "pg"
import { StoreUnavailable } from "../Errors.js"
import { anyQueue } from "./WakeBus.js"

/** The channel weft's stores NOTIFY on; the payload is a queue's name. */
export const channel = "weft_wakeup"

/** How to reach the server. */
export interface Options {
  readonly url: string
  /** For messages: the URL without its password. */
  readonly where: string
  readonly connectTimeoutMillis: number
  readonly applicationName: string
}

/**
 * Calls `listener` with every notice on `channel`, in the tick it arrives, until interrupted; fails
 * when the connection breaks. The first call is `"*"` once listening, since notices sent before
 * then (or while a previous subscription was broken) were missed.
 */
export const listen = (
  options: Options,
  listener: (notice: string) => void
): Effect.Effect<never, StoreUnavailable> =>
  Effect.scoped(Effect.gen(function*() {
    let broken: ((error: StoreUnavailable) => void) | undefined
    let brokenFirst: StoreUnavailable | undefined
    const breaks = (detail: string) => {
      const error = new StoreUnavailable({ operation: "listen", detail: `${options.where}: ${detail}` })
      if (broken === undefined) brokenFirst ??= error
      else broken(error)
    }
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client = new Pg.Client({
            connectionString: options.url,
            connectionTimeoutMillis: options.connectTimeoutMillis,
            application_name: options.applicationName,
            keepAlive: true
          })
          let closing = false
          client.on("notification", (message) => {
            if (message.channel === channel) listener(message.payload ?? anyQueue)
          })
          client.on("error", (error) => closing || breaks(error.message))
          client.on("end", () => closing || breaks("the notice connection closed"))
          try {
            await client.connect()
            await client.query(`LISTEN ${channel}`)
          } catch (error) {
            closing = true
            await client.end().catch(() => undefined)
            throw error
          }
          return {
            close: () => {
              closing = true
              return client.end().catch(() => undefined)
            }
          }
        },
        catch: (error) =>
          new StoreUnavailable({
            operation: "listen",
            detail: `cannot listen for wake-ups on ${options.where}: ${
              error instanceof Error ? error.message : String(error)
            }`
          })
      }),
      ({ close }) => Effect.promise(close).pipe(Effect.timeoutOption(1000))
    )
    listener(anyQueue)
    return yield* Effect.async<never, StoreUnavailable>((resume) => {
      if (brokenFirst !== undefined) return resume(Effect.fail(brokenFirst))
      broken = (error) => resume(Effect.fail(error))
    })
  }))
