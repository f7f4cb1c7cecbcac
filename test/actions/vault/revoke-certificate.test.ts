import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  actions,
  provider,
  revokeCertificateAction,
  revokeCertificateConfigSchema,
  vaultProvider,
  vaultProviderSchema,
  type VaultClient,
} from "../../../src/actions/vault/index.ts";
import type { ActionRequest } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { MASK } from "../../../src/util/redact.ts";
import { actionContext, attempt, providerContext, request } from "../../helpers/action-context.ts";
import { fakeFingerprint, FakeVault, vaultRateLimited, type VaultPolicy } from "../../helpers/fakes/vault.ts";

const TOKEN = "hvs.CAESIvigil-test-token-0123456789";
const READ_ONLY_TOKEN = "hvs.CAESIread-only-token-9876543210";
const POLICY: VaultPolicy = { "pki/revoke": ["update"], "pki/cert/*": ["read"] };
const SERIAL = "39:dd:2e:90:b7:23:1f:8d:d3:7d:31:c5:1b:da:84:d0:5b:65:31:58";

function client(base: string, extra: Record<string, unknown> = {}): VaultClient {
  const config = vaultProviderSchema.parse({ address: base, token: TOKEN, ...extra });
  return vaultProvider.create(config, providerContext("vault"));
}

function action(c: VaultClient, config: Record<string, unknown> = {}) {
  return revokeCertificateAction.create(revokeCertificateConfigSchema.parse(config), actionContext(c));
}

function certRequest(attributes: Record<string, unknown> = { certificate_serial: SERIAL }, evidence: Record<string, unknown> = {}): ActionRequest {
  const req = request({ access: "deny", policy: "web-to-api", subject: { id: "web", kind: "workload", attributes } });
  return { ...req, decision: { ...req.decision, evidence } };
}

function planned(plan: PlannedCall[]): { lines: string[]; bodies: unknown[] } {
  return { lines: plan.map((p) => `${p.method} ${new URL(p.url).pathname}${new URL(p.url).search}`), bodies: plan.map((p) => p.body) };
}

function received(fake: FakeVault): { lines: string[]; bodies: unknown[] } {
  return { lines: fake.api.lines(), bodies: fake.api.handled.map((r) => (r.body ? JSON.parse(r.body) : undefined)) };
}

describe("vault:revoke_certificate against a contract-enforcing Vault", () => {
  let fake: FakeVault;
  let base = "";

  before(async () => {
    fake = new FakeVault();
    base = await fake.start();
  });
  after(() => fake.stop());
  beforeEach(() => {
    fake.api.clear();
    fake.certificates.clear();
    fake.tokens.clear();
    fake.sealed = false;
    fake.tokens.set(TOKEN, POLICY);
    fake.tokens.set(READ_ONLY_TOKEN, { "pki/cert/*": ["read"] });
    fake.issue(SERIAL);
  });

  test("index exports the provider and the action", () => {
    assert.equal(provider, vaultProvider);
    assert.deepEqual(actions.map((a) => a.type), ["vault:revoke_certificate"]);
    assert.equal(revokeCertificateAction.revertible, false);
    assert.equal(revokeCertificateAction.provider, "vault");
    assert.deepEqual(revokeCertificateAction.requiredPermissions, ['path "<mount>/revoke" { capabilities = ["update"] }', 'path "<mount>/cert/*" { capabilities = ["read"] }']);
    assert.ok(revokeCertificateConfigSchema.safeParse(Object.fromEntries(Object.entries(revokeCertificateAction.example).filter(([k]) => k !== "type"))).success);
  });

  test("apply revokes the certificate, reads it back, and sends exactly the plan", async () => {
    const a = action(client(base));
    const req = certRequest();
    const plan = a.plan(req);
    assert.equal(fake.api.requests.length, 0);
    const outcome = await a.apply(req);
    assert.equal(outcome.verified, true);
    assert.ok(fake.certificates.get(SERIAL)!.revocation_time > 0);
    assert.equal(outcome.detail?.["serial"], SERIAL);
    assert.equal(outcome.detail?.["serial_from"], "template");
    assert.match(String(outcome.detail?.["revoked_at"]), /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(received(fake), planned(plan));
    assert.deepEqual(fake.api.lines(), ["POST /v1/pki/revoke", `GET /v1/pki/cert/${SERIAL}`]);
    assert.deepEqual(plan[0]!.body, { serial_number: SERIAL });
  });

  test("the serial the certificate check put in the evidence wins over the template, in any spelling", async () => {
    const other = "0a:1b:2c:3d";
    fake.issue(other);
    const evidence = { checks: { certificate_validity: { status: "fail", evidence: { serial: "0A1B2C3D" } } } };
    const outcome = await action(client(base)).apply(certRequest({ certificate_serial: SERIAL }, evidence));
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.["serial"], other);
    assert.equal(outcome.detail?.["serial_from"], "evidence");
    assert.ok(fake.certificates.get(other)!.revocation_time > 0);
    assert.equal(fake.certificates.get(SERIAL)!.revocation_time, 0);

    const ignored = await action(client(base), { evidence_check: false }).apply(certRequest({ certificate_serial: SERIAL }, evidence));
    assert.equal(ignored.detail?.["serial"], SERIAL);
  });

  test("a serial from the evidence is revoked only when Vault holds the very certificate the check saw", async () => {
    // A workload presents a self-made certificate carrying the serial of one Vault issued to someone else.
    const victim = fake.issue("0a:1b:2c:3d");
    const forged = "f".repeat(64);
    const hostile = { checks: { certificate_validity: { status: "fail", evidence: { serial: "0a:1b:2c:3d", fingerprint_sha256: forged } } } };
    const r = await attempt(() => action(client(base)).apply(certRequest({}, hostile)));
    assert.equal(r.attempts, 1, "permanent: not retried");
    assert.ok(r.error instanceof VigilError && r.error.code === "VIGIL_ERR_ACTION_INPUT", String(r.error));
    assert.match((r.error as Error).message, /is not the one the check saw/);
    assert.equal(victim.revocation_time, 0, "the other certificate is not revoked");
    assert.deepEqual(fake.api.lines(), ["GET /v1/pki/cert/0a:1b:2c:3d"], "no revoke was sent");

    // A serial no certificate of the mount carries: nothing is revoked either.
    fake.api.clear();
    const unknown = { checks: { certificate_validity: { evidence: { serial: "de:ad:be:ef", fingerprint_sha256: forged } } } };
    await assert.rejects(action(client(base)).apply(certRequest({}, unknown)), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT" && /holds no certificate/.test(e.message));
    assert.deepEqual(fake.api.lines(), ["GET /v1/pki/cert/de:ad:be:ef"]);

    // The real one (its fingerprint in any spelling): read, revoke, read back, exactly as planned.
    fake.api.clear();
    const fp = fakeFingerprint(victim).toUpperCase().match(/../g)!.join(":");
    const genuine = { checks: { certificate_validity: { evidence: { serial: "0A1B2C3D", fingerprint_sha256: fp } } } };
    const a = action(client(base));
    const plan = a.plan(certRequest({}, genuine));
    const outcome = await a.apply(certRequest({}, genuine));
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.["fingerprint_sha256"], fakeFingerprint(victim));
    assert.ok(victim.revocation_time > 0);
    assert.deepEqual(received(fake), planned(plan));
    assert.deepEqual(fake.api.lines(), ["GET /v1/pki/cert/0a:1b:2c:3d", "POST /v1/pki/revoke", "GET /v1/pki/cert/0a:1b:2c:3d"]);
  });

  test("revoking twice is idempotent: Vault answers 200 with the first revocation time", async () => {
    const a = action(client(base));
    const first = await a.apply(certRequest());
    const at = fake.certificates.get(SERIAL)!.revocation_time;
    fake.now = () => at + 600;
    const second = await a.apply(certRequest({ certificate_serial: SERIAL.replaceAll(":", "-").toUpperCase() }));
    assert.equal(first.verified, true);
    assert.equal(second.verified, true);
    assert.equal(fake.certificates.get(SERIAL)!.revocation_time, at);
    assert.equal(second.detail?.["revoked_at"], first.detail?.["revoked_at"]);
    fake.now = () => Math.floor(Date.now() / 1000);
  });

  test("an expired certificate is not revoked: Vault's warning is reported and verified is false", async () => {
    fake.issue("77:01", { expired: true });
    const outcome = await action(client(base)).apply(certRequest({ certificate_serial: "7701" }));
    assert.equal(outcome.verified, false);
    assert.match(String((outcome.detail?.["warnings"] as string[])[0]), /already expired; refusing to add to CRL/);
  });

  test("an unknown serial is Vault's permanent 400, not retried", async () => {
    const r = await attempt(() => action(client(base)).apply(certRequest({ certificate_serial: "de:ad:be:ef" })));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal((r.error as UpstreamError).status, 400);
    assert.equal((r.error as UpstreamError).transient, false);
    assert.match((r.error as Error).message, /certificate with serial de:ad:be:ef not found/);
  });

  test("a missing or malformed serial is an input error before any request", async () => {
    for (const attributes of [{}, { certificate_serial: "not-a-serial" }, { certificate_serial: "00:00" }]) {
      const r = await attempt(() => action(client(base)).apply(certRequest(attributes)));
      assert.equal(r.attempts, 1);
      assert.ok(r.error instanceof VigilError);
      assert.equal((r.error as VigilError).code, "VIGIL_ERR_ACTION_INPUT");
    }
    assert.equal(fake.api.requests.length, 0);
  });

  test("a 429 from a rate-limit quota is retried with its Retry-After", async () => {
    fake.api.fail({ method: "POST" }, vaultRateLimited("pki/revoke", 7));
    const a = action(client(base));
    const r = await attempt(() => a.apply(certRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [7000]);
    assert.equal(r.value?.verified, true);
    assert.ok(fake.certificates.get(SERIAL)!.revocation_time > 0);
  });

  test("403 permission denied is permanent, one request", async () => {
    const r = await attempt(() => action(client(base, { token: READ_ONLY_TOKEN })).apply(certRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal((r.error as UpstreamError).status, 403);
    assert.equal((r.error as UpstreamError).transient, false);
    assert.match((r.error as Error).message, /permission denied/);
    assert.equal(fake.api.requests.length, 1);
    assert.equal(fake.certificates.get(SERIAL)!.revocation_time, 0);
  });

  test("a token that may revoke but not read: the revocation stands, verified is false with the reason", async () => {
    const REVOKE_ONLY = "hvs.CAESIrevoke-only-token-555555555";
    fake.tokens.set(REVOKE_ONLY, { "pki/revoke": ["update"] });
    const r = await attempt(() => action(client(base, { token: REVOKE_ONLY })).apply(certRequest()));
    assert.equal(r.attempts, 1);
    assert.equal(r.value?.verified, false);
    assert.match(String(r.value?.detail?.["verify_error"]), /403: .*permission denied/);
    assert.ok(fake.certificates.get(SERIAL)!.revocation_time > 0);
    assert.ok(!JSON.stringify(r.value).includes(REVOKE_ONLY));
  });

  test("a sealed Vault is transient; the circuit then opens and keeps calls away", async () => {
    fake.sealed = true;
    const c = client(base, { circuit: { failures: 2 } });
    const a = action(c);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(a.apply(certRequest()), (e: unknown) => e instanceof UpstreamError && e.transient && e.status === 503 && /Vault is sealed/.test(e.message));
    }
    const seen = fake.api.requests.length;
    await assert.rejects(a.apply(certRequest()), (e: unknown) => e instanceof UpstreamError && e.transient && /circuit open/.test(e.message));
    assert.equal(fake.api.requests.length, seen);
    assert.equal(c.breaker.state, "open");
  });

  test("dry run: plan() makes no request and masks the token", () => {
    const plan = action(client(base)).plan(certRequest());
    assert.equal(fake.api.requests.length, 0);
    assert.ok(!JSON.stringify(plan).includes(TOKEN));
    for (const p of plan) assert.equal(p.headers["X-Vault-Token"], MASK);
  });

  test("no revert: revocation is permanent", () => {
    const a = action(client(base));
    assert.equal(a.revert, undefined);
  });
});

describe("vault provider: namespace, mount and token_file", () => {
  let fake: FakeVault;
  let base = "";
  let dir = "";

  before(async () => {
    fake = new FakeVault({ namespace: "admin/team-a", mount: "pki_int" });
    base = await fake.start();
    dir = mkdtempSync(join(tmpdir(), "vigil-vault-"));
  });
  after(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.api.clear();
    fake.tokens.clear();
    fake.certificates.clear();
    fake.issue(SERIAL);
  });

  test("X-Vault-Namespace and the mount are used; without the namespace the mount is not found", async () => {
    fake.tokens.set(TOKEN, { "pki_int/revoke": ["update"], "pki_int/cert/*": ["read"] });
    const a = action(client(base, { namespace: "/admin/team-a/", mount: "pki_int" }));
    const plan = a.plan(certRequest());
    assert.equal(plan[0]!.headers["X-Vault-Namespace"], "admin/team-a");
    const outcome = await a.apply(certRequest());
    assert.equal(outcome.verified, true);
    assert.equal(fake.api.handled[0]!.headers["x-vault-namespace"], "admin/team-a");
    assert.deepEqual(fake.api.lines(), ["POST /v1/pki_int/revoke", `GET /v1/pki_int/cert/${SERIAL}`]);

    const r = await attempt(() => action(client(base, { mount: "pki_int" })).apply(certRequest()));
    assert.equal((r.error as UpstreamError).status, 404);
    assert.equal(r.attempts, 1);
  });

  test("token_file is read on use and again after the sink rotates it", async () => {
    const file = join(dir, "token");
    const first = "hvs.CAESIfirst-sink-token-000000001";
    const second = "hvs.CAESIsecond-sink-token-00000002";
    writeFileSync(file, `${first}\n`);
    fake.tokens.set(first, { "pki_int/revoke": ["update"], "pki_int/cert/*": ["read"] });
    const c = client(base, { token: undefined, token_file: file, namespace: "admin/team-a", mount: "pki_int" });
    const a = action(c);
    assert.equal((await a.apply(certRequest())).verified, true);
    assert.equal(fake.api.handled[0]!.headers["x-vault-token"], first);

    // The agent writes a new file and renames it over the old one; the old token is revoked.
    fake.tokens.delete(first);
    fake.tokens.set(second, { "pki_int/revoke": ["update"], "pki_int/cert/*": ["read"] });
    writeFileSync(`${file}.tmp`, second);
    renameSync(`${file}.tmp`, file);
    fake.api.clear();
    assert.equal((await a.apply(certRequest())).verified, true);
    assert.equal(fake.api.handled[0]!.headers["x-vault-token"], second);
    const plan = a.plan(certRequest());
    assert.ok(!JSON.stringify(plan).includes(second));
    assert.equal(plan[0]!.headers["X-Vault-Token"], MASK);
  });

  test("a missing token_file fails as a retryable error without reaching Vault", async () => {
    const a = action(client(base, { token: undefined, token_file: join(dir, "absent"), namespace: "admin/team-a", mount: "pki_int" }));
    const r = await attempt(() => a.apply(certRequest()), 2);
    assert.equal(r.attempts, 2);
    assert.match((r.error as Error).message, /token_file .*ENOENT/);
    assert.equal(fake.api.requests.length, 0);
  });
});

describe("vault provider config", () => {
  test("address is required and exactly one of token and token_file", () => {
    assert.equal(vaultProviderSchema.safeParse({}).success, false);
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200" }).success, false);
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200", token: "a", token_file: "/t" }).success, false);
    const ok = vaultProviderSchema.parse({ address: "https://vault:8200", token_file: "/run/vault/token" });
    assert.equal(ok.mount, "pki");
    assert.equal(ok.timeout, 10_000);
    assert.ok(vaultProviderSchema.safeParse(vaultProvider.example).success);
  });

  test("unknown keys and bad mounts are rejected", () => {
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200", token: "t", role: "x" }).success, false);
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200", token: "t", mount: "pki/../sys" }).success, false, "URL normalization would turn this into sys/");
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200", token: "t", mount: "." }).success, false);
    assert.equal(vaultProviderSchema.parse({ address: "https://vault:8200", token: "t", mount: "/pki.v2/int/" }).mount, "pki.v2/int");
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200", token: "t", namespace: "admin/../root" }).success, false);
    assert.equal(vaultProviderSchema.safeParse({ address: "https://vault:8200", token: "t", mount: "pki revoke" }).success, false);
    assert.equal(revokeCertificateConfigSchema.safeParse({ type: "vault:revoke_certificate" }).success, false);
    assert.equal(revokeCertificateConfigSchema.safeParse({ evidence_check: "Cert Check" }).success, false);
  });

  test("create without a vault provider is a clear error", () => {
    assert.throws(() => revokeCertificateAction.create(revokeCertificateConfigSchema.parse({}), actionContext(undefined)), /needs a vault provider/);
  });
});
