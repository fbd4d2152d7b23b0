/**
 * @weft/cli: the `weft` command as a library, for embedding its rendering or running it in tests.
 */

/** The command line: `main(argv)` returns the exit code. */
export * as Main from "./Main.js"

/** Rendering of runs: cause trees, timelines, progress lines, run tables. */
export * as Render from "./Render.js"

/** Runs and journals as data, the shape of `--json`. */
export * as Trace from "./Trace.js"
