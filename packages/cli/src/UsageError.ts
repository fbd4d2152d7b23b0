/**
 * Bad usage or bad input given to the CLI: the command prints the message and exits with code 2,
 * having written nothing to the store.
 */
import * as Data from "effect/Data"

/** A mistake in what the user asked for, with a message that says how to fix it. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}
