import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateCertificate, type CertEvaluationInput } from "../../../src/checks/certificate_validity/evaluate.ts";
import type { PathValidationResult } from "../../../src/checks/certificate_validity/types.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");
const DAY = 86_400_000;
const leaf = (notAfter: number) => ({ subject: "CN=web", issuer: "CN=ca", serial: "0a", not_before: "2026-01-01T00:00:00.000Z", not_after: new Date(notAfter).toISOString(), sans: ["DNS:web"], fingerprint_sha256: "ab" });
const valid = (notAfter = NOW + 90 * DAY): PathValidationResult => ({ valid: true, path: [leaf(notAfter)] });
const base: CertEvaluationInput = { now: NOW, warnBeforeMs: 14 * DAY, softFail: true, origin: "file:/x.pem" };

test("verdicts, reason codes and re-check times", () => {
  const cases: [string, Partial<CertEvaluationInput>, { status: string; code?: string; next?: number }][] = [
    ["valid, far from expiry → pass, re-check at the warning point", { validation: valid() }, { status: "pass", next: NOW + 90 * DAY - 14 * DAY }],
    ["inside warn_before → warn, re-check at expiry", { validation: valid(NOW + 5 * DAY) }, { status: "warn", code: "CERT_EXPIRING", next: NOW + 5 * DAY }],
    ["exactly at the warning point → warn", { validation: valid(NOW + 14 * DAY) }, { status: "warn", code: "CERT_EXPIRING" }],
    ["validation failure keeps its code", { validation: { valid: false, code: "CERT_EXPIRED", reason: "expired", path: [leaf(NOW - DAY)] } }, { status: "fail", code: "CERT_EXPIRED" }],
    ["untrusted without a path", { validation: { valid: false, code: "CERT_UNTRUSTED", reason: "no path" } }, { status: "fail", code: "CERT_UNTRUSTED" }],
    ["revoked → fail", { validation: valid(), revocation: { status: "revoked", source: "crl:local", revoked_at: "2026-05-01T00:00:00Z" } }, { status: "fail", code: "CERT_REVOKED" }],
    // soft_fail: the path decides, and the unknown status travels as a note (it used to make the result unknown).
    ["revocation unknown, soft_fail → pass with a note", { validation: valid(), revocation: { status: "unknown", reason: "timeout" } }, { status: "pass", code: "REVOCATION_UNKNOWN" }],
    ["revocation unknown, soft_fail, expiring → warn with both", { validation: valid(NOW + 5 * DAY), revocation: { status: "unknown", reason: "timeout" } }, { status: "warn", code: "CERT_EXPIRING" }],
    ["revocation unknown, hard fail → fail", { validation: valid(), revocation: { status: "unknown", reason: "timeout" }, softFail: false }, { status: "fail", code: "REVOCATION_UNKNOWN" }],
    ["revocation good → pass", { validation: valid(), revocation: { status: "good", source: "ocsp:http://r", valid_until: NOW + DAY } }, { status: "pass" }],
    ["source unavailable → unknown", { gatherError: { code: "CERT_SOURCE_UNAVAILABLE", message: "ENOENT" } }, { status: "unknown", code: "CERT_SOURCE_UNAVAILABLE" }],
    ["malformed → fail", { gatherError: { code: "CERT_MALFORMED", message: "bad PEM" } }, { status: "fail", code: "CERT_MALFORMED" }],
  ];
  for (const [name, input, want] of cases) {
    const v = evaluateCertificate({ ...base, ...input });
    assert.equal(v.status, want.status, name);
    if (want.code) assert.equal(v.reasons[0]?.code, want.code, name);
    else assert.equal(v.reasons.length, 0, name);
    if (want.next !== undefined) assert.equal(v.next_run_at, want.next, name);
  }
});

test("evidence carries subject, issuer, serial, SANs, not_after, chain, origin and revocation source", () => {
  const v = evaluateCertificate({ ...base, validation: valid(), revocation: { status: "good", source: "crl:local" } });
  assert.deepEqual(Object.keys(v.evidence).sort(), ["chain", "fingerprint_sha256", "issuer", "not_after", "origin", "revocation", "sans", "serial", "subject"]);
  assert.deepEqual(v.evidence.revocation, { status: "good", source: "crl:local" });
});

test("a revocation answer's nextUpdate bounds the verdict", () => {
  assert.equal(evaluateCertificate({ ...base, validation: valid(), revocation: { status: "good", valid_until: NOW + 3600_000 } }).valid_until, NOW + 3600_000);
});
