/**
 * Who holds a run's lease: a worker identity made of host, process id and a random suffix, so
 * a process on the same host can tell that a lease's holder is gone (its pid no longer exists)
 * and take the run over at once instead of waiting for the lease to expire.
 */
import * as Crypto from "node:crypto"
import * as Os from "node:os"

/** A new owner id for this process: `host:pid:random`. */
export const make = (): string => `${Os.hostname()}:${process.pid}:${Crypto.randomBytes(3).toString("hex")}`

/** The host and pid of an owner id, when it is one of ours. */
export const parse = (owner: string): { readonly host: string; readonly pid: number } | undefined => {
  const match = /^(.*):(\d+):[0-9a-f]+$/.exec(owner)
  return match === null ? undefined : { host: match[1], pid: Number(match[2]) }
}

/** Whether the owner was a process on this host that no longer runs (so its lease is stale). */
export const isGoneLocally = (owner: string): boolean => {
  const parsed = parse(owner)
  if (parsed === undefined || parsed.host !== Os.hostname()) return false
  if (parsed.pid === process.pid) return false
  try {
    process.kill(parsed.pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH"
  }
}
