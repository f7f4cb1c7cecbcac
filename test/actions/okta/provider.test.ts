import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { loadBuiltins } from "../../../src/actions/registry.ts";

const { actions: builtinActions, providers: builtinProviders } = await loadBuiltins();
import { clearSessionsAction } from "../../../src/actions/okta/clear-sessions.ts";
import { groupDowngradeAction } from "../../../src/actions/okta/group-downgrade.ts";
import { suspendAction } from "../../../src/actions/okta/suspend.ts";
import { DEFAULT_SCOPES, oktaProviderSchema } from "../../../src/actions/okta/config.ts";
import { oktaProvider } from "../../../src/actions/okta/provider.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { OktaFake } from "../../helpers/fakes/okta.ts";
import { API_TOKEN, assertNoSecrets, assertPlanMatchesSent, CLIENT_ID, ecKeys, rsaKeys, startOrg } from "./setup.ts";

const USER = "00u1alice0000000x7";
const FULL = "00g1fullAccess0000x7";
const RO = "00g1readOnly000000x7";
const alice = (operation: "apply" | "revert" = "apply") => request({ subject: { id: "alice", attributes: { okta_id: USER } }, operation });

function seed(fake: OktaFake): void {
  fake.addUser(USER);
  fake.addGroup(FULL);
  fake.addGroup(RO);
  fake.addMember(FULL, USER);
}

describe("providers.okta config", () => {
  const ssws = { type: "ssws", token: API_TOKEN };
  const parse = (v: unknown) => oktaProviderSchema.safeParse(v);

  test("normalises the org URL and fills defaults", () => {
    const c = oktaProviderSchema.parse({ org_url: "https://example.okta.com/", auth: ssws });
    assert.equal(c.org_url, "https://example.okta.com");
    assert.equal(c.timeout, 10_000);
    assert.deepEqual(c.circuit, { failures: 5, open_for: 30_000, max_open_for: 300_000 });
  });

  test("OAuth defaults: the scopes the actions need", () => {
    const c = oktaProviderSchema.parse({ org_url: "https://example.okta.com", auth: { type: "oauth", client_id: CLIENT_ID, private_key: rsaKeys().privateKey } });
    assert.equal(c.auth.type, "oauth");
    assert.deepEqual(c.auth.type === "oauth" && c.auth.scopes, [...DEFAULT_SCOPES]);
    assert.deepEqual([...DEFAULT_SCOPES], ["okta.users.manage", "okta.groups.manage"]);
  });

  test("http only for loopback", () => {
    assert.equal(parse({ org_url: "http://example.okta.com", auth: ssws }).success, false);
    assert.equal(parse({ org_url: "http://127.0.0.1:8443", auth: ssws }).success, true);
    assert.equal(parse({ org_url: "http://localhost:8443", auth: ssws }).success, true);
    assert.equal(parse({ org_url: "http://[::1]:8443", auth: ssws }).success, true);
  });

  const bad: [string, unknown][] = [
    ["an empty entry", {}],
    ["a missing auth", { org_url: "https://example.okta.com" }],
    ["a path in the org URL", { org_url: "https://example-admin.okta.com/admin/dashboard", auth: ssws }],
    ["a query in the org URL", { org_url: "https://example.okta.com?x=1", auth: ssws }],
    ["credentials in the org URL", { org_url: "https://u:p@example.okta.com", auth: ssws }],
    ["not a URL", { org_url: "example.okta.com", auth: ssws }],
    ["an unknown auth type", { org_url: "https://example.okta.com", auth: { type: "basic", token: "x" } }],
    ["an empty token", { org_url: "https://example.okta.com", auth: { type: "ssws", token: "" } }],
    ["a token with a line break", { org_url: "https://example.okta.com", auth: { type: "ssws", token: "abc\r\nX-Evil: 1" } }],
    ["an unknown auth key", { org_url: "https://example.okta.com", auth: { ...ssws, client_id: "x" } }],
    ["an unknown provider key", { org_url: "https://example.okta.com", auth: ssws, retries: 3 }],
    ["a bad timeout", { org_url: "https://example.okta.com", auth: ssws, timeout: "10 seconds" }],
    ["a too long timeout", { org_url: "https://example.okta.com", auth: ssws, timeout: "6m" }],
    ["OAuth without a client id", { org_url: "https://example.okta.com", auth: { type: "oauth", private_key: "x" } }],
    ["OAuth with an http token URL", { org_url: "https://example.okta.com", auth: { type: "oauth", client_id: CLIENT_ID, private_key: "-", token_url: "http://example.okta.com/oauth2/v1/token" } }],
    ["OAuth with empty scopes", { org_url: "https://example.okta.com", auth: { type: "oauth", client_id: CLIENT_ID, private_key: "-", scopes: [] } }],
  ];
  for (const [what, input] of bad) {
    test(`rejects ${what}`, () => {
      assert.equal(parse(input).success, false);
    });
  }

  test("rejects private keys it cannot sign with, without quoting them", () => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384", privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
    const garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----";
    for (const key of [weak, p384, garbage, "secret-but-not-a-key-123"]) {
      const r = parse({ org_url: "https://example.okta.com", auth: { type: "oauth", client_id: CLIENT_ID, private_key: key } });
      assert.equal(r.success, false);
      assert.ok(!JSON.stringify(r.error).includes(key.slice(40, 80) || key), "the key appears in the error");
    }
    assert.equal(parse({ org_url: "https://example.okta.com", auth: { type: "oauth", client_id: CLIENT_ID, private_key: ecKeys().privateKey, key_id: "k1" } }).success, true);
  });

  test("the example validates; the factory and its actions are registered", () => {
    assert.equal(oktaProviderSchema.safeParse(oktaProvider.example).success, true);
    assert.ok(builtinProviders.some((p) => (p as { type: string }).type === "okta"));
    const types = builtinActions.map((a) => (a as { type: string }).type);
    for (const t of ["okta:clear_sessions", "okta:suspend", "okta:group_downgrade"]) assert.ok(types.includes(t), t);
    for (const a of [clearSessionsAction, suspendAction, groupDowngradeAction]) {
      assert.equal(a.provider, "okta");
      assert.ok(a.requiredPermissions.length > 0);
      assert.equal(a.example.type, a.type);
    }
  });
});

describe("okta provider with an SSWS token", () => {
  test("a wrong token is a permanent 401 (E0000011), sent once", async () => {
    const org = await startOrg({ fake: { apiToken: "the-right-token-000000000" } });
    try {
      seed(org.fake);
      const action = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      const result = await attempt(() => action.apply(alice()));
      assert.equal(result.attempts, 1);
      assert.ok(result.error instanceof UpstreamError && result.error.status === 401 && !result.error.transient);
      assert.match(result.error.message, /E0000011/);
      assert.ok(!result.error.message.includes(API_TOKEN));
      assert.equal(org.fake.api.requests.length, 1);
    } finally {
      await org.close();
    }
  });

  test("the circuit opens after repeated 5xx and a further call fails fast without reaching Okta", async () => {
    const org = await startOrg({ provider: { circuit: { failures: 2, open_for: "30s" } } });
    try {
      seed(org.fake);
      org.fake.serverError({}, 503, 2);
      const action = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      for (let i = 0; i < 2; i++) {
        const err = await action.apply(alice()).catch((e: unknown) => e);
        assert.ok(err instanceof UpstreamError && err.transient && err.status === 503);
      }
      assert.equal(org.client.breaker.state, "open");
      const seen = org.fake.api.requests.length;
      const err = await action.apply(alice()).catch((e: unknown) => e);
      assert.ok(err instanceof UpstreamError && err.transient);
      assert.match(err.message, /circuit open/);
      assert.ok(err.retryAfterMs! > 0 && err.retryAfterMs! <= 30_000);
      assert.equal(org.fake.api.requests.length, seen, "the open circuit let a request through");
    } finally {
      await org.close();
    }
  });

  test("a 500 on the read is transient and the retry completes the suspension", async () => {
    const org = await startOrg();
    try {
      seed(org.fake);
      org.fake.serverError({ method: "GET" }, 500, 1);
      const action = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      const result = await attempt(() => action.apply(alice()));
      assert.equal(result.attempts, 2);
      assert.equal(org.fake.status(USER), "SUSPENDED");
    } finally {
      await org.close();
    }
  });
});

describe("okta provider with an OAuth service app (private_key_jwt)", () => {
  test("one token serves every action; plans hold neither the key nor the token", async () => {
    const keys = rsaKeys();
    const org = await startOrg({ auth: "oauth", keys, scopes: [...DEFAULT_SCOPES, "okta.universalLogout.manage"] });
    try {
      seed(org.fake);
      const sessions = clearSessionsAction.create(clearSessionsAction.configSchema.parse({ universal_logout: true }), org.ctx);
      const suspend = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      const groups = groupDowngradeAction.create(groupDowngradeAction.configSchema.parse({ full_group: FULL, read_only_group: RO }), org.ctx);
      await sessions.apply(alice());
      await suspend.apply(alice());
      await groups.apply(alice());
      assert.equal(org.fake.status(USER), "SUSPENDED");
      assert.deepEqual(org.fake.groupsOf(USER), [RO]);
      assert.deepEqual(org.fake.universalLogouts, [USER]);
      assert.equal(org.fake.tokenRequests, 1);
      assert.equal(org.client.tokens?.requests, 1);
      const token = await org.client.tokens!.token();
      for (const r of org.fake.apiRequests()) assert.equal(r.headers["authorization"], `Bearer ${token}`);

      org.fake.api.clear();
      const plan = suspend.plan(alice("revert"));
      assert.equal(plan[0]!.headers["Authorization"], "[REDACTED]");
      assertNoSecrets(JSON.stringify([plan, sessions.plan(alice()), groups.plan(alice())]), token, keys.privateKey, keys.privateKey.split("\n")[1]!);
      await suspend.revert!(alice("revert"));
      assertPlanMatchesSent(plan, org.fake);
    } finally {
      await org.close();
    }
  });

  test("the token is fetched again once it nears expiry, and the fake refuses an expired one", async () => {
    const clock = new FakeClock(Date.now());
    const org = await startOrg({ auth: "oauth", clock, fake: { tokenLifetimeSeconds: 600 } });
    try {
      seed(org.fake);
      const suspend = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      await suspend.apply(alice());
      const first = await org.client.tokens!.token();
      clock.advance(300_000);
      await suspend.revert!(alice("revert"));
      assert.equal(org.fake.tokensIssued, 1);
      clock.advance(300_001); // past expiry
      const expired = await fetch(`${org.fake.base}/api/v1/users/${USER}`, { headers: { Authorization: `Bearer ${first}` } });
      assert.equal(expired.status, 401);
      assert.equal(((await expired.json()) as { errorCode: string }).errorCode, "E0000011");
      await suspend.apply(alice());
      assert.equal(org.fake.tokensIssued, 2);
      assert.notEqual(await org.client.tokens!.token(), first);
    } finally {
      await org.close();
    }
  });

  test("a 401 drops the cached token: the call is repeated once with a fresh one", async () => {
    const org = await startOrg({ auth: "oauth" });
    try {
      seed(org.fake);
      const suspend = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      await suspend.apply(alice());
      org.fake.revokeTokens();
      org.fake.api.clear();
      const outcome = await suspend.revert!(alice("revert"));
      assert.equal(outcome.verified, true);
      assert.equal(org.fake.tokensIssued, 2);
      const lines = org.fake.api.requests.map((r) => `${r.method} ${r.path}`);
      assert.deepEqual(lines.slice(0, 3), [`GET /api/v1/users/${USER}`, "POST /oauth2/v1/token", `GET /api/v1/users/${USER}`]);
    } finally {
      await org.close();
    }
  });

  test("an EC P-256 key with a key id works (ES256)", async () => {
    const keys = ecKeys();
    const org = await startOrg({ auth: "oauth", keys, fake: { clients: [{ client_id: CLIENT_ID, publicKey: keys.publicKey, kid: "vigil-1", scopes: ["okta.users.manage", "okta.groups.manage"] }] }, provider: {} });
    try {
      // Registered with a kid: without key_id the fake refuses, with it the token is issued.
      seed(org.fake);
      const suspend = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      const refused = await attempt(() => suspend.apply(alice()));
      assert.ok(refused.error instanceof UpstreamError && refused.error.status === 401);
      const withKid = oktaProvider.create(
        oktaProviderSchema.parse({ org_url: org.fake.base, auth: { type: "oauth", client_id: CLIENT_ID, private_key: keys.privateKey, key_id: "vigil-1" } }),
        { ...org.ctx, name: "okta" },
      );
      const action = suspendAction.create(suspendAction.configSchema.parse({}), { ...org.ctx, provider: withKid });
      assert.equal((await action.apply(alice())).verified, true);
    } finally {
      await org.close();
    }
  });

  test("scopes the app is not granted are refused at the token endpoint (permanent)", async () => {
    const org = await startOrg({ auth: "oauth", granted: ["okta.users.manage"] });
    try {
      seed(org.fake);
      const suspend = suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);
      const result = await attempt(() => suspend.apply(alice()));
      assert.equal(result.attempts, 1);
      assert.ok(result.error instanceof UpstreamError && result.error.status === 400);
      assert.match(result.error.message, /invalid_scope/);
      assert.equal(org.fake.apiRequests().length, 0);
    } finally {
      await org.close();
    }
  });

  test("a token without the endpoint's scope gets 403 and is not retried", async () => {
    const org = await startOrg({ auth: "oauth", provider: {}, granted: ["okta.users.manage", "okta.groups.manage"] });
    const narrow = oktaProvider.create(
      oktaProviderSchema.parse({ org_url: org.fake.base, auth: { type: "oauth", client_id: CLIENT_ID, private_key: rsaKeys().privateKey, scopes: ["okta.users.manage"] } }),
      { ...org.ctx, name: "okta" },
    );
    try {
      seed(org.fake);
      const groups = groupDowngradeAction.create(groupDowngradeAction.configSchema.parse({ full_group: FULL, read_only_group: RO }), { ...org.ctx, provider: narrow });
      const result = await attempt(() => groups.apply(alice()));
      assert.equal(result.attempts, 1);
      assert.ok(result.error instanceof UpstreamError && result.error.status === 403);
      // The memberships are read first (okta.users.manage allows it); the PUT is the one refused.
      assert.equal(org.fake.api.requests.filter((r) => r.path !== "/oauth2/v1/token").length, 2);
    } finally {
      await org.close();
    }
  });

  test("an app that requires DPoP is refused with a clear permanent error", async () => {
    const keys = rsaKeys();
    const org = await startOrg({ auth: "oauth", keys, fake: { clients: [{ client_id: CLIENT_ID, publicKey: keys.publicKey, scopes: [...DEFAULT_SCOPES], dpop: true }] } });
    try {
      seed(org.fake);
      const result = await attempt(() => suspendAction.create(suspendAction.configSchema.parse({}), org.ctx).apply(alice()));
      assert.equal(result.attempts, 1);
      assert.ok(result.error instanceof UpstreamError && !result.error.transient);
      assert.match(result.error.message, /invalid_dpop_proof/);
    } finally {
      await org.close();
    }
  });

  test("429 from the API with a Bearer token carries the reset hint", async () => {
    const org = await startOrg({ auth: "oauth" });
    try {
      seed(org.fake);
      const reset = org.fake.rateLimit({ method: "GET" }, 20);
      const result = await attempt(() => suspendAction.create(suspendAction.configSchema.parse({}), org.ctx).apply(alice()));
      assert.equal(result.attempts, 2);
      const hint = result.retryAfter[0]!;
      assert.ok(Math.abs(hint - (reset * 1000 - Date.now())) < 2_000, `hint ${hint}`);
      assert.equal(org.fake.tokenRequests, 1);
    } finally {
      await org.close();
    }
  });
});

describe("the fake's token endpoint verifies client assertions on its own", () => {
  let fake: OktaFake;
  const keys = rsaKeys();
  const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
  before(async () => {
    fake = new OktaFake({ clients: [{ client_id: CLIENT_ID, publicKey: keys.publicKey, scopes: ["okta.users.manage"] }] });
    await fake.start();
  });
  after(() => fake.stop());

  function jwt(claims: Record<string, unknown>, key = createPrivateKey(keys.privateKey), header: Record<string, unknown> = { alg: "RS256", typ: "JWT" }): string {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const input = `${enc(header)}.${enc(claims)}`;
    return `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}`;
  }
  function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const now = Math.floor(Date.now() / 1000);
    return { iss: CLIENT_ID, sub: CLIENT_ID, aud: fake.tokenUrl, iat: now, exp: now + 300, jti: randomUUID(), ...extra };
  }
  async function post(assertion: string, form: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      scope: "okta.users.manage",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
      ...form,
    });
    const res = await fetch(fake.tokenUrl, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  test("a valid assertion gets a Bearer token; replaying its jti is refused", async () => {
    const a = jwt(claims());
    const ok = await post(a);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.token_type, "Bearer");
    assert.equal(ok.body.expires_in, 3600);
    const again = await post(a);
    assert.equal(again.status, 401);
    assert.equal(again.body.error, "invalid_client");
  });

  const refusals: [string, () => string, Record<string, string>?, number?, string?][] = [
    ["a signature by another key", () => jwt(claims(), other.privateKey)],
    ["a wrong audience", () => jwt(claims({ aud: "https://example.okta.com/oauth2/default/v1/token" }))],
    ["sub different from iss", () => jwt(claims({ sub: "someone-else" }))],
    ["an unknown client", () => jwt(claims({ iss: "0oaunknown", sub: "0oaunknown" }))],
    ["an expired assertion", () => jwt(claims({ exp: Math.floor(Date.now() / 1000) - 10 }))],
    ["a lifetime over an hour", () => jwt(claims({ exp: Math.floor(Date.now() / 1000) + 7200 }))],
    ["no jti", () => jwt(claims({ jti: undefined }))],
    ["alg none", () => jwt(claims(), undefined, { alg: "none" })],
    ["a tampered payload", () => { const [h, , s] = jwt(claims()).split("."); return `${h}.${Buffer.from(JSON.stringify(claims({ sub: CLIENT_ID }))).toString("base64url")}.${s}`; }],
    ["another grant type", () => jwt(claims()), { grant_type: "password" }, 400, "unsupported_grant_type"],
    ["a scope the app lacks", () => jwt(claims()), { scope: "okta.users.manage okta.groups.manage" }, 400, "invalid_scope"],
    ["a client_id that is not the issuer", () => jwt(claims()), { client_id: "0oaother" }],
  ];
  for (const [what, make, form, status = 401, error = "invalid_client"] of refusals) {
    test(`refuses ${what}`, async () => {
      const r = await post(make(), form);
      assert.equal(r.status, status);
      assert.equal(r.body.error, error);
    });
  }
});
