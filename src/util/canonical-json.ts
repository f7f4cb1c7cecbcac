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
  return JSON.stringify(isCanonical(value, 0) ? value : sortedCopy(value, "", [])) ?? "null";
}

/** Nesting deeper than this is left to the copy, which also finds a circular structure. */
const MAX_CHECKED_DEPTH = 32;

/**
 * Whether JSON.stringify already writes `value` canonically: every object's keys (those that are not
 * array indices, which the engine holds first in numeric order anyway) in ascending order, and no
 * `toJSON` or boxed primitive anywhere. Then no copy is needed, which is most of the cost for the
 * objects built in this order on purpose (the audit's decision lines: 93 against 159 ms for 100,000).
 * Reads each property once, as the copy would; stops at the first key out of order.
 */
function isCanonical(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== "object") return true;
  if (depth > MAX_CHECKED_DEPTH || typeof (value as { toJSON?: unknown }).toJSON === "function") return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isCanonical(item, depth + 1)) return false;
    return true;
  }
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return false;
  let prev: string | undefined;
  for (const k of Object.keys(value)) {
    if (!isArrayIndex(k)) {
      if (prev !== undefined && !(prev < k)) return false;
      prev = k;
    }
    if (!isCanonical((value as Record<string, unknown>)[k], depth + 1)) return false;
  }
  return true;
}

/** A key the engine orders as an integer index (before the others, in numeric order). */
function isArrayIndex(k: string): boolean {
  const c = k.charCodeAt(0);
  if (c < 48 || c > 57) return false;
  return /^(?:0|[1-9]\d*)$/.test(k) && Number(k) < 4294967295;
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
