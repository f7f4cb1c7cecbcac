/**
 * The Entra identity source against a local Graph that enforces the documented contract: users
 * listed once and then followed through delta links, 410 Gone starting over, group scoping, the
 * sign-in log read incrementally (beta and v1.0), Identity Protection read incrementally, throttling,
 * 5xx, missing permissions and licences, malformed and oversized answers.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { FakeGraphIdentity } from "../../helpers/fakes/graph-identity.ts";
import { checkPluginContext, type TestContext } from "../../helpers/check-context.ts";
import { EntraIdentitySource, USER_SELECT } from "../../../src/sources/identity/entra.ts";
import { entraConnectionShape } from "../../../src/sources/identity/schema.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { CLIENT_SECRET } from "../../helpers/fakes/entra.ts";

const schema = z.object(entraConnectionShape).strict();

let fake: FakeGraphIdentity;
let ctx: TestContext;

before(async () => {
  fake = new FakeGraphIdentity();
  await fake.start();
  ctx = checkPluginContext();
});
after(async () => {
  await fake.stop();
  await ctx.http.close();
});

function source(extra: Record<string, unknown> = {}): EntraIdentitySource {
  return new EntraIdentitySource(schema.parse({ type: "entra", ...fake.providerConfig(), ...extra }), ctx);
}

const signal = () => AbortSignal.timeout(20_000);
/** A max age no scan can meet: every `get` syncs. */
const FRESH = -1;

function reset(): void {
  fake.users.clear();
  fake.riskyUsers.clear();
  fake.signIns.length = 0;
  fake.detections.length = 0;
  fake.groups.clear();
  fake.premium = true;
  fake.p2 = true;
  fake.granted.clear();
  for (const p of ["User.Read.All", "GroupMember.Read.All", "Application.Read.All", "AuditLog.Read.All", "Directory.Read.All", "IdentityRiskyUser.Read.All", "IdentityRiskEvent.Read.All", "IdentityRiskyServicePrincipal.Read.All"]) fake.granted.add(p);
  fake.clear();
}

describe("Entra users: a full listing, then delta links", () => {
  test("the first sync takes a delta token, then lists every user with $select and $top=999", async () => {
    reset();
    fake.addUsers(2_100, (i) => (i === 5 ? { accountEnabled: false } : i === 6 ? { userType: "Guest", mail: null } : {}));
    const src = source();
    const dir = (await src.users().get(FRESH, signal())).value;
    assert.equal(dir.size, 2_100);
    const latest = fake.requestsTo("/v1.0/users/delta");
    assert.equal(latest.length, 1);
    assert.equal(latest[0]!.query.get("$deltatoken"), "latest");
    assert.deepEqual(latest[0]!.query.get("$select")!.split(","), [...USER_SELECT]);
    const lists = fake.requestsTo("/v1.0/users");
    assert.equal(lists.length, 3, "pages of 999");
    assert.equal(lists[0]!.query.get("$top"), "999");
    assert.deepEqual(src.lastUserSync, { kind: "full", changes: 2_100, calls: 4 });
    const five = dir.get(FakeGraphIdentity.user(5).id)!;
    assert.equal(five.enabled, false);
    assert.equal(five.status, "disabled");
    assert.equal(dir.get(FakeGraphIdentity.user(6).id)!.userType, "Guest");
    assert.equal(dir.get(FakeGraphIdentity.user(6).id)!.email, undefined);
    assert.equal(dir.find(["user7@contoso.example"])?.id, FakeGraphIdentity.user(7).id, "found by UPN, case-insensitively");
    assert.equal(dir.get(FakeGraphIdentity.user(1).id)!.passwordChangedAt, Date.parse("2026-01-15T08:00:00Z"));
    await src.close();
  });

  test("later syncs follow the delta link: one request, only the changes (updates, new users, deletions)", async () => {
    reset();
    fake.addUsers(1_500);
    const src = source();
    const dir = (await src.users().get(FRESH, signal())).value;
    const version = dir.version;
    fake.clear();
    fake.identityUser(FakeGraphIdentity.user(3).id)!.accountEnabled = false;
    fake.identityUser(FakeGraphIdentity.user(4).id)!.userPrincipalName = "renamed@contoso.example";
    fake.removeUser(FakeGraphIdentity.user(9).id);
    fake.addIdentityUser(FakeGraphIdentity.user(99_999));
    await src.users().get(FRESH, signal());
    assert.deepEqual(fake.lines().map((l) => l.split("?")[0]), ["GET /v1.0/users/delta"], "one call, no listing");
    assert.ok(fake.requestsTo("/v1.0/users/delta")[0]!.query.get("$deltatoken"), "the delta link of the last sync");
    assert.deepEqual(src.lastUserSync, { kind: "delta", changes: 4, calls: 1 });
    assert.equal(dir.size, 1_500);
    assert.equal(dir.get(FakeGraphIdentity.user(3).id)!.enabled, false);
    assert.equal(dir.find(["renamed@contoso.example"])?.id, FakeGraphIdentity.user(4).id);
    assert.equal(dir.get(FakeGraphIdentity.user(9).id), undefined, "@removed takes the user out");
    assert.ok(dir.get(FakeGraphIdentity.user(99_999).id));
    assert.ok(dir.version > version);
    // Nothing changed: still one call, nothing applied.
    fake.clear();
    const v2 = dir.version;
    await src.users().get(FRESH, signal());
    assert.equal(fake.lines().length, 1);
    assert.equal(dir.version, v2);
    await src.close();
  });

  test("410 Gone on a delta link starts over with a full listing; full_resync does too", async () => {
    reset();
    fake.addUsers(20);
    const src = source({ full_resync: "1h" });
    await src.users().get(FRESH, signal());
    fake.expireDeltaTokens();
    fake.clear();
    const dir = (await src.users().get(FRESH, signal())).value;
    assert.equal(dir.size, 20);
    assert.deepEqual(
      fake.lines().map((l) => l.split("?")[0]),
      ["GET /v1.0/users/delta", "GET /v1.0/users/delta", "GET /v1.0/users"],
      "the refused delta, a new token, the listing",
    );
    assert.equal(src.lastUserSync?.kind, "full");
    await src.close();
  });

  test("group scoping reads transitive user members, nested groups included", async () => {
    reset();
    const users = fake.addUsers(5);
    fake.addGroup("aaaaaaaa-0000-4000-8000-000000000001", [users[0]!.id, "aaaaaaaa-0000-4000-8000-000000000002"]);
    fake.addGroup("aaaaaaaa-0000-4000-8000-000000000002", [users[3]!.id]);
    const src = source();
    const members = (await src.groupMembers(["aaaaaaaa-0000-4000-8000-000000000001"]).get(FRESH, signal())).value;
    assert.deepEqual([...members].sort(), [users[0]!.id, users[3]!.id].map((x) => x.toLowerCase()).sort());
    await src.close();
  });

  test("a missing permission is a permanent error naming it; 429 and 503 are retried as Graph asks", async () => {
    reset();
    fake.addUsers(3);
    fake.granted.delete("User.Read.All");
    fake.granted.delete("Directory.Read.All");
    const src = source();
    await assert.rejects(src.users().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && !err.transient && err.status === 403 && /User\.Read\.All/.test(err.message));
    await src.close();
    fake.granted.add("User.Read.All");
    const ok = source();
    fake.throttle({ path: /\/users\/delta$/ }, 1, 1);
    fake.unavailable({ path: /\/users$/ }, 1, 1);
    const started = Date.now();
    const dir = (await ok.users().get(FRESH, signal())).value;
    assert.equal(dir.size, 3);
    assert.ok(Date.now() - started >= 1_900, "waited as Retry-After said, twice");
    assert.equal(fake.pendingFaults, 0);
    await ok.close();
  });

  test("malformed and oversized answers are refused, and the client secret never appears in errors", async () => {
    reset();
    fake.addUsers(3);
    fake.fail({ path: /\/users$/ }, { status: 200, body: { value: [{ id: 42, userPrincipalName: "x" }] } });
    const src = source();
    await assert.rejects(src.users().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && /malformed response/.test(err.message) && !err.message.includes(CLIENT_SECRET));
    await src.close();
    const small = source({ max_response_bytes: 65_536 });
    fake.addUsers(900);
    await assert.rejects(small.users().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && /larger than 65536 bytes/.test(err.message));
    await small.close();
  });
});

describe("Entra sign-in log", () => {
  test("beta: MFA, country, place and device of the latest successful sign-in; MFA failures counted", async () => {
    reset();
    const [alice, bob] = fake.addUsers(2);
    const now = Date.now();
    fake.addSignIn(alice!.id, { at: now - 3_600_000, mfa: true, country: "DE", city: "Berlin", deviceId: "D1D1D1D1-0000-4000-8000-000000000001", managed: true, compliant: true });
    fake.addSignIn(alice!.id, { at: now - 600_000, mfa: true, country: "FR", city: "Paris", lat: 48.85, lon: 2.35, managed: false, compliant: false });
    fake.addSignIn(bob!.id, { at: now - 60_000, mfa: false, country: "DE" });
    for (let i = 0; i < 3; i++) fake.addSignIn(bob!.id, { at: now - 30_000 + i, errorCode: 500121 });
    const src = source();
    const activity = (await src.signIns().get(FRESH, signal())).value;
    const req = fake.requestsTo("/beta/auditLogs/signIns")[0]!;
    assert.match(req.query.get("$filter")!, /^createdDateTime ge \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.equal(req.query.get("$top"), "1000");
    const a = activity.get(alice!.id)!;
    assert.equal(a.last?.country, "FR");
    assert.equal(a.last?.city, "Paris");
    assert.equal(a.last?.mfa, true);
    assert.deepEqual(a.last?.amr, ["pwd", "mfa"]);
    assert.equal(a.last?.deviceManaged, false);
    assert.equal(a.recent.length, 2);
    assert.equal(activity.lastOf(alice!.id), a.last);
    const b = activity.get(bob!.id)!;
    assert.equal(b.last?.mfa, false);
    assert.equal(b.mfaFailures.length, 3);
    await src.close();
  });

  test("later reads start a little before the newest sign-in seen, and a sign-in read twice counts once", async () => {
    reset();
    const [alice] = fake.addUsers(1);
    const now = Date.now();
    fake.addSignIn(alice!.id, { at: now - 120_000 });
    const src = source();
    const activity = (await src.signIns().get(FRESH, signal())).value;
    assert.equal(activity.get(alice!.id)!.seen, 1);
    fake.clear();
    fake.addSignIn(alice!.id, { at: now - 1_000, country: "NL" });
    await src.signIns().get(FRESH, signal());
    const filter = fake.requestsTo("/beta/auditLogs/signIns")[0]!.query.get("$filter")!;
    const from = Date.parse(filter.replace("createdDateTime ge ", ""));
    assert.ok(Math.abs(from - (now - 120_000 - 600_000)) <= 1_000, `starts overlap (10m) before the newest sign-in seen: ${filter}`);
    assert.equal(activity.get(alice!.id)!.seen, 2, "the first sign-in, read again, is not counted again");
    assert.equal(activity.get(alice!.id)!.last?.country, "NL");
    assert.equal(src.lastSignInSync?.calls, 1);
    await src.close();
  });

  test("v1.0: MFA only where Conditional Access enforced it, otherwise unknown", async () => {
    reset();
    const [alice, bob] = fake.addUsers(2);
    fake.addSignIn(alice!.id, { mfa: true });
    fake.addSignIn(bob!.id, { mfa: false });
    const src = source({ sign_ins: { api: "v1.0" } });
    const activity = (await src.signIns().get(FRESH, signal())).value;
    assert.equal(fake.requestsTo("/v1.0/auditLogs/signIns").length, 1);
    assert.equal(activity.get(alice!.id)!.last?.mfa, true);
    assert.equal(activity.get(bob!.id)!.last?.mfa, undefined, "v1.0 does not say a sign-in went without MFA");
    await src.close();
  });

  test("a tenant without P1/P2 is a permanent error naming the licence", async () => {
    reset();
    fake.premium = false;
    const src = source();
    await assert.rejects(
      src.signIns().get(FRESH, signal()),
      (err: unknown) => err instanceof UpstreamError && !err.transient && err.status === 403 && /not licensed/.test(err.message) && (err.details as { licence?: string }).licence === "Microsoft Entra ID P1 or P2",
    );
    await src.close();
  });
});

describe("Entra ID Protection", () => {
  test("risky users: all at first, then only those changed since (riskLastUpdatedDateTime)", async () => {
    reset();
    const [alice, bob] = fake.addUsers(2);
    fake.setRisk(alice!.id, { riskLevel: "high", riskState: "atRisk" });
    const src = source();
    const set = (await src.riskyUsers().get(FRESH, signal())).value;
    assert.equal(fake.requestsTo("/v1.0/identityProtection/riskyUsers")[0]!.query.get("$filter"), null);
    assert.equal(set.find([alice!.id.toLowerCase()])?.level, "high");
    assert.equal(set.find(["user0@contoso.example"])?.state, "atRisk");
    fake.clear();
    fake.setRisk(bob!.id, { riskLevel: "medium", riskState: "atRisk" });
    await src.riskyUsers().get(FRESH, signal());
    assert.match(fake.requestsTo("/v1.0/identityProtection/riskyUsers")[0]!.query.get("$filter")!, /^riskLastUpdatedDateTime ge /);
    assert.equal(set.find([bob!.id.toLowerCase()])?.level, "medium");
    assert.equal(set.find([alice!.id.toLowerCase()])?.level, "high", "unchanged users stay");
    await src.close();
  });

  test("detections: within the lookback at first, newest first per user; risky service principals", async () => {
    reset();
    const [alice] = fake.addUsers(1);
    const now = Date.now();
    fake.addDetection(alice!.id, { riskEventType: "unfamiliarFeatures", riskLevel: "medium", at: now - 3_600_000 });
    fake.addDetection(alice!.id, { riskEventType: "leakedCredentials", riskLevel: "high", detectionTimingType: "offline", at: now - 60_000 });
    fake.addServicePrincipal({ id: "bbbbbbbb-0000-4000-8000-000000000001", appId: "cccccccc-0000-4000-8000-000000000001", displayName: "payroll-sync", accountEnabled: true, servicePrincipalType: "Application" });
    fake.setServicePrincipalRisk("bbbbbbbb-0000-4000-8000-000000000001", { riskLevel: "high", riskState: "atRisk" });
    const src = source();
    const detections = (await src.detections(7 * 86_400_000, 5).get(FRESH, signal())).value;
    const req = fake.requestsTo("/v1.0/identityProtection/riskDetections")[0]!;
    assert.match(req.query.get("$filter")!, /^detectedDateTime ge /);
    assert.equal(req.query.get("$top"), "500");
    assert.deepEqual(detections.of(alice!.id.toLowerCase()).map((d) => d.type), ["leakedCredentials", "unfamiliarFeatures"]);
    const sps = (await src.riskyServicePrincipals().get(FRESH, signal())).value;
    assert.equal(sps.find(["cccccccc-0000-4000-8000-000000000001"])?.level, "high", "found by appId");
    await src.close();
  });

  test("a tenant without P2 is a permanent error naming the licence, not retried", async () => {
    reset();
    fake.p2 = false;
    const src = source();
    await assert.rejects(src.riskyUsers().get(FRESH, signal()), (err: unknown) => err instanceof UpstreamError && !err.transient && (err.details as { licence?: string }).licence === "Microsoft Entra ID P2");
    assert.equal(fake.requestsTo("/v1.0/identityProtection/riskyUsers").length, 1, "asked once");
    await src.close();
  });
});
