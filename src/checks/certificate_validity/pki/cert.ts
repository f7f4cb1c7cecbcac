/**
 * Certificate parsing for path validation: PEM/DER splitting and `ParsedCert`, one certificate
 * parsed once. Node's X509Certificate does the parsing it is good at (and acts as a second, strict
 * parser: what OpenSSL cannot read is malformed), signature verification and public keys; a small
 * DER reader (der.ts) decodes what node does not expose: extensions with their critical flags,
 * basicConstraints, keyUsage, extendedKeyUsage, SANs by type, name constraints, key parameters and
 * the signature algorithm. Everything is decoded eagerly in the constructor (a few microseconds),
 * so a malformed extension surfaces as a `CertParseError` there, never half-way through validation.
 */

import { X509Certificate, createHash, type KeyObject } from "node:crypto";
import type { CertSummary } from "../types.ts";
import { DerError, TAG, asBuffer, children, expect, oidString, parseOne, raw, readBoolean, readOid, readSmallUint, readString, readTime, readTlv, value, type Tlv } from "../der.ts";
import { ipRangeToText, ipToText } from "./ip.ts";
import { ATTRIBUTE_NAMES, CURVES, HASHES, KEY_ALGORITHMS, KEY_USAGE_NAMES, OID, RSA_PSS, SIGNATURE_ALGORITHMS } from "./oids.ts";

/** Largest certificate accepted (DER bytes). */
export const MAX_CERT_BYTES = 1024 * 1024;

/** The input is not a certificate (or PEM bundle of them): malformed, truncated or oversized. Callers map it to CERT_MALFORMED. */
export class CertParseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CertParseError";
  }
}

// ---------------------------------------------------------------------------------------------
// PEM / DER splitting

const DEFAULT_PEM_LABELS = ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CRL"];

/**
 * PEM text (one or many blocks, with any text around them) or DER (one or several concatenated
 * elements) → DER list. Blocks whose label is not in `labels` (private keys, parameters…) are
 * skipped; by default certificates and CRLs are kept. Throws `CertParseError` when nothing usable
 * is found, a block is truncated or not base64, or an element exceeds 1 MiB.
 */
export function splitPem(input: Uint8Array | string, options: { labels?: readonly string[] } = {}): Uint8Array[] {
  const labels = options.labels ?? DEFAULT_PEM_LABELS;
  let derError: string | undefined;
  if (typeof input !== "string") {
    if (input.length > 0 && input[0] === 0x30) {
      try {
        return splitDer(asBuffer(input));
      } catch (err) {
        derError = err instanceof Error ? err.message : String(err);
      }
    }
  }
  const text = typeof input === "string" ? input : asBuffer(input).toString("latin1");
  const out: Uint8Array[] = [];
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/g;
  let m: RegExpExecArray | null;
  let sawBlock = false;
  while ((m = begin.exec(text)) !== null) {
    sawBlock = true;
    const label = m[1]!;
    const endMarker = `-----END ${label}-----`;
    const endAt = text.indexOf(endMarker, m.index + m[0].length);
    if (endAt < 0) throw new CertParseError(`truncated PEM: "-----BEGIN ${label}-----" has no END line`);
    begin.lastIndex = endAt + endMarker.length;
    if (!labels.includes(label)) continue;
    const body = text.slice(m.index + m[0].length, endAt);
    if (body.length > MAX_CERT_BYTES * 1.4 + 4096) throw new CertParseError(`PEM block ${label} exceeds ${MAX_CERT_BYTES} bytes`);
    if (body.includes(":")) throw new CertParseError(`PEM block ${label} carries headers (encrypted?)`);
    const b64 = body.replace(/[\r\n\t ]+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw new CertParseError(`PEM block ${label} is not valid base64`);
    const der = Buffer.from(b64, "base64");
    if (der.length === 0) throw new CertParseError(`PEM block ${label} is empty`);
    let tlv: Tlv;
    try {
      tlv = readTlv(der, 0);
      if (tlv.tag !== TAG.SEQUENCE) throw new DerError("not a SEQUENCE");
    } catch (err) {
      throw new CertParseError(`PEM block ${label}: ${(err as Error).message}`);
    }
    // TRUSTED CERTIFICATE (OpenSSL) appends auxiliary trust data after the certificate.
    if (tlv.end !== der.length && label !== "TRUSTED CERTIFICATE") throw new CertParseError(`PEM block ${label}: trailing data after the DER element`);
    out.push(der.subarray(0, tlv.end));
  }
  if (out.length > 0) return out;
  if (derError !== undefined) throw new CertParseError(`malformed DER: ${derError}`);
  if (sawBlock) throw new CertParseError(`no ${labels.join(" / ")} PEM block found`);
  throw new CertParseError("neither PEM nor DER: no \"-----BEGIN\" line and no DER SEQUENCE");
}

function splitDer(buf: Buffer): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const t = readTlv(buf, pos);
    if (t.tag !== TAG.SEQUENCE) throw new DerError(`element at offset ${pos} is not a SEQUENCE`);
    if (t.end - t.start > MAX_CERT_BYTES) throw new DerError(`element at offset ${pos} exceeds ${MAX_CERT_BYTES} bytes`);
    out.push(buf.subarray(t.start, t.end));
    pos = t.end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Names

export interface AttributeTypeAndValue {
  readonly oid: string;
  /** Decoded directory string; undefined for non-string values. */
  readonly value: string | undefined;
  /** The value's DER (tag, length, content). */
  readonly raw: Buffer;
}

export interface DistinguishedName {
  readonly rdns: readonly (readonly AttributeTypeAndValue[])[];
  /** RFC 4514 string (most specific RDN first), e.g. `CN=web, O=Example, C=DE`. */
  readonly text: string;
  /** Comparison key: RDNs in order, values case-folded and whitespace-collapsed (RFC 5280 §7.1, simplified). */
  readonly key: string;
  /** One comparison key per RDN (for prefix checks of directoryName constraints). */
  readonly rdnKeys: readonly string[];
}

function parseName(t: Tlv): DistinguishedName {
  expect(t, TAG.SEQUENCE, "Name");
  const rdns: AttributeTypeAndValue[][] = [];
  for (const set of children(t)) {
    expect(set, TAG.SET, "RelativeDistinguishedName");
    const avas: AttributeTypeAndValue[] = [];
    for (const seq of children(set)) {
      const [type, val, extra] = children(expect(seq, TAG.SEQUENCE, "AttributeTypeAndValue"));
      if (!type || !val || extra) throw new DerError("bad AttributeTypeAndValue");
      avas.push({ oid: readOid(type), value: readString(val), raw: raw(val) });
    }
    if (avas.length === 0) throw new DerError("empty RelativeDistinguishedName");
    rdns.push(avas);
  }
  const rdnKeys = rdns.map((avas) => avas.map((a) => `${a.oid}=${a.value !== undefined ? foldValue(a.value) : `#${a.raw.toString("hex")}`}`).sort().join("+"));
  const text = rdns
    .slice()
    .reverse()
    .map((avas) => avas.map(formatAva).join("+"))
    .join(", ");
  return { rdns, text, key: rdnKeys.join(","), rdnKeys };
}

function foldValue(v: string): string {
  return v.normalize("NFKC").toLowerCase().trim().replace(/\s+/g, " ");
}

function formatAva(a: AttributeTypeAndValue): string {
  const name = ATTRIBUTE_NAMES[a.oid] ?? a.oid;
  if (a.value === undefined) return `${name}=#${a.raw.toString("hex")}`;
  let v = a.value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  // Control characters would let a certificate forge log lines: escape them as \XX.
  v = v.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  if (v.startsWith(" ") || v.startsWith("#")) v = `\\${v}`;
  if (v.endsWith(" ") && v.length > 1) v = `${v.slice(0, -1)}\\ `;
  return `${name}=${v}`;
}

// ---------------------------------------------------------------------------------------------
// GeneralName

export type GeneralName =
  | { readonly type: "dns"; readonly value: string }
  | { readonly type: "email"; readonly value: string }
  | { readonly type: "uri"; readonly value: string }
  /** 4/16 bytes in a SAN; 8/32 (address then mask) in a name constraint. */
  | { readonly type: "ip"; readonly bytes: Buffer }
  | { readonly type: "dn"; readonly name: DistinguishedName }
  | { readonly type: "other"; readonly kind: "otherName" | "x400Address" | "ediPartyName" | "registeredID"; readonly oid?: string };

function ia5(t: Tlv): string {
  const v = value(t);
  for (const b of v) if (b > 0x7e || b < 0x20) throw new DerError("IA5String name with a non-printable or non-ASCII character");
  return v.toString("latin1");
}

function parseGeneralName(t: Tlv): GeneralName {
  switch (t.tag) {
    case 0xa0: {
      const [typeId] = children(t);
      return { type: "other", kind: "otherName", ...(typeId ? { oid: readOid(typeId) } : {}) };
    }
    case 0x81:
      return { type: "email", value: ia5(t) };
    case 0x82:
      return { type: "dns", value: ia5(t) };
    case 0xa3:
      return { type: "other", kind: "x400Address" };
    case 0xa4: {
      const kids = children(t);
      if (kids.length !== 1) throw new DerError("directoryName must wrap one Name");
      return { type: "dn", name: parseName(kids[0]!) };
    }
    case 0xa5:
      return { type: "other", kind: "ediPartyName" };
    case 0x86:
      return { type: "uri", value: ia5(t) };
    case 0x87:
      return { type: "ip", bytes: Buffer.from(value(t)) };
    case 0x88:
      return { type: "other", kind: "registeredID", oid: oidString(value(t)) };
    default:
      throw new DerError(`unknown GeneralName tag 0x${t.tag.toString(16)}`);
  }
}

export function generalNameToText(g: GeneralName): string {
  switch (g.type) {
    case "dns":
      return `DNS:${g.value}`;
    case "email":
      return `email:${g.value}`;
    case "uri":
      return `URI:${g.value}`;
    case "ip":
      return g.bytes.length === 8 || g.bytes.length === 32
        ? `IP:${ipRangeToText(g.bytes.subarray(0, g.bytes.length / 2), g.bytes.subarray(g.bytes.length / 2))}`
        : `IP:${ipToText(g.bytes)}`;
    case "dn":
      return `DirName:${g.name.text}`;
    case "other":
      return `${g.kind}${g.oid ? `:${g.oid}` : ""}`;
  }
}

export interface SubjectAltNames {
  readonly dns: readonly string[];
  /** Text form (IPv6 compressed); `ipBytes` holds the same in bytes. */
  readonly ip: readonly string[];
  readonly ipBytes: readonly Buffer[];
  readonly email: readonly string[];
  readonly uri: readonly string[];
  readonly dn: readonly DistinguishedName[];
  /** otherName, x400Address, ediPartyName, registeredID. */
  readonly other: readonly GeneralName[];
  /** All, in order, as `DNS:x`, `IP:x`, `email:x`, `URI:x`, `DirName:x`. */
  readonly all: readonly GeneralName[];
}

const NO_SANS: SubjectAltNames = { dns: [], ip: [], ipBytes: [], email: [], uri: [], dn: [], other: [], all: [] };

function parseSans(v: Buffer): SubjectAltNames {
  const all = children(expect(parseOne(v), TAG.SEQUENCE, "subjectAltName")).map(parseGeneralName);
  const ipBytes = all.flatMap((g) => (g.type === "ip" ? [g.bytes] : []));
  for (const b of ipBytes) if (b.length !== 4 && b.length !== 16) throw new DerError(`subjectAltName iPAddress of ${b.length} bytes`);
  return {
    dns: all.flatMap((g) => (g.type === "dns" ? [g.value] : [])),
    ip: ipBytes.map(ipToText),
    ipBytes,
    email: all.flatMap((g) => (g.type === "email" ? [g.value] : [])),
    uri: all.flatMap((g) => (g.type === "uri" ? [g.value] : [])),
    dn: all.flatMap((g) => (g.type === "dn" ? [g.name] : [])),
    other: all.filter((g) => g.type === "other"),
    all,
  };
}

// ---------------------------------------------------------------------------------------------
// Name constraints

export interface IpSubtree {
  readonly addr: Buffer;
  readonly mask: Buffer;
}

export interface Subtrees {
  readonly dns: readonly string[];
  readonly ip: readonly IpSubtree[];
  readonly email: readonly string[];
  readonly uri: readonly string[];
  readonly dn: readonly DistinguishedName[];
  /** Name forms this validator does not process (otherName, x400Address, ediPartyName, registeredID). */
  readonly unsupported: readonly string[];
}

export interface NameConstraintsInfo {
  readonly permitted?: Subtrees;
  readonly excluded?: Subtrees;
  /** Set when the extension uses what RFC 5280 forbids (minimum ≠ 0, maximum): the constraint cannot be honoured. */
  readonly invalid?: string;
}

function parseSubtrees(t: Tlv, problems: string[]): Subtrees {
  const dns: string[] = [];
  const ip: IpSubtree[] = [];
  const email: string[] = [];
  const uri: string[] = [];
  const dn: DistinguishedName[] = [];
  const unsupported: string[] = [];
  for (const sub of children(t)) {
    const [base, ...rest] = children(expect(sub, TAG.SEQUENCE, "GeneralSubtree"));
    if (!base) throw new DerError("empty GeneralSubtree");
    for (const r of rest) {
      if (r.tag === 0x80 && readSmallUint(r) === 0) continue;
      problems.push("a subtree sets minimum or maximum (RFC 5280: minimum 0, no maximum)");
    }
    const g = parseGeneralName(base);
    switch (g.type) {
      case "dns":
        dns.push(g.value);
        break;
      case "email":
        email.push(g.value);
        break;
      case "uri":
        uri.push(g.value);
        break;
      case "dn":
        dn.push(g.name);
        break;
      case "ip": {
        const n = g.bytes.length;
        if (n !== 8 && n !== 32) throw new DerError(`iPAddress constraint of ${n} bytes (want 8 or 32)`);
        ip.push({ addr: g.bytes.subarray(0, n / 2), mask: g.bytes.subarray(n / 2) });
        break;
      }
      case "other":
        unsupported.push(g.kind);
        break;
    }
  }
  return { dns, ip, email, uri, dn, unsupported };
}

function parseNameConstraints(v: Buffer): NameConstraintsInfo {
  const problems: string[] = [];
  let permitted: Subtrees | undefined;
  let excluded: Subtrees | undefined;
  for (const c of children(expect(parseOne(v), TAG.SEQUENCE, "NameConstraints"))) {
    if (c.tag === 0xa0 && !permitted) permitted = parseSubtrees(c, problems);
    else if (c.tag === 0xa1 && !excluded) excluded = parseSubtrees(c, problems);
    else throw new DerError("unexpected element in NameConstraints");
  }
  if (!permitted && !excluded) throw new DerError("NameConstraints with neither permitted nor excluded subtrees");
  return { ...(permitted ? { permitted } : {}), ...(excluded ? { excluded } : {}), ...(problems.length ? { invalid: problems[0] } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Keys and algorithms

export interface KeyInfo {
  readonly type: "rsa" | "rsa-pss" | "ec" | "ed25519" | "ed448" | "x25519" | "x448" | "dsa" | "unknown";
  readonly oid: string;
  /** RSA modulus bits. */
  readonly bits?: number;
  /** EC curve: P-256, P-384, P-521, P-192… or the curve OID; `explicit` for explicit parameters. */
  readonly curve?: string;
}

function parseSpki(t: Tlv): KeyInfo {
  const [alg, bits] = children(expect(t, TAG.SEQUENCE, "SubjectPublicKeyInfo"));
  if (!alg || !bits) throw new DerError("bad SubjectPublicKeyInfo");
  const [algOid, params] = children(expect(alg, TAG.SEQUENCE, "AlgorithmIdentifier"));
  if (!algOid) throw new DerError("bad AlgorithmIdentifier");
  const oid = readOid(algOid);
  const type = KEY_ALGORITHMS[oid] ?? "unknown";
  const key = value(expect(bits, TAG.BIT_STRING, "subjectPublicKey"));
  if (key.length < 1) throw new DerError("empty subjectPublicKey");
  if (type === "rsa" || type === "rsa-pss") {
    const [n] = children(expect(parseOne(key.subarray(1)), TAG.SEQUENCE, "RSAPublicKey"));
    if (!n || n.tag !== TAG.INTEGER) throw new DerError("bad RSAPublicKey");
    const nv = value(n);
    let i = 0;
    while (i < nv.length - 1 && nv[i] === 0) i++;
    const bitLen = (nv.length - i - 1) * 8 + (32 - Math.clz32(nv[i]!));
    return { type, oid, bits: bitLen };
  }
  if (type === "ec") {
    if (!params) throw new DerError("EC key without parameters");
    const curve = params.tag === TAG.OID ? (CURVES[readOid(params)] ?? readOid(params)) : "explicit";
    return { type, oid, curve };
  }
  return { type, oid };
}

export interface SignatureAlgorithm {
  readonly oid: string;
  readonly name: string;
  /** md5, sha1, sha256…, "intrinsic" (EdDSA) or "unknown". */
  readonly hash: string;
}

function parseSignatureAlgorithm(t: Tlv): SignatureAlgorithm {
  const [o, params] = children(expect(t, TAG.SEQUENCE, "AlgorithmIdentifier"));
  if (!o) throw new DerError("bad AlgorithmIdentifier");
  const oid = readOid(o);
  const known = SIGNATURE_ALGORITHMS[oid];
  if (oid === RSA_PSS) {
    // RSASSA-PSS-params: hashAlgorithm [0] defaults to SHA-1.
    let hash = "sha1";
    if (params && params.tag === TAG.SEQUENCE) {
      for (const p of children(params)) {
        if (p.tag !== 0xa0) continue;
        const [h] = children(p);
        const [hOid] = h ? children(expect(h, TAG.SEQUENCE, "hashAlgorithm")) : [];
        if (hOid) hash = HASHES[readOid(hOid)] ?? "unknown";
      }
    }
    return { oid, name: `rsassa-pss(${hash})`, hash };
  }
  return { oid, name: known?.name ?? oid, hash: known?.hash ?? "unknown" };
}

// ---------------------------------------------------------------------------------------------
// ParsedCert

export interface ExtensionInfo {
  readonly oid: string;
  readonly critical: boolean;
  /** extnValue content (the DER the OCTET STRING wraps). */
  readonly value: Buffer;
}

/** One certificate, parsed once. Construct with `new ParsedCert(der)`; throws `CertParseError`. */
export class ParsedCert {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint: string;
  readonly version: number;
  /** Serial number, lower-case hex without redundant leading zero octets. */
  readonly serial: string;
  readonly subject: DistinguishedName;
  readonly issuer: DistinguishedName;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly key: KeyInfo;
  /** SHA-256 of the SubjectPublicKeyInfo DER, hex (same key ⇔ same value). */
  readonly spkiHash: string;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly extensions: readonly ExtensionInfo[];
  readonly criticalExtensionOids: readonly string[];
  /** basicConstraints: present, cA, pathLenConstraint. */
  readonly basicConstraints: { readonly cA: boolean; readonly pathLen?: number } | undefined;
  /** keyUsage bit names, or undefined when the extension is absent. */
  readonly keyUsage: readonly string[] | undefined;
  /** extendedKeyUsage OIDs, or undefined when the extension is absent. */
  readonly eku: readonly string[] | undefined;
  readonly sans: SubjectAltNames;
  readonly nameConstraints: NameConstraintsInfo | undefined;
  readonly subjectKeyId: string | undefined;
  readonly authorityKeyId: string | undefined;
  #publicKey: KeyObject | undefined;
  /** Signature checks already done against issuers, by the issuer's SPKI hash. */
  readonly #verified = new Map<string, boolean>();

  constructor(der: Uint8Array, fingerprint?: string) {
    if (der.length > MAX_CERT_BYTES) throw new CertParseError(`certificate of ${der.length} bytes exceeds ${MAX_CERT_BYTES}`);
    // A private copy: callers may reuse their buffers, and parsed certificates are cached.
    const buf = Buffer.from(asBuffer(der));
    this.der = buf;
    this.fingerprint = fingerprint ?? createHash("sha256").update(buf).digest("hex");
    try {
      const top = children(expect(parseOne(buf), TAG.SEQUENCE, "Certificate"));
      const [tbs, sigAlg, sig] = top;
      if (!tbs || !sigAlg || !sig || top.length !== 3) throw new DerError("Certificate must hold tbsCertificate, signatureAlgorithm, signature");
      expect(sig, TAG.BIT_STRING, "signatureValue");
      const f = children(expect(tbs, TAG.SEQUENCE, "TBSCertificate"));
      let i = 0;
      let version = 1;
      if (f[0]?.tag === 0xa0) {
        const [v] = children(f[0]);
        if (!v || v.tag !== TAG.INTEGER) throw new DerError("bad version");
        version = readSmallUint(v) + 1;
        i = 1;
      }
      const [serial, innerSig, issuer, validity, subject, spki] = f.slice(i, i + 6);
      if (!serial || !innerSig || !issuer || !validity || !subject || !spki) throw new DerError("TBSCertificate is missing fields");
      if (!raw(innerSig).equals(raw(sigAlg))) throw new DerError("the signature algorithm inside TBSCertificate differs from the outer one");
      this.version = version;
      const sv = value(expect(serial, TAG.INTEGER, "serialNumber"));
      const sh = sv.toString("hex").replace(/^(00)+/, "");
      this.serial = sh === "" ? "00" : sh;
      this.signatureAlgorithm = parseSignatureAlgorithm(sigAlg);
      this.issuer = parseName(issuer);
      this.subject = parseName(subject);
      const [nb, na] = children(expect(validity, TAG.SEQUENCE, "Validity"));
      if (!nb || !na) throw new DerError("bad Validity");
      this.notBefore = readTime(nb);
      this.notAfter = readTime(na);
      this.key = parseSpki(spki);
      this.spkiHash = createHash("sha256").update(raw(spki)).digest("hex");

      const exts: ExtensionInfo[] = [];
      for (const t of f.slice(i + 6)) {
        if (t.tag === 0x81 || t.tag === 0x82) continue; // issuerUniqueID / subjectUniqueID
        if (t.tag !== 0xa3) throw new DerError(`unexpected element 0x${t.tag.toString(16)} in TBSCertificate`);
        const [seq] = children(t);
        if (!seq) throw new DerError("empty extensions");
        for (const e of children(expect(seq, TAG.SEQUENCE, "Extensions"))) {
          const parts = children(expect(e, TAG.SEQUENCE, "Extension"));
          const oid = readOid(parts[0] ?? (() => { throw new DerError("empty Extension"); })());
          let critical = false;
          let k = 1;
          if (parts[k]?.tag === TAG.BOOLEAN) critical = readBoolean(parts[k++]!);
          const ev = parts[k];
          if (!ev || k + 1 !== parts.length) throw new DerError(`bad Extension ${oid}`);
          if (exts.some((x) => x.oid === oid)) throw new DerError(`extension ${oid} appears twice`);
          exts.push({ oid, critical, value: value(expect(ev, TAG.OCTET_STRING, "extnValue")) });
        }
      }
      this.extensions = exts;
      this.criticalExtensionOids = exts.filter((e) => e.critical).map((e) => e.oid);
      const ext = (oid: string) => exts.find((e) => e.oid === oid)?.value;

      const bc = ext(OID.basicConstraints);
      if (bc) {
        let cA = false;
        let pathLen: number | undefined;
        for (const c of children(expect(parseOne(bc), TAG.SEQUENCE, "BasicConstraints"))) {
          if (c.tag === TAG.BOOLEAN) cA = readBoolean(c);
          else if (c.tag === TAG.INTEGER) pathLen = readSmallUint(c);
          else throw new DerError("bad BasicConstraints");
        }
        this.basicConstraints = pathLen === undefined ? { cA } : { cA, pathLen };
      } else this.basicConstraints = undefined;

      const ku = ext(OID.keyUsage);
      if (ku) {
        const bits = value(expect(parseOne(ku), TAG.BIT_STRING, "KeyUsage"));
        if (bits.length < 1) throw new DerError("empty KeyUsage");
        const names: string[] = [];
        for (let b = 0; b < KEY_USAGE_NAMES.length; b++) {
          const byte = bits[1 + (b >> 3)];
          if (byte !== undefined && byte & (0x80 >> (b & 7))) names.push(KEY_USAGE_NAMES[b]!);
        }
        this.keyUsage = names;
      } else this.keyUsage = undefined;

      const eku = ext(OID.extKeyUsage);
      this.eku = eku ? children(expect(parseOne(eku), TAG.SEQUENCE, "ExtKeyUsageSyntax")).map(readOid) : undefined;

      const san = ext(OID.subjectAltName);
      this.sans = san ? parseSans(san) : NO_SANS;

      const nc = ext(OID.nameConstraints);
      this.nameConstraints = nc ? parseNameConstraints(nc) : undefined;

      const ski = ext(OID.subjectKeyIdentifier);
      this.subjectKeyId = ski ? value(expect(parseOne(ski), TAG.OCTET_STRING, "SubjectKeyIdentifier")).toString("hex") : undefined;
      const aki = ext(OID.authorityKeyIdentifier);
      let akid: string | undefined;
      if (aki) for (const c of children(expect(parseOne(aki), TAG.SEQUENCE, "AuthorityKeyIdentifier"))) if (c.tag === 0x80) akid = value(c).toString("hex");
      this.authorityKeyId = akid;
    } catch (err) {
      if (err instanceof DerError) throw new CertParseError(`malformed certificate: ${err.message}`, { cause: err });
      throw err;
    }
    try {
      this.x509 = new X509Certificate(buf);
    } catch (err) {
      throw new CertParseError(`malformed certificate: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Subject and issuer names are equal (RFC 5280 self-issued; not necessarily self-signed). */
  get selfIssued(): boolean {
    return this.subject.key === this.issuer.key;
  }

  get isCA(): boolean {
    return this.basicConstraints?.cA === true;
  }

  get pathLen(): number | undefined {
    return this.basicConstraints?.pathLen;
  }

  get publicKey(): KeyObject {
    return (this.#publicKey ??= this.x509.publicKey);
  }

  /** Does `issuer`'s key verify this certificate's signature? Remembered per issuer key. */
  isSignedBy(issuer: ParsedCert): boolean {
    let ok = this.#verified.get(issuer.spkiHash);
    if (ok === undefined) {
      try {
        ok = this.x509.verify(issuer.publicKey);
      } catch {
        ok = false;
      }
      this.#verified.set(issuer.spkiHash, ok);
    }
    return ok;
  }

  /** SANs as `DNS:x`, `IP:x`, `email:x`, `URI:x`, `DirName:x`. */
  get sanStrings(): string[] {
    return this.sans.all.map(generalNameToText);
  }
}

/** Parses DER (or the first certificate of PEM) into a ParsedCert; throws CertParseError. */
export function parseCertificate(input: Uint8Array | string): ParsedCert {
  const [der] = splitPem(input, { labels: ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"] });
  return new ParsedCert(der!);
}

const summaries = new WeakMap<ParsedCert, CertSummary>();

/** The CertSummary of a certificate (remembered per ParsedCert: anchors and intermediates recur). */
export function summarize(cert: ParsedCert | Uint8Array): CertSummary {
  const c = cert instanceof ParsedCert ? cert : new ParsedCert(cert);
  let s = summaries.get(c);
  if (!s) {
    s = summaryOf(c);
    summaries.set(c, s);
  }
  return s;
}

function summaryOf(c: ParsedCert): CertSummary {
  return Object.freeze({
    subject: c.subject.text,
    issuer: c.issuer.text,
    serial: c.serial,
    not_before: new Date(c.notBefore).toISOString(),
    not_after: new Date(c.notAfter).toISOString(),
    sans: Object.freeze(c.sanStrings),
    fingerprint_sha256: c.fingerprint,
  });
}
