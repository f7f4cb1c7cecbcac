/**
 * JSON with object keys sorted recursively (by UTF-16 code units, as `Array.prototype.sort` does).
 * The value is first passed through a JSON round trip, so `undefined` members, `toJSON` and the like
 * canonicalise exactly as they read back from the file.
 */
export function canonicalJSON(value: unknown): string {
  const plain = JSON.stringify(value);
  return plain === undefined ? "null" : JSON.stringify(sortKeys(JSON.parse(plain)));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
  return out;
}
