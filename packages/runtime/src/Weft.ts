/**
 * weft inside an Effect service: one layer that provides a `Client` (start runs, await their
 * typed results) and runs a `Worker` for the service's workflows, on the `Store` layer it is given.
 * The worker starts with the layer and shuts down gracefully when the layer is released (its runs
 * reach a step boundary within the grace period and are released for other workers).
 *
 * A service that only starts runs and reads results, while `weft worker` processes execute them,
 * uses `Weft.clientLayer` and no worker.
 */
import type { Workflow } from "@weft/core"
import * as Layer from "effect/Layer"
import * as Client from "./Client.js"
import type { Store } from "./Store.js"
import * as Worker from "./Worker.js"

/** Options of `layer`. */
export interface Options<W extends Workflow.Any> {
  /** The workflows this service's worker executes. */
  readonly workflows: ReadonlyArray<W>
  /** How the worker runs (queues, concurrency, grace, ...). Default: `Worker.Options`' defaults. */
  readonly worker?: Omit<Worker.Options<W>, "workflows"> | undefined
}

/** A Client and a running Worker for `workflows`, on the Store in context. */
export const layer = <W extends Workflow.Any>(
  options: Options<W>
): Layer.Layer<Client.Client | Worker.Worker, never, Store | Workflow.Requirements<W>> =>
  Layer.merge(Client.layer, Worker.layer({ ...options.worker, workflows: options.workflows }))

/** A Client only: start runs and read their results while other processes execute them. */
export const clientLayer: Layer.Layer<Client.Client, never, Store> = Client.layer
