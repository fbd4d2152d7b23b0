/**
 * The `weft` command end to end on a PostgreSQL store (a database of its own on the test server,
 * see packages/runtime/test/pg.ts): a run recorded there is read back by `list` and `show`, and an
 * unreachable server exits 4 saying the store is unavailable.
 */
import { describe, expect, it } from "vitest"
import { useTestDatabase } from "../packages/runtime/test/pg.js"
import { example, runIdOf, weft } from "./cli.js"

const database = useTestDatabase()

const order = (id: string) => JSON.stringify({ id, items: [{ sku: "book", quantity: 1 }], card: "4242-4242" })

describe("weft on PostgreSQL", () => {
  it("runs the checkout example on a postgres:// store; list and show read it back", async () => {
    const store = database()
    const r = await weft(["run", example("checkout.ts"), "--input", order("o-pg"), "--store", store])
    expect(r.stderr).toMatch(/✓ checkout \S+ succeeded/)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ orderId: "o-pg", chargeId: "ch_o-pg_1", total: 42 })
    const id = runIdOf(r.stderr)

    const list = await weft(["list", "--store", store, "--json"])
    expect(list.code).toBe(0)
    const runs = JSON.parse(list.stdout)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatchObject({ id, workflow: "checkout", status: "succeeded" })

    const show = await weft(["show", id, "--store", store, "--json"])
    expect(show.code).toBe(0)
    const trace = JSON.parse(show.stdout)
    expect(trace.run).toMatchObject({ id, status: "succeeded", output: { orderId: "o-pg" } })
    expect(trace.steps.map((step: { stepId: string; status: string }) => [step.stepId, step.status])).toEqual([
      ["reserve-stock", "succeeded"],
      ["charge-card", "succeeded"],
      ["send-receipt", "succeeded"]
    ])

    // The same store through WEFT_STORE, printed for people.
    const human = await weft(["list"], { env: { WEFT_STORE: store.replace(/^postgres:/, "postgresql:") } })
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(id)
  })

  it("an unreachable server exits 4 with a store unavailable message", async () => {
    const r = await weft(["list", "--store", "postgres://127.0.0.1:1/nope"])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/store unavailable during open: cannot connect to the PostgreSQL store/)
    expect(r.stderr).toContain("postgres://127.0.0.1:1/nope")
    expect(r.stderr).toContain("ECONNREFUSED")
  })
})
