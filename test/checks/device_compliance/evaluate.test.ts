/** The pure evaluation of device_compliance on recorded records: every state each source can report. */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { evaluateRecord, evaluateSubject, type SourceAnswer } from "../../../src/checks/device_compliance/evaluate.ts";
import { deviceSourceSchema, type DeviceSourceConfig } from "../../../src/checks/device_compliance/config.ts";
import type { DeviceRecord, Posture } from "../../../src/sources/device/model.ts";
import type { Lookup } from "../../../src/sources/device/match.ts";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const H = 3_600_000;
const D = 24 * H;
const opts = { now: NOW, onStale: "fail" as const };

const conn: Record<string, Record<string, unknown>> = {
  intune: { tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47", client_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6", auth: { client_secret: "s3cret-s3cret" } },
  fleet: { url: "https://fleet.example.com", token: "fleet-token-0123" },
  jamf: { url: "https://example.jamfcloud.com", client_id: "c", client_secret: "s" },
  crowdstrike: { client_id: "c", client_secret: "s" },
  host: {},
};

function source(type: string, extra: Record<string, unknown> = {}): DeviceSourceConfig {
  return deviceSourceSchema.parse({ type, ...conn[type], ...extra });
}

function record(posture: Posture, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return { type: posture.kind, id: "dev-1", name: "LAPTOP-1", keys: ["dev-1"], users: ["alice@example.com"], platform: "windows", osVersion: "10.0.22631", managed: true, observedAt: NOW - H, posture, ...over };
}

const intune = (p: Partial<Extract<Posture, { kind: "intune" }>> = {}, over: Partial<DeviceRecord> = {}) => record({ kind: "intune", compliance: "compliant", encrypted: true, jailBroken: "False", threat: "unknown", agent: "mdm", ...p }, over);
const settings = { intune: { secureByDefault: true } };

describe("Intune complianceState and controls", () => {
  const cases: { name: string; rec: DeviceRecord; src?: Record<string, unknown>; facts?: object; status: string; codes: string[] }[] = [
    { name: "compliant, tenant marks no-policy devices noncompliant", rec: intune(), status: "pass", codes: [] },
    { name: "noncompliant", rec: intune({ compliance: "noncompliant" }), status: "fail", codes: ["DEVICE_NONCOMPLIANT"] },
    { name: "in grace period", rec: intune({ compliance: "inGracePeriod", graceUntil: NOW + 2 * D }), status: "warn", codes: ["DEVICE_GRACE_PERIOD"] },
    { name: "grace period over", rec: intune({ compliance: "inGracePeriod", graceUntil: NOW - 1 }), status: "fail", codes: ["DEVICE_NONCOMPLIANT"] },
    { name: "conflict", rec: intune({ compliance: "conflict" }), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "error", rec: intune({ compliance: "error" }), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "unknown", rec: intune({ compliance: "unknown" }), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "configManager", rec: intune({ compliance: "configManager" }), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "a state Graph adds later", rec: intune({ compliance: "unknownFutureValue" }), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "compliant, but the tenant marks no-policy devices compliant", rec: intune(), facts: { intune: { secureByDefault: false } }, status: "unknown", codes: ["DEVICE_NO_COMPLIANCE_POLICY"] },
    { name: "compliant, tenant setting unread", rec: intune(), facts: {}, status: "unknown", codes: ["DEVICE_NO_COMPLIANCE_POLICY"] },
    { name: "compliant, no_policy_check off", rec: intune(), src: { no_policy_check: false }, facts: {}, status: "pass", codes: [] },
    { name: "jailbroken", rec: intune({ jailBroken: "True" }), status: "fail", codes: ["DEVICE_JAILBROKEN"] },
    { name: "jailbroken, not blocked", rec: intune({ jailBroken: "True" }), src: { block_jailbroken: false }, status: "pass", codes: [] },
    { name: "high threat", rec: intune({ threat: "highSeverity" }), status: "fail", codes: ["DEVICE_THREAT_REPORTED"] },
    { name: "compromised", rec: intune({ threat: "compromised" }), status: "fail", codes: ["DEVICE_THREAT_REPORTED"] },
    { name: "low threat", rec: intune({ threat: "lowSeverity" }), status: "pass", codes: [] },
    { name: "secured", rec: intune({ threat: "secured" }), status: "pass", codes: [] },
    { name: "unencrypted, encryption required", rec: intune({ encrypted: false }), src: { require_encryption: true }, status: "fail", codes: ["DEVICE_UNENCRYPTED"] },
    { name: "unencrypted, not required", rec: intune({ encrypted: false }), status: "pass", codes: [] },
    { name: "Exchange-only device", rec: intune({ agent: "eas" }, { managed: false }), status: "fail", codes: ["DEVICE_UNMANAGED"] },
    { name: "OS older than min_os_version", rec: intune(), src: { min_os_version: { windows: "10.0.26100" } }, status: "fail", codes: ["DEVICE_OS_OUTDATED"] },
    { name: "OS new enough", rec: intune(), src: { min_os_version: { windows: "10.0.19045", macos: "15" } }, status: "pass", codes: [] },
    { name: "noncompliant and jailbroken: both reasons", rec: intune({ compliance: "noncompliant", jailBroken: "True" }), status: "fail", codes: ["DEVICE_NONCOMPLIANT", "DEVICE_JAILBROKEN"] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const v = evaluateRecord(c.rec, source("intune", c.src), (c.facts ?? settings) as never, opts);
      assert.equal(v.status, c.status);
      assert.deepEqual(v.reasons.map((r) => r.code), c.codes);
    });
  }

  test("a grace period asks to be re-checked at its deadline (or sooner, when the data ages first)", () => {
    const v = evaluateRecord(intune({ compliance: "inGracePeriod", graceUntil: NOW + 2 * H }), source("intune"), settings, opts);
    assert.equal(v.next_run_at, NOW + 2 * H);
    assert.match(v.reasons[0]!.message, /until 2026-06-01T14:00:00.000Z/);
    const later = evaluateRecord(intune({ compliance: "inGracePeriod", graceUntil: NOW + 2 * D }), source("intune"), settings, opts);
    assert.equal(later.next_run_at, NOW - H + 18 * H + 1, "the stale warning comes before the deadline");
  });
});

describe("freshness: stale data is never a pass, and every verdict carries its age", () => {
  const cases: { name: string; age: number | undefined; src?: Record<string, unknown>; onStale?: "fail" | "unknown"; status: string; codes: string[] }[] = [
    { name: "fresh", age: 2 * H, status: "pass", codes: [] },
    { name: "past warn_age (3/4 of 24h)", age: 20 * H, status: "warn", codes: ["DEVICE_STALE_SOON"] },
    { name: "past max_age", age: 25 * H, status: "fail", codes: ["DEVICE_STALE"] },
    { name: "past max_age, on_stale unknown", age: 25 * H, onStale: "unknown", status: "unknown", codes: ["DEVICE_STALE"] },
    { name: "never synced", age: undefined, status: "fail", codes: ["DEVICE_STALE"] },
    { name: "custom max_age", age: 2 * H, src: { max_age: "1h" }, status: "fail", codes: ["DEVICE_STALE"] },
    { name: "custom warn_age", age: 2 * H, src: { warn_age: "1h" }, status: "warn", codes: ["DEVICE_STALE_SOON"] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const rec = intune({}, { observedAt: c.age === undefined ? undefined : NOW - c.age });
      const v = evaluateRecord(rec, source("intune", c.src), settings, { now: NOW, onStale: c.onStale ?? "fail" });
      assert.equal(v.status, c.status);
      assert.deepEqual(v.reasons.map((r) => r.code), c.codes);
      assert.equal(v.evidence.data_age_seconds, c.age === undefined ? null : c.age / 1000);
    });
  }

  test("a fresh pass asks to be re-checked when it would start warning, and stands no longer than its data", () => {
    const v = evaluateRecord(intune({}, { observedAt: NOW - 2 * H }), source("intune"), settings, opts);
    assert.equal(v.next_run_at, NOW - 2 * H + 18 * H + 1);
    assert.equal(v.stale_at, NOW - 2 * H + 24 * H);
  });
});

describe("Fleet, Jamf, CrowdStrike and host records", () => {
  const fleet = (p: Partial<Extract<Posture, { kind: "fleet" }>> = {}) => record({ kind: "fleet", hostId: 7, failingPolicies: 0, ...p }, { type: "fleet", id: "7", platform: "macos", osVersion: "14.4.1" });
  const results = { policies: new Map([[12, { id: 12, name: "FileVault on", critical: true }], [15, { id: 15, name: "Firewall", critical: false }]]), failing: new Map([[12, new Set([7])], [15, new Set<number>()]]) };
  const jamf = (p: Partial<Extract<Posture, { kind: "jamf" }>> = {}) => record({ kind: "jamf", managed: true, supervised: true, fileVault: "ENCRYPTED", firewall: true, reportAt: NOW - 2 * D, ...p }, { type: "jamf", platform: "macos", osVersion: "14.4.1", observedAt: NOW - 10 * 60_000 });
  const zta = (p: Partial<Extract<Posture, { kind: "crowdstrike" }>> = {}) => record({ kind: "crowdstrike", overall: 80, os: 70, sensorConfig: 90, failing: [], ...p }, { type: "crowdstrike" });
  const host = (controls: Extract<Posture, { kind: "host" }>["controls"]) => record({ kind: "host", controls }, { type: "host", platform: "debian", osVersion: "12", observedAt: NOW - 60_000 });

  const cases: { name: string; rec: DeviceRecord; src: DeviceSourceConfig; facts?: object; status: string; codes: string[] }[] = [
    { name: "fleet: no failing policy (all)", rec: fleet(), src: source("fleet"), status: "pass", codes: [] },
    { name: "fleet: failing policies (all)", rec: fleet({ failingPolicies: 2 }), src: source("fleet"), status: "fail", codes: ["DEVICE_NONCOMPLIANT"] },
    { name: "fleet: count missing (all)", rec: fleet({ failingPolicies: undefined }), src: source("fleet"), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "fleet: a named policy failing, mapped to a code", rec: fleet(), src: source("fleet", { policies: [{ id: 12, code: "DEVICE_UNENCRYPTED" }, 15] }), facts: { fleet: results }, status: "fail", codes: ["DEVICE_UNENCRYPTED"] },
    { name: "fleet: named policies passing", rec: fleet({ hostId: 8 }), src: source("fleet", { policies: [12, 15] }), facts: { fleet: results }, status: "pass", codes: [] },
    { name: "fleet: critical policies", rec: fleet(), src: source("fleet", { policies: "critical" }), facts: { fleet: results }, status: "fail", codes: ["DEVICE_NONCOMPLIANT"] },
    { name: "fleet: old macOS", rec: fleet(), src: source("fleet", { min_os_version: { macos: "15.0" } }), status: "fail", codes: ["DEVICE_OS_OUTDATED"] },
    { name: "jamf: managed, FileVault on", rec: jamf(), src: source("jamf"), status: "pass", codes: [] },
    { name: "jamf: not managed", rec: jamf({ managed: false }), src: source("jamf"), status: "fail", codes: ["DEVICE_UNMANAGED"] },
    ...["UNKNOWN"].map((s) => ({ name: `jamf: FileVault ${s}`, rec: jamf({ fileVault: s }), src: source("jamf"), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] })),
    ...["UNENCRYPTED", "INELIGIBLE", "DECRYPTED", "DECRYPTING", "ENCRYPTING", "RESTART_NEEDED", "OPTIMIZING", "DECRYPTING_PAUSED", "ENCRYPTING_PAUSED"].map((s) => ({ name: `jamf: FileVault ${s}`, rec: jamf({ fileVault: s }), src: source("jamf"), status: "fail", codes: ["DEVICE_UNENCRYPTED"] })),
    { name: "jamf: not supervised, required", rec: jamf({ supervised: false }), src: source("jamf", { require_supervised: true }), status: "fail", codes: ["DEVICE_NOT_SUPERVISED"] },
    { name: "jamf: firewall off, required", rec: jamf({ firewall: false }), src: source("jamf", { require_firewall: true }), status: "fail", codes: ["DEVICE_FIREWALL_OFF"] },
    { name: "jamf: old inventory although checking in", rec: jamf({ reportAt: NOW - 9 * D }), src: source("jamf"), status: "fail", codes: ["DEVICE_STALE"] },
    { name: "crowdstrike: above threshold", rec: zta(), src: source("crowdstrike"), status: "pass", codes: [] },
    {
      name: "crowdstrike: below threshold, failing signals as reasons",
      rec: zta({ overall: 41, failing: [{ group: "os", id: "firewall_enabled", name: "Firewall", meets: "no", criteria: "Enabled" }, { group: "sensor", id: "rfm", name: "Reduced functionality mode", meets: "no" }] }),
      src: source("crowdstrike"),
      status: "fail",
      codes: ["DEVICE_ZTA_BELOW_THRESHOLD", "DEVICE_ZTA_SIGNAL_FAILED", "DEVICE_ZTA_SIGNAL_FAILED"],
    },
    { name: "crowdstrike: os score threshold", rec: zta({ os: 30 }), src: source("crowdstrike", { thresholds: { overall: 60, os: 50 } }), status: "fail", codes: ["DEVICE_ZTA_BELOW_THRESHOLD"] },
    { name: "crowdstrike: no score", rec: zta({ overall: undefined }), src: source("crowdstrike"), status: "unknown", codes: ["DEVICE_COMPLIANCE_UNKNOWN"] },
    { name: "host: all controls ok", rec: host([{ control: "firewall", status: "ok", code: "DEVICE_FIREWALL_OFF", detail: "x" }]), src: source("host"), status: "pass", codes: [] },
    {
      name: "host: failed controls each give their code, unknown ones DEVICE_CONTROL_UNKNOWN",
      rec: host([
        { control: "disk_encryption:/", status: "failed", code: "DEVICE_UNENCRYPTED", detail: "/ is on vda" },
        { control: "firewall", status: "unknown", code: "DEVICE_FIREWALL_OFF", detail: "needs root" },
        { control: "secure_boot", status: "failed", code: "DEVICE_SECURE_BOOT_OFF", detail: "no UEFI" },
      ]),
      src: source("host"),
      status: "fail",
      codes: ["DEVICE_UNENCRYPTED", "DEVICE_SECURE_BOOT_OFF", "DEVICE_CONTROL_UNKNOWN"],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const v = evaluateRecord(c.rec, c.src, (c.facts ?? {}) as never, opts);
      assert.equal(v.status, c.status, JSON.stringify(v.reasons));
      assert.deepEqual(v.reasons.map((r) => r.code), c.codes);
    });
  }
});

describe("subjects: devices, users (all / any), sessions, several sources", () => {
  const intuneSrc = source("intune");
  const fleetSrc = source("fleet", { name: "fleet" });
  const laptop = intune({}, { id: "L1", serial: "SERIAL-A", users: ["alice@example.com"] });
  const phone = intune({ compliance: "noncompliant" }, { id: "P1", serial: "SERIAL-B", users: ["alice@example.com"] });
  const answer = (cfg: DeviceSourceConfig, records: DeviceRecord[], facts: object = settings): SourceAnswer => ({ cfg, records, facts: facts as never, scannedAt: NOW - 60_000 });
  const user: Lookup = { by: "user", values: ["alice@example.com"], what: "the devices of user alice" };
  const device: Lookup = { by: "device", values: ["l1"], what: "device L1" };

  test("all: one noncompliant device fails the user", () => {
    const v = evaluateSubject(user, [answer(intuneSrc, [laptop, phone])], "all", opts);
    assert.equal(v.status, "fail");
    assert.deepEqual(v.reasons.map((r) => r.code), ["DEVICE_NONCOMPLIANT"]);
    assert.equal((v.evidence.devices as unknown[]).length, 2);
  });

  test("any: one compliant device passes the user", () => {
    const v = evaluateSubject(user, [answer(intuneSrc, [laptop, phone])], "any", opts);
    assert.equal(v.status, "pass");
    assert.deepEqual(v.reasons, []);
  });

  test("a user with no device is unknown (DEVICE_NOT_FOUND)", () => {
    const v = evaluateSubject(user, [answer(intuneSrc, [])], "all", opts);
    assert.equal(v.status, "unknown");
    assert.deepEqual(v.reasons.map((r) => r.code), ["DEVICE_NOT_FOUND"]);
  });

  test("a device nobody knows is unknown; a subject with no id is unknown", () => {
    assert.deepEqual(evaluateSubject(device, [answer(intuneSrc, [])], "all", opts).reasons.map((r) => r.code), ["DEVICE_NOT_FOUND"]);
    assert.equal(evaluateSubject({ by: "none", what: "x" }, [answer(intuneSrc, [])], "all", opts).status, "unknown");
    assert.equal(evaluateSubject(device, [], "all", opts).status, "unknown");
  });

  test("a device two sources know (same serial) is as bad as the worse of them", () => {
    const fleetSide = record({ kind: "fleet", hostId: 3, failingPolicies: 1 }, { type: "fleet", id: "3", serial: "SERIAL-A", users: ["alice@example.com"] });
    const v = evaluateSubject(user, [answer(intuneSrc, [laptop]), answer(fleetSrc, [fleetSide], {})], "any", opts);
    assert.equal(v.status, "fail", "any: the only device (seen twice) fails in Fleet");
    assert.deepEqual(v.reasons.map((r) => r.code), ["DEVICE_NONCOMPLIANT"]);
  });

  test("a source down gives unknown, never a pass; with `any` a device known to comply still passes", () => {
    const down: SourceAnswer = { cfg: fleetSrc, error: { transient: true, message: "GET … → 503" } };
    const all = evaluateSubject(user, [answer(intuneSrc, [laptop]), down], "all", opts);
    assert.equal(all.status, "unknown");
    assert.deepEqual(all.reasons.map((r) => r.code), ["DEVICE_SOURCE_UNAVAILABLE"]);
    assert.equal(evaluateSubject(user, [answer(intuneSrc, [laptop]), down], "any", opts).status, "pass");
    const refused: SourceAnswer = { cfg: intuneSrc, error: { transient: false, message: "403" } };
    assert.deepEqual(evaluateSubject(device, [refused], "all", opts).reasons.map((r) => r.code), ["DEVICE_SOURCE_ERROR"]);
  });

  test("a required source that does not know the device makes it unknown even when another passes it", () => {
    const zta = source("crowdstrike", { required: true });
    const v = evaluateSubject(device, [answer(intuneSrc, [laptop]), answer(zta, [])], "all", opts);
    assert.equal(v.status, "unknown");
    assert.match(v.reasons[0]!.message, /crowdstrike \(required\) does not know device L1/);
  });

  test("the result stands no longer than its data, and re-runs at the earliest change", () => {
    const older = intune({}, { id: "L2", serial: "S2", observedAt: NOW - 10 * H });
    const v = evaluateSubject(user, [answer(intuneSrc, [laptop, older])], "all", opts);
    assert.equal(v.status, "pass");
    assert.equal(v.valid_until, NOW - 10 * H + 24 * H);
    assert.equal(v.next_run_at, NOW - 10 * H + 18 * H + 1);
    assert.equal(v.evidence.data_age_seconds, 10 * 3600);
  });
});
