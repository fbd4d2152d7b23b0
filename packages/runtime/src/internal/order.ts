/**
 * The orders every store must agree on, so Memory sorts exactly as SQLite and PostgreSQL do.
 */
/**
 * Code point order, which is UTF-8 byte order: SQLite's BINARY collation and PostgreSQL's "C"
 * (JavaScript's `<` compares UTF-16 units, which differs above the BMP).
 */
export const compareCodePoints = (a: string, b: string): number => {
  const left = Array.from(a)
  const right = Array.from(b)
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const difference = left[i].codePointAt(0)! - right[i].codePointAt(0)!
    if (difference !== 0) return difference
  }
  return left.length - right.length
}

/** `claimNext`'s order, as its ORDER BY: higher priority first, then oldest, then id. */
export const claimOrder = <R extends { readonly priority: number; readonly createdAt: number; readonly id: string }>(
  a: R,
  b: R
): number => b.priority - a.priority || a.createdAt - b.createdAt || compareCodePoints(a.id, b.id)
