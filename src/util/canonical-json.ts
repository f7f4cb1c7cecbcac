/**
 * JSON with object keys sorted recursively: keys that are array indices ("0", "2", "10") first in
 * numeric order, as a JavaScript object holds them, then the others by UTF-16 code units (as
 * `Array.prototype.sort` orders them). Audit lines already written were hashed over this form.
 * The result is what a JSON round trip followed by sorting would give: `toJSON` is honoured,
 * `undefined`, functions and symbols are left out of objects and become `null` in arrays, and
 * non-finite numbers are `null`, so a value canonicalises exactly as it reads back from a file.
 *
 * Written in one pass: the audit log canonicalises every line it hashes, and a round trip through
 * JSON.parse cost three serialisations per line; one pass takes a third less time (BENCHMARKS.md,
 * section 18).
 */
export function canonicalJSON(value: unknown): string {
  return write(value, "", []) ?? "null";
}

function write(value: unknown, key: string, ancestors: object[]): string | undefined {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON: (key: string) => unknown }).toJSON(key);
  }
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      throw new TypeError("Do not know how to serialize a BigInt");
    case "object":
      break;
    default:
      return undefined;
  }
  if (value === null) return "null";
  // Number, String and Boolean objects serialise as their primitive.
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return JSON.stringify(value);
  if (ancestors.includes(value)) throw new TypeError("Converting circular structure to JSON");
  ancestors.push(value);
  let out: string;
  if (Array.isArray(value)) {
    out = "[";
    for (let i = 0; i < value.length; i++) out += `${i === 0 ? "" : ","}${write(value[i], String(i), ancestors) ?? "null"}`;
    out += "]";
  } else {
    out = "{";
    for (const k of sortedKeys(value)) {
      const v = write((value as Record<string, unknown>)[k], k, ancestors);
      if (v !== undefined) out += `${out.length === 1 ? "" : ","}${JSON.stringify(k)}:${v}`;
    }
    out += "}";
  }
  ancestors.pop();
  return out;
}

/** An array index as a property key: what an object lists first, in numeric order. */
const INDEX = /^(?:0|[1-9][0-9]{0,9})$/;

function sortedKeys(value: object): string[] {
  const keys = Object.keys(value).sort();
  const indices: string[] = [];
  const names: string[] = [];
  for (const k of keys) (INDEX.test(k) && Number(k) < 2 ** 32 - 1 ? indices : names).push(k);
  return indices.length === 0 ? keys : [...indices.sort((a, b) => Number(a) - Number(b)), ...names];
}
