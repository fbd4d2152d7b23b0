// @ts-check
/** The installed version of a peer, from its package.json. */
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"

const require = createRequire(import.meta.url)

/**
 * @param {string} name
 * @returns {string}
 */
export const packageVersion = (name) => {
  // Some packages do not export ./package.json: find it above the resolved entry point.
  let dir = Path.dirname(require.resolve(name))
  for (;;) {
    const file = Path.join(dir, "package.json")
    if (Fs.existsSync(file)) {
      const json = JSON.parse(Fs.readFileSync(file, "utf8"))
      if (json.name === name && json.version !== undefined) return json.version
    }
    const parent = Path.dirname(dir)
    if (parent === dir) return "unknown"
    dir = parent
  }
}
