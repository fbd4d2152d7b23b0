/**
 * Journal rows and a transaction-counting SQL client, shared by the group-commit tests on SQLite
 * (GroupCommit.test.ts) and PostgreSQL (PgStore.test.ts).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
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
