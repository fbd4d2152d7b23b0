/**
 * Runs a workflow in this process: claim the run's lease, execute it by replay, and report
 * progress. Used by `weft run` and `weft resume`, and by services that run a workflow inline.
 */
import type { Execution, Workflow } from "@weft/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Engine from "./Engine.js"
import type { LeaseLost, RunNotClaimable, StoreUnavailable } from "./Errors.js"
import * as Owner from "./Owner.js"
import { Store } from "./Store.js"

/** Options of `claimAndExecute`. */
export interface Options {
  readonly owner?: string | undefined
  /** Default 30 seconds. */
  readonly leaseMillis?: number | undefined
  /**
   * Take the run even if another owner's lease is live. Without it, a lease held by a process of
   * this host that no longer exists is taken over at once; any other live lease is respected.
   */
  readonly force?: boolean | undefined
  readonly onProgress?: ((event: Execution.ProgressEvent) => Effect.Effect<void>) | undefined
}

/** Claims the run for this process (see `force`) and executes it to its end. */
export const claimAndExecute = <W extends Workflow.Any>(
  workflow: W,
  runId: string,
  options: Options = {}
): Effect.Effect<
  Engine.Executed,
  RunNotClaimable | StoreUnavailable | LeaseLost,
  Store | Workflow.Requirements<W>
> =>
  Effect.gen(function*() {
    const store = yield* Store
    const owner = options.owner ?? Owner.make()
    const leaseMillis = options.leaseMillis ?? 30_000
    const now = yield* Clock.currentTimeMillis
    const existing = yield* store.getRun(runId)
    const staleLocal = existing._tag === "Some" && existing.value.leaseOwner !== undefined &&
      existing.value.leaseOwner !== owner && Owner.isGoneLocally(existing.value.leaseOwner)
    const run = existing._tag === "Some" && existing.value.leaseOwner === owner
      ? existing.value
      : yield* store.claimRun({ id: runId, owner, leaseMillis, now, force: options.force === true || staleLocal })
    return yield* Engine.execute(workflow, run, { owner, leaseMillis, onProgress: options.onProgress })
  })
