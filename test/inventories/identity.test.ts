/**
 * The identity inventories against the Graph and Okta contract servers: users as subjects carrying
 * their latest sign-in facts under the attributes the perimeter checks read (which then judge them
 * with their logic unchanged), the mapping renamed or turned off, disabled accounts kept and
 * labelled, filters, service principals as workloads, incremental listings that rebuild only what
 * changed, and one sync shared with user_risk_score.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { entraInventory } from "../../src/inventories/entra/index.ts";
import { oktaInventory } from "../../src/inventories/okta/index.ts";
import { userRiskScoreCheck, userRiskScoreConfigSchema } from "../../src/checks/user_risk_score/index.ts";
import { evaluateMfa } from "../../src/checks/mfa/index.ts";
import { evaluateLocation } from "../../src/checks/location/index.ts";
import { evaluateManagedDevice } from "../../src/checks/managed_device/index.ts";
import { evaluateSessionAge } from "../../src/checks/session_age/index.ts";
import { createLogger } from "../../src/telemetry/log.ts";
import type { Subject } from "../../src/policy/model.ts";
import { FakeGraphIdentity } from "../helpers/fakes/graph-identity.ts";
import { OktaFake } from "../helpers/fakes/okta.ts";
import { checkPluginContext, runContext, type TestContext } from "../helpers/check-context.ts";

const OKTA_TOKEN = "00Okta-inventory-token-8Nw1Qz9Lm2Xc4Vb";

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

const signal = () => AbortSignal.timeout(20_000);

function entraList(config: Record<string, unknown> = {}, context: TestContext = ctx) {
  return entraInventory.create(entraInventory.configSchema.parse({ ...graph.providerConfig(), refresh: "1s", ...config }), context);
}

function resetGraph(): void {
  graph.users.clear();
  graph.signIns.length = 0;
  graph.riskyUsers.clear();
  graph.servicePrincipals.clear();
  graph.groups.clear();
  graph.premium = true;
  graph.clear();
}

const byId = (subjects: Subject[]) => new Map(subjects.map((s) => [s.id, s]));

describe("Entra inventory", () => {
  test("users with the facts of their latest sign-in, which the perimeter checks judge unchanged", async () => {
    resetGraph();
    const [alice, bob, carol, dave] = graph.addUsers(4, (i) => (i === 3 ? { accountEnabled: false } : {}));
    const now = Date.now();
    graph.addSignIn(alice!.id, { at: now - 20 * 60_000, mfa: true, country: "DE", deviceId: "AAAAAAAA-0000-4000-8000-000000000001", managed: true, compliant: true });
    graph.addSignIn(bob!.id, { at: now - 5 * 60_000, mfa: false, country: "BR", managed: false, compliant: false });
    graph.addSignIn(carol!.id, { at: now - 3 * 3_600_000, mfa: true, country: "DE" });
    const inv = entraList();
    const subjects = byId(await inv.list(signal()));
    assert.equal(subjects.size, 4);
    const a = subjects.get(`entra:${alice!.id.toLowerCase()}`)!;
    assert.equal(a.kind, "user");
    assert.equal(a.identity, alice!.userPrincipalName);
    assert.deepEqual(a.labels, { source: "entra", account: "enabled", user_type: "member" });
    assert.deepEqual(a.attributes, {
      entra_id: alice!.id.toLowerCase(),
      user_principal_name: alice!.userPrincipalName,
      email: alice!.mail,
      account_enabled: true,
      mfa: true,
      amr: ["pwd", "mfa"],
      country: "DE",
      authenticated_at: new Date(Date.parse(graph.signIns[0]!.createdDateTime as string)).toISOString(),
      device_id: "aaaaaaaa-0000-4000-8000-000000000001",
      device_managed: true,
      device_compliant: true,
    });
    const b = subjects.get(`entra:${bob!.id.toLowerCase()}`)!;
    const c = subjects.get(`entra:${carol!.id.toLowerCase()}`)!;
    const d = subjects.get(`entra:${dave!.id.toLowerCase()}`)!;
    // The perimeter checks, as they are.
    assert.equal(evaluateMfa(a).status, "pass");
    assert.deepEqual([evaluateMfa(b).status, evaluateMfa(b).reasons[0]!.code], ["fail", "MFA_MISSING"]);
    assert.deepEqual([evaluateMfa(d).status, evaluateMfa(d).reasons[0]!.code], ["unknown", "MFA_UNKNOWN"], "no sign-in, no MFA fact");
    assert.equal(evaluateLocation(a, ["DE", "FR"]).status, "pass");
    assert.deepEqual([evaluateLocation(b, ["DE", "FR"]).status, evaluateLocation(b, ["DE", "FR"]).reasons[0]!.code], ["fail", "LOCATION_NOT_ALLOWED"]);
    assert.equal(evaluateManagedDevice(a).status, "pass");
    assert.deepEqual([evaluateManagedDevice(b).status, evaluateManagedDevice(b).reasons[0]!.code], ["fail", "DEVICE_UNMANAGED"]);
    assert.equal(evaluateSessionAge(a, 3_600_000, now).status, "pass");
    assert.deepEqual([evaluateSessionAge(c, 3_600_000, now).status, evaluateSessionAge(c, 3_600_000, now).reasons[0]!.code], ["fail", "SESSION_TOO_OLD"]);
    // A disabled account is a subject like any other, labelled so.
    assert.deepEqual(d.labels, { source: "entra", account: "disabled", user_type: "member" });
    assert.equal(d.attributes.account_enabled, false);
    await inv.stop?.();
  });

  test("the attribute mapping renames facts, turns them off, and opts descriptive ones in", async () => {
    resetGraph();
    const [alice] = graph.addUsers(1);
    graph.addSignIn(alice!.id, { country: "DE", ip: "192.0.2.44", city: "Berlin" });
    const inv = entraList({ attributes: { signed_in_at: "last_sign_in", amr: false, ip_address: "ip", city: "city", id: "object_id" } });
    const [s] = await inv.list(signal());
    assert.equal(s!.attributes.authenticated_at, undefined);
    assert.ok(typeof s!.attributes.last_sign_in === "string");
    assert.equal(s!.attributes.amr, undefined);
    assert.equal(s!.attributes.ip, "192.0.2.44");
    assert.equal(s!.attributes.city, "Berlin");
    assert.equal(s!.attributes.object_id, alice!.id.toLowerCase());
    assert.equal(s!.attributes.entra_id, undefined);
    assert.equal(evaluateSessionAge(s!, 1, Date.now()).status, "pass", "session_age no longer sees a time: users without one pass");
    await inv.stop?.();
    assert.throws(() => entraInventory.configSchema.parse({ ...graph.providerConfig(), attributes: { mfa: "has mfa" } }), /attribute name/);
    assert.throws(() => entraInventory.configSchema.parse({ ...graph.providerConfig(), attributes: { shoe_size: "x" } }), /Unrecognized key/);
  });

  test("filters: groups (transitive), user types, disabled accounts left out on request", async () => {
    resetGraph();
    const users = graph.addUsers(4, (i) => (i === 2 ? { userType: "Guest" } : i === 3 ? { accountEnabled: false } : {}));
    graph.addGroup("aaaaaaaa-0000-4000-8000-00000000000a", users.slice(0, 3).map((u) => u.id));
    const grouped = entraList({ groups: ["aaaaaaaa-0000-4000-8000-00000000000a"] });
    assert.equal((await grouped.list(signal())).length, 3);
    await grouped.stop?.();
    const members = entraList({ user_types: ["Member"], include_disabled: false });
    assert.deepEqual((await members.list(signal())).map((s) => s.identity), [users[0]!.userPrincipalName, users[1]!.userPrincipalName].sort());
    await members.stop?.();
  });

  test("a listing with nothing new returns the same subjects; after a change only that subject is rebuilt", async () => {
    resetGraph();
    const users = graph.addUsers(50);
    graph.addSignIn(users[0]!.id, { country: "DE" });
    const inv = entraList({ refresh: "1s" });
    const first = await inv.list(signal());
    await new Promise((r) => setTimeout(r, 1_100));
    const same = await inv.list(signal());
    assert.equal(same, first, "the very same list");
    graph.identityUser(users[7]!.id)!.accountEnabled = false;
    graph.addSignIn(users[8]!.id, { country: "FR" });
    await new Promise((r) => setTimeout(r, 1_100));
    graph.clear();
    const next = await inv.list(signal());
    assert.deepEqual(graph.lines().map((l) => l.split("?")[0]).sort(), ["GET /beta/auditLogs/signIns", "GET /v1.0/users/delta"], "one delta call and one sign-in read");
    const changed = next.filter((s, i) => s !== first[i]).map((s) => s.identity);
    assert.deepEqual(changed.sort(), [users[7]!.userPrincipalName, users[8]!.userPrincipalName].sort());
    await inv.stop?.();
  });

  test("service principals as workload subjects when asked", async () => {
    resetGraph();
    graph.addUsers(1);
    graph.addServicePrincipal({ id: "bbbbbbbb-0000-4000-8000-000000000001", appId: "cccccccc-0000-4000-8000-000000000001", displayName: "payroll-sync", accountEnabled: true, servicePrincipalType: "Application" });
    const inv = entraList({ service_principals: true });
    const subjects = await inv.list(signal());
    const sp = subjects.find((s) => s.kind === "workload")!;
    assert.equal(sp.id, "entra-sp:bbbbbbbb-0000-4000-8000-000000000001");
    assert.equal(sp.identity, "cccccccc-0000-4000-8000-000000000001");
    assert.deepEqual(sp.labels, { source: "entra", account: "enabled", sp_type: "application" });
    assert.equal(sp.attributes.app_id, "cccccccc-0000-4000-8000-000000000001");
    await inv.stop?.();
  });

  test("a sign-in log it cannot read leaves users listed without their facts, and says why once", async () => {
    resetGraph();
    graph.addUsers(2);
    graph.premium = false;
    const lines: string[] = [];
    const logger = createLogger({ level: "warn", stream: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    const quiet = checkPluginContext({ logger });
    const inv = entraList({}, quiet);
    const subjects = await inv.list(signal());
    assert.equal(subjects.length, 2);
    assert.equal(subjects[0]!.attributes.mfa, undefined);
    await new Promise((r) => setTimeout(r, 1_100));
    await inv.list(signal());
    const warnings = lines.filter((l) => /sign-in log cannot be read/.test(l));
    assert.equal(warnings.length, 1, "logged once, not every listing");
    assert.match(warnings[0]!, /not licensed/);
    await inv.stop?.();
    await quiet.http.close();
  });

  test("the inventory and user_risk_score share one sync: one sign-in read and one user listing", async () => {
    resetGraph();
    const users = graph.addUsers(20);
    for (const u of users) graph.addSignIn(u.id, { country: "DE" });
    const shared = checkPluginContext();
    const inv = entraList({}, shared);
    const check = userRiskScoreCheck.create(userRiskScoreConfigSchema.parse({ sources: [{ type: "entra", ...graph.providerConfig(), risky_users: false }, { type: "computed" }] }), shared);
    graph.clear();
    const subjects = await inv.list(signal());
    const results = await check.run(subjects, runContext(shared, { check: "user_risk_score" }));
    assert.ok(results.every((r) => r.status === "pass"));
    assert.equal(graph.requestsTo("/beta/auditLogs/signIns").length, 1);
    assert.equal(graph.requestsTo("/v1.0/users").length, 1);
    await check.stop?.();
    await inv.stop?.();
    await shared.http.close();
  });
});

describe("Okta inventory", () => {
  test("users with their System Log sign-in facts; statuses label and filter them", async () => {
    okta.users.clear();
    okta.logEvents.length = 0;
    okta.addUser("00uAlice0001", "ACTIVE", { login: "alice@example.org" });
    okta.addUser("00uBob000002", "SUSPENDED", { login: "bob@example.org" });
    okta.addUser("00uCarl00003", "DEPROVISIONED", { login: "carl@example.org" });
    okta.mfa("00uAlice0001", { sessionId: "102s1", factor: "FIDO_WEBAUTHN" });
    okta.sessionStart("00uAlice0001", { sessionId: "102s1", country: "Netherlands", managed: true });
    const config = { org_url: okta.base, auth: { type: "ssws", token: OKTA_TOKEN }, refresh: "1s" };
    const inv = oktaInventory.create(oktaInventory.configSchema.parse(config), ctx);
    const subjects = byId(await inv.list(signal()));
    assert.equal(subjects.size, 3, "suspended and deactivated users stay subjects");
    const alice = subjects.get("okta:00uAlice0001")!;
    assert.deepEqual(alice.labels, { source: "okta", account: "enabled", status: "active" });
    assert.equal(alice.attributes.okta_id, "00uAlice0001");
    assert.equal(alice.attributes.country, "NL");
    assert.deepEqual(alice.attributes.amr, ["pwd", "mfa", "hwk"]);
    assert.equal(alice.attributes.device_managed, true);
    assert.equal(evaluateMfa(alice).status, "pass");
    assert.deepEqual(subjects.get("okta:00uCarl00003")!.labels, { source: "okta", account: "disabled", status: "deprovisioned" });
    await inv.stop?.();
    const active = oktaInventory.create(oktaInventory.configSchema.parse({ ...config, statuses: ["ACTIVE"] }), ctx);
    assert.deepEqual((await active.list(signal())).map((s) => s.id), ["okta:00uAlice0001"]);
    await active.stop?.();
  });
});
