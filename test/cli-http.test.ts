/**
 * The HTTP example end to end (examples/flaky-http.ts), as a child process on a real SQLite file:
 * a workflow calling a real local HTTP service that answers 503 for a while, through a circuit
 * breaker with retries. The CLI output shows the breaker opening, refusing calls, reopening after a
 * failed trial and closing after a good one; the journal shows which attempts reached the service.
 */
import * as Path from "node:path"
import { describe, it } from "vitest"
import { example, runIdOf, tempDir, weft } from "./cli.js"

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

describe("the flaky HTTP service example", () => {
  it(
    "the breaker opens, refuses, reopens after a failed trial and closes after a good one; the run succeeds",
    async ({ expect }) => {
      const dir = tempDir()
      const r = await weft([
        "run",
        example("flaky-http.ts"),
        "--input",
        `{"sku":"book","failures":3}`,
        "--store",
        storeIn(dir)
      ])
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toEqual({ sku: "book", price: 1299 })
      // The breaker's transitions, in order, among the progress lines.
      const transitions = r.stderr.split("\n").filter((line) => line.includes(`circuit breaker "pricing-service"`))
        .map((line) => line.replace(/^.*circuit breaker "pricing-service" (\w+(?:-\w+)?).*$/, "$1"))
      expect(transitions).toEqual(["opened", "is", "reopened", "is", "closed"])
      expect(r.stderr).toContain(`attempt 3: CircuitOpen { breaker: "pricing-service", retryAfter:`)

      const show = JSON.parse((await weft(["show", runIdOf(r.stderr), "--store", storeIn(dir), "--json"])).stdout)
      const attempts = show.steps[0].attempts as Array<{ outcome: string; error?: { tag?: string; _tag?: string } }>
      const tags = attempts.map((a) => a.outcome === "success" ? "ok" : a.error?.tag ?? a.error?._tag)
      // Refused attempts never reached the service: 503 came from calls 1, 2 and 3 only.
      expect(tags).toEqual(["HttpRetryable", "HttpRetryable", "CircuitOpen", "HttpRetryable", "CircuitOpen", "ok"])
    },
    60_000
  )

  it(
    "a service that stays down: exit 1 after the policy's attempts, with the last HTTP error as the cause",
    async ({ expect }) => {
      const dir = tempDir()
      const r = await weft([
        "run",
        example("flaky-http.ts"),
        "--input",
        `{"sku":"book","failures":50}`,
        "--store",
        storeIn(dir)
      ])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/✗ look-up-price +8 attempts/)
      expect(r.stderr).toMatch(/cause: HttpRetryable \{ method: "GET", .*status: 503/)
    },
    60_000
  )
})
