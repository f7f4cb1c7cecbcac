/**
 * The certificate model: one X.509 certificate, parsed once, shared by path building, name checks,
 * revocation, metrics, the Vault action and `vigil cert`.
 *
 * Construction checks the whole encoding is DER (der.ts), slices the fields the signature covers,
 * and decodes every extension the validator reads with @peculiar/asn1-x509's schemas
 * (extensions.ts, name.ts), so a malformed certificate throws `CertParseError` here and never half
 * way through validation. Signatures are checked with node:crypto over the signed bytes; the public
 * key becomes a KeyObject only when the certificate is used as an issuer.
 *
 * What is encoded correctly but breaks a rule (a time in the wrong form, an unreadable AIA or CRL
 * distribution point, a serial that is not positive) is recorded for the profile to judge, since
 * the RFC 5280 and strict profiles judge it differently.
 */
import { createPublicKey, hash, type KeyObject } from "node:crypto";
import { DerError, TAG, asBuffer, bitStringBytes, checkDer, children, expectTag, integerContent, parseDer, raw, readBoolean, readOid, readSmallUint, decodeTime, unwrapExplicit, value, type Tlv } from "./der.ts";
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  distributionPoints,
  extendedKeyUsage,
  inhibitAnyPolicy,
  isNull,
  keyUsage,
  nameConstraints,
  NO_SANS,
  policyConstraints,
  policyMappings,
  subjectAltNames,
  subjectKeyIdentifier,
  type AuthorityInfoAccessInfo,
  type AuthorityKeyIdInfo,
  type BasicConstraintsInfo,
  type DistributionPointInfo,
  type NameConstraintsInfo,
  type PolicyConstraintsInfo,
  type PolicyMapping,
  type SubjectAltNames,
} from "./extensions.ts";
import { decodeName, generalNameToText, namesMatch, type DistinguishedName } from "./name.ts";
import { CURVES, KEY_ALGORITHMS, OID, type KeyType, type KeyUsageName } from "./oids.ts";
import { CertParseError, MAX_ELEMENT_BYTES } from "./pem.ts";
import { describeSignatureAlgorithm, verifySignature, type SignatureAlgorithm } from "./signature.ts";

export { CertParseError } from "./pem.ts";

/** Largest certificate accepted (DER bytes). */
export const MAX_CERT_BYTES = MAX_ELEMENT_BYTES;

export interface KeyInfo {
  readonly type: KeyType | "unknown";
  readonly oid: string;
  /** RSA modulus bits. */
  readonly bits?: number;
  /** EC curve: P-256, P-384, P-521, P-192… or the curve OID; `explicit` for explicit parameters. */
  readonly curve?: string;
}

export interface ExtensionInfo {
  readonly oid: string;
  readonly critical: boolean;
  /** extnValue content (the DER the OCTET STRING wraps). */
  readonly value: Buffer;
}

/** One certificate of a validated path, for evidence and metrics. */
export interface CertSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly not_before: string;
  readonly not_after: string;
  readonly sans: readonly string[];
  readonly fingerprint_sha256: string;
}

function keyInfo(spki: Tlv): { key: KeyInfo; bits: Buffer } {
  const [alg, bits, extra] = children(expectTag(spki, TAG.SEQUENCE, "SubjectPublicKeyInfo"));
  if (!alg || !bits || extra) throw new DerError("bad SubjectPublicKeyInfo");
  const [algOid, params] = children(expectTag(alg, TAG.SEQUENCE, "AlgorithmIdentifier"));
  if (!algOid) throw new DerError("bad AlgorithmIdentifier");
  const oid = readOid(algOid);
  const type = KEY_ALGORITHMS[oid] ?? "unknown";
  const keyBits = bitStringBytes(bits);
  if (type === "rsa" || type === "rsa-pss") {
    const [n] = children(expectTag(parseDer(keyBits), TAG.SEQUENCE, "RSAPublicKey"));
    if (!n) throw new DerError("bad RSAPublicKey");
    const nv = integerContent(n, "RSA modulus").bytes;
    let i = 0;
    while (i < nv.length - 1 && nv[i] === 0) i++;
    return { key: { type, oid, bits: (nv.length - i - 1) * 8 + (32 - Math.clz32(nv[i]!)) }, bits: keyBits };
  }
  if (type === "ec") {
    if (!params) throw new DerError("EC key without parameters");
    const curve = params.tag === TAG.OID ? (CURVES[readOid(params)] ?? readOid(params)) : "explicit";
    return { key: { type, oid, curve }, bits: keyBits };
  }
  return { key: { type, oid }, bits: keyBits };
}

export class ParsedCertificate {
  readonly der: Buffer;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint: string;
  readonly version: number;
  /** Serial number, lower-case hex without leading zero octets ("00" for zero). */
  readonly serial: string;
  /** The serial INTEGER's content octets as encoded (the OCSP CertID carries them). */
  readonly serialBytes: Buffer;
  /** The serial is encoded in the fewest octets (DER). */
  readonly serialMinimal: boolean;
  /** The signed bytes (TBSCertificate). */
  readonly tbs: Buffer;
  readonly signatureAlgorithmDer: Buffer;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly signature: Buffer;
  readonly subject: DistinguishedName;
  readonly issuer: DistinguishedName;
  /** Validity bounds (ms, whole seconds); NaN when the time is not in a form RFC 5280 allows (see timeProblem). */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Why notBefore or notAfter is not a DER time of RFC 5280's forms. */
  readonly timeProblem: string | undefined;
  /** Which bounds are GeneralizedTime (RFC 5280 wants UTCTime up to 2049). */
  readonly generalizedTimes: { readonly notBefore: boolean; readonly notAfter: boolean };
  readonly key: KeyInfo;
  readonly spkiDer: Buffer;
  /** SHA-256 of the SubjectPublicKeyInfo DER, hex: same key ⇔ same value. */
  readonly spkiHash: string;
  /** subjectPublicKey without its unused-bits octet (the OCSP issuerKeyHash input). */
  readonly publicKeyBits: Buffer;
  readonly extensions: readonly ExtensionInfo[];
  readonly criticalExtensionOids: readonly string[];
  readonly basicConstraints: BasicConstraintsInfo | undefined;
  /** keyUsage bit names, or undefined when the extension is absent. */
  readonly keyUsage: readonly KeyUsageName[] | undefined;
  /** extendedKeyUsage OIDs, or undefined when the extension is absent. */
  readonly eku: readonly string[] | undefined;
  readonly sans: SubjectAltNames;
  readonly nameConstraints: NameConstraintsInfo | undefined;
  readonly subjectKeyId: string | undefined;
  readonly authorityKey: AuthorityKeyIdInfo | undefined;
  readonly policies: readonly string[] | undefined;
  readonly policyMappings: readonly PolicyMapping[] | undefined;
  readonly policyConstraints: PolicyConstraintsInfo | undefined;
  readonly inhibitAnyPolicy: number | undefined;
  readonly authorityInfoAccess: AuthorityInfoAccessInfo | undefined;
  readonly crlDistributionPoints: readonly DistributionPointInfo[] | undefined;
  readonly freshestCrl: readonly DistributionPointInfo[] | undefined;
  /** id-pkix-ocsp-nocheck: an OCSP responder certificate whose own status is not checked. */
  readonly ocspNoCheck: boolean;
  /** Extensions present but unreadable that validation may ignore (AIA, CRL distribution points, freshestCRL). */
  readonly extensionProblems: readonly { readonly oid: string; readonly message: string }[];
  #publicKey: KeyObject | undefined;
  #publicKeyError: string | undefined;
  #summary: CertSummary | undefined;
  /** Signature checks made against issuers, by the issuer's SPKI hash. */
  readonly #verified = new Map<string, boolean>();

  /** Parses `der` (one certificate, nothing after it). Throws CertParseError. */
  constructor(der: Uint8Array, fingerprint?: string) {
    if (der.length > MAX_CERT_BYTES) throw new CertParseError(`certificate of ${der.length} bytes exceeds ${MAX_CERT_BYTES}`);
    // A private copy: callers may reuse their buffers, and parsed certificates are cached.
    const buf = Buffer.from(asBuffer(der));
    this.der = buf;
    this.fingerprint = fingerprint ?? hash("sha256", buf, "hex");
    try {
      const top = parseDer(buf);
      checkDer(top);
      const parts = children(expectTag(top, TAG.SEQUENCE, "Certificate"));
      const [tbs, sigAlg, sig] = parts;
      if (!tbs || !sigAlg || !sig || parts.length !== 3) throw new DerError("Certificate must hold tbsCertificate, signatureAlgorithm, signature");
      this.signature = bitStringBytes(sig);
      const f = children(expectTag(tbs, TAG.SEQUENCE, "TBSCertificate"));
      let i = 0;
      let version = 1;
      if (f[0]?.tag === 0xa0) {
        const v = readSmallUint(expectTag(unwrapExplicit(f[0]), TAG.INTEGER, "version"));
        if (v > 2) throw new DerError(`unknown certificate version ${v + 1}`);
        version = v + 1;
        i = 1;
      }
      const [serial, innerSig, issuer, validity, subject, spki] = f.slice(i, i + 6);
      if (!serial || !innerSig || !issuer || !validity || !subject || !spki) throw new DerError("TBSCertificate is missing fields");
      if (!raw(innerSig).equals(raw(sigAlg))) throw new DerError("the signature algorithm inside TBSCertificate differs from the outer one");
      this.version = version;
      this.tbs = raw(tbs);
      this.signatureAlgorithmDer = raw(expectTag(sigAlg, TAG.SEQUENCE, "signatureAlgorithm"));
      this.signatureAlgorithm = describeSignatureAlgorithm(this.signatureAlgorithmDer);
      const serialInt = integerContent(serial, "serialNumber");
      this.serialBytes = serialInt.bytes;
      this.serialMinimal = serialInt.minimal;
      const sh = serialInt.bytes.toString("hex").replace(/^(00)+/, "");
      this.serial = sh === "" ? "00" : sh;
      this.issuer = decodeName(raw(expectTag(issuer, TAG.SEQUENCE, "issuer")), true);
      this.subject = decodeName(raw(expectTag(subject, TAG.SEQUENCE, "subject")), true);
      const [nb, na, extraTime] = children(expectTag(validity, TAG.SEQUENCE, "Validity"));
      if (!nb || !na || extraTime) throw new DerError("Validity must hold notBefore and notAfter");
      let timeProblem: string | undefined;
      const time = (t: Tlv, what: string): { ms: number; generalized: boolean } => {
        if (t.tag !== TAG.UTC_TIME && t.tag !== TAG.GENERALIZED_TIME) throw new DerError(`${what} is not a time`);
        try {
          return decodeTime(t, what);
        } catch (err) {
          timeProblem ??= (err as Error).message;
          return { ms: Number.NaN, generalized: t.tag === TAG.GENERALIZED_TIME };
        }
      };
      const before = time(nb, "notBefore");
      const after = time(na, "notAfter");
      this.notBefore = before.ms;
      this.notAfter = after.ms;
      this.timeProblem = timeProblem;
      this.generalizedTimes = { notBefore: before.generalized, notAfter: after.generalized };
      const k = keyInfo(spki);
      this.key = k.key;
      this.publicKeyBits = k.bits;
      this.spkiDer = raw(spki);
      this.spkiHash = hash("sha256", this.spkiDer, "hex");

      const exts: ExtensionInfo[] = [];
      for (const t of f.slice(i + 6)) {
        if (t.tag === 0x81 || t.tag === 0x82) {
          if (version < 2) throw new DerError("unique identifiers in a version 1 certificate");
          continue;
        }
        if (t.tag !== 0xa3 || exts.length > 0) throw new DerError(`unexpected element 0x${t.tag.toString(16)} in TBSCertificate`);
        if (version !== 3) throw new DerError("extensions in a certificate that is not version 3");
        for (const e of children(expectTag(unwrapExplicit(t), TAG.SEQUENCE, "Extensions"))) {
          const p = children(expectTag(e, TAG.SEQUENCE, "Extension"));
          const oid = readOid(p[0] ?? fail("empty Extension"));
          let critical = false;
          let n = 1;
          if (p[n]?.tag === TAG.BOOLEAN) critical = readBoolean(p[n++]!);
          const ev = p[n];
          if (!ev || n + 1 !== p.length) throw new DerError(`bad Extension ${oid}`);
          if (exts.some((x) => x.oid === oid)) throw new DerError(`extension ${oid} appears twice`);
          exts.push({ oid, critical, value: value(expectTag(ev, TAG.OCTET_STRING, "extnValue")) });
        }
      }
      this.extensions = exts;
      this.criticalExtensionOids = exts.filter((e) => e.critical).map((e) => e.oid);
      const ext = (oid: string) => exts.find((e) => e.oid === oid)?.value;
      const decode = <T>(oid: string, fn: (v: Buffer) => T): T | undefined => {
        const v = ext(oid);
        return v === undefined ? undefined : fn(v);
      };
      this.basicConstraints = decode(OID.basicConstraints, basicConstraints);
      this.keyUsage = decode(OID.keyUsage, keyUsage);
      this.eku = decode(OID.extKeyUsage, extendedKeyUsage);
      this.sans = decode(OID.subjectAltName, subjectAltNames) ?? NO_SANS;
      this.nameConstraints = decode(OID.nameConstraints, nameConstraints);
      this.subjectKeyId = decode(OID.subjectKeyIdentifier, subjectKeyIdentifier);
      this.authorityKey = decode(OID.authorityKeyIdentifier, authorityKeyIdentifier);
      this.policies = decode(OID.certificatePolicies, certificatePolicies);
      this.policyMappings = decode(OID.policyMappings, policyMappings);
      this.policyConstraints = decode(OID.policyConstraints, policyConstraints);
      this.inhibitAnyPolicy = decode(OID.inhibitAnyPolicy, inhibitAnyPolicy);
      const nocheck = ext(OID.ocspNoCheck);
      if (nocheck !== undefined && !isNull(nocheck)) throw new DerError("id-pkix-ocsp-nocheck must hold NULL");
      this.ocspNoCheck = nocheck !== undefined;

      // Pointers to revocation data: unreadable ones are recorded, not fatal (see the class comment).
      const problems: { oid: string; message: string }[] = [];
      const soft = <T>(oid: string, fn: (v: Buffer) => T): T | undefined => {
        try {
          return decode(oid, fn);
        } catch (err) {
          if (!(err instanceof DerError)) throw err;
          problems.push({ oid, message: err.message });
          return undefined;
        }
      };
      this.authorityInfoAccess = soft(OID.authorityInfoAccess, authorityInfoAccess);
      this.crlDistributionPoints = soft(OID.crlDistributionPoints, (v) => distributionPoints(v));
      this.freshestCrl = soft(OID.freshestCrl, (v) => distributionPoints(v, "freshestCRL"));
      this.extensionProblems = problems;
    } catch (err) {
      if (err instanceof DerError) throw new CertParseError(`malformed certificate: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** Subject and issuer names match (RFC 5280 self-issued; not necessarily self-signed). */
  get selfIssued(): boolean {
    return namesMatch(this.subject, this.issuer);
  }

  get isCA(): boolean {
    return this.basicConstraints?.cA === true;
  }

  get pathLen(): number | undefined {
    return this.basicConstraints?.pathLen;
  }

  get authorityKeyId(): string | undefined {
    return this.authorityKey?.keyId;
  }

  /** The key as a KeyObject; throws CertParseError when node cannot load it (an unsupported algorithm). */
  get publicKey(): KeyObject {
    if (this.#publicKey) return this.#publicKey;
    if (this.#publicKeyError === undefined) {
      try {
        this.#publicKey = createPublicKey({ key: this.spkiDer, format: "der", type: "spki" });
        return this.#publicKey;
      } catch (err) {
        this.#publicKeyError = (err as Error).message;
      }
    }
    throw new CertParseError(`the public key cannot be loaded: ${this.#publicKeyError}`);
  }

  /**
   * Does `issuer`'s key verify this certificate's signature? Remembered per issuer key. Weak
   * algorithms are verified too: the key policy names them.
   */
  isSignedBy(issuer: ParsedCertificate): boolean {
    let ok = this.#verified.get(issuer.spkiHash);
    if (ok === undefined) {
      try {
        ok = verifySignature(this.signatureAlgorithmDer, this.tbs, this.signature, issuer.publicKey, { allowWeak: true });
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

  /** The CertSummary of evidence and metrics. */
  get summary(): CertSummary {
    const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : "");
    return (this.#summary ??= Object.freeze({
      subject: this.subject.text,
      issuer: this.issuer.text,
      serial: this.serial,
      not_before: iso(this.notBefore),
      not_after: iso(this.notAfter),
      sans: Object.freeze(this.sanStrings),
      fingerprint_sha256: this.fingerprint,
    }));
  }
}

function fail(message: string): never {
  throw new DerError(message);
}

// ---------------------------------------------------------------------------------------------
// Parse cache: anchors and intermediates recur across validations (the same CA certificates for
// thousands of leaves), so they are parsed once and keep their public key and the signature checks
// already made. Keyed by the SHA-256 of the DER; bounded (least recently used goes first).

const CACHE_MAX = 2048;
const cache = new Map<string, ParsedCertificate>();
/** The same buffer handed in again (a batch's shared intermediates) is found without hashing it. */
const byBuffer = new WeakMap<Uint8Array, ParsedCertificate>();

/** A ParsedCertificate for `der`, shared with earlier calls for the same bytes. Throws CertParseError. */
export function parseCached(der: Uint8Array): ParsedCertificate {
  const same = byBuffer.get(der);
  // The parsed copy is private; the caller's buffer may have been changed since.
  if (same && same.der.equals(der)) return same;
  const cert = parseByHash(der);
  byBuffer.set(der, cert);
  return cert;
}

function parseByHash(der: Uint8Array): ParsedCertificate {
  const fp = hash("sha256", der, "hex");
  const hit = cache.get(fp);
  if (hit) {
    cache.delete(fp);
    cache.set(fp, hit);
    return hit;
  }
  const cert = new ParsedCertificate(der, fp);
  cache.set(fp, cert);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return cert;
}
