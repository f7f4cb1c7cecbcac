/**
 * End to end: a real `vigil run` watching a real Prometheus, which scrapes an exporter this test
 * runs every second and has five minutes of history written beforehand. A subject's error ratio
 * spikes: within a tick or two the subject drops to deny and the signed webhook reaches the
 * receiver; the series is normal again: once the ttl has passed since the last anomalous point,
 * access comes back and the revert is delivered. The other subject never moves.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AgentProcess, tempConfig, TOKEN } from "../helpers/agent-process.ts";
import { Exporter, PROMETHEUS_MISSING, PrometheusServer } from "../helpers/prometheus-anomaly.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { until } from "../helpers/wait.ts";

const SECRET = "whsec-anomaly-e2e-0123456789";
const TTL_MS = 6_000;

/** Two values around 1 %: an error ratio that wobbles. */
function noise(seed: number): () => number {
  let i = seed;
  return () => 0.01 + ((i++ * 4) % 11 > 5 ? 0.001 : 0);
}

describe("anomaly_detection end to end (real agent, real Prometheus)", { skip: PROMETHEUS_MISSING }, () => {
  const exporter = new Exporter();
  const receiver = new WebhookReceiver(SECRET);
  let prom: PrometheusServer;
  let agent: AgentProcess;

  before(async () => {
    const target = await exporter.start();
    exporter.values.set('app_error_ratio{app="web"}', noise(1));
    exporter.values.set('app_error_ratio{app="api"}', noise(2));
    const now = Math.floor(Date.now() / 1000);
    const history: string[] = [];
    const web = noise(3);
    const api = noise(4);
    for (let t = now - 300; t < now - 1; t++) {
      history.push(`app_error_ratio{app="web",instance="${target}",job="test"} ${web()} ${t}`);
      history.push(`app_error_ratio{app="api",instance="${target}",job="test"} ${api()} ${t}`);
    }
    prom = await PrometheusServer.start({ targets: [target], history });
    await prom.ready();
    await prom.scraped(exporter);
    const hook = await receiver.start();
    const { file } = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
decision: {confirm: 1, restore_after: 1, cooldown: 0s}
inventories:
  - type: static
    subjects:
      - {id: web, kind: workload, labels: {app: web}}
      - {id: api, kind: workload, labels: {app: api}}
checks:
  anomaly_detection:
    on_unknown: hold
    ttl: ${TTL_MS / 1000}s
    prometheus: {url: "${prom.url}", timeout: 2s}
    step: 1s
    lookback: 5m
    warmup: 30
    params: {window: 120, seasonality: none}
    warn_at: 0.6
    fail_at: 0.8
    series:
      - name: error_ratio
        query: 'sum(app_error_ratio{app="{{labels.app}}"})'
identity_perimeter:
  applies_to: {kind: workload}
  require_mfa: false
  require_managed_device: false
  require_location_check: false
  continuous_verification: {interval: 1s, checks: [anomaly_detection]}
enforcement:
  deny:
    - type: webhook
      name: isolate
      url: "${hook}"
      secret: "${SECRET}"
  retry: {attempts: 5, delay: 100ms, max_delay: 1s}
`,
    );
    agent = await AgentProcess.start(file);
  });

  after(async () => {
    if (agent) assert.equal(await agent.stop(), 0);
    await receiver.stop();
    await prom?.stop();
    await exporter.stop();
  });

  it("an error-ratio spike denies the subject; normal again and the ttl passed, access comes back", async () => {
    const access = async (id: string) => (await agent.request("GET", `/v1/subjects/${id}`)).json.access as string;
    await until(async () => (await access("web")) === "full_access" && (await access("api")) === "full_access", 15_000);
    assert.equal(receiver.deliveries.length, 0, "five minutes of normal history: nothing anomalous at the start");

    exporter.values.set('app_error_ratio{app="web"}', 0.35);
    await receiver.waitForDeliveries(1, 15_000);
    const down = receiver.deliveries[0]!;
    assert.equal(down.signatureValid, true);
    assert.deepEqual([down.body.subject, down.body.access, down.body.previous_access], ["web", "deny", "full_access"]);
    const detail = (await agent.request("GET", "/v1/subjects/web")).json;
    assert.equal(detail.access, "deny");
    const reasons = detail.decisions[0].reasons as { code: string; message: string }[];
    assert.ok(
      reasons.some((r) => r.code === "ANOMALY_DETECTED" && /^error_ratio = 0\.35 at .*expected 0\.01\d* ± .* score \d(\.\d+)? ≥ fail_at 0\.8; stands until /.test(r.message)),
      JSON.stringify(reasons),
    );
    assert.equal(await access("api"), "full_access");

    exporter.values.set('app_error_ratio{app="web"}', noise(5));
    const normalAt = Date.now();
    await receiver.waitForDeliveries(2, 30_000);
    const up = receiver.deliveries[1]!;
    assert.deepEqual([up.body.subject, up.body.access, up.body.operation], ["web", "full_access", "revert"]);
    assert.ok(up.at - normalAt >= TTL_MS - 1_500, `restored ${up.at - normalAt} ms after the series was normal again: not before the ttl`);
    assert.equal(await access("web"), "full_access");
    assert.equal(receiver.deliveries.filter((d) => d.body.subject === "api").length, 0, "the other subject never moved");
  });
});
