import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as entra from "../../../src/actions/entra/index.ts";
import { entraClient, entraProvider } from "../../../src/actions/entra/client.ts";
import { entraConfigSchema, scopeFor, tokenUrlFor } from "../../../src/actions/entra/config.ts";
import { revokeSessionsAction } from "../../../src/actions/entra/revoke-sessions.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { actionContext, attempt } from "../../helpers/action-context.ts";
import { CLIENT_ID, CLIENT_SECRET, TENANT } from "../../helpers/fakes/entra.ts";
import { aliceRequest, assertNoSecrets, certificateCredential, currentToken, tenant, type Tenant } from "./setup.ts";

const REVOKE = /\/revokeSignInSessions$/;
const base = { tenant_id: TENANT, client_id: CLIENT_ID, auth: { client_secret: CLIENT_SECRET } };

describe("providers.entra config", () => {
  test("fills the documented defaults", () => {
    const c = entraConfigSchema.parse(base);
    assert.equal(c.login_url, "https://login.microsoftonline.com");
    assert.equal(c.graph_url, "https://graph.microsoft.com/v1.0");
    assert.equal(c.timeout, 10_000);
    assert.deepEqual(c.circuit, { failures: 5, open_for: 30_000, max_open_for: 300_000 });
  });

  test("takes a verified domain as tenant, national-cloud URLs, and strips trailing slashes", () => {
    const c = entraConfigSchema.parse({ ...base, tenant_id: "contoso.onmicrosoft.com", login_url: "https://login.microsoftonline.us/", graph_url: "https://graph.microsoft.us/v1.0/", timeout: "30s" });
    assert.equal(c.login_url, "https://login.microsoftonline.us");
    assert.equal(c.graph_url, "https://graph.microsoft.us/v1.0");
    assert.equal(tokenUrlFor(c.login_url, c.tenant_id), "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert.equal(scopeFor(c.graph_url), "https://graph.microsoft.us/.default");
    assert.equal(c.timeout, 30_000);
  });

  test("accepts a certificate credential whose key matches", async () => {
    const cred = await certificateCredential();
    assert.equal(entraConfigSchema.safeParse({ ...base, auth: cred }).success, true);
  });

  test("the provider example validates; an empty entry does not (tenant and app are required)", () => {
    assert.equal(entraConfigSchema.safeParse(entraProvider.example).success, true);
    assert.equal(entraConfigSchema.safeParse({}).success, false);
  });

  const bad: [string, Record<string, unknown>][] = [
    ["no tenant", { client_id: CLIENT_ID, auth: base.auth }],
    ["a multi-tenant alias", { ...base, tenant_id: "organizations" }],
    ["a tenant that is neither GUID nor domain", { ...base, tenant_id: "not a tenant" }],
    ["a client id that is no GUID", { ...base, client_id: "vigil" }],
    ["no auth", { tenant_id: TENANT, client_id: CLIENT_ID }],
    ["an empty auth", { ...base, auth: {} }],
    ["both a secret and a certificate", { ...base, auth: { client_secret: "x", certificate: "a", private_key: "b" } }],
    ["a certificate without its key", { ...base, auth: { certificate: "a" } }],
    ["text that is no PEM", { ...base, auth: { certificate: "not a certificate", private_key: "not a key" } }],
    ["an unknown auth key", { ...base, auth: { client_secret: "x", password: "y" } }],
    ["plain http to a remote host", { ...base, graph_url: "http://graph.example.com/v1.0" }],
    ["a base URL with a query", { ...base, login_url: "https://login.microsoftonline.com/?x=1" }],
    ["an unknown key", { ...base, resource: "https://graph.microsoft.com" }],
    ["a bad timeout", { ...base, timeout: "ten seconds" }],
    ["a bad circuit", { ...base, circuit: { failures: 0 } }],
  ];
  for (const [what, input] of bad) {
    test(`refuses ${what}`, () => {
      assert.equal(entraConfigSchema.safeParse(input).success, false);
    });
  }

  test("refuses a key that does not belong to the certificate, and non-RSA keys, without quoting either", async () => {
    const a = await certificateCredential("a");
    const b = await certificateCredential("b");
    const mismatch = entraConfigSchema.safeParse({ ...base, auth: { certificate: a.certificate, private_key: b.private_key } });
    assert.equal(mismatch.success, false);
    assert.match(JSON.stringify(mismatch.error!.issues), /does not belong to the certificate/);
    assert.ok(!JSON.stringify(mismatch.error!.issues).includes("PRIVATE KEY"));
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const notRsa = entraConfigSchema.safeParse({ ...base, auth: { certificate: a.certificate, private_key: ec } });
    assert.equal(notRsa.success, false);
    assert.match(JSON.stringify(notRsa.error!.issues), /RSA/);
  });
});

describe("entra provider: tokens", () => {
  let t: Tenant;
  afterEach(() => t.close());

  const revoke = () => revokeSessionsAction.create(revokeSessionsAction.configSchema.parse({}), t.ctx);

  test("concurrent calls share one token request", async () => {
    t = await tenant();
    const action = revoke();
    const outs = await Promise.all(Array.from({ length: 10 }, () => action.apply(aliceRequest())));
    assert.ok(outs.every((o) => o.verified === true));
    assert.equal(t.fake.tokenRequests, 1);
    assert.equal(t.client.credentials.requests, 1);
  });

  test("sequential calls reuse the cached token", async () => {
    t = await tenant();
    const action = revoke();
    for (let i = 0; i < 5; i++) await action.apply(aliceRequest());
    assert.equal(t.fake.tokenRequests, 1);
    assert.equal(t.fake.graphLines().length, 5);
  });

  test("the token request is client_secret_post with the Graph .default scope", async () => {
    t = await tenant();
    await revoke().apply(aliceRequest());
    const form = new URLSearchParams(t.fake.requests.find((r) => r.path.endsWith("/oauth2/v2.0/token"))!.body);
    assert.equal(form.get("grant_type"), "client_credentials");
    assert.equal(form.get("client_id"), CLIENT_ID);
    assert.equal(form.get("client_secret"), CLIENT_SECRET);
    assert.equal(form.get("scope"), `${t.fake.base}/.default`);
  });

  test("a token is fetched again shortly before it expires, never used expired", async () => {
    t = await tenant();
    const action = revoke();
    await action.apply(aliceRequest());
    t.clock.advance(3599_000 - 30_000); // inside the refresh margin
    await action.apply(aliceRequest());
    assert.equal(t.fake.tokenRequests, 2);
    t.clock.advance(3600_000); // long past the second token's expiry
    await action.apply(aliceRequest());
    assert.equal(t.fake.tokenRequests, 3);
    assert.equal(t.fake.requests.filter((r) => r.path.startsWith("/v1.0/")).length, 3, "no Graph call was refused as expired");
  });

  test("a 401 from Graph drops the cached token, fetches a new one and succeeds", async () => {
    t = await tenant();
    const action = revoke();
    await action.apply(aliceRequest());
    const first = await currentToken(t.client);
    t.fake.revokeTokens();
    const out = await action.apply(aliceRequest());
    assert.equal(out.verified, true);
    assert.equal(t.fake.tokenRequests, 2);
    assert.notEqual(await currentToken(t.client), first);
    const graph = t.fake.graphRequests();
    assert.equal(graph.length, 3, "the refused call and its retry");
    assert.equal(graph[1]!.headers.authorization, `Bearer ${first}`);
  });

  test("a wrong client secret is a permanent error that does not print the secret", async () => {
    t = await tenant({ provider: { auth: { client_secret: "wrong-secret-value-0123456789" } } });
    const r = await attempt(() => revoke().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.transient, false);
    assert.match(r.error.message, /AADSTS7000215/);
    assert.ok(!r.error.message.includes("wrong-secret-value-0123456789"));
    assert.equal(t.fake.graphRequests().length, 0);
  });

  test("a certificate credential signs a private_key_jwt assertion the identity platform accepts", async () => {
    const cred = await certificateCredential();
    t = await tenant({ fake: { certificate: cred.certificate, clientSecret: undefined }, provider: { auth: cred } });
    const action = revoke();
    assert.equal((await action.apply(aliceRequest())).verified, true);
    const form = new URLSearchParams(t.fake.requests.find((r) => r.path.endsWith("/oauth2/v2.0/token"))!.body);
    assert.equal(form.get("client_secret"), null);
    assert.equal(form.get("client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    assert.equal(form.get("client_id"), CLIENT_ID);
    const header = JSON.parse(Buffer.from(form.get("client_assertion")!.split(".")[0]!, "base64url").toString("utf8"));
    assert.equal(header.alg, "RS256");
    assert.equal(typeof header.x5t, "string");
    assertNoSecrets(action.plan(aliceRequest()), cred.private_key, await currentToken(t.client));
    // A second assertion after expiry carries a fresh jti (the fake refuses replays).
    t.clock.advance(3600_000);
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal(t.fake.tokenRequests, 2);
  });

  test("an assertion signed by a certificate the app does not hold is refused as invalid_client", async () => {
    const registered = await certificateCredential("registered");
    const other = await certificateCredential("other");
    t = await tenant({ fake: { certificate: registered.certificate, clientSecret: undefined }, provider: { auth: other } });
    const r = await attempt(() => revoke().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.status, 401);
    assert.match(r.error.message, /invalid_client/);
    assert.equal(t.fake.graphRequests().length, 0);
  });

  test("the circuit opens after repeated 503s and then fails fast without reaching Graph", async () => {
    t = await tenant({ provider: { circuit: { failures: 3, open_for: "30s" } } });
    t.fake.unavailable({ path: REVOKE }, 3, 1);
    const action = revoke();
    for (let i = 0; i < 3; i++) {
      const r = await attempt(() => action.apply(aliceRequest()), 1);
      assert.equal((r.error as UpstreamError).status, 503);
    }
    assert.equal(t.client.breaker.state, "open");
    const before = t.fake.graphRequests().length;
    const fast = await attempt(() => action.apply(aliceRequest()), 1);
    assert.ok(fast.error instanceof UpstreamError);
    assert.equal(fast.error.transient, true);
    assert.match(fast.error.message, /circuit open/);
    assert.ok((fast.error.retryAfterMs ?? 0) > 0);
    assert.equal(t.fake.graphRequests().length, before, "the open circuit let a call through");
    // After the open period one trial goes through and closes the circuit.
    t.clock.advance(30_000);
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal(t.client.breaker.state, "closed");
  });
});

describe("entra provider: the fake holds Graph's contract", () => {
  let t: Tenant;
  afterEach(() => t.close());

  test("refuses calls without a valid token, wrong body shapes and wrong scopes, in Graph's and Entra's error formats", async () => {
    t = await tenant();
    const url = `${t.fake.graphUrl}/users/${encodeURIComponent("alice@contoso.example")}`;
    const noToken = await fetch(url, { method: "PATCH", body: "{}" });
    assert.equal(noToken.status, 401);
    assert.equal(((await noToken.json()) as { error: { code: string } }).error.code, "InvalidAuthenticationToken");
    const token = await currentToken(t.client);
    const auth = { Authorization: `Bearer ${token}` };
    const noType = await fetch(url, { method: "PATCH", headers: auth, body: JSON.stringify({ accountEnabled: false }) });
    assert.equal(noType.status, 400);
    const wrongShape = await fetch(url, { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ accountEnabled: "no" }) });
    assert.equal(wrongShape.status, 400);
    const err = ((await wrongShape.json()) as { error: { code: string; message: string; innerError: Record<string, string> } }).error;
    assert.equal(err.code, "Request_BadRequest");
    assert.ok(err.innerError["request-id"]);
    const badScope = await fetch(t.fake.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: CLIENT_ID, client_secret: CLIENT_SECRET, scope: "https://graph.microsoft.com/User.Read.All" }).toString(),
    });
    assert.equal(badScope.status, 400);
    assert.equal(((await badScope.json()) as { error: string }).error, "invalid_scope");
    t.clock.advance(3600_000);
    const expired = await fetch(url, { headers: auth });
    assert.equal(expired.status, 401);
    assert.equal(t.fake.users.get("0f8a1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a6b")!.accountEnabled, true);
  });
});

describe("entra provider folder", () => {
  test("exports the provider and its four actions", () => {
    assert.equal(entra.provider, entraProvider);
    assert.deepEqual(
      entra.actions.map((a) => a.type),
      ["entra:revoke_sessions", "entra:confirm_compromised", "entra:disable_account", "entra:group_downgrade"],
    );
    for (const a of entra.actions) {
      assert.equal(a.provider, "entra");
      assert.ok(a.requiredPermissions.length > 0);
      const { type: _type, ...example } = a.example;
      assert.equal(a.configSchema.safeParse(example).success, true, a.type);
      for (const engineKey of ["type", "name", "dry_run", "provider"]) assert.equal(a.configSchema.safeParse({ ...example, [engineKey]: "x" }).success, false, `${a.type} accepts ${engineKey}`);
    }
  });

  test("an action without an entra provider fails with a clear error", () => {
    assert.throws(() => revokeSessionsAction.create(revokeSessionsAction.configSchema.parse({}), actionContext(undefined)), /needs an entra provider/);
    const other = { name: "okta", type: "okta" } as never;
    assert.throws(() => entraClient({ ...actionContext(undefined), provider: other }, "entra:revoke_sessions"), /providers\.okta is of type okta/);
  });
});
