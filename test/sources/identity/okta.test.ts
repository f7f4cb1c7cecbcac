/**
 * The Okta identity source against a local org that enforces the documented contract: users listed
 * once (deactivated ones included) then read by `lastUpdated`, group members, the System Log polled
 * from its next link (sign-ins, MFA in the session, MFA failures, risk changes), users' risk objects,
 * rate limits with X-Rate-Limit-Reset, 5xx, refusals naming the scope, links leaving the org.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { z } from "zod";
import { OktaFake } from "../../helpers/fakes/okta.ts";
import { checkPluginContext, type TestContext } from "../../helpers/check-context.ts";
import { OktaIdentitySource, parseOktaRisk, methodRef } from "../../../src/sources/identity/okta.ts";
import { oktaConnectionShape } from "../../../src/sources/identity/schema.ts";
import { UpstreamError } from "../../../src/errors.ts";

const schema = z.object(oktaConnectionShape).strict();
const TOKEN = "00Okta-identity-test-token-9Lm2Xc4Vb8Nw1Qz";
const CLIENT = "0oa1vigilreader0000x7";
const keys = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });

let fake: OktaFake;
let ctx: TestContext;

before(async () => {
  fake = new OktaFake({ apiToken: TOKEN, clients: [{ client_id: CLIENT, publicKey: keys.publicKey, scopes: ["okta.users.read", "okta.groups.read"] }] });
  await fake.start();
  ctx = checkPluginContext();
});
after(async () => {
  await fake.stop();
  await ctx.http.close();
});

function source(extra: Record<string, unknown> = {}): OktaIdentitySource {
  return new OktaIdentitySource(schema.parse({ type: "okta", org_url: fake.base, auth: { type: "ssws", token: TOKEN }, ...extra }), ctx);
}

const signal = () => AbortSignal.timeout(20_000);
const FRESH = -1;

function reset(): void {
  fake.users.clear();
  fake.groups.clear();
  fake.userRisk.clear();
  fake.logEvents.length = 0;
  fake.allowAll();
  fake.api.clear();
}

const id = (i: number) => `00u${String(i).padStart(8, "0")}aBcD`;

describe("Okta users", () => {
  test("the first sync lists everyone in pages of 200, deactivated users too; later ones only what changed", async () => {
    reset();
    for (let i = 0; i < 450; i++) fake.addUser(id(i), i === 3 ? "SUSPENDED" : i === 4 ? "DEPROVISIONED" : "ACTIVE", { passwordChanged: Date.parse("2026-02-01T10:00:00Z") });
    // Created a while ago: the incremental read's second of overlap does not reach them.
    [...fake.users.values()].forEach((u, i) => (u.lastUpdated = Date.now() - 60_000 - i * 1_000));
    const src = source();
    const dir = (await src.users().get(FRESH, signal())).value;
    assert.equal(dir.size, 450);
    const lists = fake.apiRequests().filter((r) => r.path === "/api/v1/users");
    assert.equal(lists.length, 4, "three pages of everyone but the deactivated, one page of the deactivated");
    assert.equal(lists[0]!.query.get("limit"), "200");
    assert.ok(lists[1]!.query.get("after"), "the next link's cursor");
    assert.equal(lists[3]!.query.get("filter"), 'status eq "DEPROVISIONED"');
    assert.equal(dir.get(id(3))!.enabled, false);
    assert.equal(dir.get(id(4))!.status, "DEPROVISIONED");
    assert.equal(dir.get(id(4))!.enabled, false);
    assert.equal(dir.get(id(5))!.enabled, true);
    assert.equal(dir.get(id(5))!.passwordChangedAt, Date.parse("2026-02-01T10:00:00Z"));
    assert.equal(dir.find([`${id(5).toLowerCase()}`])?.id, id(5), "mixed-case ids are found from lower-cased keys");
    assert.equal(dir.find([`${id(6)}@example.com`.toLowerCase()])?.id, id(6));

    fake.api.clear();
    fake.setStatus(id(7), "SUSPENDED");
    fake.setStatus(id(8), "DEPROVISIONED");
    fake.addUser(id(999));
    await src.users().get(FRESH, signal());
    const incremental = fake.apiRequests().filter((r) => r.path === "/api/v1/users");
    assert.equal(incremental.length, 2, "two calls, not a listing");
    assert.match(incremental[0]!.query.get("filter")!, /^lastUpdated gt "\d{4}-\d\d-\d\dT[\d:.]+Z"$/);
    assert.match(incremental[1]!.query.get("filter")!, /and status eq "DEPROVISIONED"$/);
    assert.equal(dir.get(id(7))!.status, "SUSPENDED");
    assert.equal(dir.get(id(8))!.status, "DEPROVISIONED");
    assert.ok(dir.get(id(999)));
    assert.equal(src.lastUserSync()?.kind, "delta");
    assert.equal(src.lastUserSync()?.changes, 3);
    await src.close();
  });

  test("a search expression scopes both the listing and the incremental reads", async () => {
    reset();
    fake.addUser(id(1), "ACTIVE", { department: "Engineering" });
    fake.addUser(id(2), "ACTIVE", { department: "Sales" });
    const src = source();
    const dir = (await src.users('profile.department eq "Engineering"').get(FRESH, signal())).value;
    assert.deepEqual([...dir.values()].map((u) => u.id), [id(1)]);
    fake.api.clear();
    await src.users('profile.department eq "Engineering"').get(FRESH, signal());
    assert.match(fake.apiRequests()[0]!.query.get("search")!, /^\(profile\.department eq "Engineering"\) and lastUpdated gt /);
    await src.close();
  });

  test("group members through pages", async () => {
    reset();
    for (let i = 0; i < 5; i++) fake.addUser(id(i));
    const g = fake.addGroup("00g1engineering0000x7");
    fake.addMember(g.id, id(1));
    fake.addMember(g.id, id(3));
    const src = source({ page_size: 1 });
    const members = (await src.groupMembers([g.id]).get(FRESH, signal())).value;
    assert.deepEqual([...members].sort(), [id(1), id(3)]);
    await src.close();
  });
});

describe("Okta System Log", () => {
  test("one polling stream: since on the first poll, the next link after; one call per tick when caught up", async () => {
    reset();
    fake.addUser(id(1));
    fake.addUser(id(2));
    const now = Date.now();
    fake.mfa(id(1), { at: now - 60_000, sessionId: "102sessA", factor: "FIDO_WEBAUTHN" });
    fake.sessionStart(id(1), { at: now - 59_000, sessionId: "102sessA", country: "France", city: "Paris", lat: 48.85, lon: 2.35, managed: true, deviceId: "guoDevice1" });
    fake.sessionStart(id(2), { at: now - 30_000, sessionId: "102sessB", country: "United States" });
    const src = source();
    const activity = (await src.signIns().get(FRESH, signal())).value;
    const first = fake.apiRequests().filter((r) => r.path === "/api/v1/logs");
    assert.equal(first.length, 1);
    assert.equal(first[0]!.query.get("sortOrder"), "ASCENDING");
    assert.equal(first[0]!.query.get("limit"), "1000");
    assert.ok(first[0]!.query.get("since"));
    assert.equal(first[0]!.query.get("until"), null, "a polling request");
    assert.match(first[0]!.query.get("filter")!, /eventType eq "user\.session\.start" or eventType eq "user\.authentication\.auth_via_mfa"/);
    const a = activity.get(id(1))!;
    assert.equal(a.last?.country, "FR", "country names become ISO codes");
    assert.equal(a.last?.lat, 48.85);
    assert.equal(a.last?.mfa, true);
    assert.deepEqual(a.last?.amr, ["pwd", "mfa", "hwk"]);
    assert.equal(a.last?.deviceManaged, true);
    assert.equal(a.last?.deviceId, "guoDevice1");
    const b = activity.get(id(2))!;
    assert.equal(b.last?.country, "US");
    assert.equal(b.last?.mfa, false, "no factor in the session");
    assert.deepEqual(b.last?.amr, ["pwd"]);

    fake.api.clear();
    // A factor verified after the session started upgrades that sign-in; a failed one counts as an MFA failure.
    fake.mfa(id(2), { at: now - 20_000, sessionId: "102sessB", factor: "OKTA_VERIFY_PUSH", type: "user.authentication.verify" });
    fake.mfa(id(1), { at: now - 10_000, sessionId: "102sessC", result: "FAILURE" });
    fake.mfa(id(1), { at: now - 9_000, sessionId: "102sessC", factor: "Password", result: "FAILURE" });
    await src.signIns().get(FRESH, signal());
    const polls = fake.apiRequests().filter((r) => r.path === "/api/v1/logs");
    assert.equal(polls.length, 1, "one call covers the org");
    assert.ok(polls[0]!.query.get("after"), "resumed from the next link");
    assert.equal(polls[0]!.query.get("since"), null);
    assert.equal(activity.get(id(2))!.last?.mfa, true);
    assert.deepEqual(activity.get(id(2))!.last?.amr, ["pwd", "mfa", "swk"]);
    assert.equal(activity.get(id(1))!.mfaFailures.length, 1, "a wrong password is not an MFA failure");

    fake.api.clear();
    await src.signIns().get(FRESH, signal());
    assert.equal(fake.apiRequests().length, 1, "nothing new: still one call");
    await src.close();
  });

  test("429 waits until X-Rate-Limit-Reset and succeeds; 500 is retried", async () => {
    reset();
    fake.addUser(id(1));
    fake.rateLimit({ path: /\/api\/v1\/logs$/ }, 1);
    fake.serverError({ path: /\/api\/v1\/logs$/ }, 500);
    const src = source();
    const started = Date.now();
    await src.signIns().get(FRESH, signal());
    assert.ok(Date.now() - started >= 500, "waited for the reset");
    assert.equal(fake.api.pendingFaults, 0);
    await src.close();
  });

  test("a 403 names the scope the call needs; the API token never appears in the error", async () => {
    reset();
    fake.deny({ path: /\/api\/v1\/logs$/ });
    const src = source();
    await assert.rejects(src.signIns().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && !err.transient && err.status === 403 && /okta\.logs\.read/.test(err.message) && !err.message.includes(TOKEN));
    await src.close();
    fake.allowAll();
    const oauth = source({ auth: { type: "oauth", client_id: CLIENT, private_key: keys.privateKey, scopes: ["okta.users.read", "okta.groups.read"] } });
    await assert.rejects(oauth.signIns().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && err.status === 403 && /grant the scope okta\.logs\.read/.test(err.message));
    await oauth.close();
  });

  test("a next link that leaves the org is refused", async () => {
    reset();
    fake.api.fail({ path: /\/api\/v1\/logs$/ }, { status: 200, headers: { Link: '<https://evil.example/api/v1/logs?after=1>; rel="next"' }, body: [] });
    const src = source();
    await assert.rejects(src.signIns().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && /leaves the org/.test(err.message));
    await src.close();
  });
});

describe("Okta risk", () => {
  test("user.risk.detect events by a cursor, and each changed user's risk object, bounded per tick", async () => {
    reset();
    for (let i = 1; i <= 3; i++) fake.addUser(id(i));
    fake.riskDetect(id(1), { level: "HIGH", previous: "LOW", detection: "Entity Critical Event", reasons: "Anomalous location, Anomalous device", issuer: "OKTA" });
    fake.riskDetect(id(2), { level: "MEDIUM" });
    fake.riskDetect(id(3), { level: "LOW" });
    const src = source();
    const set = (await src.risk(86_400_000, 2).get(FRESH, signal())).value;
    const logs = fake.apiRequests().filter((r) => r.path === "/api/v1/logs");
    assert.equal(logs[0]!.query.get("filter"), 'eventType eq "user.risk.detect"');
    assert.equal(fake.apiRequests().filter((r) => r.path.endsWith("/risk")).length, 2, "at most user_lookups risk objects per tick");
    const one = set.find([id(1).toLowerCase()])!;
    assert.equal(one.level, "HIGH");
    assert.equal(one.previous, "LOW");
    assert.equal(one.detection, "Entity Critical Event");
    assert.equal(one.reasons, "Anomalous location, Anomalous device");
    assert.equal(one.issuer, "OKTA");
    assert.equal(one.reason, "Anomalous location, Anomalous device", "the risk object's reason");
    assert.equal(set.find([`${id(2)}@example.com`.toLowerCase()])?.level, "MEDIUM", "found by login");
    // An admin resets a user's risk: the object says so on the next event-driven read.
    fake.api.clear();
    fake.riskDetect(id(1), { level: "LOW", previous: "HIGH", detection: "Admin Reset" });
    fake.userRisk.set(id(1), { riskLevel: "NONE" });
    await src.risk(86_400_000, 2).get(FRESH, signal());
    assert.equal(set.find([id(1).toLowerCase()])?.level, "NONE", "the risk object is the current truth");
    await src.close();
  });

  test("debugData.risk as Okta writes it, and as JSON", () => {
    assert.deepEqual(parseOktaRisk("{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, Anomalous device, issuer=OKTA}"), {
      previousLevel: "LOW",
      level: "MEDIUM",
      detectionName: "Session Influenced User Risk",
      reasons: "Anomalous location, Anomalous device",
      issuer: "OKTA",
    });
    assert.deepEqual(parseOktaRisk({ level: "HIGH", issuer: "PARTNER" }), { level: "HIGH", issuer: "PARTNER" });
    assert.equal(parseOktaRisk(""), undefined);
    assert.equal(parseOktaRisk(42), undefined);
  });

  test("factor names as RFC 8176 method references", () => {
    assert.equal(methodRef("FIDO_WEBAUTHN"), "hwk");
    assert.equal(methodRef("SMS_FACTOR"), "sms");
    assert.equal(methodRef("GOOGLE_AUTHENTICATOR"), "otp");
    assert.equal(methodRef("OKTA_VERIFY_PUSH"), "swk");
    assert.equal(methodRef("CALL"), "tel");
    assert.equal(methodRef("EMAIL_FACTOR"), "mfa");
  });
});
