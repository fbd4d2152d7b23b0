/**
 * What the engine-level tests share: the real stores they run on (a fresh memory store, a fresh
 * SQLite file), a wait for a run to reach a status, with the run's record when it times out, and,
 * for the virtual-time tests, a way to let forked executions run up to their next wait.
 */
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as MemoryStore from "../src/MemoryStore.js"
import * as SqliteStore from "../src/SqliteStore.js"
import { isTerminal, Store } from "../src/Store.js"

/** A fresh memory store, and a fresh SQLite file in a temporary directory named after `prefix`. */
export const realStores = (prefix: string) => ({
  memory: () => MemoryStore.layer,
  sqlite: () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `weft-${prefix}-`))
    return SqliteStore.layer({ filename: Path.join(dir, "weft.db") })
  }
})

/** Waits until the run's status satisfies `done`; dies with the run's record after `timeoutMs`. */
export const awaitStatus = (runId: string, done: (status: string) => boolean, timeoutMs = 5_000) =>
  Effect.gen(function*() {
    const store = yield* Store
    const deadline = Date.now() + timeoutMs
    while (true) {
      const run = yield* store.getRun(runId)
      if (run._tag === "Some" && done(run.value.status)) return run.value
      if (Date.now() > deadline) return yield* Effect.die(new Error(`run ${runId} stuck: ${JSON.stringify(run)}`))
      yield* Effect.sleep("10 millis")
    }
  })

/** Whether a status is final. */
export const final = (status: string): boolean => isTerminal(status as never)

/** An hour in milliseconds. */
export const HOUR = 3_600_000

/** Under TestClock: lets the forked executions run up to their next wait (one virtual millisecond). */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
  yield* TestClock.adjust("1 millis")
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})
