/**
 * Queue declarations and the limits a workflow declares: what they hold, and bad numbers refused
 * when the definition is made (at module load), not in a worker.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Queue, Workflow } from "../src/index.js"

describe("Queue.make", () => {
  it("holds the limits, the rate interval in milliseconds; a limit left out is none", () => {
    const emails = Queue.make({ name: "emails", concurrency: 5, rateLimit: { limit: 100, interval: "1 minute" } })
    expect(emails).toMatchObject({ name: "emails", concurrency: 5, rateLimit: { limit: 100, intervalMillis: 60_000 } })
    expect(Queue.isQueue(emails)).toBe(true)
    expect(Queue.isQueue({ name: "emails" })).toBe(false)
    expect(Queue.make({ name: "plain" })).toMatchObject({ concurrency: undefined, rateLimit: undefined })
    expect(Queue.describeLimits(emails)).toBe("concurrency 5, 100 per 1m")
    expect(Queue.describeLimits(Queue.make({ name: "plain" }))).toBe("no limits")
    expect(Queue.nameOf(emails)).toBe("emails")
    expect(Queue.nameOf("reports")).toBe("reports")
  })

  it("refuses a missing name and limits that are not whole numbers of at least 1", () => {
    expect(() => Queue.make({ name: "" })).toThrow("a queue needs a name")
    expect(() => Queue.make({ name: "q", concurrency: 0 })).toThrow(
      `queue "q": concurrency must be a whole number of at least 1, got 0`
    )
    expect(() => Queue.make({ name: "q", concurrency: 1.5 })).toThrow(RangeError)
    expect(() => Queue.make({ name: "q", rateLimit: { limit: 0, interval: "1 second" } })).toThrow(
      `queue "q": rateLimit.limit must be a whole number of at least 1, got 0`
    )
    expect(() => Queue.make({ name: "q", rateLimit: { limit: 1, interval: 0 } })).toThrow(
      `queue "q": rateLimit.interval must be at least 1 millisecond and finite, got 0`
    )
    expect(() => Queue.make({ name: "q", rateLimit: { limit: 1, interval: Duration.infinity } })).toThrow(RangeError)
  })
})

describe("Workflow.make limits", () => {
  const base = { name: "send", input: Schema.Struct({ customer: Schema.String }), success: Schema.Void }
  const run = () => Effect.void

  it("a concurrency key without a limit allows one running run per key", () => {
    const wf = Workflow.make({ ...base, concurrencyKey: (input) => input.customer, run })
    expect(wf.concurrencyLimit).toBe(1)
    expect(wf.concurrencyKey?.({ customer: "c7" })).toBe("c7")
    expect(Workflow.make({ ...base, run }).concurrencyLimit).toBeUndefined()
  })

  it("refuses a limit without a key, or one that is not a whole number of at least 1", () => {
    expect(() => Workflow.make({ ...base, concurrencyLimit: 2, run })).toThrow(
      `workflow "send": concurrencyLimit needs a concurrencyKey`
    )
    expect(() => Workflow.make({ ...base, concurrencyKey: () => "k", concurrencyLimit: 0, run })).toThrow(
      `workflow "send": concurrencyLimit must be a whole number of at least 1, got 0`
    )
  })

  it("keeps its queue as given: a declaration or a name", () => {
    const emails = Queue.make({ name: "emails", concurrency: 2 })
    expect(Workflow.make({ ...base, queue: emails, run }).queue).toBe(emails)
    expect(Workflow.make({ ...base, queue: "reports", run }).queue).toBe("reports")
  })
})
