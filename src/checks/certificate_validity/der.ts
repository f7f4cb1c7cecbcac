/**
 * A small, strict DER reader (and the few encoders OCSP requests need), shared by path
 * validation and revocation: bounds-checked, definite minimal lengths only, low tag numbers only.
 * It reads the extensions and structures node's X509Certificate does not expose.
 */
import { Buffer } from "node:buffer";

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One tag-length-value element inside `buf`: the element spans [start, end), its value [valueStart, end). */
export interface Tlv {
  readonly buf: Buffer;
  /** The identifier octet (class, constructed bit and tag number < 31). */
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/** Context-specific tag octet: `[n]` constructed (EXPLICIT or a constructed IMPLICIT) or primitive. */
export function ctx(n: number, constructed = true): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

export function readTlv(buf: Buffer, offset: number, limit: number = buf.length): Tlv {
  if (offset >= limit) throw new DerError("unexpected end of data");
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("high tag numbers are not supported");
  let pos = offset + 1;
  if (pos >= limit) throw new DerError("truncated length");
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError("indefinite length is not DER");
    if (n > 4) throw new DerError("length too large");
    if (pos + n > limit) throw new DerError("truncated length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || (n > 1 && buf[pos - n] === 0)) throw new DerError("non-minimal length");
  }
  const end = pos + length;
  if (end > limit) throw new DerError("element runs past its container");
  return { buf, tag, start: offset, valueStart: pos, end };
}

export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Parses `data` as exactly one element (trailing bytes are an error). */
export function parseDer(data: Uint8Array): Tlv {
  const buf = asBuffer(data);
  const tlv = readTlv(buf, 0);
  if (tlv.end !== buf.length) throw new DerError("trailing data after the outer element");
  return tlv;
}

export const parseOne = parseDer;

export function expectTag(t: Tlv, tag: number, what: string): Tlv {
  if (t.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

export const expect = expectTag;

/** The element's whole encoding (tag, length and value). */
export function raw(t: Tlv): Buffer {
  return t.buf.subarray(t.start, t.end);
}

export function value(t: Tlv): Buffer {
  return t.buf.subarray(t.valueStart, t.end);
}

/** The children of a constructed element, lazily. */
export function* iterChildren(t: Tlv): Generator<Tlv> {
  if ((t.tag & 0x20) === 0) throw new DerError("primitive element has no children");
  let pos = t.valueStart;
  while (pos < t.end) {
    const child = readTlv(t.buf, pos, t.end);
    yield child;
    pos = child.end;
  }
}

export function children(t: Tlv): Tlv[] {
  return [...iterChildren(t)];
}

/** The single element an EXPLICIT `[n]` wrapper holds. */
export function unwrapExplicit(t: Tlv): Tlv {
  const kids = children(t);
  if (kids.length !== 1) throw new DerError("explicit tag must wrap exactly one element");
  return kids[0]!;
}

export function oidString(v: Buffer): string {
  if (v.length === 0 || v.length > 128) throw new DerError("bad OBJECT IDENTIFIER length");
  const arcs: number[] = [];
  let acc = 0;
  let fresh = true;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (fresh && b === 0x80) throw new DerError("non-minimal OID arc");
    fresh = false;
    acc = acc * 128 + (b & 0x7f);
    if (acc > 0xffffffffff) throw new DerError("OID arc too large");
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0;
      fresh = true;
    } else if (i === v.length - 1) {
      throw new DerError("truncated OID");
    }
  }
  const head = arcs[0]!;
  const x = head < 40 ? 0 : head < 80 ? 1 : 2;
  arcs[0] = head - x * 40;
  return `${x}.${arcs.join(".")}`;
}

export function readOid(t: Tlv): string {
  return oidString(value(expect(t, TAG.OID, "OBJECT IDENTIFIER")));
}

/** INTEGER content with redundant leading zero octets removed, as lower-case hex ("00" for zero). */
export function integerHex(t: Tlv): string {
  expectTag(t, TAG.INTEGER, "INTEGER");
  return normaliseSerialHex(value(t).toString("hex"));
}

/** Serial numbers compare by value: strip leading zero octets, lower-case. */
export function normaliseSerialHex(hex: string): string {
  const h = hex.toLowerCase().replace(/^(00)+/, "");
  return h === "" ? "00" : h;
}

export function readSmallInt(t: Tlv): number {
  if (t.tag !== TAG.INTEGER && t.tag !== TAG.ENUMERATED) throw new DerError("expected INTEGER or ENUMERATED");
  const v = value(t);
  if (v.length === 0 || v.length > 4) throw new DerError("integer out of range");
  let n = v[0]! & 0x80 ? -1 : 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

export function readBoolean(t: Tlv): boolean {
  expectTag(t, TAG.BOOLEAN, "BOOLEAN");
  const v = value(t);
  if (v.length !== 1) throw new DerError("bad BOOLEAN");
  return v[0] !== 0;
}

/** BIT STRING content without its unused-bits octet. */
export function bitStringBytes(t: Tlv): Buffer {
  expectTag(t, TAG.BIT_STRING, "BIT STRING");
  const v = value(t);
  if (v.length === 0) throw new DerError("empty BIT STRING");
  return v.subarray(1);
}

/** UTCTime or GeneralizedTime (the forms RFC 5280 allows: Z, whole or fractional seconds) → epoch ms. */
export function readTime(t: Tlv): number {
  const s = value(t).toString("latin1");
  let m: RegExpExecArray | null;
  if (t.tag === TAG.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new DerError(`bad UTCTime ${JSON.stringify(s)}`);
    const yy = Number(m[1]);
    return utc(yy >= 50 ? 1900 + yy : 2000 + yy, m[2]!, m[3]!, m[4]!, m[5]!, m[6]!, undefined);
  }
  if (t.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\.\d+)?Z$/.exec(s);
    if (!m) throw new DerError(`bad GeneralizedTime ${JSON.stringify(s)}`);
    return utc(Number(m[1]), m[2]!, m[3]!, m[4]!, m[5]!, m[6]!, m[7]);
  }
  throw new DerError("expected a time");
}

function utc(year: number, mo: string, d: string, h: string, mi: string, s: string, frac: string | undefined): number {
  const ms = Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) + (frac ? Math.floor(Number(`0${frac}`) * 1000) : 0);
  if (Number.isNaN(ms) || Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    throw new DerError("time out of range");
  }
  return ms;
}

export function isTime(t: Tlv): boolean {
  return t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME;
}

/** DER encoders for the handful of values requests need. */
export function encodeTlv(tag: number, content: Uint8Array): Buffer {
  const len = content.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    header = [tag, 0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from(header), content]);
}

/** A non-negative INTEGER that fits a JS number (for pathLenConstraint, minimum, maximum). */
export function readSmallUint(t: Tlv): number {
  const v = value(t);
  if (v.length === 0) throw new DerError("empty INTEGER");
  if (v[0]! & 0x80) throw new DerError("negative INTEGER where a non-negative one is required");
  let n = 0;
  for (const b of v) {
    n = n * 256 + b;
    if (n > 0x7fffffff) return 0x7fffffff;
  }
  return n;
}

/** The directory string types X.520 names use, decoded to text (anything else: undefined). */
export function readString(t: Tlv): string | undefined {
  const v = value(t);
  switch (t.tag) {
    case TAG.UTF8_STRING:
      return v.toString("utf8");
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.NUMERIC_STRING:
    case TAG.VISIBLE_STRING:
    case TAG.TELETEX_STRING:
      return v.toString("latin1");
    case TAG.BMP_STRING: {
      if (v.length % 2) throw new DerError("odd-length BMPString");
      const sw = Buffer.from(v);
      sw.swap16();
      return sw.toString("utf16le");
    }
    case TAG.UNIVERSAL_STRING: {
      if (v.length % 4) throw new DerError("bad UniversalString length");
      let s = "";
      for (let i = 0; i < v.length; i += 4) {
        const cp = v.readUInt32BE(i);
        if (cp > 0x10ffff) throw new DerError("bad UniversalString code point");
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default:
      return undefined;
  }
}
