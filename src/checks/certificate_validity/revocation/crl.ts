/**
 * CRL revocation checking (RFC 5280 §5, §6.3): local CRLs first, then the certificate's http(s)
 * distribution points. A CRL is used only when its issuer name equals the certificate's issuer,
 * its signature verifies with the issuer's key (which must allow cRLSign), its scope covers the
 * certificate (no delta, indirect or reason-partitioned CRLs; a distribution point named in the
 * CRL must be one of the certificate's) and it is fresh (thisUpdate not ahead of the clock beyond
 * skew, nextUpdate not passed). Verified CRLs are cached per URL and issuer key until nextUpdate.
 */
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { ExpiringLru } from "./cache.ts";
import {
  CACHE_MAX_ENTRIES,
  CLOCK_SKEW_MS,
  CRL_CACHE_MAX_BYTES,
  crlReasonName,
  DEFAULT_CACHE_TTL_MS,
  describeError,
  isDefinitive,
  isHttpUrl,
  fetchUntrusted,
  iso,
  pemOrDer,
  shownUrl,
  unknown,
  type RevocationDeps,
} from "./common.ts";
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
  readSmallInt,
  readTime,
  TAG,
  unwrapExplicit,
  value,
  type Tlv,
} from "../der.ts";
import { crlUrls, distributionPointNameUris, KEY_USAGE, keyId, keyUsageAllows, namesEqual, parseCert, readExtension, verifySigned, type CertInfo } from "./x509.ts";

const CRL_EXT = {
  authorityKeyIdentifier: "2.5.29.35",
  cRLNumber: "2.5.29.20",
  issuingDistributionPoint: "2.5.29.28",
  deltaCRLIndicator: "2.5.29.27",
  freshestCRL: "2.5.29.46",
  issuerAltName: "2.5.29.18",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
} as const;
const KNOWN_CRL_EXTS = new Set<string>(Object.values(CRL_EXT));
const ENTRY_EXT = { reasonCode: "2.5.29.21", invalidityDate: "2.5.29.24" } as const;
const KNOWN_ENTRY_EXTS = new Set<string>(Object.values(ENTRY_EXT));
const REMOVE_FROM_CRL = 8;

export interface IssuingDistributionPoint {
  /** fullName URIs; empty when absent. */
  readonly uris: readonly string[];
  /** A distributionPoint in a form other than fullName URIs (nameRelativeToCRLIssuer, non-URI names only). */
  readonly otherName: boolean;
  readonly onlyUser: boolean;
  readonly onlyCA: boolean;
  readonly onlySomeReasons: boolean;
  readonly indirect: boolean;
  readonly onlyAttribute: boolean;
}

export interface CrlEntry {
  readonly revokedAt: number;
  readonly reasonCode?: number;
}

/** A CRL as parsed, before anything about it is trusted. */
export interface ParsedCrl {
  readonly issuerRaw: Buffer;
  readonly thisUpdate: number;
  readonly nextUpdate?: number;
  readonly delta: boolean;
  readonly idp?: IssuingDistributionPoint;
  /** The first critical extension (CRL or entry) this checker does not understand. */
  readonly unsupportedCritical?: string;
  readonly tbsRaw: Buffer;
  readonly sigAlgRaw: Buffer;
  readonly signature: Buffer;
  readonly size: number;
  readonly revokedList?: Tlv;
}

/** What is kept of a CRL whose signature verified: no raw bytes. */
export interface CrlFacts {
  readonly issuerRaw: Buffer;
  readonly thisUpdate: number;
  readonly nextUpdate?: number;
  readonly delta: boolean;
  readonly idp?: IssuingDistributionPoint;
  readonly unsupportedCritical?: string;
  readonly revoked: ReadonlyMap<string, CrlEntry>;
  readonly size: number;
}

/** Parses a CRL (DER or PEM) down to its entries list, which stays unparsed until `readEntries`. */
export function parseCrl(data: Uint8Array): ParsedCrl {
  const der = pemOrDer(data, ["X509 CRL"]);
  const list = expectTag(parseDer(der), TAG.SEQUENCE, "CertificateList");
  const [tbs, sigAlg, sig, extra] = children(list);
  if (!tbs || !sigAlg || !sig || extra) throw new DerError("CertificateList: expected tbsCertList, signatureAlgorithm, signature");
  const f = children(expectTag(tbs, TAG.SEQUENCE, "TBSCertList"));
  let i = 0;
  if (f[i]?.tag === TAG.INTEGER) {
    const version = readSmallInt(f[i++]!);
    if (version !== 1) throw new DerError(`unsupported CRL version ${version + 1}`);
  }
  const innerAlg = f[i++];
  const issuer = f[i++];
  const thisUpdate = f[i++];
  if (!innerAlg || !issuer || !thisUpdate || !isTime(thisUpdate)) throw new DerError("TBSCertList: missing fields");
  if (!raw(innerAlg).equals(raw(expectTag(sigAlg, TAG.SEQUENCE, "signatureAlgorithm")))) {
    throw new DerError("TBSCertList signature algorithm differs from the outer one");
  }
  let nextUpdate: number | undefined;
  if (f[i] && isTime(f[i]!)) nextUpdate = readTime(f[i++]!);
  let revokedList: Tlv | undefined;
  if (f[i]?.tag === TAG.SEQUENCE) revokedList = f[i++];
  let delta = false;
  let idp: IssuingDistributionPoint | undefined;
  let unsupportedCritical: string | undefined;
  if (f[i]?.tag === ctx(0)) {
    const seen = new Set<string>();
    for (const ext of iterChildren(expectTag(unwrapExplicit(f[i++]!), TAG.SEQUENCE, "crlExtensions"))) {
      const e = readExtension(ext);
      if (seen.has(e.oid)) throw new DerError(`duplicate CRL extension ${e.oid}`);
      seen.add(e.oid);
      if (e.oid === CRL_EXT.deltaCRLIndicator) delta = true;
      else if (e.oid === CRL_EXT.issuingDistributionPoint) idp = parseIdp(e.value);
      else if (e.critical && !KNOWN_CRL_EXTS.has(e.oid)) unsupportedCritical ??= e.oid;
    }
  }
  if (i !== f.length) throw new DerError("TBSCertList: unexpected trailing fields");
  return {
    issuerRaw: raw(expectTag(issuer, TAG.SEQUENCE, "issuer Name")),
    thisUpdate: readTime(thisUpdate),
    nextUpdate,
    delta,
    idp,
    unsupportedCritical,
    tbsRaw: raw(tbs),
    sigAlgRaw: raw(sigAlg),
    signature: bitStringBytes(sig),
    size: der.length,
    revokedList,
  };
}

function parseIdp(der: Buffer): IssuingDistributionPoint {
  let uris: string[] = [];
  let otherName = false;
  const flags = { onlyUser: false, onlyCA: false, onlySomeReasons: false, indirect: false, onlyAttribute: false };
  const bool = (t: Tlv): boolean => readBoolean({ ...t, tag: TAG.BOOLEAN });
  for (const f of iterChildren(expectTag(parseDer(der), TAG.SEQUENCE, "IssuingDistributionPoint"))) {
    if (f.tag === ctx(0)) {
      uris = distributionPointNameUris(f);
      if (uris.length === 0) otherName = true;
    } else if (f.tag === ctx(1, false)) flags.onlyUser = bool(f);
    else if (f.tag === ctx(2, false)) flags.onlyCA = bool(f);
    else if (f.tag === ctx(3, false)) flags.onlySomeReasons = true;
    else if (f.tag === ctx(4, false)) flags.indirect = bool(f);
    else if (f.tag === ctx(5, false)) flags.onlyAttribute = bool(f);
    else throw new DerError("IssuingDistributionPoint: unexpected field");
  }
  return { uris, otherName, ...flags };
}

/** Parses the revoked-certificates list into serial → entry. */
export function readEntries(crl: ParsedCrl): { revoked: Map<string, CrlEntry>; unsupportedCritical?: string } {
  const revoked = new Map<string, CrlEntry>();
  let unsupportedCritical: string | undefined;
  if (!crl.revokedList) return { revoked };
  for (const entry of iterChildren(crl.revokedList)) {
    const [serial, date, exts, extra] = children(expectTag(entry, TAG.SEQUENCE, "revokedCertificate"));
    if (!serial || !date || extra) throw new DerError("revokedCertificate: bad fields");
    let reasonCode: number | undefined;
    if (exts) {
      for (const ext of iterChildren(expectTag(exts, TAG.SEQUENCE, "crlEntryExtensions"))) {
        const e = readExtension(ext);
        if (e.oid === ENTRY_EXT.reasonCode) reasonCode = readSmallInt(expectTag(parseDer(e.value), TAG.ENUMERATED, "CRLReason"));
        else if (e.critical && !KNOWN_ENTRY_EXTS.has(e.oid)) unsupportedCritical ??= e.oid; // e.g. certificateIssuer
      }
    }
    const key = integerHex(serial);
    if (!revoked.has(key)) revoked.set(key, { revokedAt: readTime(date), reasonCode });
  }
  return { revoked, unsupportedCritical };
}

/**
 * Checks `crl` was issued by `issuer`: names, key usage and signature. On success returns the facts
 * to keep (entries parsed); otherwise a reason.
 */
export function verifyCrl(crl: ParsedCrl, leaf: CertInfo, issuer: CertInfo): { facts: CrlFacts } | { problem: string } {
  if (!namesEqual(crl.issuerRaw, leaf.issuerRaw)) return { problem: `CRL issuer does not match the certificate's issuer (${oneLine(leaf.node.issuer)})` };
  if (!keyUsageAllows(issuer, KEY_USAGE.cRLSign)) return { problem: "the issuer's keyUsage does not allow CRL signing" };
  let ok: boolean;
  try {
    ok = verifySigned(crl.sigAlgRaw, crl.tbsRaw, crl.signature, issuer.publicKey);
  } catch (err) {
    return { problem: `CRL signature: ${describeError(err)}` };
  }
  if (!ok) return { problem: "CRL signature does not verify with the issuer's key" };
  const { revoked, unsupportedCritical } = readEntries(crl);
  return {
    facts: {
      issuerRaw: Buffer.from(crl.issuerRaw),
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate,
      delta: crl.delta,
      idp: crl.idp,
      unsupportedCritical: crl.unsupportedCritical ?? unsupportedCritical,
      revoked,
      size: crl.size,
    },
  };
}

/** Why a verified CRL cannot answer for `leaf`, or undefined when it can. */
export function scopeProblem(facts: CrlFacts, leaf: CertInfo): string | undefined {
  if (!namesEqual(facts.issuerRaw, leaf.issuerRaw)) return "CRL issuer does not match the certificate's issuer";
  if (facts.unsupportedCritical) return `CRL has an unsupported critical extension ${facts.unsupportedCritical}`;
  if (facts.delta) return "delta CRLs are not supported";
  const idp = facts.idp;
  if (!idp) return undefined;
  if (idp.indirect) return "indirect CRLs are not supported";
  if (idp.onlyAttribute) return "CRL covers attribute certificates only";
  if (idp.onlySomeReasons) return "CRL covers only some revocation reasons (reason-partitioned CRLs are not supported)";
  if (idp.onlyCA && !leaf.isCA) return "CRL covers CA certificates only";
  if (idp.onlyUser && leaf.isCA) return "CRL covers end-entity certificates only";
  if (idp.otherName) return "CRL names its distribution point in a form that cannot be matched";
  if (idp.uris.length > 0) {
    const mine = new Set(crlUrls(leaf));
    if (!idp.uris.some((u) => mine.has(u))) return "CRL's issuing distribution point is not one of the certificate's distribution points";
  }
  return undefined;
}

const CRL_MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 24 * 3_600_000;

/** The answer a usable CRL gives for `leaf` at `now`. */
export function crlStatus(facts: CrlFacts, leaf: CertInfo, now: number, source: string): RevocationResult {
  const scope = scopeProblem(facts, leaf);
  if (scope) return unknown(source, scope);
  if (facts.thisUpdate > now + CLOCK_SKEW_MS) return unknown(source, `CRL thisUpdate ${iso(facts.thisUpdate)} is in the future`);
  if (facts.nextUpdate !== undefined && facts.nextUpdate <= now) return unknown(source, `CRL is stale: nextUpdate ${iso(facts.nextUpdate)} has passed`);
  // Without nextUpdate a CRL would never go stale and could be replayed forever: cap its age as OCSP does.
  if (facts.nextUpdate === undefined && facts.thisUpdate < now - CRL_MAX_AGE_WITHOUT_NEXT_UPDATE_MS) {
    return unknown(source, `CRL has no nextUpdate and was issued ${iso(facts.thisUpdate)}, more than 24 h ago`);
  }
  const validUntil = facts.nextUpdate;
  const entry = facts.revoked.get(leaf.serialHex);
  if (!entry || entry.reasonCode === REMOVE_FROM_CRL) return validUntil === undefined ? { status: "good", source } : { status: "good", source, valid_until: validUntil };
  const reason = crlReasonName(entry.reasonCode);
  return {
    status: "revoked",
    source,
    revoked_at: iso(entry.revokedAt),
    ...(reason ? { reason } : {}),
    ...(validUntil !== undefined ? { valid_until: validUntil } : {}),
  };
}

/**
 * Synchronous, offline check of `leaf` (DER) against local CRLs (DER or PEM) at `at` (ms epoch):
 * for tools (the `vigil cert` CLI) that have no network. Never throws; unparseable CRLs are skipped.
 */
export function checkLocalCrls(leaf: Uint8Array, issuer: Uint8Array, crls: readonly Uint8Array[], at: number): RevocationResult {
  let l: CertInfo;
  let i: CertInfo;
  try {
    l = parseCert(leaf);
    i = parseCert(issuer);
  } catch (err) {
    return unknown(undefined, `certificate could not be parsed: ${describeError(err)}`);
  }
  const results: RevocationResult[] = [];
  for (const bytes of crls) {
    try {
      const crl = parseCrl(bytes);
      if (!namesEqual(crl.issuerRaw, l.issuerRaw)) continue;
      const verified = verifyCrl(crl, l, i);
      results.push("facts" in verified ? crlStatus(verified.facts, l, at, "crl:local") : unknown("crl:local", verified.problem));
    } catch {
      continue;
    }
  }
  return pickLocal(results) ?? unknown(undefined, "no local CRL is from the certificate's issuer");
}

/** Several local CRLs from one issuer (an old and a new one, say): revoked wins, then good, then the first problem. */
function pickLocal(results: readonly RevocationResult[]): RevocationResult | undefined {
  return results.find((r) => r.status === "revoked") ?? results.find((r) => r.status === "good") ?? results[0];
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ", ");
}

export class CrlChecker {
  readonly #opts: RevocationOptions;
  readonly #deps: RevocationDeps;
  readonly #cache = new ExpiringLru<CrlFacts>(CACHE_MAX_ENTRIES, CRL_CACHE_MAX_BYTES);
  #local: ParsedCrl[] | undefined;
  /** Local CRLs verified per issuer key: index → facts or problem. */
  readonly #localVerified = new Map<string, { facts: CrlFacts } | { problem: string }>();

  constructor(opts: RevocationOptions, deps: RevocationDeps) {
    this.#opts = opts;
    this.#deps = deps;
  }

  /** Local CRLs, then distribution points; the first definitive answer wins. */
  async check(leaf: CertInfo, issuer: CertInfo, signal?: AbortSignal): Promise<RevocationResult> {
    const notes: string[] = [];
    let lastSource: string | undefined;
    const local = this.checkLocal(leaf, issuer);
    if (local) {
      if (isDefinitive(local)) return local;
      notes.push(`crl:local: ${local.reason}`);
      lastSource = local.source;
    }
    const urls = crlUrls(leaf).filter(isHttpUrl);
    for (const url of urls) {
      if (signal?.aborted) {
        notes.push("aborted");
        break;
      }
      const r = await this.checkUrl(url, leaf, issuer, signal);
      if (isDefinitive(r)) return r;
      notes.push(r.reason ?? "unknown");
      lastSource = r.source;
    }
    if (notes.length === 0) return unknown(undefined, "no CRL: the certificate names no http(s) CRL distribution point and no local CRL is from its issuer");
    return unknown(lastSource, notes.join("; "));
  }

  /** The answer of the local CRLs from the leaf's issuer, or undefined when none is from it. */
  checkLocal(leaf: CertInfo, issuer: CertInfo): RevocationResult | undefined {
    const now = this.#deps.clock.now();
    const results: RevocationResult[] = [];
    this.#loadLocal().forEach((crl, index) => {
      if (!namesEqual(crl.issuerRaw, leaf.issuerRaw)) return; // another CA's CRL
      const memoKey = `${index}\n${keyId(issuer)}`;
      let verified = this.#localVerified.get(memoKey);
      if (!verified) {
        verified = verifyCrl(crl, leaf, issuer);
        if (this.#localVerified.size >= CACHE_MAX_ENTRIES) this.#localVerified.clear();
        this.#localVerified.set(memoKey, verified);
        if ("problem" in verified) this.#deps.logger?.warn({ crl_index: index, problem: verified.problem }, "local CRL unusable");
      }
      results.push("facts" in verified ? crlStatus(verified.facts, leaf, now, "crl:local") : unknown("crl:local", verified.problem));
    });
    return pickLocal(results);
  }

  async checkUrl(url: string, leaf: CertInfo, issuer: CertInfo, signal?: AbortSignal): Promise<RevocationResult> {
    const source = `crl:${shownUrl(url)}`;
    const cacheKey = `${url}\n${keyId(issuer)}`;
    const cached = this.#cache.get(cacheKey, this.#deps.clock.now());
    if (cached) return crlStatus(cached, leaf, this.#deps.clock.now(), source);
    let body: Buffer;
    try {
      body = await fetchUntrusted(this.#deps, this.#opts, {
        method: "GET",
        url,
        headers: { accept: "application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1" },
        maxBytes: this.#opts.max_crl_bytes,
        signal,
      });
    } catch (err) {
      return unknown(source, `CRL fetch failed: ${describeError(err)}`);
    }
    let verified: { facts: CrlFacts } | { problem: string };
    try {
      verified = verifyCrl(parseCrl(body), leaf, issuer);
    } catch (err) {
      return unknown(source, `CRL from ${shownUrl(url)} is malformed: ${describeError(err)}`);
    }
    if ("problem" in verified) return unknown(source, verified.problem);
    const now = this.#deps.clock.now();
    const result = crlStatus(verified.facts, leaf, now, source);
    if (isDefinitive(result)) {
      this.#cache.set(cacheKey, verified.facts, verified.facts.nextUpdate ?? now + DEFAULT_CACHE_TTL_MS, now, verified.facts.size);
    }
    return result;
  }

  #loadLocal(): ParsedCrl[] {
    if (this.#local) return this.#local;
    const out: ParsedCrl[] = [];
    (this.#opts.crls ?? []).forEach((bytes, index) => {
      try {
        out.push(parseCrl(bytes));
      } catch (err) {
        this.#deps.logger?.warn({ crl_index: index, err: describeError(err) }, "local CRL could not be parsed; ignored");
      }
    });
    this.#local = out;
    return out;
  }
}
