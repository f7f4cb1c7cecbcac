/**
 * Lookups keyed by user input read own properties only. On a plain object `constructor` is Object and
 * `__proto__` the prototype: an Alertmanager severity, a CLI command, an attribute path or a policy
 * name that happens to be one of them must be an ordinary unknown (or ordinary) name.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { own, setOwn } from "../../src/util/own.ts";
import { alertmanagerPayloadSchema, alertsToSignals, type AlertmanagerMapping } from "../../src/http/alertmanager.ts";
import { attribute } from "../../src/checks/common/attribute.ts";
import { renderTemplate } from "../../src/plugin/template.ts";
import { aggregateRisk } from "../../src/policy/decide.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { openDatabase } from "../../src/db/sqlite.ts";
import type { StoredState } from "../../src/store/contract.ts";
import type { Subject } from "../../src/policy/model.ts";
import { runCli } from "../helpers/agent-process.ts";

const PROTO_NAMES = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];

test("own() and setOwn() see own properties only, __proto__ included", () => {
  const record: Record<string, number> = { a: 1 };
  for (const name of PROTO_NAMES) assert.equal(own(record, name), undefined, name);
  assert.equal(own(record, "a"), 1);
  setOwn(record, "__proto__", 2);
  assert.equal(own(record, "__proto__"), 2);
  assert.equal(Object.getPrototypeOf(record), Object.prototype);
  // Every name an Object member has is written as an own, enumerable key like any other.
  const fresh: Record<string, number> = {};
  PROTO_NAMES.forEach((name, i) => setOwn(fresh, name, i));
  assert.deepEqual(Object.keys(fresh), PROTO_NAMES);
  PROTO_NAMES.forEach((name, i) => assert.equal(own(fresh, name), i, name));
  assert.equal(Object.getPrototypeOf(fresh), Object.prototype);
});

test("Alertmanager: a severity named like an Object member is an unknown severity (fail)", () => {
  const mapping: AlertmanagerMapping = { subject_label: "vigil_subject", check_label: "vigil_check", default_check: "anomaly_detection", severity_label: "severity", severities: { info: "warn", warning: "warn", critical: "fail" }, ttl_ms: 60_000 };
  for (const severity of PROTO_NAMES) {
    const payload = alertmanagerPayloadSchema.parse({ version: "4", status: "firing", alerts: [{ status: "firing", labels: { vigil_subject: "web", severity } }] });
    const { signals } = alertsToSignals(payload, mapping);
    assert.deepEqual(signals.map((s) => [s.check, s.status]), [["anomaly_detection", "fail"]], severity);
  }
  // A mapping that names labels like Object members reads only labels the alert has.
  const odd = { ...mapping, check_label: "constructor", subject_label: "toString" };
  const payload = alertmanagerPayloadSchema.parse({ version: "4", status: "firing", alerts: [{ status: "firing", labels: { severity: "info" } }] });
  assert.deepEqual(alertsToSignals(payload, odd).signals, []);
  const named = alertmanagerPayloadSchema.parse({ version: "4", status: "firing", alerts: [{ status: "firing", labels: { toString: "web" } }] });
  assert.deepEqual(alertsToSignals(named, odd).signals.map((s) => [s.subject, s.check]), [["web", "anomaly_detection"]]);
});

test("vigil constructor is an unknown command (exit 2), not a crash", async () => {
  for (const name of ["constructor", "__proto__", "toString"]) {
    const r = await runCli([name]);
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`unknown command "${name}"`));
  }
});

test("the attribute walker reads own attributes: an inherited member is absent", () => {
  const subject: Subject = { id: "u1", kind: "user", attributes: { device: { managed: true } }, labels: {} };
  for (const name of PROTO_NAMES) {
    assert.equal(attribute(subject, name), undefined, name);
    assert.equal(attribute(subject, `device.${name}`), undefined, `device.${name}`);
  }
  assert.equal(attribute(subject, "device.managed"), true);
  const arrays: Subject = { id: "u2", kind: "user", attributes: { groups: ["a", "b"] }, labels: {} };
  assert.equal(attribute(arrays, "groups.1"), "b");
});

test("templates render own subject values only", () => {
  const subject: Subject = { id: "u1", kind: "user", attributes: {}, labels: {} };
  for (const name of ["attributes.constructor", "attributes.toString", "labels.constructor", "labels.__proto__"]) {
    assert.throws(() => renderTemplate(`{{${name}}}`, subject), /has no value/, name);
  }
});

test("a scoring weight for a check named constructor is its configured weight or 1, never Object", () => {
  const checks = [{ check: "constructor", status: "fail" as const, risk: "high" as const, score: 100, reasons: [], source: "push" as const, held: false }, { check: "mfa", status: "pass" as const, risk: "low" as const, score: 0, reasons: [], source: "pull" as const, held: false }];
  const scoring = { mode: "weighted" as const, weights: {}, thresholds: { medium: 40, high: 70 } };
  assert.deepEqual(aggregateRisk(checks, scoring), { risk: "medium", score: 50 });
});

function state(policy: string): StoredState {
  return {
    decision: { policy, subject: "s1", access: "deny", risk: "high", reasons: [], generation: 1, decided_at: 1, evidence: {}, exempt: false },
    candidate: "deny",
    streak: 1,
    changed_at: 1,
    enforced_generation: 1,
    enforced_access: "deny",
  };
}

test("counts per policy: a policy named __proto__ or constructor counts as itself and pollutes nothing", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-own-"));
  const db = openDatabase(dir);
  const embedded = new EmbeddedStore(db, dir);
  t.after(async () => {
    await embedded.stop();
    if (db.isOpen) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const store of [new MemoryStore(), embedded]) {
    await store.putStates([state("__proto__"), state("constructor"), state("web")]);
    const counts = await store.countByAccess();
    assert.deepEqual(Object.entries(counts).sort(), [["__proto__", { deny: 1 }], ["constructor", { deny: 1 }], ["web", { deny: 1 }]]);
    assert.equal(({} as Record<string, unknown>).deny, undefined, "Object.prototype was polluted");
  }
});
