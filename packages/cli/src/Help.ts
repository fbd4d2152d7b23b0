/**
 * The help texts of the `weft` command, one per command, each with an example.
 */

/** Exit codes, as documented in the README. */
export const ExitCode = {
  /** The run succeeded (or the command did what it was asked). */
  ok: 0,
  /** The run failed with a typed error. */
  failed: 1,
  /** Bad usage or input; nothing was written to the store. */
  usage: 2,
  /** The run failed with a defect (a bug: a thrown exception, an undeclared error). */
  defect: 3,
  /** The store cannot be used (unreachable, locked, a newer schema). */
  store: 4,
  /** Interrupted (Ctrl-C); the run stays resumable. */
  interrupted: 130
} as const

export const main = `weft — durable workflows on Effect

Usage: weft <command> [options]

Commands:
  run <module> [workflow]   run a workflow in this process, with live progress
  resume <run-id>           continue an interrupted or crashed run from its journal
  start <module> [workflow] queue a run for a worker and print its id
  worker <module...>        claim queued runs and execute them, until SIGINT or SIGTERM
  signal <run-id> <name>    deliver a signal (an external event) to a run
  cancel <run-id>           cancel a run: stop it, undo its completed steps
  retry <run-id>            re-drive a failed run from its failed step; --status failed for many
  list                      list runs, newest first
  show <run-id>             a run's timeline of steps and attempts, and its cause tree
  workflows <module>        the workflows a module exports, with their schemas
  help [command]            help for a command

Global options:
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db, or $WEFT_STORE), postgres://URL
                            or memory:
  --json                    print data as JSON on stdout
  --log-format <format>     how stderr lines are written: pretty (for a person), json (one object per
                            line) or logfmt (or $WEFT_LOG_FORMAT); default pretty, and json for weft
                            worker when stderr is not a terminal
  --log-level <level>       the least severe log lines written: debug, info (default), warning, error
                            or none (or $WEFT_LOG_LEVEL)
  --version                 print weft's version

Exit codes: 0 succeeded, 1 failed with a typed error, 2 bad usage or input (nothing written),
3 defect, 4 store unavailable, 130 interrupted (the run stays resumable). A worker stopped by
SIGINT or SIGTERM exits 0.

Example:
  weft run examples/checkout.ts --input '{"id":"order-1","items":[{"sku":"book","quantity":1}],"card":"4242"}'
`

export const commands: Record<string, string> = {
  run: `Usage: weft run <module> [workflow] [options]

Starts a run of a workflow exported by a TypeScript or JavaScript module and executes it in this
process. Progress goes to stderr; the result goes to stdout. On failure, the full cause trace.
Starting again with the same --id (or the same idempotency key) continues or returns that run.

Options:
  --input <json|@file>      the workflow's input as JSON, or @path to a JSON file
  --id <run-id>             the run's id (default: from the workflow's idempotency key, or new)
  --correlation-id <id>     your id for the run (a request id): stored with it, on every log line
                            it writes, and inherited by its child runs
  --if-finished <policy>    when that run has finished: return (show it, the default) or
                            restart-failed (start a failed or cancelled run over, same id)
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print the result (or the failure trace) as JSON
  --log-format <format>     pretty (default), json or logfmt: progress and logs as records on stderr

Example:
  weft run examples/checkout.ts checkout --input @examples/order.json --id order-1
`,
  resume: `Usage: weft resume <run-id> [options]

Continues a run that was interrupted (Ctrl-C) or whose process died: completed steps return their
journaled results without running again. A run held by a live process elsewhere is left alone
unless --force is given.

Options:
  --module <path>           the workflow module (default: the one the run was started from)
  --force                   take the run even if another process's lease is still live
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print the result (or the failure trace) as JSON

Example:
  weft resume YourRunId
`,
  list: `Usage: weft list [options]

Lists runs, newest first.

Options:
  --status <status>         queued, running, sleeping, waiting, succeeded, failed or cancelled
  --workflow <name>         only runs of this workflow
  --since <when>            only runs updated since then (a finished run: when it ended), as how long
                            ago ("2 hours", 30m, 1d) or an ISO date (2024-05-01T12:00:00Z)
  --limit <n>               at most n runs (default 50)
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print the runs as JSON

Example:
  weft list --status failed --workflow checkout --since "2 hours" --limit 10
`,
  retry: `Usage: weft retry <run-id> [options]
       weft retry --status failed [--workflow <name>] [--since <when>] [--limit <n>] [options]

Re-drives a run that failed (or was cancelled): it goes back to its queue for a worker (or weft
resume), keeping the journal of its completed steps, which do not run again; its failed step and
what came after it run again, with their retry policies' whole budget. Steps whose compensations
ran are done again; an awaited child run that failed is re-driven with it. Every earlier attempt
stays in the history, and weft show lists each re-drive. Without a run id, re-drives every run the
filter selects and prints each. Exit code 0; 2 for an unknown run, a run that has not failed, or
an unknown step.

Options:
  --from-step <step-id>     cut the journal at this step instead (as weft show prints it, e.g.
                            charge-card or ship[1]/pack#2): it and everything after it run again
  --reason <text>           why, recorded with the re-drive (default: re-driven from the command line)
  --wait                    wait for the run to end and print its result (exit code as weft run)
  --status <status>         bulk: failed or cancelled
  --workflow <name>         bulk: only runs of this workflow
  --since <when>            bulk: only runs that ended since then ("2 hours", 30m, an ISO date)
  --limit <n>               bulk: at most n runs, newest first (default 100)
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print what was re-driven as JSON

Example:
  weft retry YourRunId --from-step charge-card --reason "card limit raised" --wait
`,
  show: `Usage: weft show <run-id> [options]

Prints a run's timeline (each step and attempt with its duration and error) and, for a failed
run, its full cause tree.

Options:
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print the trace as JSON

Example:
  weft show YourRunId
`,
  start: `Usage: weft start <module> [workflow] [options]

Queues a run of a workflow for a worker (weft worker) and prints its id on stdout. The input is
checked against the workflow's schema first; nothing is written when it does not match. Starting
again with the same --id (or the same idempotency key) returns the existing run.

Options:
  --input <json|@file>      the workflow's input as JSON, or @path to a JSON file
  --id <run-id>             the run's id (default: from the workflow's idempotency key, or new)
  --queue <name>            the queue to put it on (default: the workflow's queue, else default)
  --priority <n>            a whole number; higher runs first (default 0)
  --delay <duration>        do not start it before this long from now, e.g. "30 seconds", "5 minutes"
  --correlation-id <id>     your id for the run (a request id): stored with it, on every log line
                            it writes, and inherited by its child runs
  --if-finished <policy>    when the run with that id or key has finished: return it (the default) or
                            restart-failed (start a failed or cancelled run over, under the same id)
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print {"runId": ...} instead of the bare id

Example:
  weft start examples/checkout.ts --input @examples/order.json --priority 5 --delay "10 seconds"
`,
  worker: `Usage: weft worker <module...> [options]

Runs a worker: claims queued runs of the workflows the modules export (highest priority first,
then oldest) and executes them, several at once, with the layers the modules export. Prints a line
on stderr as each run starts and ends. SIGINT or SIGTERM stops it: each run in flight stops at its
next step boundary, or is interrupted if it does not reach one within --grace; either way it is
released, stays queued, and any worker resumes it from its journal. Exit code 0; a second signal
exits at once with 130. The queue limits the modules declare (Queue.make) are recorded in the
store at start; every worker honours the limits recorded there (the last declaration wins).

Options:
  --concurrency <n>         at most n runs at once (default 10)
  --queue <name>            a queue to claim from; repeat it or give a comma list (default: the
                            queues of the modules' workflows, default for those that name none)
  --grace <duration>        how long a shutdown lets runs in flight reach their next step boundary
                            before interrupting them, e.g. "2 minutes" (default 30 seconds)
  --lease <duration>        how long a run stays leased to this worker, renewed by heartbeat; if the
                            worker dies, another takes the run over once it expires (default 30
                            seconds, at least 1 second)
  --max-recoveries <n>      a run taken over more than n times (its workers kept dying on it) fails
                            with RecoveryLimit instead of running again, for workflows that declare
                            no maxRecoveries of their own (default 5)
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --log-format <format>     json (default when stderr is not a terminal: one object per line, with
                            runId, workflow, stepId, attempt, workerId and correlationId), logfmt, or
                            pretty (default in a terminal)
  --log-level <level>       debug, info (default), warning, error or none

Example:
  weft worker examples/checkout.ts --concurrency 4 --queue default,urgent --log-format json
`,
  signal: `Usage: weft signal <run-id> <name> [options]

Delivers signal <name> to a run: a run waiting for it (Workflow.signal) resumes; otherwise it waits
in the run's mailbox until the run asks for it. The payload is checked against the schema the
workflow declares for the signal (Workflow.make({ signals })); nothing is stored when it does not
match (exit 2), nor when the run has finished.

Options:
  --payload <json|@file>    the signal's payload as JSON, or @path to a JSON file
  --module <path>           the workflow module (default: the one the run was started from)
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print {"runId", "signal", "seq", "woke"}

Example:
  weft signal YourRunId approved --payload '{"by":"ann"}'
`,
  cancel: `Usage: weft cancel <run-id> [options]

Asks for a run to be cancelled. The worker that holds it interrupts it at once (in-flight steps are
interrupted, their resources released), runs the compensations of its completed steps, latest
first, and ends it cancelled with who asked and why (weft show prints them). A run that no worker
holds (queued, sleeping, waiting) is cancelled by the next worker that claims it. A finished run is
left as it is. Exit code 0 either way.

Options:
  --reason <text>           why, recorded with the run (default: cancelled from the command line)
  --wait                    wait until the run has stopped and print its final status
  --store <location>        sqlite:PATH (default sqlite:.weft/weft.db), postgres://URL or memory:
  --json                    print {"runId", "requested", "status"}

Example:
  weft cancel YourRunId --reason "customer changed plans" --wait
`,
  workflows: `Usage: weft workflows <module> [options]

Lists the workflows a module exports, with their input, success and error schemas.

Options:
  --json                    print them as JSON (schemas as JSON Schema where possible)

Example:
  weft workflows examples/checkout.ts
`
}
