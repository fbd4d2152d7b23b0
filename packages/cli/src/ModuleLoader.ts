/**
 * Loads a user's workflow module (TypeScript or JavaScript) with tsx and finds the workflows it
 * exports. Every way this can go wrong (no such file, an import that throws, a dependency that does
 * not resolve, a module with no workflow, an unknown name) is a `UsageError` with a message that
 * says what to do.
 */
import { Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"
import { UsageError } from "./UsageError.js"

/** A loaded module: its path, its workflows by name, and the Layer it exports for their services. */
export interface LoadedModule {
  readonly path: string
  readonly workflows: ReadonlyArray<{ readonly exportName: string; readonly workflow: Workflow.Any }>
  readonly layer: Layer.Layer<any, any, never> | undefined
}

let registered = false

// Both hooks: the ESM one for `import`, the CJS one for a .ts file in a folder whose package.json
// does not say "type": "module" (tsx treats it as CommonJS).
const registerTsx = Effect.promise(async () => {
  if (registered) return
  registered = true
  const esm = await import("tsx/esm/api")
  const cjs = await import("tsx/cjs/api")
  esm.register()
  cjs.register()
})

const describeImportError = (path: string, error: unknown): string => {
  const e = error as NodeJS.ErrnoException & { url?: string }
  const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error)
  if (e?.code === "ERR_MODULE_NOT_FOUND" || e?.code === "MODULE_NOT_FOUND") {
    const pkg = /Cannot find (?:package|module) '([^']+)'/.exec(String(e.message))?.[1]
    if (pkg !== undefined && !pkg.startsWith(".") && !pkg.startsWith("/")) {
      return `module ${path} imports "${pkg}", which cannot be resolved from ${Path.dirname(path)}.\n` +
        `Bare imports resolve from the module's own folder: put the module inside a project that depends on ` +
        `${pkg} (npm install ${pkg}), or next to one.\n\n${text}`
    }
  }
  return `module ${path} failed to load:\n${text}`
}

/** Imports a workflow module. */
export const load = (modulePath: string): Effect.Effect<LoadedModule, UsageError> =>
  Effect.gen(function*() {
    const path = Path.resolve(modulePath)
    if (!Fs.existsSync(path)) {
      return yield* Effect.fail(new UsageError({ message: `module not found: ${modulePath} (looked at ${path})` }))
    }
    if (Fs.statSync(path).isDirectory()) {
      return yield* Effect.fail(
        new UsageError({ message: `${modulePath} is a directory: give the workflow module file` })
      )
    }
    yield* registerTsx
    const mod = yield* Effect.tryPromise({
      try: () => import(Url.pathToFileURL(path).href) as Promise<Record<string, unknown>>,
      catch: (error) => new UsageError({ message: describeImportError(path, error) })
    })
    const workflows: Array<{ exportName: string; workflow: Workflow.Any }> = []
    const seen = new Set<unknown>()
    const consider = (exportName: string, value: unknown) => {
      if (Workflow.isWorkflow(value) && !seen.has(value)) {
        seen.add(value)
        workflows.push({ exportName, workflow: value })
      }
    }
    for (const [name, value] of Object.entries(mod)) {
      if (name === "default" && typeof value === "object" && value !== null && !Workflow.isWorkflow(value)) {
        for (const [inner, v] of Object.entries(value)) consider(inner, v)
      } else {
        consider(name, value)
      }
    }
    const layer = Layer.isLayer(mod.layer) ? (mod.layer as Layer.Layer<any, any, never>) : undefined
    return { path, workflows, layer }
  })

/**
 * Picks a workflow by its name or export name; with no name, the module's only workflow.
 */
export const pick = (
  loaded: LoadedModule,
  name: string | undefined
): Effect.Effect<Workflow.Any, UsageError> => {
  const names = loaded.workflows.map((w) => w.workflow.name)
  if (loaded.workflows.length === 0) {
    return Effect.fail(
      new UsageError({
        message: `module ${loaded.path} exports no workflow: export one made with Workflow.make, e.g.\n` +
          `  export const myWorkflow = Workflow.make({ name: "my-workflow", ... })`
      })
    )
  }
  if (name === undefined) {
    if (loaded.workflows.length === 1) return Effect.succeed(loaded.workflows[0].workflow)
    return Effect.fail(
      new UsageError({
        message: `module ${loaded.path} exports ${loaded.workflows.length} workflows: name one of ${names.join(", ")}`
      })
    )
  }
  const found = loaded.workflows.find((w) => w.workflow.name === name || w.exportName === name)
  return found === undefined
    ? Effect.fail(
      new UsageError({ message: `unknown workflow "${name}" in ${loaded.path}; it exports: ${names.join(", ")}` })
    )
    : Effect.succeed(found.workflow)
}
