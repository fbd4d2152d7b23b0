/**
 * @weft/runtime: the engine, the stores and the client.
 */

/** Starts runs and reads their results with the declared types. */
export * as Client from "./Client.js"

/** Executes a claimed run by replay of its journal. */
export * as Engine from "./Engine.js"

/** The runtime's failures: StoreUnavailable, RunConflict, RunNotFound, LeaseLost, ... */
export * as Errors from "./Errors.js"

/** HTTP calls for steps: responses classified into retryable and rejected typed errors. */
export * as Http from "./Http.js"

/** Structured logs: JSON, logfmt or pretty records with the run's context, and a layer for embedders. */
export * as Logging from "./Logging.js"

/** Queue limits: where a run goes, what a worker declares, the rate window, why a run waits. */
export * as Limits from "./Limits.js"

/** The in-memory store, for tests. */
export * as MemoryStore from "./MemoryStore.js"

/** Lease owner identities. */
export * as Owner from "./Owner.js"

/** The shared store: PostgreSQL. */
export * as PgStore from "./PgStore.js"

/** Claims a run for this process and executes it. */
export * as Runner from "./Runner.js"

/** The embedded default store: SQLite in a file. */
export * as SqliteStore from "./SqliteStore.js"

/** The store over any @effect/sql client, with its migrations. */
export * as SqlStore from "./SqlStore.js"

/** The storage contract. */
export * as Store from "./Store.js"

/** A worker that claims queued runs and executes them, several at once, and shuts down gracefully. */
export * as Worker from "./Worker.js"

/** weft inside an Effect service: a layer with a Client and a Worker. */
export * as Weft from "./Weft.js"
