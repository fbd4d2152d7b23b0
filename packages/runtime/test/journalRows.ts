/**
 * Journal rows, a transaction-counting SQL client and the scenarios shared by the group-commit tests on SQLite
 * (GroupCommit.test.ts) and PostgreSQL (PgStore.test.ts).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { expect } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberStatus from "effect/FiberStatus"
import * as Option from "effect/Option"
import * as Migrations from "../src/Migrations.js"
import type { AttemptRow, StepRecord, StoreService } from "../src/Store.js"

export const T0 = 1_700_000_000_000

/** A client that counts the transactions run through it. */
export const countTransactions = (client: SqlClient.SqlClient) => {
  let transactions = 0
  const counted = new Proxy(client, {
    get: (target, property, receiver) =>
      property === "withTransaction"
        ? <A, E, R>(effect: Effect.Effect<A, E, R>) => {
          transactions += 1
          return target.withTransaction(effect)
        }
        : Reflect.get(target, property, receiver)
  })
  return { counted, transactions: () => transactions }
}

export const step = (runId: string, i: number, overrides: Partial<StepRecord> = {}): StepRecord => ({
  runId,
  stepId: `s${i}`,
  name: "s",
  kind: "step",
  position: i,
  result: { _tag: "Success", value: i },
  failed: false,
  attempts: 1,
  startedAt: T0 + i,
  finishedAt: T0 + i + 1,
  ...overrides
})

export const attempt = (runId: string, i: number): AttemptRow => ({
  runId,
  stepId: `s${i}`,
  attempt: 1,
  startedAt: T0 + i,
  finishedAt: T0 + i + 1,
  outcome: "success"
})

export const complete = (
  store: StoreService,
  runId: string,
  i: number,
  owner = "w1",
  overrides: Partial<StepRecord> = {}
) => store.completeStep({ owner, step: step(runId, i, overrides), attempt: attempt(runId, i), now: T0 + i + 1 })

export const createClaimed = (store: StoreService, ids: ReadonlyArray<string>, owner = "w1") =>
  Effect.forEach(
    ids,
    (id) =>
      store.createRun({ id, workflow: "w", version: "1", input: null, now: T0, claim: { owner, leaseMillis: 60_000 } }),
    { discard: true }
  )

/** Yields until every fiber waits (a submitted write waits on its result), so that all are queued. */
export const untilSuspended = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    for (let round = 0; round < 1000; round++) {
      const statuses = yield* Effect.forEach(fibers, (fiber) => fiber.status)
      if (statuses.every(FiberStatus.isSuspended)) return
      yield* Effect.yieldNow()
    }
    return expect.fail("the requests were never all queued")
  })

/**
 * The fenced-out-write scenario, the same on every SQL dialect: five writes in one batch, two of
 * them by an owner that lost run `b`'s lease, which get LeaseLost while the other three commit.
 * `queueBehindFirst` holds the store's writer (each dialect has its own way) and returns the effect
 * that lets it go.
 */
export const fencedOutWriteInBatch = (
  store: StoreService,
  transactions: () => number,
  queueBehindFirst: Effect.Effect<Effect.Effect<void, unknown>, unknown>
) =>
  Effect.gen(function*() {
    yield* createClaimed(store, ["a", "b", "c"])
    yield* store.claimRun({ id: "b", owner: "w2", leaseMillis: 60_000, now: T0 + 1, force: true })
    const release = yield* queueBehindFirst
    const before = transactions()
    const fibers = [
      yield* Effect.fork(complete(store, "a", 0)),
      yield* Effect.fork(
        store.recordAttempt({ owner: "w1", attempt: attempt("b", 0), reason: "stale", now: T0 + 2 })
      ),
      yield* Effect.fork(complete(store, "b", 0)),
      yield* Effect.fork(complete(store, "b", 1, "w2")),
      yield* Effect.fork(complete(store, "c", 0))
    ]
    yield* untilSuspended(fibers)
    yield* release
    const exits = yield* Effect.forEach(fibers, Fiber.await)
    // One transaction for all five.
    expect(transactions() - before).toBe(1)
    expect(exits.map((exit) => Exit.isSuccess(exit) ? "ok" : Cause.squash(exit.cause))).toEqual([
      "ok",
      expect.objectContaining({ _tag: "LeaseLost", runId: "b", owner: "w1" }),
      expect.objectContaining({ _tag: "LeaseLost", runId: "b", owner: "w1" }),
      "ok",
      "ok"
    ])
    expect((yield* store.readJournal("a")).steps.map((s) => s.stepId)).toEqual(["s0"])
    expect(yield* store.readJournal("b")).toMatchObject({ steps: [{ stepId: "s1" }], attempts: [{ stepId: "s1" }] })
    expect((yield* store.readJournal("c")).steps.map((s) => s.stepId)).toEqual(["s0"])
    const b = Option.getOrThrow(yield* store.getRun("b"))
    expect(b).toMatchObject({ leaseOwner: "w2", reason: undefined, updatedAt: T0 + 2 })
  })

/**
 * Builds the schema as weft stood at version 11 (before attempts could be kept in step rows) on a
 * raw connection, and writes there what weft wrote then for a run whose step succeeded at its first
 * try: a step row and its attempt row. Returns the attempt, as the journal must read it back.
 */
export const journalAtVersion11 = (sql: SqlClient.SqlClient, dialect: "sqlite" | "pg") =>
  Effect.gen(function*() {
    for (const statement of Migrations.statements(Migrations.bootstrap[dialect])) yield* sql.unsafe(statement)
    for (const migration of Migrations.migrations.filter((m) => m.version <= 11)) {
      for (const statement of Migrations.statements(migration[dialect])) yield* sql.unsafe(statement)
      yield* sql`INSERT INTO weft_migrations (version, name, applied_at)
        VALUES (${migration.version}, ${migration.name}, ${T0})`
    }
    yield* sql`INSERT INTO weft_runs (id, workflow, version, status, queue, priority, created_at, updated_at)
      VALUES ('old', 'w', '1', 'succeeded', 'default', 0, ${T0}, ${T0})`
    const old = step("old", 0)
    yield* sql`INSERT INTO weft_steps (run_id, step_id, name, kind, position, result, failed, attempts,
        started_at, finished_at)
      VALUES ('old', ${old.stepId}, ${old.name}, 'step', 0, '{"_tag":"Success","value":0}', 0, 1,
        ${old.startedAt}, ${old.finishedAt})`
    const row = attempt("old", 0)
    yield* sql`INSERT INTO weft_attempts (run_id, step_id, attempt, started_at, finished_at, outcome)
      VALUES ('old', ${row.stepId}, 1, ${row.startedAt}, ${row.finishedAt}, 'success')`
    return { step: old, attempt: row }
  })
