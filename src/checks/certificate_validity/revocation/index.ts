/**
 * Revocation checking for certificate_validity: a stapled OCSP response first (when present and
 * valid), then by mode — `ocsp` (OCSP only), `crl` (local CRLs, then distribution points),
 * `prefer_ocsp` (OCSP, falling back to CRLs) or `none` (not_checked).
 *
 * Nothing here throws for bad remote input: an unreachable, refused, slow, oversize, malformed,
 * badly signed or stale answer yields `{status: "unknown", reason}`; what unknown means for the
 * verdict (soft_fail) is decided by the caller. Every request honours `timeout_ms`, the caller's
 * AbortSignal and `allow_private_urls` (URLs from certificates are hostile).
 */
import { ParsedCertificate, parseCached } from "../../../plugin/x509/certificate.ts";
import { namesMatch } from "../../../plugin/x509/name.ts";
import { OID } from "../../../plugin/x509/oids.ts";
import type { HttpClient } from "../../../net/http.ts";
import type { Clock } from "../../../util/clock.ts";
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { describeError, isDefinitive, isHttpUrl, unknown, type RevocationDeps, type RevocationLogger } from "./common.ts";
import { CrlChecker, type CrlSignerLookup } from "./crl.ts";
import type { OcspChecker } from "./ocsp.ts";

export type { RevocationLogger } from "./common.ts";
export { CrlChecker, checkLocalCrls, type CrlSignerLookup } from "./crl.ts";

export interface RevocationCheckOptions {
  /** A stapled OCSP response (DER) the TLS endpoint sent. */
  readonly stapled?: Uint8Array;
  readonly signal?: AbortSignal;
  /** Finds and validates the signer of an indirect CRL. */
  readonly signerFor?: CrlSignerLookup;
}

export class RevocationChecker {
  readonly #opts: RevocationOptions;
  readonly #logger: RevocationLogger | undefined;
  readonly #shared: RevocationDeps;
  #ocsp: Promise<OcspChecker> | undefined;
  readonly #crl: CrlChecker;

  constructor(opts: RevocationOptions, deps: { http: HttpClient; clock: Clock; logger?: RevocationLogger }) {
    this.#opts = opts;
    this.#logger = deps.logger;
    this.#shared = { http: deps.http, clock: deps.clock, ...(deps.logger ? { logger: deps.logger } : {}) };
    this.#crl = new CrlChecker(opts, this.#shared);
  }

  /** The OCSP checker, loaded with its ASN.1 schemas the first time a certificate has OCSP to ask. */
  #ocspChecker(): Promise<OcspChecker> {
    return (this.#ocsp ??= import("./ocsp.ts").then(
      // A delegated OCSP responder without id-pkix-ocsp-nocheck is good only if its issuer's CRL says so.
      (m) =>
        new m.OcspChecker(this.#opts, this.#shared, async (responder, issuer, signal) => {
          const r = await this.#crl.check(responder, issuer, signal ? { signal } : {});
          return r.status === "good" ? undefined : r.status === "revoked" ? `revoked${r.revoked_at ? ` at ${r.revoked_at}` : ""}` : (r.reason ?? "unknown");
        }),
    ));
  }

  get mode(): RevocationOptions["mode"] {
    return this.#opts.mode;
  }

  /**
   * Does the link `cert` ← `issuer` carry revocation data in this mode: does the certificate name
   * an OCSP responder (ocsp, prefer_ocsp) or a CRL distribution point (crl, prefer_ocsp), or does a
   * local CRL come from its issuer? (An unreadable pointer counts: it tried to name one.)
   */
  publishes(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
    const mode = this.#opts.mode;
    if (mode === "none") return false;
    const tried = (oid: string) => cert.extensionProblems.some((p) => p.oid === oid);
    const ocsp = (cert.authorityInfoAccess?.ocsp.length ?? 0) > 0 || tried(OID.authorityInfoAccess);
    const crl = (cert.crlDistributionPoints?.length ?? 0) > 0 || tried(OID.crlDistributionPoints) || this.#crl.hasLocalFrom(issuer);
    return mode === "ocsp" ? ocsp : mode === "crl" ? crl : ocsp || crl;
  }

  /** Revocation status of `certificate`, issued by `issuerCertificate` (parsed, or DER). Never throws. */
  async check(certificate: ParsedCertificate | Uint8Array, issuerCertificate: ParsedCertificate | Uint8Array, options: RevocationCheckOptions = {}): Promise<RevocationResult> {
    if (this.#opts.mode === "none") return { status: "not_checked" };
    let cert: ParsedCertificate;
    let issuer: ParsedCertificate;
    try {
      cert = certificate instanceof ParsedCertificate ? certificate : parseCached(certificate);
      issuer = issuerCertificate instanceof ParsedCertificate ? issuerCertificate : parseCached(issuerCertificate);
    } catch (err) {
      return unknown(undefined, `certificate could not be parsed: ${describeError(err)}`);
    }
    if (!namesMatch(cert.issuer, issuer.subject)) return unknown(undefined, "the issuer certificate's subject does not match the certificate's issuer");
    try {
      return await this.#check(cert, issuer, options);
    } catch (err) {
      // Defensive: the checkers turn remote trouble into `unknown` themselves.
      this.#logger?.warn({ err: describeError(err) }, "revocation check failed unexpectedly");
      return unknown(undefined, `revocation check failed: ${describeError(err)}`);
    }
  }

  async #check(cert: ParsedCertificate, issuer: ParsedCertificate, options: RevocationCheckOptions): Promise<RevocationResult> {
    const notes: string[] = [];
    let last: RevocationResult | undefined;
    const consider = (r: RevocationResult): RevocationResult | undefined => {
      if (isDefinitive(r)) return r;
      notes.push(r.reason ?? "unknown");
      last = r;
      return undefined;
    };

    if (options.stapled) {
      const r = await (await this.#ocspChecker()).checkStapled(options.stapled, cert, issuer, options.signal);
      if (isDefinitive(r)) return r;
      this.#logger?.warn({ reason: r.reason }, "stapled OCSP response unusable; checking online");
      notes.push(`stapled: ${r.reason ?? "unknown"}`);
    }

    const mode = this.#opts.mode;
    if (mode === "ocsp" || mode === "prefer_ocsp") {
      const asks = (cert.authorityInfoAccess?.ocsp ?? []).some(isHttpUrl);
      const r = consider(asks ? await (await this.#ocspChecker()).check(cert, issuer, options.signal) : unknown(undefined, "the certificate names no http(s) OCSP responder"));
      if (r) return r;
    }
    if (mode === "crl" || mode === "prefer_ocsp") {
      if (options.signal?.aborted) notes.push("aborted");
      else {
        const r = consider(await this.#crl.check(cert, issuer, { ...(options.signal ? { signal: options.signal } : {}), ...(options.signerFor ? { signerFor: options.signerFor } : {}) }));
        if (r) return r;
      }
    }
    if (mode !== "ocsp" && mode !== "crl" && mode !== "prefer_ocsp") return unknown(undefined, `unsupported revocation mode ${String(mode)}`);
    return unknown((last as RevocationResult | undefined)?.source, notes.join("; "));
  }
}
