/**
 * The committed schema dumps (`schema/sqlite.sql`, `schema/pg.sql`): how they are produced, and a
 * script that regenerates them. A test compares them with what the migrations build, so that
 * every schema change shows in review.
 *
 * Regenerate: npx tsx --conditions @weft/source packages/runtime/test/dumpSchema.ts
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import * as Migrations from "../src/Migrations.js"
import * as SqliteStore from "../src/SqliteStore.js"

/** The command that rewrites the committed dumps from the migrations. */
export const regenerateCommand = "npx tsx --conditions @weft/source packages/runtime/test/dumpSchema.ts"

/** Where the committed dumps live. */
export const schemaDirectory = Url.fileURLToPath(new URL("../../../schema/", import.meta.url))

const header = (what: string) =>
  `-- weft's ${what} schema after every migration (latest version ${Migrations.latestVersion}).\n` +
  `-- Generated: do not edit. Regenerate with: ${regenerateCommand}\n`

const normalize = (statement: string): string =>
  statement.replace(/\r\n/g, "\n").split("\n").map((line) => line.trimEnd()).join("\n").trim()

/** The live SQLite schema, from `sqlite_master` in name order. */
export const sqliteSchema: Effect.Effect<string, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ sql: string }>`SELECT sql FROM sqlite_master
    WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name`
  return header("SQLite") + rows.map((row) => `\n${normalize(row.sql)};\n`).join("")
})

/** The PostgreSQL schema as the migrations write it (not yet read back from a live server). */
export const pgSchema = (): string =>
  header("PostgreSQL") +
  [
    { title: "bootstrap (created by the migrator itself)", ddl: Migrations.bootstrap.pg },
    ...Migrations.migrations.map((migration) => ({
      title: `version ${migration.version}: ${migration.name}`,
      ddl: migration.pg
    }))
  ].map(({ ddl, title }) =>
    `\n-- ${title}\n` + Migrations.statements(ddl).map((statement) => `\n${normalize(statement)};\n`).join("")
  ).join("")

/**
 * The live PostgreSQL schema of the first schema on the search path, read from the catalogs in
 * name order: each table's columns (type, collation, default, NOT NULL), its constraints and its
 * indexes, as the server itself prints them (without the schema's name). Two schemas built differently compare equal only
 * when the server holds the same tables.
 */
export const pgCatalogSchema: Effect.Effect<string, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const columns = yield* sql<{ table: string; column: string; definition: string }>`
    SELECT c.relname AS table, a.attname AS column,
      format_type(a.atttypid, a.atttypmod)
        || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
          THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
        || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
        || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') AS definition
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE c.relkind = 'r'
    ORDER BY c.relname COLLATE "C", a.attnum`
  const constraints = yield* sql<{ table: string; name: string; definition: string }>`
    SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
    ORDER BY c.relname COLLATE "C", k.conname COLLATE "C"`
  const indexes = yield* sql<{ definition: string }>`
    SELECT replace(pg_get_indexdef(i.indexrelid), ' ON ' || quote_ident(n.nspname) || '.', ' ON ') AS definition
    FROM pg_index i
    JOIN pg_class x ON x.oid = i.indexrelid
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
    ORDER BY x.relname COLLATE "C"`
  const tables = [...new Set(columns.map((row) => row.table))]
  return [
    ...tables.map((table) =>
      `CREATE TABLE ${table} (\n` +
      [
        ...columns.filter((row) => row.table === table).map((row) => `  ${row.column} ${row.definition}`),
        ...constraints.filter((row) => row.table === table).map((row) => `  CONSTRAINT ${row.name} ${row.definition}`)
      ].join(",\n") +
      "\n);\n"
    ),
    ...indexes.map((row) => `${row.definition};\n`)
  ].join("\n")
})

/** Builds a fresh SQLite store in a temporary file and returns its schema dump. */
export const freshSqliteSchema: Effect.Effect<string, unknown> = Effect.acquireUseRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-schema-"))),
  (directory) => sqliteSchema.pipe(Effect.provide(SqliteStore.layer({ filename: Path.join(directory, "weft.db") }))),
  (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
)

const main = Effect.gen(function*() {
  const sqlite = yield* freshSqliteSchema
  Fs.mkdirSync(schemaDirectory, { recursive: true })
  Fs.writeFileSync(Path.join(schemaDirectory, "sqlite.sql"), sqlite)
  Fs.writeFileSync(Path.join(schemaDirectory, "pg.sql"), pgSchema())
  yield* Effect.logInfo(`wrote ${schemaDirectory}sqlite.sql and pg.sql`)
})

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  Effect.runPromise(main).catch((error) => {
    process.exitCode = 1
    process.stderr.write(`${String(error)}\n`)
  })
}
