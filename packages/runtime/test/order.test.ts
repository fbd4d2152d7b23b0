/**
 * The Memory store's orders must be the SQL stores' orders: ids compare by code point (UTF-8
 * byte order), which JavaScript's `<` on UTF-16 units gets wrong above the BMP.
 */
import { describe, expect, it } from "@effect/vitest"
import { claimOrder, compareCodePoints } from "../src/internal/order.js"

// The definition, spelled out: compare the strings' code points one by one.
const byCodePoints = (a: string, b: string): number => {
  const left = Array.from(a, (c) => c.codePointAt(0)!)
  const right = Array.from(b, (c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    if (left[i] !== right[i]) return left[i] - right[i]
  }
  return left.length - right.length
}

describe("compareCodePoints", () => {
  it("orders characters above the BMP after U+E000..U+FFFF, as UTF-8 bytes do", () => {
    expect(compareCodePoints("\u{1F600}", "\uFFFF")).toBeGreaterThan(0)
    expect("\u{1F600}" < "\uFFFF").toBe(true) // what a plain comparison would wrongly say
    expect(compareCodePoints("\uD7FF", "\u{10000}")).toBeLessThan(0)
    expect(compareCodePoints("run-1", "run-1")).toBe(0)
    expect(compareCodePoints("run-1", "run-10")).toBeLessThan(0)
  })

  it("agrees with the code-point definition on random strings", () => {
    const alphabet = ["a", "z", "0", "\u00E9", "\uD7FF", "\uE000", "\uFFFF", "\u{10000}", "\u{1F600}", "\u{10FFFF}"]
    let seed = 42
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const word = () =>
      Array.from({ length: Math.floor(random() * 5) }, () => alphabet[Math.floor(random() * 10)]).join("")
    for (let i = 0; i < 20_000; i++) {
      const a = word()
      const b = word()
      expect([a, b, Math.sign(compareCodePoints(a, b))]).toEqual([a, b, Math.sign(byCodePoints(a, b))])
    }
  })

  it("breaks claim-order ties by id", () => {
    const run = (id: string) => ({ id, priority: 0, createdAt: 1 })
    expect([run("\u{1F600}"), run("\uFFFF"), run("a")].sort(claimOrder).map((r) => r.id)).toEqual([
      "a",
      "\uFFFF",
      "\u{1F600}"
    ])
  })
})
