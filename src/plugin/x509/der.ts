/**
 * Strict DER framing for the certificate model: tag, length and value of each element, bounds
 * checked, definite minimal lengths only, primitive strings only, low tag numbers only.
 *
 * It knows no certificate structure. The model uses it to hold input to DER (the ASN.1 schemas of
 * @peculiar/asn1-x509 decode BER and would accept indefinite or non-minimal lengths), to slice a
 * certificate or CRL into the fields it signs and stores, and to read the few values whose exact
 * encoding matters (times, INTEGER octets, OIDs). What a field means is decoded by the schemas.
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

/** Nesting deeper than this is refused: no certificate needs it, and recursion must stay bounded. */
export const MAX_DEPTH = 48;

/** One element inside `buf`: the element spans [start, end), its value [valueStart, end). */
export interface Tlv {
  readonly buf: Buffer;
  /** The identifier octet (class, constructed bit and a tag number below 31). */
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/** Context-specific tag octet `[n]`, constructed (EXPLICIT, or IMPLICIT of a constructed type) or primitive. */
export function ctx(n: number, constructed = true): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
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
    if (n > 4) throw new DerError(`length of ${n} octets is too large`);
    if (pos + n > limit) throw new DerError("truncated length");
    if (buf[pos] === 0) throw new DerError("non-minimal length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80) throw new DerError("non-minimal length");
  }
  const end = pos + length;
  if (end > limit) throw new DerError(`element of ${length} bytes runs past its container`);
  return { buf, tag, start: offset, valueStart: pos, end };
}

/** `data` as exactly one element: trailing bytes are an error. */
export function parseDer(data: Uint8Array): Tlv {
  const buf = asBuffer(data);
  const tlv = readTlv(buf, 0);
  if (tlv.end !== buf.length) throw new DerError(`${buf.length - tlv.end} trailing bytes after the element`);
  return tlv;
}

export function expectTag(t: Tlv, tag: number, what: string): Tlv {
  if (t.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

/** The element's whole encoding (tag, length and value). */
export function raw(t: Tlv): Buffer {
  return t.buf.subarray(t.start, t.end);
}

export function value(t: Tlv): Buffer {
  return t.buf.subarray(t.valueStart, t.end);
}

export function isConstructed(t: Tlv): boolean {
  return (t.tag & 0x20) !== 0;
}

/** The children of a constructed element. */
export function children(t: Tlv): Tlv[] {
  if (!isConstructed(t)) throw new DerError("a primitive element has no children");
  const out: Tlv[] = [];
  let pos = t.valueStart;
  while (pos < t.end) {
    const child = readTlv(t.buf, pos, t.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** The single element an EXPLICIT `[n]` wrapper holds. */
export function unwrapExplicit(t: Tlv): Tlv {
  const kids = children(t);
  if (kids.length !== 1) throw new DerError("an explicit tag must wrap exactly one element");
  return kids[0]!;
}

/**
 * Walks every constructed element below `t` and checks what DER demands of the framing:
 * definite minimal lengths that nest exactly, universal strings and primitives never constructed,
 * BOOLEAN as one octet 00 or FF, SET OF in DER order is not checked (names compare by value).
 */
export function checkDer(t: Tlv, depth = 0): void {
  if (depth > MAX_DEPTH) throw new DerError(`nesting deeper than ${MAX_DEPTH}`);
  const universal = (t.tag & 0xc0) === 0;
  if (!isConstructed(t)) {
    if (t.tag === TAG.BOOLEAN && (t.end - t.valueStart !== 1 || (t.buf[t.valueStart] !== 0 && t.buf[t.valueStart] !== 0xff))) {
      throw new DerError("BOOLEAN is not one octet of 00 or FF");
    }
    return;
  }
  if (universal && t.tag !== TAG.SEQUENCE && t.tag !== TAG.SET) throw new DerError(`constructed encoding of universal tag ${t.tag & 0x1f} is not DER`);
  let pos = t.valueStart;
  while (pos < t.end) {
    const child = readTlv(t.buf, pos, t.end);
    checkDer(child, depth + 1);
    pos = child.end;
  }
}

/** Parses `data` as one DER element and checks its framing throughout. */
export function parseStrict(data: Uint8Array): Tlv {
  const t = parseDer(data);
  checkDer(t);
  return t;
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
  return oidString(value(expectTag(t, TAG.OID, "OBJECT IDENTIFIER")));
}

/** INTEGER content octets; DER forbids an empty value and a redundant leading 00 or FF octet. */
export function integerContent(t: Tlv, what: string): { bytes: Buffer; minimal: boolean } {
  const v = value(expectTag(t, TAG.INTEGER, what));
  if (v.length === 0) throw new DerError(`${what}: empty INTEGER`);
  const minimal = !(v.length > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0)));
  return { bytes: v, minimal };
}

/** Serial numbers compare by value: lower-case hex without leading zero octets ("00" for zero). */
export function normaliseSerialHex(hex: string): string {
  const h = hex.toLowerCase().replace(/^(00)+/, "");
  return h === "" ? "00" : h;
}

/** A non-negative INTEGER or ENUMERATED (or one tagged IMPLICIT [n]) that fits in 31 bits: path lengths, counters, reasons. */
export function readSmallUint(t: Tlv): number {
  if ((t.tag & 0xc0) === 0 && t.tag !== TAG.INTEGER && t.tag !== TAG.ENUMERATED) throw new DerError("expected INTEGER or ENUMERATED");
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

/** An INTEGER as a bigint (CRL numbers run to 20 octets). */
export function readBigInt(t: Tlv): bigint {
  const v = value(expectTag(t, TAG.INTEGER, "INTEGER"));
  if (v.length === 0) throw new DerError("empty INTEGER");
  let n = BigInt(`0x${v.toString("hex")}`);
  if (v[0]! & 0x80) n -= 1n << BigInt(v.length * 8);
  return n;
}

export function readBoolean(t: Tlv): boolean {
  const v = value(t);
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) throw new DerError("BOOLEAN is not one octet of 00 or FF");
  return v[0] !== 0;
}

/** BIT STRING content without its unused-bits octet; `whole` requires 0 unused bits (keys, signatures). */
export function bitStringBytes(t: Tlv, whole = true): Buffer {
  const v = value(expectTag(t, TAG.BIT_STRING, "BIT STRING"));
  if (v.length === 0) throw new DerError("empty BIT STRING");
  if (v[0]! > 7 || (whole && v[0] !== 0)) throw new DerError("BIT STRING with unused bits where whole octets are required");
  return v.subarray(1);
}

export function isTime(t: Tlv): boolean {
  return t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME;
}

export interface DecodedTime {
  /** Milliseconds since the epoch (whole seconds). */
  readonly ms: number;
  readonly generalized: boolean;
}

/** A certificate or CRL time → epoch ms (see `decodeTime`). */
export function readTime(t: Tlv, what = "time"): number {
  return decodeTime(t, what).ms;
}

/**
 * UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`, the only forms DER and RFC 5280
 * allow for certificates and CRLs (seconds present, no fraction, Zulu). Anything else is a DerError.
 */
export function decodeTime(t: Tlv, what = "time"): DecodedTime {
  const s = value(t).toString("latin1");
  let m: RegExpExecArray | null;
  if (t.tag === TAG.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new DerError(`${what}: UTCTime ${JSON.stringify(s)} is not YYMMDDHHMMSSZ`);
    const yy = Number(m[1]);
    return { ms: utc(yy >= 50 ? 1900 + yy : 2000 + yy, m, what, s), generalized: false };
  }
  if (t.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new DerError(`${what}: GeneralizedTime ${JSON.stringify(s)} is not YYYYMMDDHHMMSSZ`);
    return { ms: utc(Number(m[1]), m, what, s), generalized: true };
  }
  throw new DerError(`${what}: expected UTCTime or GeneralizedTime, got tag 0x${t.tag.toString(16)}`);
}

function utc(year: number, m: RegExpExecArray, what: string, s: string): number {
  const [mo, d, h, mi, sec] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  const ms = Date.UTC(year, mo - 1, d, h, mi, sec);
  const back = new Date(ms);
  // Date.UTC rolls 31 February over into March: a date that does not come back unchanged does not exist.
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59 || back.getUTCDate() !== d || back.getUTCMonth() !== mo - 1) {
    throw new DerError(`${what}: ${JSON.stringify(s)} is not a valid date and time`);
  }
  return ms;
}

/** DER encoding of one element (the few values requests and tests need). */
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

/** The directory string types names use, decoded to text (anything else: undefined). */
export function readString(t: Tlv): string | undefined {
  const v = value(t);
  switch (t.tag) {
    case TAG.UTF8_STRING: {
      const s = v.toString("utf8");
      // Invalid sequences decode to U+FFFD: a string that does not encode back to its bytes was not UTF-8.
      if (s.includes("\ufffd") && !Buffer.from(s, "utf8").equals(v)) throw new DerError("UTF8String is not valid UTF-8");
      return s;
    }
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
