import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { AgentProcess, TOKEN, tempConfig } from "../helpers/agent-process.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";

const BIN = ["prometheus-alertmanager", "alertmanager"].find((b) => spawnSync("sh", ["-c", `command -v ${b}`]).status === 0);
const SECRET = "whsec-alertmanager-0123456789";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

test(
  "a real Alertmanager alert for a subject drops it to deny, and its resolution restores it",
  { skip: BIN ? false : "prometheus-alertmanager is not installed (Debian package prometheus-alertmanager; scripts/install-test-deps installs it)" },
  async () => {
    const receiver = new WebhookReceiver(SECRET);
    const hook = await receiver.start();
    const { file, dir } = tempConfig(
      (d) => `
agent: {data_dir: ${join(d, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: false}}
inventories: [{type: static, subjects: [{id: frontend, kind: workload}, {id: api, kind: workload}]}]
checks: {anomaly_detection: {on_unknown: ignore}}
communication_policies:
  - {source: frontend, destination: api, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
enforcement:
  deny: [{type: webhook, url: "${hook}", secret: "${SECRET}"}]
`,
    );
    const agent = await AgentProcess.start(file);
    const amPort = await freePort();
    const amDir = join(dir, "am");
    mkdirSync(amDir);
    writeFileSync(
      join(amDir, "alertmanager.yml"),
      `route:
  receiver: vigil
  group_by: [alertname, vigil_subject]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: vigil
    webhook_configs:
      - url: ${agent.api}/v1/signals/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: ${TOKEN}
`,
    );
    const am = spawn(BIN!, [`--config.file=${join(amDir, "alertmanager.yml")}`, `--storage.path=${amDir}`, `--web.listen-address=127.0.0.1:${amPort}`, "--cluster.listen-address="], { stdio: "ignore" });
    const amUrl = `http://127.0.0.1:${amPort}`;
    try {
      for (let i = 0; ; i++) {
        const up = await fetch(`${amUrl}/-/ready`).then((r) => r.ok, () => false);
        if (up) break;
        if (i > 100) throw new Error("alertmanager did not become ready");
        await new Promise((r) => setTimeout(r, 100));
      }
      const alert = { labels: { alertname: "Beaconing", vigil_subject: "frontend", severity: "critical" }, annotations: { summary: "periodic connections to a known C2 host" } };
      const posted = await fetch(`${amUrl}/api/v2/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([alert]) });
      assert.equal(posted.status, 200);
      await receiver.waitForDeliveries(1, 20_000);
      assert.equal(receiver.deliveries[0]!.body.access, "deny");
      assert.equal(receiver.deliveries[0]!.signatureValid, true);
      const detail = (await agent.request("GET", "/v1/subjects/frontend")).json;
      assert.equal(detail.access, "deny");
      assert.match(detail.decisions[0].reasons[0].message, /Beaconing firing \(critical\): periodic connections/);

      const resolved = { ...alert, endsAt: new Date(Date.now() - 1000).toISOString() };
      await fetch(`${amUrl}/api/v2/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([resolved]) });
      await receiver.waitForDeliveries(2, 20_000);
      assert.equal(receiver.deliveries[1]!.body.access, "full_access");
      assert.equal(receiver.deliveries[1]!.body.operation, "revert");
      const audit = (await agent.request("GET", "/v1/audit?type=signal")).json.entries as { source: string }[];
      assert.ok(audit.length >= 2 && audit.every((e) => e.source === "alertmanager"));
    } finally {
      am.kill("SIGTERM");
      await agent.stop();
      await receiver.stop();
    }
  },
);

test("the Alertmanager receiver requires the bearer token", async () => {
  const { file } = tempConfig((d) => `agent: {data_dir: ${join(d, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: false}}\n`);
  const agent = await AgentProcess.start(file);
  try {
    const body = { version: "4", status: "firing", alerts: [] };
    assert.equal((await agent.request("POST", "/v1/signals/alertmanager", body, null)).status, 401);
    const ok = await agent.request("POST", "/v1/signals/alertmanager", body);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { accepted: 0, rejected: [], skipped: [] });
    const bad = await agent.request("POST", "/v1/signals/alertmanager", { version: "3", alerts: [] });
    assert.equal(bad.status, 400);
  } finally {
    await agent.stop();
  }
});
