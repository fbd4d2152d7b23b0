/**
 * The embedded default store: the SQL store on a SQLite file through @effect/sql-sqlite-node
 * (better-sqlite3), in WAL mode, durable at every commit unless asked otherwise. Opening a file
 * that cannot be a weft store fails with StoreUnavailable saying why.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import type { SchemaTooNew } from "./Errors.js"
import { StoreUnavailable } from "./Errors.js"
import * as Migrations from "./Migrations.js"
import * as SqlStore from "./SqlStore.js"
import { Store } from "./Store.js"

/** How to open the SQLite store. */
export interface Options {
  /** The database file; its parent directory is created when missing. `:memory:` for a private database. */
  readonly filename: string
  /**
   * `FULL` (default) syncs the WAL at every commit, so a committed step survives a power loss;
   * `NORMAL` syncs at checkpoints only: faster, and a power loss may undo the last commits.
   */
  readonly synchronous?: "FULL" | "NORMAL" | undefined
  /** How long a write waits for another connection's write lock before failing. Default 5000. */
  readonly busyTimeoutMillis?: number | undefined
}

/** The SQLite store on `filename`, durable at every commit (`synchronous = FULL`). */
export const layer = (
  options: { readonly filename: string }
): Layer.Layer<Store | SqlClient.SqlClient, SchemaTooNew | StoreUnavailable> => layerWith(options)

/**
 * The SQLite store with every option. The layer also provides its `SqlClient`, so that other
 * parts of the runtime share the one connection.
 */
export const layerWith = (
  options: Options
): Layer.Layer<Store | SqlClient.SqlClient, SchemaTooNew | StoreUnavailable> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const synchronous = options.synchronous ?? "FULL"
      const busyTimeout = options.busyTimeoutMillis ?? 5000
      if (!Number.isInteger(busyTimeout) || busyTimeout < 0) {
        return yield* Effect.dieMessage(`busyTimeoutMillis must be a non-negative integer, got ${busyTimeout}`)
      }
      yield* ensureDirectory(options.filename)
      // better-sqlite3 throws from its constructor (a directory, a path it cannot open): the client
      // reports that as a defect.
      const client = yield* SqliteClient.make({ filename: options.filename, disableWAL: true }).pipe(
        Effect.catchAllDefect((defect) => Effect.fail(cannotOpen(options.filename, defect)))
      )
      const configure = (pragmas: ReadonlyArray<string>) =>
        Effect.forEach(pragmas, (pragma) => client.unsafe(pragma), { discard: true }).pipe(
          Effect.catchIf(Migrations.isSqlError, (error) =>
            Effect.fail(
              new StoreUnavailable({
                operation: "open",
                detail: `cannot configure the SQLite store ${options.filename}: ${Migrations.describeSqlError(error)}`,
                cause: error
              })
            ))
        )
      // One connection per client, so the pragmas hold for every statement the store runs.
      yield* configure([`PRAGMA busy_timeout = ${busyTimeout}`])
      // WAL is set here rather than by the client, to retry it: a new file starts in rollback mode,
      // where two processes switching it at once deadlock, and SQLite fails one with SQLITE_BUSY
      // at once instead of calling its busy handler. The loser finds the file in WAL on retry. The
      // wait is on the live clock: it waits for another process, whatever clock the caller uses.
      // Unprepared, because the client's statement cache keeps a failed preparation for minutes;
      // the unprepared path reports a failed preparation as a defect, hence catchAllDefect.
      yield* client.unsafe("PRAGMA journal_mode = WAL").unprepared.pipe(
        Effect.catchAllDefect(Effect.fail),
        Effect.retry({
          while: (error) => sqliteCode(error)?.startsWith("SQLITE_BUSY") === true,
          schedule: Schedule.spaced(Duration.millis(10)).pipe(Schedule.upTo(busyTimeout))
        }),
        Effect.withClock(Clock.make()),
        Effect.mapError((error) => cannotOpen(options.filename, Migrations.isSqlError(error) ? error.cause : error))
      )
      // better-sqlite3 lowers synchronous to NORMAL once WAL is on: set it after the WAL pragma.
      yield* configure([`PRAGMA synchronous = ${synchronous}`, "PRAGMA foreign_keys = ON"])
      const store = yield* SqlStore.make.pipe(Effect.provideService(SqlClient.SqlClient, client))
      return Context.make(Store, store).pipe(Context.add(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))

const ensureDirectory = (filename: string): Effect.Effect<void, StoreUnavailable> => {
  if (filename === "" || filename === ":memory:") return Effect.void
  const directory = Path.dirname(Path.resolve(filename))
  return Effect.tryPromise({
    try: () => makeDirectories(directory),
    catch: (cause) =>
      new StoreUnavailable({
        operation: "open",
        detail: `cannot create the directory ${directory} for the SQLite store: ${describeOpenError(cause)}`,
        cause
      })
  })
}

// `mkdir -p` one level at a time: Node's `mkdir(..., { recursive: true })` never returns for a
// path under a directory where nothing can be created (seen with /proc/nope on Node 20).
const makeDirectories = async (directory: string): Promise<void> => {
  const missing: Array<string> = []
  let current = directory
  while (!(await exists(current))) {
    missing.unshift(current)
    const parent = Path.dirname(current)
    if (parent === current) break
    current = parent
  }
  for (const path of missing) {
    await Fs.mkdir(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error
    })
  }
}

const exists = (path: string): Promise<boolean> =>
  Fs.stat(path).then(() => true, (error: NodeJS.ErrnoException) => error.code !== "ENOENT" && error.code !== "ENOTDIR")

const cannotOpen = (filename: string, cause: unknown): StoreUnavailable =>
  new StoreUnavailable({
    operation: "open",
    detail: `cannot open the SQLite store ${filename}: ${describeOpenError(cause)}`,
    cause
  })

// The SQLite result code (`SQLITE_BUSY`, ...) of a driver error, bare or inside a SqlError.
const sqliteCode = (error: unknown): string | undefined => {
  const cause = Migrations.isSqlError(error) ? error.cause : error
  return cause instanceof Error && "code" in cause && typeof cause.code === "string" ? cause.code : undefined
}

const describeOpenError = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const code = sqliteCode(error)
  if (code === "SQLITE_NOTADB") return "the file is not a SQLite database"
  return code === undefined ? error.message : `${error.message} (${code})`
}
