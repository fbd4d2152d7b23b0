/**
 * A fan-out: one image resized into several sizes at once, as a task group (`Workflow.forEach`).
 *
 * Each size is a branch of the group `variants`, with steps of its own (`variants[0]/resize`,
 * `variants[0]/upload`, ...), at most two at a time (`concurrency: 2`). The group is fail-fast: the
 * first branch that fails interrupts the branches still running, and the others never start.
 *
 *   weft run examples/fan-out.ts --input '{"image":"cat.jpg","sizes":[320,640,1280]}'
 *     → succeeds: prints {"image": "cat.jpg", "urls": ["https://cdn.example/cat-320.jpg", ...]};
 *       the third size starts when one of the first two is done. `weft show <run-id>` draws the
 *       group as a tree:
 *
 *         +22ms   1ms    ✓ fetch-original
 *         +36ms   542ms  ✓ ⇉ variants  fail-fast, 3 branches
 *                        ├─ [0] ✓ succeeded
 *         +36ms   218ms  │  ├─ ✓ resize
 *         +266ms  14ms   │  └─ ✓ upload
 *                        ├─ [1] ✓ succeeded
 *         +36ms   232ms  │  ├─ ✓ resize
 *         +279ms  8ms    │  └─ ✓ upload
 *                        └─ [2] ✓ succeeded
 *         +286ms  265ms     ├─ ✓ resize
 *         +564ms  6ms       └─ ✓ upload
 *         +582ms  1ms    ✓ publish
 *
 *   weft run examples/fan-out.ts --input '{"image":"dog.jpg","sizes":[320,4096,1280]}'
 *     → fails with UpscaleRefused { size: 4096, original: 2048 }, exit code 1: branch 1 fails at
 *       once, branch 0 is interrupted in the middle of its resize, branch 2 never starts:
 *
 *         ✗ thumbnails 2544486c failed in 95ms: UpscaleRefused
 *         thumbnails(2544486c-382c-4c8d-b5c0-73dad93eaaeb)
 *         ├─ ✓ fetch-original  1ms
 *         └─ ✗ ⇉ variants      fail-fast, 3 branches, 26ms
 *            ├─ [0] ⊘ interrupted (a sibling failed)
 *            ├─ [1] ✗ failed
 *            │  └─ ✗ resize    1 attempt, 1ms
 *            │     └─ 1 UpscaleRefused { size: 4096, original: 2048 }  not retryable
 *            └─ [2] ○ not started
 *         cause: parallel
 *           ├─ variants[0]: interrupted (a sibling failed)
 *           └─ variants[1]: UpscaleRefused { size: 4096, original: 2048 }
 */
import { Step, Workflow } from "@weft/core"
import { Effect, Schema } from "effect"

export const Request = Schema.Struct({
  image: Schema.String,
  sizes: Schema.NonEmptyArray(Schema.Number.pipe(Schema.int(), Schema.positive()))
})

export const Published = Schema.Struct({ image: Schema.String, urls: Schema.Array(Schema.String) })

/** The requested size is larger than the original: resizing would only blur it. */
export class UpscaleRefused extends Schema.TaggedError<UpscaleRefused>()("UpscaleRefused", {
  size: Schema.Number,
  original: Schema.Number
}) {}

const fetchOriginal = Step.make({
  name: "fetch-original",
  success: Schema.Struct({ width: Schema.Number, bytes: Schema.Number }),
  run: (_image: string) => Effect.succeed({ width: 2048, bytes: 1_843_200 })
})

const resize = Step.make({
  name: "resize",
  success: Schema.Struct({ size: Schema.Number, bytes: Schema.Number }),
  error: UpscaleRefused,
  run: (size: number, original: number) =>
    Effect.gen(function*() {
      if (size > original) return yield* new UpscaleRefused({ size, original })
      // Resizing takes time: long enough here that a failing sibling interrupts it.
      yield* Effect.sleep(`${200 + Math.round(size / 20)} millis`)
      return { size, bytes: Math.round(size * size * 0.4) }
    })
})

const upload = Step.make({
  name: "upload",
  success: Schema.String,
  run: (image: string, size: number) =>
    Effect.as(Effect.sleep("5 millis"), `https://cdn.example/${image.replace(/\.\w+$/, "")}-${size}.jpg`)
})

const publish = Step.make({
  name: "publish",
  run: (image: string, urls: ReadonlyArray<string>) => Effect.log(`${image}: ${urls.length} variants published`)
})

export const thumbnails = Workflow.make({
  name: "thumbnails",
  description: "resize an image into several sizes, two at a time, and publish them",
  input: Request,
  success: Published,
  error: UpscaleRefused,
  run: (request) =>
    Effect.gen(function*() {
      const original = yield* fetchOriginal(request.image)
      const urls = yield* Workflow.forEach(
        request.sizes,
        (size) =>
          Effect.gen(function*() {
            yield* resize(size, original.width)
            return yield* upload(request.image, size)
          }),
        { name: "variants", concurrency: 2 }
      )
      yield* publish(request.image, urls)
      return { image: request.image, urls }
    })
})
