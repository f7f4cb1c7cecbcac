/**
 * The Grafana dashboard and the alert rules against what vigil really exports: a real `vigil run`
 * (certificates checked, a signal enforced, a webhook that refuses every delivery) scraped every
 * second by a real Prometheus that also evaluates deploy/prometheus/vigil-alerts.yml. Every query
 * must run without error or warning, and every name it reads must be one the agent serves or
 * src/telemetry/names.ts defines.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { AgentProcess, TOKEN, tempConfig } from "../helpers/agent-process.ts";
import { PROMETHEUS_MISSING, PrometheusServer } from "../helpers/prometheus.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { until } from "../helpers/wait.ts";
import { dashboardQueries, definedNames, loadDashboard, metricNames, substitute } from "../helpers/grafana.ts";
import { DAY, NOW, issue, toPem, x509 } from "../checks/certificate_validity/pki/helpers.ts";

const RULES = fileURLToPath(new URL("../../deploy/prometheus/vigil-alerts.yml", import.meta.url));
const SECRET = "whsec-live-0123456789abcdef";

/** Writes a root CA and a client certificate for `frontend` into `dir`; the others have none. */
async function certificates(dir: string): Promise<void> {
  const root = await issue({ subject: "CN=live root, O=vigil", ca: true, notAfter: new Date(NOW.getTime() + 3650 * DAY) });
  const leaf = await issue({
    // No CN: the strict profile wants a CN to copy a SAN, and a SPIFFE id is no host name.
    subject: "O=vigil, OU=frontend",
    issuer: root,
    eku: [x509.ExtendedKeyUsage.clientAuth],
    sans: [{ type: "url", value: "spiffe://example.org/ns/web/sa/frontend" }],
    notAfter: new Date(NOW.getTime() + 30 * DAY),
  });
  writeFileSync(join(dir, "root.pem"), toPem(root.der));
  writeFileSync(join(dir, "frontend.pem"), toPem(leaf.der));
}

describe("dashboard and alert rules against a real Prometheus scraping a real agent", { skip: PROMETHEUS_MISSING }, () => {
  const receiver = new WebhookReceiver(SECRET);
  let agent: AgentProcess;
  let prometheus: PrometheusServer;
  /** Metric names in the agent's exposition (`# TYPE` lines, plus histogram series suffixes). */
  const served = new Set<string>();

  before(async () => {
    // Every delivery is refused for good: the webhook action fails and stays unreconciled.
    receiver.respond = () => 400;
    const hook = await receiver.start();
    const { dir, file } = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  audit: {key: "live-audit-key-0123456789abcdef0123456789"}
inventories:
  - type: static
    subjects:
      - {id: frontend, kind: workload, identity: "spiffe://example.org/ns/web/sa/frontend"}
      - {id: api, kind: workload, identity: "spiffe://example.org/ns/api/sa/api"}
      - {id: billing, kind: workload, identity: "spiffe://example.org/ns/billing/sa/billing"}
      - {id: u1, kind: user, attributes: {mfa: true}}
checks:
  certificate_validity:
    trust_bundle: ${join(dir, "root.pem")}
    source: {type: file, paths: ["${dir}/{{id}}.pem"]}
    purpose: client
    revocation: {mode: none}
communication_policies:
  - name: frontend-to-api
    source: frontend
    destination: api
    port: 443
    continuous_verification: {interval: 1m, checks: [certificate_validity]}
  # billing has no certificate file: CERT_SOURCE_UNAVAILABLE.
  - name: billing-to-api
    source: billing
    destination: api
    port: 443
    continuous_verification: {interval: 1m, checks: [certificate_validity]}
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement:
  read_only:
    - {type: log, level: warn}
  deny:
    - {type: log, level: error}
    - {type: webhook, name: notify, url: "${hook}", secret: "${SECRET}", timeout: 2s}
  retry: {attempts: 1}
`,
    );
    await certificates(dir);
    agent = await AgentProcess.start(file);
    await agent.idle();
    const res = await agent.request("POST", "/v1/signals", { subject: "u1", check: "mfa", status: "fail", reason: "live" });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    await receiver.waitForDeliveries(1);
    await agent.idle();

    prometheus = await PrometheusServer.start([new URL(agent.metrics!).host], [RULES]);
    await prometheus.scraped(1, 5);
    const exposition = await (await fetch(`${agent.metrics}/metrics`)).text();
    for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      served.add(name!);
      if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) served.add(name! + s);
    }
  });

  after(async () => {
    await prometheus?.stop();
    await agent?.stop();
    await receiver.stop();
  });

  it("the agent serves what the panels need: certificates, decisions, a failed and an unreconciled action", () => {
    for (const name of ["vigil_certificate_expiry_seconds", "vigil_certificate_revoked", "vigil_certificate_check_errors_total", "vigil_decision_changes_total", "vigil_actions_total", "vigil_enforcement_unreconciled", "vigil_signal_to_enforcement_seconds_bucket", "vigil_evaluations_total", "vigil_subjects"]) {
      assert.ok(served.has(name), `${name} is not served`);
    }
  });

  it("every dashboard query runs in Prometheus without error and reads only vigil's names", async () => {
    const dashboard = loadDashboard();
    const known = definedNames();
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length > 30, `${queries.length} queries`);
    let withData = 0;
    for (const q of queries) {
      const expr = substitute(q.expr, dashboard);
      const answer = await prometheus.query(expr);
      assert.equal(answer.status, "success", `${q.where}: ${expr}\n${answer.errorType}: ${answer.error}`);
      assert.deepEqual(answer.warnings ?? [], [], `${q.where}: ${expr}`);
      for (const name of metricNames(q.expr)) assert.ok(name === "up" || served.has(name) || known.has(name), `${q.where}: ${name} is neither served by the agent nor defined in names.ts`);
      if ((answer.data?.result.length ?? 0) > 0) withData++;
    }
    // Not every panel can show something here (no provider, no checkpoint sink), but most must.
    assert.ok(withData >= queries.length * 0.7, `only ${withData} of ${queries.length} queries returned data`);
  });

  it("the panels at the heart of the dashboard show this agent's state", async () => {
    const dashboard = loadDashboard();
    const series = async (title: string) => {
      const q = dashboardQueries(dashboard).find((x) => x.where.startsWith(`panel "${title}" `));
      assert.ok(q, title);
      return (await prometheus.query(substitute(q.expr, dashboard))).data?.result ?? [];
    };
    const access = await series("Subjects by access level, per policy");
    assert.ok(access.some((r) => r.metric.policy === "identity-perimeter" && r.metric.access === "deny" && r.value?.[1] === "1"), JSON.stringify(access));
    const failed = await series("Failed enforcement actions");
    assert.ok(failed.some((r) => r.metric.type === "webhook"), JSON.stringify(failed));
    const unreconciled = await series("Unreconciled enforcement");
    assert.ok(unreconciled.some((r) => r.metric.action === "notify" && r.value?.[1] === "1"), JSON.stringify(unreconciled));
    const certs = await series("Certificates");
    const frontend = certs.find((r) => r.metric.subject === "frontend");
    assert.ok(frontend && Number(frontend.value?.[1]) > 29 * 86400, JSON.stringify(certs));
  });

  it("every alert rule loads and evaluates in Prometheus against the agent's series", async () => {
    const doc = parse(readFileSync(RULES, "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const expected = doc.groups.flatMap((g) => g.rules);
    const known = definedNames();
    for (const rule of expected) {
      const answer = await prometheus.query(rule.expr);
      assert.equal(answer.status, "success", `${rule.alert}: ${answer.errorType}: ${answer.error}`);
      assert.deepEqual(answer.warnings ?? [], [], rule.alert);
      for (const name of metricNames(rule.expr)) assert.ok(name === "up" || served.has(name) || known.has(name), `${rule.alert}: ${name} is neither served nor defined`);
    }
    // Prometheus's own evaluation of the loaded rules: each has run, and none has failed.
    await until(async () => (await prometheus.rules()).every((r) => r.lastEvaluation !== "0001-01-01T00:00:00Z"), 20_000);
    const states = await prometheus.rules();
    assert.deepEqual(states.map((r) => r.name), expected.map((r) => r.alert));
    for (const r of states) assert.equal(r.health, "ok", `${r.name}: ${r.lastError}`);
  });

  it("the failed webhook fires VigilEnforcementFailed at once and holds VigilEnforcementUnreconciled pending", async () => {
    const alerts = async () => ((await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } }).data.alerts;
    await until(async () => (await alerts()).some((a) => a.labels.alertname === "VigilEnforcementFailed" && a.state === "firing"), 20_000);
    const failed = (await alerts()).find((a) => a.labels.alertname === "VigilEnforcementFailed");
    assert.equal(failed?.labels.type, "webhook");
    const unreconciled = (await alerts()).filter((a) => a.labels.alertname === "VigilEnforcementUnreconciled");
    // u1 denied by its signal, billing by the certificate nobody can read: both webhook calls refused.
    assert.deepEqual(
      unreconciled.map((a) => [a.labels.action, a.labels.policy, a.state]).sort(),
      [
        ["notify", "billing-to-api", "pending"],
        ["notify", "identity-perimeter", "pending"],
      ],
    );
  });
});
