/**
 * Server-side prepared statements for the store's hot statements on PostgreSQL. @effect/sql-pg
 * sends every statement unnamed, so the server parses and plans it on each execution: for the
 * store's larger statements (the claim, the combined journal write) that is over a millisecond of
 * the server's time per round trip, several times the execution. A statement whose text starts
 * with `marker` is instead prepared once per connection under a name and then only bound and
 * executed. Statements without the marker are sent as before.
 *
 * Only statements of a bounded number of shapes carry the marker, and each connection prepares at
 * most `maxPrepared`; beyond that they are sent unnamed. A prepared statement the server refuses
 * after a schema change ("cached plan must not change result type") is forgotten, so that the
 * next execution prepares it afresh.
 */
import Pg from "pg"

/** The comment that asks for a statement to be prepared. */
export const marker = "/* weft:prepared */ "

/** The most statements one connection prepares. */
export const maxPrepared = 256

type Callback = (error: Error | null, result: unknown) => void

let generation = 0

/** A `pg` Client that prepares the marked statements (see the module's doc). */
export class PreparingClient extends Pg.Client {}

const names = new WeakMap<object, Map<string, string>>()
const plainQuery = Pg.Client.prototype.query as (this: Pg.Client, ...args: ReadonlyArray<unknown>) => unknown

Object.defineProperty(PreparingClient.prototype, "query", {
  configurable: true,
  writable: true,
  value: function(this: Pg.Client, config: unknown, values?: unknown, callback?: unknown): unknown {
    if (typeof config !== "string" || !config.startsWith(marker)) {
      return plainQuery.call(this, config, values, callback)
    }
    let prepared = names.get(this)
    if (prepared === undefined) names.set(this, prepared = new Map())
    let name = prepared.get(config)
    if (name === undefined) {
      if (prepared.size >= maxPrepared) return plainQuery.call(this, config, values, callback)
      name = `weft_${(generation++).toString(36)}`
      prepared.set(config, name)
    }
    const done = (typeof values === "function" ? values : callback) as Callback | undefined
    const params = typeof values === "function" ? undefined : values
    const statements = prepared
    const forget = (error: unknown) => {
      if (typeof error === "object" && error !== null && (error as { readonly code?: unknown }).code === "0A000") {
        statements.delete(config)
      }
    }
    const query = { name, text: config, values: params }
    if (done === undefined) {
      return (plainQuery.call(this, query) as Promise<unknown>).catch((error: unknown) => {
        forget(error)
        throw error
      })
    }
    return plainQuery.call(this, query, (error: Error | null, result: unknown) => {
      if (error !== null) forget(error)
      done(error, result)
    })
  }
})
