/**
 * The strict profile: what RFC 5280 asks of conforming CAs and the CA/B Forum Baseline
 * Requirements ask of publicly trusted certificates, held against every certificate of a path
 * (the trust anchor where a rule names it). The `rfc5280` profile skips these and keeps to path
 * validation as RFC 5280 §6 describes it for relying parties.
 *
 * Each function returns the first problem as a Failure (reason code and message) or undefined.
 */
import type { ParsedCertificate } from "../../../plugin/x509/certificate.ts";
import { ipToText } from "../../../plugin/x509/ip.ts";
import { attributeValues } from "../../../plugin/x509/name.ts";
import { KNOWN_EXTENSIONS, OID } from "../../../plugin/x509/oids.ts";
import { CERT_REASONS, type CertReason, type KeyPolicy } from "../types.ts";
import { dnsSyntaxProblem } from "./dns.ts";

export interface Failure {
  readonly code: CertReason;
  readonly reason: string;
}

export type Profile = "strict" | "rfc5280";

export const fail = (code: CertReason, reason: string): Failure => ({ code, reason });

export const q = (c: ParsedCertificate): string => JSON.stringify(c.subject.text || "(empty subject)");

/** OpenSSL / SEC names of the NIST curves, accepted in allowed_curves. */
const CURVE_ALIASES: Readonly<Record<string, string>> = { prime192v1: "P-192", secp192r1: "P-192", secp224r1: "P-224", prime256v1: "P-256", secp256r1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

/** Why key `k` of `c` fails policy `p`, or undefined. The strict profile also wants RSA moduli in whole octets. */
export function keyPolicyProblem(c: Pick<ParsedCertificate, "key">, p: KeyPolicy, profile: Profile = "rfc5280"): string | undefined {
  const k = c.key;
  switch (k.type) {
    case "rsa":
    case "rsa-pss":
      if ((k.bits ?? 0) < p.min_rsa_bits) return `an RSA-${k.bits} key (minimum ${p.min_rsa_bits} bits)`;
      if (profile === "strict" && (k.bits ?? 0) % 8 !== 0) return `an RSA-${k.bits} key (the modulus must be a whole number of octets)`;
      return undefined;
    case "ec":
      return k.curve && p.allowed_curves.some((c) => (CURVE_ALIASES[c] ?? c) === k.curve) ? undefined : `an EC key on ${k.curve} (allowed: ${p.allowed_curves.join(", ") || "none"})`;
    case "ed25519":
      return p.allow_ed25519 ? undefined : "an Ed25519 key (not allowed)";
    case "ed448":
      return p.allowed_curves.includes("Ed448") ? undefined : "an Ed448 key (not allowed)";
    default:
      return `a ${k.type === "unknown" ? `key of algorithm ${k.oid}` : `${k.type.toUpperCase()} key`} (not allowed)`;
  }
}

export function unknownCritical(c: ParsedCertificate, role: string): Failure | undefined {
  const unknown = c.criticalExtensionOids.filter((o) => !KNOWN_EXTENSIONS.has(o));
  if (unknown.length === 0) return undefined;
  return fail(CERT_REASONS.CERT_UNKNOWN_CRITICAL_EXTENSION, `${role} ${q(c)} has critical extension${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} this validator does not understand`);
}

/** Times: a form RFC 5280 does not allow fails in both profiles; the strict profile adds UTCTime through 2049 and an ordered window. */
export function timeProblem(c: ParsedCertificate, role: string, profile: Profile): Failure | undefined {
  if (c.timeProblem) return fail(CERT_REASONS.CERT_BAD_TIME, `${role} ${q(c)}: ${c.timeProblem}`);
  if (profile !== "strict") return undefined;
  for (const [which, ms, generalized] of [["notBefore", c.notBefore, c.generalizedTimes.notBefore], ["notAfter", c.notAfter, c.generalizedTimes.notAfter]] as const) {
    const year = new Date(ms).getUTCFullYear();
    if (generalized && year < 2050) return fail(CERT_REASONS.CERT_BAD_TIME, `${role} ${q(c)} encodes ${which} ${new Date(ms).toISOString()} as GeneralizedTime (RFC 5280: UTCTime through 2049)`);
  }
  if (c.notBefore > c.notAfter) return fail(CERT_REASONS.CERT_BAD_TIME, `${role} ${q(c)} has notBefore after notAfter`);
  return undefined;
}

/** RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets, in DER. */
export function serialProblem(c: ParsedCertificate, role: string): Failure | undefined {
  const b = c.serialBytes;
  const why =
    b[0]! & 0x80
      ? "is negative"
      : c.serial === "00"
        ? "is zero"
        : b.length > 20
          ? `is ${b.length} octets long (at most 20)`
          : !c.serialMinimal
            ? "is not in its shortest DER encoding"
            : undefined;
  return why ? fail(CERT_REASONS.CERT_BAD_SERIAL, `${role} ${q(c)}: the serial number ${why}`) : undefined;
}

const isCritical = (c: ParsedCertificate, oid: string) => c.extensions.some((e) => e.oid === oid && e.critical);
const has = (c: ParsedCertificate, oid: string) => c.extensions.some((e) => e.oid === oid);

/** Extension rules every certificate of a path meets under the strict profile (issuers and leaf alike). */
function commonExtensionProblem(c: ParsedCertificate, role: string): Failure | undefined {
  const bad = (why: string) => fail(CERT_REASONS.CERT_BAD_EXTENSION, `${role} ${q(c)} ${why}`);
  const problem = c.extensionProblems[0];
  if (problem) return bad(`has an unreadable ${problem.oid === OID.authorityInfoAccess ? "authorityInfoAccess" : problem.oid === OID.crlDistributionPoints ? "cRLDistributionPoints" : "freshestCRL"} extension (${problem.message})`);
  if (isCritical(c, OID.authorityInfoAccess)) return bad("marks authorityInfoAccess critical (RFC 5280: never critical)");
  if (isCritical(c, OID.crlDistributionPoints)) return bad("marks cRLDistributionPoints critical");
  if (isCritical(c, OID.subjectKeyIdentifier)) return bad("marks subjectKeyIdentifier critical");
  if (isCritical(c, OID.authorityKeyIdentifier)) return bad("marks authorityKeyIdentifier critical");
  if (c.basicConstraints && !c.isCA && c.pathLen !== undefined) return bad("sets pathLenConstraint without cA");
  const subjectEmpty = c.subject.rdns.length === 0;
  if (has(c, OID.subjectAltName) && isCritical(c, OID.subjectAltName) !== subjectEmpty) {
    return bad(subjectEmpty ? "has an empty subject and a non-critical subjectAltName (RFC 5280: critical then)" : "marks subjectAltName critical while its subject is not empty");
  }
  if (subjectEmpty && !has(c, OID.subjectAltName)) return fail(CERT_REASONS.CERT_BAD_NAME, `${role} has an empty subject and no subjectAltName`);
  if (c.issuer.rdns.length === 0) return fail(CERT_REASONS.CERT_BAD_NAME, `${role} ${q(c)} has an empty issuer name`);
  return undefined;
}

/** The names a certificate carries must be well formed: DNS names, email domains, absolute URIs. */
export function sanSyntaxProblem(c: ParsedCertificate, role: string): Failure | undefined {
  const bad = (why: string) => fail(CERT_REASONS.CERT_BAD_NAME, `${role} ${q(c)} ${why}`);
  for (const d of c.sans.dns) {
    const why = dnsSyntaxProblem(d, { wildcard: true });
    if (why) return bad(`has DNS subjectAltName ${JSON.stringify(d)} that ${why}`);
  }
  for (const e of c.sans.email) {
    const at = e.lastIndexOf("@");
    const why = at <= 0 ? "has no local part and domain" : dnsSyntaxProblem(e.slice(at + 1));
    if (why) return bad(`has email subjectAltName ${JSON.stringify(e)} whose domain ${why}`);
  }
  for (const u of c.sans.uri) if (!/^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(u)) return bad(`has URI subjectAltName ${JSON.stringify(u)} that is not an absolute URI`);
  return undefined;
}

/**
 * CA/B Forum BR 7.1.4.3: a subject commonName, when present, is a character-for-character copy of
 * one subjectAltName entry (IP addresses in the text form the SAN's octets print as: dotted
 * decimal, RFC 5952 IPv6).
 */
export function commonNameProblem(c: ParsedCertificate, role: string): Failure | undefined {
  const cns = attributeValues(c.subject, OID.commonName);
  if (cns.length === 0) return undefined;
  const entries = new Set<string>([...c.sans.dns, ...c.sans.ipBytes.map(ipToText), ...c.sans.email, ...c.sans.uri]);
  for (const cn of cns) {
    if (!entries.has(cn)) {
      return fail(CERT_REASONS.CERT_BAD_NAME, `${role} ${q(c)} has commonName ${JSON.stringify(cn)}, which is not a copy of any subjectAltName (${entries.size ? [...entries].map((e) => JSON.stringify(e)).join(", ") : "none"})`);
    }
  }
  return undefined;
}

/** Strict rules on the leaf (end entity). */
export function leafProfileProblem(c: ParsedCertificate, selfSigned: boolean): Failure | undefined {
  const role = "the certificate";
  const bad = (why: string) => fail(CERT_REASONS.CERT_BAD_EXTENSION, `${role} ${q(c)} ${why}`);
  const s = serialProblem(c, role);
  if (s) return s;
  const e = commonExtensionProblem(c, role);
  if (e) return e;
  if (c.isCA) return bad("is a CA certificate (basicConstraints cA) used as an end entity");
  if (c.keyUsage?.includes("keyCertSign")) return bad("is an end entity with keyUsage keyCertSign");
  if (c.nameConstraints) return bad("is an end entity with nameConstraints");
  if (isCritical(c, OID.extKeyUsage)) return bad("marks extendedKeyUsage critical");
  if (!selfSigned) {
    const a = akiProblem(c, role);
    if (a) return a;
  }
  return sanSyntaxProblem(c, role) ?? commonNameProblem(c, role);
}

function akiProblem(c: ParsedCertificate, role: string): Failure | undefined {
  const aki = c.authorityKey;
  if (!aki) return fail(CERT_REASONS.CERT_BAD_EXTENSION, `${role} ${q(c)} has no authorityKeyIdentifier`);
  if (aki.keyId === undefined) return fail(CERT_REASONS.CERT_BAD_EXTENSION, `${role} ${q(c)} has an authorityKeyIdentifier without keyIdentifier`);
  if (aki.hasIssuerAndSerial) return fail(CERT_REASONS.CERT_BAD_EXTENSION, `${role} ${q(c)} has an authorityKeyIdentifier with authorityCertIssuer and serial (Baseline Requirements: keyIdentifier only)`);
  return undefined;
}

/** Strict rules on an intermediate CA certificate. */
export function intermediateProfileProblem(c: ParsedCertificate): Failure | undefined {
  const role = "intermediate";
  const bad = (why: string) => fail(CERT_REASONS.CERT_BAD_EXTENSION, `${role} ${q(c)} ${why}`);
  const s = serialProblem(c, role);
  if (s) return s;
  const e = commonExtensionProblem(c, role);
  if (e) return e;
  if (c.subject.rdns.length === 0) return fail(CERT_REASONS.CERT_BAD_NAME, `${role} has an empty subject`);
  if (c.basicConstraints && !isCritical(c, OID.basicConstraints)) return bad("has a non-critical basicConstraints (RFC 5280: critical on CA certificates)");
  if (!c.subjectKeyId) return bad("has no subjectKeyIdentifier (RFC 5280: required on CA certificates)");
  if (!c.keyUsage) return bad("has no keyUsage (RFC 5280: required on CA certificates)");
  const a = akiProblem(c, role);
  if (a) return a;
  return sanSyntaxProblem(c, role);
}

/** Strict rules on the trust anchor a path ends at. */
export function anchorProfileProblem(c: ParsedCertificate, policy: KeyPolicy): Failure | undefined {
  const role = "trust anchor";
  const bad = (why: string) => fail(CERT_REASONS.CERT_BAD_TRUST_ANCHOR, `${role} ${q(c)} ${why}`);
  const t = timeProblem(c, role, "strict");
  if (t) return t;
  const s = serialProblem(c, role);
  if (s) return s;
  if (!c.basicConstraints || !c.isCA) return bad(`is not a CA (basicConstraints ${c.basicConstraints ? "cA false" : "absent"})`);
  if (!isCritical(c, OID.basicConstraints)) return bad("has a non-critical basicConstraints");
  if (!c.subjectKeyId) return bad("has no subjectKeyIdentifier");
  if (!c.keyUsage || !c.keyUsage.includes("keyCertSign")) return bad(c.keyUsage ? `has keyUsage ${c.keyUsage.join(", ") || "(none)"} without keyCertSign` : "has no keyUsage");
  const k = keyPolicyProblem(c, policy, "strict");
  if (k) return bad(`has ${k}`);
  if (c.key.type === "ec" && c.key.curve === "P-192") return bad("has a P-192 key");
  const u = unknownCritical(c, role);
  if (u) return u;
  if (c.eku) return bad("carries extendedKeyUsage (the strict profile keeps purposes off trust anchors)");
  if (c.selfIssued && c.authorityKey) {
    if (c.authorityKey.hasIssuerAndSerial) return bad("has an authorityKeyIdentifier with authorityCertIssuer and serial (a root's may hold its keyIdentifier only)");
    if (c.authorityKey.keyId !== undefined && c.authorityKey.keyId !== c.subjectKeyId) return bad("has an authorityKeyIdentifier that differs from its own subjectKeyIdentifier");
  }
  const e = commonExtensionProblem(c, role);
  if (e) return e.code === CERT_REASONS.CERT_BAD_EXTENSION ? fail(CERT_REASONS.CERT_BAD_TRUST_ANCHOR, e.reason) : e;
  return undefined;
}
