/**
 * Wake-up notices from PostgreSQL: a connection of its own that LISTENs on weft's channel. Our own
 * rather than @effect/sql-pg's `listen`, which ignores the connection's errors: after a server
 * restart its stream would stay open and silent. Here a broken connection fails the stream, so
 * the subscriber knows to resubscribe (and to poll meanwhile).
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
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
 * The notices on `channel` while the stream is pulled. It first emits `"*"` once listening, since
 * notices sent before then (or while a previous subscription was broken) were missed.
 */
export const notices = (options: Options): Stream.Stream<string, StoreUnavailable> =>
  Stream.asyncPush<string, StoreUnavailable>(
    (emit) =>
      Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const client = new Pg.Client({
              connectionString: options.url,
              connectionTimeoutMillis: options.connectTimeoutMillis,
              application_name: options.applicationName,
              keepAlive: true
            })
            let closing = false
            const broken = (detail: string) => {
              if (!closing) {
                void emit.fail(new StoreUnavailable({ operation: "listen", detail: `${options.where}: ${detail}` }))
              }
            }
            client.on("notification", (message) => {
              if (message.channel === channel) void emit.single(message.payload ?? anyQueue)
            })
            client.on("error", (error) => broken(error.message))
            client.on("end", () => broken("the notice connection closed"))
            try {
              await client.connect()
              await client.query(`LISTEN ${channel}`)
            } catch (error) {
              closing = true
              await client.end().catch(() => undefined)
              throw error
            }
            void emit.single(anyQueue)
            return {
              client,
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
      ),
    { bufferSize: 64, strategy: "sliding" }
  )
