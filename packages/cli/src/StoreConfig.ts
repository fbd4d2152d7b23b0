/**
 * Where the CLI keeps runs: `--store`, else `WEFT_STORE`, else `sqlite:.weft/weft.db`.
 * `sqlite:PATH` is a file (created on first use), `memory:` keeps nothing after the process ends.
 */
import { Client, MemoryStore, SqliteStore, type Store } from "@weft/runtime"
import type { Errors } from "@weft/runtime"
import * as Layer from "effect/Layer"
import { UsageError } from "./UsageError.js"

/** The default store location. */
export const DEFAULT_STORE = "sqlite:.weft/weft.db"

/** A parsed store location. */
export type StoreSpec =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Memory" }

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
    return new UsageError({ message: `the PostgreSQL store is not available in this version of weft; use sqlite:PATH` })
  }
  return new UsageError({
    message: `invalid store "${value}": use sqlite:PATH (e.g. ${DEFAULT_STORE}) or memory:`
  })
}

/** A short description of the store for messages. */
export const describe = (spec: StoreSpec): string => spec._tag === "Sqlite" ? `sqlite:${spec.filename}` : "memory:"

/** The store and a client over it. */
export const layer = (
  spec: StoreSpec
): Layer.Layer<Store.Store | Client.Client, Errors.SchemaTooNew | Errors.StoreUnavailable> => {
  const store = spec._tag === "Sqlite" ? SqliteStore.layer({ filename: spec.filename }) : MemoryStore.layer
  return Client.layer.pipe(Layer.provideMerge(store))
}
