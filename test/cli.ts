/**
 * Runs the real `weft` binary as a child process, for end-to-end tests.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export const root = Path.resolve(import.meta.dirname, "..")
export const bin = Path.join(root, "packages/cli/bin/weft.mjs")
export const example = (name: string) => Path.join(root, "examples", name)
export const fixture = (name: string) => Path.join(root, "test/fixtures", name)

// pnpm's bin shims set NODE_PATH, which would let a module outside any project resolve packages
// it could not resolve from a user's shell: the child gets the environment a user has. The tests read
// the human form of stderr, which a worker whose stderr is not a terminal would write as JSON by
// default: WEFT_LOG_FORMAT says pretty unless a test gives another (or "" for the default).
const childEnv = (extra: Record<string, string> = {}) => {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: "1",
    WEFT_LOG_FORMAT: "pretty",
    ...extra
  }
  delete env.NODE_PATH
  return env
}

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A fresh temporary directory. */
export const tempDir = (): string => Fs.mkdtempSync(Path.join(Os.tmpdir(), "weft-test-"))

/** Runs `weft args...` to its end. */
export const weft = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) =>
  new Promise<Result>((resolve) => {
    const child = ChildProcess.spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd ?? root,
      env: childEnv(options.env),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

/** Starts `weft args...` and returns the child with a helper to wait for a line on stderr. */
export const spawnWeft = (args: ReadonlyArray<string>, options: { env?: Record<string, string> } = {}) => {
  const child = ChildProcess.spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: childEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  const waiters: Array<{ pattern: RegExp; resolve: () => void }> = []
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => {
    stderr += d
    for (const w of [...waiters]) {
      if (w.pattern.test(stderr)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  })
  const done = new Promise<Result>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  )
  const waitFor = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      if (pattern.test(stderr)) return resolve()
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in:\n${stderr}`)), timeoutMs)
      waiters.push({
        pattern,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        }
      })
    })
  return { child, done, waitFor }
}

/** The run id printed in the `▶ workflow <id> on ...` line. */
export const runIdOf = (stderr: string): string => {
  const match = /▶ (?:resuming )?\S+ (\S+) on /.exec(stderr)
  if (match === null) throw new Error(`no run id in:\n${stderr}`)
  return match[1]
}
