import "reflect-metadata";
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { metrics, trace } from "@opentelemetry/api";
import { certificateValidityCheck, certificateValidityConfigSchema, expectedIdentity } from "../../../src/checks/certificate_validity/index.ts";
import { createHttpClient } from "../../../src/net/http.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import type { Subject } from "../../../src/policy/model.ts";

x509.cryptoProvider.set(webcrypto);
const DAY = 86_400_000;
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const NOW = Date.now();
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vigil-certcheck-"));
  const gen = () => webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]) as Promise<webcrypto.CryptoKeyPair>;
  const caKeys = await gen();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: "CN=test root", notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 3650 * DAY), keys: caKeys, signingAlgorithm: alg,
    // A subject key identifier on the root and an authority key identifier on the leaves, and no CN that
    // would have to copy a SAN: the default (strict) profile's conditions, which these tests are not about.
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey)],
  });
  const leaf = async (id: string, serial: string, days: number, spiffe: string) => {
    const keys = await gen();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial, subject: `O=${id}`, issuer: ca.subject, notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + days * DAY),
      signingKey: caKeys.privateKey, publicKey: keys.publicKey, signingAlgorithm: alg,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]), new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffe }]), await x509.AuthorityKeyIdentifierExtension.create(ca)],
    });
    writeFileSync(join(dir, `${id}.pem`), cert.toString("pem"));
  };
  await leaf("good", "a1", 90, "spiffe://t/good");
  await leaf("soon", "a2", 5, "spiffe://t/soon");
  await leaf("revoked", "a3", 90, "spiffe://t/revoked");
  await leaf("impostor", "a4", 90, "spiffe://t/someone-else");
  writeFileSync(join(dir, "garbage.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  writeFileSync(join(dir, "root.pem"), ca.toString("pem"));
  const crl = await x509.X509CrlGenerator.create({ issuer: ca.subject, thisUpdate: new Date(NOW - 60_000), nextUpdate: new Date(NOW + 7 * DAY), entries: [{ serialNumber: "a3", revocationDate: new Date(NOW - 3600_000) }], signingKey: caKeys.privateKey, signingAlgorithm: alg });
  writeFileSync(join(dir, "root.crl"), x509.PemConverter.encode(crl.rawData, "X509 CRL"));
  const reissued = await x509.X509CrlGenerator.create({ issuer: ca.subject, thisUpdate: new Date(NOW - 30_000), nextUpdate: new Date(NOW + 7 * DAY), entries: [{ serialNumber: "a3", revocationDate: new Date(NOW - 3600_000) }, { serialNumber: "a1", revocationDate: new Date(NOW - 60_000) }], signingKey: caKeys.privateKey, signingAlgorithm: alg });
  writeFileSync(join(dir, "root-reissued.crl"), x509.PemConverter.encode(reissued.rawData, "X509 CRL"));
});

const subject = (id: string, identity = `spiffe://t/${id}`): Subject => ({ id, kind: "workload", identity, attributes: {}, labels: {} });

async function run(ids: Subject[], overrides: Record<string, unknown> = {}) {
  const config = certificateValidityConfigSchema.parse({
    trust_bundle: "root.pem",
    source: { type: "file", paths: ["{{id}}.pem"] },
    purpose: "client",
    revocation: { mode: "crl", crl_files: ["root.crl"] },
    ...overrides,
  });
  const http = createHttpClient();
  const clock = new FakeClock(NOW);
  const ctx = { clock, logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
  try {
    const check = certificateValidityCheck.create(config, ctx);
    const results = await check.run(ids, { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 });
    return new Map(results.map((r) => [r.subject, r]));
  } finally {
    await http.close();
  }
}

test("each subject's certificate gives the verdict and reason code the rules say", async () => {
  const r = await run([subject("good"), subject("soon"), subject("revoked"), subject("impostor"), subject("missing"), subject("garbage")]);
  const got = (id: string) => [r.get(id)!.status, r.get(id)!.reasons[0]?.code];
  assert.deepEqual(got("good"), ["pass", undefined]);
  assert.deepEqual(got("soon"), ["warn", "CERT_EXPIRING"]);
  assert.deepEqual(got("revoked"), ["fail", "CERT_REVOKED"]);
  assert.deepEqual(got("impostor"), ["fail", "CERT_NAME_MISMATCH"]);
  assert.deepEqual(got("missing"), ["unknown", "CERT_SOURCE_UNAVAILABLE"]);
  assert.deepEqual(got("garbage"), ["fail", "CERT_MALFORMED"]);
});

test("results carry evidence and ask to be re-checked at the warning point or at expiry", async () => {
  const r = await run([subject("good"), subject("soon")]);
  const good = r.get("good")!;
  assert.equal(good.evidence!.serial, "a1");
  assert.equal(good.evidence!.origin, `file:${join(dir, "good.pem")}`);
  assert.deepEqual((good.evidence!.revocation as { status: string }).status, "good");
  const notAfter = Date.parse(String(good.evidence!.not_after));
  assert.equal(good.next_run_at, notAfter - 14 * DAY);
  const soon = r.get("soon")!;
  assert.equal(soon.next_run_at, Date.parse(String(soon.evidence!.not_after)));
});

test("an untrusted anchor, a different purpose and match_identity off change the verdict", async () => {
  // An anchor that did not issue it (another leaf) leaves no path.
  const untrusted = await run([subject("good")], { trust_bundle: "soon.pem" });
  assert.equal(untrusted.get("good")!.reasons[0]?.code, "CERT_UNTRUSTED");
  const server = await run([subject("good")], { purpose: "server" });
  assert.equal(server.get("good")!.reasons[0]?.code, "CERT_PURPOSE");
  const anyone = await run([subject("impostor")], { match_identity: false });
  assert.equal(anyone.get("impostor")!.status, "pass");
});

test("the expected identity follows the form of the subject's identity", () => {
  const s = (identity: string) => expectedIdentity(subject("x", identity));
  assert.deepEqual(s("spiffe://example.org/ns/a/sa/b"), { uri: "spiffe://example.org/ns/a/sa/b" });
  assert.deepEqual(s("10.0.0.1"), { ip: "10.0.0.1" });
  assert.deepEqual(s("alice@example.org"), { email: "alice@example.org" });
  assert.deepEqual(s("api.example.org"), { dns: "api.example.org" });
  assert.equal(expectedIdentity({ ...subject("x"), identity: undefined } as Subject), undefined);
});

test("config: unknown keys and bad values are refused with their paths", () => {
  const r = certificateValidityConfigSchema.safeParse({ trust_bundle: "r.pem", source: { type: "file", paths: ["x"] }, warn_before: "2 weeks", revocation: { mode: "sometimes" }, colour: 1 });
  assert.equal(r.success, false);
  const paths = r.error!.issues.map((i) => i.path.join("."));
  for (const p of ["warn_before", "revocation.mode", ""]) assert.ok(paths.includes(p), `${p} in ${JSON.stringify(paths)}`);
});

test("runs for different policies do not drop each other's certificate metrics", async () => {
  const { Telemetry } = await import("../../../src/telemetry/metrics.ts");
  const telemetry = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
  const http = createHttpClient();
  try {
    const config = certificateValidityConfigSchema.parse({ trust_bundle: "root.pem", source: { type: "file", paths: ["{{id}}.pem"] }, purpose: "client", revocation: { mode: "crl", crl_files: ["root.crl"] } });
    const ctx = { clock: new FakeClock(NOW), logger: silentLogger(), meter: telemetry.meter, tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
    const check = certificateValidityCheck.create(config, ctx);
    const runCtx = { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 };
    await check.run([subject("good")], runCtx);
    await check.run([subject("revoked")], runCtx);
    const body = await (await fetch(`http://127.0.0.1:${telemetry.address!.port}/metrics`)).text();
    assert.match(body, /vigil_certificate_revoked\{[^}]*subject="good"[^}]*\} 0/);
    assert.match(body, /vigil_certificate_revoked\{[^}]*subject="revoked"[^}]*\} 1/);
  } finally {
    await http.close();
    await telemetry.stop();
  }
});

test("a CRL reissued on disk is picked up by the next run of the same check", async () => {
  const { copyFileSync } = await import("node:fs");
  copyFileSync(join(dir, "root.crl"), join(dir, "current.crl"));
  const config = certificateValidityConfigSchema.parse({ trust_bundle: "root.pem", source: { type: "file", paths: ["{{id}}.pem"] }, purpose: "client", revocation: { mode: "crl", crl_files: ["current.crl"] } });
  const http = createHttpClient();
  const ctx = { clock: new FakeClock(NOW), logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
  try {
    const check = certificateValidityCheck.create(config, ctx);
    const runCtx = { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 };
    assert.equal((await check.run([subject("good")], runCtx))[0]!.status, "pass");
    copyFileSync(join(dir, "root-reissued.crl"), join(dir, "current.crl"));
    const [after] = await check.run([subject("good")], runCtx);
    assert.equal(after!.reasons[0]?.code, "CERT_REVOKED");
  } finally {
    await http.close();
  }
});
