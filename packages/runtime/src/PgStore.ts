/**
 * The shared store: the SQL store on a PostgreSQL server through @effect/sql-pg (node-postgres),
 * with a bounded connection pool. A server that cannot be reached, or a URL that cannot be used,
 * fails with StoreUnavailable saying which server and why. Circuit breakers declared `shared` keep
 * their state here, so every worker on the database sees the same breaker.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { CircuitBreaker } from "@weft/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import Pg from "pg"
import type { SchemaTooNew } from "./Errors.js"
import { StoreUnavailable } from "./Errors.js"
import * as PgListener from "./internal/PgListener.js"
import * as PgPrepared from "./internal/PgPrepared.js"
import * as SharedBreakers from "./internal/SharedBreakers.js"
import * as Migrations from "./Migrations.js"
import * as SqlStore from "./SqlStore.js"
import { Store } from "./Store.js"

/** How to open the PostgreSQL store. */
export interface Options {
  /** The server and database: `postgres://user:password@host:port/database` (or `postgresql://`). */
  readonly url: string
  /** The most connections the pool opens. Default 10. */
  readonly maxConnections?: number | undefined
  /** How long opening a connection may take before the store is reported unavailable. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** The `application_name` the server shows for these connections. Default `weft`. */
  readonly applicationName?: string | undefined
  /** How the SQL store commits. */
  readonly store?: SqlStore.Options | undefined
}

/** The default size of the connection pool. */
export const defaultMaxConnections = 10

/** The PostgreSQL store on the database at `url`, with a pool of at most 10 connections. */
export const layer = (
  options: { readonly url: string }
): Layer.Layer<Store | SqlClient.SqlClient | CircuitBreaker.Backend, SchemaTooNew | StoreUnavailable> =>
  layerWith(options)

/**
 * The PostgreSQL store with every option. The layer also provides its `SqlClient`, so that other
 * parts of the runtime share the pool, and the `CircuitBreaker.Backend` that keeps `shared`
 * breakers in the database.
 */
export const layerWith = (
  options: Options
): Layer.Layer<Store | SqlClient.SqlClient | CircuitBreaker.Backend, SchemaTooNew | StoreUnavailable> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const maxConnections = options.maxConnections ?? defaultMaxConnections
      if (!Number.isInteger(maxConnections) || maxConnections < 1) {
        return yield* Effect.dieMessage(`maxConnections must be a positive integer, got ${maxConnections}`)
      }
      const where = redactUrl(options.url)
      if (!/^postgres(?:ql)?:\/\//.test(options.url)) {
        return yield* Effect.fail(
          new StoreUnavailable({ operation: "open", detail: `${where} is not a postgres:// or postgresql:// URL` })
        )
      }
      // node-postgres throws from its constructor on a URL it cannot parse: the client reports that
      // as a defect.
      // The pool of PgClient.make, with connections that prepare the store's hot statements.
      const connectTimeout = options.connectTimeout ?? Duration.seconds(5)
      const applicationName = options.applicationName ?? "weft"
      // The pool while it is open: the store's hottest statements run on it directly (see `direct`).
      let opened: Pg.Pool | undefined
      const acquire = Effect.acquireRelease(
        Effect.suspend(() => {
          const pool = new Pg.Pool({
            connectionString: options.url,
            connectionTimeoutMillis: Duration.toMillis(connectTimeout),
            max: maxConnections,
            application_name: applicationName,
            Client: PgPrepared.PreparingClient
          })
          pool.on("error", () => {})
          return Effect.tryPromise({
            try: () => pool.query("SELECT 1"),
            catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
          }).pipe(
            Effect.tapError(() => Effect.promise(() => pool.end().catch(() => undefined))),
            Effect.as(pool),
            Effect.tap((pool) => {
              opened = pool
            })
          )
        }),
        (pool) =>
          Effect.suspend(() => {
            // Closed: a direct statement now fails as one through the client would.
            if (opened === pool) opened = undefined
            return Effect.promise(() => pool.end())
          }).pipe(Effect.interruptible, Effect.timeoutOption(1000))
      ).pipe(
        Effect.timeoutFail({
          duration: connectTimeout,
          onTimeout: () =>
            new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        })
      )
      const client = yield* PgClient.fromPool({ acquire, applicationName }).pipe(
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        Effect.mapError((error) =>
          new StoreUnavailable({
            operation: "open",
            detail: `cannot connect to the PostgreSQL store ${where}: ${describeConnectError(error)}`,
            cause: error
          })
        )
      )
      const listening: PgListener.Options = {
        url: options.url,
        where,
        connectTimeoutMillis: Duration.toMillis(Duration.decode(options.connectTimeout ?? Duration.seconds(5))),
        applicationName: `${options.applicationName ?? "weft"}:listen`
      }
      const sharedWakeups = (listener: (notice: string) => void) => PgListener.listen(listening, listener)
      // A statement on a connection of the pool, as @effect/sql-pg runs it, without its per-statement
      // span, scope and acquisition effect. Only for statements that commit alone (autocommit).
      const direct = (text: string, params: ReadonlyArray<unknown>) =>
        Effect.async<ReadonlyArray<any>, SqlError>((resume) => {
          const pool = opened
          if (pool === undefined) {
            resume(
              Effect.fail(
                new SqlError({ cause: new Error("the pool is closed"), message: "Failed to execute statement" })
              )
            )
            return
          }
          pool.query(text, params as Array<unknown>, (cause: Error | undefined, result: Pg.QueryResult | undefined) => {
            if (cause) resume(Effect.fail(new SqlError({ cause, message: "Failed to execute statement" })))
            else resume(Effect.succeed(result?.rows ?? []))
          })
        })
      const store = yield* SqlStore.makeWith({ ...options.store, sharedWakeups, direct }).pipe(
        Effect.provideService(SqlClient.SqlClient, client)
      )
      const breakers = yield* SharedBreakers.make.pipe(Effect.provideService(SqlClient.SqlClient, client))
      return Context.make(Store, store).pipe(
        Context.add(SqlClient.SqlClient, client),
        Context.add(CircuitBreaker.Backend, breakers)
      )
    })
  ).pipe(Layer.provide(Reactivity.layer))

/** The URL with its password replaced by `***`, for messages. */
export const redactUrl = (url: string): string => url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, "$1***@")

// The driver's reason in words: node-postgres reports a refused connection to a name with several
// addresses as an AggregateError with an empty message, whose parts say what happened.
const describeConnectError = (error: unknown): string => {
  const cause = Migrations.isSqlError(error) ? error.cause : error
  if (cause instanceof AggregateError && cause.message === "") {
    return cause.errors.map(describeConnectError).join("; ")
  }
  if (!(cause instanceof Error)) return String(cause)
  const code = "code" in cause && typeof cause.code === "string" ? cause.code : undefined
  const message = cause.message === "" && Migrations.isSqlError(error) ? error.message : cause.message
  return code === undefined || message.includes(code) ? message : `${message} (${code})`
}
