/**
 * `weft help [command]`, `weft --help` and `weft <command> --help`: prints a command's help, or the
 * overview when there is no such command.
 */
import * as Effect from "effect/Effect"
import * as Help from "../Help.js"
import * as Output from "../Output.js"

/** Prints the help for `topic` (the overview when it names no command); exit code 0. */
export const helpCommand = (topic: string | undefined): Effect.Effect<number> =>
  Effect.as(
    Output.out(topic !== undefined && topic in Help.commands ? Help.commands[topic] : Help.main),
    Help.ExitCode.ok
  )
