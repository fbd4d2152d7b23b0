/**
 * The harness of the queue benchmarks of issue 3 (B1 throughput, B2 schedule-to-start latency, B3
 * durable 10-step workflows), shared by weft's side (bench/queue.ts) and the peers' (bench/peers/).
 * Plain Node: no Effect and no dependency, so that a peer's file uses it as it is.
 *
 * A system under test is a `QueueSystem`: how to install its schema, enqueue jobs, count the jobs
 * not completed yet and run a worker. A benchmark file calls `main({ name: system, ... })`, and the
 * same file is then both:
 *
 *   the driver   node --import tsx FILE b1|b2|b3 SYSTEM [PROCESSES]   (prints `RESULT {json}` last)
 *   the worker   node --import tsx FILE worker ...                     (forked by the driver)
 *
 * Each measurement gets a fresh database (`weft_bench_*`, dropped at the end). Workers are child
 * processes with an IPC channel: they report when they are ready, the driver tells them all to
 * start at once, and they report the jobs their handlers ran. Times are `process.hrtime` (Linux's
 * CLOCK_MONOTONIC), one clock for every process on the machine, so a worker's timestamp and the
 * driver's are comparable without a round trip.
 *
 *   B1  enqueue N no-op jobs, then start the worker processes and measure from the first handler
 *       start (the first claim) to the moment the store says no job is left (polled every 10 ms).
 *       A drain longer than MAX_DRAIN_S is cut there and reported as completed jobs / elapsed.
 *   B2  one idle worker; B2_RUNS jobs one after another, each enqueued after the previous one ran
 *       and a random pause, uniform in [0, gap]; latency = handler start - enqueue call start. The
 *       gap is 50 ms for a system that pushes new jobs to idle workers, and its poll interval for
 *       one that polls, so that enqueues land at random phases of the polls (just after the poll
 *       that ran the previous job, a poller would always show nearly its whole interval).
 *   B3  enqueue B3_RUNS 10-step workflows, drain with one worker process; steps/s as B1 measures.
 *
 * Each measurement also reports the worker processes' CPU time per job (process.cpuUsage from
 * "go" to stop) and the database's commits and rows written per job (pg_stat_database).
 */
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"

/** A monotonic clock in milliseconds, shared by all processes of the machine. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6

const env = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${raw}`)
  return value
}

/** The sizes, from the environment. */
export const settings = {
  /** B1: jobs per measurement. */
  n: env("N", 20_000),
  /** Jobs in flight per worker process. */
  concurrency: env("CONCURRENCY", 10),
  /** B2: sequential jobs per measurement. */
  b2Runs: env("B2_RUNS", 300),
  /** B2: the pause before each enqueue is uniform in [0, B2_GAP_MS] (default: the system's). */
  b2GapMs: process.env.B2_GAP_MS === undefined || process.env.B2_GAP_MS === "" ? undefined : env("B2_GAP_MS", 50),
  /** B3: 10-step workflows per measurement. */
  b3Runs: env("B3_RUNS", 1_000),
  /** A drain is cut after this many seconds (from its first claim). */
  maxDrainSeconds: env("MAX_DRAIN_S", 20),
  /** The server: a database on it is created (and dropped) for each measurement. */
  adminUrl: process.env.BENCH_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
}

/** What a job is: a no-op (B1, B2) or a 10-step workflow (B3). */
export type Kind = "noop" | "steps10"

/** The number of steps of a `steps10` job. */
export const STEPS = 10

/**
 * What a worker's job handler calls: `started` first thing in the handler (for a durable workflow,
 * first thing in its first step), `finished` last thing (in its last step).
 */
export interface Probe {
  started(i: number): void
  finished(i: number): void
}

const noProbe: Probe = { started: () => {}, finished: () => {} }
let currentProbe: Probe = noProbe

/**
 * The probe of this process: the job handlers of a benchmark's workflows call `probe().started(i)`
 * and `probe().finished(i)`. A no-op outside a benchmark worker.
 */
export const probe = (): Probe => currentProbe

/** The driver's connection to a system: enqueue, and count what is left. */
export interface DriverSide {
  /** Enqueues jobs `from`..`from + count - 1`, as fast as the system's client allows. */
  readonly enqueueMany: (kind: Kind, from: number, count: number) => Promise<void>
  /** Enqueues job `i` alone (B2). */
  readonly enqueueOne: (kind: Kind, i: number) => Promise<void>
  /** Jobs of this kind not completed yet (queued, running or failed). */
  readonly remaining: (kind: Kind) => Promise<number>
  readonly close: () => Promise<void>
  /** Overrides the system's `b2GapMs` (when it depends on what the driver found). */
  readonly b2GapMs?: number | undefined
  /** Something the driver found that the report should say, e.g. a feature present or not. */
  readonly note?: string | undefined
}

/** A system under test. */
export interface QueueSystem {
  readonly name: string
  /** Its package and version. */
  readonly version: string
  /** Its configuration in words, for the report. */
  readonly configuration: string
  /** The kinds of job it runs (the queues without workflows have no `steps10`). */
  readonly kinds: ReadonlyArray<Kind>
  /**
   * B2: the pause before each enqueue is uniform in [0, b2GapMs] (default 50 ms; B2_GAP_MS
   * overrides every system's). A polling system sets its poll interval, so that its enqueues land at
   * random phases of its polls rather than just after the poll that ran the previous job.
   */
  readonly b2GapMs?: number | undefined
  /** Installs the schema in a fresh database. */
  readonly setup: (url: string) => Promise<void>
  /** Opens the driver's side. */
  readonly driver: (url: string) => Promise<DriverSide>
  /**
   * In a worker process: prepares a worker at `concurrency` whose handlers call the probe (opens
   * its connections, loads what it needs), ready to `start` claiming jobs at once.
   */
  readonly worker: (url: string, kind: Kind, concurrency: number) => Promise<WorkerSide>
}

/** A prepared worker. */
export interface WorkerSide {
  readonly start: () => Promise<void>
  /** Stops claiming and ends the worker (its runs in flight may be left to the next one). */
  readonly stop: () => Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Results

/** One measurement. */
export type Result =
  | {
    readonly bench: "b1" | "b3"
    readonly system: string
    readonly processes: number
    readonly jobs: number
    readonly completed: number
    /** The drain was cut at MAX_DRAIN_S: `completed` < `jobs`. */
    readonly capped: boolean
    readonly enqueueSeconds: number
    readonly drainSeconds: number
    /** Jobs (B1) or runs (B3) per second over the drain. */
    readonly perSecond: number
    /** B3: steps per second. */
    readonly stepsPerSecond?: number
    /** The worker processes' CPU time (user + system) from their start to their stop, per completed job. */
    readonly workerCpuMsPerJob?: number
    /** The PostgreSQL server processes' CPU time over the drain (Linux /proc), per completed job. */
    readonly serverCpuMsPerJob?: number
    readonly db?: DbActivity
    readonly note?: string
  }
  | {
    readonly bench: "b2"
    readonly system: string
    readonly runs: number
    readonly gapMs: number
    readonly p50: number
    readonly p90: number
    readonly p99: number
    readonly max: number
    readonly mean: number
    /** The enqueue call alone (p50), included in the latency. */
    readonly enqueueP50: number
    readonly db?: DbActivity
    readonly note?: string
  }

/**
 * What the server counted in the measurement's database (pg_stat_database): commits (read-only
 * transactions included: each statement outside a transaction is one) and rows written. B1, B3:
 * split at the end of the enqueue into the enqueue's per job enqueued and the drain's per job
 * completed (the drain's part includes the driver's few counting queries); B2: per run.
 */
export interface DbActivity {
  readonly commits: number
  readonly rowsWritten: number
  readonly enqueueCommitsPerJob?: number
  readonly drainCommitsPerJob?: number
  readonly drainRowsWrittenPerJob?: number
  readonly commitsPerJob?: number
  readonly rowsWrittenPerJob?: number
}

/** The value at quantile `q` of sorted values. */
export const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]

/** The median; the mean of the two middle values for an even count. */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

// ---------------------------------------------------------------------------------------------
// Databases (through psql, so that the harness needs no driver of its own)

const psql = (sql: string): string => {
  const out = ChildProcess.spawnSync(
    "psql",
    ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", settings.adminUrl, "-c", sql],
    {
      encoding: "utf8"
    }
  )
  if (out.error !== undefined) throw new Error(`psql: ${out.error.message}`)
  if (out.status !== 0) throw new Error(`psql failed (${out.status}) on ${sql}: ${out.stderr}`)
  return out.stdout
}

/** The URL of database `name` on the benchmark's server. */
export const databaseUrl = (name: string): string => {
  const url = new URL(settings.adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Creates a fresh database `weft_bench_<label>_<random>` and returns its name. */
export const createDatabase = (label: string): string => {
  const name = `weft_bench_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${Crypto.randomBytes(3).toString("hex")}`
  psql(`CREATE DATABASE ${name}`)
  return name
}

interface DbCounters {
  readonly commits: number
  readonly inserted: number
  readonly updated: number
  readonly deleted: number
}

/** The server's counters of a database; a closed connection's are included (it reports them when it ends). */
const dbCounters = async (name: string): Promise<DbCounters> => {
  // A backend reports its counters as it exits, just after its client closed: give it a moment.
  await sleep(300)
  const [commits, inserted, updated, deleted] = psql(
    `SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = '${name}'`
  ).trim().split("|").map(Number)
  return { commits, inserted, updated, deleted }
}

/** Drops a benchmark database, ending its leftover connections. */
export const dropDatabase = (name: string): void => {
  if (!name.startsWith("weft_bench_")) throw new Error(`refusing to drop ${name}: not a benchmark database`)
  psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}

/** Drops every `weft_bench_*` database left by an interrupted run. */
export const dropLeftoverDatabases = (): ReadonlyArray<string> => {
  const names = psql("SELECT datname FROM pg_database WHERE datname LIKE 'weft\\_bench\\_%'").split("\n").filter((s) =>
    s !== ""
  )
  for (const name of names) dropDatabase(name)
  return names
}

// ---------------------------------------------------------------------------------------------
// Worker processes

type ToWorker = { readonly t: "go" } | { readonly t: "stop" }
type FromWorker =
  | { readonly t: "ready" }
  | { readonly t: "progress"; readonly count: number; readonly first: number | null; readonly last: number | null }
  | { readonly t: "s"; readonly i: number; readonly at: number }
  | { readonly t: "f"; readonly i: number; readonly at: number }
  | { readonly t: "stopped"; readonly cpuMs: number }

/** How a worker reports: every job (B2) or counts (B1, B3). */
type Mode = "each" | "count"

interface WorkerHandle {
  readonly child: ChildProcess.ChildProcess
  readonly ready: Promise<void>
  readonly exited: Promise<number | null>
  count: number
  first: number | null
  last: number | null
  /** The worker's CPU time from "go" to its stop, once it stopped. */
  cpuMs: number | null
  onJob: ((message: FromWorker) => void) | undefined
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const spawnWorker = (file: string, system: string, kind: Kind, mode: Mode, url: string): WorkerHandle => {
  const child = ChildProcess.fork(file, ["worker", system, kind, mode, url, String(settings.concurrency)], {
    execArgv: [...process.execArgv, ...(process.env.BENCH_WORKER_ARGS ?? "").split(" ").filter((a) => a !== "")],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  let markReady: () => void = () => {}
  let failReady: (error: Error) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve
    failReady = reject
  })
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      failReady(new Error(`worker ${child.pid} exited (${code}) before it was ready`))
      resolve(code)
    })
  )
  const handle: WorkerHandle = {
    child,
    ready,
    exited,
    count: 0,
    first: null,
    last: null,
    cpuMs: null,
    onJob: undefined
  }
  child.on("message", (message: FromWorker) => {
    switch (message.t) {
      case "ready":
        markReady()
        break
      case "progress":
        handle.count = message.count
        handle.first = message.first
        handle.last = message.last
        break
      case "s":
      case "f":
        handle.onJob?.(message)
        break
      case "stopped":
        handle.cpuMs = message.cpuMs
        break
    }
  })
  return handle
}

const stopWorkers = async (workers: ReadonlyArray<WorkerHandle>): Promise<void> => {
  for (const w of workers) {
    if (w.child.connected && w.child.exitCode === null) w.child.send({ t: "stop" } satisfies ToWorker)
  }
  await Promise.all(workers.map(async (w) => {
    const timeout = sleep(15_000).then(() => "timeout" as const)
    if ((await Promise.race([w.exited, timeout])) === "timeout") {
      process.stderr.write(`worker ${w.child.pid} did not stop in 15 s; killing it\n`)
      w.child.kill("SIGKILL")
      await w.exited
    }
  }))
}

/** The worker side: runs in the forked process. */
const runWorker = async (systems: Record<string, QueueSystem>, argv: ReadonlyArray<string>): Promise<void> => {
  const [name, kind, mode, url, concurrency] = argv
  const system = systems[name]
  const send = (message: FromWorker) => {
    if (process.connected) process.send!(message)
  }
  let count = 0
  let first: number | null = null
  let last: number | null = null
  currentProbe = mode === "each"
    ? {
      started: (i) => send({ t: "s", i, at: now() }),
      finished: (i) => send({ t: "f", i, at: now() })
    }
    : {
      started: () => {
        if (first === null) first = now()
      },
      finished: () => {
        count++
        last = now()
      }
    }
  let reported = -1
  const report = () => {
    if (count !== reported) {
      reported = count
      send({ t: "progress", count, first, last })
    }
  }
  const go = new Promise<void>((resolve) => {
    process.on("message", (message: ToWorker) => {
      if (message.t === "go") resolve()
    })
  })
  const stopRequested = new Promise<void>((resolve) => {
    process.on("message", (message: ToWorker) => {
      if (message.t === "stop") resolve()
    })
    process.on("disconnect", () => resolve())
  })
  const worker = await system.worker(url, kind as Kind, Number(concurrency))
  send({ t: "ready" })
  await go
  const cpuAtGo = process.cpuUsage()
  await worker.start()
  const timer = mode === "count" ? setInterval(report, 20) : undefined
  await stopRequested
  if (timer !== undefined) clearInterval(timer)
  report()
  await worker.stop()
  const cpu = process.cpuUsage(cpuAtGo)
  send({ t: "stopped", cpuMs: (cpu.user + cpu.system) / 1000 })
  process.exit(0)
}

// ---------------------------------------------------------------------------------------------
// The measurements

const withDatabase = async (
  system: QueueSystem,
  label: string,
  body: (url: string, side: DriverSide, mark: () => Promise<DriverSide>) => Promise<Result>
): Promise<Result> => {
  const name = createDatabase(`${system.name}_${label}`)
  const url = databaseUrl(name)
  const written = (c: DbCounters) => c.inserted + c.updated + c.deleted
  try {
    await system.setup(url)
    const before = await dbCounters(name)
    let middle: DbCounters | undefined
    let side = await system.driver(url)
    // An idle connection may keep its counters for up to 10 s; one that ends reports them: the
    // driver closes its side to count the enqueue, and opens a new one for the drain.
    const mark = async () => {
      await side.close()
      middle = await dbCounters(name)
      side = await system.driver(url)
      return side
    }
    let result: Result
    try {
      result = await body(url, side, mark)
    } finally {
      await side.close()
    }
    const after = await dbCounters(name)
    const commits = after.commits - before.commits
    const rowsWritten = written(after) - written(before)
    const per = (x: number, jobs: number) => round(x / jobs, 3)
    const db: DbActivity = result.bench === "b2"
      ? {
        commits,
        rowsWritten,
        commitsPerJob: per(commits, result.runs),
        rowsWrittenPerJob: per(rowsWritten, result.runs)
      }
      : middle === undefined
      ? { commits, rowsWritten }
      : {
        commits,
        rowsWritten,
        enqueueCommitsPerJob: per(middle.commits - before.commits, result.jobs),
        drainCommitsPerJob: per(after.commits - middle.commits, result.completed),
        drainRowsWrittenPerJob: per(written(after) - written(middle), result.completed)
      }
    return { ...result, db }
  } finally {
    dropDatabase(name)
  }
}

/**
 * CPU time (user + system, ms) of every PostgreSQL server process by pid, read from /proc (Linux),
 * or undefined where /proc is not there. A backend started after a first sample counts from zero;
 * one that exits between two samples is lost, so sample while the drain's connections are open.
 */
const serverCpu = (): Map<number, number> | undefined => {
  let pids: Array<string>
  try {
    pids = Fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))
  } catch {
    return undefined
  }
  const tick = 10 // USER_HZ is 100 on Linux: a tick is 10 ms
  const cpu = new Map<number, number>()
  for (const pid of pids) {
    try {
      const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      const close = stat.lastIndexOf(")")
      if (!stat.slice(stat.indexOf("(") + 1, close).startsWith("postgres")) continue
      const fields = stat.slice(close + 2).split(" ")
      cpu.set(Number(pid), (Number(fields[11]) + Number(fields[12])) * tick)
    } catch {
      // the process ended meanwhile
    }
  }
  return cpu
}

/** The server's CPU time between two `serverCpu` samples. */
const serverCpuBetween = (before: Map<number, number> | undefined, after: Map<number, number> | undefined) => {
  if (before === undefined || after === undefined) return undefined
  let total = 0
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0)
  return total
}

const enqueueAll = async (side: DriverSide, kind: Kind, jobs: number): Promise<number> => {
  const started = now()
  await side.enqueueMany(kind, 0, jobs)
  const seconds = (now() - started) / 1000
  const left = await side.remaining(kind)
  if (left !== jobs) throw new Error(`enqueued ${jobs} jobs but the store counts ${left} not completed`)
  return seconds
}

/** B1 and B3: enqueue, then drain with `processes` worker processes. */
const drain = (file: string, system: QueueSystem, bench: "b1" | "b3", processes: number): Promise<Result> => {
  const kind: Kind = bench === "b1" ? "noop" : "steps10"
  const jobs = bench === "b1" ? settings.n : settings.b3Runs
  return withDatabase(system, `${bench}_${processes}`, async (url, enqueuer, mark) => {
    const enqueueSeconds = await enqueueAll(enqueuer, kind, jobs)
    const side = await mark()
    const workers = Array.from({ length: processes }, () => spawnWorker(file, system.name, kind, "count", url))
    try {
      await Promise.all(workers.map((w) => w.ready))
      const serverBefore = serverCpu()
      for (const w of workers) w.child.send({ t: "go" } satisfies ToWorker)
      const firstStart = () => {
        const firsts = workers.map((w) => w.first).filter((x): x is number => x !== null)
        return firsts.length === 0 ? null : Math.min(...firsts)
      }
      const completed = () => workers.reduce((sum, w) => sum + w.count, 0)
      const spawned = now()
      // Wait for every handler to finish, or for the cap.
      let capped = false
      for (;;) {
        await sleep(10)
        if (completed() >= jobs) break
        const first = firstStart()
        if (first === null && now() - spawned > 60_000) throw new Error(`${system.name}: no job started in 60 s`)
        if (first !== null && now() - first > settings.maxDrainSeconds * 1000) {
          capped = true
          break
        }
        if (workers.some((w) => w.child.exitCode !== null)) throw new Error(`${system.name}: a worker exited`)
      }
      const first = firstStart()!
      let end = now()
      let done = completed()
      if (!capped) {
        // Every handler ran: the drain ends when the store has committed every completion.
        for (;;) {
          const left = await side.remaining(kind)
          end = now()
          if (left === 0) break
          if (end - first > (settings.maxDrainSeconds + 30) * 1000) {
            throw new Error(`${system.name}: ${left} jobs still not completed after their handlers ran`)
          }
          await sleep(10)
        }
        done = jobs
      }
      const drainSeconds = (end - first) / 1000
      const perSecond = done / drainSeconds
      const serverCpuMs = serverCpuBetween(serverBefore, serverCpu())
      await stopWorkers(workers)
      const cpu = workers.map((w) => w.cpuMs)
      const workerCpuMs = cpu.every((x): x is number => x !== null) ? cpu.reduce((a, b) => a + b, 0) : undefined
      return {
        bench,
        system: system.name,
        processes,
        jobs,
        completed: done,
        capped,
        enqueueSeconds: round(enqueueSeconds, 3),
        drainSeconds: round(drainSeconds, 3),
        perSecond: round(perSecond, 1),
        ...(bench === "b3" ? { stepsPerSecond: round(perSecond * STEPS, 1) } : {}),
        ...(workerCpuMs === undefined ? {} : { workerCpuMsPerJob: round(workerCpuMs / done, 3) }),
        ...(serverCpuMs === undefined ? {} : { serverCpuMsPerJob: round(serverCpuMs / done, 3) }),
        ...(side.note === undefined ? {} : { note: side.note })
      }
    } finally {
      await stopWorkers(workers)
    }
  })
}

/** B2: one idle worker, jobs one after another. */
const latency = (file: string, system: QueueSystem): Promise<Result> =>
  withDatabase(system, "b2", async (url, side) => {
    const worker = spawnWorker(file, system.name, "noop", "each", url)
    try {
      await worker.ready
      worker.child.send({ t: "go" } satisfies ToWorker)
      // Let the worker reach its idle state (connections open, listening, first empty poll done).
      await sleep(2_000)
      const gapMs = settings.b2GapMs ?? side.b2GapMs ?? system.b2GapMs ?? 50
      const latencies: Array<number> = []
      const enqueueTimes: Array<number> = []
      for (let i = 0; i < settings.b2Runs; i++) {
        await sleep(Math.random() * gapMs)
        let startedAt = 0
        const started = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${system.name}: job ${i} did not start in 30 s`)), 30_000)
          worker.onJob = (message) => {
            if (message.t === "s" && message.i === i) startedAt = message.at
            if (message.t === "f" && message.i === i) {
              clearTimeout(timer)
              resolve()
            }
          }
        })
        const before = now()
        await side.enqueueOne("noop", i)
        enqueueTimes.push(now() - before)
        await started
        latencies.push(startedAt - before)
      }
      worker.onJob = undefined
      const sorted = [...latencies].sort((a, b) => a - b)
      return {
        bench: "b2",
        system: system.name,
        runs: settings.b2Runs,
        gapMs,
        p50: round(quantile(sorted, 0.5)),
        p90: round(quantile(sorted, 0.9)),
        p99: round(quantile(sorted, 0.99)),
        max: round(sorted[sorted.length - 1]),
        mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
        enqueueP50: round(median(enqueueTimes)),
        ...(side.note === undefined ? {} : { note: side.note })
      }
    } finally {
      await stopWorkers([worker])
    }
  })

/**
 * The entry point of a benchmark file: `FILE b1|b2|b3 SYSTEM [PROCESSES]`, `FILE info` (the
 * systems, their versions and configurations as JSON), or `FILE worker ...` (internal).
 */
export const main = (systems: Record<string, QueueSystem>): void => {
  const file = process.argv[1]
  const [command, ...rest] = process.argv.slice(2)
  const run = async (): Promise<void> => {
    if (command === "worker") return runWorker(systems, rest)
    if (command === "info") {
      const info = Object.values(systems).map(({ configuration, kinds, name, version }) => ({
        name,
        version,
        configuration,
        kinds
      }))
      process.stdout.write(`RESULT ${JSON.stringify(info)}\n`)
      return
    }
    const system = systems[rest[0] ?? ""]
    if (system === undefined || !["b1", "b2", "b3"].includes(command ?? "")) {
      throw new Error(
        `usage: ${file} b1|b2|b3 SYSTEM [PROCESSES] | info; systems: ${Object.keys(systems).join(", ")}`
      )
    }
    const processes = Number(rest[1] ?? 1)
    const result = command === "b2"
      ? await latency(file, system)
      : await drain(file, system, command as "b1" | "b3", processes)
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
  }
  run().then(
    () => {
      if (command !== "worker") process.exit(0)
    },
    (error) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
      process.exit(1)
    }
  )
}
