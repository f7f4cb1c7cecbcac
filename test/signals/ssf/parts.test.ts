/**
 * The receiver's parts on their own: subject identifiers (RFC 9493, SSF 1.0 §3), the subject lookup
 * rules, the JWKS cache (weak and private keys, rate-limited refresh on an unknown kid), the jti
 * memory (pruning and the forgotten-before horizon) and the config rules.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { openDatabase } from "../../../src/db/sqlite.ts";
import { parseSubject, identifiersOf, unprocessableCritical, SubjectError, describeSubject } from "../../../src/signals/ssf/subject.ts";
import { SubjectLookup, MAX_SUBJECTS_PER_EVENT } from "../../../src/signals/ssf/lookup.ts";
import { JwksCache, KeyNotFound, parseJwks } from "../../../src/signals/ssf/keys.ts";
import { SsfStore } from "../../../src/signals/ssf/store.ts";
import { metadataUrl, pushEndpoint, ssfSchema } from "../../../src/signals/ssf/config.ts";
import type { HttpClient, HttpResponse } from "../../../src/net/http.ts";
import type { Subject } from "../../../src/policy/model.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import { formatZodError } from "../../../src/http/server.ts";

test("subject identifiers: every RFC 9493 and SSF format, checked against its members", () => {
  const ok: unknown[] = [
    { format: "email", email: "user@example.com" },
    { format: "iss_sub", iss: "https://issuer.example.com/", sub: "145234573" },
    { format: "opaque", id: "11112222333344445555" },
    { format: "account", uri: "acct:example.user@service.example.com" },
    { format: "phone_number", phone_number: "+12065550100" },
    { format: "phone_number", phone_number: "+1 206 555 0123" },
    { format: "did", url: "did:example:123456/did/url/path?versionId=1" },
    { format: "uri", uri: "https://user.example.com/" },
    { format: "aliases", identifiers: [{ format: "email", email: "user@example.com" }, { format: "phone_number", phone_number: "+12065550100" }] },
    { format: "jwt_id", iss: "https://idp.example.com/987654321/", jti: "f61t6e20zdo3px56gepu8rzlsp4c1dpc0fx7" },
    { format: "saml_assertion_id", issuer: "https://idp.example.com/987654321/", assertion_id: "_a75adf55-01d7-dbd8372ebdfc" },
    { format: "ip-addresses", "ip-addresses": ["10.29.37.75", "2001:0db8:0000:0000:0000:8a2e:0370:7334"] },
    { format: "catalog_item", catalog_id: "c0384/winter/2354122" },
  ];
  for (const v of ok) assert.doesNotThrow(() => parseSubject(v), JSON.stringify(v));
  const bad: [unknown, RegExp][] = [
    [{ format: "email", email: "not-an-address" }, /e-mail/],
    [{ format: "email", email: "a@b.c", name: "x" }, /has no member name/],
    [{ format: "iss_sub", iss: "https://x" }, /needs member sub/],
    [{ format: "opaque", id: "" }, /non-empty/],
    [{ format: "opaque", id: 7 }, /non-empty string/],
    [{ format: "account", uri: "mailto:a@b.c" }, /acct/],
    [{ format: "phone_number", phone_number: "206-555-0100" }, /phone/],
    [{ format: "did", url: "https://x" }, /DID/],
    [{ format: "ip-addresses", "ip-addresses": ["999.1.1.1"] }, /IP address/],
    [{ format: "aliases", identifiers: [] }, /non-empty/],
    [{ format: "aliases", identifiers: [{ format: "aliases", identifiers: [{ format: "opaque", id: "x" }] }] }, /may not nest/],
    [{ format: "opaque", id: "x".repeat(2000) }, /longer than/],
    [{ format: "catalog_item", nested: { deep: true } }, /non-empty string/],
    [{ format: "has space" }, /format/],
    ["alice", /object/],
    [{ format: "complex" }, /at least one member/],
    [{ format: "complex", user: { format: "complex", user: { format: "opaque", id: "x" } } }, /non-empty string/],
  ];
  for (const [v, re] of bad) assert.throws(() => parseSubject(v), (e: unknown) => e instanceof SubjectError && re.test(e.message), JSON.stringify(v));
});

test("complex subjects: members of one principal, critical members vigil cannot process, the drafts' form", () => {
  const s = parseSubject({
    format: "complex",
    user: { format: "iss_sub", iss: "https://idp.example.com/123456789/", sub: "jane.smith@example.com" },
    device: { format: "iss_sub", iss: "https://idp.example.com/123456789/", sub: "e9297990-14d2-42ec-a4a9-4036db86509a" },
    tenant: { format: "opaque", id: "123456789" },
  });
  assert.equal(s.kind, "complex");
  assert.deepEqual(identifiersOf(s).map((i) => i.member), ["user", "device", "tenant"]);
  assert.equal(unprocessableCritical(s, ["tenant", "user"]), undefined, "known members with known formats are processable");
  const proprietary = parseSubject({ format: "complex", user: { format: "email", email: "a@b.c" }, tenant: { format: "tenant_ref", ref: "t-1" } });
  assert.equal(unprocessableCritical(proprietary, ["tenant"]), "tenant");
  assert.equal(unprocessableCritical(proprietary, ["group"]), undefined, "an absent critical member is no obstacle");
  const odd = parseSubject({ format: "complex", user: { format: "email", email: "a@b.c" }, cost_center: { format: "opaque", id: "42" } });
  assert.equal(unprocessableCritical(odd, ["cost_center"]), "cost_center");
  // The drafts wrote complex subjects without format.
  const legacy = parseSubject({ user: { format: "email", email: "bar@example.com" }, tenant: { format: "iss_sub", iss: "http://example.com/idp1", sub: "1234" } });
  assert.equal(legacy.kind, "complex");
  assert.match(describeSubject(legacy), /user=email:bar@example.com/);
});

function subjects(list: Subject[]) {
  let version = 1;
  let current = list;
  return {
    all: () => current,
    version: () => version,
    set(next: Subject[]) {
      current = next;
      version++;
    },
  };
}

const S = (id: string, attributes: Record<string, unknown> = {}, extra: Partial<Subject> = {}): Subject => ({ id, kind: "user", attributes, labels: {}, ...extra });

test("subject lookup: default rules mirror vigil's transmitter, values are normalized, members and issuers restrict rules", () => {
  const src = subjects([
    S("alice", { email: "Alice@Example.org", phone_number: "+12065550123", did: "did:example:alice" }, { identity: "spiffe://example.org/alice" }),
    S("bob", { email: "bob@example.org", emails: ["robert@example.org"] }, { labels: { okta: "00u2" } }),
    S("00u9"),
  ]);
  const defaults = new SubjectLookup(undefined, src);
  const ids = (v: unknown) => defaults.resolve(parseSubject(v)).ids;
  assert.deepEqual(ids({ format: "email", email: "ALICE@example.ORG" }), ["alice"]);
  assert.deepEqual(ids({ format: "account", uri: "acct:alice@example.org" }), ["alice"]);
  assert.deepEqual(ids({ format: "phone_number", phone_number: "+1 206 555 0123" }), ["alice"]);
  assert.deepEqual(ids({ format: "did", url: "did:example:alice" }), ["alice"]);
  assert.deepEqual(ids({ format: "uri", uri: "spiffe://example.org/alice" }), ["alice"]);
  assert.deepEqual(ids({ format: "opaque", id: "00u9" }), ["00u9"]);
  assert.deepEqual(ids({ format: "iss_sub", iss: "https://idp", sub: "00u9" }), ["00u9"]);
  assert.deepEqual(ids({ format: "aliases", identifiers: [{ format: "email", email: "nobody@x.y" }, { format: "email", email: "bob@example.org" }] }), ["bob"]);
  assert.deepEqual(ids({ format: "complex", user: { format: "email", email: "bob@example.org" }, device: { format: "opaque", id: "00u9" } }), ["bob", "00u9"]);
  assert.deepEqual(ids({ format: "catalog_item", catalog_id: "x" }), []);

  const rules = new SubjectLookup(
    [
      { format: "iss_sub", iss: "https://okta.example", match: "labels.okta" },
      { format: "email", match: "attributes.emails", members: ["user"] },
    ],
    src,
  );
  const r = (v: unknown) => rules.resolve(parseSubject(v)).ids;
  assert.deepEqual(r({ format: "iss_sub", iss: "https://okta.example", sub: "00u2" }), ["bob"]);
  assert.deepEqual(r({ format: "iss_sub", iss: "https://other.example", sub: "00u2" }), [], "another issuer's sub is another principal");
  assert.deepEqual(r({ format: "email", email: "robert@example.org" }), ["bob"], "a simple subject is always looked up");
  assert.deepEqual(r({ format: "complex", device: { format: "email", email: "robert@example.org" } }), [], "members restrict complex subjects");
  assert.deepEqual(r({ format: "complex", user: { format: "email", email: "robert@example.org" } }), ["bob"]);

  src.set([S("carol", { email: "alice@example.org" })]);
  assert.deepEqual(ids({ format: "email", email: "alice@example.org" }), ["carol"], "a new inventory is picked up");
  src.set(Array.from({ length: 150 }, (_, i) => S(`u${i}`, { email: "shared@example.org" })));
  const many = defaults.resolve(parseSubject({ format: "email", email: "shared@example.org" }));
  assert.equal(many.ids.length, MAX_SUBJECTS_PER_EVENT);
  assert.equal(many.truncated, true);
});

function jsonClient(docs: () => unknown, calls: string[] = []): HttpClient {
  return {
    request: async (req) => {
      calls.push(req.url);
      const body = Buffer.from(JSON.stringify(docs()));
      return { status: 200, headers: {}, body, text: () => body.toString(), json: <T>() => JSON.parse(body.toString()) as T, quote: () => "", mask: (t: string) => t } satisfies HttpResponse;
    },
    close: async () => undefined,
  };
}

const jwk = (bits: number, kid?: string) => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  const full = privateKey.export({ format: "jwk" });
  return { ...full, ...(kid ? { kid } : {}), alg: "RS256", use: "sig" };
};

test("JWKS: weak RSA keys and keys for other uses are left out, private members are never imported", () => {
  const weak = jwk(1024, "weak");
  const strong = jwk(2048, "strong");
  const enc = { ...jwk(2048, "enc"), use: "enc" };
  const ec = { ...generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" }), kid: "ec" };
  const { keys, skipped } = parseJwks({ keys: [weak, strong, enc, ec, { kty: "oct", k: "c2VjcmV0", kid: "hmac" }, "junk"] }, ["RS256", "ES256"]);
  assert.deepEqual(keys.map((k) => k.kid), ["strong", "ec"]);
  assert.deepEqual(Object.keys(keys[0]!.jwk).sort(), ["e", "kty", "n"], "only the public members are kept");
  assert.equal(skipped.length, 4);
  assert.match(skipped.join("\n"), /1024 bits, fewer than 2048/);
  assert.match(skipped.join("\n"), /use is not sig/);
  assert.match(skipped.join("\n"), /key type oct cannot verify/);
  assert.throws(() => parseJwks({ nokeys: [] }, ["RS256"]), /no keys array/);
});

test("JWKS: an unknown kid fetches the keys again, at most once per minRefresh however many arrive", async () => {
  const clock = new FakeClock();
  let served = [jwk(2048, "k1")];
  const calls: string[] = [];
  const cache = new JwksCache({ http: jsonClient(() => ({ keys: served }), calls), clock, algorithms: ["RS256"], untrusted: undefined, timeoutMs: 1000, minRefreshMs: 60_000 });
  cache.setUrl("https://tx.example/jwks");
  assert.equal((await cache.key("k1", "RS256")).kid, "k1");
  assert.equal(calls.length, 1);
  served = [jwk(2048, "k1"), jwk(2048, "k2")];
  await assert.rejects(cache.key("k2", "RS256"), (e: unknown) => e instanceof KeyNotFound && e.reason === "unknown_kid");
  assert.equal(calls.length, 1, "too soon after the last fetch");
  clock.advance(60_000);
  assert.equal((await cache.key("k2", "RS256")).kid, "k2", "rotated in");
  assert.equal(calls.length, 2);
  for (let i = 0; i < 50; i++) await assert.rejects(cache.key(`made-up-${i}`, "RS256"), KeyNotFound);
  assert.equal(calls.length, 2, "a flood of made-up kids costs nothing");
  clock.advance(3_600_001);
  await cache.key("k1", "RS256");
  assert.equal(calls.length, 3, "old keys are fetched again before use");
  await assert.rejects(cache.key(undefined, "RS256"), (e: unknown) => e instanceof KeyNotFound && e.reason === "no_kid");
  served = [jwk(2048)];
  clock.advance(3_600_001);
  assert.equal((await cache.key(undefined, "RS256")).kid, undefined, "no kid, one key: that one");
  await assert.rejects(cache.key("x", "ES256"), KeyNotFound);
});

test("JWKS: keys never fetched are 'not available' (a transient failure), not a bad SET", async () => {
  const cache = new JwksCache({
    http: { request: async () => Promise.reject(new Error("connect ECONNREFUSED")), close: async () => undefined },
    clock: new FakeClock(),
    algorithms: ["RS256"],
    untrusted: undefined,
    timeoutMs: 1000,
  });
  cache.setUrl("https://tx.example/jwks");
  await assert.rejects(cache.key("k1", "RS256"), (e: { code?: string }) => e.code === "VIGIL_ERR_UPSTREAM_TRANSIENT");
  assert.match(cache.lastError!, /ECONNREFUSED/);
});

test("jti memory: remembered per transmitter, pruned by age, and bounded with a horizon that refuses what could be forgotten", async () => {
  const db = openDatabase(mkdtempSync(`${tmpdir()}/vigil-ssf-store-`));
  try {
    const store = new SsfStore(db);
    await Promise.all([store.remember("okta", "a", 1000), store.remember("okta", "a", 1000), store.remember("jamf", "a", 1000)]);
    assert.equal(store.seen("okta", "a"), true);
    assert.equal(store.seen("okta", "b"), false);
    assert.equal(store.count(), 2);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.remember("okta", `j${i}`, 2000 + i)));
    // okta keeps 500 s, jamf (gone from the config) the fallback.
    store.prune(2500, new Map([["okta", 500]]), 100_000, 1_000_000);
    assert.equal(store.seen("okta", "a"), false, "older than okta's window");
    assert.equal(store.seen("jamf", "a"), true, "kept by the fallback age");
    assert.equal(store.forgottenBefore, undefined);
    store.prune(2500, new Map([["okta", 500]]), 100_000, 10);
    assert.equal(store.count(), 10, "the eleven oldest went");
    assert.equal(store.forgottenBefore, 2009, "the newest iat dropped");
    assert.equal(store.seen("jamf", "a"), false);
    assert.equal(store.seen("okta", "j9"), false);
    assert.equal(store.seen("okta", "j19"), true, "the newest stay");
    const again = new SsfStore(db);
    assert.equal(again.forgottenBefore, store.forgottenBefore, "the horizon survives a restart");
    again.saveStream("okta", { stream_id: "s1", authorization: "Bearer x", aud: ["https://a"] });
    assert.deepEqual(again.loadStream("okta"), { stream_id: "s1", authorization: "Bearer x", aud: ["https://a"] });
    again.forgetStream("okta");
    assert.equal(again.loadStream("okta"), undefined);
  } finally {
    db.close();
  }
});

test("config: the rules between manage, delivery, auth and push, and the derived URLs", () => {
  const parse = (t: Record<string, unknown>, extra: Record<string, unknown> = {}) => ssfSchema.safeParse({ transmitters: [{ name: "okta", issuer: "https://example.okta.com", ...t }], ...extra });
  const problems = (t: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const r = parse(t, extra);
    return r.success ? "" : formatZodError(r.error);
  };
  assert.match(problems({}), /auth: required with manage: true/);
  assert.match(problems({ auth: { bearer_token: "t0ken" } }), /a managed push stream needs the URL to push to/);
  assert.equal(problems({ auth: { bearer_token: "t0ken" } }, { public_url: "https://vigil.example.com" }), "");
  assert.match(problems({ manage: false }), /push.authorization: required with manage: false/);
  assert.match(problems({ manage: false, push: { authorization: "short" } }), /at least 16 characters/);
  assert.match(problems({ auth: { bearer_token: "t" }, push: { authorization: "Bearer 0123456789abcdef" } }, { public_url: "https://v.example" }), /vigil generates the push authorization/);
  assert.match(problems({ manage: false, delivery: "poll", auth: { bearer_token: "t" } }), /poll.endpoint_url: required/);
  assert.match(problems({ auth: { oauth: { token_url: "https://x/token", client_id: "c" } } }, { public_url: "https://v.example" }), /exactly one of client_secret and private_key/);
  assert.match(problems({ auth: { bearer_token: "t", oauth: { token_url: "https://x/token", client_id: "c", client_secret: "s" } } }, { public_url: "https://v.example" }), /exactly one of bearer_token and oauth/);
  assert.match(problems({ issuer: "http://idp.example.com", auth: { bearer_token: "t" } }, { public_url: "https://v.example" }), /plain http is only allowed to a loopback/);
  assert.match(problems({ auth: { bearer_token: "t" }, events: ["session-revoked", "not an event"] }, { public_url: "https://v.example" }), /events.1/);
  assert.match(problems({ auth: { bearer_token: "t" }, overrides: { "recovery-activated": { check: "account_state" } } }, { public_url: "https://v.example" }), /give check and status/);
  assert.equal(problems({ auth: { bearer_token: "t" }, overrides: { "recovery-activated": { check: "account_state", status: "warn" }, "session-revoked": { ttl: "4h" } } }, { public_url: "https://v.example" }), "");
  assert.match(problems({ auth: { bearer_token: "t" }, algorithms: ["HS256"] }, { public_url: "https://v.example" }), /algorithms/);
  const two = ssfSchema.safeParse({ public_url: "https://v.example", transmitters: [{ name: "a", issuer: "https://a.example", auth: { bearer_token: "t" } }, { name: "a", issuer: "https://b.example", auth: { bearer_token: "t" } }] });
  assert.match(two.success ? "" : formatZodError(two.error), /named twice/);

  assert.equal(metadataUrl({ issuer: "https://tr.example.com" }), "https://tr.example.com/.well-known/ssf-configuration");
  assert.equal(metadataUrl({ issuer: "https://tr.example.com/issuer1/" }), "https://tr.example.com/.well-known/ssf-configuration/issuer1");
  const cfg = ssfSchema.parse({ public_url: "https://vigil.example.com/", transmitters: [{ name: "okta.prod", issuer: "https://example.okta.com", auth: { bearer_token: "t" } }] });
  assert.equal(pushEndpoint(cfg, cfg.transmitters[0]!), "https://vigil.example.com/v1/signals/ssf/okta.prod");
});
