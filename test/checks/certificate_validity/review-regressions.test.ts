import "reflect-metadata";
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { metrics, trace } from "@opentelemetry/api";
import { certificateValidityCheck, certificateValidityConfigSchema } from "../../../src/checks/certificate_validity/index.ts";
import { signatureAlgorithmProblem } from "../../../src/checks/certificate_validity/pki/path.ts";
import { certificatesFromBytes } from "../../../src/checks/certificate_validity/sources/common.ts";
import { evaluateCertificate } from "../../../src/checks/certificate_validity/evaluate.ts";
import { DEFAULT_KEY_POLICY } from "../../../src/checks/certificate_validity/types.ts";
import { createHttpClient } from "../../../src/net/http.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import type { Subject } from "../../../src/policy/model.ts";
import { runCli } from "../../helpers/agent-process.ts";

x509.cryptoProvider.set(webcrypto);
const DAY = 86_400_000;
const NOW = Date.now();
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const gen = () => webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]) as Promise<webcrypto.CryptoKeyPair>;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vigil-certreg-"));
  // Key identifiers on every certificate, an EKU on the leaves and no CN that would have to copy a SAN:
  // the default (strict) profile's conditions, which these regressions are not about.
  const ca = async (name: string, keys: webcrypto.CryptoKeyPair, issuer?: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }, days = 3650) =>
    issuer
      ? x509.X509CertificateGenerator.create({ serialNumber: "0b", subject: `CN=${name}`, issuer: issuer.cert.subject, notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + days * DAY), signingKey: issuer.keys.privateKey, publicKey: keys.publicKey, signingAlgorithm: alg, extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey), await x509.AuthorityKeyIdentifierExtension.create(issuer.cert)] })
      : x509.X509CertificateGenerator.createSelfSigned({ serialNumber: "0a", name: `CN=${name}`, notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + days * DAY), keys, signingAlgorithm: alg, extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)] });
  const leaf = async (name: string, spiffe: string, issuer: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }) =>
    x509.X509CertificateGenerator.create({ serialNumber: "c1", subject: `O=${name}`, issuer: issuer.cert.subject, notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 300 * DAY), signingKey: issuer.keys.privateKey, publicKey: (await gen()).publicKey, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffe }]), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]), await x509.AuthorityKeyIdentifierExtension.create(issuer.cert)] });
  const rootKeys = await gen();
  const root = { cert: await ca("root", rootKeys), keys: rootKeys };
  const interKeys = await gen();
  const inter = { cert: await ca("inter", interKeys, root), keys: interKeys };
  const shortKeys = await gen();
  const shortInter = { cert: await ca("short-lived inter", shortKeys, root, 3), keys: shortKeys };
  writeFileSync(join(dir, "root.pem"), root.cert.toString("pem"));
  writeFileSync(join(dir, "w1.pem"), (await leaf("w1", "spiffe://t/w1", inter)).toString("pem") + "\n" + inter.cert.toString("pem"));
  writeFileSync(join(dir, "w2.pem"), (await leaf("w2", "spiffe://t/w2", shortInter)).toString("pem") + "\n" + shortInter.cert.toString("pem"));
  // The root revokes the intermediate; the intermediate's own CRL lists nothing.
  const crl = (issuer: typeof root, entries: { serialNumber: string }[], nextUpdate: Date | undefined, thisUpdate = new Date(NOW - 60_000)) =>
    x509.X509CrlGenerator.create({ issuer: issuer.cert.subject, thisUpdate, ...(nextUpdate ? { nextUpdate } : {}), entries, signingKey: issuer.keys.privateKey, signingAlgorithm: alg });
  writeFileSync(join(dir, "root-revokes-inter.crl"), x509.PemConverter.encode((await crl(root, [{ serialNumber: "0b" }], new Date(NOW + DAY))).rawData, "X509 CRL"));
  writeFileSync(join(dir, "root-empty.crl"), x509.PemConverter.encode((await crl(root, [], new Date(NOW + DAY))).rawData, "X509 CRL"));
  writeFileSync(join(dir, "inter-empty.crl"), x509.PemConverter.encode((await crl(inter, [], new Date(NOW + DAY))).rawData, "X509 CRL"));
  writeFileSync(join(dir, "inter-old-no-next.crl"), x509.PemConverter.encode((await crl(inter, [], undefined, new Date(NOW - 2 * DAY))).rawData, "X509 CRL"));
  // A SPIFFE bundle next to the SVID holding a root nobody configured.
  const evilKeys = await gen();
  const evil = { cert: await ca("evil", evilKeys), keys: evilKeys };
  writeFileSync(join(dir, "svid.pem"), (await leaf("w1", "spiffe://t/w1", evil)).toString("pem"));
  writeFileSync(join(dir, "bundle.pem"), evil.cert.toString("pem"));
});

async function run(subject: Subject, overrides: Record<string, unknown>) {
  const config = certificateValidityConfigSchema.parse({ trust_bundle: "root.pem", source: { type: "file", paths: ["{{id}}.pem"] }, ...overrides });
  const http = createHttpClient();
  const ctx = { clock: new FakeClock(NOW), logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
  try {
    const [r] = await certificateValidityCheck.create(config, ctx).run([subject], { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 30 * DAY });
    return r!;
  } finally {
    await http.close();
  }
}
const w = (id: string, identity: string | undefined = `spiffe://t/${id}`): Subject => ({ id, kind: "workload", ...(identity ? { identity } : {}), attributes: {}, labels: {} });

test("a revoked intermediate revokes the leaf it issued", async () => {
  const r = await run(w("w1"), { revocation: { mode: "crl", crl_files: ["root-revokes-inter.crl", "inter-empty.crl"] } });
  assert.equal(r.status, "fail");
  assert.equal(r.reasons[0]?.code, "CERT_REVOKED");
  const ok = await run(w("w1"), { revocation: { mode: "crl", crl_files: ["root-empty.crl", "inter-empty.crl"] } });
  assert.equal(ok.status, "pass", JSON.stringify(ok.reasons));
});

test("a SPIFFE bundle next to the SVID never becomes a trust anchor", async () => {
  const r = await run(w("w1"), { source: { type: "spiffe", svid_path: "svid.pem", bundle_path: "bundle.pem" }, revocation: { mode: "none" } });
  assert.equal(r.reasons[0]?.code, "CERT_UNTRUSTED");
});

test("an intermediate expiring before the leaf sets the warning, the re-check and the result's expiry", async () => {
  const r = await run(w("w2"), { revocation: { mode: "none" } });
  assert.equal(r.status, "warn");
  assert.match(r.reasons[0]!.message, /short-lived inter/);
  assert.ok(r.next_run_at! < NOW + 4 * DAY && r.expires_at <= r.next_run_at!);
});

test("a CRL without nextUpdate issued more than 24 h ago is not trusted as current", async () => {
  // soft_fail: the path decides and the unknown revocation status is noted; without it, it fails.
  const r = await run(w("w1"), { revocation: { mode: "crl", crl_files: ["root-empty.crl", "inter-old-no-next.crl"], soft_fail: true } });
  assert.equal(r.status, "pass");
  assert.equal(r.reasons[0]?.code, "REVOCATION_UNKNOWN");
  assert.match(r.reasons[0]!.message, /no nextUpdate.*more than 24 h ago/);
  const hard = await run(w("w1"), { revocation: { mode: "crl", crl_files: ["root-empty.crl", "inter-old-no-next.crl"], soft_fail: false } });
  assert.equal(hard.status, "fail");
  assert.equal(hard.reasons[0]?.code, "REVOCATION_UNKNOWN");
});

test("match_identity on a subject without identity is a mismatch, not a pass", async () => {
  const { identity: _none, ...anonymous } = w("w1");
  const r = await run(anonymous as Subject, { revocation: { mode: "none" } });
  assert.equal(r.reasons[0]?.code, "CERT_NAME_MISMATCH");
});

test("signature algorithms are allowlisted: md5WithRSA under its OIW OID is refused", () => {
  assert.match(signatureAlgorithmProblem({ oid: "1.3.14.3.2.3", name: "1.3.14.3.2.3", hash: "unknown" }, DEFAULT_KEY_POLICY)!, /not allowed/);
  assert.equal(signatureAlgorithmProblem({ oid: "1.2.840.10045.4.3.2", name: "ecdsa-with-SHA256", hash: "sha256" }, DEFAULT_KEY_POLICY), undefined);
});

// The quadratic scan this guards took 16.7 s on this input; linear takes milliseconds. The runner timeout
// is a tripwire for the pathological case, not a performance goal.
test("PEM splitting stays linear on a file of BEGIN lines without END lines", { timeout: 5_000 }, () => {
  const evil = Buffer.from("-----BEGIN A-----\n".repeat(60_000));
  assert.deepEqual(certificatesFromBytes(evil), []);
  const truncated = Buffer.from("-----BEGIN CERTIFICATE-----\nAAAA\n");
  assert.equal(certificatesFromBytes(truncated).length, 1, "a certificate without END is returned raw, to be reported malformed");
});

test("evaluation uses the earliest notAfter of the path", () => {
  const now = NOW;
  const v = evaluateCertificate({
    now, warnBeforeMs: 14 * DAY, softFail: true,
    validation: { valid: true, path: [
      { subject: "CN=leaf", issuer: "CN=i", serial: "1", not_before: "", not_after: new Date(now + 300 * DAY).toISOString(), sans: [], fingerprint_sha256: "" },
      { subject: "CN=i", issuer: "CN=r", serial: "2", not_before: "", not_after: new Date(now + 2 * DAY).toISOString(), sans: [], fingerprint_sha256: "" },
    ] },
  });
  assert.equal(v.status, "warn");
  assert.equal(v.next_run_at, now + 2 * DAY);
});

test("cert verify --batch: a bad `at` is BAD_INPUT, not a malformed certificate", async () => {
  writeFileSync(join(dir, "b.jsonl"), JSON.stringify({ id: "x", leaf: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", roots: [], at: "yesterday" }) + "\n");
  const r = await runCli(["cert", "verify", "--batch", join(dir, "b.jsonl")]);
  assert.equal(JSON.parse(r.stdout).code, "BAD_INPUT");
});
