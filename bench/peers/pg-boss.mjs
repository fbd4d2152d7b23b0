// @ts-check
/**
 * pg-boss in the queue benchmarks of issue 3 (method: bench/queue-harness.ts).
 *
 * pg-boss 10 (the last major for Node 20) has no LISTEN/NOTIFY: a worker (`work()`) fetches up to
 * `batchSize` jobs, runs its handler on them, completes them, and fetches again no sooner than
 * `pollingIntervalSeconds` after its previous fetch, whose minimum is 0.5 s. Concurrency 10 is one
 * `work()` with `batchSize: 10` (the handler runs its 10 jobs at once) polling every 0.5 s: the
 * fastest setting that keeps at most 10 jobs in flight per process. Workers run with
 * `supervise: false, schedule: false` (maintenance and cron belong to another instance).
 *
 * Enqueue: `insert()` in chunks of 1,000 (B1), `send()` (B2).
 *
 *   node --import tsx bench/peers/pg-boss.mjs b1 pg-boss 2
 */
import PgBoss from "pg-boss"
import pg from "pg"
import { main, probe } from "../queue-harness.ts"
import { packageVersion } from "./versions.mjs"

const QUEUE = "bench"
const POLL_SECONDS = 0.5

/**
 * @param {string} url
 * @param {PgBoss.ConstructorOptions} [options]
 */
const open = async (url, options = {}) => {
  const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false, migrate: false, ...options })
  boss.on("error", (error) => process.stderr.write(`pg-boss: ${error.message}\n`))
  await boss.start()
  return boss
}

/** @type {import("../queue-harness.ts").QueueSystem} */
const pgBoss = {
  name: "pg-boss",
  version: `pg-boss ${packageVersion("pg-boss")}`,
  configuration:
    `work("${QUEUE}", { batchSize: 10, pollingIntervalSeconds: ${POLL_SECONDS} } (the minimum)) per process; supervise and schedule off in workers; pool of 10`,
  kinds: ["noop"],
  // B2: enqueue at random phases of the 0.5 s polls.
  b2GapMs: POLL_SECONDS * 1000,
  setup: async (url) => {
    const boss = await open(url, { migrate: true })
    await boss.createQueue(QUEUE)
    await boss.stop({ graceful: false, wait: true })
  },
  driver: async (url) => {
    const boss = await open(url)
    const pool = new pg.Pool({ connectionString: url, max: 1 })
    return {
      enqueueMany: async (_kind, from, count) => {
        for (let at = from; at < from + count; at += 1000) {
          const chunk = Math.min(1000, from + count - at)
          await boss.insert(Array.from({ length: chunk }, (_, k) => ({ name: QUEUE, data: { i: at + k } })))
        }
      },
      enqueueOne: async (_kind, i) => {
        await boss.send(QUEUE, { i })
      },
      remaining: async () =>
        Number(
          (await pool.query(
            "SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')",
            [QUEUE]
          )).rows[0].n
        ),
      close: async () => {
        await boss.stop({ graceful: false, wait: true })
        await pool.end()
      }
    }
  },
  worker: async (url, _kind, concurrency) => {
    const boss = await open(url)
    return {
      start: async () => {
        await boss.work(
          QUEUE,
          { batchSize: concurrency, pollingIntervalSeconds: POLL_SECONDS },
          /** @param {Array<PgBoss.Job<{ i: number }>>} jobs */
          (jobs) =>
            Promise.all(jobs.map(async (job) => {
              probe().started(job.data.i)
              probe().finished(job.data.i)
            }))
        )
      },
      stop: () => boss.stop({ graceful: false, wait: true })
    }
  }
}

main({ "pg-boss": pgBoss })
