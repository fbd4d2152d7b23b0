/**
 * The queue benchmarks of issue 3, side by side on one PostgreSQL server, in one go: the physical
 * floor (pgbench, one-row INSERT transactions), then for weft and each peer B1 (1 and 2 worker
 * processes), B2 and B3 where it applies, REPEAT times (the rounds interleave the systems, so that
 * a change of load touches all of them), then a markdown table of the medians on stdout and the raw
 * results in bench/results/queues-<date>.json. Method: bench/queue-harness.ts.
 *
 *   pnpm bench:peers:install                      # once: the peers, in bench/peers/node_modules
 *   pnpm bench:queues                             # N=20000 REPEAT=3
 *   N=2000 REPEAT=1 B2_RUNS=50 B3_RUNS=200 pnpm bench:queues   # a quick smoke run
 *
 * Needs `psql` and `pgbench` (PATH or /usr/lib/postgresql/<version>/bin) and a server where the
 * admin URL may create and drop databases (`weft_bench_*` only).
 *
 * Environment: N, REPEAT, CONCURRENCY, B2_RUNS, B2_GAP_MS, B3_RUNS, MAX_DRAIN_S (see the harness),
 * PGBENCH_SECONDS (default 10), SYSTEMS (comma-separated names, default all), BENCH_ADMIN_URL
 * (default postgres://postgres@127.0.0.1:5432/postgres), OUT (the JSON file).
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  createDatabase,
  databaseUrl,
  dropDatabase,
  dropLeftoverDatabases,
  median,
  type Result,
  settings
} from "./queue-harness.js"

const root = Path.resolve(new URL(".", import.meta.url).pathname, "..")
const repeat = Number(process.env.REPEAT ?? 3)
const pgbenchSeconds = Number(process.env.PGBENCH_SECONDS ?? 10)

interface Entry {
  /** The benchmark file, from the repository's root. */
  readonly file: string
  readonly node: ReadonlyArray<string>
  readonly system: string
  /** B1 with 1 and 2 processes, B2, B3. */
  readonly benches: ReadonlyArray<"b1" | "b2" | "b3">
  /** Fewer rounds than REPEAT for a benchmark whose result is set by a poll interval. */
  readonly rounds?: Partial<Record<"b1" | "b2" | "b3", number>>
}

// weft as users run it: the packages built by `pnpm build` (tsc), which `pnpm bench:queues` runs
// first. Run from their TypeScript source through tsx instead, each run cost ~50% more CPU (esbuild's
// output keeps every function's name through a helper call, and compiles at start).
const weftNode = ["--import", "tsx"]
const peerNode = ["--import", "tsx"]

/**
 * Every system and what it runs. Two measurements are set by a poll interval rather than by work,
 * and cost a lot of waiting for a number known in advance, so they run one round: pg-boss's B2
 * (~uniform over its 0.5 s poll: 150 s a round) and DBOS's B1 at its default 1 s poll (it starts at
 * most workerConcurrency workflows per poll: 10 jobs/s per process). DBOS at its default poll runs
 * no B2 (~uniform over 1 s: 300 s a round).
 */
const entries: ReadonlyArray<Entry> = [
  { file: "bench/queue.ts", node: weftNode, system: "weft", benches: ["b1", "b2", "b3"] },
  { file: "bench/peers/graphile-worker.mjs", node: peerNode, system: "graphile-worker", benches: ["b1", "b2"] },
  {
    file: "bench/peers/graphile-worker.mjs",
    node: peerNode,
    system: "graphile-worker-batched",
    benches: ["b1", "b2"]
  },
  { file: "bench/peers/pg-boss.mjs", node: peerNode, system: "pg-boss", benches: ["b1", "b2"], rounds: { b2: 1 } },
  { file: "bench/peers/dbos.mjs", node: peerNode, system: "dbos-fast", benches: ["b1", "b2", "b3"] },
  { file: "bench/peers/dbos.mjs", node: peerNode, system: "dbos", benches: ["b1"], rounds: { b1: 1 } }
]

const selected = process.env.SYSTEMS === undefined || process.env.SYSTEMS === ""
  ? entries
  : entries.filter((e) => process.env.SYSTEMS!.split(",").map((s) => s.trim()).includes(e.system))

const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

/** Runs a benchmark file and returns the JSON of its `RESULT` line. */
const runFile = (node: ReadonlyArray<string>, file: string, args: ReadonlyArray<string>): unknown => {
  const out = ChildProcess.spawnSync(process.execPath, [...node, file, ...args], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024
  })
  const line = out.stdout.split("\n").reverse().find((l) => l.startsWith("RESULT "))
  if (out.status !== 0 || line === undefined) {
    throw new Error(`${file} ${args.join(" ")} failed (exit ${out.status}):\n${out.stdout.slice(-2000)}`)
  }
  return JSON.parse(line.slice("RESULT ".length))
}

// ---------------------------------------------------------------------------------------------
// The floor: pgbench

const pgbenchBinary = (): string => {
  const found = ChildProcess.spawnSync("sh", ["-c", "command -v pgbench"], { encoding: "utf8" }).stdout.trim()
  if (found !== "") return found
  const dir = "/usr/lib/postgresql"
  const versions = Fs.existsSync(dir) ? Fs.readdirSync(dir).sort((a, b) => Number(b) - Number(a)) : []
  for (const v of versions) {
    const candidate = Path.join(dir, v, "bin", "pgbench")
    if (Fs.existsSync(candidate)) return candidate
  }
  throw new Error("pgbench not found (PATH, /usr/lib/postgresql/*/bin)")
}

interface Floor {
  readonly clients: number
  readonly tps: number
}

const pgbench = (binary: string, url: string, script: string, clients: number): Floor => {
  const out = ChildProcess.spawnSync(binary, [
    "-n",
    "-c",
    String(clients),
    "-j",
    String(Math.min(clients, 2)),
    "-T",
    String(pgbenchSeconds),
    "-f",
    script,
    url
  ], { encoding: "utf8" })
  const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(out.stdout)
  if (out.status !== 0 || match === null) throw new Error(`pgbench failed: ${out.stdout}\n${out.stderr}`)
  return { clients, tps: Math.round(Number(match[1])) }
}

// ---------------------------------------------------------------------------------------------

const medianOf = (values: ReadonlyArray<number | undefined>): number | undefined => {
  const known = values.filter((x): x is number => x !== undefined)
  return known.length === 0 ? undefined : median(known)
}

const fmt = (x: number | undefined, digits = 0): string =>
  x === undefined || Number.isNaN(x) ? "–" : x.toLocaleString("en-US", { maximumFractionDigits: digits })

const serverVersion = (): string =>
  ChildProcess.spawnSync("psql", ["-X", "-At", settings.adminUrl, "-c", "SHOW server_version"], { encoding: "utf8" })
    .stdout.trim()

const main = () => {
  const peersInstalled = Fs.existsSync(Path.join(root, "bench/peers/node_modules/graphile-worker"))
  const systems = selected.filter((e) => e.file === "bench/queue.ts" || peersInstalled)
  if (systems.length < selected.length) {
    log("the peers are not installed (pnpm bench:peers:install): running weft alone")
  }
  const left = dropLeftoverDatabases()
  if (left.length > 0) log(`dropped leftover databases: ${left.join(", ")}`)
  const started = Date.now()
  const loadBefore = Os.loadavg()

  // The systems' versions and configurations.
  const info: Array<{ name: string; version: string; configuration: string }> = []
  for (const file of [...new Set(systems.map((e) => e.file))]) {
    const entry = systems.find((e) => e.file === file)!
    const all = runFile(entry.node, file, ["info"]) as Array<{ name: string; version: string; configuration: string }>
    info.push(...all.filter((s) => systems.some((e) => e.system === s.name)))
  }

  // The floor.
  const floors: Array<Floor> = []
  const binary = pgbenchBinary()
  const db = createDatabase("pgbench")
  try {
    const url = databaseUrl(db)
    const spawnPsql = (sql: string) =>
      ChildProcess.spawnSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], { encoding: "utf8" })
    spawnPsql(
      "CREATE TABLE floor (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
    )
    const script = Path.join(Os.tmpdir(), `weft-bench-insert-${process.pid}.sql`)
    Fs.writeFileSync(script, "INSERT INTO floor (payload) VALUES ('{\"i\": 1}');\n")
    try {
      for (let r = 0; r < repeat; r++) {
        for (const clients of [1, 10]) {
          const floor = pgbench(binary, url, script, clients)
          floors.push(floor)
          log(`pgbench one-row INSERT, ${clients} client(s): ${floor.tps} tx/s`)
        }
      }
    } finally {
      Fs.rmSync(script, { force: true })
    }
  } finally {
    dropDatabase(db)
  }

  // The rounds.
  const results: Array<Result> = []
  const failures: Array<
    { readonly round: number; readonly bench: string; readonly system: string; readonly error: string }
  > = []
  for (let r = 1; r <= repeat; r++) {
    for (const bench of ["b1", "b2", "b3"] as const) {
      for (const entry of systems.filter((e) => e.benches.includes(bench) && r <= (e.rounds?.[bench] ?? repeat))) {
        for (const processes of bench === "b1" ? [1, 2] : [1]) {
          const label = `round ${r}/${repeat} ${bench}${bench === "b1" ? ` ×${processes}` : ""} ${entry.system}`
          try {
            const result = runFile(entry.node, entry.file, [bench, entry.system, String(processes)]) as Result
            results.push(result)
            log(`${label}: ${describe(result)}`)
          } catch (error) {
            // One failed measurement (a peer's hiccup, a runtime being edited) does not end the run.
            const message = error instanceof Error ? error.message : String(error)
            failures.push({ round: r, bench: `${bench}x${processes}`, system: entry.system, error: message })
            log(`${label}: FAILED ${message}`)
            dropLeftoverDatabases()
          }
        }
      }
    }
  }

  // The medians.
  type Drain = Extract<Result, { bench: "b1" | "b3" }>
  type Latency = Extract<Result, { bench: "b2" }>
  const rows = systems.map(({ system }) => {
    const mine = results.filter((r) => r.system === system)
    const b1 = (processes: number) => mine.filter((r): r is Drain => r.bench === "b1" && r.processes === processes)
    const b2 = mine.filter((r): r is Latency => r.bench === "b2")
    const b3 = mine.filter((r): r is Drain => r.bench === "b3")
    const rate = (rs: ReadonlyArray<Drain>) => rs.length === 0 ? undefined : median(rs.map((r) => r.perSecond))
    return {
      system,
      b1x1: rate(b1(1)),
      b1x1Capped: b1(1).some((r) => r.capped),
      b1x2: rate(b1(2)),
      b1x2Capped: b1(2).some((r) => r.capped),
      b2p50: b2.length === 0 ? undefined : median(b2.map((r) => r.p50)),
      b2p99: b2.length === 0 ? undefined : median(b2.map((r) => r.p99)),
      b3: b3.length === 0 ? undefined : median(b3.map((r) => r.stepsPerSecond ?? NaN)),
      b3Capped: b3.some((r) => r.capped),
      // What one job costs in the B1 drain with one process, and one run in B3.
      b1CpuMs: medianOf(b1(1).map((r) => r.workerCpuMsPerJob)),
      b1ServerCpuMs: medianOf(b1(1).map((r) => r.serverCpuMsPerJob)),
      b1Commits: medianOf(b1(1).map((r) => r.db?.drainCommitsPerJob)),
      b1Rows: medianOf(b1(1).map((r) => r.db?.drainRowsWrittenPerJob)),
      enqueueCommits: medianOf(b1(1).map((r) => r.db?.enqueueCommitsPerJob)),
      b3CpuMs: medianOf(b3.map((r) => r.workerCpuMsPerJob)),
      b3ServerCpuMs: medianOf(b3.map((r) => r.serverCpuMsPerJob)),
      b3Commits: medianOf(b3.map((r) => r.db?.drainCommitsPerJob))
    }
  })
  const costs = [
    "| system | B1 worker CPU ms/job | B1 server CPU ms/job | B1 drain commits/job | B1 drain rows written/job | enqueue commits/job | B3 worker CPU ms/run | B3 server CPU ms/run | B3 commits/run |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((row) =>
      `| ${row.system} | ${fmt(row.b1CpuMs, 2)} | ${fmt(row.b1ServerCpuMs, 2)} | ${fmt(row.b1Commits, 2)} | ${
        fmt(row.b1Rows, 1)
      } | ${fmt(row.enqueueCommits, 3)} | ${fmt(row.b3CpuMs, 1)} | ${fmt(row.b3ServerCpuMs, 1)} | ${
        fmt(row.b3Commits, 1)
      } |`
    )
  ].join("\n")
  const floorMedian = (clients: number) => median(floors.filter((f) => f.clients === clients).map((f) => f.tps))

  const table = [
    `PostgreSQL ${serverVersion()} floor, pgbench one-row INSERT transactions: ${
      fmt(floorMedian(1))
    } tx/s with 1 client, ${fmt(floorMedian(10))} tx/s with 10 clients.`,
    "",
    "| system | B1 jobs/s, 1 process | B1 jobs/s, 2 processes | B2 p50 ms | B2 p99 ms | B3 steps/s |",
    "|---|---:|---:|---:|---:|---:|",
    ...rows.map((row) =>
      `| ${row.system} | ${fmt(row.b1x1)}${row.b1x1Capped ? "*" : ""} | ${fmt(row.b1x2)}${
        row.b1x2Capped ? "*" : ""
      } | ${fmt(row.b2p50, 1)} | ${fmt(row.b2p99, 1)} | ${fmt(row.b3)}${row.b3Capped ? "*" : ""} |`
    ),
    "",
    ...(failures.length === 0 ? [] : [`${failures.length} measurement(s) failed: see "failures" in the JSON.`, ""]),
    `Medians of ${repeat}; N=${settings.n} jobs (B1), ${settings.b2Runs} sequential jobs (B2), ${settings.b3Runs} runs (B3), concurrency ${settings.concurrency} per process. * drain cut at ${settings.maxDrainSeconds} s: completed jobs / elapsed.`
  ].join("\n")
  process.stdout.write(`\n${table}\n\n${costs}\n`)

  const date = new Date().toISOString().slice(0, 10)
  const out = process.env.OUT ?? Path.join(root, "bench/results", `queues-${date}.json`)
  Fs.mkdirSync(Path.dirname(out), { recursive: true })
  Fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        minutes: Math.round((Date.now() - started) / 600) / 100,
        machine: {
          cpus: Os.cpus().length,
          memoryGb: Math.round(Os.totalmem() / 2 ** 30),
          node: process.version,
          postgres: serverVersion(),
          loadBefore: loadBefore.map((x) => Math.round(x * 100) / 100),
          loadAfter: Os.loadavg().map((x) => Math.round(x * 100) / 100)
        },
        settings: { ...settings, adminUrl: undefined, repeat, pgbenchSeconds },
        systems: info,
        floor: floors,
        medians: rows,
        results,
        failures,
        table,
        costs
      },
      null,
      1
    ) + "\n"
  )
  log(`wrote ${Path.relative(root, out)} (${Math.round((Date.now() - started) / 1000)} s in all)`)
}

const describe = (r: Result): string =>
  r.bench === "b2"
    ? `p50 ${r.p50} ms, p99 ${r.p99} ms (gap ≤ ${r.gapMs} ms, enqueue p50 ${r.enqueueP50} ms)${
      r.note === undefined ? "" : `; ${r.note}`
    }`
    : `${r.completed}/${r.jobs} in ${r.drainSeconds} s: ${r.perSecond}/s${
      r.stepsPerSecond === undefined ? "" : ` (${r.stepsPerSecond} steps/s)`
    }${
      r.capped ? " (capped)" : ""
    }, enqueue ${r.enqueueSeconds} s, worker CPU ${r.workerCpuMsPerJob} ms/job, drain commits ${r.db?.drainCommitsPerJob}/job${
      r.note === undefined ? "" : `; ${r.note}`
    }`

main()
