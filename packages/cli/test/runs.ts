/**
 * A run record for the CLI's rendering tests: every field at its plain default (queued nowhere,
 * no lease, no output), times at `t0`, and what the test cares about in `overrides`.
 */
import type { Store } from "@weft/runtime"

export const runRecord = (t0: number, overrides: Partial<Store.RunRecord>): Store.RunRecord => ({
  id: "run-1",
  workflow: "workflow",
  version: "v1",
  status: "succeeded",
  input: {},
  output: undefined,
  failure: undefined,
  idempotencyKey: undefined,
  queue: "default",
  priority: 0,
  leaseOwner: undefined,
  leaseExpiresAt: undefined,
  wakeAt: undefined,
  reason: undefined,
  recoveries: 0,
  createdAt: t0,
  updatedAt: t0,
  startedAt: t0,
  finishedAt: undefined,
  ...overrides
})
