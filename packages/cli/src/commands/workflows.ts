/**
 * `weft workflows <module>`: the workflows a module exports, with their input, success and error
 * schemas, as text or (with `--json`) as JSON Schema where possible.
 */
import { Queue } from "@weft/core"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { ExitCode } from "../Help.js"
import * as ModuleLoader from "../ModuleLoader.js"
import * as Output from "../Output.js"
import { UsageError } from "../UsageError.js"
import type { Command } from "./shared.js"

// Schema's own printing shows a tagged error class as `(X (Encoded side) <-> X)`; a person wants
// the class name and its fields.
const astText = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "Union":
      return ast.types.map(astText).join(" | ")
    case "Transformation": {
      const name = SchemaAST.getIdentifierAnnotation(ast.to).pipe(Option.getOrUndefined)
      if (name === undefined || ast.from._tag !== "TypeLiteral") return String(ast)
      const fields = ast.from.propertySignatures
        .filter((p) => p.name !== "_tag")
        .map((p) => `${String(p.name)}${p.isOptional ? "?" : ""}: ${String(p.type)}`)
      return fields.length === 0 ? name : `${name} { ${fields.join("; ")} }`
    }
    default:
      return String(ast)
  }
}

const schemaText = (schema: Schema.Schema.AnyNoContext) => astText(schema.ast)

const jsonSchema = (schema: Schema.Schema.AnyNoContext): unknown => {
  try {
    return JSONSchema.make(schema)
  } catch {
    return { description: String(schema.ast) }
  }
}

export const workflowsCommand: Command = (positionals, flags) =>
  Effect.gen(function*() {
    const [modulePath, ...extra] = positionals
    if (modulePath === undefined) {
      return yield* Effect.fail(new UsageError({ message: "workflows needs a module: weft workflows <module>" }))
    }
    if (extra.length > 0) {
      return yield* Effect.fail(new UsageError({ message: `unexpected arguments: ${extra.join(" ")}` }))
    }
    const loaded = yield* ModuleLoader.load(modulePath)
    if (flags.json === true) {
      const data = loaded.workflows.map(({ exportName, workflow }) => ({
        name: workflow.name,
        export: exportName,
        description: workflow.description,
        version: workflow.version,
        idempotencyKey: workflow.idempotencyKey !== undefined,
        queue: workflow.queue === undefined ? Queue.defaultName : Queue.nameOf(workflow.queue),
        ...(Queue.isQueue(workflow.queue)
          ? { queueLimits: { concurrency: workflow.queue.concurrency, rateLimit: workflow.queue.rateLimit } }
          : {}),
        ...(workflow.concurrencyKey === undefined ? {} : { concurrencyLimit: workflow.concurrencyLimit }),
        input: jsonSchema(workflow.input),
        success: jsonSchema(workflow.success),
        error: jsonSchema(workflow.error)
      }))
      yield* Output.out(`${JSON.stringify(data)}\n`)
      return ExitCode.ok
    }
    if (loaded.workflows.length === 0) {
      yield* Output.out(`${loaded.path} exports no workflow\n`)
      return ExitCode.ok
    }
    const lines: Array<string> = []
    for (const { exportName, workflow } of loaded.workflows) {
      lines.push(`${workflow.name}${exportName === workflow.name ? "" : ` (export ${exportName})`}`)
      if (workflow.description !== undefined) lines.push(`  ${workflow.description}`)
      lines.push(`  input:   ${schemaText(workflow.input)}`)
      lines.push(`  success: ${schemaText(workflow.success)}`)
      lines.push(`  error:   ${schemaText(workflow.error)}`)
      if (workflow.idempotencyKey !== undefined) {
        lines.push(`  idempotent: a second start with the same key is the same run`)
      }
      if (workflow.queue !== undefined) {
        lines.push(
          `  queue:   ${Queue.nameOf(workflow.queue)}${
            Queue.isQueue(workflow.queue) ? ` (${Queue.describeLimits(workflow.queue)})` : ""
          }`
        )
      }
      if (workflow.concurrencyKey !== undefined) {
        lines.push(`  keyed:   at most ${workflow.concurrencyLimit} running at once per concurrency key`)
      }
      lines.push("")
    }
    yield* Output.out(lines.join("\n"))
    return ExitCode.ok
  })
