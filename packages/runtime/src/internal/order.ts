/**
 * The orders every store must agree on, so Memory sorts exactly as SQLite and PostgreSQL do.
 */
/**
 * Code point order, which is UTF-8 byte order: SQLite's BINARY collation and PostgreSQL's "C"
 * (JavaScript's `<` compares UTF-16 units, which differs above the BMP).
 */
export const compareCodePoints = (a: string, b: string): number => {
  const shared = Math.min(a.length, b.length)
  for (let i = 0; i < shared; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

// The first UTF-16 unit where two strings differ orders them by code point once surrogates
// (0xD800-0xDFFF, the halves of code points above 0xFFFF) rank above the units 0xE000-0xFFFF.
const codePointRank = (unit: number): number => unit < 0xD800 ? unit : unit < 0xE000 ? unit + 0x2000 : unit - 0x800

/** `claimNext`'s order, as its ORDER BY: higher priority first, then oldest, then id. */
export const claimOrder = <R extends { readonly priority: number; readonly createdAt: number; readonly id: string }>(
  a: R,
  b: R
): number => b.priority - a.priority || a.createdAt - b.createdAt || compareCodePoints(a.id, b.id)
