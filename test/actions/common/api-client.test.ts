import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, verify, X509Certificate, createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient, jsonCall } from "../../../src/plugin/api-client.ts";
import { staticHeader, type Authenticator } from "../../../src/net/api-call.ts";
import { ClientCredentials } from "../../../src/net/oauth.ts";
import { TokenFile } from "../../../src/net/token-file.ts";
import { UpstreamError, VigilError, isTransient } from "../../../src/errors.ts";
import { createHttpClient } from "../../../src/net/http.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import { MASK, scrub } from "../../../src/util/redact.ts";
import { FakeApi, type FakeRequest } from "../../helpers/fake-api.ts";
import { providerContext } from "../../helpers/action-context.ts";

const http = createHttpClient();
after(() => http.close());

async function server(setup: (api: FakeApi) => void): Promise<FakeApi> {
  const api = new FakeApi();
  setup(api);
  await api.start();
  after(() => api.stop());
  return api;
}

test("describe shows the exact call with authentication masked; send adds it", async () => {
  const api = await server((a) => {
    a.authenticate = (r) => (r.headers["x-api-key"] === "k-0123456789abcdef" ? undefined : { status: 401, body: { error: "bad key" } });
    a.route("PUT", /^\/things\/(?<id>[^/]+)$/, (r) => ({ status: 200, body: { id: r.params.id, got: JSON.parse(r.body) } }));
  });
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: staticHeader("X-Api-Key", "k-0123456789abcdef") });
  const call = jsonCall("PUT", `${api.base}/things/t1`, { state: "off" }, { summary: "turn t1 off" });
  const planned = client.describe(call);
  assert.deepEqual(planned, {
    method: "PUT",
    url: `${api.base}/things/t1`,
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-Api-Key": MASK },
    body: { state: "off" },
    summary: "turn t1 off",
  });
  const res = await client.send(call);
  assert.deepEqual(res.json(), { id: "t1", got: { state: "off" } });
  assert.equal(api.handled[0]!.body, call.body, "the exact body bytes");
});

test("statuses in `accept` are answers, not errors; others are classified", async () => {
  const api = await server((a) => {
    a.route("DELETE", /^\/gone$/, () => ({ status: 404, body: { error: "not found" } }));
    a.route("GET", /^\/forbidden$/, () => ({ status: 403, body: { error: "no" } }));
  });
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: staticHeader("X-Api-Key", "k") });
  assert.equal((await client.send({ method: "DELETE", url: `${api.base}/gone`, accept: [404] })).status, 404);
  await assert.rejects(client.send({ method: "DELETE", url: `${api.base}/gone` }), (e: unknown) => e instanceof UpstreamError && !e.transient && e.status === 404);
  await assert.rejects(client.send({ method: "GET", url: `${api.base}/forbidden` }), (e: unknown) => e instanceof UpstreamError && !e.transient && e.status === 403);
});

test("a 401 drops the cached credential and retries once with a fresh one", async () => {
  let issued = 0;
  const auth: Authenticator = {
    headers: async () => ({ Authorization: `Bearer t${issued}` }),
    planned: () => ({ Authorization: `Bearer ${MASK}` }),
    invalidate: () => void issued++,
  };
  const api = await server((a) => {
    a.authenticate = (r) => (r.headers.authorization === "Bearer t1" ? undefined : { status: 401, body: { error: "expired" } });
    a.route("GET", /^\/me$/, () => ({ status: 200, body: { ok: true } }));
  });
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth });
  assert.equal((await client.send({ method: "GET", url: `${api.base}/me` })).status, 200);
  assert.equal(api.requests.length, 2);
  // A credential that stays refused is a permanent error after the one retry, not a loop.
  issued = 5;
  await assert.rejects(client.send({ method: "GET", url: `${api.base}/me` }), (e: unknown) => e instanceof UpstreamError && e.status === 401);
  assert.equal(api.requests.length, 4);
});

test("the breaker sees every call of the client and stops calls after repeated 5xx", async () => {
  const api = await server((a) => a.route("POST", /^\/x$/, () => ({ status: 503, body: { error: "down" } })));
  const client = new ApiClient({ ctx: providerContext("demo", new FakeClock()), type: "demo", auth: staticHeader("X-Api-Key", "k"), circuit: { failures: 2 } });
  for (let i = 0; i < 2; i++) await assert.rejects(client.send({ method: "POST", url: `${api.base}/x` }));
  await assert.rejects(client.send({ method: "POST", url: `${api.base}/x` }), /circuit open/);
  assert.equal(api.requests.length, 2);
  assert.equal(client.breaker.state, "open");
});

// ---- OAuth client credentials ----

interface TokenServer {
  api: FakeApi;
  tokenRequests: FakeRequest[];
}

async function tokenServer(check: (form: URLSearchParams, r: FakeRequest) => string | undefined, expiresIn = 3600): Promise<TokenServer> {
  const tokenRequests: FakeRequest[] = [];
  let n = 0;
  const api = await server((a) =>
    a.route("POST", /^\/token$/, (r) => {
      tokenRequests.push(r);
      if (r.headers["content-type"] !== "application/x-www-form-urlencoded") return { status: 400, body: { error: "invalid_request" } };
      const form = new URLSearchParams(r.body);
      if (form.get("grant_type") !== "client_credentials") return { status: 400, body: { error: "unsupported_grant_type" } };
      const problem = check(form, r);
      if (problem) return { status: 401, body: { error: "invalid_client", error_description: problem } };
      return { status: 200, body: { access_token: `access-${++n}-0123456789`, token_type: "Bearer", expires_in: expiresIn, scope: form.get("scope") } };
    }),
  );
  return { api, tokenRequests };
}

test("client_secret_post: one token for many calls, shared by concurrent callers, refreshed before expiry", async () => {
  const t = await tokenServer((f) => (f.get("client_id") === "app" && f.get("client_secret") === "s3cret-value-0123" ? undefined : "bad client"), 600);
  const clock = new FakeClock();
  const cc = new ClientCredentials({ tokenUrl: `${t.api.base}/token`, clientId: "app", auth: { method: "client_secret_post", client_secret: "s3cret-value-0123" }, scope: "api.read", http, clock });
  const tokens = await Promise.all([cc.token(), cc.token(), cc.token()]);
  assert.deepEqual(new Set(tokens).size, 1);
  assert.equal(t.tokenRequests.length, 1);
  assert.equal(new URLSearchParams(t.tokenRequests[0]!.body).get("scope"), "api.read");
  // 600 s lifetime: refreshed 60 s before (a tenth of the lifetime, capped at 60 s).
  clock.advance(539_000);
  await cc.token();
  assert.equal(t.tokenRequests.length, 1);
  clock.advance(1_000);
  assert.notEqual(await cc.token(), tokens[0]);
  assert.equal(t.tokenRequests.length, 2);
  cc.invalidate();
  await cc.token();
  assert.equal(t.tokenRequests.length, 3);
  assert.deepEqual(cc.planned(), { Authorization: `Bearer ${MASK}` });
});

test("client_secret_basic sends the credentials form-encoded in Basic auth", async () => {
  const t = await tokenServer((f, r) => {
    const basic = Buffer.from((r.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString();
    return basic === "my+app:p%40ss+word-0123" && !f.has("client_secret") ? undefined : `bad basic ${basic}`;
  });
  const cc = new ClientCredentials({ tokenUrl: `${t.api.base}/token`, clientId: "my app", auth: { method: "client_secret_basic", client_secret: "p@ss word-0123" }, scope: "x", http, clock: new FakeClock() });
  assert.match(await cc.token(), /^access-1/);
});

test("private_key_jwt: an RFC 7523 assertion the server verifies with the public key alone", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), "vigil-oauth-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-days", "1", "-subj", "/CN=vigil-test"], { stdio: "ignore" });
  const certPem = readFileSync(join(dir, "c.pem"), "utf8");
  const certKey = readFileSync(join(dir, "k.pem"), "utf8");
  const clock = new FakeClock(Date.now());
  const seen = new Set<string>();
  const verifyAssertion = (form: URLSearchParams, pub: ReturnType<typeof createPublicKey>, tokenUrl: () => string, x5t?: string): string | undefined => {
    if (form.get("client_assertion_type") !== "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") return "assertion type";
    const [h, p, s] = (form.get("client_assertion") ?? "").split(".");
    const header = JSON.parse(Buffer.from(h!, "base64url").toString()) as Record<string, string>;
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
    if (header.alg !== "RS256") return "alg";
    if (x5t !== undefined && header.x5t !== x5t) return "x5t";
    if (!verify("sha256", Buffer.from(`${h}.${p}`), pub, Buffer.from(s!, "base64url"))) return "signature";
    if (claims.iss !== "svc" || claims.sub !== "svc" || claims.aud !== tokenUrl()) return "claims";
    const now = Math.floor(clock.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp <= now || claims.exp > now + 600) return "exp";
    if (typeof claims.jti !== "string" || seen.has(claims.jti)) return "jti reuse";
    seen.add(claims.jti);
    return form.get("client_id") === "svc" ? undefined : "client_id";
  };
  let url = "";
  const t = await tokenServer((f) => verifyAssertion(f, publicKey, () => url));
  url = `${t.api.base}/token`;
  const cc = new ClientCredentials({ tokenUrl: url, clientId: "svc", auth: { method: "private_key_jwt", private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), key_id: "k1" }, scope: "okta.users.manage", http, clock });
  await cc.token();
  cc.invalidate();
  await cc.token(); // a fresh jti every time
  assert.equal(t.tokenRequests.length, 2);

  // With a certificate: x5t is the SHA-1 thumbprint of its DER (Entra certificate credentials).
  const thumb = createHash("sha1").update(new X509Certificate(certPem).raw).digest("base64url");
  const t2 = await tokenServer((f) => verifyAssertion(f, createPublicKey(certPem), () => `${t2.api.base}/token`, thumb));
  const cc2 = new ClientCredentials({ tokenUrl: `${t2.api.base}/token`, clientId: "svc", auth: { method: "private_key_jwt", private_key: certKey, certificate: certPem }, scope: "x", http, clock });
  assert.match(await cc2.token(), /^access-/);
});

test("a token endpoint refusal is permanent; a DPoP token is refused with a clear message", async () => {
  const t = await tokenServer(() => "nope");
  const cc = new ClientCredentials({ tokenUrl: `${t.api.base}/token`, clientId: "a", auth: { method: "client_secret_post", client_secret: "wrong-secret-0123" }, scope: "x", http, clock: new FakeClock() });
  await assert.rejects(cc.token(), (e: unknown) => e instanceof UpstreamError && !e.transient && e.status === 401 && !e.message.includes("wrong-secret-0123"));
  const dpop = await server((a) => a.route("POST", /^\/token$/, () => ({ status: 200, body: { access_token: "x-0123456789", token_type: "DPoP", expires_in: 60 } })));
  const cc2 = new ClientCredentials({ tokenUrl: `${dpop.base}/token`, clientId: "a", auth: { method: "client_secret_post", client_secret: "another-secret-0123" }, scope: "x", http, clock: new FakeClock() });
  await assert.rejects(cc2.token(), /only Bearer is supported/);
});

test("a refusal at the token endpoint is not retried: one token request, one permanent error", async () => {
  const t = await tokenServer(() => "invalid client");
  const api = await server((a) => a.route("GET", /^\/me$/, () => ({ status: 200, body: {} })));
  const cc = new ClientCredentials({ tokenUrl: `${t.api.base}/token`, clientId: "a", auth: { method: "client_secret_post", client_secret: "wrong-secret-4567" }, scope: "x", http, clock: new FakeClock() });
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: cc });
  await assert.rejects(client.send({ method: "GET", url: `${api.base}/me` }), (e: unknown) => e instanceof UpstreamError && e.status === 401);
  assert.equal(t.tokenRequests.length, 1);
  assert.equal(api.requests.length, 0);
});

test("plans mask secret-named query parameters only, not booleans or long names", () => {
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: staticHeader("X-Api-Key", "k") });
  const planned = client.describe({ method: "DELETE", url: "https://x.example/api/v1/users/00u1abcdefghijklmnop/sessions?oauthTokens=true&source=frontend-payments-v2-2026&api_key=abc&token=t" });
  assert.equal(planned.url, `https://x.example/api/v1/users/00u1abcdefghijklmnop/sessions?oauthTokens=true&source=frontend-payments-v2-2026&api_key=${MASK}&token=${MASK}`);
});

test("client-credentials tokens stay off the global scrub list (it would grow with every refresh) yet are masked in errors that echo them", async () => {
  const t = await tokenServer(() => undefined);
  // An API (or a proxy) that quotes the request's Authorization header in its error body.
  const api = await server((a) => a.route("GET", /^\/echo$/, (r) => ({ status: 400, body: { error: "bad request", seen: r.headers.authorization } })));
  const cc = new ClientCredentials({ tokenUrl: `${t.api.base}/token`, clientId: "a", auth: { method: "client_secret_post", client_secret: "echo-secret-0123" }, scope: "x", http, clock: new FakeClock() });
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: cc });
  const token = await cc.token();
  assert.equal(scrub(`x ${token} y`), `x ${token} y`, "every access token fetched joined the process-wide secret list");
  await assert.rejects(client.send({ method: "GET", url: `${api.base}/echo` }), (e: unknown) => {
    assert.ok(e instanceof UpstreamError && !e.transient && e.status === 400);
    assert.ok(!e.message.includes(token), e.message);
    assert.ok(e.message.includes(MASK));
    return true;
  });
});

test("the caller's AbortSignal ends the wait for a token (req.signal reaches the token request)", async () => {
  const slow = await server((a) =>
    a.route("POST", /^\/token$/, () => new Promise((r) => setTimeout(() => r({ status: 200, body: { access_token: "late-token-0123456789", token_type: "Bearer", expires_in: 3600 } }), 3_000))),
  );
  const api = await server((a) => a.route("GET", /^\/me$/, () => ({ status: 200, body: {} })));
  const cc = new ClientCredentials({ tokenUrl: `${slow.base}/token`, clientId: "a", auth: { method: "client_secret_post", client_secret: "slow-secret-0123" }, scope: "x", http, clock: new FakeClock(), timeoutMs: 10_000 });
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: cc });
  const started = Date.now();
  await assert.rejects(client.send({ method: "GET", url: `${api.base}/me` }, AbortSignal.timeout(100)), (e: unknown) => e instanceof UpstreamError && e.transient && /aborted/.test(e.message));
  assert.ok(Date.now() - started < 2_000, `waited ${Date.now() - started} ms for a token after the caller gave up`);
  assert.equal(api.requests.length, 0);
  // An already aborted caller does not even start a token request.
  const before = slow.requests.length;
  await assert.rejects(cc.token(AbortSignal.abort()), /aborted/);
  assert.equal(slow.requests.length, before);
});

test("a token endpoint that echoes the client authentication back gets it masked in the error", async () => {
  const echo = await server((a) =>
    a.route("POST", /^\/token$/, (r) => {
      const form = new URLSearchParams(r.body);
      return { status: 400, body: { error: "invalid_client", got: form.get("client_assertion") ?? r.headers.authorization } };
    }),
  );
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwt = new ClientCredentials({ tokenUrl: `${echo.base}/token`, clientId: "svc", auth: { method: "private_key_jwt", private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString() }, scope: "x", http, clock: new FakeClock(Date.now()) });
  await assert.rejects(jwt.token(), (e: unknown) => {
    assert.ok(e instanceof UpstreamError && e.status === 400);
    assert.ok(e.message.includes(MASK), e.message);
    assert.ok(!/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{20,}/.test(e.message), `a signed client assertion in: ${e.message}`);
    return true;
  });
  const basic = new ClientCredentials({ tokenUrl: `${echo.base}/token`, clientId: "app", auth: { method: "client_secret_basic", client_secret: "basic-echo-secret-0123" }, scope: "x", http, clock: new FakeClock() });
  const encoded = Buffer.from("app:basic-echo-secret-0123").toString("base64");
  await assert.rejects(basic.token(), (e: unknown) => e instanceof UpstreamError && !e.message.includes(encoded) && e.message.includes(MASK));
});

test("a rotating token file stays off the global scrub list, yet its token is masked in errors that echo it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-token-file-"));
  const file = join(dir, "token");
  const api = await server((a) => a.route("GET", /^\/echo$/, (r) => ({ status: 400, body: { error: "bad request", seen: r.headers["x-vault-token"] } })));
  const client = new ApiClient({ ctx: providerContext("demo"), type: "demo", auth: new TokenFile(file) });
  for (const token of ["hvs.rotated-token-0001abcdef", "hvs.rotated-token-0002abcdef-longer"]) {
    writeFileSync(file, `${token}\n`);
    await assert.rejects(client.send({ method: "GET", url: `${api.base}/echo` }), (e: unknown) => e instanceof UpstreamError && !e.message.includes(token) && e.message.includes(MASK));
    assert.equal(scrub(`x ${token} y`), `x ${token} y`, "every rotated token joined the process-wide secret list");
  }
});

test("a private key that cannot sign the client assertion is a permanent config error, sent nowhere and never quoted", async () => {
  let requests = 0;
  const api = await server((a) => a.route("POST", /^\/token$/, () => (requests++, { status: 200, body: { access_token: "t", token_type: "Bearer" } })));
  const broken = "-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LWF0LWFsbC0wMTIzNDU2Nzg5\n-----END PRIVATE KEY-----\n";
  const cc = new ClientCredentials({ tokenUrl: `${api.base}/token`, clientId: "svc", auth: { method: "private_key_jwt", private_key: broken }, scope: "x", http, clock: new FakeClock(Date.now()) });
  await assert.rejects(cc.token(), (e: unknown) => {
    assert.ok(e instanceof VigilError && e.code === "VIGIL_ERR_CONFIG_INVALID", String(e));
    assert.equal(isTransient(e), false);
    assert.match(e.message, /^cannot sign the client assertion for http:\/\/.*\/token: /);
    assert.ok(!e.message.includes("bm90LWEta2V5"), "the key is not quoted");
    return true;
  });
  assert.equal(requests, 0);
});
