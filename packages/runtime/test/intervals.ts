/**
 * Checks over recorded time intervals, for the tests that prove a limit held: the most intervals
 * open at any one instant, and where.
 */

/** A span of time `[start, end)`, with what it belongs to. */
export interface Interval {
  readonly start: number
  readonly end: number
  readonly label: string
}

/**
 * The most intervals open at once, and the labels of one such set. An interval that ends at the
 * instant another starts does not overlap it (`[start, end)`).
 */
export const maxOverlap = (
  intervals: ReadonlyArray<Interval>
): { readonly count: number; readonly at: number | undefined; readonly labels: ReadonlyArray<string> } => {
  const events = intervals.flatMap((interval) => [
    { at: interval.start, delta: 1, interval },
    { at: interval.end, delta: -1, interval }
  ]).sort((a, b) => a.at - b.at || a.delta - b.delta)
  const open = new Set<Interval>()
  let best: { count: number; at: number | undefined; labels: ReadonlyArray<string> } = {
    count: 0,
    at: undefined,
    labels: []
  }
  for (const event of events) {
    if (event.delta === 1) open.add(event.interval)
    else open.delete(event.interval)
    if (open.size > best.count) {
      best = { count: open.size, at: event.at, labels: Array.from(open, (interval) => interval.label) }
    }
  }
  return best
}

/** `maxOverlap` of the intervals of each group (`groupOf` each interval), the largest first. */
export const maxOverlapBy = (
  intervals: ReadonlyArray<Interval>,
  groupOf: (interval: Interval) => string | undefined
): ReadonlyArray<{ readonly group: string; readonly count: number; readonly labels: ReadonlyArray<string> }> => {
  const groups = new Map<string, Array<Interval>>()
  for (const interval of intervals) {
    const group = groupOf(interval)
    if (group === undefined) continue
    let members = groups.get(group)
    if (members === undefined) groups.set(group, members = [])
    members.push(interval)
  }
  return Array.from(groups, ([group, members]) => ({ group, ...maxOverlap(members) }))
    .sort((a, b) => b.count - a.count)
}
