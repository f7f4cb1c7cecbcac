import { setOwn } from "./own.ts";

/**
 * JSON with object keys sorted recursively: keys that are array indices ("0", "2", "10") first in
 * numeric order, as a JavaScript object holds them, then the others by UTF-16 code units (as
 * `Array.prototype.sort` orders them). Audit lines already written were hashed over this form.
 * The result is what a JSON round trip followed by sorting would give: `toJSON` is honoured,
 * `undefined`, functions and symbols are left out of objects and become `null` in arrays, and
 * non-finite numbers are `null`, so a value canonicalises exactly as it reads back from a file.
 *
 * Written as a copy with its keys inserted in that order, which the engine's own JSON.stringify
 * then writes as it holds them (integer keys first, in numeric order, then the others in insertion
 * order): two fifths less time than writing the text piece by piece (220 against 365 ms for 100,000
 * audit events, BENCHMARKS.md section 19). The audit log canonicalises every line it hashes.
 */
export function canonicalJSON(value: unknown): string {
  return JSON.stringify(sortedCopy(value, "", [])) ?? "null";
}

/**
 * `canonicalJSON({ ...value, ...extra })` for a plain object `value` without building the spread
 * first: the audit log adds its chain fields to every line this way, one copy less per line.
 */
export function canonicalJSONWith(value: Readonly<Record<string, unknown>>, extra: Readonly<Record<string, unknown>>): string {
  if (typeof value.toJSON === "function" || typeof extra.toJSON === "function") return canonicalJSON({ ...value, ...extra });
  const ancestors: object[] = [value];
  const copy: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (const k of Object.keys(extra)) if (!Object.hasOwn(value, k)) keys.push(k);
  for (const k of keys.sort()) setOwn(copy, k, sortedCopy(Object.hasOwn(extra, k) ? extra[k] : value[k], k, ancestors));
  return JSON.stringify(copy);
}

function sortedCopy(value: unknown, key: string, ancestors: object[]): unknown {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON: (key: string) => unknown }).toJSON(key);
  }
  if (value === null || typeof value !== "object") return value;
  // Number, String and Boolean objects: JSON.stringify writes them as their primitive.
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return value;
  if (ancestors.includes(value)) throw new TypeError("Converting circular structure to JSON");
  ancestors.push(value);
  let out: unknown;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) copy[i] = sortedCopy(value[i], String(i), ancestors);
    out = copy;
  } else {
    const copy: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      // setOwn: a key named __proto__ is written as a key, not taken as the copy's prototype.
      setOwn(copy, k, sortedCopy((value as Record<string, unknown>)[k], k, ancestors));
    }
    out = copy;
  }
  ancestors.pop();
  return out;
}
