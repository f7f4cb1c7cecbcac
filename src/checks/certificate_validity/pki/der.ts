/**
 * A small, strict DER reader for the parts of a certificate node's X509Certificate does not expose
 * (the extension list with critical flags, basicConstraints, keyUsage, extendedKeyUsage, names,
 * name constraints, signature algorithm, key parameters). Every read is bounds-checked; malformed
 * input throws `DerError`. Hand-written rather than @peculiar/asn1-x509 for speed: decoding one
 * certificate's extensions here costs a few microseconds, asn1-schema costs ~0.6 ms per certificate.
 */

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

/** One element of `buf`: it spans [start, end), its value [valueStart, end). */
export interface Tlv {
  readonly buf: Buffer;
  /** The identifier octet (class, constructed bit, tag number < 31). */
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
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
    if (n > 4) throw new DerError("length too large");
    if (pos + n > limit) throw new DerError("truncated length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
  }
  const end = pos + length;
  if (end > limit) throw new DerError("element runs past its container (truncated?)");
  return { buf, tag, start: offset, valueStart: pos, end };
}

/** `data` as exactly one element; trailing bytes are an error. */
export function parseOne(data: Uint8Array): Tlv {
  const buf = asBuffer(data);
  const t = readTlv(buf, 0);
  if (t.end !== buf.length) throw new DerError("trailing data after the outer element");
  return t;
}

export function expect(t: Tlv, tag: number, what: string): Tlv {
  if (t.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

export function children(t: Tlv): Tlv[] {
  if ((t.tag & 0x20) === 0) throw new DerError("primitive element has no children");
  const out: Tlv[] = [];
  let pos = t.valueStart;
  while (pos < t.end) {
    const c = readTlv(t.buf, pos, t.end);
    out.push(c);
    pos = c.end;
  }
  return out;
}

export function value(t: Tlv): Buffer {
  return t.buf.subarray(t.valueStart, t.end);
}

export function raw(t: Tlv): Buffer {
  return t.buf.subarray(t.start, t.end);
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

export function readBoolean(t: Tlv): boolean {
  const v = value(expect(t, TAG.BOOLEAN, "BOOLEAN"));
  if (v.length !== 1) throw new DerError("bad BOOLEAN");
  return v[0] !== 0;
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

/** UTCTime or GeneralizedTime → epoch ms. */
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
  const M = Number(mo);
  const D = Number(d);
  if (M < 1 || M > 12 || D < 1 || D > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) throw new DerError("time out of range");
  return Date.UTC(year, M - 1, D, Number(h), Number(mi), Number(s)) + (frac ? Math.floor(Number(`0${frac}`) * 1000) : 0);
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
