// @ts-check
/**
 * graphile-worker in the queue benchmarks of issue 3 (method: bench/queue-harness.ts).
 *
 *   graphile-worker          the defaults: `run({ concurrency: 10, taskList })`, new jobs pushed to
 *                            idle workers by LISTEN/NOTIFY (pollInterval 2 s is only for future jobs)
 *   graphile-worker-batched  plus the batching of its performance guide: `localQueue.size`
 *                            (concurrency + 1, its suggested start) and `completeJobBatchDelay: 0`
 *
 * Enqueue: `WorkerUtils.addJobs` in chunks of 1,000 (B1), `addJob` (B2).
 *
 *   node --import tsx bench/peers/graphile-worker.mjs b1 graphile-worker 2
 */
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker"
import pg from "pg"
import { main, probe } from "../queue-harness.ts"
import { packageVersion } from "./versions.mjs"

const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`graphile-worker: ${message}\n`)
})

const TASK = "noop"

/**
 * @param {boolean} batched
 * @returns {import("../queue-harness.ts").QueueSystem}
 */
const system = (batched) => ({
  name: batched ? "graphile-worker-batched" : "graphile-worker",
  version: `graphile-worker ${packageVersion("graphile-worker")}`,
  configuration: batched
    ? "run({ concurrency: 10, taskList }) with preset.worker { localQueue: { size: 11 }, completeJobBatchDelay: 0 }; LISTEN/NOTIFY; pool of concurrency + 2"
    : "run({ concurrency: 10, taskList }), defaults: LISTEN/NOTIFY for new jobs, pollInterval 2 s; pool of concurrency + 2",
  kinds: ["noop"],
  setup: (url) => runMigrations({ connectionString: url, logger: quiet }),
  driver: async (url) => {
    const utils = await makeWorkerUtils({ connectionString: url, logger: quiet })
    const pool = new pg.Pool({ connectionString: url, max: 1 })
    return {
      enqueueMany: async (_kind, from, count) => {
        for (let at = from; at < from + count; at += 1000) {
          const chunk = Math.min(1000, from + count - at)
          await utils.addJobs(Array.from({ length: chunk }, (_, k) => ({ identifier: TASK, payload: { i: at + k } })))
        }
      },
      enqueueOne: async (_kind, i) => {
        await utils.addJob(TASK, { i })
      },
      // Completed jobs are deleted; a failed one stays (with its attempts).
      remaining: async () =>
        Number((await pool.query("SELECT count(*) AS n FROM graphile_worker._private_jobs")).rows[0].n),
      close: async () => {
        await utils.release()
        await pool.end()
      }
    }
  },
  worker: async (url, _kind, concurrency) => {
    /** @type {import("graphile-worker").Runner | undefined} */
    let runner
    return {
      start: async () => {
        runner = await run({
          connectionString: url,
          maxPoolSize: concurrency + 2,
          concurrency,
          noHandleSignals: true,
          logger: quiet,
          parsedCronItems: [],
          taskList: {
            [TASK]: async (payload) => {
              const { i } = /** @type {{ i: number }} */ (payload)
              probe().started(i)
              probe().finished(i)
            }
          },
          ...(batched
            ? { preset: { worker: { localQueue: { size: concurrency + 1 }, completeJobBatchDelay: 0 } } }
            : {})
        })
      },
      stop: async () => {
        await runner?.stop()
      }
    }
  }
})

main({ "graphile-worker": system(false), "graphile-worker-batched": system(true) })
