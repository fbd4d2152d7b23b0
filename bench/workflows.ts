/**
 * The workflows of the queue benchmarks (bench/queue.ts): a no-op single-step run (B1, B2) and a
 * 10-step no-op workflow (B3). Their steps call the benchmark's probe (a no-op outside a benchmark
 * worker), so the harness sees when a job's user code starts and ends. Also usable with
 * `weft worker bench/workflows.ts` (the probe then does nothing).
 */
import { Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"
import { probe, STEPS } from "./queue-harness.js"

const noopStep = Step.make({
  name: "noop",
  success: Schema.Number,
  run: (i: number) =>
    Effect.sync(() => {
      probe().started(i)
      probe().finished(i)
      return i
    })
})

/** B1, B2: one no-op step. */
export const noop = Workflow.make({
  name: "bench-noop",
  input: Schema.Number,
  success: Schema.Number,
  run: (i) => noopStep(i)
})

const steps = Array.from({ length: STEPS }, (_, s) =>
  Step.make({
    name: `step-${s}`,
    success: Schema.Number,
    run: (i: number) =>
      Effect.sync(() => {
        if (s === 0) probe().started(i)
        if (s === STEPS - 1) probe().finished(i)
        return i
      })
  }))

/** B3: ten no-op steps, each journaled. */
export const steps10 = Workflow.make({
  name: "bench-steps10",
  input: Schema.Number,
  success: Schema.Number,
  run: (i) =>
    Effect.gen(function*() {
      for (const step of steps) yield* step(i)
      return i
    })
})
