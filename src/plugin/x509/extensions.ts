/**
 * Extension values, decoded with @peculiar/asn1-x509's schemas after the DER framing check, into
 * the plain shapes path validation and revocation read.
 *
 * The same extension value recurs across every certificate a CA issues (its key usage, policies,
 * CRL distribution points, OCSP responder, authority key identifier): a decoded value is kept by
 * its bytes, so a batch of leaves from one CA decodes each of these once. Decoding errors are kept
 * too. Results are frozen: callers share them.
 */
import { AsnConvert, type OctetString } from "@peculiar/asn1-schema";
import {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CertificatePolicies,
  CRLDistributionPoints,
  CRLReason,
  ExtendedKeyUsage,
  InhibitAnyPolicy,
  IssuingDistributionPoint,
  KeyUsage,
  PolicyConstraints,
  PolicyMappings,
  SubjectKeyIdentifier,
  type DistributionPoint,
  type DistributionPointName,
  type GeneralName as AsnGeneralName,
} from "@peculiar/asn1-x509";
import { DerError, TAG, asBuffer, children, expectTag, parseStrict, readBigInt, readSmallUint, value, type Tlv } from "./der.ts";
import { ipToText } from "./ip.ts";
import { decodeGeneralName, decodeGeneralNames, decodeName, type DistinguishedName, type GeneralName } from "./name.ts";
import { KEY_USAGE_ALIASES, KEY_USAGE_NAMES, OID, type KeyUsageName } from "./oids.ts";

const CACHE_MAX = 8192;
const cache = new Map<string, { value: unknown } | { error: string }>();

/** Decodes `der` with `decode`, remembering the answer (or the error) for these bytes. Throws DerError. */
function cached<T>(kind: string, der: Uint8Array, decode: (der: Buffer) => T): T {
  const buf = asBuffer(der);
  const key = `${kind}\n${buf.toString("latin1")}`;
  let hit = cache.get(key);
  if (!hit) {
    try {
      hit = { value: Object.freeze(decode(buf)) };
    } catch (err) {
      hit = { error: err instanceof Error ? err.message : String(err) };
    }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(key, hit);
  }
  if ("error" in hit) throw new DerError(hit.error);
  return hit.value as T;
}

/** The schema decode of DER that already passed the framing check, as a DerError on failure. */
function schema<T>(der: Buffer, type: new () => T, what: string): T {
  parseStrict(der);
  try {
    return AsnConvert.parse(der, type);
  } catch (err) {
    throw new DerError(`${what}: ${(err as Error).message}`);
  }
}

const octets = (o: OctetString): Buffer => Buffer.from(o.buffer);

/** A small non-negative INTEGER held as octets (SkipCerts). */
function smallInt(b: ArrayBuffer, what: string): number {
  const v = Buffer.from(b);
  if (v.length === 0 || v.length > 4 || v[0]! & 0x80) throw new DerError(`${what}: not a small non-negative INTEGER`);
  return v.reduce((n, x) => n * 256 + x, 0);
}

// ---------------------------------------------------------------------------------------------

export interface BasicConstraintsInfo {
  readonly cA: boolean;
  readonly pathLen?: number;
}

export function basicConstraints(der: Uint8Array): BasicConstraintsInfo {
  return cached("bc", der, (buf) => {
    const bc = schema(buf, BasicConstraints, "basicConstraints");
    if (bc.pathLenConstraint !== undefined && (!Number.isInteger(bc.pathLenConstraint) || bc.pathLenConstraint < 0)) throw new DerError("basicConstraints: negative pathLenConstraint");
    return bc.pathLenConstraint === undefined ? { cA: bc.cA } : { cA: bc.cA, pathLen: Math.min(bc.pathLenConstraint, 0x7fffffff) };
  });
}

export function keyUsage(der: Uint8Array): readonly KeyUsageName[] {
  return cached("ku", der, (buf) => {
    const ku = schema(buf, KeyUsage, "keyUsage");
    const names = ku.toJSON().map((n) => (KEY_USAGE_ALIASES[n] ?? n) as KeyUsageName);
    // The schema's own order is bit order; keep it independent of the library's.
    return KEY_USAGE_NAMES.filter((n) => names.includes(n));
  });
}

export function extendedKeyUsage(der: Uint8Array): readonly string[] {
  return cached("eku", der, (buf) => {
    const eku = [...schema(buf, ExtendedKeyUsage, "extendedKeyUsage")];
    if (eku.length === 0) throw new DerError("extendedKeyUsage: empty");
    return eku;
  });
}

export function subjectKeyIdentifier(der: Uint8Array): string {
  return cached("ski", der, (buf) => octets(schema(buf, SubjectKeyIdentifier, "subjectKeyIdentifier")).toString("hex"));
}

export interface AuthorityKeyIdInfo {
  readonly keyId?: string;
  /** authorityCertIssuer / authorityCertSerialNumber present (forbidden on roots and by the Baseline Requirements). */
  readonly hasIssuerAndSerial: boolean;
}

export function authorityKeyIdentifier(der: Uint8Array): AuthorityKeyIdInfo {
  return cached("aki", der, (buf) => {
    const aki = schema(buf, AuthorityKeyIdentifier, "authorityKeyIdentifier");
    if ((aki.authorityCertIssuer === undefined) !== (aki.authorityCertSerialNumber === undefined)) {
      throw new DerError("authorityKeyIdentifier: authorityCertIssuer and authorityCertSerialNumber must appear together");
    }
    const hasIssuerAndSerial = aki.authorityCertIssuer !== undefined;
    return aki.keyIdentifier !== undefined ? { keyId: octets(aki.keyIdentifier).toString("hex"), hasIssuerAndSerial } : { hasIssuerAndSerial };
  });
}

// ---------------------------------------------------------------------------------------------
// Names

export interface SubjectAltNames {
  readonly dns: readonly string[];
  /** Text form (IPv6 compressed); `ipBytes` holds the same as bytes. */
  readonly ip: readonly string[];
  readonly ipBytes: readonly Buffer[];
  readonly email: readonly string[];
  readonly uri: readonly string[];
  readonly dn: readonly DistinguishedName[];
  /** otherName, x400Address, ediPartyName, registeredID. */
  readonly other: readonly GeneralName[];
  /** All, in order. */
  readonly all: readonly GeneralName[];
}

export const NO_SANS: SubjectAltNames = Object.freeze({ dns: [], ip: [], ipBytes: [], email: [], uri: [], dn: [], other: [], all: [] });

/** Not cached: every leaf has its own SANs, and the DER read is cheaper than a cache entry. */
export function subjectAltNames(der: Uint8Array): SubjectAltNames {
  return Object.freeze(decodeSans(asBuffer(der)));
}

function decodeSans(buf: Buffer): SubjectAltNames {
  {
    const all = decodeGeneralNames(buf, "subjectAltName");
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
}

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
  /**
   * Why the extension cannot be evaluated (an empty subtree list, minimum ≠ 0 or a maximum, an
   * iPAddress that is not an address and a contiguous mask): every path through it fails.
   */
  readonly invalid?: string;
}

function contiguous(mask: Buffer): boolean {
  let zero = false;
  for (const byte of mask) {
    for (let k = 7; k >= 0; k--) {
      const on = (byte >> k) & 1;
      if (on && zero) return false;
      if (!on) zero = true;
    }
  }
  return true;
}

function subtrees(t: Tlv, which: string, problems: string[]): Subtrees {
  const out = { dns: [] as string[], ip: [] as IpSubtree[], email: [] as string[], uri: [] as string[], dn: [] as DistinguishedName[], unsupported: [] as string[] };
  const list = children(t);
  if (list.length === 0) problems.push(`${which} is an empty list (RFC 5280: at least one subtree)`);
  for (const sub of list) {
    const [base, ...rest] = children(expectTag(sub, TAG.SEQUENCE, "GeneralSubtree"));
    if (!base) throw new DerError("empty GeneralSubtree");
    for (const r of rest) {
      if (r.tag === 0x80 && readSmallUint(r) === 0) continue;
      problems.push(`a subtree in ${which} sets minimum or maximum (RFC 5280: minimum 0, no maximum)`);
    }
    const g = decodeGeneralName(base);
    switch (g.type) {
      case "dns":
        out.dns.push(g.value);
        break;
      case "email":
        out.email.push(g.value);
        break;
      case "uri":
        out.uri.push(g.value);
        break;
      case "dn":
        out.dn.push(g.name);
        break;
      case "ip": {
        const n = g.bytes.length;
        if (n !== 8 && n !== 32) {
          problems.push(`an iPAddress subtree in ${which} has ${n} bytes (want 8 or 32)`);
          break;
        }
        const mask = g.bytes.subarray(n / 2);
        if (!contiguous(mask)) problems.push(`the iPAddress subtree ${ipToText(g.bytes.subarray(0, n / 2))}/${ipToText(mask)} in ${which} has a non-contiguous mask`);
        out.ip.push({ addr: g.bytes.subarray(0, n / 2), mask });
        break;
      }
      case "other":
        out.unsupported.push(g.kind);
        break;
    }
  }
  return out;
}

export function nameConstraints(der: Uint8Array): NameConstraintsInfo {
  return cached("nc", der, (buf) => {
    const problems: string[] = [];
    let permitted: Subtrees | undefined;
    let excluded: Subtrees | undefined;
    for (const c of children(expectTag(parseStrict(buf), TAG.SEQUENCE, "NameConstraints"))) {
      if (c.tag === 0xa0 && !permitted && !excluded) permitted = subtrees(c, "permittedSubtrees", problems);
      else if (c.tag === 0xa1 && !excluded) excluded = subtrees(c, "excludedSubtrees", problems);
      else throw new DerError("unexpected element in NameConstraints");
    }
    if (!permitted && !excluded) problems.push("it has neither permitted nor excluded subtrees");
    return { ...(permitted ? { permitted } : {}), ...(excluded ? { excluded } : {}), ...(problems.length ? { invalid: problems[0] } : {}) };
  });
}

// ---------------------------------------------------------------------------------------------
// Policies (RFC 5280 §4.2.1.4, .5, .11, .14)

export function certificatePolicies(der: Uint8Array): readonly string[] {
  return cached("cp", der, (buf) => {
    const oids = [...schema(buf, CertificatePolicies, "certificatePolicies")].map((p) => p.policyIdentifier);
    if (oids.length === 0) throw new DerError("certificatePolicies: empty");
    if (new Set(oids).size !== oids.length) throw new DerError("certificatePolicies: a policy appears more than once");
    return oids;
  });
}

export interface PolicyMapping {
  readonly issuerDomainPolicy: string;
  readonly subjectDomainPolicy: string;
}

export function policyMappings(der: Uint8Array): readonly PolicyMapping[] {
  return cached("pm", der, (buf) => {
    const m = [...schema(buf, PolicyMappings, "policyMappings")].map((x) => ({ issuerDomainPolicy: x.issuerDomainPolicy, subjectDomainPolicy: x.subjectDomainPolicy }));
    if (m.length === 0) throw new DerError("policyMappings: empty");
    return m;
  });
}

export interface PolicyConstraintsInfo {
  readonly requireExplicitPolicy?: number;
  readonly inhibitPolicyMapping?: number;
}

export function policyConstraints(der: Uint8Array): PolicyConstraintsInfo {
  return cached("pc", der, (buf) => {
    const pc = schema(buf, PolicyConstraints, "policyConstraints");
    // RFC 5280 §4.2.1.11: conforming CAs MUST NOT issue an empty policyConstraints.
    if (pc.requireExplicitPolicy === undefined && pc.inhibitPolicyMapping === undefined) throw new DerError("policyConstraints: empty");
    return {
      ...(pc.requireExplicitPolicy !== undefined ? { requireExplicitPolicy: smallInt(pc.requireExplicitPolicy, "requireExplicitPolicy") } : {}),
      ...(pc.inhibitPolicyMapping !== undefined ? { inhibitPolicyMapping: smallInt(pc.inhibitPolicyMapping, "inhibitPolicyMapping") } : {}),
    };
  });
}

export function inhibitAnyPolicy(der: Uint8Array): number {
  return cached("iap", der, (buf) => smallInt(schema(buf, InhibitAnyPolicy, "inhibitAnyPolicy").value, "inhibitAnyPolicy"));
}

// ---------------------------------------------------------------------------------------------
// Where revocation status is published

export interface AuthorityInfoAccessInfo {
  readonly ocsp: readonly string[];
  readonly caIssuers: readonly string[];
}

export function authorityInfoAccess(der: Uint8Array): AuthorityInfoAccessInfo {
  return cached("aia", der, (buf) => {
    const list = [...schema(buf, AuthorityInfoAccessSyntax, "authorityInfoAccess")];
    if (list.length === 0) throw new DerError("authorityInfoAccess: empty");
    const uris = (method: string) => list.filter((a) => a.accessMethod === method).flatMap((a) => (a.accessLocation.uniformResourceIdentifier !== undefined ? [a.accessLocation.uniformResourceIdentifier] : []));
    for (const a of list) {
      const u = a.accessLocation.uniformResourceIdentifier;
      if ((a.accessMethod === OID.adOcsp || a.accessMethod === OID.adCaIssuers) && u !== undefined && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(u)) {
        throw new DerError(`authorityInfoAccess: ${JSON.stringify(u)} is not a URI`);
      }
    }
    return { ocsp: uris(OID.adOcsp), caIssuers: uris(OID.adCaIssuers) };
  });
}

/** A distribution point name or cRLIssuer as the check compares them. */
export interface DistributionPointNames {
  /** URIs of fullName. */
  readonly uris: readonly string[];
  /** directoryNames of fullName. */
  readonly dns: readonly DistinguishedName[];
  /** Set when the name is nameRelativeToCRLIssuer, or fullName holds forms other than URIs and directoryNames. */
  readonly other: boolean;
}

export interface DistributionPointInfo {
  readonly name?: DistributionPointNames;
  /** Revocation reasons the point covers, when limited (a reason-partitioned CRL). */
  readonly reasons?: readonly string[];
  /** The indirect CRL's issuer, when not the certificate's issuer. */
  readonly crlIssuer?: readonly DistinguishedName[];
}

function asnName(n: AsnGeneralName): GeneralName | undefined {
  if (n.uniformResourceIdentifier !== undefined) return { type: "uri", value: n.uniformResourceIdentifier };
  if (n.directoryName !== undefined) return { type: "dn", name: decodeName(Buffer.from(AsnConvert.serialize(n.directoryName))) };
  return undefined;
}

function dpNames(dp: DistributionPointName): DistributionPointNames {
  if (dp.nameRelativeToCRLIssuer !== undefined || !dp.fullName) return { uris: [], dns: [], other: true };
  const names = dp.fullName.map(asnName);
  return {
    uris: names.flatMap((g) => (g?.type === "uri" ? [g.value] : [])),
    dns: names.flatMap((g) => (g?.type === "dn" ? [g.name] : [])),
    other: names.some((g) => g === undefined),
  };
}

function distributionPoint(dp: DistributionPoint): DistributionPointInfo {
  if (!dp.distributionPoint && !dp.cRLIssuer) throw new DerError("DistributionPoint: neither distributionPoint nor cRLIssuer");
  const crlIssuer = dp.cRLIssuer?.map(asnName).flatMap((g) => (g?.type === "dn" ? [g.name] : []));
  return {
    ...(dp.distributionPoint ? { name: dpNames(dp.distributionPoint) } : {}),
    ...(dp.reasons ? { reasons: dp.reasons.toJSON() } : {}),
    ...(crlIssuer && crlIssuer.length > 0 ? { crlIssuer } : {}),
  };
}

/** cRLDistributionPoints and freshestCRL (the same syntax). */
export function distributionPoints(der: Uint8Array, what = "cRLDistributionPoints"): readonly DistributionPointInfo[] {
  return cached(`dp:${what}`, der, (buf) => {
    const list = [...schema(buf, CRLDistributionPoints, what)];
    if (list.length === 0) throw new DerError(`${what}: empty`);
    return list.map(distributionPoint);
  });
}

export interface IssuingDistributionPointInfo {
  readonly name?: DistributionPointNames;
  readonly onlyUser: boolean;
  readonly onlyCA: boolean;
  readonly onlySomeReasons: boolean;
  readonly indirect: boolean;
  readonly onlyAttribute: boolean;
}

export function issuingDistributionPoint(der: Uint8Array): IssuingDistributionPointInfo {
  return cached("idp", der, (buf) => {
    const idp = schema(buf, IssuingDistributionPoint, "issuingDistributionPoint");
    return {
      ...(idp.distributionPoint ? { name: dpNames(idp.distributionPoint) } : {}),
      onlyUser: idp.onlyContainsUserCerts,
      onlyCA: idp.onlyContainsCACerts,
      onlySomeReasons: idp.onlySomeReasons !== undefined,
      indirect: idp.indirectCRL,
      onlyAttribute: idp.onlyContainsAttributeCerts,
    };
  });
}

export function crlReason(der: Uint8Array): number {
  return cached("reason", der, (buf) => schema(buf, CRLReason, "reasonCode").reason);
}

/** certificateIssuer entry extension: the names (directoryNames are what a certificate's issuer is). */
export function certificateIssuer(der: Uint8Array): readonly DistinguishedName[] {
  return cached("ci", der, (buf) => decodeGeneralNames(buf, "certificateIssuer").flatMap((g) => (g.type === "dn" ? [g.name] : [])));
}

/** cRLNumber and deltaCRLIndicator (BaseCRLNumber): a non-negative INTEGER of up to 20 octets. */
export function crlNumber(der: Uint8Array, what: string): bigint {
  const t = expectTag(parseStrict(der), TAG.INTEGER, what);
  if (value(t).length > 20) throw new DerError(`${what}: longer than 20 octets`);
  const n = readBigInt(t);
  if (n < 0n) throw new DerError(`${what}: negative`);
  return n;
}

/** id-pkix-ocsp-nocheck holds NULL. */
export function isNull(der: Uint8Array): boolean {
  const b = asBuffer(der);
  return b.length === 2 && b[0] === TAG.NULL && b[1] === 0;
}
