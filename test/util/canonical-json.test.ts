import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { canonicalJSON, canonicalJSONWith } from "../../src/util/canonical-json.ts";

/** The definition: a JSON round trip, then keys sorted at every depth. */
function reference(value: unknown): string {
  const plain = JSON.stringify(value);
  if (plain === undefined) return "null";
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const k of Object.keys(v).sort()) out[k] = sort((v as Record<string, unknown>)[k]);
    return out;
  };
  return JSON.stringify(sort(JSON.parse(plain)));
}

/** A deterministic pseudo-random value of every JSON-relevant kind. */
function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 9 : 12));
  const text = () => ["", "a", "é", "\u2028", "\ud83d\ude00", '"q"', "\\", "\u0000\u001f", "__proto__", "10", "2", "02", "4294967295", "4294967294", "B", "b"][Math.floor(next() * 16)]!;
  switch (pick) {
    case 0: return null;
    case 1: return undefined;
    case 2: return next() < 0.5;
    case 3: return [0, -0, 1.5, -1e21, 1e-7, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity][Math.floor(next() * 9)];
    case 4: return text();
    case 5: return () => 1;
    case 6: return Symbol("s");
    case 7: return new Date(Math.floor(next() * 2e12));
    case 8: return [new Number(3), new String("s"), new Boolean(false)][Math.floor(next() * 3)];
    case 9: return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
    case 10: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 5); i > 0; i--) Object.defineProperty(o, text(), { value: randomValue(next, depth + 1), enumerable: true, configurable: true, writable: true });
      return o;
    }
    default: return { toJSON: (key: string) => ({ key, z: 1, a: [undefined] }) };
  }
}

describe("canonicalJSON", () => {
  it("equals a JSON round trip with sorted keys, on 5,000 generated values", () => {
    let seed = 0x9e3779b9;
    const next = () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
    for (let i = 0; i < 5_000; i++) {
      const v = randomValue(next, 0);
      assert.equal(canonicalJSON(v), reference(v), JSON.stringify(v));
    }
  });

  it("canonicalJSONWith(value, extra) equals canonicalJSON({ ...value, ...extra }), on 5,000 generated pairs", () => {
    let seed = 0x27d4eb2f;
    const next = () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
    const object = (): Record<string, unknown> => {
      for (;;) {
        const v = randomValue(next, 1);
        if (v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Number) && !(v instanceof String) && !(v instanceof Boolean)) return v as Record<string, unknown>;
      }
    };
    for (let i = 0; i < 5_000; i++) {
      const value = object();
      const extra = object();
      assert.equal(canonicalJSONWith(value, extra), canonicalJSON({ ...value, ...extra }), `${JSON.stringify(value)} + ${JSON.stringify(extra)}`);
    }
    // The extra fields win, also over __proto__ and integer keys; a cycle through the value is still refused.
    const proto = JSON.parse('{"__proto__":{"x":1},"b":2,"10":0}') as Record<string, unknown>;
    assert.equal(canonicalJSONWith(proto, { b: 3, seq: 1, "2": 9 }), '{"2":9,"10":0,"__proto__":{"x":1},"b":3,"seq":1}');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    assert.throws(() => canonicalJSONWith(cyclic, { seq: 1 }), TypeError);
  });

  it("sorts keys at every depth: array indices numerically first, then by UTF-16 code units", () => {
    assert.equal(canonicalJSON({ b: 1, a: { d: [{ y: 1, x: 2 }], c: undefined }, "10": 0, "2": 0, "02": 0, "4294967295": 0, B: 0 }), '{"2":0,"10":0,"02":0,"4294967295":0,"B":0,"a":{"d":[{"x":2,"y":1}]},"b":1}');
  });

  it("refuses what JSON.stringify refuses: cycles and BigInt", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    assert.throws(() => canonicalJSON(cyclic), TypeError);
    assert.throws(() => canonicalJSON({ n: 1n }), TypeError);
    // The same object twice is not a cycle.
    const shared = { k: 1 };
    assert.equal(canonicalJSON([shared, { shared }]), '[{"k":1},{"shared":{"k":1}}]');
  });
});
