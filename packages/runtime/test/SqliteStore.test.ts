/**
 * The SQLite store: the store contract on a real temporary file, then what only SQLite has
 * (pragmas, migrations on a shared file, opening errors, the committed schema dump).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import * as Migrations from "../src/Migrations.js"
import * as SqliteStore from "../src/SqliteStore.js"
import { Store } from "../src/Store.js"
import { freshSqliteSchema, pgSchema, regenerateCommand, schemaDirectory } from "./dumpSchema.js"
import { journalAtVersion11 } from "./journalRows.js"
import { storeConformance } from "./StoreConformance.js"

/** A scoped temporary directory, removed with everything in it when the scope closes. */
const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-sqlite-"))),
  (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
)

/** A store on a new file in a new temporary directory. */
const freshStore = () =>
  Layer.unwrapScoped(
    Effect.map(tempDirectory, (directory) => SqliteStore.layer({ filename: Path.join(directory, "weft.db") }))
  )

storeConformance("sqlite", freshStore)

const T0 = 1_700_000_000_000

/** Opens a store on `filename` for the length of `use`. */
const withStore = <A, E>(
  filename: string,
  use: Effect.Effect<A, E, Store | SqlClient.SqlClient>,
  options: Omit<SqliteStore.Options, "filename"> = {}
) => Effect.provide(use, SqliteStore.layerWith({ filename, ...options }))

const pragma = (name: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(`PRAGMA ${name}`)).pipe(
    Effect.map((rows) => Object.values(rows[0])[0])
  )

describe("SqliteStore", () => {
  describe("connection", () => {
    it.scoped("is durable by default: synchronous FULL, WAL, busy timeout, foreign keys", () =>
      Effect.gen(function*() {
        const directory = yield* tempDirectory
        const settings = yield* withStore(
          Path.join(directory, "weft.db"),
          Effect.all([pragma("synchronous"), pragma("journal_mode"), pragma("busy_timeout"), pragma("foreign_keys")])
        )
        // synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
        expect(settings).toEqual([2, "wal", 5000, 1])
      }))

    it.scoped("takes synchronous NORMAL and another busy timeout when asked", () =>
      Effect.gen(function*() {
        const directory = yield* tempDirectory
        const settings = yield* withStore(
          Path.join(directory, "weft.db"),
          Effect.all([pragma("synchronous"), pragma("busy_timeout")]),
          { synchronous: "NORMAL", busyTimeoutMillis: 250 }
        )
        expect(settings).toEqual([1, 250])
      }))

    it.scoped("a statement the database refuses is a permanent StoreUnavailable", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const refused = yield* withStore(
          filename,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* sql`DROP TABLE weft_attempts`
            return yield* Effect.flip(Effect.flatMap(Store, (store) => store.readJournal("r")))
          })
        )
        expect(refused).toMatchObject({ _tag: "StoreUnavailable", operation: "readJournal", permanent: true })
        expect(refused.detail).toContain("no such table")
      }))

    it("tells permanent database errors from passing ones by their codes", () => {
      const withCode = (code: string | undefined) =>
        new SqlError({
          message: "failed",
          cause: Object.assign(new Error("driver"), code === undefined ? {} : { code })
        })
      const permanent = ["23505", "42P01", "22P02", "0A000", "XX001", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_ERROR"]
      const passing = ["08006", "57P01", "40001", "40P01", "53300", "55P03", "SQLITE_BUSY", "SQLITE_IOERR_WRITE"]
      expect(permanent.filter((code) => !Migrations.isPermanent(withCode(code)))).toEqual([])
      expect(passing.filter((code) => Migrations.isPermanent(withCode(code)))).toEqual([])
      expect(Migrations.isPermanent(withCode(undefined))).toBe(false)
    })

    it.scoped("creates the missing parent directories of the file", () =>
      Effect.gen(function*() {
        const directory = yield* tempDirectory
        const filename = Path.join(directory, "a", "b", "c", "weft.db")
        yield* withStore(filename, Effect.void)
        expect(Fs.statSync(filename).isFile()).toBe(true)
      }))

    it.scoped("keeps what was written after the file is closed and opened again", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const written = yield* withStore(
          filename,
          Effect.gen(function*() {
            const store = yield* Store
            yield* store.createRun({
              id: "r",
              workflow: "w",
              version: "1",
              input: { a: [1, "ü"] },
              now: T0,
              claim: { owner: "w1", leaseMillis: 1000 }
            })
            yield* store.completeStep({
              owner: "w1",
              step: {
                runId: "r",
                stepId: "s",
                name: "s",
                kind: "step",
                position: 0,
                result: { _tag: "Success", value: 42 },
                failed: false,
                attempts: 1,
                startedAt: T0,
                finishedAt: T0 + 1
              },
              attempt: { runId: "r", stepId: "s", attempt: 1, startedAt: T0, finishedAt: T0 + 1, outcome: "success" },
              now: T0 + 1
            })
            return { run: yield* store.getRun("r"), journal: yield* store.readJournal("r") }
          })
        )
        const read = yield* withStore(
          filename,
          Effect.gen(function*() {
            const store = yield* Store
            return { run: yield* store.getRun("r"), journal: yield* store.readJournal("r") }
          })
        )
        expect(Option.isSome(read.run)).toBe(true)
        expect(read).toEqual(written)
        expect(read.journal.steps).toHaveLength(1)
      }))

    it.scoped("rolls a step's completion back whole when one of its writes fails", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        yield* withStore(
          filename,
          Effect.gen(function*() {
            const store = yield* Store
            yield* store.createRun({
              id: "r",
              workflow: "w",
              version: "1",
              input: null,
              now: T0,
              claim: { owner: "w1", leaseMillis: 1000 }
            })
            const error = yield* Effect.flip(
              store.completeStep({
                owner: "w1",
                step: {
                  runId: "r",
                  stepId: "s",
                  name: "s",
                  kind: "step",
                  position: 0,
                  result: 1,
                  failed: false,
                  attempts: 1,
                  startedAt: T0,
                  finishedAt: T0
                },
                // The schema's CHECK refuses this outcome: the third statement of the transaction fails.
                attempt: {
                  runId: "r",
                  stepId: "s",
                  attempt: 1,
                  startedAt: T0,
                  finishedAt: T0,
                  outcome: "bogus" as "success"
                },
                now: T0 + 5
              })
            )
            expect(error).toMatchObject({ _tag: "StoreUnavailable", operation: "completeStep" })
            expect(error.message).toContain("CHECK constraint failed")
            expect(yield* store.readJournal("r")).toEqual({ steps: [], attempts: [] })
            const run = yield* store.getRun("r")
            expect(Option.getOrThrow(run).updatedAt).toBe(T0)
          })
        )
      }))

    it.scoped("reports a database error as StoreUnavailable naming the operation", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const error = yield* withStore(
          filename,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* sql`DROP TABLE weft_attempts`
            const store = yield* Store
            return yield* Effect.flip(store.readJournal("r"))
          })
        )
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.operation).toBe("readJournal")
        expect(error.detail).toContain("no such table: weft_attempts")
      }))
  })

  describe("opening errors", () => {
    it.scoped("a file that is not a SQLite database gives StoreUnavailable saying so", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "notes.txt")
        Fs.writeFileSync(filename, "these are my notes, not a database\n".repeat(200))
        const exit = yield* Effect.exit(withStore(filename, Effect.void))
        const error = yield* Effect.flip(withStore(filename, Effect.void))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.message).toContain(filename)
        expect(error.message).toContain("not a SQLite database")
        // The file is left as it was.
        expect(Fs.readFileSync(filename, "utf8")).toBe("these are my notes, not a database\n".repeat(200))
      }))

    it.scoped("a directory that cannot be created gives StoreUnavailable saying so", () =>
      Effect.gen(function*() {
        const directory = yield* tempDirectory
        const blocker = Path.join(directory, "file")
        Fs.writeFileSync(blocker, "")
        const error = yield* Effect.flip(withStore(Path.join(blocker, "sub", "weft.db"), Effect.void))
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.message).toContain(`cannot create the directory ${Path.join(blocker, "sub")}`)
      }))

    it.scoped("a directory under one where nothing can be created fails at once instead of hanging", () =>
      Effect.gen(function*() {
        // Node's recursive mkdir never returns for /proc/<missing>: the store must not use it.
        const error = yield* Effect.flip(withStore("/proc/weft-missing/sub/weft.db", Effect.void))
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.message).toContain("cannot create the directory")
      }))

    it.scoped("a directory in place of the file gives StoreUnavailable", () =>
      Effect.gen(function*() {
        const directory = yield* tempDirectory
        const error = yield* Effect.flip(withStore(directory, Effect.void))
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.message).toContain(`cannot open the SQLite store ${directory}`)
      }))
  })

  describe("migrations", () => {
    const applied = Migrations.applied.pipe(Effect.map((rows) => rows.map(({ name, version }) => ({ version, name }))))
    const everyMigration = Migrations.migrations.map(({ name, version }) => ({ version, name }))

    it.scoped("records every migration once; running them again changes nothing", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const [first, schema, again, schemaAgain] = yield* withStore(
          filename,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const schema = () => sql`SELECT name, sql FROM sqlite_master ORDER BY name`
            const first = yield* Migrations.applied
            const before = yield* schema()
            yield* Migrations.run
            yield* Migrations.run
            return [first, before, yield* Migrations.applied, yield* schema()] as const
          })
        )
        expect(first.map(({ name, version }) => ({ version, name }))).toEqual(everyMigration)
        expect(again).toEqual(first)
        expect(schemaAgain).toEqual(schema)
        // Reopening runs the migrator again, and it still finds nothing to do.
        expect(yield* withStore(filename, Migrations.applied)).toEqual(first)
      }))

    it.scoped("a journal written at version 11 reads the same after the upgrade", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const written = yield* Effect.scoped(
          Effect.flatMap(SqliteClient.make({ filename }), (sql) => journalAtVersion11(sql, "sqlite"))
        ).pipe(Effect.provide(Reactivity.layer))
        const journal = yield* withStore(filename, Effect.flatMap(Store, (store) => store.readJournal("old")))
        expect(journal).toEqual({ steps: [written.step], attempts: [written.attempt] })
        expect(yield* withStore(filename, applied)).toEqual(everyMigration)
      }))

    it.scoped("two stores opened at once on the same new file both succeed", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const [left, right] = yield* Effect.all(
          [Layer.build(SqliteStore.layer({ filename })), Layer.build(SqliteStore.layer({ filename }))],
          { concurrency: "unbounded" }
        )
        yield* Effect.provide(
          Effect.flatMap(Store, (store) =>
            store.createRun({ id: "from-left", workflow: "w", version: "1", input: 1, now: T0 })),
          left
        )
        const seen = yield* Effect.provide(
          Effect.gen(function*() {
            const store = yield* Store
            return { run: yield* store.getRun("from-left"), applied: yield* applied }
          }),
          right
        )
        expect(Option.map(seen.run, (run) =>
          run.input)).toEqual(Option.some(1))
        expect(seen.applied).toEqual(everyMigration)
      }))

    // Two connections in one thread: if a fiber yielded inside a write transaction, the other
    // connection's busy handler would block the thread until the busy timeout (SQLITE_BUSY).
    // Yielding every 16 operations makes the fibers interleave wherever they are allowed to.
    it.scoped("two connections in one process interleave without blocking each other", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const clients = yield* Effect.all([
          Layer.build(SqliteClient.layer({ filename })),
          Layer.build(SqliteClient.layer({ filename }))
        ])
        yield* Effect.all(clients.map((client) => Effect.provide(Migrations.run, client)), { concurrency: "unbounded" })
          .pipe(Effect.withMaxOpsBeforeYield(16))
        const [left, right] = yield* Effect.all([
          Layer.build(SqliteStore.layer({ filename })),
          Layer.build(SqliteStore.layer({ filename }))
        ])
        const work = (owner: string) =>
          Effect.gen(function*() {
            const store = yield* Store
            for (let i = 0; i < 20; i++) {
              const id = `${owner}-${i}`
              yield* store.createRun({ id, workflow: "w", version: "1", input: i, now: T0 + i })
              yield* store.claimRun({ id, owner, leaseMillis: 1000, now: T0 + i })
              yield* store.completeStep({
                owner,
                step: {
                  runId: id,
                  stepId: "s",
                  name: "s",
                  kind: "step",
                  position: 0,
                  result: i,
                  failed: false,
                  attempts: 1,
                  startedAt: T0,
                  finishedAt: T0
                },
                attempt: undefined,
                now: T0 + i
              })
            }
          })
        yield* Effect.all([Effect.provide(work("left"), left), Effect.provide(work("right"), right)], {
          concurrency: "unbounded"
        }).pipe(Effect.withMaxOpsBeforeYield(16))
        const runs = yield* Effect.provide(Effect.flatMap(Store, (store) => store.listRuns({})), left)
        expect(runs).toHaveLength(40)
        expect(yield* Effect.provide(applied, right)).toEqual(everyMigration)
      }))

    it.scoped("two processes opening the same new file at once both succeed", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        // Both children load first, then open at the same instant, so that their migrations race.
        const startAt = Date.now() + 4000
        const results = yield* Effect.all([openInChild(filename, startAt), openInChild(filename, startAt)], {
          concurrency: "unbounded"
        })
        expect(results).toEqual([{ code: 0, stderr: "opened\n" }, { code: 0, stderr: "opened\n" }])
        expect(yield* withStore(filename, applied)).toEqual(everyMigration)
      }), 60_000)

    it.scoped(
      "waits for another process that holds the new file locked past the busy timeout",
      () =>
        Effect.gen(function*() {
          const filename = Path.join(yield* tempDirectory, "weft.db")
          const holder = yield* holdLocked(filename, 600)
          // The busy handler gives up after 300 ms; the store retries, and opens once the lock is gone.
          const applied = yield* withStore(filename, Migrations.applied, { busyTimeoutMillis: 300 })
          expect(applied.map((migration) => migration.version)).toEqual(everyMigration.map((m) => m.version))
          expect(yield* holder).toBe(0)
        }),
      60_000
    )

    it.scoped("refuses a database migrated by a newer weft with SchemaTooNew", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        yield* withStore(
          filename,
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql`INSERT INTO weft_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)`
          )
        )
        const error = yield* Effect.flip(withStore(filename, Effect.void))
        expect(error._tag).toBe("SchemaTooNew")
        expect(error).toMatchObject({ found: 999, supported: Migrations.latestVersion })
      }))
  })

  describe("claimNext", () => {
    it.scoped("two stores on the same file claiming at once never take the same run", () =>
      Effect.gen(function*() {
        const filename = Path.join(yield* tempDirectory, "weft.db")
        const stores = yield* Effect.all(
          [0, 1].map(() =>
            Effect.flatMap(Layer.build(SqliteStore.layer({ filename })), (context) => Effect.provide(Store, context))
          ),
          { concurrency: "unbounded" }
        )
        const ids = Array.from({ length: 100 }, (_, i) => `run-${String(i).padStart(3, "0")}`)
        yield* Effect.forEach(
          ids,
          (id, i) =>
            stores[i % 2].createRun({ id, workflow: "w", version: "1", input: null, priority: i % 3, now: T0 }),
          { discard: true }
        )
        const claimer = (index: number) =>
          Effect.gen(function*() {
            const claimed: Array<string> = []
            while (true) {
              const batch = yield* stores[index].claimNext({
                owner: `w${index}`,
                queues: ["default"],
                limit: 5,
                leaseMillis: 60_000,
                now: T0 + 1
              })
              if (batch.length === 0) return claimed
              claimed.push(...batch.map((run) => run.id))
              yield* Effect.yieldNow()
            }
          })
        const claims = yield* Effect.all([claimer(0), claimer(1)], { concurrency: "unbounded" })
        const all = claims.flat()
        expect(all).toHaveLength(ids.length)
        expect([...new Set(all)].sort()).toEqual(ids)
        for (const [index, claimed] of claims.entries()) {
          for (const id of claimed) {
            const run = Option.getOrThrow(yield* stores[1 - index].getRun(id))
            expect(run).toMatchObject({ status: "running", leaseOwner: `w${index}`, recoveries: 0 })
          }
        }
      }))
  })

  describe("schema dump", () => {
    it.effect("schema/sqlite.sql is the schema the migrations build", () =>
      Effect.gen(function*() {
        const live = yield* freshSqliteSchema
        const committed = readCommitted("sqlite.sql")
        expect(live, `schema/sqlite.sql is out of date: regenerate it with ${regenerateCommand}`).toBe(committed)
      }))

    it("schema/pg.sql is the PostgreSQL DDL of the migrations", () => {
      expect(pgSchema(), `schema/pg.sql is out of date: regenerate it with ${regenerateCommand}`).toBe(
        readCommitted("pg.sql")
      )
    })

    it("splits migrations into whole statements", () => {
      expect(Migrations.statements("CREATE TABLE a (x TEXT);\nCREATE INDEX b ON a (x);\n")).toEqual([
        "CREATE TABLE a (x TEXT)",
        "CREATE INDEX b ON a (x)"
      ])
      // Versions increase strictly; they may skip numbers that other changes hold.
      const versions = Migrations.migrations.map((migration) => migration.version)
      expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b))
      expect(versions[0]).toBe(1)
    })
  })
})

const readCommitted = (name: string): string => {
  const path = Path.join(schemaDirectory, name)
  return Fs.existsSync(path) ? Fs.readFileSync(path, "utf8") : `(schema/${name} is missing)`
}

const runtimeDirectory = Url.fileURLToPath(new URL("..", import.meta.url))
const storeModule = Url.pathToFileURL(Path.join(runtimeDirectory, "src", "SqliteStore.ts")).href

/** Opens the store on `filename` in a child Node process (tsx loads the TypeScript sources). */
const openInChild = (filename: string, startAt: number) =>
  Effect.async<{ readonly code: number | null; readonly stderr: string }>((resume) => {
    const script = `
      const SqliteStore = await import(${JSON.stringify(storeModule)})
      const Effect = await import("effect/Effect")
      const Layer = await import("effect/Layer")
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, ${startAt} - Date.now())))
      await Effect.runPromise(Effect.scoped(Layer.build(SqliteStore.layer({ filename: process.argv[1] }))))
      process.stderr.write("opened\\n")
    `
    const child = ChildProcess.spawn(
      process.execPath,
      ["--import", "tsx", "--conditions", "@weft/source", "--input-type=module", "-e", script, filename],
      { cwd: runtimeDirectory, stdio: ["ignore", "ignore", "pipe"] }
    )
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += String(chunk)))
    child.on("close", (code) => resume(Effect.succeed({ code, stderr })))
    return Effect.sync(() => child.kill())
  })

/**
 * Starts a child process that takes an exclusive lock on a new rollback-mode database and holds
 * it for `millis`; succeeds once the lock is held, with an effect that waits for the child's exit.
 */
const holdLocked = (filename: string, millis: number) =>
  Effect.async<Effect.Effect<number | null>, Error>((resume) => {
    const script = `
      const SqliteClient = await import("@effect/sql-sqlite-node/SqliteClient")
      const SqlClient = await import("@effect/sql/SqlClient")
      const Effect = await import("effect/Effect")
      await Effect.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe("BEGIN EXCLUSIVE")
        yield* sql.unsafe("CREATE TABLE held (x INTEGER)")
        process.stdout.write("locked\\n")
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ${millis})))
        yield* sql.unsafe("COMMIT")
      }).pipe(Effect.provide(SqliteClient.layer({ filename: process.argv[1], disableWAL: true }))))
    `
    const child = ChildProcess.spawn(process.execPath, ["--input-type=module", "-e", script, filename], {
      cwd: runtimeDirectory,
      stdio: ["ignore", "pipe", "inherit"]
    })
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve))
    child.stdout.on("data", (chunk) => {
      if (String(chunk).includes("locked")) resume(Effect.succeed(Effect.promise(() => exited)))
    })
    child.on("close", (code) => resume(Effect.fail(new Error(`the lock holder exited early (${code})`))))
    return Effect.sync(() => child.kill())
  })
