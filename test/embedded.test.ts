/**
 * examples/embedded-service.ts as a user runs it: a real HTTP service process with weft's Client
 * and Worker in it (Weft.layer) on a SQLite file. Orders go in over HTTP, typed results and
 * failures come back, the same order placed twice is one run, and SIGTERM shuts the worker down
 * gracefully (exit 0).
 */
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { example, root, tempDir } from "./cli.js"

const post = async (port: number, body: string) => {
  const response = await fetch(`http://127.0.0.1:${port}/orders`, { method: "POST", body })
  return { status: response.status, body: await response.json() as unknown }
}

describe("embedded service example", () => {
  it("serves orders through a client and a worker in one process, and shuts down on SIGTERM", async () => {
    const dir = tempDir()
    const env: Record<string, string | undefined> = {
      ...process.env,
      PORT: "0",
      WEFT_STORE: `sqlite:${Path.join(dir, "weft.db")}`
    }
    delete env.NODE_PATH
    const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", example("embedded-service.ts")], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line; stderr:\n${stderr}`)), 30_000)
      child.stdout.on("data", (d) => {
        stdout += d
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)
        if (match !== null) {
          clearTimeout(timer)
          resolve(Number(match[1]))
        }
      })
    })
    const order = JSON.stringify({ id: "order-9", items: [{ sku: "book", quantity: 2 }], card: "4242" })
    const first = await post(port, order)
    expect(first).toEqual({ status: 200, body: { orderId: "order-9", chargeId: "ch_order-9_1", total: 84 } })
    // Idempotent by the order id: the same run, the same charge.
    expect(await post(port, order)).toEqual(first)
    expect(
      await post(port, JSON.stringify({ id: "o-2", items: [{ sku: "book", quantity: 1 }], card: "4000-0002" }))
    ).toEqual({ status: 402, body: { error: "CardDeclined", code: "insufficient_funds" } })
    expect((await post(port, "{\"id\": 3}")).status).toBe(400)
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
    expect(stdout).toMatch(/shutting down\nworker stopped\n$/)
  }, 60_000)
})
