/**
 * What a suspended run waits for, as the stores keep it in `waiting_for`: one key (`approved` for
 * a signal, `child/<run id>` for a child run) when it waits for one thing, as stores always did, or
 * the keys one per line, wrapped in newlines, when the branches of its task groups wait for
 * several. A delivery or a child's end wakes the run when its key is among them.
 */

/** The key of a child run's end. */
export const childKey = (childRunId: string): string => `child/${childRunId}`

/** `waiting_for` for these keys: null for none, the key for one, `\nkey1\nkey2\n` for several. */
export const encode = (keys: ReadonlyArray<string>): string | null => {
  const unique = [...new Set(keys)]
  return unique.length === 0 ? null : unique.length === 1 ? unique[0] : `\n${unique.join("\n")}\n`
}

/** Whether a run whose `waiting_for` is `waitingFor` waits for `key`. */
export const includes = (waitingFor: string | null | undefined, key: string): boolean =>
  waitingFor !== null && waitingFor !== undefined && (waitingFor === key || waitingFor.includes(`\n${key}\n`))

/** The form `includes` looks for in a list: `\nkey\n` (for SQL: `waiting_for = key OR contains(...)`). */
export const listed = (key: string): string => `\n${key}\n`
