/**
 * The PostgreSQL store on a real server (see pg.ts): the store contract, each test in a schema of
 * its own, then what only PostgreSQL has (migrations under concurrent starters, the committed
 * schema dump checked against the live catalogs, group commit across pooled connections, and an
 * unreachable server).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as FreshRuns from "../src/internal/FreshRuns.js"
import * as Migrations from "../src/Migrations.js"
import * as PgStore from "../src/PgStore.js"
import * as SqlStore from "../src/SqlStore.js"
import type { StoreService } from "../src/Store.js"
import { Store } from "../src/Store.js"
import { pgCatalogSchema, pgSchema, regenerateCommand, schemaDirectory } from "./dumpSchema.js"
import { type Interval, maxOverlap, maxOverlapBy } from "./intervals.js"
import {
  attempt,
  complete,
  createClaimed,
  fencedOutWriteInBatch,
  journalAtVersion11,
  step,
  T0,
  untilSuspended
} from "./journalRows.js"
import { createDatabase, dropDatabase, query, uniqueName, useTestDatabase, withDatabase } from "./pg.js"
import { storeConformance } from "./StoreConformance.js"

const database = useTestDatabase()

/** The URL of a new, empty schema in this file's database (its only entry on the search path). */
const freshSchema = Effect.gen(function*() {
  const url = database()
  const schema = uniqueName("s")
  yield* Effect.promise(() => query(url, `CREATE SCHEMA ${schema}`))
  return withDatabase(url, new URL(url).pathname.slice(1), schema)
})

/** A store in a new, empty schema. */
const freshStore = () => Layer.unwrapEffect(Effect.map(freshSchema, (url) => PgStore.layer({ url })))

storeConformance("postgres", freshStore)

const withStore = <A, E>(url: string, use: Effect.Effect<A, E, Store | SqlClient.SqlClient>) =>
  Effect.provide(use, PgStore.layer({ url }))

describe("PgStore", () => {
  describe("migrations", () => {
    const applied = Migrations.applied.pipe(Effect.map((rows) => rows.map(({ name, version }) => ({ version, name }))))
    const everyMigration = Migrations.migrations.map(({ name, version }) => ({ version, name }))

    it.effect("records every migration once; running them again changes nothing", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        const [first, schema, again, schemaAgain] = yield* withStore(
          url,
          Effect.gen(function*() {
            const first = yield* Migrations.applied
            const before = yield* pgCatalogSchema
            yield* Migrations.run
            yield* Migrations.run
            return [first, before, yield* Migrations.applied, yield* pgCatalogSchema] as const
          })
        )
        expect(first.map(({ name, version }) => ({ version, name }))).toEqual(everyMigration)
        expect(schema).toContain("CREATE TABLE weft_runs (")
        expect(again).toEqual(first)
        expect(schemaAgain).toEqual(schema)
        // Opening again runs the migrator again, and it still finds nothing to do.
        expect(yield* withStore(url, Migrations.applied)).toEqual(first)
      }))

    it.live("several stores opened at once on the same new database all succeed", () =>
      Effect.gen(function*() {
        const url = yield* Effect.acquireRelease(
          Effect.promise(() => createDatabase()),
          (url) => Effect.promise(() => dropDatabase(url))
        )
        const layers = yield* Effect.all(
          Array.from({ length: 4 }, () => Layer.build(PgStore.layer({ url }))),
          { concurrency: "unbounded" }
        )
        yield* Effect.provide(
          Effect.flatMap(Store, (store) =>
            store.createRun({ id: "from-0", workflow: "w", version: "1", input: 1, now: T0 })),
          layers[0]
        )
        for (const context of layers) {
          const seen = yield* Effect.provide(
            Effect.gen(function*() {
              const store = yield* Store
              return { run: yield* store.getRun("from-0"), applied: yield* applied }
            }),
            context
          )
          expect(Option.map(seen.run, (run) =>
            run.input)).toEqual(Option.some(1))
          expect(seen.applied).toEqual(everyMigration)
        }
      }).pipe(Effect.scoped))

    it.effect("a journal written at version 11 reads the same after the upgrade", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        const written = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => journalAtVersion11(sql, "pg")).pipe(
          Effect.provide(pgClient(url))
        )
        const journal = yield* withStore(url, Effect.flatMap(Store, (store) => store.readJournal("old")))
        expect(journal).toEqual({ steps: [written.step], attempts: [written.attempt] })
        expect(yield* withStore(url, applied)).toEqual(everyMigration)
      }))

    it.effect("refuses a database migrated by a newer weft with SchemaTooNew", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        yield* withStore(
          url,
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql`INSERT INTO weft_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)`
          )
        )
        const error = yield* Effect.flip(withStore(url, Effect.void))
        expect(error._tag).toBe("SchemaTooNew")
        expect(error).toMatchObject({ found: 999, supported: Migrations.latestVersion })
      }))
  })

  describe("values", () => {
    it.effect("reads BIGINT times back as numbers", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        const run = yield* withStore(
          url,
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
            return Option.getOrThrow(yield* store.getRun("r"))
          })
        )
        expect(run).toMatchObject({ createdAt: T0, startedAt: T0, leaseExpiresAt: T0 + 1000, priority: 0 })
        expect(typeof run.createdAt).toBe("number")
      }))
  })

  describe("journal rows", () => {
    it.effect("a step that succeeded at its first try is one row: its attempt is kept in it and read back", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        const { attempts, journal, steps } = yield* withStore(
          url,
          Effect.gen(function*() {
            const store = yield* Store
            const sql = yield* SqlClient.SqlClient
            yield* createClaimed(store, ["r"])
            yield* complete(store, "r", 0)
            // The last step goes with the run's end, through the combined statement.
            yield* store.finishRun({
              id: "r",
              owner: "w1",
              outcome: { status: "succeeded", output: null },
              now: T0 + 9,
              step: { step: step("r", 1), attempt: attempt("r", 1) }
            })
            return {
              steps: yield* sql`SELECT step_id, attempt_implied FROM weft_steps WHERE run_id = 'r' ORDER BY step_id`,
              attempts: yield* sql`SELECT step_id FROM weft_attempts WHERE run_id = 'r'`,
              journal: yield* store.readJournal("r")
            }
          })
        )
        expect(steps).toEqual([{ step_id: "s0", attempt_implied: 1 }, { step_id: "s1", attempt_implied: 1 }])
        expect(attempts).toEqual([])
        expect(journal.attempts).toEqual([attempt("r", 0), attempt("r", 1)])
      }))
  })

  describe("schema dump", () => {
    it.effect("schema/pg.sql, run on a live server, builds exactly the schema the migrations build", () =>
      Effect.gen(function*() {
        const committed = readCommitted("pg.sql")
        expect(pgSchema(), `schema/pg.sql is out of date: regenerate it with ${regenerateCommand}`).toBe(committed)
        const migrated = yield* withStore(yield* freshSchema, pgCatalogSchema)
        const fromDump = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          for (const statement of Migrations.statements(committed.replace(/^--.*$/gm, ""))) {
            yield* sql.unsafe(statement)
          }
          return yield* pgCatalogSchema
        }).pipe(Effect.provide(pgClient(yield* freshSchema)))
        expect(migrated).toContain("CREATE TABLE weft_steps (")
        expect(migrated).toContain(`CREATE UNIQUE INDEX weft_runs_idempotency ON weft_runs USING btree`)
        expect(fromDump).toBe(migrated)
      }))
  })

  describe("opening errors", () => {
    it.live("a server that does not answer gives StoreUnavailable naming it", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(withStore("postgres://weft:secret@127.0.0.1:1/nope", Effect.void))
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.message).toContain("cannot connect to the PostgreSQL store postgres://weft:***@127.0.0.1:1/nope")
        expect(error.message).toContain("ECONNREFUSED")
        expect(error.message).not.toContain("secret")
      }))

    it.live("a database that does not exist gives StoreUnavailable saying so", () =>
      Effect.gen(function*() {
        const url = withDatabase(database(), "weft_no_such_database")
        const error = yield* Effect.flip(withStore(url, Effect.void))
        expect(error._tag).toBe("StoreUnavailable")
        expect(error.message).toContain(`database "weft_no_such_database" does not exist`)
      }))

    it.live("a URL that is not a PostgreSQL URL gives StoreUnavailable", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(withStore("mysql://127.0.0.1/x", Effect.void))
        expect(error).toMatchObject({ _tag: "StoreUnavailable", operation: "open" })
        expect(error.message).toContain("not a postgres:// or postgresql:// URL")
      }))

    it.live("a statement the database refuses is a permanent StoreUnavailable; a server that is gone is not", () =>
      Effect.gen(function*() {
        const refused = yield* withStore(
          yield* freshSchema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* sql`DROP TABLE weft_steps`
            return yield* Effect.flip(Effect.flatMap(Store, (store) => store.readJournal("r")))
          })
        )
        expect(refused).toMatchObject({ _tag: "StoreUnavailable", operation: "readJournal", permanent: true })
        expect(refused.detail).toContain("42P01")
        const gone = yield* Effect.flip(withStore("postgres://weft@127.0.0.1:1/nope", Effect.void))
        expect(gone).toMatchObject({ _tag: "StoreUnavailable", operation: "open" })
        expect("permanent" in gone && gone.permanent).toBeFalsy()
      }))

    it.live("a database error later is StoreUnavailable naming the operation", () =>
      Effect.gen(function*() {
        const error = yield* withStore(
          yield* freshSchema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* sql`DROP TABLE weft_attempts`
            return yield* Effect.flip(Effect.flatMap(Store, (store) => store.readJournal("r")))
          })
        )
        expect(error).toMatchObject({ _tag: "StoreUnavailable", operation: "readJournal" })
        expect(error.detail).toContain(`relation "weft_attempts" does not exist`)
      }))
  })

  describe("claimNext", () => {
    it.live(
      "4 claimers on separate pools drain 200 runs in batches of 5; each run is claimed exactly once",
      () =>
        Effect.gen(function*() {
          const url = yield* freshSchema
          const stores = yield* Effect.all(
            Array.from(
              { length: 4 },
              () => Effect.flatMap(Layer.build(PgStore.layer({ url })), (context) => Effect.provide(Store, context))
            ),
            { concurrency: "unbounded" }
          )
          const ids = Array.from({ length: 200 }, (_, i) => `run-${String(i).padStart(3, "0")}`)
          yield* Effect.forEach(
            ids,
            (id, i) => stores[0].createRun({ id, workflow: "w", version: "1", input: null, priority: i % 3, now: T0 }),
            { concurrency: 10, discard: true }
          )
          // Every claim is at T0 + 1 with a lease of a minute: no lease expires during the test.
          const claimer = (store: StoreService, owner: string) =>
            Effect.gen(function*() {
              const claimed: Array<string> = []
              while (true) {
                const batch = yield* store.claimNext({
                  owner,
                  queues: ["default"],
                  limit: 5,
                  leaseMillis: 60_000,
                  now: T0 + 1
                })
                if (batch.length === 0) return claimed
                expect(batch.length).toBeLessThanOrEqual(5)
                for (const run of batch) expect(run).toMatchObject({ status: "running", leaseOwner: owner })
                claimed.push(...batch.map((run) => run.id))
              }
            })
          const claims = yield* Effect.all(stores.map((store, i) => claimer(store, `w${i}`)), {
            concurrency: "unbounded"
          })
          const all = claims.flat()
          expect(all).toHaveLength(ids.length)
          expect([...new Set(all)].sort()).toEqual(ids)
          const rows = yield* Effect.promise(
            () =>
              query(url, "SELECT id, lease_owner, status, recoveries FROM weft_runs ORDER BY id") as Promise<
                ReadonlyArray<{ id: string; lease_owner: string; status: string; recoveries: number }>
              >
          )
          const ownerOf = new Map(claims.flatMap((claimed, i) => claimed.map((id) => [id, `w${i}`] as const)))
          expect(rows.map((row) => row.lease_owner)).toEqual(rows.map((row) => ownerOf.get(row.id)))
          expect(new Set(rows.map((row) => `${row.status}/${row.recoveries}`))).toEqual(new Set(["running/0"]))
        }).pipe(Effect.scoped),
      60_000
    )

    it.live(
      "4 claimers on separate pools, a queue of concurrency 3 whose runs have keys of limit 1: neither limit is ever exceeded",
      () =>
        Effect.gen(function*() {
          const url = yield* freshSchema
          const stores = yield* Effect.all(
            Array.from(
              { length: 4 },
              () => Effect.flatMap(Layer.build(PgStore.layer({ url })), (context) => Effect.provide(Store, context))
            ),
            { concurrency: "unbounded" }
          )
          yield* stores[0].declareQueues({
            queues: [{ name: "emails", concurrency: 3, rateLimit: undefined }],
            keyed: [],
            by: "test",
            now: T0
          })
          const keyOf = (i: number) => `k${i % 6}`
          const ids = Array.from({ length: 48 }, (_, i) => `run-${String(i).padStart(2, "0")}`)
          yield* Effect.forEach(
            ids,
            (id, i) =>
              stores[i % 4].createRun({
                id,
                workflow: "w",
                version: "1",
                input: null,
                queue: "emails",
                concurrencyKey: keyOf(i),
                now: T0
              }),
            { concurrency: 8, discard: true }
          )
          // Each claimed run is held for 20 ms, from the claim's answer to its end's request: inside
          // the time the store has it running, so an overlap seen here was an overlap there.
          const intervals: Array<Interval> = []
          let finished = 0
          const claimer = (store: StoreService, owner: string) =>
            Effect.scoped(Effect.gen(function*() {
              while (finished < ids.length) {
                const batch = yield* store.claimNext({
                  owner,
                  queues: ["emails"],
                  limit: 2,
                  leaseMillis: 60_000,
                  now: Date.now()
                })
                if (batch.length === 0) yield* Effect.sleep("2 millis")
                for (const run of batch) {
                  const start = Date.now()
                  yield* Effect.forkScoped(Effect.gen(function*() {
                    yield* Effect.sleep("20 millis")
                    intervals.push({ start, end: Date.now(), label: `${run.id}/${run.concurrencyKey}` })
                    yield* store.finishRun({
                      id: run.id,
                      owner,
                      outcome: { status: "succeeded", output: 1 },
                      now: Date.now()
                    })
                    finished++
                  }))
                }
              }
            }))
          yield* Effect.all(stores.map((store, i) => claimer(store, `w${i}`)), { concurrency: "unbounded" }).pipe(
            Effect.timeout("40 seconds")
          )
          expect(intervals).toHaveLength(ids.length)
          const busiest = maxOverlap(intervals)
          expect(busiest.count, `runs at once: ${busiest.labels.join(", ")}`).toBeLessThanOrEqual(3)
          // The claimers did overlap: the limit was met, not just never reached.
          expect(busiest.count).toBeGreaterThanOrEqual(2)
          const perKey = maxOverlapBy(intervals, (interval) => interval.label.split("/")[1])
          expect(perKey[0].count, `runs of key ${perKey[0].group} at once: ${perKey[0].labels.join(", ")}`).toBe(1)
          const rows = yield* Effect.promise(() => query(url, "SELECT status FROM weft_runs"))
          expect(new Set(rows.map((row) => (row as { status: string }).status))).toEqual(new Set(["succeeded"]))
        }).pipe(Effect.scoped),
      60_000
    )

    it.live("skips a runnable row another transaction has locked instead of waiting for it", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        const store = yield* Effect.flatMap(
          Layer.build(PgStore.layer({ url })),
          (context) => Effect.provide(Store, context)
        )
        for (const id of ["a", "b", "c"]) {
          yield* store.createRun({ id, workflow: "w", version: "1", input: null, now: T0 })
        }
        const client = yield* Effect.flatMap(
          Layer.build(pgClient(url)),
          (context) => Effect.provide(SqlClient.SqlClient, context)
        )
        const held = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          client.withTransaction(
            client`SELECT id FROM weft_runs WHERE id = 'a' FOR UPDATE`.pipe(
              Effect.zipRight(Deferred.succeed(held, undefined)),
              Effect.zipRight(Deferred.await(release))
            )
          )
        )
        yield* Deferred.await(held)
        const claimed = yield* store.claimNext({
          owner: "w1",
          queues: ["default"],
          limit: 10,
          leaseMillis: 60_000,
          now: T0 + 1
        }).pipe(Effect.timeout("5 seconds"))
        expect(claimed.map((run) => run.id)).toEqual(["b", "c"])
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        const rest = yield* store.claimNext({
          owner: "w1",
          queues: ["default"],
          limit: 10,
          leaseMillis: 60_000,
          now: T0 + 1
        })
        expect(rest.map((run) => run.id)).toEqual(["a"])
      }).pipe(Effect.scoped))
  })

  describe("group commit", () => {
    it.live("commits many concurrent step completions in fewer transactions, each visible when it returns", () =>
      Effect.gen(function*() {
        const url = yield* freshSchema
        const { store, transactions } = yield* countedStore(url)
        const runs = Array.from({ length: 40 }, (_, i) => `run-${i}`)
        yield* createClaimed(store, runs)
        const reader = yield* Effect.provide(
          PgClient.make({ url: Redacted.make(url), maxConnections: 1 }),
          Reactivity.layer
        )
        const before = transactions()
        const calls = 5
        yield* Effect.forEach(
          runs,
          (runId) =>
            Effect.forEach(Array.from({ length: calls }, (_, i) => i), (i) =>
              Effect.gen(function*() {
                yield* complete(store, runId, i)
                const rows =
                  yield* reader`SELECT step_id FROM weft_steps WHERE run_id = ${runId} AND step_id = ${`s${i}`}`
                expect(rows).toHaveLength(1)
              }), { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        const used = transactions() - before
        expect(used).toBeGreaterThan(0)
        // Every batch counts (a transaction or one statement), and a batch of completions is one
        // round trip: fewer writes queue behind each than behind a transaction of five statements.
        expect(used).toBeLessThanOrEqual(runs.length * calls / 3)
        const journal = yield* store.readJournal("run-7")
        expect(journal.steps.map((s) => s.stepId)).toEqual(["s0", "s1", "s2", "s3", "s4"])
        expect(journal.attempts).toHaveLength(5)
      }).pipe(Effect.scoped))

    it.live("fails a fenced-out write in the middle of a batch with LeaseLost; its neighbours commit", () =>
      Effect.gen(function*() {
        const opened = yield* countedStore(yield* freshSchema)
        yield* fencedOutWriteInBatch(opened.store, opened.transactions, queueBehindFirst(opened))
      }).pipe(Effect.scoped))

    it.live("fails every write of a batch the database refuses with StoreUnavailable, and writes none of it", () =>
      Effect.gen(function*() {
        const opened = yield* countedStore(yield* freshSchema)
        const { store } = opened
        yield* createClaimed(store, ["a", "b"])
        const release = yield* queueBehindFirst(opened)
        const fibers = [
          yield* Effect.fork(complete(store, "a", 0)),
          // An INTEGER column refuses 0.5: the batch's INSERT fails and the transaction rolls back.
          yield* Effect.fork(complete(store, "b", 0, "w1", { position: 0.5 })),
          yield* Effect.fork(store.renewLease({ id: "a", owner: "w1", leaseMillis: 1, now: T0 + 3 }))
        ]
        yield* untilSuspended(fibers)
        yield* release
        const errors = yield* Effect.forEach(fibers, (fiber) => Effect.flip(Fiber.join(fiber)))
        expect(errors.map((error) => [error._tag, "operation" in error ? error.operation : ""])).toEqual([
          ["StoreUnavailable", "completeStep"],
          ["StoreUnavailable", "completeStep"],
          ["StoreUnavailable", "renewLease"]
        ])
        expect(yield* store.readJournal("a")).toEqual({ steps: [], attempts: [] })
        expect(Option.getOrThrow(yield* store.getRun("a"))).toMatchObject({
          updatedAt: T0,
          leaseExpiresAt: T0 + 60_000
        })
        // The writer goes on.
        yield* complete(store, "a", 0)
        expect((yield* store.readJournal("a")).steps).toHaveLength(1)
      }).pipe(Effect.scoped))
  })
})

describe("PgStore queue path", () => {
  it.live("a batch of step completions and run ends is one statement; a stale owner's end is refused alone", () =>
    Effect.gen(function*() {
      const opened = yield* countedStore(yield* freshSchema)
      const { store } = opened
      yield* createClaimed(store, ["a", "b", "c"])
      yield* store.claimRun({ id: "b", owner: "w2", leaseMillis: 60_000, now: T0 + 1, force: true })
      const release = yield* queueBehindFirst(opened)
      const before = opened.transactions()
      const succeeded = { status: "succeeded" as const, output: 1 }
      const fibers = [
        yield* Effect.fork(complete(store, "a", 0)),
        yield* Effect.fork(store.finishRun({ id: "b", owner: "w1", outcome: succeeded, now: T0 + 5 })),
        yield* Effect.fork(complete(store, "c", 0)),
        // The same run again: a second segment, after the first.
        yield* Effect.fork(store.finishRun({ id: "c", owner: "w1", outcome: succeeded, now: T0 + 6 })),
        yield* Effect.fork(store.finishRun({ id: "a", owner: "w1", outcome: succeeded, now: T0 + 7 }))
      ]
      yield* untilSuspended(fibers)
      yield* release
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(opened.transactions() - before).toBe(1)
      expect(exits.map((exit) => Exit.isSuccess(exit) ? "ok" : Cause.squash(exit.cause))).toEqual([
        "ok",
        expect.objectContaining({ _tag: "LeaseLost", runId: "b", owner: "w1" }),
        "ok",
        "ok",
        "ok"
      ])
      for (const id of ["a", "c"]) {
        expect(Option.getOrThrow(yield* store.getRun(id))).toMatchObject({ status: "succeeded", leaseOwner: undefined })
        expect((yield* store.readJournal(id)).steps.map((s) => s.stepId)).toEqual(["s0"])
      }
      expect(Option.getOrThrow(yield* store.getRun("b"))).toMatchObject({ status: "running", leaseOwner: "w2" })
    }).pipe(Effect.scoped))

  it.live("several writers: many runs' completions and ends commit concurrently, each with its own answer", () =>
    Effect.gen(function*() {
      const url = yield* freshSchema
      const client = yield* Effect.provide(
        PgClient.make({ url: Redacted.make(url), maxConnections: 6 }),
        Reactivity.layer
      )
      let batches = 0
      const store = yield* SqlStore.makeWith({ writers: 4, onBatch: () => batches++ }).pipe(
        Effect.provideService(SqlClient.SqlClient, client)
      )
      const runs = Array.from({ length: 40 }, (_, i) => `run-${i}`)
      yield* createClaimed(store, runs)
      // Every fourth run was taken over by w2: all of w1's writes to it fail, the others commit.
      const stolen = runs.filter((_, i) => i % 4 === 0)
      for (const id of stolen) {
        yield* store.claimRun({ id, owner: "w2", leaseMillis: 60_000, now: T0 + 1, force: true })
      }
      const outcomes = yield* Effect.forEach(
        runs,
        (runId) =>
          Effect.gen(function*() {
            for (let i = 0; i < 5; i++) yield* complete(store, runId, i)
            yield* store.finishRun({
              id: runId,
              owner: "w1",
              outcome: { status: "succeeded", output: runId },
              now: T0 + 9
            })
            return "done"
          }).pipe(Effect.catchTag("LeaseLost", () => Effect.succeed("lost"))),
        { concurrency: "unbounded" }
      )
      expect(outcomes).toEqual(runs.map((id) => stolen.includes(id) ? "lost" : "done"))
      expect(batches).toBeLessThan(runs.length * 6)
      for (const id of runs) {
        const run = Option.getOrThrow(yield* store.getRun(id))
        const journal = yield* store.readJournal(id)
        if (stolen.includes(id)) {
          expect(run).toMatchObject({ status: "running", leaseOwner: "w2" })
          expect(journal).toEqual({ steps: [], attempts: [] })
        } else {
          expect(run).toMatchObject({ status: "succeeded", output: id, leaseOwner: undefined })
          expect(journal.steps.map((s) => s.stepId)).toEqual(["s0", "s1", "s2", "s3", "s4"])
          expect(journal.attempts).toHaveLength(5)
        }
      }
    }).pipe(Effect.scoped))

  it.live("a claim marks the runs it starts for the first time as having an empty journal, and no other", () =>
    Effect.gen(function*() {
      const store = yield* Effect.flatMap(
        Layer.build(PgStore.layer({ url: yield* freshSchema })),
        (context) => Effect.provide(Store, context)
      )
      for (const id of ["a", "b"]) yield* store.createRun({ id, workflow: "w", version: "1", input: null, now: T0 })
      const claim = (now: number) =>
        store.claimNext({ owner: "w1", queues: ["default"], limit: 10, leaseMillis: 1_000, now })
      const first = yield* claim(T0 + 1)
      expect(first.map((run) => [run.id, FreshRuns.take(run)])).toEqual([["a", true], ["b", true]])
      // Taken once: a second execution of the same record reads the journal.
      expect(FreshRuns.take(first[0])).toBe(false)
      yield* complete(store, "a", 0)
      yield* store.suspendRun({ id: "b", owner: "w1", wakeAt: T0 + 2, reason: "sleeping", now: T0 + 1 })
      // a's lease expired (a recovery), b is a sleeper that woke: neither is fresh.
      const second = yield* claim(T0 + 5_000)
      expect(second.map((run) => [run.id, run.recoveries, FreshRuns.take(run)]).sort()).toEqual([
        ["a", 1, false],
        ["b", 0, false]
      ])
      const created = yield* store.createRun({
        id: "c",
        workflow: "w",
        version: "1",
        input: null,
        now: T0,
        claim: { owner: "w1", leaseMillis: 1_000 }
      })
      expect(FreshRuns.take(created.run)).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a prepared statement the server refuses after a schema change is prepared again", () =>
    Effect.gen(function*() {
      const url = yield* freshSchema
      const store = yield* Effect.flatMap(
        Layer.build(PgStore.layerWith({ url, maxConnections: 1 })),
        (context) => Effect.provide(Store, context)
      )
      yield* store.createRun({ id: "a", workflow: "w", version: "1", input: null, now: T0 })
      expect(Option.isSome(yield* store.getRun("a"))).toBe(true)
      yield* Effect.promise(() => query(url, "ALTER TABLE weft_runs ADD COLUMN extra TEXT"))
      // `SELECT *` prepared before the change now has another result type: refused once at most.
      const retried = yield* store.getRun("a").pipe(
        Effect.retry({ times: 1, while: (error) => error._tag === "StoreUnavailable" })
      )
      expect(Option.getOrThrow(retried)).toMatchObject({ id: "a", status: "queued" })
    }).pipe(Effect.scoped))
})

const readCommitted = (name: string): string => {
  const path = Path.join(schemaDirectory, name)
  return Fs.existsSync(path) ? Fs.readFileSync(path, "utf8") : `(schema/${name} is missing)`
}

/** A bare client on `url`, without the store's migrations. */
const pgClient = (url: string) =>
  Layer.scoped(SqlClient.SqlClient, PgClient.make({ url: Redacted.make(url), maxConnections: 2 })).pipe(
    Layer.provide(Reactivity.layer)
  )

/** Yields until every fiber waits (a submitted request waits on its result), so that all are queued. */
/** A store on `url`, and the number of batches it has committed so far. */
const countedStore = (url: string) =>
  Effect.gen(function*() {
    const client = yield* Effect.provide(
      PgClient.make({ url: Redacted.make(url), maxConnections: 4 }),
      Reactivity.layer
    )
    // On PostgreSQL a batch of step completions is one statement, with no transaction of its own:
    // what is counted is the batches committed (each one transaction or one statement).
    let batches = 0
    const store = yield* SqlStore.makeWith({ onBatch: () => batches++ }).pipe(
      Effect.provideService(SqlClient.SqlClient, client)
    )
    return { store, client, transactions: () => batches }
  })

/**
 * Locks run `first`'s row from another transaction and queues a first write on it, which waits for
 * that lock inside the store's writer, so that the writes queued next wait for that commit and go
 * together in the following batch. The returned effect lets the lock go and waits for the first write.
 */
const queueBehindFirst = (opened: Effect.Effect.Success<ReturnType<typeof countedStore>>) =>
  Effect.gen(function*() {
    const { client, store, transactions } = opened
    yield* createClaimed(store, ["first"])
    const held = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(
      client.withTransaction(
        client`SELECT id FROM weft_runs WHERE id = 'first' FOR UPDATE`.pipe(
          Effect.zipRight(Deferred.succeed(held, undefined)),
          Effect.zipRight(Deferred.await(release))
        )
      )
    )
    yield* Deferred.await(held)
    const before = transactions()
    const first = yield* Effect.fork(complete(store, "first", 0))
    while (transactions() === before) yield* Effect.yieldNow()
    return Effect.all([Deferred.succeed(release, undefined), Fiber.join(holder), Fiber.join(first)], {
      discard: true
    })
  })
