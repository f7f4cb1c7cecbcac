/** What the Entra action tests share: a started fake tenant, an `entra` provider client pointed at it, and plan/recording helpers. */
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { entraProvider, type EntraClient } from "../../../src/actions/entra/client.ts";
import type { ActionContext, ActionRequest } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import { actionContext, providerContext, request } from "../../helpers/action-context.ts";
import { FakeEntra, type FakeEntraOptions } from "../../helpers/fakes/entra.ts";

export const ALICE = { id: "0f8a1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a6b", userPrincipalName: "alice@contoso.example" };
export const BOB = { id: "9e8d7c6b-5a49-4838-a726-15f4e3d2c1b0", userPrincipalName: "bob@contoso.example" };
export const FULL_GROUP = "11111111-aaaa-4bbb-8ccc-000000000001";
export const READ_ONLY_GROUP = "22222222-aaaa-4bbb-8ccc-000000000002";

export interface Tenant {
  readonly fake: FakeEntra;
  readonly clock: FakeClock;
  readonly client: EntraClient;
  readonly ctx: ActionContext;
  close(): Promise<void>;
}

/** A fake tenant holding alice and bob, and a provider client for it. */
export async function tenant(options: { fake?: FakeEntraOptions; provider?: Record<string, unknown> } = {}): Promise<Tenant> {
  const clock = new FakeClock("2026-11-24T10:00:00Z");
  const fake = new FakeEntra({ now: () => clock.now(), ...options.fake });
  await fake.start();
  fake.addUser(ALICE);
  fake.addUser(BOB);
  const pctx = providerContext("entra", clock);
  const client = entraProvider.create(entraProvider.configSchema.parse(fake.providerConfig(options.provider)), pctx);
  const ctx = actionContext(client, clock);
  return {
    fake,
    clock,
    client,
    ctx,
    async close() {
      await client.close();
      await pctx.http.close();
      await ctx.http.close();
      await fake.stop();
    },
  };
}

/** A request for alice, whose object id is in `attributes.entra_id`. */
export function aliceRequest(operation: "apply" | "revert" = "apply", access: ActionRequest["decision"]["access"] = "deny"): ActionRequest {
  return request({ subject: { id: "alice", identity: ALICE.userPrincipalName, attributes: { entra_id: ALICE.id } }, operation, access });
}

/** Asserts the plan is exactly what the fake received since `from`: method, path and query, body. */
export function assertPlanSent(fake: FakeEntra, plan: readonly PlannedCall[], from = 0): void {
  const sent = fake.handled.filter((r) => r.path.startsWith("/v1.0/")).slice(from);
  assert.deepEqual(
    plan.map((p) => `${p.method} ${p.url.slice(fake.base.length)}`),
    sent.map((r) => `${r.method} ${r.url}`),
  );
  plan.forEach((p, i) => {
    const body = sent[i]!.body;
    assert.deepEqual(p.body, body === "" ? undefined : JSON.parse(body), `body of call ${i}`);
  });
}

/** Asserts no secret or token reaches the plan. */
export function assertNoSecrets(plan: readonly PlannedCall[], ...secrets: string[]): void {
  const text = JSON.stringify(plan);
  for (const s of secrets) assert.ok(!text.includes(s), "a secret appears in the plan");
  for (const p of plan) if (p.headers.Authorization !== undefined) assert.equal(p.headers.Authorization, "[REDACTED]");
}

/** The bearer token the client holds now (fetching one if needed). */
export function currentToken(client: EntraClient): Promise<string> {
  return client.credentials.token();
}

/** A self-signed RSA certificate and its PKCS#8 key, as PEM. */
export async function certificateCredential(commonName = "vigil-test"): Promise<{ certificate: string; private_key: string }> {
  await import("reflect-metadata"); // @peculiar/x509 needs it loaded first
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(webcrypto);
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${commonName}`,
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2027-12-31T00:00:00Z"),
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const private_key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
  return { certificate: cert.toString("pem"), private_key };
}
