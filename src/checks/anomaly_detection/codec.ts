/**
 * A compact, exact encoding of detector state for the state store. Detector state is JSON made
 * mostly of long number arrays (a `median_mad` window of 720 doubles is ~14 KiB of JSON text per
 * array); here each such array is packed in the narrowest binary type that holds every value
 * exactly (int32, float32, else float64), the rest stays JSON, and the whole is deflated. Decoding
 * gives back the same numbers bit for bit (NaN and ±Infinity included, which JSON would lose), so
 * a restored detector scores exactly as the one saved.
 *
 * Layout before deflate: "VAD1", u32 JSON length, the JSON (arrays replaced by {"\u0000": i}),
 * then per array: u8 type (1 int32, 2 float32, 3 float64), u32 count, the values little-endian.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";

const MAGIC = 0x31444156; // "VAD1" read little-endian
const REF = "\u0000";
/** Arrays shorter than this stay in the JSON. */
const MIN_PACKED = 8;
const INT32 = 1;
const FLOAT32 = 2;
const FLOAT64 = 3;
/** A decoded value larger than this is refused (a corrupt or hostile row must not exhaust memory). */
const MAX_DECODED_BYTES = 64 * 1024 * 1024;

function isNumberArray(v: unknown): v is number[] {
  if (!Array.isArray(v) || v.length < MIN_PACKED) return false;
  for (const x of v) if (typeof x !== "number") return false;
  return true;
}

function typeOf(a: readonly number[]): number {
  let int = true;
  let f32 = true;
  for (const x of a) {
    if (int && !(Number.isInteger(x) && x >= -2147483648 && x <= 2147483647 && !Object.is(x, -0))) int = false;
    if (f32 && Math.fround(x) !== x) f32 = false;
    if (!int && !f32) return FLOAT64;
  }
  return int ? INT32 : FLOAT32;
}

/** Encodes a JSON-like value (numbers may be non-finite inside arrays) into deflated bytes. */
export function encodeState(value: unknown, level = 6): Uint8Array {
  const arrays: number[][] = [];
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (!isNumberArray(v)) return v;
    arrays.push(v);
    return { [REF]: arrays.length - 1 };
  });
  const text = Buffer.from(json, "utf8");
  let size = 8 + text.length;
  const types = arrays.map(typeOf);
  arrays.forEach((a, i) => (size += 5 + a.length * (types[i] === FLOAT64 ? 8 : 4)));
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(text.length, 4);
  text.copy(buf, 8);
  let at = 8 + text.length;
  arrays.forEach((a, i) => {
    const type = types[i]!;
    buf.writeUInt8(type, at);
    buf.writeUInt32LE(a.length, at + 1);
    at += 5;
    for (const x of a) {
      if (type === INT32) at = buf.writeInt32LE(x, at);
      else if (type === FLOAT32) at = buf.writeFloatLE(x, at);
      else at = buf.writeDoubleLE(x, at);
    }
  });
  return deflateRawSync(buf, { level });
}

/** Decodes `encodeState` output; throws on anything else. */
export function decodeState(bytes: Uint8Array): unknown {
  const buf = inflateRawSync(bytes, { maxOutputLength: MAX_DECODED_BYTES });
  if (buf.length < 8 || buf.readUInt32LE(0) !== MAGIC) throw new Error("not an encoded detector state");
  const jsonLength = buf.readUInt32LE(4);
  if (8 + jsonLength > buf.length) throw new Error("truncated detector state");
  const arrays: number[][] = [];
  let at = 8 + jsonLength;
  while (at < buf.length) {
    if (at + 5 > buf.length) throw new Error("truncated detector state");
    const type = buf.readUInt8(at);
    const count = buf.readUInt32LE(at + 1);
    at += 5;
    const width = type === FLOAT64 ? 8 : type === INT32 || type === FLOAT32 ? 4 : 0;
    if (width === 0 || at + count * width > buf.length) throw new Error("corrupt detector state");
    const a: number[] = new Array(count);
    for (let i = 0; i < count; i++, at += width) a[i] = type === INT32 ? buf.readInt32LE(at) : type === FLOAT32 ? buf.readFloatLE(at) : buf.readDoubleLE(at);
    arrays.push(a);
  }
  return JSON.parse(buf.toString("utf8", 8, 8 + jsonLength), (_key, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === REF) {
        const a = arrays[(v as Record<string, number>)[REF]!];
        if (a === undefined) throw new Error("corrupt detector state");
        return a;
      }
    }
    return v;
  });
}
