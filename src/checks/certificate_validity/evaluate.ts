/**
 * The pure half of certificate_validity: what was gathered, how path validation and revocation
 * came out, and the clock → one verdict with a stable reason code, evidence, and when to look
 * again. Table-tested in test/checks/certificate_validity/evaluate.test.ts.
 */
import type { CheckStatus, Reason } from "../../policy/model.ts";
import { CERT_REASONS, type CertReason, type PathValidationResult, type RevocationResult } from "./types.ts";

export interface CertEvaluationInput {
  /** What gathering or parsing failed with, if it did. */
  readonly gatherError?: { readonly code: typeof CERT_REASONS.CERT_SOURCE_UNAVAILABLE | typeof CERT_REASONS.CERT_MALFORMED; readonly message: string };
  readonly validation?: PathValidationResult;
  readonly revocation?: RevocationResult;
  readonly origin?: string;
  readonly now: number;
  readonly warnBeforeMs: number;
  /** Unknown revocation: the path decides and REVOCATION_UNKNOWN is noted (true), or `fail` (false). */
  readonly softFail: boolean;
}

export interface CertVerdict {
  readonly status: CheckStatus;
  readonly reasons: readonly Reason[];
  readonly evidence: Record<string, unknown>;
  /** When the check should run again on its own: the warning point, or expiry. */
  readonly next_run_at?: number;
  /** The verdict should not outlive this (e.g. a revocation answer's nextUpdate). */
  readonly valid_until?: number;
}

const reason = (code: CertReason, message: string): Reason => ({ code, message });

export function evaluateCertificate(input: CertEvaluationInput): CertVerdict {
  const origin = input.origin ? { origin: input.origin } : {};
  if (input.gatherError) {
    // A certificate we cannot see is unknown (the fail mode decides); one we cannot parse is bad.
    const status: CheckStatus = input.gatherError.code === CERT_REASONS.CERT_MALFORMED ? "fail" : "unknown";
    return { status, reasons: [reason(input.gatherError.code, input.gatherError.message)], evidence: { ...origin } };
  }
  const v = input.validation;
  if (!v) return { status: "unknown", reasons: [reason(CERT_REASONS.CERT_SOURCE_UNAVAILABLE, "no certificate was gathered")], evidence: { ...origin } };
  const leaf = v.path?.[0];
  const evidence: Record<string, unknown> = {
    ...origin,
    ...(leaf ? { subject: leaf.subject, issuer: leaf.issuer, serial: leaf.serial, sans: leaf.sans, not_after: leaf.not_after, fingerprint_sha256: leaf.fingerprint_sha256 } : {}),
    ...(v.path ? { chain: v.path.map((c) => c.subject) } : {}),
  };
  if (!v.valid) {
    const code = v.code ?? CERT_REASONS.CERT_UNTRUSTED;
    return { status: "fail", reasons: [reason(code, v.reason ?? code)], evidence };
  }
  const rev = input.revocation;
  // With soft_fail an unknown revocation status is a note on a verdict the path decides.
  const notes: Reason[] = [];
  if (rev) {
    evidence.revocation = { status: rev.status, ...(rev.source ? { source: rev.source } : {}), ...(rev.reason ? { reason: rev.reason } : {}) };
    if (rev.status === "revoked") {
      return { status: "fail", reasons: [reason(CERT_REASONS.CERT_REVOKED, `revoked${rev.revoked_at ? ` at ${rev.revoked_at}` : ""}${rev.reason ? ` (${rev.reason})` : ""}${rev.source ? ` per ${rev.source}` : ""}`)], evidence };
    }
    if (rev.status === "unknown") {
      const note = reason(CERT_REASONS.REVOCATION_UNKNOWN, `revocation status unknown: ${rev.reason ?? "no answer"}${input.softFail ? " (soft_fail: not failing for it)" : ""}`);
      if (!input.softFail) return { status: "fail", reasons: [note], evidence };
      notes.push(note);
    }
  }
  // The chain is only as good as its first certificate to expire: an intermediate may go first.
  const first = (v.path ?? []).reduce<{ at: number; subject: string } | undefined>((m, c) => {
    const t = Date.parse(c.not_after);
    return Number.isFinite(t) && (!m || t < m.at) ? { at: t, subject: c.subject } : m;
  }, undefined);
  const notAfter = first?.at ?? Number.NaN;
  const validUntil = rev?.valid_until;
  if (Number.isFinite(notAfter)) {
    const left = notAfter - input.now;
    if (left <= input.warnBeforeMs) {
      const days = Math.max(0, Math.floor(left / 86_400_000));
      // Re-check exactly at expiry, when warn turns into fail.
      const which = first && leaf && first.subject !== leaf.subject ? ` (${first.subject} in its chain)` : "";
      return { status: "warn", reasons: [reason(CERT_REASONS.CERT_EXPIRING, `expires ${new Date(notAfter).toISOString()}${which} (in ${days} day${days === 1 ? "" : "s"})`), ...notes], evidence, next_run_at: notAfter, valid_until: Math.min(notAfter, validUntil ?? Infinity) };
    }
    return { status: "pass", reasons: notes, evidence, next_run_at: notAfter - input.warnBeforeMs, valid_until: Math.min(notAfter, validUntil ?? Infinity) };
  }
  return { status: "pass", reasons: notes, evidence, ...(validUntil !== undefined ? { valid_until: validUntil } : {}) };
}
