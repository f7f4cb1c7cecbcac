/**
 * What revocation checking needs from certificates, read straight from their DER: exact issuer and
 * subject name bytes (CRL issuer match, OCSP CertID), the public key bits (CertID), the serial,
 * extensions (AIA, CRL distribution points, EKU, key usage), and signature verification with
 * node:crypto over the original to-be-signed bytes.
 */
import { constants, createHash, verify as cryptoVerify, X509Certificate, type KeyObject } from "node:crypto";
import {
  bitStringBytes,
  children,
  ctx,
  DerError,
  expectTag,
  integerHex,
  isTime,
  iterChildren,
  parseDer,
  raw,
  readBoolean,
  readOid,
  readSmallInt,
  readTime,
  TAG,
  unwrapExplicit,
  value,
  type Tlv,
} from "../der.ts";

export const OID = {
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  adOcsp: "1.3.6.1.5.5.7.48.1",
  crlDistributionPoints: "2.5.29.31",
  extKeyUsage: "2.5.29.37",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  kpOcspSigning: "1.3.6.1.5.5.7.3.9",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  sha224: "2.16.840.1.101.3.4.2.4",
  mgf1: "1.2.840.113549.1.1.8",
  rsassaPss: "1.2.840.113549.1.1.10",
} as const;

export interface CertExtension {
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface CertInfo {
  readonly der: Buffer;
  readonly node: X509Certificate;
  readonly publicKey: KeyObject;
  readonly tbsRaw: Buffer;
  readonly sigAlgRaw: Buffer;
  readonly signature: Buffer;
  /** Normalised lower-case hex (leading zero octets removed). */
  readonly serialHex: string;
  /** The INTEGER content octets as encoded (for the OCSP CertID). */
  readonly serialBytes: Buffer;
  readonly issuerRaw: Buffer;
  readonly subjectRaw: Buffer;
  /** subjectPublicKey BIT STRING content without the unused-bits octet (the OCSP issuerKeyHash input). */
  readonly publicKeyBits: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly isCA: boolean;
  readonly extensions: ReadonlyMap<string, CertExtension>;
}

export function parseCert(input: Uint8Array): CertInfo {
  const der = Buffer.from(input);
  const cert = expectTag(parseDer(der), TAG.SEQUENCE, "Certificate");
  const [tbs, sigAlg, sig] = children(cert);
  if (!tbs || !sigAlg || !sig) throw new DerError("Certificate: missing fields");
  expectTag(tbs, TAG.SEQUENCE, "TBSCertificate");
  const f = children(tbs);
  let i = 0;
  if (f[0]?.tag === ctx(0)) i++; // version
  const serial = f[i++];
  const innerAlg = f[i++];
  const issuer = f[i++];
  const validity = f[i++];
  const subject = f[i++];
  const spki = f[i++];
  if (!serial || !innerAlg || !issuer || !validity || !subject || !spki) throw new DerError("TBSCertificate: missing fields");
  const serialHex = integerHex(serial);
  const [notBefore, notAfter] = children(expectTag(validity, TAG.SEQUENCE, "Validity"));
  if (!notBefore || !notAfter || !isTime(notBefore) || !isTime(notAfter)) throw new DerError("Validity: bad times");
  const [, keyBits] = children(expectTag(spki, TAG.SEQUENCE, "SubjectPublicKeyInfo"));
  if (!keyBits) throw new DerError("SubjectPublicKeyInfo: missing key");
  const extensions = new Map<string, CertExtension>();
  for (; i < f.length; i++) {
    const t = f[i]!;
    if (t.tag !== ctx(3)) continue;
    for (const ext of iterChildren(expectTag(unwrapExplicit(t), TAG.SEQUENCE, "Extensions"))) {
      const parsed = readExtension(ext);
      if (extensions.has(parsed.oid)) throw new DerError(`duplicate extension ${parsed.oid}`);
      extensions.set(parsed.oid, { critical: parsed.critical, value: parsed.value });
    }
  }
  const node = new X509Certificate(der);
  const bc = extensions.get(OID.basicConstraints);
  let isCA = false;
  if (bc) {
    const first = children(expectTag(parseDer(bc.value), TAG.SEQUENCE, "BasicConstraints"))[0];
    isCA = first?.tag === TAG.BOOLEAN ? readBoolean(first) : false;
  }
  return {
    der,
    node,
    publicKey: node.publicKey,
    tbsRaw: raw(tbs),
    sigAlgRaw: raw(expectTag(sigAlg, TAG.SEQUENCE, "AlgorithmIdentifier")),
    signature: bitStringBytes(sig),
    serialHex,
    serialBytes: value(serial),
    issuerRaw: raw(expectTag(issuer, TAG.SEQUENCE, "issuer Name")),
    subjectRaw: raw(expectTag(subject, TAG.SEQUENCE, "subject Name")),
    publicKeyBits: bitStringBytes(keyBits),
    notBefore: readTime(notBefore),
    notAfter: readTime(notAfter),
    isCA,
    extensions,
  };
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
export function readExtension(ext: Tlv): { oid: string; critical: boolean; value: Buffer } {
  const parts = children(expectTag(ext, TAG.SEQUENCE, "Extension"));
  const oid = readOid(parts[0] ?? fail("Extension: missing id"));
  let critical = false;
  let j = 1;
  if (parts[j]?.tag === TAG.BOOLEAN) critical = readBoolean(parts[j++]!);
  const v = parts[j] ?? fail("Extension: missing value");
  return { oid, critical, value: value(expectTag(v, TAG.OCTET_STRING, "extnValue")) };
}

function fail(message: string): never {
  throw new DerError(message);
}

/** URIs of GeneralNames (`[6] IMPLICIT IA5String`) among `names`' children. */
function generalNameUris(names: Tlv): string[] {
  const out: string[] = [];
  for (const gn of iterChildren(names)) if (gn.tag === 0x86) out.push(value(gn).toString("latin1"));
  return out;
}

/** OCSP responder URLs from the Authority Information Access extension, in order. */
export function ocspUrls(cert: CertInfo): string[] {
  const aia = cert.extensions.get(OID.authorityInfoAccess);
  if (!aia) return [];
  const out: string[] = [];
  for (const ad of iterChildren(expectTag(parseDer(aia.value), TAG.SEQUENCE, "AuthorityInfoAccess"))) {
    const [method, location] = children(expectTag(ad, TAG.SEQUENCE, "AccessDescription"));
    if (method && location && readOid(method) === OID.adOcsp && location.tag === 0x86) out.push(value(location).toString("latin1"));
  }
  return out;
}

/** DistributionPointName `[0]` (explicit CHOICE) → the URIs of its fullName, if that is the chosen form. */
export function distributionPointNameUris(dpName: Tlv): string[] {
  const choice = unwrapExplicit(dpName);
  return choice.tag === ctx(0) ? generalNameUris(choice) : [];
}

/** CRL URLs named by the CRL Distribution Points extension (only fullName URIs; cRLIssuer points are indirect and skipped). */
export function crlUrls(cert: CertInfo): string[] {
  const cdp = cert.extensions.get(OID.crlDistributionPoints);
  if (!cdp) return [];
  const out: string[] = [];
  for (const dp of iterChildren(expectTag(parseDer(cdp.value), TAG.SEQUENCE, "CRLDistributionPoints"))) {
    const fields = children(expectTag(dp, TAG.SEQUENCE, "DistributionPoint"));
    if (fields.some((x) => x.tag === ctx(2) || x.tag === ctx(2, false))) continue; // cRLIssuer: an indirect CRL
    const name = fields.find((x) => x.tag === ctx(0));
    if (name) out.push(...distributionPointNameUris(name));
  }
  return out;
}

export function extendedKeyUsages(cert: CertInfo): string[] | undefined {
  const eku = cert.extensions.get(OID.extKeyUsage);
  if (!eku) return undefined;
  return children(expectTag(parseDer(eku.value), TAG.SEQUENCE, "ExtKeyUsage")).map(readOid);
}

/** keyUsage bit `bit` (0 = digitalSignature … 6 = cRLSign); true when the extension is absent. */
export function keyUsageAllows(cert: CertInfo, bit: number): boolean {
  const ku = cert.extensions.get(OID.keyUsage);
  if (!ku) return true;
  const bytes = bitStringBytes(parseDer(ku.value));
  const byte = bytes[bit >> 3] ?? 0;
  return (byte & (0x80 >> (bit & 7))) !== 0;
}

export const KEY_USAGE = { digitalSignature: 0, cRLSign: 6 } as const;

// ---------------------------------------------------------------------------------------------
// Names

/** RFC 5280 name comparison, approximated: equal DER, or the same attributes with case-folded, space-collapsed strings. */
export function namesEqual(a: Buffer, b: Buffer): boolean {
  if (a.equals(b)) return true;
  try {
    return canonicalName(a) === canonicalName(b);
  } catch {
    return false;
  }
}

const STRING_TAGS = new Set([0x0c, 0x13, 0x14, 0x16, 0x1c, 0x1e]);

function canonicalName(der: Buffer): string {
  const rdns: string[] = [];
  for (const rdn of iterChildren(expectTag(parseDer(der), TAG.SEQUENCE, "Name"))) {
    const atvs: string[] = [];
    for (const atv of iterChildren(expectTag(rdn, TAG.SET, "RDN"))) {
      const [type, val] = children(expectTag(atv, TAG.SEQUENCE, "AttributeTypeAndValue"));
      if (!type || !val) throw new DerError("AttributeTypeAndValue: missing fields");
      atvs.push(`${readOid(type)}=${STRING_TAGS.has(val.tag) ? decodeString(val).trim().replace(/\s+/g, " ").toLowerCase() : `#${raw(val).toString("hex")}`}`);
    }
    rdns.push(atvs.sort().join("+"));
  }
  return rdns.join(",");
}

function decodeString(t: Tlv): string {
  const v = value(t);
  if (t.tag === 0x1e) return v.length % 2 === 0 ? Buffer.from(v).swap16().toString("utf16le") : v.toString("latin1");
  if (t.tag === 0x1c) {
    let s = "";
    for (let i = 0; i + 3 < v.length; i += 4) s += String.fromCodePoint(v.readUInt32BE(i));
    return s;
  }
  return t.tag === 0x0c ? v.toString("utf8") : v.toString("latin1");
}

// ---------------------------------------------------------------------------------------------
// Hashes and signatures

const HASH_BY_OID: Readonly<Record<string, string>> = {
  [OID.sha1]: "sha1",
  [OID.sha224]: "sha224",
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};

export function hashName(oid: string): string | undefined {
  return HASH_BY_OID[oid];
}

export function digest(alg: string, data: Uint8Array): Buffer {
  return createHash(alg).update(data).digest();
}

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

interface SigScheme {
  readonly name: string;
  readonly hash: string | null;
  readonly kind: "rsa" | "ecdsa" | "eddsa";
}

const SIG_SCHEMES: Readonly<Record<string, SigScheme>> = {
  "1.2.840.113549.1.1.11": { name: "sha256WithRSAEncryption", hash: "sha256", kind: "rsa" },
  "1.2.840.113549.1.1.12": { name: "sha384WithRSAEncryption", hash: "sha384", kind: "rsa" },
  "1.2.840.113549.1.1.13": { name: "sha512WithRSAEncryption", hash: "sha512", kind: "rsa" },
  "1.2.840.113549.1.1.14": { name: "sha224WithRSAEncryption", hash: "sha224", kind: "rsa" },
  "1.2.840.10045.4.3.1": { name: "ecdsa-with-SHA224", hash: "sha224", kind: "ecdsa" },
  "1.2.840.10045.4.3.2": { name: "ecdsa-with-SHA256", hash: "sha256", kind: "ecdsa" },
  "1.2.840.10045.4.3.3": { name: "ecdsa-with-SHA384", hash: "sha384", kind: "ecdsa" },
  "1.2.840.10045.4.3.4": { name: "ecdsa-with-SHA512", hash: "sha512", kind: "ecdsa" },
  "1.3.101.112": { name: "Ed25519", hash: null, kind: "eddsa" },
  "1.3.101.113": { name: "Ed448", hash: null, kind: "eddsa" },
};

const WEAK_SCHEMES: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
  "1.2.840.10040.4.3": "dsa-with-sha1",
};

/**
 * Verifies `signature` over `data` with `key` under the AlgorithmIdentifier `sigAlgRaw`.
 * Returns false for a signature that does not verify; throws `SignatureError` for an algorithm
 * that is unsupported or not allowed (SHA-1, MD5), so the caller can say which.
 */
export function verifySigned(sigAlgRaw: Buffer, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  const parts = children(expectTag(parseDer(sigAlgRaw), TAG.SEQUENCE, "AlgorithmIdentifier"));
  const oid = readOid(parts[0] ?? fail("AlgorithmIdentifier: missing id"));
  const weak = WEAK_SCHEMES[oid];
  if (weak) throw new SignatureError(`signature algorithm ${weak} is not allowed`);
  if (oid === OID.rsassaPss) return verifyPss(parts[1], data, signature, key);
  const scheme = SIG_SCHEMES[oid];
  if (!scheme) throw new SignatureError(`signature algorithm ${oid} is not supported`);
  const keyType = key.asymmetricKeyType;
  const okKey =
    (scheme.kind === "rsa" && keyType === "rsa") ||
    (scheme.kind === "ecdsa" && keyType === "ec") ||
    (scheme.kind === "eddsa" && keyType === (scheme.name === "Ed25519" ? "ed25519" : "ed448"));
  if (!okKey) return false;
  try {
    return cryptoVerify(scheme.hash, data, key, signature);
  } catch {
    return false;
  }
}

function verifyPss(params: Tlv | undefined, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  // RSASSA-PSS-params: [0] hash DEFAULT sha1, [1] mgf DEFAULT mgf1SHA1, [2] saltLength DEFAULT 20, [3] trailer DEFAULT 1.
  let hashOid: string = OID.sha1;
  let mgfHashOid: string = OID.sha1;
  let saltLength = 20;
  if (params && params.tag === TAG.SEQUENCE) {
    for (const f of iterChildren(params)) {
      const inner = unwrapExplicit(f);
      if (f.tag === ctx(0)) hashOid = readOid(children(inner)[0] ?? fail("PSS hash"));
      else if (f.tag === ctx(1)) {
        const [mgf, mgfParams] = children(inner);
        if (!mgf || readOid(mgf) !== OID.mgf1 || !mgfParams) throw new SignatureError("RSASSA-PSS with an unsupported mask generation function");
        mgfHashOid = readOid(children(mgfParams)[0] ?? fail("MGF1 hash"));
      } else if (f.tag === ctx(2)) saltLength = readSmallInt(inner);
      else if (f.tag === ctx(3) && readSmallInt(inner) !== 1) throw new SignatureError("RSASSA-PSS with an unsupported trailer field");
    }
  }
  const hash = hashName(hashOid);
  if (!hash || hash === "sha1") throw new SignatureError(`RSASSA-PSS with hash ${hash ?? hashOid} is not allowed`);
  if (mgfHashOid !== hashOid) throw new SignatureError("RSASSA-PSS with an MGF1 hash differing from the message hash is not supported");
  if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "rsa-pss") return false;
  try {
    return cryptoVerify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
  } catch {
    return false;
  }
}

/** Stable identity of a public key, for cache keys. */
export function keyId(cert: CertInfo): string {
  return digest("sha256", cert.publicKeyBits).toString("hex");
}
