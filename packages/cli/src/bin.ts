/**
 * The entry point of the `weft` binary: runs the command line as one fiber, turns SIGINT and
 * SIGTERM into its interruption (finalizers run, the run's lease is released), and a second
 * signal into an immediate exit.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Main from "./Main.js"

const fiber = Effect.runFork(Main.main(process.argv.slice(2)))

let signalled = false
const onSignal = (signal: NodeJS.Signals) => {
  if (signalled) {
    process.stderr.write(`\nweft: second ${signal}: exiting now\n`)
    process.exit(130)
  }
  signalled = true
  Effect.runFork(Fiber.interrupt(fiber))
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

fiber.addObserver((exit) => {
  process.exitCode = Main.exitCodeOf(exit)
  process.removeListener("SIGINT", onSignal)
  process.removeListener("SIGTERM", onSignal)
})
