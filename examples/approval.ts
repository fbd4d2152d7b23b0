/**
 * An expense report that waits for a person's approval: a signal. The workflow declares the signal
 * and its payload's schema (`signals: { approved: Approval }`), so `weft signal` checks a payload
 * before it stores anything. While it waits, the run is `waiting`: suspended, holding no worker
 * slot and no memory, with its deadline (`approveWithinSeconds`, default one hour) as wake time.
 *
 * In one terminal, queue a report and start a worker:
 *
 *   weft start examples/approval.ts --input '{"id":"exp-1","employee":"bob","amount":42.5}'
 *     → prints the run id: e969eb63-ab44-4fe2-9a1f-cbe6194ef665
 *   weft worker examples/approval.ts
 *     → worker vm:31099:952640 on sqlite:.weft/weft.db: queues default; concurrency 10; lease 30s; workflows expense-approval
 *       ▶ expense-approval e969eb63-ab44-4fe2-9a1f-cbe6194ef665 started
 *           info: approval asked for exp-1 (42.50 for bob): weft signal e969eb63-ab44-4fe2-9a1f-cbe6194ef665 approved --payload '{"by":"<name>","approve":true}'
 *       ⏾ expense-approval e969eb63-ab44-4fe2-9a1f-cbe6194ef665 suspended, waiting for signal approved until 2026-11-22T09:37:04.662Z
 *
 * In another, look at it and answer:
 *
 *   weft show e969eb63-ab44-4fe2-9a1f-cbe6194ef665
 *     → expense-approval e969eb63-ab44-4fe2-9a1f-cbe6194ef665  ◷ waiting
 *         version  unversioned
 *         created  2026-11-22T08:37:02.579Z
 *         reason   waiting for signal approved until 2026-11-22T09:37:04.662Z
 *
 *         +35ms  0ms  ✓ validate
 *         +54ms  0ms  ✓ notify-approver
 *         +61ms       ◷ ✉ signal approved  waiting, times out at 09:37:04Z (after 1h)
 *   weft signal e969eb63-ab44-4fe2-9a1f-cbe6194ef665 approved --payload '{"by":"ann","approve":"yes"}'
 *     → refused, nothing stored, exit code 2:
 *       weft: signal "approved" for run e969eb63-ab44-4fe2-9a1f-cbe6194ef665 rejected: the payload does not match its schema at approve: approve: Expected boolean, actual "yes"
 *   weft signal e969eb63-ab44-4fe2-9a1f-cbe6194ef665 approved --payload '{"by":"ann","approve":true}'
 *     → signal approved delivered to run e969eb63-ab44-4fe2-9a1f-cbe6194ef665: it was waiting for it and resumes
 *
 * The worker takes the run again (within its one-second poll on SQLite; PostgreSQL pushes the
 * wake-up) and replays the steps before the wait from the journal:
 *
 *       ▶ expense-approval e969eb63-ab44-4fe2-9a1f-cbe6194ef665 started
 *           info: paying 4250 cents to bob
 *       ✓ expense-approval e969eb63-ab44-4fe2-9a1f-cbe6194ef665 succeeded
 *
 *   weft show e969eb63-ab44-4fe2-9a1f-cbe6194ef665
 *     → ...
 *         output    { report: "exp-1", status: "paid", by: "ann", payment: "pay_exp-1" }
 *
 *         +35ms   0ms  ✓ validate
 *         +54ms   0ms  ✓ notify-approver
 *         +61ms   10s  ✓ ✉ signal approved  { by: "ann", approve: true }
 *         +10.1s  1ms  ✓ pay
 *
 * A signal sent before the run waits (even before any worker runs) waits in the run's mailbox
 * ("signal approved delivered to run <id>: it waits in the run's mailbox"); the run takes it when
 * it gets there, without suspending.
 *
 * Nobody answers in time (`weft run` waits out the suspension in its own process):
 *
 *   weft run examples/approval.ts --input '{"id":"exp-2","employee":"eve","amount":9,"approveWithinSeconds":2}'
 *     → fails with the built-in SignalTimeout, exit code 1:
 *
 *         ✗ expense-approval 084d4559 failed in 2.1s: SignalTimeout
 *         expense-approval(084d4559-ce48-45ec-8b88-d8a9fe83b46b)
 *         ├─ ✓ validate           0ms
 *         ├─ ✓ notify-approver    1ms
 *         └─ ✗ ✉ signal approved  timed out after 2s
 *         cause: SignalTimeout { signal: "approved", step: "$signal:approved", timeoutMillis: 2000 }
 *             no signal "approved" arrived within 2000 ms (step $signal:approved)
 */
import { Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

export const Report = Schema.Struct({
  id: Schema.String,
  employee: Schema.String,
  amount: Schema.Number,
  /** How long the approver has; default one hour. */
  approveWithinSeconds: Schema.optional(Schema.Number.pipe(Schema.positive()))
})
export type Report = typeof Report.Type

/** The approver's answer, sent with `weft signal <run-id> approved --payload '{"by":"ann","approve":true}'`. */
export const Approval = Schema.Struct({ by: Schema.String, approve: Schema.Boolean })

export const Outcome = Schema.Struct({
  report: Schema.String,
  status: Schema.Literal("paid", "rejected"),
  by: Schema.String,
  payment: Schema.optional(Schema.String)
})

/** The report cannot be submitted as it is. */
export class ReportInvalid extends Schema.TaggedError<ReportInvalid>()("ReportInvalid", {
  report: Schema.String,
  problem: Schema.String
}) {}

const validate = Step.make({
  name: "validate",
  success: Schema.Number,
  error: ReportInvalid,
  run: (report: Report) =>
    report.amount > 0
      ? Effect.succeed(Math.round(report.amount * 100))
      : Effect.fail(new ReportInvalid({ report: report.id, problem: "the amount must be positive" }))
})

const notifyApprover = Step.make({
  name: "notify-approver",
  run: (report: Report) =>
    Effect.flatMap(Step.context, ({ runId }) =>
      Effect.log(
        `approval asked for ${report.id} (${report.amount.toFixed(2)} for ${report.employee}): ` +
          `weft signal ${runId} approved --payload '{"by":"<name>","approve":true}'`
      ))
})

const pay = Step.make({
  name: "pay",
  success: Schema.String,
  run: (report: Report, cents: number) =>
    Effect.as(Effect.log(`paying ${cents} cents to ${report.employee}`), `pay_${report.id}`)
})

const recordRejection = Step.make({
  name: "record-rejection",
  run: (report: Report, by: string) => Effect.log(`${report.id} rejected by ${by}`)
})

export const expenseApproval = Workflow.make({
  name: "expense-approval",
  description: "validate an expense report, wait for its approval (a signal), then pay or reject it",
  input: Report,
  success: Outcome,
  error: ReportInvalid,
  idempotencyKey: (report) => report.id,
  signals: { approved: Approval },
  run: (report) =>
    Effect.gen(function*() {
      const cents = yield* validate(report)
      yield* notifyApprover(report)
      const answer = yield* Workflow.signal("approved", Approval, {
        timeout: `${report.approveWithinSeconds ?? 3600} seconds`
      })
      if (!answer.approve) {
        yield* recordRejection(report, answer.by)
        return { report: report.id, status: "rejected" as const, by: answer.by }
      }
      const payment = yield* pay(report, cents)
      return { report: report.id, status: "paid" as const, by: answer.by, payment }
    })
})
