/**
 * @weft/core: the workflow DSL. Pure definitions and step semantics; no I/O.
 */

/** Circuit breakers: stop calling a dependency that keeps failing, fail fast, try again later. */
export * as CircuitBreaker from "./CircuitBreaker.js"

/** The contract between the DSL and an engine: a run's journal as steps see it. */
export * as Execution from "./Execution.js"

/** The built-in failures (StepTimeout, CircuitOpen, InputInvalid, NonDeterminism, Cancelled) and the Defect schema. */
export * as Failure from "./Failure.js"

/** Queues with limits: concurrency across all workers and a rate limit. */
export * as Queue from "./Queue.js"

/** Retry policies as data, with one interpreter. */
export * as Retry from "./Retry.js"

/** Durable steps: `Step.make`, `Step.run`, `Step.context`. */
export * as Step from "./Step.js"

/** Workflows and the durable primitives `now`, `random`, `uuid`. */
export * as Workflow from "./Workflow.js"
