/**
 * device_compliance against local Intune, Fleet, Jamf and CrowdStrike servers that enforce their
 * documented contracts: real scans, the scan an inventory and the check share, users and their
 * devices, and what happens when a source is slow, down, refuses vigil or answers nonsense.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { deviceComplianceCheck } from "../../../src/checks/device_compliance/index.ts";
import { intuneInventory } from "../../../src/inventories/intune/index.ts";
import { fleetInventory } from "../../../src/inventories/fleet/index.ts";
import { jamfInventory } from "../../../src/inventories/jamf/index.ts";
import { createLogger } from "../../../src/telemetry/log.ts";
import type { CheckResult, Subject } from "../../../src/policy/model.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import { FakeIntune } from "../../helpers/fakes/intune.ts";
import { FakeFleet, FLEET_TOKEN } from "../../helpers/fakes/fleet.ts";
import { FakeJamf, JAMF_CLIENT_ID, JAMF_CLIENT_SECRET } from "../../helpers/fakes/jamf.ts";
import { FakeCrowdStrike, CS_CLIENT_ID, CS_CLIENT_SECRET, aidOf } from "../../helpers/fakes/crowdstrike.ts";
import { checkPluginContext, runContext, type TestContext } from "../../helpers/check-context.ts";

const byId = (results: CheckResult[]) => new Map(results.map((r) => [r.subject, r]));
const device = (id: string, attributes: Record<string, unknown> = {}): Subject => ({ id, kind: "device", attributes, labels: {} });
const user = (id: string, identity: string): Subject => ({ id, kind: "user", identity, attributes: {}, labels: {} });

function check(config: Record<string, unknown>, ctx: TestContext) {
  return deviceComplianceCheck.create(deviceComplianceCheck.configSchema.parse(config), ctx);
}

describe("Intune", () => {
  let fake: FakeIntune;
  let ctx: TestContext;
  const clock = new FakeClock(Date.now());
  before(async () => {
    fake = new FakeIntune();
    await fake.start();
    ctx = checkPluginContext({ clock });
  });
  after(async () => {
    await fake.stop();
    await ctx.http.close();
  });

  test("each state Intune reports gives its result, for device subjects from the Intune inventory", async () => {
    fake.devices.length = 0;
    const now = Date.now();
    const states: [string, Record<string, unknown>, string, string[]][] = [
      ["compliant", {}, "pass", []],
      ["noncompliant", { complianceState: "noncompliant" }, "fail", ["DEVICE_NONCOMPLIANT"]],
      ["grace", { complianceState: "inGracePeriod", complianceGracePeriodExpirationDateTime: new Date(now + 3 * 3_600_000).toISOString() }, "warn", ["DEVICE_GRACE_PERIOD"]],
      ["conflict", { complianceState: "conflict" }, "unknown", ["DEVICE_COMPLIANCE_UNKNOWN"]],
      ["error", { complianceState: "error" }, "unknown", ["DEVICE_COMPLIANCE_UNKNOWN"]],
      ["unknown", { complianceState: "unknown" }, "unknown", ["DEVICE_COMPLIANCE_UNKNOWN"]],
      ["configManager", { complianceState: "configManager" }, "unknown", ["DEVICE_COMPLIANCE_UNKNOWN"]],
      ["jailbroken", { jailBroken: "True" }, "fail", ["DEVICE_JAILBROKEN"]],
      ["threat", { partnerReportedThreatState: "highSeverity" }, "fail", ["DEVICE_THREAT_REPORTED"]],
      ["stale", { lastSyncDateTime: new Date(now - 3 * 86_400_000).toISOString() }, "fail", ["DEVICE_STALE"]],
      ["never synced", { lastSyncDateTime: "0001-01-01T00:00:00Z" }, "fail", ["DEVICE_STALE"]],
    ];
    fake.addDevices(states.length, (i) => states[i]![1] as never);
    const conn = { type: "intune", ...fake.providerConfig() };
    const inventory = intuneInventory.create(intuneInventory.configSchema.parse(fake.providerConfig()), ctx);
    const c = check({ sources: [conn] }, ctx);
    fake.clear();
    const subjects = await inventory.list(AbortSignal.timeout(10_000));
    assert.equal(subjects.length, states.length);
    assert.equal(subjects[0]!.kind, "device");
    assert.equal(subjects[0]!.attributes.managed, true);
    const results = byId(await c.run(subjects, runContext(ctx)));
    states.forEach(([name, , status, codes], i) => {
      const r = results.get(subjects[i]!.id)!;
      assert.equal(r.status, status, `${name}: ${JSON.stringify(r.reasons)}`);
      assert.deepEqual(r.reasons.map((x) => x.code), codes, name);
      assert.equal(r.check, "device_compliance");
      assert.ok("data_age_seconds" in r.evidence!, `${name} carries the data's age`);
    });
    assert.equal(fake.listRequests().length, 1, "the inventory and the check shared one scan");
    await c.stop?.();
    await inventory.stop?.();
  });

  test("users: all their devices must comply, or any; the session's own device", async () => {
    fake.devices.length = 0;
    fake.addDevices(2, (i) => ({ userPrincipalName: "alice@contoso.example", emailAddress: "alice@contoso.example", complianceState: i === 0 ? "compliant" : "noncompliant" }));
    const conn = { type: "intune", ...fake.providerConfig() };
    const alice = user("alice", "alice@contoso.example");
    const session: Subject = { id: "s1", kind: "session", identity: "alice@contoso.example", attributes: { device_id: fake.devices[0]!.azureADDeviceId }, labels: {} };
    const all = check({ sources: [conn] }, ctx);
    const any = check({ sources: [conn], users: "any" }, ctx);
    const sess = check({ sources: [conn], users: "session" }, ctx);
    assert.equal((await all.run([alice], runContext(ctx)))[0]!.status, "fail");
    assert.equal((await any.run([alice], runContext(ctx)))[0]!.status, "pass");
    const bySession = byId(await sess.run([session, alice], runContext(ctx)));
    assert.equal(bySession.get("s1")!.status, "pass", "the session came from the compliant laptop");
    assert.equal(bySession.get("alice")!.status, "fail", "a user subject under `session` falls back to all devices");
    const nobody = (await all.run([user("bob", "bob@contoso.example")], runContext(ctx)))[0]!;
    assert.deepEqual([nobody.status, nobody.reasons[0]!.code], ["unknown", "DEVICE_NOT_FOUND"]);
    for (const x of [all, any, sess]) await x.stop?.();
  });

  test("a tenant that marks devices without a policy compliant makes compliant devices unknown", async () => {
    fake.devices.length = 0;
    fake.addDevices(1);
    fake.settings.secureByDefault = false;
    try {
      const c = check({ sources: [{ type: "intune", ...fake.providerConfig() }] }, ctx);
      const r = (await c.run([device(`intune:${fake.devices[0]!.id}`)], runContext(ctx)))[0]!;
      assert.equal(r.status, "unknown");
      assert.equal(r.reasons[0]!.code, "DEVICE_NO_COMPLIANCE_POLICY");
      assert.match(r.reasons[0]!.message, /Mark devices with no compliance policy assigned as/);
      await c.stop?.();
    } finally {
      fake.settings.secureByDefault = true;
    }
  });

  test("runs within the refresh reuse the scan; the next interval scans again (one list call per page per tick)", async () => {
    fake.devices.length = 0;
    fake.addDevices(250);
    const c = check({ sources: [{ type: "intune", ...fake.providerConfig(), page_size: 100 }] }, ctx);
    const subjects = fake.devices.map((d) => device(`intune:${d.id}`));
    fake.clear();
    // The runs of one tick: at most 100 subjects each (CHECK_RUN_MAX), over the interval.
    for (let i = 0; i < subjects.length; i += 100) await c.run(subjects.slice(i, i + 100), runContext(ctx, { ttlMs: 600_000 }));
    assert.equal(fake.listRequests().length, 3, "250 devices at 100 per page: three pages, once");
    clock.advance(301_000);
    await c.run(subjects.slice(0, 10), runContext(ctx, { ttlMs: 600_000 }));
    assert.equal(fake.listRequests().length, 6, "past the refresh (half the ttl): one new scan");
    await c.stop?.();
  });
});

describe("Fleet", () => {
  let fake: FakeFleet;
  let ctx: TestContext;
  before(async () => {
    fake = new FakeFleet();
    await fake.start();
    ctx = checkPluginContext();
  });
  after(async () => {
    await fake.stop();
    await ctx.http.close();
  });

  test("named policies: hosts failing them (policy_id + policy_response=failing), users by device mapping", async () => {
    const good = fake.addHost({ emails: ["alice@example.com"] });
    const bad = fake.addHost({ emails: ["bob@example.com"] });
    fake.setResult(bad.id, 1, "fail");
    const other = fake.addHost();
    fake.setResult(other.id, 3, "fail");
    const conn = { type: "fleet", url: fake.base, token: FLEET_TOKEN };
    const inv = fleetInventory.create(fleetInventory.configSchema.parse({ url: fake.base, token: FLEET_TOKEN }), ctx);
    const subjects = await inv.list(AbortSignal.timeout(10_000));
    assert.equal(subjects.length, 3);
    assert.equal(subjects[0]!.labels.team, "Workstations");
    const c = check({ sources: [{ ...conn, policies: [{ id: 1, code: "DEVICE_UNENCRYPTED" }, 2] }] }, ctx);
    const r = byId(await c.run([...subjects, user("alice", "alice@example.com"), user("bob", "bob@example.com")], runContext(ctx)));
    assert.equal(r.get(`fleet:${good.id}`)!.status, "pass");
    assert.deepEqual(r.get(`fleet:${bad.id}`)!.reasons.map((x) => x.code), ["DEVICE_UNENCRYPTED"]);
    assert.match(r.get(`fleet:${bad.id}`)!.reasons[0]!.message, /Full disk encryption enabled/);
    assert.equal(r.get(`fleet:${other.id}`)!.status, "pass", "policy 3 is not one of the named ones");
    assert.equal(r.get("alice")!.status, "pass");
    assert.equal(r.get("bob")!.status, "fail");
    const failingLists = fake.handled.filter((q) => q.query.get("policy_response") === "failing").map((q) => q.query.get("policy_id"));
    assert.deepEqual(failingLists.sort(), ["1", "2"]);
    const hostLists = fake.handled.filter((q) => q.path === "/api/v1/fleet/hosts" && q.query.get("device_mapping") === "true");
    assert.equal(hostLists.length, 1, "one host list for inventory and check");
    await c.stop?.();
    await inv.stop?.();
  });

  test("all policies (the failing count) and critical ones; 429 with retry-after is waited out", async () => {
    fake.hosts.length = 0;
    const h = fake.addHost();
    fake.setResult(h.id, 3, "fail");
    fake.throttle(1, 1);
    const conn = { type: "fleet", url: fake.base, token: FLEET_TOKEN };
    const all = check({ sources: [conn] }, ctx);
    const critical = check({ sources: [{ ...conn, policies: "critical" }] }, ctx);
    const subject = device(`fleet:${h.id}`);
    const started = Date.now();
    assert.equal((await all.run([subject], runContext(ctx)))[0]!.status, "fail");
    assert.ok(Date.now() - started >= 1_000, "waited for retry-after");
    assert.equal((await critical.run([subject], runContext(ctx)))[0]!.status, "pass", "policy 3 is not critical");
    await all.stop?.();
    await critical.stop?.();
  });

  test("a wrong token: DEVICE_SOURCE_ERROR for every subject, counted, logged once, the token never shown", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "warn", stream: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    const { Telemetry } = await import("../../../src/telemetry/metrics.ts");
    const telemetry = await Telemetry.start({ listen: "127.0.0.1:0" }, logger);
    const c2 = checkPluginContext({ logger, meter: telemetry.meter });
    try {
      const wrong = "fleet-wrong-token-0123456789abcdef";
      const c = check({ sources: [{ type: "fleet", url: fake.base, token: wrong }] }, c2);
      fake.clear();
      for (let i = 0; i < 3; i++) {
        const [r] = await c.run([device("fleet:1")], runContext(c2, { check: "laptops" }));
        assert.equal(r!.status, "unknown");
        assert.equal(r!.reasons[0]!.code, "DEVICE_SOURCE_ERROR");
        assert.match(r!.reasons[0]!.message, /401.*Fleet refused the API token/);
        assert.equal(r!.check, "laptops");
      }
      assert.equal(fake.requests.length, 1, "a refused token is not retried, and the failure is held for the next runs");
      const metrics = await (await fetch(`http://127.0.0.1:${telemetry.address!.port}/metrics`)).text();
      assert.match(metrics, /vigil_check_errors_total\{check="laptops",reason="upstream_permanent"\} 3/);
      assert.equal(lines.filter((l) => l.includes("cannot be read")).length, 1, "logged once, not per run");
      assert.ok(!lines.join("").includes(wrong), "the token is not logged");
      await c.stop?.();
    } finally {
      await c2.http.close();
      await telemetry.stop();
    }
  });
});

describe("404s and 5xx", () => {
  test("a Fleet URL that leads nowhere (404) is a permanent error, not retried", async () => {
    const fleet = new FakeFleet();
    await fleet.start();
    const ctx = checkPluginContext();
    try {
      const c = check({ sources: [{ type: "fleet", url: `${fleet.base}/wrong-prefix`, token: FLEET_TOKEN }] }, ctx);
      const [r] = await c.run([device("fleet:1")], runContext(ctx));
      assert.deepEqual([r!.status, r!.reasons[0]!.code], ["unknown", "DEVICE_SOURCE_ERROR"]);
      assert.match(r!.reasons[0]!.message, /404/);
      assert.equal(fleet.requests.length, 1);
      await c.stop?.();
    } finally {
      await fleet.stop();
      await ctx.http.close();
    }
  });

  test("an Entra device group that does not exist (404) fails the Intune inventory's listing with Graph's reason", async () => {
    const intune = new FakeIntune();
    await intune.start();
    const ctx = checkPluginContext();
    try {
      intune.addDevices(2);
      const inv = intuneInventory.create(intuneInventory.configSchema.parse({ ...intune.providerConfig(), groups: ["0a1b2c3d-0000-4000-8000-00000000dead"] }), ctx);
      await assert.rejects(inv.list(AbortSignal.timeout(10_000)), /404.*Request_ResourceNotFound/);
      await inv.stop?.();
    } finally {
      await intune.stop();
      await ctx.http.close();
    }
  });

  test("Jamf answering 503 then 200 is retried within the run", async () => {
    const jamf = new FakeJamf();
    await jamf.start();
    const ctx = checkPluginContext();
    try {
      jamf.addComputer();
      jamf.fail({ path: /computers-inventory$/ }, { status: 503, body: { httpStatus: 503, errors: [] } });
      const c = check({ sources: [{ type: "jamf", url: jamf.base, client_id: JAMF_CLIENT_ID, client_secret: JAMF_CLIENT_SECRET }] }, ctx);
      const [r] = await c.run([device("jamf:1")], runContext(ctx));
      assert.equal(r!.status, "pass");
      assert.equal(jamf.pendingFaults, 0);
      await c.stop?.();
    } finally {
      await jamf.stop();
      await ctx.http.close();
    }
  });
});

describe("Jamf Pro", () => {
  let fake: FakeJamf;
  let ctx: TestContext;
  before(async () => {
    fake = new FakeJamf();
    await fake.start();
    ctx = checkPluginContext();
  });
  after(async () => {
    await fake.stop();
    await ctx.http.close();
  });

  test("FileVault, management and check-in from computers-inventory; a token expiring mid-scan is renewed; no recovery-key call", async () => {
    fake.addComputer();
    fake.addComputer({ diskEncryption: { bootPartitionEncryptionDetails: { partitionFileVault2State: "UNENCRYPTED" } } });
    fake.addComputer({ general: { remoteManagement: { managed: false } } });
    fake.addComputer({ general: { lastContactTime: new Date(Date.now() - 5 * 3_600_000).toISOString() } });
    fake.addComputer({ groups: ["Finance Macs"], userAndLocation: { email: "carol@example.com" } });
    const conn = { type: "jamf", url: fake.base, client_id: JAMF_CLIENT_ID, client_secret: JAMF_CLIENT_SECRET, page_size: 2 };
    const { type: _jamf, ...jamfConn } = conn;
    const inv = jamfInventory.create(jamfInventory.configSchema.parse({ ...jamfConn, groups: ["Finance Macs"] }), ctx);
    const c = check({ sources: [conn] }, ctx);
    fake.revokeAfterPages = 1;
    const tokensBefore = fake.tokenRequests;
    const subjects = fake.computers.map((x) => device(`jamf:${x.id}`));
    const r = byId(await c.run([...subjects, user("carol", "carol@example.com")], runContext(ctx)));
    assert.equal(fake.tokenRequests - tokensBefore, 2, "a second token after the first expired mid-scan");
    assert.equal(r.get("jamf:1")!.status, "pass");
    assert.deepEqual(r.get("jamf:2")!.reasons.map((x) => x.code), ["DEVICE_UNENCRYPTED"]);
    assert.deepEqual(r.get("jamf:3")!.reasons.map((x) => x.code), ["DEVICE_UNMANAGED"]);
    assert.deepEqual(r.get("jamf:4")!.reasons.map((x) => x.code), ["DEVICE_STALE"]);
    assert.equal(r.get("carol")!.status, "pass");
    const listed = await inv.list(AbortSignal.timeout(10_000));
    assert.deepEqual(listed.map((s) => s.id), ["jamf:5"], "the group filter keeps Finance Macs only");
    const inventoryCalls = fake.handled.filter((q) => q.path === "/api/v1/computers-inventory");
    assert.equal(inventoryCalls.length, 3, "five computers at two per page, one scan for check and inventory");
    assert.deepEqual(inventoryCalls[0]!.query.getAll("section").sort(), ["DISK_ENCRYPTION", "GENERAL", "GROUP_MEMBERSHIPS", "HARDWARE", "OPERATING_SYSTEM", "SECURITY", "USER_AND_LOCATION"]);
    assert.deepEqual(fake.forbidden, [], "recovery keys are never asked for");
    await c.stop?.();
    await inv.stop?.();
  });
});

describe("CrowdStrike Zero Trust Assessment", () => {
  let fake: FakeCrowdStrike;
  let ctx: TestContext;
  before(async () => {
    fake = new FakeCrowdStrike();
    await fake.start();
    ctx = checkPluginContext();
  });
  after(async () => {
    await fake.stop();
    await ctx.http.close();
  });

  test("scores against thresholds, failing signals as reasons, batched ids, cached for the interval", async () => {
    for (let i = 1; i <= 250; i++) fake.add(i);
    fake.add(251, { assessment: { overall: 35, os: 40, sensor_config: 30, version: "3.6.1" }, assessment_items: { os_signals: [{ signal_id: "fw", signal_name: "Firewall", group_name: "OS", criteria: "Firewall: Enabled", meets_criteria: "no" }], sensor_signals: [] } });
    const c = check({ sources: [{ type: "crowdstrike", url: fake.base, client_id: CS_CLIENT_ID, client_secret: CS_CLIENT_SECRET, batch_size: 100, thresholds: { overall: 60, sensor_config: 50 } }] }, ctx);
    const subjects = Array.from({ length: 251 }, (_, i) => device(`d${i + 1}`, { crowdstrike_aid: aidOf(i + 1) }));
    subjects.push(device("unknown-aid", { crowdstrike_aid: aidOf(9999) }));
    fake.clear();
    const r = byId(await c.run(subjects, runContext(ctx)));
    assert.equal(fake.assessmentRequests().length, 3, "252 ids at 100 per request");
    assert.equal(r.get("d1")!.status, "pass");
    const low = r.get("d251")!;
    assert.equal(low.status, "fail");
    assert.deepEqual(low.reasons.map((x) => x.code), ["DEVICE_ZTA_BELOW_THRESHOLD", "DEVICE_ZTA_BELOW_THRESHOLD", "DEVICE_ZTA_SIGNAL_FAILED"]);
    assert.match(low.reasons[2]!.message, /Firewall.*meets_criteria=no/);
    assert.equal(r.get("unknown-aid")!.reasons[0]!.code, "DEVICE_NOT_FOUND");
    await c.run(subjects.slice(0, 50), runContext(ctx));
    assert.equal(fake.assessmentRequests().length, 3, "cached within the refresh");
    await c.stop?.();
  });

  test("a token revoked between batches is renewed once; a 500 is retried", async () => {
    for (let i = 300; i < 320; i++) fake.add(i);
    const c = check({ sources: [{ type: "crowdstrike", url: fake.base, client_id: CS_CLIENT_ID, client_secret: CS_CLIENT_SECRET, batch_size: 10 }] }, ctx);
    const subjects = Array.from({ length: 20 }, (_, i) => device(`z${i}`, { crowdstrike_aid: aidOf(300 + i) }));
    await c.run(subjects.slice(0, 1), runContext(ctx));
    fake.revokeTokens();
    fake.fail({ path: /assessments/ }, { status: 500, body: { errors: [{ code: 500, message: "internal error" }] } });
    const before = fake.tokenRequests;
    const r = await c.run(subjects, runContext(ctx));
    assert.ok(r.every((x) => x.status === "pass"), JSON.stringify(r.map((x) => x.reasons)));
    assert.equal(fake.tokenRequests - before, 1, "one new token after the 401");
    assert.equal(fake.pendingFaults, 0);
    await c.stop?.();
  });

  test("none of the ids known (404 with the same body) is an answer; 429 with X-RateLimit-RetryAfter is waited out", async () => {
    fake.throttle(1, 1);
    const c = check({ sources: [{ type: "crowdstrike", url: fake.base, client_id: CS_CLIENT_ID, client_secret: CS_CLIENT_SECRET }] }, ctx);
    const started = Date.now();
    const [r] = await c.run([device("ghost", { crowdstrike_aid: aidOf(123456) })], runContext(ctx));
    assert.ok(Date.now() - started >= 500);
    assert.deepEqual([r!.status, r!.reasons[0]!.code], ["unknown", "DEVICE_NOT_FOUND"]);
    await c.stop?.();
  });
});

describe("several sources, and sources that fail", () => {
  test("Intune for laptops and Fleet for servers: each subject judged by the sources that know it", async () => {
    const intune = new FakeIntune();
    const fleet = new FakeFleet();
    await Promise.all([intune.start(), fleet.start()]);
    const ctx = checkPluginContext();
    try {
      intune.addDevices(1);
      const server = fleet.addHost({ platform: "ubuntu", os_version: "Ubuntu 22.04.4 LTS" });
      const c = check({ sources: [{ type: "intune", ...intune.providerConfig() }, { type: "fleet", url: fleet.base, token: FLEET_TOKEN }] }, ctx);
      const r = byId(await c.run([device(`intune:${intune.devices[0]!.id}`), device(`fleet:${server.id}`)], runContext(ctx)));
      assert.equal(r.get(`intune:${intune.devices[0]!.id}`)!.status, "pass");
      assert.equal(r.get(`fleet:${server.id}`)!.status, "pass");
      // Fleet goes down (and no scan of it is cached): servers become unknown; laptops, out of Fleet's scope, do not.
      await fleet.stop();
      const fresh = checkPluginContext();
      const c2 = check({ sources: [{ type: "intune", ...intune.providerConfig() }, { type: "fleet", url: fleet.base, token: FLEET_TOKEN, applies_to: { labels: { source: "fleet" } } }] }, fresh);
      const laptop: Subject = { ...device(`intune:${intune.devices[0]!.id}`), labels: { source: "intune" } };
      const srv: Subject = { ...device(`fleet:${server.id}`), labels: { source: "fleet" } };
      const r2 = byId(await c2.run([laptop, srv], runContext(fresh, { timeoutMs: 15_000 })));
      assert.equal(r2.get(laptop.id)!.status, "pass", "applies_to keeps Fleet's outage away from laptops");
      assert.equal(r2.get(srv.id)!.status, "unknown");
      assert.equal(r2.get(srv.id)!.reasons[0]!.code, "DEVICE_SOURCE_UNAVAILABLE");
      await c.stop?.();
      await c2.stop?.();
      await fresh.http.close();
    } finally {
      await intune.stop();
      await ctx.http.close();
    }
  });

  test("a source answering 5xx until the run's deadline gives unknown within the deadline", async () => {
    const fleet = new FakeFleet();
    await fleet.start();
    const ctx = checkPluginContext();
    try {
      fleet.addHost();
      fleet.fail({ path: /hosts$/ }, ...Array.from({ length: 50 }, () => ({ status: 503, body: { message: "unavailable" } })));
      const c = check({ sources: [{ type: "fleet", url: fleet.base, token: FLEET_TOKEN }] }, ctx);
      const started = Date.now();
      const [r] = await c.run([device("fleet:1")], runContext(ctx, { timeoutMs: 3_000 }));
      assert.ok(Date.now() - started < 4_000, "gave up at the run's deadline");
      assert.deepEqual([r!.status, r!.reasons[0]!.code], ["unknown", "DEVICE_SOURCE_UNAVAILABLE"]);
      assert.ok(fleet.requests.length >= 2, "retried with backoff");
      await c.stop?.();
    } finally {
      await fleet.stop();
      await ctx.http.close();
    }
  });
});

describe("the scan an agent shares", () => {
  test("a reload that keeps the source's settings keeps its scan; the inventory refreshes after its refresh", async () => {
    const { loadConfigText } = await import("../../../src/config/load.ts");
    const { Runtime } = await import("../../../src/engine/runtime.ts");
    const fleet = new FakeFleet();
    await fleet.start();
    const clock = new FakeClock(Date.now());
    const ctx = checkPluginContext({ clock });
    try {
      fleet.addHost();
      const yaml = (interval: string) => `
inventories:
  - {type: fleet, url: "${fleet.base}", token: "${FLEET_TOKEN}", refresh: 30s}
checks:
  device_compliance:
    sources: [{type: fleet, url: "${fleet.base}", token: "${FLEET_TOKEN}"}]
identity_perimeter:
  applies_to: {kind: device}
  require_mfa: false
  require_managed_device: false
  require_location_check: false
  continuous_verification: {interval: ${interval}, checks: [device_compliance]}
`;
      const hostLists = () => fleet.handled.filter((r) => r.path === "/api/v1/fleet/hosts").length;
      const a = new Runtime(await loadConfigText(yaml("5m"), "/tmp/vigil-reload-test/vigil.yaml", { env: {} }), ctx);
      const subjects = await a.inventories[0]!.list(AbortSignal.timeout(5_000));
      const [r] = await a.checks.get("device_compliance")!.run(subjects, runContext(ctx, { ttlMs: 600_000 }));
      assert.equal(r!.status, "pass");
      assert.equal(hostLists(), 1, "inventory and check: one scan");
      // A reload (another interval, same source): the new runtime is built before the old one stops.
      const b = new Runtime(await loadConfigText(yaml("10m"), "/tmp/vigil-reload-test/vigil.yaml", { env: {} }), ctx);
      await a.stop();
      await b.inventories[0]!.list(AbortSignal.timeout(5_000));
      await b.checks.get("device_compliance")!.run(subjects, runContext(ctx, { ttlMs: 1_200_000 }));
      assert.equal(hostLists(), 1, "the scan carried over the reload");
      clock.advance(31_000);
      await b.inventories[0]!.list(AbortSignal.timeout(5_000));
      assert.equal(hostLists(), 2, "past the inventory's refresh, the next listing (the next tick) scans again");
      await b.stop();
      assert.equal(ctx.shared.size, 0, "nothing is held once every holder stopped");
    } finally {
      await fleet.stop();
      await ctx.http.close();
    }
  });
});
