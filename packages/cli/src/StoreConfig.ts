/**
 * Where the CLI keeps runs: `--store`, else `WEFT_STORE`, else `sqlite:.weft/weft.db`.
 * `sqlite:PATH` is a file (created on first use), `memory:` keeps nothing after the process ends,
 * `postgres://...` (or `postgresql://...`) is a PostgreSQL database shared by many processes.
 */
import { Client, MemoryStore, PgStore, SqliteStore, type Store } from "@weft/runtime"
import type { Errors } from "@weft/runtime"
import * as Layer from "effect/Layer"
import { UsageError } from "./UsageError.js"

/** The default store location. */
export const DEFAULT_STORE = "sqlite:.weft/weft.db"

/** A parsed store location. */
export type StoreSpec =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Memory" }
  | { readonly _tag: "Postgres"; readonly url: string }

/** Parses a store location, explaining the accepted forms when it is not one of them. */
export const parse = (raw: string | undefined): StoreSpec | UsageError => {
  const value = raw ?? process.env.WEFT_STORE ?? DEFAULT_STORE
  if (value.startsWith("sqlite:")) {
    const filename = value.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "")
    if (filename.length === 0) return new UsageError({ message: `invalid store "${value}": sqlite: needs a file path` })
    return { _tag: "Sqlite", filename }
  }
  if (value === "memory:" || value === "memory") return { _tag: "Memory" }
  if (value.startsWith("postgres://") || value.startsWith("postgresql://")) {
    if (!URL.canParse(value)) {
      return new UsageError({ message: `invalid store "${PgStore.redactUrl(value)}": not a valid URL` })
    }
    return { _tag: "Postgres", url: value }
  }
  return new UsageError({
    message: `invalid store "${value}": use sqlite:PATH (e.g. ${DEFAULT_STORE}), postgres://URL or memory:`
  })
}

/** A short description of the store for messages. */
export const describe = (spec: StoreSpec): string =>
  spec._tag === "Sqlite"
    ? `sqlite:${spec.filename}`
    : spec._tag === "Postgres"
    ? PgStore.redactUrl(spec.url)
    : "memory:"

/** The store and a client over it. */
export const layer = (
  spec: StoreSpec
): Layer.Layer<Store.Store | Client.Client, Errors.SchemaTooNew | Errors.StoreUnavailable> => {
  const store = spec._tag === "Sqlite"
    ? SqliteStore.layer({ filename: spec.filename })
    : spec._tag === "Postgres"
    ? PgStore.layer({ url: spec.url })
    : MemoryStore.layer
  return Client.layer.pipe(Layer.provideMerge(store))
}
