/**
 * What several commands share: the shape of a command, the lease a process holds on the runs it
 * executes, whether to color a stream, the check of an input against a workflow's schema, and why
 * queued runs are not starting.
 */
import type { Workflow } from "@weft/core"
import { Engine, type Errors, Limits, Store } from "@weft/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Os from "node:os"
import type { Flags } from "../Flags.js"
import { UsageError } from "../UsageError.js"

/** What a command fails with; `main` turns each into its message and exit code. */
export type CommandError =
  | UsageError
  | Errors.RunNotFound
  | Errors.StoreUnavailable
  | Errors.SchemaTooNew
  | Errors.LeaseLost

/** A command: its positional arguments and flags in, the process's exit code out. */
export type Command = (positionals: ReadonlyArray<string>, flags: Flags) => Effect.Effect<number, CommandError>

/** The lease on a run this process executes; the engine renews it by heartbeat. */
export const LEASE_MILLIS = 30_000

/** Whether to color what goes to `stream`: a TTY, and NO_COLOR unset. */
export const color = (stream: NodeJS.WriteStream) => stream.isTTY === true && process.env.NO_COLOR === undefined

/**
 * Why each queued run of `runs` that is due is not starting, by run id, when queue limits hold it
 * back (see `Limits.whyQueued`): one look at the store per queue and key among them.
 */
export const blockedRuns = (runs: ReadonlyArray<Store.RunRecord>) =>
  Effect.gen(function*() {
    const blocked = new Map<string, string>()
    const queued = runs.filter((run) => run.status === "queued")
    if (queued.length === 0) return blocked
    const store = yield* Store.Store
    const now = yield* Clock.currentTimeMillis
    const states = new Map<string, Store.QueueState>()
    for (const run of queued) {
      const group = JSON.stringify([run.queue, run.concurrencyKey ?? null])
      let state = states.get(group)
      if (state === undefined) {
        state = yield* store.queueState({ queue: run.queue, key: run.concurrencyKey, now })
        states.set(group, state)
      }
      const why = Limits.whyQueued(run, state, now)
      if (why !== undefined) blocked.set(run.id, why)
    }
    return blocked
  })

/** Checks the input against the workflow's schema before anything is written. */
export const validateInput = (workflow: Workflow.Any, input: unknown, given: boolean) => {
  const decoded = Schema.decodeUnknownEither(workflow.input)(input)
  if (Either.isRight(decoded)) return Effect.void
  const { issue, path } = Engine.describeParseError(decoded.left)
  const expected = String(workflow.input.ast)
  return Effect.fail(
    new UsageError({
      message: given
        ? `input does not match workflow "${workflow.name}"${
          path === "" ? "" : ` at ${path}`
        }: ${issue}\n  expected: ${expected}`
        : `workflow "${workflow.name}" needs an input: --input '<json>' or --input @file.json\n  expected: ${expected}`
    })
  )
}

/** Who asks (to cancel, to re-drive), as recorded with the run: the user and host of this command line. */
export const requester = (): string => {
  const user = (() => {
    try {
      return Os.userInfo().username
    } catch {
      return process.env.USER ?? "unknown"
    }
  })()
  return `cli:${user}@${Os.hostname()}`
}
