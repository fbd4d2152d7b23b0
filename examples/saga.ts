/**
 * A trip booking saga: book a flight, a hotel and a car, each step with a `compensate` that cancels
 * what it booked. When the workflow fails, the compensations of the steps that completed run,
 * latest first, each a durable step of its own (`$undo:<step>` in the journal, with its attempts
 * and its retry policy, `compensateRetry`): a crash in the middle resumes with those not yet done.
 * The step that failed booked nothing, so it has nothing to undo.
 *
 *   weft run examples/saga.ts --input '{"id":"trip-1","city":"Oslo","nights":3,"car":"compact"}'
 *     → succeeds, compensates nothing: {"flight": "FL-trip-1", "hotel": "HT-trip-1-3n", "car": "CR-trip-1-compact"}
 *   weft run examples/saga.ts --input '{"id":"trip-2","city":"Oslo","nights":3,"car":"convertible"}'
 *     → no convertible in Oslo: book-car fails with NoCarAvailable, exit code 1; the hotel is
 *       cancelled, then the flight:
 *
 *         ▶ book-trip e8f6b592-0e35-455d-9c86-400ec0d6d9a8 on sqlite:.weft/weft.db
 *           → book-flight
 *           ✓ book-flight 1ms
 *           → book-hotel
 *           ✓ book-hotel 1ms
 *           → book-car
 *           ✗ book-car attempt 1: NoCarAvailable { city: "Oslo", class: "convertible" } — not retryable
 *           ↺ book-hotel (compensation)
 *             info: hotel HT-trip-2-3n cancelled
 *           ✓ book-hotel (compensation) 1ms
 *           ↺ book-flight (compensation)
 *             info: flight FL-trip-2 cancelled
 *           ✓ book-flight (compensation) 1ms
 *         ✗ book-trip e8f6b592 failed in 92ms: NoCarAvailable
 *         book-trip(e8f6b592-0e35-455d-9c86-400ec0d6d9a8)
 *         ├─ ✓ book-flight                   1ms
 *         ├─ ✓ book-hotel                    1ms
 *         ├─ ✗ book-car                      1 attempt, 6ms
 *         │  └─ 1 NoCarAvailable { city: "Oslo", class: "convertible" }  not retryable
 *         ├─ ✓ ↺ book-hotel (compensation)   1ms
 *         └─ ✓ ↺ book-flight (compensation)  1ms
 *         cause: NoCarAvailable { city: "Oslo", class: "convertible" }
 *
 *     `weft show <run-id> --json` lists the compensations as steps `$undo:book-hotel` and
 *     `$undo:book-flight` of kind `compensation`, each with `compensates` naming the step it undid.
 *     A compensation that fails for good does not stop the others; it is drawn `✗ ↺ <step>
 *     (compensation)` with its attempts, and its failure joins the run's cause.
 */
import { Retry, Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

export const Trip = Schema.Struct({
  id: Schema.String,
  city: Schema.String,
  nights: Schema.Number.pipe(Schema.int(), Schema.positive()),
  car: Schema.Literal("compact", "estate", "convertible")
})
export type Trip = typeof Trip.Type

export const Itinerary = Schema.Struct({ flight: Schema.String, hotel: Schema.String, car: Schema.String })

/** No car of that class is free in that city: the trip cannot be booked as asked. */
export class NoCarAvailable extends Schema.TaggedError<NoCarAvailable>()("NoCarAvailable", {
  city: Schema.String,
  class: Schema.String
}) {}

// A cancellation must not be lost to a blip: retried briefly here (the default retries for up to
// ten attempts from 1 second).
const undoRetry = Retry.exponential({ base: "100 millis", max: "2 seconds", attempts: 5, retryDefects: true })

const bookFlight = Step.make({
  name: "book-flight",
  success: Schema.String,
  run: (trip: Trip) => Effect.succeed(`FL-${trip.id}`),
  compensate: (booking) => Effect.log(`flight ${booking} cancelled`),
  compensateRetry: undoRetry
})

const bookHotel = Step.make({
  name: "book-hotel",
  success: Schema.String,
  run: (trip: Trip) => Effect.succeed(`HT-${trip.id}-${trip.nights}n`),
  compensate: (booking) => Effect.log(`hotel ${booking} cancelled`),
  compensateRetry: undoRetry
})

const bookCar = Step.make({
  name: "book-car",
  success: Schema.String,
  error: NoCarAvailable,
  run: (trip: Trip) =>
    trip.car === "convertible"
      ? Effect.fail(new NoCarAvailable({ city: trip.city, class: trip.car }))
      : Effect.succeed(`CR-${trip.id}-${trip.car}`),
  compensate: (booking) => Effect.log(`car ${booking} cancelled`),
  compensateRetry: undoRetry
})

export const bookTrip = Workflow.make({
  name: "book-trip",
  description: "book a flight, a hotel and a car; cancel what was booked when a booking fails",
  input: Trip,
  success: Itinerary,
  error: NoCarAvailable,
  idempotencyKey: (trip) => trip.id,
  run: (trip) =>
    Effect.gen(function*() {
      const flight = yield* bookFlight(trip)
      const hotel = yield* bookHotel(trip)
      const car = yield* bookCar(trip)
      return { flight, hotel, car }
    })
})
