/**
 * Runs a store handed out with an empty journal: claimed for the first time (never started
 * before) or claimed at creation. The engine skips reading the journal of such a run: no write of
 * it can exist, since every journal write is fenced by a lease that only a claim gives, and a
 * claim marks the run started. Kept beside the record rather than in it, so that the record is
 * what every store returns; a record a store did not mark is read as usual.
 */
import type { RunRecord } from "../Store.js"

const fresh = new WeakSet<RunRecord>()

/** Marks `run` (as returned by the claim that started it) as having an empty journal. */
export const mark = (run: RunRecord): void => {
  fresh.add(run)
}

/**
 * Whether `run` is a record marked by `mark`, forgetting the mark: the first execution of the claim
 * may skip the journal, any later one (after writes) must read it.
 */
export const take = (run: RunRecord): boolean => fresh.delete(run)
