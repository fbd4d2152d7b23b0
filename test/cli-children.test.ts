/**
 * Child workflows end to end, as child processes on a real SQLite file: `weft run` of the order
 * example (examples/order-children.ts) executes its payment and shipping children in its own process
 * with their progress indented under the parent's; a declined card fails the payment child, and so
 * the order, whose failure tree shows the child's failing step; `weft show` links a child to its
 * parent and hangs the children's steps from the parent's rows; and `weft cancel` of a parent that
 * waits for a slow child (test/fixtures/slow-child.ts) run by a `weft worker` cancels both.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, it } from "vitest"
import { example, fixture, runIdOf, spawnWeft, tempDir, weft } from "./cli.js"

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

/** Masks the store, run ids, dates and durations. */
const mask = (text: string, runId: string, store: string) =>
  text
    .replaceAll(store, "<store>")
    .replaceAll(runId, "<run-id>")
    .replaceAll(runId.slice(0, 8), "<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<date>")
    .replace(/\b\d+(?:\.\d+)?(?:ms|s)\b/g, "<t>")
    .replace(/ +$/gm, "")

const showJson = async (id: string, store: string) =>
  JSON.parse((await weft(["show", id, "--store", store, "--json"])).stdout)

const listJson = async (store: string): Promise<Array<{ id: string; status: string; [key: string]: unknown }>> =>
  JSON.parse((await weft(["list", "--store", store, "--json"])).stdout)

/** Polls `weft list` until the run has the status. */
const awaitStatus = async (id: string, store: string, status: string, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const run = (await listJson(store)).find((r) => r.id === id)
    if (run?.status === status) return run
    if (Date.now() > deadline) throw new Error(`run ${id} is ${run?.status}, not ${status}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

const order = (id: string, card: string) => JSON.stringify({ id, card, amount: 42, address: "1 Main St" })

describe.concurrent("child workflows", () => {
  it("weft run executes the children here; weft show draws them and links a child to its parent", async ({ expect }) => {
    const store = storeIn(tempDir())
    const r = await weft([
      "run",
      example("order-children.ts"),
      "order",
      "--input",
      order("o-1", "4242"),
      "--store",
      store
    ])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ orderId: "o-1", charge: "ch_o-1", tracking: "TRK-box-o-1-9" })
    const id = runIdOf(r.stderr)
    expect(mask(r.stderr, id, store)).toMatchInlineSnapshot(`
      "▶ order <run-id> on <store>
        → reserve-stock
        ✓ reserve-stock <t>
        ⤷ child payment <id>/$child:payment (the run waits for it)
          → authorize
          ✓ authorize <t>
          → capture
          ✓ capture <t>
        ✓ child payment <id>/$child:payment succeeded in <t>
        ↻ reserve-stock (from journal)
        ⤷ child shipping <id>/$child:shipping (the run waits for it)
          → pack
          ✓ pack <t>
          → label
          ✓ label <t>
        ✓ child shipping <id>/$child:shipping succeeded in <t>
        ↻ reserve-stock (from journal)
      ✓ order <run-id> succeeded in <t>
      "
    `)

    const [shown, child] = await Promise.all([
      weft(["show", id, "--store", store]),
      showJson(`${id}/$child:payment`, store)
    ])
    expect(mask(shown.stdout, id, store).replace(/^ {2}\+<t> +<t> +/gm, "  ")).toMatchInlineSnapshot(`
      "order <run-id>  ✓ succeeded
        version   unversioned
        created   <date>
        duration  <t>
        output    { orderId: "o-1", charge: "ch_o-1", tracking: "TRK-box-o-1-9" }

        ✓ reserve-stock
        ✓ ⤷ child payment <id>/$child:payment
        ├─ ✓ authorize
        └─ ✓ capture
        ✓ ⤷ child shipping <id>/$child:shipping
        ├─ ✓ pack
        └─ ✓ label
      "
    `)
    expect(child.run).toMatchObject({
      workflow: "payment",
      status: "succeeded",
      parent: { runId: id, stepId: "$child:payment" }
    })
    const childText = (await weft(["show", `${id}/$child:payment`, "--store", store])).stdout
    expect(childText).toContain(`  parent    ${id} step $child:payment\n`)

    const trace = await showJson(id, store)
    expect(trace.steps.map((s: { stepId: string; kind: string }) => [s.stepId, s.kind])).toEqual([
      ["reserve-stock", "step"],
      ["$child:payment", "child"],
      ["$child:shipping", "child"]
    ])
    expect(trace.steps[1].child).toMatchObject({
      runId: `${id}/$child:payment`,
      workflow: "payment",
      status: "succeeded"
    })
    expect(Object.keys(trace.children).sort()).toEqual([`${id}/$child:payment`, `${id}/$child:shipping`])
    expect(trace.children[`${id}/$child:shipping`].steps.map((s: { stepId: string }) => s.stepId)).toEqual([
      "pack",
      "label"
    ])
  })

  it("children awaited in every branch of a task group: the parent suspends waiting for all, weft run executes each", async ({ expect }) => {
    const dir = tempDir()
    const store = storeIn(dir)
    const r = await weft([
      "run",
      fixture("children-fan-out.ts"),
      "sum-of-squares",
      "--input",
      "[1,2,3]",
      "--store",
      store
    ])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe("14\n")
    const id = runIdOf(r.stderr)
    expect(mask(r.stderr, id, store)).toMatchInlineSnapshot(`
      "▶ sum-of-squares <run-id> on <store>
        ⤷ child square-it <id>/each[0]/$child:square-it (the run waits for it)
        ⤷ child square-it <id>/each[1]/$child:square-it (the run waits for it)
        ⤷ child square-it <id>/each[2]/$child:square-it (the run waits for it)
          → square
          ✓ square <t>
        ✓ child square-it <id>/each[0]/$child:square-it succeeded in <t>
          → square
          ✓ square <t>
        ✓ child square-it <id>/each[1]/$child:square-it succeeded in <t>
          → square
          ✓ square <t>
        ✓ child square-it <id>/each[2]/$child:square-it succeeded in <t>
      ✓ sum-of-squares <run-id> succeeded in <t>
      "
    `)
    const runs = await listJson(store)
    expect(runs.filter((run) => run.workflow === "square-it").map((run) => run.status)).toEqual([
      "succeeded",
      "succeeded",
      "succeeded"
    ])
  })

  it("a declined card fails the payment child and the order: exit 1, the child's failing step in the tree", async ({ expect }) => {
    const store = storeIn(tempDir())
    const r = await weft([
      "run",
      example("order-children.ts"),
      "order",
      "--input",
      order("o-2", "4000-0002"),
      "--store",
      store
    ])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    const id = runIdOf(r.stderr)
    expect(mask(r.stderr, id, store)).toMatchInlineSnapshot(`
      "▶ order <run-id> on <store>
        → reserve-stock
        ✓ reserve-stock <t>
        ⤷ child payment <id>/$child:payment (the run waits for it)
          → authorize
          ✗ authorize attempt 1: CardDeclined { card: "4000-0002", code: "insufficient_funds" } — not retryable
        ✗ child payment <id>/$child:payment failed: CardDeclined
        ↻ reserve-stock (from journal)
        ↺ reserve-stock (compensation)
          info: stock reservation rsv-o-2 released
        ✓ reserve-stock (compensation) <t>
      ✗ order <id> failed in <t>: CardDeclined
      order(<run-id>)
      ├─ ✓ reserve-stock                            <t>
      ├─ ✗ ⤷ child payment <id>/$child:payment  CardDeclined { card: "4000-0002", code: "insufficient_funds" }
      │  └─ ✗ authorize                             1 attempt, <t>
      │     └─ 1 CardDeclined { card: "4000-0002", code: "insufficient_funds" }  not retryable
      └─ ✓ ↺ reserve-stock (compensation)           <t>
      cause: CardDeclined { card: "4000-0002", code: "insufficient_funds" }
      "
    `)
    const trace = await showJson(id, store)
    expect(trace.cause).toMatchObject({ kind: "fail", error: { tag: "CardDeclined" } })
    expect(trace.steps[1]).toMatchObject({
      stepId: "$child:payment",
      status: "failed",
      child: { workflow: "payment", status: "failed" }
    })
    expect(trace.children[`${id}/$child:payment`].steps[0]).toMatchObject({ stepId: "authorize", status: "failed" })
  })

  it("weft cancel of a parent waiting for its slow child cancels both", async ({ expect }) => {
    const dir = tempDir()
    const store = storeIn(dir)
    const marker = Path.join(dir, "marker")
    const started = await weft([
      "start",
      fixture("slow-child.ts"),
      "slow-parent",
      "--input",
      JSON.stringify({ marker, ms: 60_000 }),
      "--store",
      store
    ])
    expect(started.code).toBe(0)
    const id = started.stdout.trim()
    const childId = `${id}/$child:slow-child`
    // A short lease: on SQLite a worker in another process learns of the request at its heartbeat.
    const worker = spawnWeft(["worker", fixture("slow-child.ts"), "--store", store, "--lease", "3 seconds"])
    try {
      await worker.waitFor(new RegExp(`▶ slow-child ${childId.replace("$", "\\$")} started`))
      await awaitStatus(id, store, "waiting")
      const waiting = await weft(["show", id, "--store", store])
      expect(waiting.stdout).toContain(`◷ ⤷ child slow-child ${id.slice(0, 8)}/$child:slow-child  running`)
      const shown = await showJson(id, store)
      expect(shown.run.waitingForChild).toMatchObject({
        stepId: "$child:slow-child",
        runId: childId,
        status: "running"
      })

      const cancelled = await weft(["cancel", id, "--reason", "order withdrawn", "--wait", "--store", store])
      expect(cancelled.code).toBe(0)
      expect(cancelled.stdout).toBe(`run ${id} cancelled\n`)
      await awaitStatus(childId, store, "cancelled")
    } finally {
      worker.child.kill("SIGTERM")
    }
    expect((await worker.done).code).toBe(0)
    const runs = await listJson(store)
    expect(runs.map((r) => [r.id, r.status]).sort()).toEqual([[id, "cancelled"], [childId, "cancelled"]])
    expect(runs.find((r) => r.id === childId)?.cancel).toMatchObject({ reason: "order withdrawn" })
    expect(Fs.readFileSync(marker, "utf8")).toBe("prepare undone\n")
  })
}, 40_000)
