/**
 * Group commit: first the writer on its own (batches form only while a commit is in flight, each
 * request gets its own result, the scope owns the writer), then the SQL store's journal writes on
 * a SQLite file, counting the transactions the store opens.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as GroupCommit from "../src/internal/GroupCommit.js"
import * as SqlStore from "../src/SqlStore.js"
import {
  attempt,
  complete,
  countTransactions,
  createClaimed,
  fencedOutWriteInBatch,
  T0,
  untilSuspended
} from "./journalRows.js"

/**
 * A group commit whose commit records each batch and answers each request with its value, or
 * fails the ones named "lease lost"; while `gate` is set, the batch in flight waits on it.
 */
const recorder = (options: { readonly maxBatch?: number } = {}) =>
  Effect.gen(function*() {
    const batches: Array<ReadonlyArray<string>> = []
    const started = yield* Deferred.make<void>()
    const gate = yield* Deferred.make<void>()
    let gated = true
    const group = yield* GroupCommit.make<string, string, string>({
      maxBatch: options.maxBatch,
      closed: (request) => `closed: ${request}`,
      commit: (batch) =>
        Effect.gen(function*() {
          batches.push(batch)
          if (gated) {
            yield* Deferred.succeed(started, undefined)
            yield* Deferred.await(gate)
          }
          if (batch.includes("fail the batch")) return yield* Effect.fail("batch failed")
          if (batch.includes("die")) return yield* Effect.die(new Error("a bug"))
          return batch.map((request) => request === "lease lost" ? Exit.fail("lost") : Exit.succeed(`ok ${request}`))
        })
    })
    const open = Effect.suspend(() => {
      gated = false
      return Deferred.succeed(gate, undefined)
    })
    return { group, batches, started: Deferred.await(started), open, ungated: () => gated = false }
  })

describe("GroupCommit", () => {
  it.scoped("commits a request that finds the writer idle at once, alone, with no timer", () =>
    Effect.gen(function*() {
      const { batches, group, ungated } = yield* recorder()
      ungated()
      // Virtual time never moves here: a batching window on a timer would hang this test.
      expect(yield* group.submit("a")).toBe("ok a")
      expect(yield* group.submit("b")).toBe("ok b")
      expect(batches).toEqual([["a"], ["b"]])
    }))

  it.scoped("batches the requests queued while a commit is in flight, in arrival order, up to maxBatch", () =>
    Effect.gen(function*() {
      const { batches, group, open, started } = yield* recorder({ maxBatch: 3 })
      const first = yield* Effect.fork(group.submit("r0"))
      yield* started
      const rest: Array<Fiber.RuntimeFiber<string, string>> = []
      for (let i = 1; i <= 7; i++) {
        rest.push(yield* Effect.fork(group.submit(`r${i}`)))
        yield* untilSuspended(rest)
      }
      yield* open
      expect(yield* Fiber.join(first)).toBe("ok r0")
      expect(yield* Effect.forEach(rest, Fiber.join)).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => `ok r${i}`))
      expect(batches).toEqual([["r0"], ["r1", "r2", "r3"], ["r4", "r5", "r6"], ["r7"]])
    }))

  it.scoped("gives each request its own result: one that fails alone does not fail its neighbours", () =>
    Effect.gen(function*() {
      const { batches, group, open, started } = yield* recorder()
      const first = yield* Effect.fork(group.submit("first"))
      yield* started
      const fibers = [
        yield* Effect.fork(group.submit("a")),
        yield* Effect.fork(group.submit("lease lost")),
        yield* Effect.fork(group.submit("b"))
      ]
      yield* untilSuspended(fibers)
      yield* open
      yield* Fiber.join(first)
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(exits).toEqual([Exit.succeed("ok a"), Exit.fail("lost"), Exit.succeed("ok b")])
      expect(batches[1]).toEqual(["a", "lease lost", "b"])
    }))

  it.scoped("fails every request of a batch whose commit fails or dies, and goes on with the next", () =>
    Effect.gen(function*() {
      const { group, open, started } = yield* recorder()
      const first = yield* Effect.fork(group.submit("first"))
      yield* started
      const failed = [yield* Effect.fork(group.submit("a")), yield* Effect.fork(group.submit("fail the batch"))]
      yield* untilSuspended(failed)
      yield* open
      yield* Fiber.join(first)
      expect(yield* Effect.forEach(failed, Fiber.await)).toEqual([Exit.fail("batch failed"), Exit.fail("batch failed")])
      const died = yield* Effect.exit(group.submit("die"))
      expect(Exit.isFailure(died) && Cause.isDie(died.cause)).toBe(true)
      expect(yield* group.submit("after")).toBe("ok after")
    }))

  it.scoped("commits the write of a caller interrupted while it waits, and answers the others", () =>
    Effect.gen(function*() {
      const { batches, group, open, started } = yield* recorder()
      const first = yield* Effect.fork(group.submit("first"))
      yield* started
      const gone = yield* Effect.fork(group.submit("gone"))
      const kept = yield* Effect.fork(group.submit("kept"))
      yield* untilSuspended([gone, kept])
      yield* Fiber.interrupt(gone)
      yield* open
      yield* Fiber.join(first)
      expect(yield* Fiber.join(kept)).toBe("ok kept")
      expect(batches).toEqual([["first"], ["gone", "kept"]])
    }))

  it.effect("closing the scope commits what is queued, then refuses new requests; nothing is left waiting", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { batches, group, open, started } = yield* Scope.extend(recorder(), scope)
      const first = yield* Effect.fork(group.submit("first"))
      yield* started
      const queued = [yield* Effect.fork(group.submit("a")), yield* Effect.fork(group.submit("b"))]
      yield* untilSuspended(queued)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* untilSuspended([closing])
      expect(yield* Effect.flip(group.submit("late"))).toBe("closed: late")
      yield* open
      yield* Fiber.join(closing)
      expect(yield* Fiber.join(first)).toBe("ok first")
      expect(yield* Effect.forEach(queued, Fiber.join)).toEqual(["ok a", "ok b"])
      expect(batches).toEqual([["first"], ["a", "b"]])
      expect(yield* Effect.flip(group.submit("later"))).toBe("closed: later")
    }))
})

// The SQL store on a SQLite file, through a client that counts the transactions it opens.

const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-group-"))),
  (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
)

/** A connection to `filename` configured as SqliteStore does it (WAL, synchronous FULL, foreign keys). */
const connect = (filename: string) =>
  Effect.gen(function*() {
    const client = yield* SqliteClient.make({ filename })
    yield* client.unsafe("PRAGMA busy_timeout = 5000")
    yield* client.unsafe("PRAGMA synchronous = FULL")
    yield* client.unsafe("PRAGMA foreign_keys = ON")
    return client
  }).pipe(Effect.provide(Reactivity.layer))

/** A store on `filename`, and the number of transactions it has opened so far. */
const countedStore = (filename: string, options: SqlStore.Options = {}) =>
  Effect.gen(function*() {
    const client = yield* connect(filename)
    const { counted, transactions } = countTransactions(client)
    const store = yield* SqlStore.makeWith(options).pipe(Effect.provideService(SqlClient.SqlClient, counted))
    return { store, client, transactions }
  })

/**
 * Holds the store's connection and queues a first write (on run `first`) behind it, so that the
 * writes queued next wait for that commit and go together in the following batch. The returned
 * effect lets the connection go and waits for the first write.
 */
const queueBehindFirst = (opened: Effect.Effect.Success<ReturnType<typeof countedStore>>) =>
  Effect.gen(function*() {
    const { client, store, transactions } = opened
    yield* createClaimed(store, ["first"])
    const held = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(
      client.withTransaction(Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release)))
    )
    yield* Deferred.await(held)
    const before = transactions()
    const first = yield* Effect.fork(complete(store, "first", 0))
    while (transactions() === before) yield* Effect.yieldNow()
    return Effect.all([Deferred.succeed(release, undefined), Fiber.join(holder), Fiber.join(first)], {
      discard: true
    })
  })

describe("SqlStore group commit on SQLite", () => {
  it.scoped("commits many concurrent step completions in fewer transactions, each durable when it returns", () =>
    Effect.gen(function*() {
      const filename = Path.join(yield* tempDirectory, "weft.db")
      const { store, transactions } = yield* countedStore(filename)
      const runs = Array.from({ length: 40 }, (_, i) => `run-${i}`)
      yield* createClaimed(store, runs)
      // Another connection sees only what was committed: each completion is read back there as
      // soon as it returns.
      const reader = yield* connect(filename)
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
              // Its attempt, a first one that succeeded, is kept in the step row (ImpliedAttempts).
              const implied = yield* reader`SELECT attempt_implied FROM weft_steps
                WHERE run_id = ${runId} AND step_id = ${`s${i}`}`
              expect(implied).toEqual([{ attempt_implied: 1 }])
            }), { discard: true }),
        { concurrency: "unbounded", discard: true }
      )
      const used = transactions() - before
      expect(used).toBeGreaterThan(0)
      expect(used).toBeLessThanOrEqual(runs.length * calls / 10)
      const journal = yield* store.readJournal("run-7")
      expect(journal.steps.map((s) => s.stepId)).toEqual(["s0", "s1", "s2", "s3", "s4"])
      expect(journal.attempts).toHaveLength(5)
    }))

  it.scoped("fails a fenced-out write in the middle of a batch with LeaseLost; its neighbours commit", () =>
    Effect.gen(function*() {
      const opened = yield* countedStore(Path.join(yield* tempDirectory, "weft.db"))
      yield* fencedOutWriteInBatch(opened.store, opened.transactions, queueBehindFirst(opened))
    }))

  it.scoped("keeps the last reason of several writes of one run in a batch, as writing them in turn would", () =>
    Effect.gen(function*() {
      const filename = Path.join(yield* tempDirectory, "weft.db")
      const opened = yield* countedStore(filename)
      const { store } = opened
      yield* createClaimed(store, ["a"])
      const release = yield* queueBehindFirst(opened)
      const fibers = [
        yield* Effect.fork(complete(store, "a", 0)),
        yield* Effect.fork(
          store.recordAttempt({ owner: "w1", attempt: attempt("a", 1), reason: "first", now: T0 + 7 })
        ),
        yield* Effect.fork(
          store.recordAttempt({
            owner: "w1",
            attempt: { ...attempt("a", 1), attempt: 2 },
            reason: "second",
            now: T0 + 9
          })
        )
      ]
      yield* untilSuspended(fibers)
      yield* release
      yield* Effect.forEach(fibers, Fiber.join)
      expect(Option.getOrThrow(yield* store.getRun("a"))).toMatchObject({ reason: "second", updatedAt: T0 + 9 })
      expect((yield* store.readJournal("a")).attempts.map((a) => [a.stepId, a.attempt])).toEqual([
        ["s0", 1],
        ["s1", 1],
        ["s1", 2]
      ])
    }))

  it.scoped("fails a write with a value JSON cannot hold alone, while the writes around it commit", () =>
    Effect.gen(function*() {
      const filename = Path.join(yield* tempDirectory, "weft.db")
      const opened = yield* countedStore(filename)
      const { store } = opened
      yield* createClaimed(store, ["a", "b", "c"])
      const release = yield* queueBehindFirst(opened)
      const fibers = [
        yield* Effect.fork(complete(store, "a", 0)),
        yield* Effect.fork(complete(store, "b", 0, "w1", { result: { amount: BigInt(1) } })),
        yield* Effect.fork(complete(store, "c", 0))
      ]
      yield* untilSuspended([fibers[0], fibers[2]])
      yield* release
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(Exit.isSuccess(exits[0]) && Exit.isSuccess(exits[2])).toBe(true)
      expect(Exit.isFailure(exits[1]) && Cause.isDie(exits[1].cause)).toBe(true)
      expect((yield* store.readJournal("a")).steps).toHaveLength(1)
      expect(yield* store.readJournal("b")).toEqual({ steps: [], attempts: [] })
      expect(Option.getOrThrow(yield* store.getRun("b")).updatedAt).toBe(T0)
      expect((yield* store.readJournal("c")).steps).toHaveLength(1)
    }))

  it.scoped("fails every write of a batch the database refuses with StoreUnavailable, and writes none of it", () =>
    Effect.gen(function*() {
      const filename = Path.join(yield* tempDirectory, "weft.db")
      const opened = yield* countedStore(filename)
      const { store } = opened
      yield* createClaimed(store, ["a", "b"])
      const release = yield* queueBehindFirst(opened)
      const fibers = [
        yield* Effect.fork(complete(store, "a", 0)),
        // A STRICT INTEGER column refuses 0.5: the batch's INSERT fails and the transaction rolls back.
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
      // The database refused the statement for good (SQLITE_MISMATCH), but which write it was is not
      // known: none is marked permanent, so each is retried by its caller.
      expect(errors.filter((error) => "permanent" in error && error.permanent === true)).toEqual([])
      // Alone, the refused write is refused for good.
      expect(yield* Effect.flip(complete(store, "b", 0, "w1", { position: 0.5 }))).toMatchObject({
        _tag: "StoreUnavailable",
        permanent: true
      })
      expect(yield* store.readJournal("a")).toEqual({ steps: [], attempts: [] })
      expect(Option.getOrThrow(yield* store.getRun("a"))).toMatchObject({
        updatedAt: T0,
        leaseExpiresAt: T0 + 60_000
      })
      // The writer goes on.
      yield* complete(store, "a", 0)
      expect((yield* store.readJournal("a")).steps).toHaveLength(1)
    }))

  it.scoped("closing the store's scope leaves no write waiting: queued ones commit, later ones fail", () =>
    Effect.gen(function*() {
      const filename = Path.join(yield* tempDirectory, "weft.db")
      const scope = yield* Scope.make()
      const opened = yield* Scope.extend(countedStore(filename), scope)
      const { store } = opened
      const runs = Array.from({ length: 20 }, (_, i) => `run-${i}`)
      yield* createClaimed(store, runs)
      const release = yield* queueBehindFirst(opened)
      const fibers = yield* Effect.forEach(runs, (runId) => Effect.fork(complete(store, runId, 0)))
      yield* untilSuspended(fibers)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* untilSuspended([closing])
      const late = yield* Effect.flip(complete(store, "run-0", 1))
      expect(late).toMatchObject({ _tag: "StoreUnavailable", operation: "completeStep" })
      yield* release
      yield* Fiber.join(closing)
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(exits.every(Exit.isSuccess)).toBe(true)
      // Read back through a new connection after the store's own is closed.
      const reader = yield* connect(filename)
      const rows = yield* reader<{ n: number }>`SELECT COUNT(*) AS n FROM weft_steps`
      expect(rows[0].n).toBe(runs.length + 1)
    }))
})
