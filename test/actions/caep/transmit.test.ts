import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { compactVerify, createLocalJWKSet } from "jose";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { caepProvider } from "../../../src/actions/caep/provider.ts";
import { withoutSignature } from "../../../src/actions/caep/client.ts";
import { transmitAction } from "../../../src/actions/caep/transmit.ts";
import { MASK } from "../../../src/util/redact.ts";
import { actionContext, attempt } from "../../helpers/action-context.ts";
import { aliceRequest, DECIDED_AT_S, ISSUER, KEYS, world } from "./world.ts";

const CAEP = "https://schemas.openid.net/secevent/caep/event-type/";
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TOKEN = "Bearer ssf-receiver-token-0123456789";

describe("caep:transmit apply", () => {
  test("session-revoked: one signed SET per receiver, with the SSF claims and nothing else", async () => {
    const w = await world({ receivers: [{ name: "idp" }, { name: "saas", authorization: TOKEN, subject: { format: "opaque" } }] });
    const action = w.action({ event: "session-revoked" });
    const outcome = await action.apply(aliceRequest());

    assert.equal(outcome.verified, true);
    const idp = w.receivers.idp!;
    const saas = w.receivers.saas!;
    assert.equal(idp.accepted.length, 1);
    assert.equal(saas.accepted.length, 1);
    const a = idp.accepted[0]!;
    const b = saas.accepted[0]!;
    assert.deepEqual(a.header, { alg: "ES256", kid: "k1", typ: "secevent+jwt" });
    assert.deepEqual(Object.keys(a.claims).sort(), ["aud", "events", "iat", "iss", "jti", "sub_id", "txn"]);
    assert.equal(a.claims.iss, ISSUER);
    assert.equal(a.claims.aud, idp.api.base, "aud defaults to the endpoint's origin");
    assert.equal(a.claims.iat, DECIDED_AT_S);
    assert.match(a.claims.jti as string, UUID_RE);
    assert.notEqual(a.claims.jti, b.claims.jti, "one jti per receiver");
    assert.equal(a.claims.txn, b.claims.txn, "one txn per decision");
    assert.deepEqual(a.claims.sub_id, { format: "email", email: "alice@example.com" });
    assert.deepEqual(b.claims.sub_id, { format: "opaque", id: "alice" });
    assert.equal(a.event, `${CAEP}session-revoked`);
    assert.deepEqual(a.payload, { event_timestamp: DECIDED_AT_S, initiating_entity: "policy", reason_admin: { en: "vigil policy perimeter: TEST" } });
    assert.equal(saas.api.requests[0]!.headers["authorization"], TOKEN);
    assert.equal(idp.api.requests[0]!.headers["authorization"], undefined, "only receivers that require it get an Authorization header");
    assert.deepEqual(outcome.detail, {
      event: "session-revoked",
      operation: "apply",
      receivers: { idp: { status: 202, jti: a.claims.jti }, saas: { status: 202, jti: b.claims.jti } },
    });
  });

  test("a second implementation (jose) verifies the same tokens against the published JWKS", async () => {
    const w = await world({ keys: [{ kid: "ec", private_key: KEYS.ec }, { kid: "rsa", alg: "RS256", private_key: KEYS.rsa }] });
    await w.action({ event: "session-revoked" }).apply(aliceRequest());
    w.restart({ signing_kid: "rsa" });
    await w.action({ event: "session-revoked" }).apply(aliceRequest({ generation: 3 }));
    const jwks = createLocalJWKSet(JSON.parse(caepProvider.publicDocuments!(w.client)["/.well-known/jwks.json"]!.body()));
    for (const set of w.receivers.idp!.accepted) {
      // compactVerify checks signature and algorithm; the SET media type is asserted here (RFC 8417 §2.3).
      const { protectedHeader, payload } = await compactVerify(set.raw, jwks, { algorithms: ["ES256", "RS256"] });
      assert.equal(protectedHeader.typ, "secevent+jwt");
      assert.equal(protectedHeader.kid, set.header.kid);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), set.claims);
    }
    assert.deepEqual(w.receivers.idp!.accepted.map((s) => s.header.kid), ["ec", "rsa"]);
  });

  test("reason_admin and reason_user as configured, in one or several languages", async () => {
    const w = await world();
    await w.action({ event: "session-revoked", reason_admin: "Landspeed violation", reason_user: { en: "Please sign in again.", de: "Bitte melden Sie sich erneut an." } }).apply(aliceRequest());
    const payload = w.receivers.idp!.accepted[0]!.payload;
    assert.deepEqual(payload.reason_admin, { en: "Landspeed violation" });
    assert.deepEqual(payload.reason_user, { en: "Please sign in again.", de: "Bitte melden Sie sich erneut an." });
  });

  test("receivers: sends only to the named receivers; an unknown name fails at create", async () => {
    const w = await world({ receivers: [{ name: "idp" }, { name: "saas" }] });
    await w.action({ event: "session-revoked", receivers: ["saas"] }).apply(aliceRequest());
    assert.equal(w.receivers.idp!.api.requests.length, 0);
    assert.equal(w.receivers.saas!.accepted.length, 1);
    assert.throws(() => w.action({ event: "session-revoked", receivers: ["nope"] }), /no receiver "nope"; known: idp, saas/);
  });

  test("every RFC 9493 subject format the receivers ask for", async () => {
    const formats = [
      { subject: { format: "email" }, want: { format: "email", email: "alice@example.com" } },
      { subject: { format: "opaque", from: "user-{{id}}" }, want: { format: "opaque", id: "user-alice" } },
      { subject: { format: "iss_sub", iss: "https://idp.example.com/" }, want: { format: "iss_sub", iss: "https://idp.example.com/", sub: "alice" } },
      { subject: { format: "did", from: "did:example:{{id}}" }, want: { format: "did", url: "did:example:alice" } },
      { subject: { format: "uri" }, want: { format: "uri", uri: "spiffe://example.org/ns/web/sa/alice" } },
      { subject: { format: "phone_number", from: "{{attributes.phone}}" }, want: { format: "phone_number", phone_number: "+4915112345678" } },
      { subject: { format: "account" }, want: { format: "account", uri: "acct:alice@example.com" } },
    ];
    const w = await world({ receivers: formats.map((f, i) => ({ name: `r${i}`, subject: f.subject })) });
    await w.action({ event: "session-revoked" }).apply(aliceRequest({ subject: { identity: "spiffe://example.org/ns/web/sa/alice", attributes: { email: "alice@example.com", phone: "+4915112345678" } } }));
    formats.forEach((f, i) => assert.deepEqual(w.receivers[`r${i}`]!.accepted[0]!.claims.sub_id, f.want, f.subject.format));
  });

  test("aud as configured: a string or a list", async () => {
    const w = await world({ receivers: [{ name: "one", audience: "https://rp.example.com", expects: "https://rp.example.com" }, { name: "two", audience: ["https://a.example", "https://b.example"], expects: "https://b.example" }] });
    await w.action({ event: "session-revoked" }).apply(aliceRequest());
    assert.equal(w.receivers.one!.accepted[0]!.claims.aud, "https://rp.example.com");
    assert.deepEqual(w.receivers.two!.accepted[0]!.claims.aud, ["https://a.example", "https://b.example"]);
  });

  test("a missing subject value is an input error and nothing is sent to any receiver", async () => {
    const w = await world({ receivers: [{ name: "idp" }, { name: "saas", subject: { format: "opaque" } }] });
    const action = w.action({ event: "session-revoked" });
    const req = aliceRequest({ subject: { attributes: {} } });
    assert.throws(() => action.plan(req), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
    const r = await attempt(() => action.apply(req));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof VigilError && r.error.code === "VIGIL_ERR_ACTION_INPUT");
    assert.match((r.error as Error).message, /caep receiver idp|attributes\.email/);
    assert.equal(w.receivers.idp!.api.requests.length + w.receivers.saas!.api.requests.length, 0);
  });

  test("a malformed identifier is an input error too", async () => {
    const w = await world({ receivers: [{ name: "idp", subject: { format: "phone_number", from: "{{attributes.phone}}" } }] });
    await assert.rejects(w.action({ event: "session-revoked" }).apply(aliceRequest({ subject: { attributes: { phone: "0151 1234" } } })), /not an E\.164 phone number/);
    assert.equal(w.receivers.idp!.api.requests.length, 0);
  });
});

describe("caep:transmit events, apply and revert", () => {
  const cases: { config: Record<string, unknown>; apply: Record<string, unknown>; revert?: Record<string, unknown> }[] = [
    { config: { event: "session-revoked" }, apply: {} },
    { config: { event: "credential-change", credential_type: "x509" }, apply: { credential_type: "x509", change_type: "revoke" } },
    { config: { event: "credential-change", credential_type: "fido2-roaming", change_type: "delete" }, apply: { credential_type: "fido2-roaming", change_type: "delete" } },
    {
      config: { event: "assurance-level-change" },
      apply: { namespace: "NIST-AAL", current_level: "nist-aal1", previous_level: "nist-aal2", change_direction: "decrease" },
      revert: { namespace: "NIST-AAL", current_level: "nist-aal2", previous_level: "nist-aal1", change_direction: "increase" },
    },
    {
      config: { event: "assurance-level-change", namespace: "RFC8176", current_level: "pwd", previous_level: "mfa" },
      apply: { namespace: "RFC8176", current_level: "pwd", previous_level: "mfa", change_direction: "decrease" },
      revert: { namespace: "RFC8176", current_level: "mfa", previous_level: "pwd", change_direction: "increase" },
    },
    {
      config: { event: "device-compliance-change" },
      apply: { current_status: "not-compliant", previous_status: "compliant" },
      revert: { current_status: "compliant", previous_status: "not-compliant" },
    },
    {
      config: { event: "risk-level-change" },
      apply: { principal: "USER", current_level: "HIGH", risk_reason: "TEST" },
      revert: { principal: "USER", current_level: "LOW", risk_reason: "TEST" },
    },
  ];

  for (const c of cases) {
    test(`${JSON.stringify(c.config)}`, async () => {
      const w = await world();
      const action = w.action(c.config);
      const applyReq = aliceRequest({ access: "deny", previous: "full_access", generation: 2 });
      assert.equal((await action.apply(applyReq)).verified, true);
      const reason = { event_timestamp: DECIDED_AT_S, initiating_entity: "policy", reason_admin: { en: "vigil policy perimeter: TEST" } };
      const got = w.receivers.idp!.accepted;
      assert.equal(got[0]!.event, `${CAEP}${c.config.event}`);
      assert.deepEqual(got[0]!.payload, { ...c.apply, ...reason });

      const revertReq = aliceRequest({ access: "full_access", previous: "deny", operation: "revert", generation: 3 });
      if (c.revert) {
        assert.equal(typeof action.revert, "function");
        assert.equal((await action.revert!(revertReq)).verified, true);
        assert.deepEqual(got[1]!.payload, { ...c.revert, ...reason });
        assert.notEqual(got[1]!.claims.jti, got[0]!.claims.jti);
      } else {
        // A revoked session or credential has no way back: the action offers no revert, and the engine treats it as not revertible.
        assert.equal(action.revert, undefined);
        assert.deepEqual(action.plan(revertReq), []);
        assert.equal(got.length, 1);
      }
    });
  }

  test("risk-level-change: principal follows the subject's kind unless configured", async () => {
    const w = await world({ receivers: [{ name: "idp", subject: { format: "opaque" } }] });
    await w.action({ event: "risk-level-change" }).apply(aliceRequest({ subject: { id: "laptop-42", kind: "device" }, access: "read_only" }));
    await w.action({ event: "risk-level-change", principal: "TENANT" }).apply(aliceRequest({ generation: 5 }));
    const [device, tenant] = w.receivers.idp!.accepted;
    assert.equal(device!.payload.principal, "DEVICE");
    assert.equal(device!.payload.current_level, "MEDIUM");
    assert.equal(tenant!.payload.principal, "TENANT");
  });

  test("every supported signing algorithm verifies at the receiver", async () => {
    for (const [alg, pem] of [["ES256", KEYS.ec], ["RS256", KEYS.rsa], ["PS256", KEYS.rsa], ["EdDSA", KEYS.ed25519]] as const) {
      const w = await world({ keys: [{ kid: `k-${alg}`, alg, private_key: pem }] });
      assert.equal((await w.action({ event: "session-revoked" }).apply(aliceRequest())).verified, true, alg);
      assert.deepEqual(w.receivers.idp!.accepted[0]!.header, { alg, kid: `k-${alg}`, typ: "secevent+jwt" });
      assert.deepEqual(w.receivers.idp!.rejected, []);
    }
  });

  test("key rotation: the JWKS lists both keys; SETs switch to the new signing key and the old ones still verify", async () => {
    const keys = [{ kid: "2026-01", private_key: KEYS.ec }, { kid: "2026-07", alg: "RS256", private_key: KEYS.rsa }];
    const w = await world({ keys });
    await w.action({ event: "session-revoked" }).apply(aliceRequest({ generation: 2 }));
    w.restart({ signing_kid: "2026-07" });
    const jwks = JSON.parse(caepProvider.publicDocuments!(w.client)["/.well-known/jwks.json"]!.body()) as { keys: { kid: string }[] };
    assert.deepEqual(jwks.keys.map((k) => k.kid), ["2026-01", "2026-07"]);
    await w.action({ event: "session-revoked" }).apply(aliceRequest({ generation: 3 }));
    const r = w.receivers.idp!;
    assert.deepEqual(r.accepted.map((s) => s.header.kid), ["2026-01", "2026-07"]);
    assert.deepEqual(r.accepted.map((s) => s.header.alg), ["ES256", "RS256"]);
    assert.deepEqual(r.rejected, []);

    // Once the old key leaves the JWKS, tokens signed with it are refused.
    w.restart({ keys: [keys[1]], signing_kid: "2026-07" });
    const stale = w.receivers.idp!.accepted[0]!.raw;
    const res = await fetch(r.endpoint, { method: "POST", headers: { "content-type": "application/secevent+jwt", accept: "application/json" }, body: stale });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { err: "invalid_key", description: "kid 2026-01 is not in the transmitter's JWKS" });
  });
});

describe("caep:transmit delivery", () => {
  test("re-apply is idempotent: acknowledged receivers are not pushed again; after a restart the same jti is re-sent and de-duplicated", async () => {
    const w = await world();
    const action = w.action({ event: "device-compliance-change" });
    const req = aliceRequest();
    const first = await action.apply(req);
    const second = await action.apply(req);
    const r = w.receivers.idp!;
    assert.equal(r.api.requests.length, 1, "remembered acknowledgement");
    assert.equal(second.verified, true);
    const jti = r.accepted[0]!.claims.jti;
    assert.deepEqual((second.detail as { receivers: unknown }).receivers, { idp: { status: 202, jti, earlier: true } });
    assert.deepEqual(action.plan(req), [], "nothing left to send");
    assert.equal(first.verified, true);

    w.restart();
    const third = await w.action({ event: "device-compliance-change" }).apply(req);
    assert.equal(third.verified, true);
    assert.equal(r.api.requests.length, 2);
    assert.equal(r.accepted.length, 1, "the receiver de-duplicates by jti");
    assert.equal(r.duplicates, 1);
    assert.deepEqual(JSON.parse(Buffer.from(r.api.requests[1]!.body.split(".")[1]!, "base64url").toString()).jti, jti);
  });

  test("429 with Retry-After: transient with the hint in ms; the retry delivers once", async () => {
    const w = await world();
    w.receivers.idp!.tooManyRequests(3);
    const action = w.action({ event: "session-revoked" });
    const r = await attempt(() => action.apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [3000]);
    assert.equal(r.value?.verified, true);
    assert.equal(w.receivers.idp!.accepted.length, 1);
    assert.equal(w.receivers.idp!.api.requests.length, 2);
  });

  test("one receiver failing: the retry pushes only to it, not to the receivers that acknowledged", async () => {
    const w = await world({ receivers: [{ name: "idp" }, { name: "saas" }] });
    w.receivers.saas!.unavailable(1);
    const action = w.action({ event: "session-revoked" });
    const r = await attempt(() => action.apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [7000]);
    assert.equal(w.receivers.idp!.api.requests.length, 1);
    assert.equal(w.receivers.saas!.api.requests.length, 2);
    assert.equal(w.receivers.saas!.accepted.length, 1);
    assert.equal(r.value?.verified, true);
    const receivers = (r.value?.detail as { receivers: Record<string, { earlier?: boolean }> }).receivers;
    assert.equal(receivers.idp!.earlier, true);
    assert.equal(receivers.saas!.earlier, undefined);
  });

  test("400 from the receiver (RFC 8935 error) is permanent: one attempt, one request, the err code kept", async () => {
    const w = await world({ receivers: [{ name: "idp", expects: "https://someone-else.example" }] });
    const r = await attempt(() => w.action({ event: "session-revoked" }).apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError && !r.error.transient);
    assert.equal((r.error as UpstreamError).status, 400);
    assert.equal((r.error as UpstreamError).details.err, "invalid_audience");
    assert.equal((r.error as UpstreamError).details.receiver, "idp");
    assert.match((r.error as Error).message, /^caep receiver idp: POST .* → 400/);
    assert.equal(w.receivers.idp!.api.requests.length, 1);
  });

  test("403 (wrong credential) and 401 (none) are permanent: one attempt, one request", async () => {
    const w = await world({ receivers: [{ name: "wrong", authorization: "Bearer not-the-right-one-123", requires: TOKEN }, { name: "none", requires: TOKEN }] });
    for (const [name, status] of [["wrong", 403], ["none", 401]] as const) {
      const r = await attempt(() => w.action({ event: "session-revoked", receivers: [name] }).apply(aliceRequest()));
      assert.equal(r.attempts, 1, name);
      assert.ok(r.error instanceof UpstreamError && !r.error.transient && r.error.status === status, name);
      assert.equal(w.receivers[name]!.api.requests.length, 1, name);
      assert.equal(w.receivers[name]!.accepted.length, 0, name);
    }
  });

  test("a transient and a permanent failure together: retried for the transient one, then the permanent refusal stands without a second push", async () => {
    const w = await world({ receivers: [{ name: "down", subject: { format: "opaque" } }, { name: "refuses", expects: "https://someone-else.example" }] });
    w.receivers.down!.unavailable(1);
    const r = await attempt(() => w.action({ event: "session-revoked" }).apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.ok(r.error instanceof UpstreamError && !r.error.transient && r.error.status === 400);
    assert.equal(w.receivers.down!.accepted.length, 1);
    assert.equal(w.receivers.refuses!.api.requests.length, 1);
  });

  test("a 2xx other than 202 is delivered but not verified", async () => {
    const w = await world();
    w.receivers.idp!.fault({ status: 200, body: {} });
    const outcome = await w.action({ event: "session-revoked" }).apply(aliceRequest());
    assert.equal(outcome.verified, false);
    assert.equal((outcome.detail as { receivers: { idp: { status: number } } }).receivers.idp.status, 200);
  });

  test("dry run: plan() sends nothing, shows the SET decoded, and equals what apply sends byte for byte but the masked signature", async () => {
    const w = await world({ receivers: [{ name: "idp" }, { name: "saas", authorization: TOKEN, subject: { format: "opaque" } }] });
    const action = w.action({ event: "risk-level-change" });
    const req = aliceRequest();
    const plan = action.plan(req);
    assert.equal(w.receivers.idp!.api.requests.length + w.receivers.saas!.api.requests.length, 0);
    assert.equal(plan.length, 2);

    const text = JSON.stringify(plan);
    assert.ok(!text.includes(TOKEN) && !text.includes("ssf-receiver-token"), "the receiver credential is masked");
    assert.ok(!text.includes("PRIVATE KEY"), "no key material");
    assert.deepEqual(plan[1]!.headers, { "Content-Type": "application/secevent+jwt", Accept: "application/json", Authorization: MASK });
    assert.deepEqual(plan[0]!.headers, { "Content-Type": "application/secevent+jwt", Accept: "application/json" });

    await action.apply(req);
    const sent = [...w.receivers.idp!.api.handled, ...w.receivers.saas!.api.handled];
    assert.deepEqual(
      plan.map((p) => [p.method, new URL(p.url).pathname, new URL(p.url).port, p.body]),
      sent.map((s, i) => [s.method, s.path, new URL(i === 0 ? w.receivers.idp!.endpoint : w.receivers.saas!.endpoint).port, withoutSignature(s.body)]),
    );
    const decoded = plan.map((p) => (p as unknown as { set: { header: unknown; claims: unknown } }).set);
    assert.deepEqual(decoded, [w.receivers.idp!.accepted[0]!, w.receivers.saas!.accepted[0]!].map((s) => ({ header: s.header, claims: s.claims })));
    assert.match(plan[0]!.summary!, /^push risk-level-change \(apply\) SET [0-9a-f-]{36} about email:alice@example\.com to receiver idp$/);
  });

  test("a plan, and so a dry run's audit entry, holds no SET signature a receiver would accept", async () => {
    const w = await world({ receivers: [{ name: "idp" }] });
    const action = w.action({ event: "device-compliance-change" });
    const req = aliceRequest({ operation: "revert" });
    const [planned] = action.plan(req);
    const body = planned!.body as string;
    assert.match(body, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.\[REDACTED\]$/);
    // Replayed as it stands, the planned token is refused: it is no signed "compliant again" statement.
    const replay = await fetch(w.receivers.idp!.endpoint, { method: "POST", headers: { "content-type": "application/secevent+jwt", accept: "application/json" }, body });
    assert.equal(replay.status, 400);
    assert.equal(w.receivers.idp!.accepted.length, 0);
    // The token apply sends carries the same signed part and a signature the plan never showed.
    await action.revert!(req);
    const sent = w.receivers.idp!.accepted[0]!.raw;
    assert.equal(withoutSignature(sent), body);
    assert.ok(!JSON.stringify(action.plan(aliceRequest({ operation: "revert", generation: 9 }))).includes(sent.split(".")[2]!));
    assert.ok(!JSON.stringify(planned).includes(sent.split(".")[2]!));
  });

  test("the circuit opens after repeated 5xx and the next push fails fast without reaching the receiver", async () => {
    const w = await world({ circuit: { failures: 2, open_for: "1m" } });
    w.receivers.idp!.unavailable(5);
    const action = w.action({ event: "session-revoked" });
    for (let g = 2; g <= 3; g++) {
      await assert.rejects(action.apply(aliceRequest({ generation: g })), (e: unknown) => e instanceof UpstreamError && e.transient && e.status === 503);
    }
    assert.equal(w.client.breaker.state, "open");
    await assert.rejects(action.apply(aliceRequest({ generation: 4 })), (e: unknown) => e instanceof UpstreamError && e.transient && (e.retryAfterMs ?? 0) > 0 && /circuit open/.test(e.message));
    assert.equal(w.receivers.idp!.api.requests.length, 2);
  });

  test("the action refuses to run without a caep provider", () => {
    assert.throws(() => transmitAction.create(transmitAction.configSchema.parse({ event: "session-revoked" }), actionContext(undefined)), /needs a caep provider/);
  });
});
