// @ts-check
/**
 * DBOS Transact (@dbos-inc/dbos-sdk) in the queue benchmarks of issue 3 (method:
 * bench/queue-harness.ts), B1, B2 and B3.
 *
 * A job is a workflow on a database-backed queue (`registerQueue("bench", { workerConcurrency: 10,
 * minPollingIntervalMs })`), enqueued by a `DBOSClient`; each worker process is a launched DBOS
 * (its own executor id) that dispatches from the queue. The no-op job is a workflow with one step
 * (`DBOS.runStep`), as weft's is a run with one step; B3's is a workflow of ten steps. DBOS has no
 * push for queues: each process polls each queue every `minPollingIntervalMs` (default 1,000 ms,
 * ±5% jitter) and starts what it may (up to workerConcurrency - running); a finished workflow does
 * not trigger a poll.
 *
 *   dbos       minPollingIntervalMs 1000 (the default)
 *   dbos-fast  minPollingIntervalMs 20 (the lowest we would run in production: 50 polls/s per process)
 *
 *   node --import tsx bench/peers/dbos.mjs b3 dbos-fast
 */
import { DBOS, DBOSClient } from "@dbos-inc/dbos-sdk"
import pg from "pg"
import { main, probe, STEPS } from "../queue-harness.ts"
import { packageVersion } from "./versions.mjs"

/** @typedef {import("../queue-harness.ts").Kind} Kind */

const APP = "weft-bench"
const APP_VERSION = "bench"
const QUEUE = "bench"

const noopWorkflow = DBOS.registerWorkflow(async (/** @type {number} */ i) => {
  await DBOS.runStep(async () => {
    probe().started(i)
    probe().finished(i)
    return i
  }, { name: "noop" })
  return i
}, { name: "noop" })

const steps10Workflow = DBOS.registerWorkflow(async (/** @type {number} */ i) => {
  for (let s = 0; s < STEPS; s++) {
    await DBOS.runStep(async () => {
      if (s === 0) probe().started(i)
      if (s === STEPS - 1) probe().finished(i)
      return i
    }, { name: `step-${s}` })
  }
  return i
}, { name: "steps10" })

/** @param {Kind} kind */
const workflowName = (kind) => kind === "noop" ? "noop" : "steps10"

/** Concurrent `DBOSClient.enqueue` calls while enqueuing a batch. */
const ENQUEUE_CONCURRENCY = 20

/**
 * @param {string} name
 * @param {number} pollMs
 * @returns {import("../queue-harness.ts").QueueSystem}
 */
const system = (name, pollMs) => ({
  name,
  version: `@dbos-inc/dbos-sdk ${packageVersion("@dbos-inc/dbos-sdk")}`,
  configuration:
    `registerQueue("${QUEUE}", { workerConcurrency: 10, minPollingIntervalMs: ${pollMs} }); one launched DBOS per worker process (system pool 10); enqueue: DBOSClient.enqueue, ${ENQUEUE_CONCURRENCY} at once`,
  kinds: ["noop", "steps10"],
  b2GapMs: Math.max(50, pollMs),
  setup: async (url) => {
    await DBOS.migrate(url)
    const client = await DBOSClient.create({ systemDatabaseUrl: url, applicationName: APP })
    await client.registerQueue(QUEUE, { workerConcurrency: 10, minPollingIntervalMs: pollMs })
    await client.destroy()
  },
  driver: async (url) => {
    const client = await DBOSClient.create({ systemDatabaseUrl: url, applicationName: APP })
    const pool = new pg.Pool({ connectionString: url, max: 1 })
    /** @type {(kind: Kind, i: number) => Promise<unknown>} */
    const enqueue = (kind, i) =>
      client.enqueue({ queueName: QUEUE, workflowName: workflowName(kind), appVersion: APP_VERSION }, i)
    return {
      enqueueMany: async (kind, from, count) => {
        let next = from
        await Promise.all(Array.from({ length: ENQUEUE_CONCURRENCY }, async () => {
          while (next < from + count) await enqueue(kind, next++)
        }))
      },
      enqueueOne: async (kind, i) => {
        await enqueue(kind, i)
      },
      remaining: async (kind) =>
        Number(
          (await pool.query("SELECT count(*) AS n FROM dbos.workflow_status WHERE name = $1 AND status <> 'SUCCESS'", [
            workflowName(kind)
          ])).rows[0].n
        ),
      close: async () => {
        await client.destroy()
        await pool.end()
      }
    }
  },
  worker: async (url) => {
    // Registered at module load: both workflows are known to every worker.
    void noopWorkflow
    void steps10Workflow
    DBOS.setConfig({
      name: APP,
      systemDatabaseUrl: url,
      applicationVersion: APP_VERSION,
      executorID: `bench-${process.pid}`,
      logLevel: "error"
    })
    return {
      start: () => DBOS.launch(),
      stop: () => DBOS.shutdown()
    }
  }
})

main({ dbos: system("dbos", 1000), "dbos-fast": system("dbos-fast", Number(process.env.DBOS_FAST_POLL_MS ?? 20)) })
