import { test } from "node:test";
import assert from "node:assert/strict";
import { alertmanagerPayloadSchema, alertsToSignals, type AlertmanagerMapping } from "../../src/http/alertmanager.ts";

const mapping: AlertmanagerMapping = {
  subject_label: "vigil_subject",
  check_label: "vigil_check",
  default_check: "anomaly_detection",
  severity_label: "severity",
  severities: { warning: "warn", critical: "fail" },
  ttl_ms: 3_600_000,
};

const payload = (alerts: unknown[]) => alertmanagerPayloadSchema.parse({ version: "4", status: "firing", receiver: "vigil", groupKey: "{}", alerts, externalURL: "http://am" });

test("alerts map to signals by label, severity and status", () => {
  const cases: [name: string, alert: Record<string, unknown>, expected: Record<string, unknown> | null][] = [
    ["critical firing → fail on the default check", { status: "firing", labels: { alertname: "Beacon", vigil_subject: "web", severity: "critical" } }, { subject: "web", check: "anomaly_detection", status: "fail" }],
    ["warning firing → warn", { status: "firing", labels: { alertname: "Odd", vigil_subject: "web", severity: "warning" } }, { subject: "web", check: "anomaly_detection", status: "warn" }],
    ["unknown severity → fail", { status: "firing", labels: { vigil_subject: "web", severity: "page" } }, { subject: "web", status: "fail" }],
    ["no severity → fail", { status: "firing", labels: { vigil_subject: "web" } }, { subject: "web", status: "fail" }],
    ["resolved → pass", { status: "resolved", labels: { vigil_subject: "web", severity: "critical" } }, { subject: "web", status: "pass" }],
    ["check label picks the check", { status: "firing", labels: { vigil_subject: "u1", vigil_check: "user_risk_score", severity: "warning" } }, { subject: "u1", check: "user_risk_score", status: "warn" }],
    ["no subject label → skipped", { status: "firing", labels: { alertname: "NoSubject" }, fingerprint: "abc" }, null],
  ];
  for (const [name, alert, expected] of cases) {
    const { signals, skipped } = alertsToSignals(payload([alert]), mapping);
    if (expected === null) {
      assert.equal(signals.length, 0, name);
      assert.deepEqual(skipped, [{ fingerprint: "abc", alertname: "NoSubject", reason: "no vigil_subject label" }], name);
      continue;
    }
    assert.equal(signals.length, 1, name);
    const signal: Readonly<Record<string, unknown>> = { ...signals[0] };
    for (const [k, v] of Object.entries(expected)) assert.equal(signal[k], v, `${name}: ${k}`);
    assert.equal(signals[0]!.ttl_ms, 3_600_000, name);
    assert.equal(signals[0]!.source, "alertmanager", name);
  }
});

test("the reason carries alert name, status, severity and summary, capped at 1 KiB", () => {
  const { signals } = alertsToSignals(payload([{ status: "firing", labels: { alertname: "Beacon", vigil_subject: "web", severity: "critical" }, annotations: { summary: "x".repeat(5000) } }]), mapping);
  assert.match(signals[0]!.reason!, /^alertmanager: Beacon firing \(critical\): x+$/);
  assert.equal(signals[0]!.reason!.length, 1024);
});

test("payloads that are not Alertmanager v4 are refused by the schema", () => {
  assert.equal(alertmanagerPayloadSchema.safeParse({ version: "3", status: "firing", alerts: [] }).success, false);
  assert.equal(alertmanagerPayloadSchema.safeParse({ version: "4", status: "firing", alerts: [{ status: "burning", labels: {} }] }).success, false);
  assert.equal(alertmanagerPayloadSchema.safeParse({ version: "4", status: "firing" }).success, false);
});
