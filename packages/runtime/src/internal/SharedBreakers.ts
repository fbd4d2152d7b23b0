/**
 * The circuit-breaker backend of the PostgreSQL store: breakers declared `shared` keep their state
 * in `weft_circuit_breakers`, one row per breaker name, so every worker on the database sees the
 * same breaker; the others stay in the process (`CircuitBreaker.processBackend`). The state changes
 * through the same `CircuitBreaker.admit` and `settle` as in a process, under the row's lock.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { CircuitBreaker } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Migrations from "../Migrations.js"

const StateSchema: Schema.Schema<CircuitBreaker.State, string> = Schema.parseJson(Schema.Union(
  Schema.Struct({
    _tag: Schema.Literal("Closed"),
    epoch: Schema.Number,
    failures: Schema.Array(Schema.Number)
  }),
  Schema.Struct({
    _tag: Schema.Literal("Open"),
    epoch: Schema.Number,
    openedAt: Schema.Number,
    until: Schema.Number,
    failures: Schema.Number
  }),
  Schema.Struct({
    _tag: Schema.Literal("HalfOpen"),
    epoch: Schema.Number,
    trials: Schema.Number,
    successes: Schema.Number,
    lastTrialAt: Schema.Number
  })
))
const decodeState = Schema.decodeEither(StateSchema)
const encodeState = Schema.encodeSync(StateSchema)

// A permit no state has: what a call lets through when the database cannot say (see below), so
// that its end changes nothing.
const unknownEpoch = -1

/** The backend over the SqlClient in context (PostgreSQL). */
export const make: Effect.Effect<CircuitBreaker.BackendService, never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const decode = (name: string, text: string) =>
    Either.match(decodeState(text), {
      onRight: Effect.succeed,
      // A row this code cannot read (written by another version): start again from closed.
      onLeft: (error) =>
        Effect.as(
          Effect.logWarning(
            `circuit breaker "${name}": its stored state cannot be read (${error.message}); closing it`
          ),
          CircuitBreaker.initial
        )
    })

  const read = (name: string) =>
    Effect.flatMap(
      sql<{ readonly state: string }>`SELECT state FROM weft_circuit_breakers WHERE name = ${name}`,
      (rows) => rows[0] === undefined ? Effect.succeed(CircuitBreaker.initial) : decode(name, rows[0].state)
    )

  /**
   * Applies `step` to the breaker's stored state. Most calls change nothing (a closed breaker lets
   * a call through; a success while closed counts for nothing in window counting): one read without
   * a lock decides that. A change is made again under the row's lock, from the state read there.
   */
  const apply = <T extends { readonly state: CircuitBreaker.State }>(
    breaker: CircuitBreaker.CircuitBreaker,
    now: number,
    step: (state: CircuitBreaker.State) => T
  ) =>
    Effect.gen(function*() {
      const current = yield* read(breaker.name)
      const unlocked = step(current)
      if (unlocked.state === current) return unlocked
      return yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO weft_circuit_breakers (name, state, updated_at)
          VALUES (${breaker.name}, ${encodeState(CircuitBreaker.initial)}, ${now})
          ON CONFLICT (name) DO NOTHING`
        const rows = yield* sql<{ readonly state: string }>`SELECT state FROM weft_circuit_breakers
          WHERE name = ${breaker.name} FOR UPDATE`
        const locked = rows[0] === undefined ? CircuitBreaker.initial : yield* decode(breaker.name, rows[0].state)
        const result = step(locked)
        if (result.state !== locked) {
          yield* sql`UPDATE weft_circuit_breakers SET state = ${encodeState(result.state)}, updated_at = ${now}
            WHERE name = ${breaker.name}`
        }
        return result
      }))
    }).pipe(Migrations.mapSqlErrors(`circuit breaker ${breaker.name}`))

  return {
    admit: (breaker, now) =>
      breaker.shared
        ? apply(breaker, now, (state) => CircuitBreaker.admit(breaker, state, now)).pipe(
          // The database cannot say: let the call through rather than fail it for the store's sake
          // (a run cannot record anything meanwhile anyway). Its end then counts for nothing.
          Effect.catchAll((error) =>
            Effect.as(
              Effect.logWarning(`circuit breaker "${breaker.name}": ${error.message}; letting the call through`),
              { admission: { _tag: "Admitted", permit: { epoch: unknownEpoch, trial: false } } } as const
            )
          )
        )
        : CircuitBreaker.processBackend.admit(breaker, now),
    settle: (breaker, permit, verdict, now) =>
      !breaker.shared
        ? CircuitBreaker.processBackend.settle(breaker, permit, verdict, now)
        : permit.epoch === unknownEpoch
        ? Effect.succeed(undefined)
        : apply(breaker, now, (state) => CircuitBreaker.settle(breaker, state, permit, verdict, now)).pipe(
          Effect.map((result) => result.transition),
          Effect.catchAll((error) =>
            Effect.as(
              Effect.logWarning(
                `circuit breaker "${breaker.name}": ${error.message}; this call's outcome is not counted`
              ),
              undefined
            )
          )
        ),
    read: (breaker) =>
      breaker.shared
        ? Effect.orDie(Migrations.mapSqlErrors(`circuit breaker ${breaker.name}`)(read(breaker.name)))
        : CircuitBreaker.processBackend.read(breaker)
  }
})
