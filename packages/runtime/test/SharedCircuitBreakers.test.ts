/**
 * Circuit breakers declared `shared` on a real PostgreSQL server (see pg.ts): two stores on one
 * database stand for two workers; the breaker one of them opens is open for the other, trial slots
 * are shared, concurrent failures from both are each counted once under the row lock, a breaker
 * that is not shared never reaches the database, and a database that cannot answer lets calls
 * through rather than failing them.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Failure } from "@weft/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"
import * as PgStore from "../src/PgStore.js"
import { query, uniqueName, useTestDatabase, withDatabase } from "./pg.js"

const database = useTestDatabase()

class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {}) {
  readonly retryable = true
}

/** The URL of a new, empty schema in this file's database. */
const freshSchema = Effect.gen(function*() {
  const url = database()
  const schema = uniqueName("s")
  yield* Effect.promise(() => query(url, `CREATE SCHEMA ${schema}`))
  return withDatabase(url, new URL(url).pathname.slice(1), schema)
})

type Services = CircuitBreaker.Backend | SqlClient.SqlClient

/** A worker: a PostgreSQL store of its own (its own pool) on `url`, open for the enclosing scope. */
const worker = (url: string) =>
  Effect.map(Layer.build(PgStore.layer({ url })), (context) => ({
    run: <A, E>(effect: Effect.Effect<A, E, Services>): Effect.Effect<A, E> => Effect.provide(effect, context),
    backend: Context.get(context, CircuitBreaker.Backend)
  }))

let names = 0
const sharedBreaker = (options: Omit<CircuitBreaker.Options, "name" | "shared"> = {}) =>
  CircuitBreaker.make({ name: `shared-${process.pid}-${++names}`, shared: true, ...options })

const failing = Effect.fail(new Unavailable())

const rows = (url: string) =>
  Effect.promise(() => query(url, "SELECT name, state FROM weft_circuit_breakers ORDER BY name")) as Effect.Effect<
    ReadonlyArray<{ readonly name: string; readonly state: string }>
  >

describe("shared circuit breakers on PostgreSQL", () => {
  it.live("a breaker one worker opens is open for another, which does not call the dependency", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshSchema
      const a = yield* worker(url)
      const b = yield* worker(url)
      const breaker = sharedBreaker({ failureThreshold: 2, cooldown: "1 minute" })
      yield* a.run(Effect.either(CircuitBreaker.protect(failing, breaker)))
      yield* b.run(Effect.either(CircuitBreaker.protect(failing, breaker)))
      expect(yield* a.run(CircuitBreaker.state(breaker))).toMatchObject({ state: "open", failures: 2 })

      let called = 0
      const result = yield* b.run(Effect.either(CircuitBreaker.protect(Effect.sync(() => ++called), breaker)))
      expect(Either.isLeft(result) && result.left).toBeInstanceOf(Failure.CircuitOpen)
      expect(called).toBe(0)
      // The state is the row, as JSON.
      const stored = yield* rows(url)
      expect(stored.map((row) => [row.name, JSON.parse(row.state)._tag])).toEqual([[breaker.name, "Open"]])
    })))

  it.live("trial slots are shared: while one worker's trial is in flight the other is refused", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshSchema
      const a = yield* worker(url)
      const b = yield* worker(url)
      const breaker = sharedBreaker({ failureThreshold: 1, cooldown: "10 seconds", halfOpenSuccesses: 2 })
      const t0 = 1_000_000
      const opened = yield* a.backend.admit(breaker, t0)
      if (opened.admission._tag !== "Admitted") throw new Error("a closed breaker refused a call")
      expect(yield* a.backend.settle(breaker, opened.admission.permit, "failure", t0)).toMatchObject({
        from: "closed",
        to: "open"
      })
      expect((yield* b.backend.admit(breaker, t0 + 9_999)).admission).toEqual({ _tag: "Rejected", retryAfter: 1 })

      // B's call at the end of the cooldown is the trial; A's meanwhile is refused.
      const trial = yield* b.backend.admit(breaker, t0 + 10_000)
      expect(trial).toMatchObject({ admission: { _tag: "Admitted" }, transition: { from: "open", to: "half-open" } })
      expect((yield* a.backend.admit(breaker, t0 + 10_500)).admission).toEqual({ _tag: "Rejected", retryAfter: 9_500 })
      if (trial.admission._tag !== "Admitted") return
      expect(yield* b.backend.settle(breaker, trial.admission.permit, "success", t0 + 11_000)).toBeUndefined()
      // One success of the two needed; A's trial is the second.
      const second = yield* a.backend.admit(breaker, t0 + 11_500)
      if (second.admission._tag !== "Admitted") throw new Error("the second trial was refused")
      expect(yield* a.backend.settle(breaker, second.admission.permit, "success", t0 + 12_000)).toMatchObject({
        from: "half-open",
        to: "closed"
      })
      expect(CircuitBreaker.snapshot(breaker, yield* b.backend.read(breaker), t0 + 12_000)).toMatchObject({
        state: "closed"
      })
    })))

  it.live("concurrent failures from two workers are each counted once: the breaker opens once", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshSchema
      const a = yield* worker(url)
      const b = yield* worker(url)
      const breaker = sharedBreaker({ failureThreshold: 8, window: "1 hour", cooldown: "1 hour" })
      // Calls that all start before any ends: admitted while closed, they fail together.
      const calls = 6
      const permits = yield* Effect.all(
        [
          ...Array.from({ length: calls }, () => a.backend.admit(breaker, Date.now())),
          ...Array.from({ length: calls }, () => b.backend.admit(breaker, Date.now()))
        ],
        { concurrency: "unbounded" }
      )
      const transitions = yield* Effect.all(
        permits.map((permit, i) =>
          permit.admission._tag === "Admitted"
            ? (i < calls ? a : b).backend.settle(breaker, permit.admission.permit, "failure", Date.now())
            : Effect.die(new Error("a closed breaker refused a call"))
        ),
        { concurrency: "unbounded" }
      )
      // The eighth failure opened it (no failure lost to a race); the four after it were too late.
      expect(transitions.filter((t) => t !== undefined)).toMatchObject([{ from: "closed", to: "open", failures: 8 }])
      expect(CircuitBreaker.snapshot(breaker, yield* a.backend.read(breaker), Date.now())).toMatchObject({
        state: "open",
        failures: 8
      })
    })))

  it.live("through protect, transitions are logged and counted once, in the worker that made them", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshSchema
      const a = yield* worker(url)
      const b = yield* worker(url)
      const breaker = sharedBreaker({ failureThreshold: 4, cooldown: "1 hour" })
      yield* Effect.all(
        Array.from(
          { length: 10 },
          (_, i) => (i % 2 === 0 ? a : b).run(Effect.either(CircuitBreaker.protect(failing, breaker)))
        ),
        { concurrency: "unbounded" }
      )
      const opened = yield* Metric.value(
        Metric.taggedWithLabels(CircuitBreaker.transitions, [
          MetricLabel.make("breaker", breaker.name),
          MetricLabel.make("to", "open")
        ])
      )
      expect(opened.count).toBe(1)
    })))

  it.live("a breaker that is not shared stays in the process: nothing is written", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshSchema
      const a = yield* worker(url)
      const local = CircuitBreaker.make({ name: `local-${process.pid}`, failureThreshold: 1 })
      yield* a.run(Effect.either(CircuitBreaker.protect(failing, local)))
      expect(yield* a.run(CircuitBreaker.state(local))).toMatchObject({ state: "open" })
      expect(yield* rows(url)).toEqual([])
    })))

  it.live("a database that cannot answer lets the call through, and its end counts for nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshSchema
      const a = yield* worker(url)
      const breaker = sharedBreaker({ failureThreshold: 1 })
      yield* Effect.promise(() => query(url, "DROP TABLE weft_circuit_breakers"))
      let called = 0
      const result = yield* a.run(Effect.either(CircuitBreaker.protect(Effect.sync(() => ++called), breaker)))
      expect(result).toMatchObject(Either.right(1))
      const failed = yield* a.run(Effect.either(CircuitBreaker.protect(failing, breaker)))
      expect(failed).toMatchObject(Either.left({ _tag: "Unavailable" }))
    })))
})
