/**
 * Task groups end to end: the fan-out example (examples/fan-out.ts) run by the real `weft` command
 * on a SQLite file, to success and to a fail-fast failure, with its failure tree, its `weft show`
 * timeline and its `--json` trace. Times and ids are masked; the trees are compared whole.
 */
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { example, runIdOf, tempDir, weft } from "./cli.js"

const storeIn = (dir: string) => `sqlite:${Path.join(dir, "weft.db")}`

const succeeding = JSON.stringify({ image: "cat.jpg", sizes: [320, 640, 1280] })
const failing = JSON.stringify({ image: "dog.jpg", sizes: [320, 4096, 1280] })

/** Masks run ids, dates and durations. */
const mask = (text: string, runId: string) =>
  text
    .replaceAll(runId, "<run-id>")
    .replaceAll(runId.slice(0, 8), "<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<date>")
    .replace(/\b\d+(?:\.\d+)?(?:ms|s)\b/g, "<t>")

/**
 * A `weft show` timeline with its two time columns (offset, duration) cut off: they are as wide as
 * the longest value, so the text column starts where the first step's text does.
 */
const withoutTimes = (timeline: string) => {
  const lines = timeline.split("\n")
  const first = lines.findIndex((line) => /^ {2}\+\d/.test(line))
  const column = lines[first].indexOf("✓")
  return lines.map((line, i) => (i >= first && /^ {2}[ +]/.test(line) ? line.slice(column) : line)).join("\n")
}

describe("the fan-out example", () => {
  it("resizes every size, two at a time, and shows the group as a tree", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("fan-out.ts"), "--input", succeeding, "--store", storeIn(dir)])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      image: "cat.jpg",
      urls: ["https://cdn.example/cat-320.jpg", "https://cdn.example/cat-640.jpg", "https://cdn.example/cat-1280.jpg"]
    })
    for (const i of [0, 1, 2]) {
      expect(r.stderr).toContain(`✓ variants[${i}]/resize`)
      expect(r.stderr).toContain(`✓ variants[${i}]/upload`)
    }
    // Two at a time: the third branch starts once one of the first two has ended.
    const progress = r.stderr.split("\n").map((line) => line.trim())
    const thirdStarts = progress.indexOf("→ variants[2]/resize")
    expect(progress.slice(0, thirdStarts).some((line) => /^✓ variants\[[01]\]\/upload/.test(line))).toBe(true)

    const id = runIdOf(r.stderr)
    const show = await weft(["show", id, "--store", storeIn(dir)])
    expect(show.code).toBe(0)
    expect(mask(withoutTimes(show.stdout), id)).toMatchInlineSnapshot(`
      "thumbnails <run-id>  ✓ succeeded
        version   unversioned
        created   <date>
        duration  <t>
        output    { image: "cat.jpg", urls: ["https://cdn.example/cat-320.jpg", "https://cdn.example/cat-640.jpg", "h…

      ✓ fetch-original
      ✓ ⇉ variants  fail-fast, 3 branches
      ├─ [0] ✓ succeeded
      │  ├─ ✓ resize
      │  └─ ✓ upload
      ├─ [1] ✓ succeeded
      │  ├─ ✓ resize
      │  └─ ✓ upload
      └─ [2] ✓ succeeded
         ├─ ✓ resize
         └─ ✓ upload
      ✓ publish
      "
    `)
  })

  it("a failing branch interrupts its sibling, the next branch never starts: exit 1 and the tree", async () => {
    const dir = tempDir()
    const r = await weft(["run", example("fan-out.ts"), "--input", failing, "--store", storeIn(dir)])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).not.toContain("variants[2]/")
    const id = runIdOf(r.stderr)
    const tree = mask(r.stderr.slice(r.stderr.indexOf("✗ thumbnails")), id)
    expect(tree).toMatchInlineSnapshot(`
      "✗ thumbnails <id> failed in <t>: UpscaleRefused
      thumbnails(<run-id>)
      ├─ ✓ fetch-original  <t>
      └─ ✗ ⇉ variants      fail-fast, 3 branches, <t>
         ├─ [0] ⊘ interrupted (a sibling failed)
         │  └─ ⊘ resize    interrupted in attempt 1, <t>
         ├─ [1] ✗ failed
         │  └─ ✗ resize    1 attempt, <t>
         │     └─ 1 UpscaleRefused { size: 4096, original: 2048 }  not retryable
         └─ [2] ○ not started
      cause: parallel
        ├─ variants[0]: interrupted (a sibling failed)
        └─ variants[1]: UpscaleRefused { size: 4096, original: 2048 }
      "
    `)

    const show = await weft(["show", id, "--store", storeIn(dir)])
    expect(show.code).toBe(0)
    expect(mask(withoutTimes(show.stdout), id)).toMatchInlineSnapshot(`
      "thumbnails <run-id>  ✗ failed
        version   unversioned
        created   <date>
        duration  <t>

      ✓ fetch-original
      ✗ ⇉ variants    fail-fast, 3 branches
      ├─ [0] ⊘ interrupted (a sibling failed)
      │  └─ ⊘ resize  interrupted in attempt 1
      ├─ [1] ✗ failed
      │  └─ ✗ resize  1 attempt
      │       1 UpscaleRefused { size: 4096, original: 2048 }  not retryable
      └─ [2] ○ not started

      cause: parallel
        ├─ variants[0]: interrupted (a sibling failed)
        └─ variants[1]: UpscaleRefused { size: 4096, original: 2048 }
      "
    `)

    const json = JSON.parse((await weft(["show", id, "--store", storeIn(dir), "--json"])).stdout)
    expect(json.steps.map((s: { stepId: string }) => s.stepId)).toEqual([
      "fetch-original",
      "variants",
      "variants[0]/resize",
      "variants[1]/resize"
    ])
    const [, group, cut, resize] = json.steps
    expect(group).toMatchObject({
      kind: "group",
      position: 1,
      status: "failed",
      attempts: [],
      group: { mode: "fail-fast", branches: ["interrupted", "failed", "not-started"] }
    })
    expect(group.cause).toBeUndefined()
    expect(group.scope).toBeUndefined()
    expect(resize).toMatchObject({ name: "resize", position: 0, scope: "variants[1]", depth: 1, status: "failed" })
    // The sibling's step was cut off in flight: the group's entry recorded its attempt.
    expect(cut).toMatchObject({
      name: "resize",
      scope: "variants[0]",
      status: "interrupted",
      attempts: [{ attempt: 1, outcome: "interrupted" }]
    })
    expect(cut.position).toBeUndefined()
    expect(json.steps[0].scope).toBeUndefined()
  })
})
