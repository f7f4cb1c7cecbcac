/**
 * Revocation checking for certificate_validity: a stapled OCSP response first (when present and
 * valid), then by mode — `ocsp` (OCSP only), `crl` (local CRLs, then distribution points),
 * `prefer_ocsp` (OCSP, falling back to CRLs) or `none` (not_checked).
 *
 * Nothing here throws for bad remote input: an unreachable, refused, slow, oversize, malformed,
 * badly signed or stale answer yields `{status: "unknown", reason}` and the caller applies
 * soft_fail. Every request honours `timeout_ms`, the caller's AbortSignal and
 * `allow_private_urls` (URLs from certificates are hostile).
 */
import type { HttpClient } from "../../../net/http.ts";
import type { Clock } from "../../../util/clock.ts";
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { describeError, isDefinitive, unknown, type RevocationDeps, type RevocationLogger } from "./common.ts";
import { CrlChecker } from "./crl.ts";
import { OcspChecker } from "./ocsp.ts";
import { namesEqual, parseCert, type CertInfo } from "./x509.ts";

export type { RevocationLogger } from "./common.ts";
export { CrlChecker } from "./crl.ts";
export { OcspChecker, buildOcspRequest, evaluateOcspResponse } from "./ocsp.ts";

export interface RevocationCheckOptions {
  /** A stapled OCSP response (DER) the TLS endpoint sent. */
  readonly stapled?: Uint8Array;
  readonly signal?: AbortSignal;
}

export class RevocationChecker {
  readonly #opts: RevocationOptions;
  readonly #logger: RevocationLogger | undefined;
  readonly #ocsp: OcspChecker;
  readonly #crl: CrlChecker;

  constructor(opts: RevocationOptions, deps: { http: HttpClient; clock: Clock; logger?: RevocationLogger }) {
    this.#opts = opts;
    this.#logger = deps.logger;
    const shared: RevocationDeps = { http: deps.http, clock: deps.clock, logger: deps.logger };
    this.#ocsp = new OcspChecker(opts, shared);
    this.#crl = new CrlChecker(opts, shared);
  }

  /** Revocation status of `leaf` (DER), issued by `issuer` (DER). Never throws. */
  async check(leaf: Uint8Array, issuer: Uint8Array, options: RevocationCheckOptions = {}): Promise<RevocationResult> {
    if (this.#opts.mode === "none") return { status: "not_checked" };
    let l: CertInfo;
    let i: CertInfo;
    try {
      l = parseCert(leaf);
      i = parseCert(issuer);
    } catch (err) {
      return unknown(undefined, `certificate could not be parsed: ${describeError(err)}`);
    }
    if (!namesEqual(l.issuerRaw, i.subjectRaw)) return unknown(undefined, "the issuer certificate's subject does not match the certificate's issuer");
    try {
      return await this.#check(l, i, options);
    } catch (err) {
      // Defensive: the checkers turn remote trouble into `unknown` themselves.
      this.#logger?.warn({ err: describeError(err) }, "revocation check failed unexpectedly");
      return unknown(undefined, `revocation check failed: ${describeError(err)}`);
    }
  }

  async #check(leaf: CertInfo, issuer: CertInfo, options: RevocationCheckOptions): Promise<RevocationResult> {
    const notes: string[] = [];
    let last: RevocationResult | undefined;
    const consider = (r: RevocationResult): RevocationResult | undefined => {
      if (isDefinitive(r)) return r;
      notes.push(r.reason ?? "unknown");
      last = r;
      return undefined;
    };

    if (options.stapled) {
      const r = this.#ocsp.checkStapled(options.stapled, leaf, issuer);
      if (isDefinitive(r)) return r;
      this.#logger?.warn({ reason: r.reason }, "stapled OCSP response unusable; checking online");
      notes.push(`stapled: ${r.reason ?? "unknown"}`);
    }

    const mode = this.#opts.mode;
    if (mode === "ocsp" || mode === "prefer_ocsp") {
      const r = consider(await this.#ocsp.check(leaf, issuer, options.signal));
      if (r) return r;
    }
    if (mode === "crl" || mode === "prefer_ocsp") {
      if (options.signal?.aborted) notes.push("aborted");
      else {
        const r = consider(await this.#crl.check(leaf, issuer, options.signal));
        if (r) return r;
      }
    }
    if (mode !== "ocsp" && mode !== "crl" && mode !== "prefer_ocsp") return unknown(undefined, `unsupported revocation mode ${String(mode)}`);
    return unknown((last as RevocationResult | undefined)?.source, notes.join("; "));
  }
}
