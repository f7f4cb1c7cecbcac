/**
 * user_risk_score gathering against the Graph and Okta contract servers: subjects matched to
 * provider users, one read per source and interval whatever the number of subjects, workloads by
 * their service principals, the computed score from real sign-ins, and every failure a clear
 * unknown (unreachable, throttled past the deadline, unlicensed, missing permission) without secrets.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { defineCheck } from "../../../src/plugin/check.ts";
import { userRiskScoreCheck, userRiskScoreConfigSchema } from "../../../src/checks/user_risk_score/index.ts";
import type { CheckResult, Subject } from "../../../src/policy/model.ts";
import { FakeGraphIdentity } from "../../helpers/fakes/graph-identity.ts";
import { CLIENT_SECRET } from "../../helpers/fakes/entra.ts";
import { OktaFake } from "../../helpers/fakes/okta.ts";
import { checkPluginContext, runContext, type TestContext } from "../../helpers/check-context.ts";

const OKTA_TOKEN = "00Okta-risk-check-token-2Xc4Vb8Nw1Qz9Lm";

let graph: FakeGraphIdentity;
let okta: OktaFake;
let ctx: TestContext;

before(async () => {
  graph = new FakeGraphIdentity();
  await graph.start();
  okta = new OktaFake({ apiToken: OKTA_TOKEN });
  await okta.start();
  ctx = checkPluginContext();
});
after(async () => {
  await graph.stop();
  await okta.stop();
  await ctx.http.close();
});

const entra = (extra: Record<string, unknown> = {}) => ({ type: "entra", ...graph.providerConfig(), ...extra });
const oktaSource = (extra: Record<string, unknown> = {}) => ({ type: "okta", org_url: okta.base, auth: { type: "ssws", token: OKTA_TOKEN }, ...extra });

async function run(config: Record<string, unknown>, subjects: Subject[], options: { timeoutMs?: number } = {}): Promise<CheckResult[]> {
  const parsed = userRiskScoreConfigSchema.parse(config);
  const check = userRiskScoreCheck.create(parsed, ctx);
  try {
    return await check.run(subjects, runContext(ctx, { check: "user_risk_score", ...options }));
  } finally {
    await check.stop?.();
  }
}

const user = (i: number, attributes: Record<string, unknown> = {}): Subject => ({ id: `u${i}`, kind: "user", identity: `user${i}@contoso.example`, attributes: { entra_id: FakeGraphIdentity.user(i).id, ...attributes }, labels: {} });

function resetGraph(): void {
  graph.users.clear();
  graph.riskyUsers.clear();
  graph.riskyServicePrincipals.clear();
  graph.servicePrincipals.clear();
  graph.signIns.length = 0;
  graph.detections.length = 0;
  graph.premium = true;
  graph.p2 = true;
  graph.clear();
}

describe("configuration", () => {
  test("without sources the check stays push-only", () => {
    const c = defineCheck(userRiskScoreCheck).configure({});
    assert.ok(c.success);
    assert.equal(c.pull, false);
    const pulled = defineCheck(userRiskScoreCheck).configure({ sources: [entra()] });
    assert.ok(pulled.success);
    assert.equal(pulled.pull, true);
  });

  test("what config can show is refused with its path", () => {
    const issues = (config: Record<string, unknown>) => {
      const r = userRiskScoreConfigSchema.safeParse(config);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    assert.match(issues({ sources: [{ type: "computed" }] }).join("\n"), /sources\.0: a computed source needs an entra or okta source/);
    assert.match(issues({ sources: [entra(), { type: "computed", from: ["okta"] }] }).join("\n"), /sources\.1\.from\.0: no entra or okta source named "okta"/);
    assert.match(issues({ sources: [entra(), entra()] }).join("\n"), /source name "entra" is already used/);
    assert.match(issues({ sources: [entra(), { type: "computed", thresholds: { medium: 80, high: 70 } }] }).join("\n"), /thresholds\.high must be above thresholds\.medium/);
    assert.match(issues({ sources: [entra(), { type: "computed", rules: { risky_networks: { lists: [{ name: "tor", cidrs: ["10.0.0.0/40"] }] } } }] }).join("\n"), /expected a CIDR block/);
    assert.match(issues({ sources: [entra({ tenant_id: "common" })] }).join("\n"), /name the tenant itself/);
    const pem = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----";
    assert.match(issues({ sources: [oktaSource({ auth: { type: "oauth", client_id: "0oa1", private_key: pem, scopes: ["okta.users.read"] } })] }).join("\n"), /sources\.0\.auth/);
  });
});

describe("Entra ID Protection", () => {
  test("each subject's risk from one read of riskyUsers and one of detections, for a whole batch", async () => {
    resetGraph();
    graph.addUsers(150);
    graph.setRisk(FakeGraphIdentity.user(1).id, { riskLevel: "high", riskState: "atRisk" });
    graph.addDetection(FakeGraphIdentity.user(1).id, { riskEventType: "leakedCredentials", riskLevel: "high", detectionTimingType: "offline" });
    graph.setRisk(FakeGraphIdentity.user(2).id, { riskLevel: "none", riskState: "dismissed", riskDetail: "adminDismissedAllRiskForUser" });
    graph.setRisk(FakeGraphIdentity.user(3).id, { riskLevel: "low", riskState: "confirmedCompromised", riskDetail: "adminConfirmedUserCompromised" });
    const subjects = Array.from({ length: 150 }, (_, i) => user(i));
    const results = await run({ sources: [entra()] }, subjects);
    assert.equal(graph.requestsTo("/v1.0/identityProtection/riskyUsers").length, 1);
    assert.equal(graph.requestsTo("/v1.0/identityProtection/riskDetections").length, 1);
    const by = new Map(results.map((r) => [r.subject, r]));
    const one = by.get("u1")!;
    assert.deepEqual([one.status, one.risk], ["fail", "high"]);
    assert.deepEqual(one.reasons.map((r) => r.code), ["USER_RISK_HIGH", "USER_RISK_DETECTION"]);
    assert.match(one.reasons[1]!.message, /leakedCredentials \(offline, signin\)/);
    assert.equal(one.evidence!.provider_level, "high");
    assert.equal(one.evidence!.risk_state, "atRisk");
    assert.equal(one.evidence!.source, "entra");
    assert.ok(typeof one.evidence!.detection_ids === "string");
    assert.equal(typeof one.evidence!.data_age_seconds, "number");
    assert.deepEqual([by.get("u2")!.status, by.get("u2")!.reasons[0]!.code], ["pass", "USER_RISK_RESOLVED"]);
    assert.deepEqual([by.get("u3")!.status, by.get("u3")!.reasons[0]!.code], ["fail", "USER_CONFIRMED_COMPROMISED"]);
    assert.deepEqual([by.get("u0")!.status, by.get("u0")!.reasons], ["pass", []]);
  });

  test("subjects are found by UPN without an object id; a subject naming no user is unknown; devices are not users", async () => {
    resetGraph();
    graph.addUsers(2);
    graph.setRisk(FakeGraphIdentity.user(1).id, { riskLevel: "medium", riskState: "atRisk" });
    const results = await run({ sources: [entra({ detections: false })] }, [
      { id: "by-upn", kind: "user", identity: "USER1@contoso.example", attributes: {}, labels: {} },
      { id: "nobody", kind: "user", attributes: {}, labels: {} },
      { id: "laptop", kind: "device", identity: "DESKTOP-1", attributes: {}, labels: {} },
      { id: "session-1", kind: "session", attributes: { user_principal_name: "user1@contoso.example" }, labels: {} },
    ]);
    const by = new Map(results.map((r) => [r.subject, r]));
    assert.deepEqual([by.get("by-upn")!.status, by.get("by-upn")!.reasons[0]!.code], ["warn", "USER_RISK_MEDIUM"]);
    assert.deepEqual([by.get("nobody")!.status, by.get("nobody")!.reasons[0]!.code], ["unknown", "USER_NOT_FOUND"]);
    assert.deepEqual([by.get("laptop")!.status, by.get("laptop")!.evidence], ["pass", { applicable: false }]);
    assert.equal(by.get("session-1")!.status, "warn", "a session is judged as its user");
  });

  test("workloads by their service principal's risk when asked to", async () => {
    resetGraph();
    graph.addServicePrincipal({ id: "bbbbbbbb-0000-4000-8000-000000000001", appId: "cccccccc-0000-4000-8000-000000000001", displayName: "payroll-sync", accountEnabled: true, servicePrincipalType: "Application" });
    graph.setServicePrincipalRisk("bbbbbbbb-0000-4000-8000-000000000001", { riskLevel: "high", riskState: "atRisk" });
    const wl: Subject = { id: "payroll", kind: "workload", identity: "spiffe://x/payroll", attributes: { app_id: "cccccccc-0000-4000-8000-000000000001" }, labels: {} };
    const [on] = await run({ sources: [entra({ service_principals: true })] }, [wl]);
    assert.deepEqual([on!.status, on!.reasons[0]!.code], ["fail", "WORKLOAD_RISK_HIGH"]);
    const [off] = await run({ sources: [entra()] }, [wl]);
    assert.equal(off!.status, "pass", "without service_principals a workload has no user risk");
  });

  test("an unlicensed tenant is a permanent, named unknown; so is a missing permission", async () => {
    resetGraph();
    graph.addUsers(1);
    graph.p2 = false;
    const [unlicensed] = await run({ sources: [entra()] }, [user(0)]);
    assert.deepEqual([unlicensed!.status, unlicensed!.reasons[0]!.code], ["unknown", "USER_RISK_NOT_LICENSED"]);
    assert.match(unlicensed!.reasons[0]!.message, /Microsoft Entra ID P2/);
    graph.p2 = true;
    graph.granted.delete("IdentityRiskEvent.Read.All");
    const [denied] = await run({ sources: [entra()] }, [user(0)]);
    graph.granted.add("IdentityRiskEvent.Read.All");
    assert.deepEqual([denied!.status, denied!.reasons[0]!.code], ["unknown", "USER_RISK_PERMISSION_DENIED"]);
    assert.match(denied!.reasons[0]!.message, /IdentityRiskEvent\.Read\.All/);
    assert.ok(!JSON.stringify([unlicensed, denied]).includes(CLIENT_SECRET), "the client secret never appears in results");
  });

  test("a provider that keeps failing past the run's deadline is unknown, never a silent pass", async () => {
    resetGraph();
    graph.addUsers(1);
    graph.unavailable({ path: /riskyUsers$/ }, 20, 1);
    const [r] = await run({ sources: [entra({ detections: false })] }, [user(0)], { timeoutMs: 1_500 });
    graph.clear();
    assert.deepEqual([r!.status, r!.reasons[0]!.code], ["unknown", "USER_RISK_SOURCE_UNAVAILABLE"]);
    assert.ok(graph.pendingFaults > 0, "gave up while the provider was still failing");
    graph.clearFaults();
  });
});

describe("Okta Identity Threat Protection", () => {
  test("users' risk from the System Log, found by okta_id or login", async () => {
    okta.users.clear();
    okta.logEvents.length = 0;
    okta.addUser("00uAlice0001", "ACTIVE", { login: "alice@example.org" });
    okta.addUser("00uBob000002", "ACTIVE", { login: "bob@example.org" });
    okta.riskDetect("00uAlice0001", { level: "HIGH", detection: "Entity Critical Event" });
    const results = await run({ sources: [oktaSource()] }, [
      { id: "alice", kind: "user", identity: "someone@else.example", attributes: { okta_id: "00uAlice0001" }, labels: {} },
      { id: "bob", kind: "user", identity: "bob@example.org", attributes: {}, labels: {} },
    ]);
    assert.deepEqual([results[0]!.status, results[0]!.reasons[0]!.code], ["fail", "USER_RISK_HIGH"]);
    assert.match(results[0]!.reasons[0]!.message, /Entity Critical Event/);
    assert.equal(results[0]!.evidence!.okta_level, "HIGH");
    assert.equal(results[1]!.status, "pass");
  });
});

describe("computed score", () => {
  test("impossible travel from the sign-in log raises the user to high, with each contribution in the evidence", async () => {
    resetGraph();
    graph.addUsers(2);
    const now = Date.now();
    graph.addSignIn(FakeGraphIdentity.user(0).id, { at: now - 2 * 3_600_000, country: "DE", city: "Berlin", lat: 52.52, lon: 13.405 });
    graph.addSignIn(FakeGraphIdentity.user(0).id, { at: now - 600_000, country: "AU", city: "Sydney", lat: -33.87, lon: 151.21, ip: "203.0.113.77" });
    graph.addSignIn(FakeGraphIdentity.user(1).id, { at: now - 600_000 });
    const config = { sources: [entra({ risky_users: false }), { type: "computed", thresholds: { medium: 30, high: 55 }, rules: { risky_networks: { lists: [{ name: "lab", cidrs: ["203.0.113.0/24"], points: 10 }] } } }] };
    const results = await run(config, [user(0), user(1)]);
    const [traveller, stayer] = results;
    assert.deepEqual([traveller!.status, traveller!.risk], ["fail", "high"]);
    assert.deepEqual(traveller!.reasons.map((r) => r.code).slice(0, 3), ["USER_RISK_HIGH", "USER_IMPOSSIBLE_TRAVEL", "USER_RISKY_NETWORK"]);
    const contributions = traveller!.evidence!.contributions as { rule: string; weight: number }[];
    // The password changed months ago (the fake's users' lastPasswordChangeDateTime): faded out.
    assert.deepEqual(contributions.map((c) => c.rule), ["impossible_travel", "risky_networks"]);
    assert.equal(traveller!.evidence!.source, "computed");
    assert.equal(stayer!.status, "pass");
    assert.equal(graph.requestsTo("/beta/auditLogs/signIns").length, 1, "one sign-in read for both");
    assert.equal(graph.requestsTo("/v1.0/identityProtection/riskyUsers").length, 0, "risky_users: false reads no risk");
  });
});
