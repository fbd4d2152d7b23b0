/**
 * How stores keep encoded values: JSON text, with `undefined` as SQL NULL (so it stays distinct
 * from JSON `null`), and a canonical form for comparing two inputs whatever their key order.
 */

/** JSON text of a value, or null for `undefined`. */
export const encodeJson = (value: unknown): string | null => value === undefined ? null : JSON.stringify(value)

/** The value of JSON text; NULL is `undefined`. */
export const decodeJson = (text: string | null): unknown => text === null ? undefined : JSON.parse(text)

/**
 * JSON with object keys sorted, so that two encodings of the same value compare equal whatever
 * the order their keys were written in.
 */
export const canonicalJson = (value: unknown): string | undefined =>
  JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === "object" && inner !== null && !Array.isArray(inner)
      ? Object.fromEntries(Object.keys(inner).sort().map((key) => [key, (inner as Record<string, unknown>)[key]]))
      : inner)
