import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { caepProvider } from "../../../src/actions/caep/provider.ts";
import { transmitAction } from "../../../src/actions/caep/transmit.ts";
import { caepPublicDocuments, jwksDocument, ssfConfiguration } from "../../../src/actions/caep/discovery.ts";
import { hashUuid, setJti } from "../../../src/actions/caep/set.ts";
import { jwsSignature, loadSigningKey } from "../../../src/actions/caep/keys.ts";
import { loadBuiltins } from "../../../src/actions/registry.ts";

const { actions: builtinActions, providers: builtinProviders } = await loadBuiltins();
import { loadConfigText } from "../../../src/config/load.ts";
import { providerContext } from "../../helpers/action-context.ts";
import { aliceRequest, ISSUER, KEYS, world } from "./world.ts";

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

function client(keys: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  const config = caepProvider.configSchema.parse({ issuer: ISSUER, keys, receivers: [{ name: "idp", endpoint: "https://idp.example.com/ssf/events" }], ...extra });
  return caepProvider.create(config, providerContext("caep"));
}

describe("caep public documents", () => {
  test("the SSF configuration: spec_version 1_0, issuer, jwks_uri, push delivery, and no stream management endpoints", () => {
    const docs = caepProvider.publicDocuments!(client([{ kid: "k1", private_key: KEYS.ec }]));
    assert.deepEqual(Object.keys(docs).sort(), ["/.well-known/jwks.json", "/.well-known/ssf-configuration"]);
    const doc = docs["/.well-known/ssf-configuration"]!;
    assert.equal(doc.contentType, "application/json");
    assert.deepEqual(JSON.parse(doc.body()), {
      spec_version: "1_0",
      issuer: "https://vigil.example.com",
      jwks_uri: "https://vigil.example.com/.well-known/jwks.json",
      delivery_methods_supported: ["urn:ietf:rfc:8935"],
    });
    assert.deepEqual(ssfConfiguration("https://vigil.example.com/"), { ...ssfConfiguration("https://vigil.example.com"), issuer: "https://vigil.example.com/" }, "the issuer is kept exactly as configured");
  });

  test("the JWKS holds every key's public members only, for every key type", () => {
    const c = client([
      { kid: "ec", private_key: KEYS.ec },
      { kid: "rsa", alg: "RS256", private_key: KEYS.rsa },
      { kid: "pss", alg: "PS256", private_key: KEYS.rsa },
      { kid: "ed", alg: "EdDSA", private_key: KEYS.ed25519 },
    ]);
    const doc = caepProvider.publicDocuments!(c)["/.well-known/jwks.json"]!;
    assert.equal(doc.contentType, "application/json");
    const text = doc.body();
    const jwks = JSON.parse(text) as { keys: Record<string, unknown>[] };
    assert.deepEqual(
      jwks.keys.map((k) => Object.keys(k).sort()),
      [
        ["alg", "crv", "kid", "kty", "use", "x", "y"],
        ["alg", "e", "kid", "kty", "n", "use"],
        ["alg", "e", "kid", "kty", "n", "use"],
        ["alg", "crv", "kid", "kty", "use", "x"],
      ],
    );
    assert.deepEqual(jwks.keys.map((k) => [k.kid, k.kty, k.alg, k.use, k.crv]), [
      ["ec", "EC", "ES256", "sig", "P-256"],
      ["rsa", "RSA", "RS256", "sig", undefined],
      ["pss", "RSA", "PS256", "sig", undefined],
      ["ed", "OKP", "EdDSA", "sig", "Ed25519"],
    ]);
    for (const k of jwks.keys) for (const m of PRIVATE_MEMBERS) assert.ok(!(m in k), `${String(k.kid)} has no ${m}`);
    assert.ok(!text.includes("PRIVATE"));
    // Each published key is the public half of the configured private key.
    for (const [i, pem] of [KEYS.ec, KEYS.rsa, KEYS.rsa, KEYS.ed25519].entries()) {
      const published = createPublicKey({ key: jwks.keys[i] as never, format: "jwk" }).export({ type: "spki", format: "der" });
      assert.deepEqual(published, createPublicKey(createPrivateKey(pem)).export({ type: "spki", format: "der" }));
    }
  });

  test("documents are pure and rendered per request", () => {
    let keys = [loadSigningKey("a", "ES256", KEYS.ec)];
    const docs = caepPublicDocuments(ISSUER, () => keys);
    const first = docs["/.well-known/jwks.json"]!.body();
    assert.equal(docs["/.well-known/jwks.json"]!.body(), first);
    assert.deepEqual(JSON.parse(first), jwksDocument(keys));
    keys = [...keys, loadSigningKey("b", "RS256", KEYS.rsa)];
    assert.equal((JSON.parse(docs["/.well-known/jwks.json"]!.body()) as { keys: unknown[] }).keys.length, 2);
  });
});

describe("caep provider config", () => {
  const receiver = { name: "idp", endpoint: "https://idp.example.com/ssf/events" };
  const base = { issuer: ISSUER, keys: [{ kid: "k1", private_key: KEYS.ec }], receivers: [receiver] };

  test("defaults: ES256, the first key signs, email subjects, 10s timeout, default circuit", () => {
    const parsed = caepProvider.configSchema.parse(base);
    assert.equal(parsed.keys[0]!.alg, "ES256");
    assert.equal(parsed.timeout, 10_000);
    assert.deepEqual(parsed.circuit, { failures: 5, open_for: 30_000, max_open_for: 300_000 });
    assert.deepEqual(parsed.receivers[0]!.subject, { format: "email" });
    const c = caepProvider.create(parsed, providerContext("caep"));
    assert.equal(c.signingKey.kid, "k1");
    assert.equal(c.type, "caep");
    assert.equal(c.audience(c.receivers.get("idp")!), "https://idp.example.com");
  });

  test("an empty entry is refused: the provider has no usable defaults", () => {
    const r = caepProvider.configSchema.safeParse({});
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues.map((i) => i.path.join(".")).sort(), ["issuer", "keys", "receivers"]);
  });

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    ["http issuer", { issuer: "http://vigil.example.com" }, "issuer", /https/],
    ["issuer with a path", { issuer: "https://vigil.example.com/tenant" }, "issuer", /without path/],
    ["issuer with a query", { issuer: "https://vigil.example.com?x=1" }, "issuer", /without path, query/],
    ["key of the wrong type", { keys: [{ kid: "k1", alg: "RS256", private_key: KEYS.ec }] }, "keys.0.private_key", /RS256 needs an RSA key, got ec key on prime256v1/],
    ["P-384 for ES256", { keys: [{ kid: "k1", private_key: KEYS.ec384 }] }, "keys.0.private_key", /ES256 needs an EC P-256 key, got ec key on secp384r1/],
    ["not a key", { keys: [{ kid: "k1", private_key: "hello" }] }, "keys.0.private_key", /not a readable PEM private key/],
    ["a public key", { keys: [{ kid: "k1", private_key: String(createPublicKey(KEYS.ec).export({ type: "spki", format: "pem" })) }] }, "keys.0.private_key", /not a readable PEM private key/],
    ["an encrypted key", { keys: [{ kid: "k1", private_key: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----" }] }, "keys.0.private_key", /encrypted private keys are not supported/],
    ["unknown alg", { keys: [{ kid: "k1", alg: "HS256", private_key: KEYS.ec }] }, "keys.0.alg", /Invalid option/],
    ["duplicate kid", { keys: [{ kid: "k1", private_key: KEYS.ec }, { kid: "k1", alg: "EdDSA", private_key: KEYS.ed25519 }] }, "keys.1.kid", /used twice/],
    ["unknown signing key", { signing_kid: "k9" }, "signing_kid", /no key has kid "k9"; known: k1/],
    ["http endpoint elsewhere", { receivers: [{ ...receiver, endpoint: "http://idp.example.com/ssf" }] }, "receivers.0.endpoint", /https URL \(http only for localhost\)/],
    ["credentials in the endpoint", { receivers: [{ ...receiver, endpoint: "https://u:p@idp.example.com/ssf" }] }, "receivers.0.endpoint", /authorization/],
    ["duplicate receiver", { receivers: [receiver, receiver] }, "receivers.1.name", /used twice/],
    ["shared endpoint, different credentials", { receivers: [receiver, { ...receiver, name: "other", authorization: "Bearer x-0123456789" }] }, "receivers.1.authorization", /same authorization/],
    ["header injection", { receivers: [{ ...receiver, authorization: "Bearer a\r\nX-Evil: 1" }] }, "receivers.0.authorization", /CR, LF/],
    ["iss_sub without iss", { receivers: [{ ...receiver, subject: { format: "iss_sub" } }] }, "receivers.0.subject.iss", /need iss/],
    ["iss on email", { receivers: [{ ...receiver, subject: { format: "email", iss: "https://x" } }] }, "receivers.0.subject.iss", /only iss_sub/],
    ["bad template", { receivers: [{ ...receiver, subject: { format: "opaque", from: "{{nope}}" } }] }, "receivers.0.subject.from", /unknown placeholder/],
    ["unknown key", { extra: true }, "extra", /Unrecognized key/],
    ["no receivers", { receivers: [] }, "receivers", /too small|at least/i],
    ["timeout too long", { timeout: "1h" }, "timeout", /at most 5m|between 1ms and 5m/],
  ];
  for (const [name, patch, path, message] of invalid) {
    test(`refuses ${name}`, () => {
      const r = caepProvider.configSchema.safeParse({ ...base, ...patch });
      assert.equal(r.success, false, name);
      const issue = r.error!.issues.find((i) => i.path.join(".") === path || (path === "extra" && i.code === "unrecognized_keys"));
      assert.ok(issue, `${name}: issues at ${r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      assert.match(issue!.message, message);
      assert.ok(!JSON.stringify(r.error!.issues).includes("BEGIN PRIVATE KEY"), "key material never appears in messages");
    });
  }

  test("http endpoints on this host are allowed (local relays, tests)", () => {
    for (const endpoint of ["http://localhost:8080/ssf", "http://127.0.0.1:9/x", "http://[::1]:9/x"]) {
      assert.equal(caepProvider.configSchema.safeParse({ ...base, receivers: [{ ...receiver, endpoint }] }).success, true, endpoint);
    }
  });

  test("the provider example's shape validates once its secrets are real", () => {
    const example = JSON.parse(JSON.stringify(caepProvider.example).replaceAll("${file:/run/secrets/vigil-caep-es256.pem}", JSON.stringify(KEYS.ec).slice(1, -1)).replaceAll("${file:/run/secrets/saas-ssf-token}", "Bearer t-0123456789")) as unknown;
    assert.equal(caepProvider.configSchema.safeParse(example).success, true);
  });
});

describe("caep:transmit config", () => {
  test("the example validates; defaults per event", () => {
    const { type, ...own } = transmitAction.example;
    assert.equal(type, "caep:transmit");
    assert.equal(transmitAction.configSchema.safeParse(own).success, true);
    assert.deepEqual(transmitAction.configSchema.parse({ event: "credential-change", credential_type: "password" }), { event: "credential-change", credential_type: "password", change_type: "revoke" });
    assert.deepEqual(transmitAction.configSchema.parse({ event: "assurance-level-change" }), {
      event: "assurance-level-change",
      namespace: "NIST-AAL",
      current_level: "nist-aal1",
      previous_level: "nist-aal2",
      change_direction: "decrease",
    });
    assert.equal(transmitAction.provider, "caep");
    assert.equal(transmitAction.revertible, true);
  });

  const invalid: [string, Record<string, unknown>][] = [
    ["no event", {}],
    ["unknown event", { event: "token-claims-change" }],
    ["credential-change without credential_type", { event: "credential-change" }],
    ["bad change_type", { event: "credential-change", credential_type: "x509", change_type: "rotate" }],
    ["option of another event", { event: "session-revoked", credential_type: "x509" }],
    ["engine keys are not the action's", { event: "session-revoked", dry_run: true }],
    ["bad language tag", { event: "session-revoked", reason_admin: { "not a tag": "x" } }],
    ["empty receivers", { event: "session-revoked", receivers: [] }],
    ["lower-case principal", { event: "risk-level-change", principal: "user" }],
  ];
  for (const [name, config] of invalid) {
    test(`refuses ${name}`, () => assert.equal(transmitAction.configSchema.safeParse(config).success, false, name));
  }

  test("the registry knows the provider and the action", () => {
    assert.ok(builtinProviders.some((p) => p.type === "caep"));
    assert.ok(builtinActions.some((a) => a.type === "caep:transmit"));
  });
});

describe("SET identifiers", () => {
  test("jti is UUID-shaped and differs by issuer, receiver and job; the same inputs give the same jti", () => {
    const a = setJti(ISSUER, "idp", "key-1");
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(setJti(ISSUER, "idp", "key-1"), a);
    assert.notEqual(setJti(ISSUER, "saas", "key-1"), a);
    assert.notEqual(setJti(ISSUER, "idp", "key-2"), a);
    assert.notEqual(setJti("https://other.example.com", "idp", "key-1"), a);
    assert.notEqual(hashUuid("a", "b"), hashUuid("a\nb", ""), "parts are separated");
  });

  test("apply and revert of one decision share the txn; the next decision gets another", async () => {
    const w = await world();
    const action = w.action({ event: "device-compliance-change" });
    await action.apply(aliceRequest({ generation: 4 }));
    await action.revert!(aliceRequest({ generation: 4, operation: "revert" }));
    await action.apply(aliceRequest({ generation: 5 }));
    const [a, b, c] = w.receivers.idp!.accepted.map((s) => s.claims);
    assert.equal(a!.txn, b!.txn);
    assert.notEqual(a!.txn, c!.txn);
    assert.notEqual(a!.jti, b!.jti);
  });
});

describe("the SSF receiver fake refuses what a strict receiver refuses", () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

  /** Takes the token the action would send, edits it, signs it again with the real key (so only the edit is wrong) and pushes it. */
  async function tamper(edit: (t: { header: Record<string, unknown>; claims: Record<string, unknown> }) => void, opts: { contentType?: string; breakSignature?: boolean } = {}) {
    const w = await world();
    const [planned] = w.action({ event: "session-revoked" }).plan(aliceRequest());
    const [h, p] = (planned!.body as string).split(".") as [string, string];
    const t = { header: JSON.parse(Buffer.from(h, "base64url").toString()), claims: JSON.parse(Buffer.from(p, "base64url").toString()) };
    edit(t);
    const input = `${b64(t.header)}.${b64(t.claims)}`;
    const signature = Buffer.from(jwsSignature(w.client.signingKey, input), "base64url");
    if (opts.breakSignature) signature[10] = signature[10]! ^ 0xff;
    const res = await fetch(w.receivers.idp!.endpoint, {
      method: "POST",
      headers: { "content-type": opts.contentType ?? "application/secevent+jwt", accept: "application/json" },
      body: `${input}.${signature.toString("base64url")}`,
    });
    return { status: res.status, body: res.status === 202 ? undefined : ((await res.json()) as { err: string; description: string }), receiver: w.receivers.idp! };
  }

  const cases: [string, Parameters<typeof tamper>[0], Parameters<typeof tamper>[1], string, RegExp][] = [
    ["a changed signature", () => {}, { breakSignature: true }, "invalid_key", /signature does not verify/],
    ["typ JWT", (t) => (t.header.typ = "JWT"), {}, "invalid_request", /typ must be secevent\+jwt/],
    ["alg none", (t) => (t.header.alg = "none"), {}, "invalid_key", /alg "none" is not accepted/],
    ["an unknown kid", (t) => (t.header.kid = "k9"), {}, "invalid_key", /kid k9 is not in/],
    ["a sub claim", (t) => (t.claims.sub = "alice"), {}, "invalid_request", /sub_id, not sub/],
    ["an exp claim", (t) => (t.claims.exp = 2_000_000_000), {}, "invalid_request", /must not carry exp/],
    ["another issuer", (t) => (t.claims.iss = "https://evil.example.com"), {}, "invalid_issuer", /iss/],
    ["no jti", (t) => delete t.claims.jti, {}, "invalid_request", /jti is required/],
    ["two events", (t) => ((t.claims.events as Record<string, unknown>)["https://schemas.openid.net/secevent/caep/event-type/session-presented"] = {}), {}, "invalid_request", /exactly one event/],
    ["an unknown event", (t) => (t.claims.events = { "https://schemas.openid.net/secevent/caep/event-type/coffee-spilled": {} }), {}, "invalid_request", /unknown event type/],
    ["a bad sub_id", (t) => (t.claims.sub_id = { format: "email", id: "alice" }), {}, "invalid_request", /sub_id email/],
    ["milliseconds in event_timestamp", (t) => (Object.values(t.claims.events as Record<string, Record<string, unknown>>)[0]!.event_timestamp = 1_795_514_400_000), {}, "invalid_request", /milliseconds/],
    ["a JSON content type", () => {}, { contentType: "application/json" }, "invalid_request", /Content-Type/],
  ];
  for (const [name, edit, opts, err, description] of cases) {
    test(name, async () => {
      const r = await tamper(edit, opts);
      assert.equal(r.status, 400, name);
      assert.equal(r.body!.err, err);
      assert.match(r.body!.description, description);
      assert.equal(r.receiver.accepted.length, 0);
    });
  }

  test("the unchanged token is accepted, so the refusals above are about the edits", async () => {
    const r = await tamper(() => {});
    assert.equal(r.status, 202);
    assert.equal(r.receiver.accepted.length, 1);
  });
});

describe("config/examples/caep.yaml", () => {
  test("loads with stand-in secrets", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-caep-example-"));
    writeFileSync(join(dir, "caep-es256.pem"), String(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" })));
    writeFileSync(join(dir, "saas-ssf-token"), "Bearer example-saas-token-0123456789\n");
    writeFileSync(join(dir, "api-token"), "example-token-0123456789abcdef\n");
    const file = new URL("../../../config/examples/caep.yaml", import.meta.url);
    const text = readFileSync(file, "utf8").replaceAll("/run/credentials/vigil.service", dir);
    const cfg = await loadConfigText(text, file.pathname);
    assert.deepEqual(Object.keys(cfg.providers), ["caep"]);
    assert.ok(cfg.policies.length > 0);
  });
});
