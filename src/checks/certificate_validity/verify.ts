/**
 * One chain → one verdict, the same way for the running check and for `vigil cert verify`: path
 * validation (pki/), revocation of the links that need it (revocation/), then evaluate.ts.
 *
 * Which links need revocation data, and what soft_fail means (docs/checks.md says the same):
 * - the trust anchor's own status is never checked: it is trusted by configuration;
 * - the leaf always needs an answer (with `mode` other than `none`): from a stapled response, the
 *   responders and distribution points it names, or a local CRL from its issuer;
 * - an intermediate needs one only when its issuer publishes revocation data for it (it names an
 *   OCSP responder or a CRL distribution point the mode uses, or a local CRL comes from its
 *   issuer); otherwise its link is `not_checked`;
 * - revoked anywhere fails the chain. An answer that cannot be had is `unknown`: with `soft_fail`
 *   (the default) the verdict stands on the path alone and carries REVOCATION_UNKNOWN as a note;
 *   without it the verdict is `fail` with REVOCATION_UNKNOWN.
 */
import type { ParsedCertificate } from "../../plugin/x509/certificate.ts";
import type { ParsedCrl } from "../../plugin/x509/crl.ts";
import { namesMatch } from "../../plugin/x509/name.ts";
import { evaluateCertificate, type CertVerdict } from "./evaluate.ts";
import type { z } from "zod";
import type { verifyConfigSchema } from "./config.ts";
import { TrustStore, validatePath, type PathValidationDetail } from "./pki/path.ts";
import type { HttpClient } from "../../net/http.ts";
import type { Clock } from "../../util/clock.ts";
import { RevocationChecker, type RevocationLogger } from "./revocation/index.ts";
import type { ExpectedIdentity, RevocationResult } from "./types.ts";

/** The options of the configuration that decide a verdict (the CLI parses its flags into the same shape). */
export type VerifyConfig = z.output<typeof verifyConfigSchema>;

export interface ChainInput {
  /** Leaf DER. */
  readonly leaf: Uint8Array;
  /** Presented chain, bundle and configured intermediates: candidates for path building, never anchors. */
  readonly intermediates: readonly Uint8Array[];
  readonly store: TrustStore;
  /** Evaluation time (ms epoch). */
  readonly at: number;
  readonly identity?: ExpectedIdentity;
  readonly stapledOcsp?: Uint8Array;
  readonly origin?: string;
  readonly signal?: AbortSignal;
}

export interface ChainVerdict {
  readonly verdict: CertVerdict;
  readonly validation: PathValidationDetail;
  readonly revocation?: RevocationResult;
}

/** The revocation checker a configuration asks for, with `crls` (DER) as its local CRLs. */
export function createRevocationChecker(config: Pick<VerifyConfig, "revocation">, crls: readonly Uint8Array[], deps: { http: HttpClient; clock: Clock; logger?: RevocationLogger }): RevocationChecker {
  const r = config.revocation;
  return new RevocationChecker(
    { mode: r.mode, soft_fail: r.soft_fail, allow_private_urls: r.allow_private_urls, timeout_ms: r.timeout, max_ocsp_bytes: r.max_ocsp_bytes, max_crl_bytes: r.max_crl_bytes, crls },
    deps,
  );
}

/** Validates and revocation-checks one chain and evaluates it. Never throws for certificate content. */
export async function verifyChain(input: ChainInput, config: VerifyConfig, revocation: RevocationChecker | undefined): Promise<ChainVerdict> {
  const validation = validatePath({
    leaf: input.leaf,
    intermediates: input.intermediates,
    roots: input.store,
    at: new Date(input.at),
    purpose: config.purpose,
    extendedKeyUsage: config.extended_key_usage,
    keyUsage: config.key_usage,
    maxDepth: config.max_depth,
    ...(input.identity ? { identity: input.identity } : {}),
    keyPolicy: config.key_policy,
    profile: config.profile,
    initialPolicies: config.initial_policies,
    requireExplicitPolicy: config.require_explicit_policy,
    inhibitPolicyMapping: config.inhibit_policy_mapping,
    inhibitAnyPolicy: config.inhibit_any_policy,
  });
  let rev: RevocationResult | undefined;
  const path = validation.certificates;
  if (validation.valid && revocation && revocation.mode !== "none" && path && path.length > 1) {
    rev = await revocationOfPath(path, validation, input, config, revocation);
  }
  const verdict = evaluateCertificate({
    validation,
    ...(rev ? { revocation: rev } : {}),
    ...(input.origin ? { origin: input.origin } : {}),
    now: input.at,
    warnBeforeMs: config.warn_before,
    softFail: config.revocation.soft_fail,
  });
  return { verdict, validation, ...(rev ? { revocation: rev } : {}) };
}

/**
 * The links of `path` that need revocation data, checked in order (see the module comment). The
 * worst answer wins (revoked, then unknown, then good); the earliest valid_until bounds them all.
 */
async function revocationOfPath(path: readonly ParsedCertificate[], validation: PathValidationDetail, input: ChainInput, config: VerifyConfig, revocation: RevocationChecker): Promise<RevocationResult> {
  const signerFor = crlSignerLookup(path, validation.pool ?? [], input, config);
  let out: RevocationResult | undefined;
  let until = Infinity;
  for (let i = 0; i + 1 < path.length; i++) {
    const cert = path[i]!;
    const issuer = path[i + 1]!;
    if (i > 0 && !revocation.publishes(cert, issuer)) continue;
    const r = await revocation.check(cert, issuer, { ...(i === 0 && input.stapledOcsp ? { stapled: input.stapledOcsp } : {}), ...(input.signal ? { signal: input.signal } : {}), signerFor });
    const here = i === 0 ? r : { ...r, reason: r.reason ? `chain[${i}]: ${r.reason}` : `chain[${i}]` };
    if (r.status === "revoked") return here;
    until = Math.min(until, r.valid_until ?? Infinity);
    if (!out || (r.status === "unknown" && out.status !== "unknown")) out = here;
  }
  if (!out) return { status: "not_checked" };
  const { valid_until: _drop, ...rest } = out;
  return Number.isFinite(until) ? { ...rest, valid_until: until } : rest;
}

/**
 * The signer of an indirect CRL: a certificate named as the CRL's issuer (and matching its
 * authorityKeyIdentifier) among the path, the offered certificates and the anchors, whose own path
 * validates to the trust anchor of the chain under check, with cRLSign.
 */
function crlSignerLookup(path: readonly ParsedCertificate[], pool: readonly ParsedCertificate[], input: ChainInput, config: VerifyConfig) {
  const anchor = path[path.length - 1]!;
  const candidates = [...path, ...pool, ...input.store.list()];
  return (crl: ParsedCrl): ParsedCertificate | { problem: string } => {
    const named = candidates.filter((c) => namesMatch(c.subject, crl.issuer) && (!crl.authorityKeyId || !c.subjectKeyId || c.subjectKeyId === crl.authorityKeyId));
    if (named.length === 0) return { problem: `no certificate of the CRL issuer ${JSON.stringify(crl.issuer.text)} is known (add it to intermediates)` };
    const problems: string[] = [];
    for (const signer of named) {
      if (signer.fingerprint === anchor.fingerprint) return signer;
      const v = validatePath({
        leaf: signer.der,
        intermediates: pool.map((c) => c.der),
        roots: new TrustStore([anchor]),
        at: new Date(input.at),
        purpose: "any",
        maxDepth: config.max_depth,
        keyPolicy: config.key_policy,
        // A CRL signer is a CA-operated certificate, not a subscriber's: RFC 5280 path rules apply.
        profile: "rfc5280",
      });
      if (v.valid) return signer;
      problems.push(`${v.code}: ${v.reason}`);
    }
    return { problem: `the CRL issuer's certificate does not validate to the chain's trust anchor (${problems[0]})` };
  };
}
