/**
 * CRL revocation checking (RFC 5280 §5, §6.3): local CRLs first, then the certificate's http(s)
 * distribution points.
 *
 * A complete CRL answers for a certificate when it is in scope (§6.3.3 (b)): issued by the
 * certificate's issuer, or — an indirect CRL — by the cRLIssuer one of the certificate's
 * distribution points names, with indirectCRL asserted; a distribution point it names is one of the
 * certificate's; it covers the certificate's kind (user or CA) and every reason. Its signature must
 * verify with the issuer's key (which must allow cRLSign) or, for an indirect CRL, with a CRL
 * signer certificate that validates to the same trust anchors. It must be fresh (thisUpdate not
 * ahead beyond skew, nextUpdate not passed, 24 h at most without nextUpdate).
 *
 * Delta CRLs (§5.2.4) are used when one is available for the complete CRL — among the local CRLs,
 * or at a freshestCRL location the certificate or the complete CRL names: same issuer and scope,
 * based on a complete CRL no newer than the one used, newer than it, fresh and validly signed.
 * An entry on the delta decides (removeFromCRL releases a hold); otherwise the complete CRL does.
 * A delta that cannot be fetched leaves the complete CRL's answer standing, which is current until
 * its own nextUpdate.
 */
import { ParsedCertificate, parseCached } from "../../../plugin/x509/certificate.ts";
import { ParsedCrl } from "../../../plugin/x509/crl.ts";
import type { DistributionPointInfo, DistributionPointNames } from "../../../plugin/x509/extensions.ts";
import { namesMatch, type DistinguishedName } from "../../../plugin/x509/name.ts";
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { ExpiringLru } from "./cache.ts";
import {
  CACHE_MAX_ENTRIES,
  CLOCK_SKEW_MS,
  CRL_CACHE_MAX_BYTES,
  crlReasonName,
  DEFAULT_CACHE_TTL_MS,
  describeError,
  fetchUntrusted,
  isDefinitive,
  isHttpUrl,
  iso,
  shownUrl,
  unknown,
  type RevocationDeps,
} from "./common.ts";

const REMOVE_FROM_CRL = 8;
const CRL_MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 24 * 3_600_000;

/**
 * The certificate that signed an indirect CRL, validated to the same trust anchors as the path
 * under check, or why there is none.
 */
export type CrlSignerLookup = (crl: ParsedCrl) => ParsedCertificate | { problem: string };

export interface CrlCheckOptions {
  readonly signal?: AbortSignal;
  /** Finds and validates indirect CRL signers; without it indirect CRLs cannot answer. */
  readonly signerFor?: CrlSignerLookup;
}

const uriOf = (n: DistributionPointNames | undefined) => n?.uris ?? [];

function namesOverlap(a: DistributionPointNames, b: { uris: readonly string[]; dns: readonly DistinguishedName[] }): boolean {
  return a.uris.some((u) => b.uris.includes(u)) || a.dns.some((d) => b.dns.some((e) => namesMatch(d, e)));
}

/**
 * Why `crl` (complete or delta) cannot answer for `cert` issued by `issuer`'s subject, or the
 * distribution point it answers through (null when the certificate names none and the CRL is
 * direct and unpartitioned).
 */
export function scopeProblem(crl: ParsedCrl, cert: ParsedCertificate): { problem: string } | { dp: DistributionPointInfo | null } {
  if (crl.unsupportedCritical) return { problem: `CRL has an unsupported critical extension ${crl.unsupportedCritical}` };
  const idp = crl.idp;
  if (idp?.onlyAttribute) return { problem: "CRL covers attribute certificates only" };
  if (idp?.onlySomeReasons) return { problem: "CRL covers only some revocation reasons (reason-partitioned CRLs are not supported)" };
  if (idp?.onlyCA && !cert.isCA) return { problem: "CRL covers CA certificates only" };
  if (idp?.onlyUser && cert.isCA) return { problem: "CRL covers end-entity certificates only" };
  if (idp?.name?.other) return { problem: "CRL names its distribution point in a form that cannot be matched" };
  const direct = namesMatch(crl.issuer, cert.issuer);
  const points = cert.crlDistributionPoints ?? [];
  // §6.3.3 (b)(1): the distribution point through which this CRL answers.
  const candidates = points.filter((dp) => (dp.crlIssuer ? idp?.indirect === true && dp.crlIssuer.some((n) => namesMatch(n, crl.issuer)) : direct));
  if (candidates.length === 0) {
    if (!direct) {
      if (idp?.indirect) return { problem: "indirect CRL from an issuer none of the certificate's distribution points names as cRLIssuer" };
      const named = points.some((dp) => dp.crlIssuer?.some((n) => namesMatch(n, crl.issuer)));
      return { problem: named ? "CRL is from the cRLIssuer the certificate's distribution point names but does not assert indirectCRL" : "CRL issuer does not match the certificate's issuer" };
    }
    if (points.length > 0 && points.every((dp) => dp.crlIssuer)) return { problem: "the certificate's distribution points name another CRL issuer" };
    if (idp?.name) return { problem: "CRL's issuing distribution point is not one of the certificate's distribution points" };
    return { dp: null };
  }
  for (const dp of candidates) {
    if (dp.reasons) continue;
    if (idp?.name) {
      const mine = dp.name ? { uris: dp.name.uris, dns: dp.name.dns } : { uris: [], dns: dp.crlIssuer ?? [] };
      if (!namesOverlap(idp.name, mine)) continue;
    }
    return { dp };
  }
  if (candidates.every((dp) => dp.reasons)) return { problem: "the certificate's distribution points cover only some revocation reasons (reason-partitioned CRLs are not supported)" };
  return { problem: "CRL's issuing distribution point is not one of the certificate's distribution points" };
}

function freshness(crl: ParsedCrl, now: number): string | undefined {
  const what = crl.isDelta ? "delta CRL" : "CRL";
  if (crl.thisUpdate > now + CLOCK_SKEW_MS) return `${what} thisUpdate ${iso(crl.thisUpdate)} is in the future`;
  if (crl.nextUpdate !== undefined && crl.nextUpdate <= now) return `${what} is stale: nextUpdate ${iso(crl.nextUpdate)} has passed`;
  // Without nextUpdate a CRL would never go stale and could be replayed forever: its age is capped as OCSP's is.
  if (crl.nextUpdate === undefined && crl.thisUpdate < now - CRL_MAX_AGE_WITHOUT_NEXT_UPDATE_MS) return `${what} has no nextUpdate and was issued ${iso(crl.thisUpdate)}, more than 24 h ago`;
  return undefined;
}

/** Checks `crl` was signed for the certificates `issuer` issued: by it (cRLSign allowed), or an indirect CRL's validated signer. */
function signatureProblem(crl: ParsedCrl, issuer: ParsedCertificate, signerFor: CrlSignerLookup | undefined): string | undefined {
  let signer: ParsedCertificate;
  if (namesMatch(crl.issuer, issuer.subject) && (!crl.authorityKeyId || !issuer.subjectKeyId || crl.authorityKeyId === issuer.subjectKeyId)) signer = issuer;
  else {
    if (!signerFor) return "CRL is signed by another entity than the certificate's issuer, and no CRL signer can be looked up";
    const s = signerFor(crl);
    if ("problem" in s) return s.problem;
    signer = s;
  }
  if (signer.keyUsage && !signer.keyUsage.includes("cRLSign")) return `the CRL signer's keyUsage does not allow CRL signing`;
  let ok: boolean;
  try {
    ok = crl.verifiedBy(signer.publicKey);
  } catch (err) {
    return `CRL signature: ${describeError(err)}`;
  }
  if (!ok) return signer === issuer ? "CRL signature does not verify with the issuer's key" : "CRL signature does not verify with the CRL signer's key";
  return undefined;
}

/** The answer of a verified, in-scope complete CRL (and a verified delta, if any) for `cert`. */
function status(complete: ParsedCrl, delta: ParsedCrl | undefined, cert: ParsedCertificate, source: string): RevocationResult {
  let entries: ReturnType<ParsedCrl["entries"]>;
  let deltaEntries: ReturnType<ParsedCrl["entries"]> | undefined;
  try {
    entries = complete.entries();
    deltaEntries = delta?.entries();
  } catch (err) {
    return unknown(source, describeError(err));
  }
  const critical = entries.unsupportedCritical ?? deltaEntries?.unsupportedCritical;
  if (critical) return unknown(source, `CRL entry has an unsupported critical extension ${critical}`);
  const validUntil = Math.min(complete.nextUpdate ?? Infinity, delta?.nextUpdate ?? Infinity);
  const until = Number.isFinite(validUntil) ? { valid_until: validUntil } : {};
  const src = delta ? `${source}+delta` : source;
  const onDelta = delta?.entryFor(cert.serial, cert.issuer.key);
  const entry = onDelta ?? complete.entryFor(cert.serial, cert.issuer.key);
  if (!entry || entry.reasonCode === REMOVE_FROM_CRL) return { status: "good", source: src, ...until };
  const reason = crlReasonName(entry.reasonCode);
  return { status: "revoked", source: src, revoked_at: iso(entry.revokedAt), ...(reason ? { reason } : {}), ...until };
}

/** Several answers from one issuer's CRLs (an old and a new one, say): revoked wins, then good, then the first problem. */
function pick(results: readonly RevocationResult[]): RevocationResult | undefined {
  return results.find((r) => r.status === "revoked") ?? results.find((r) => r.status === "good") ?? results[0];
}

interface Verified {
  readonly crl: ParsedCrl;
}

export class CrlChecker {
  readonly #opts: RevocationOptions;
  readonly #deps: RevocationDeps;
  readonly #cache = new ExpiringLru<ParsedCrl>(CACHE_MAX_ENTRIES, CRL_CACHE_MAX_BYTES);
  #local: ParsedCrl[] | undefined;
  /** Signature checks of local CRLs, by CRL and signer. */
  readonly #localVerified = new Map<string, string | null>();

  constructor(opts: RevocationOptions, deps: RevocationDeps) {
    this.#opts = opts;
    this.#deps = deps;
  }

  /** Is there a local CRL that may answer for certificates `issuer` issued (its name as CRL issuer)? */
  hasLocalFrom(issuer: ParsedCertificate): boolean {
    return this.#loadLocal().some((c) => namesMatch(c.issuer, issuer.subject));
  }

  /** Local CRLs, then distribution points; the first definitive answer wins. Never throws. */
  async check(cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions = {}): Promise<RevocationResult> {
    const notes: string[] = [];
    let lastSource: string | undefined;
    const local = this.checkLocal(cert, issuer, options);
    if (local) {
      if (isDefinitive(local)) return local;
      notes.push(`crl:local: ${local.reason}`);
      lastSource = local.source;
    }
    const urls = (cert.crlDistributionPoints ?? []).filter((dp) => !dp.reasons).flatMap((dp) => uriOf(dp.name)).filter(isHttpUrl);
    for (const url of [...new Set(urls)]) {
      if (options.signal?.aborted) {
        notes.push("aborted");
        break;
      }
      const r = await this.checkUrl(url, cert, issuer, options);
      if (isDefinitive(r)) return r;
      notes.push(r.reason ?? "unknown");
      lastSource = r.source;
    }
    if (notes.length === 0) return unknown(undefined, "no CRL: the certificate names no http(s) CRL distribution point and no local CRL covers it");
    return unknown(lastSource, notes.join("; "));
  }

  /** The answer of the local CRLs that cover `cert`, or undefined when none does. */
  checkLocal(cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions = {}): RevocationResult | undefined {
    const now = this.#deps.clock.now();
    const results: RevocationResult[] = [];
    const local = this.#loadLocal();
    for (const crl of local) {
      if (crl.isDelta) continue;
      const scope = scopeProblem(crl, cert);
      if ("problem" in scope) {
        // Another CA's CRL is not a problem of this certificate; an unusable one from its issuer, or
        // from the CRL issuer its distribution points name, is.
        const named = (cert.crlDistributionPoints ?? []).some((dp) => dp.crlIssuer?.some((n) => namesMatch(n, crl.issuer)));
        if (named || namesMatch(crl.issuer, cert.issuer)) results.push(unknown("crl:local", scope.problem));
        continue;
      }
      const v = this.#verifyLocal(crl, cert, issuer, options);
      if (v) {
        results.push(unknown("crl:local", v));
        continue;
      }
      const stale = freshness(crl, now);
      if (stale) {
        results.push(unknown("crl:local", stale));
        continue;
      }
      const delta = local.find((d) => this.#deltaFor(d, crl, cert, issuer, options, now));
      results.push(status(crl, delta, cert, "crl:local"));
    }
    return pick(results);
  }

  #verifyLocal(crl: ParsedCrl, cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions): string | undefined {
    const key = `${crl.fingerprint}\n${issuer.spkiHash}`;
    let v = this.#localVerified.get(key);
    if (v === undefined) {
      v = signatureProblem(crl, issuer, options.signerFor) ?? null;
      if (this.#localVerified.size >= CACHE_MAX_ENTRIES) this.#localVerified.clear();
      this.#localVerified.set(key, v);
      if (v) this.#deps.logger?.warn({ crl_issuer: crl.issuer.text, problem: v }, "local CRL unusable");
    }
    return v ?? undefined;
  }

  /** Is `delta` a usable delta CRL for `complete` (§5.2.4, §6.3.3 (c))? */
  #deltaFor(delta: ParsedCrl, complete: ParsedCrl, cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions, now: number): boolean {
    if (!delta.isDelta || !namesMatch(delta.issuer, complete.issuer)) return false;
    if (complete.crlNumber === undefined || delta.crlNumber === undefined || delta.deltaBase! > complete.crlNumber || delta.crlNumber <= complete.crlNumber) return false;
    if (!sameScope(delta, complete) || "problem" in scopeProblem(delta, cert)) return false;
    if (freshness(delta, now)) return false;
    return this.#verifyLocal(delta, cert, issuer, options) === undefined;
  }

  async checkUrl(url: string, cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions = {}): Promise<RevocationResult> {
    const source = `crl:${shownUrl(url)}`;
    const got = await this.#fetchVerified(url, cert, issuer, options);
    if ("problem" in got) return unknown(source, got.problem);
    const crl = got.crl;
    const now = this.#deps.clock.now();
    if (crl.isDelta) return unknown(source, "the distribution point serves a delta CRL, not a complete one");
    const scope = scopeProblem(crl, cert);
    if ("problem" in scope) return unknown(source, scope.problem);
    const stale = freshness(crl, now);
    if (stale) return unknown(source, stale);
    const delta = await this.#remoteDelta(crl, cert, issuer, options, now);
    return status(crl, delta, cert, source);
  }

  /** A delta for `complete` from the local CRLs, or fetched from the freshestCRL locations of the certificate or the complete CRL. */
  async #remoteDelta(complete: ParsedCrl, cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions, now: number): Promise<ParsedCrl | undefined> {
    const local = this.#loadLocal().find((d) => this.#deltaFor(d, complete, cert, issuer, options, now));
    if (local) return local;
    const urls = [...(cert.freshestCrl ?? []), ...(complete.freshest ?? [])].flatMap((dp) => uriOf(dp.name)).filter(isHttpUrl);
    for (const url of [...new Set(urls)]) {
      if (options.signal?.aborted) return undefined;
      const got = await this.#fetchVerified(url, cert, issuer, options);
      if ("problem" in got) {
        this.#deps.logger?.warn({ url: shownUrl(url), problem: got.problem }, "delta CRL unusable; the complete CRL answers alone");
        continue;
      }
      const d = got.crl;
      if (!d.isDelta || !namesMatch(d.issuer, complete.issuer) || complete.crlNumber === undefined || d.crlNumber === undefined) continue;
      if (d.deltaBase! > complete.crlNumber || d.crlNumber <= complete.crlNumber || !sameScope(d, complete) || freshness(d, now)) continue;
      return d;
    }
    return undefined;
  }

  /** A CRL fetched from `url` whose signature verified for `cert`'s issuer, cached until its nextUpdate. */
  async #fetchVerified(url: string, cert: ParsedCertificate, issuer: ParsedCertificate, options: CrlCheckOptions): Promise<Verified | { problem: string }> {
    const now = this.#deps.clock.now();
    const cacheKey = `${url}\n${issuer.spkiHash}`;
    const cached = this.#cache.get(cacheKey, now);
    if (cached) return { crl: cached };
    let body: Buffer;
    try {
      body = await fetchUntrusted(this.#deps, this.#opts, {
        method: "GET",
        url,
        headers: { accept: "application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1" },
        maxBytes: this.#opts.max_crl_bytes,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      return { problem: `CRL fetch failed: ${describeError(err)}` };
    }
    let crl: ParsedCrl;
    try {
      crl = new ParsedCrl(body, this.#opts.max_crl_bytes);
    } catch (err) {
      return { problem: `CRL from ${shownUrl(url)} is malformed: ${describeError(err)}` };
    }
    if (!namesMatch(crl.issuer, cert.issuer) && !crl.idp?.indirect) return { problem: "CRL issuer does not match the certificate's issuer" };
    const problem = signatureProblem(crl, issuer, options.signerFor);
    if (problem) return { problem };
    if (!freshness(crl, now)) this.#cache.set(cacheKey, crl, crl.nextUpdate ?? now + DEFAULT_CACHE_TTL_MS, now, crl.size);
    return { crl };
  }

  #loadLocal(): ParsedCrl[] {
    if (this.#local) return this.#local;
    const out: ParsedCrl[] = [];
    (this.#opts.crls ?? []).forEach((bytes, index) => {
      try {
        out.push(new ParsedCrl(bytes, this.#opts.max_crl_bytes));
      } catch (err) {
        this.#deps.logger?.warn({ crl_index: index, err: describeError(err) }, "local CRL could not be parsed; ignored");
      }
    });
    this.#local = out;
    return out;
  }
}

/** Delta and complete CRL cover the same scope: their issuing distribution points agree. */
function sameScope(a: ParsedCrl, b: ParsedCrl): boolean {
  const x = a.idp;
  const y = b.idp;
  if (!x || !y) return !x && !y;
  const names = (n: DistributionPointNames | undefined) => JSON.stringify([...(n?.uris ?? [])].sort().concat((n?.dns ?? []).map((d) => d.key).sort()));
  return x.onlyUser === y.onlyUser && x.onlyCA === y.onlyCA && x.indirect === y.indirect && x.onlyAttribute === y.onlyAttribute && x.onlySomeReasons === y.onlySomeReasons && names(x.name) === names(y.name);
}

/**
 * Synchronous, offline check of `cert` against local CRLs at `at` (ms epoch), for tools without
 * network. Never throws; unparseable CRLs are skipped.
 */
export function checkLocalCrls(certificate: Uint8Array | ParsedCertificate, issuerCertificate: Uint8Array | ParsedCertificate, crls: readonly Uint8Array[], at: number, signerFor?: CrlSignerLookup): RevocationResult {
  let cert: ParsedCertificate;
  let issuer: ParsedCertificate;
  try {
    cert = certificate instanceof ParsedCertificate ? certificate : parseCached(certificate);
    issuer = issuerCertificate instanceof ParsedCertificate ? issuerCertificate : parseCached(issuerCertificate);
  } catch (err) {
    return unknown(undefined, `certificate could not be parsed: ${describeError(err)}`);
  }
  // checkLocal never fetches: the checker needs no HTTP client.
  const checker = new CrlChecker({ mode: "crl", soft_fail: true, allow_private_urls: false, timeout_ms: 1, max_ocsp_bytes: 0, max_crl_bytes: 64 * 1024 * 1024, crls }, { http: undefined as never, clock: { now: () => at } });
  return checker.checkLocal(cert, issuer, signerFor ? { signerFor } : {}) ?? unknown(undefined, "no local CRL is from the certificate's issuer");
}
