import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { AgentProcess, ROOT, TOKEN, tempConfig, runCli } from "../helpers/agent-process.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { until } from "../helpers/wait.ts";

const SECRET = "whsec-integration-0123456789";

function config(dir: string, hookUrl: string, extra = ""): string {
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  log_level: debug
inventories:
  - type: static
    subjects:
      - {id: frontend, kind: workload, identity: "spiffe://example.org/ns/web/sa/frontend"}
      - {id: api, kind: workload, identity: "spiffe://example.org/ns/api/sa/api"}
      - {id: carol, kind: user, attributes: {mfa: true, device_managed: true, country: DE}}
checks:
  anomaly_detection: {on_unknown: ignore}
communication_policies:
  - name: frontend-to-api
    source: frontend
    destination: api
    port: 443
    continuous_verification: {interval: 1h, checks: [anomaly_detection]}
identity_perimeter:
  require_location_check: false
enforcement:
  deny:
    - type: webhook
      name: notify
      url: "${hookUrl}"
      secret: "${SECRET}"
  retry: {attempts: 10, delay: 200ms, max_delay: 1s}
${extra}`;
}

describe("vigil run (real process)", () => {
  let receiver: WebhookReceiver;
  let hook: string;
  before(async () => {
    receiver = new WebhookReceiver(SECRET);
    hook = await receiver.start();
  });
  after(async () => {
    await receiver.stop();
  });

  it("a signal drops the subject to deny and the signed webhook reaches the receiver", async () => {
    const { file } = tempConfig((dir) => config(dir, hook));
    const agent = await AgentProcess.start(file);
    try {
      const before = (await agent.request("GET", "/v1/subjects/frontend")).json;
      assert.equal(before.access, "full_access");
      const start = receiver.deliveries.length;
      const res = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail", reason: "exfiltration pattern" });
      assert.equal(res.status, 202);
      assert.deepEqual(res.json.policies, ["frontend-to-api"]);
      await receiver.waitForDeliveries(start + 1);
      const d = receiver.deliveries[start]!;
      assert.equal(d.signatureValid, true, "HMAC-SHA256 signature verifies with the shared secret");
      assert.equal(d.body.subject, "frontend");
      assert.equal(d.body.policy, "frontend-to-api");
      assert.equal(d.body.access, "deny");
      assert.equal(d.body.previous_access, "full_access");
      assert.equal(d.body.generation, 2);
      assert.equal(d.body.risk, "high");
      assert.equal(d.body.idempotency_key, d.idempotencyKey);
      assert.match(String(d.body.decided_at), /^\d{4}-\d\d-\d\dT/);
      const after = (await agent.request("GET", "/v1/subjects/frontend")).json;
      assert.equal(after.access, "deny");
      assert.equal(after.decisions[0].reasons[0].code, "SIGNAL");
      // A good signal restores access and the revert is delivered too.
      await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "pass" });
      await receiver.waitForDeliveries(start + 2);
      assert.equal(receiver.deliveries[start + 1]!.body.access, "full_access");
      assert.equal(receiver.deliveries[start + 1]!.body.operation, "revert");
      const audit = (await agent.request("GET", "/v1/audit?subject=frontend&limit=50")).json.entries as { type: string }[];
      assert.ok(audit.some((e) => e.type === "signal"));
      assert.ok(audit.some((e) => e.type === "decision"));
      assert.equal(audit.filter((e) => e.type === "action").length, 2);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });

  it("an action accepted before kill -9 is delivered after restart, only ever with the same idempotency key", async () => {
    const { file } = tempConfig((dir) => config(dir, hook));
    const start = receiver.deliveries.length;
    // The receiver holds the first delivery open: the agent is killed with the action in flight.
    receiver.respond = (n) => (n === start + 1 ? "hang" : 200);
    let agent = await AgentProcess.start(file);
    const res = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail" });
    assert.equal(res.status, 202);
    await receiver.waitForDeliveries(start + 1);
    agent.child.kill("SIGKILL");
    await agent.stop();
    agent = await AgentProcess.start(file);
    try {
      await receiver.waitForDeliveries(start + 2, 20_000);
      const mine = receiver.deliveries.slice(start);
      assert.ok(mine.every((d) => d.body.subject === "frontend" && d.body.access === "deny"));
      assert.equal(new Set(mine.map((d) => d.idempotencyKey)).size, 1, "duplicates carry the same idempotency key");
      const audit = (await agent.request("GET", "/v1/audit?type=action&subject=frontend")).json.entries as { outcome: string }[];
      assert.equal(audit.length, 1);
      assert.equal(audit[0]!.outcome, "success");
    } finally {
      receiver.respond = () => 200;
      await agent.stop();
    }
  });

  it("a signal accepted with 202 just before kill -9 is evaluated and enforced after restart", async () => {
    const { file } = tempConfig((dir) => config(dir, hook, "  limits: {max_actions: 20, window: 10m}\n"));
    const start = receiver.deliveries.length;
    let agent = await AgentProcess.start(file);
    // Evaluations are slowed by nothing here, so kill immediately after the 202 and accept either
    // outcome before the kill; what must hold is that exactly one enforcement is delivered in the end.
    receiver.respond = () => 503;
    const res = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail" });
    assert.equal(res.status, 202);
    agent.child.kill("SIGKILL");
    await agent.stop();
    receiver.respond = () => 200;
    agent = await AgentProcess.start(file);
    try {
      // The receiver answered 503 before the kill and 200 after: wait for the one success record.
      const successes = async () =>
        ((await agent.request("GET", "/v1/audit?type=action&subject=frontend")).json.entries as { outcome: string }[]).filter((e) => e.outcome === "success").length;
      await until(async () => (await successes()) > 0, 20_000);
      const detail = (await agent.request("GET", "/v1/subjects/frontend")).json;
      assert.equal(detail.access, "deny");
      const ok = await successes();
      assert.equal(ok, 1);
    } finally {
      await agent.stop();
    }
  });

  it("refuses unauthenticated and malformed API calls and stays up", async () => {
    const { file } = tempConfig((dir) => config(dir, hook));
    const agent = await AgentProcess.start(file);
    try {
      assert.equal((await agent.request("GET", "/v1/subjects", undefined, null)).status, 401);
      assert.equal((await agent.request("GET", "/v1/subjects", undefined, "wrong-token-xxxxxxxxxxxx")).status, 401);
      assert.equal((await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail" }, null)).status, 401);
      const bad = await agent.request("POST", "/v1/signals", "{not json");
      assert.equal(bad.status, 400);
      const wrong = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "broken" });
      assert.equal(wrong.status, 400);
      assert.match(wrong.json.error.message, /status/);
      const unknownCheck = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "nope", status: "fail" });
      assert.equal(unknownCheck.status, 400);
      assert.match(unknownCheck.json.error.message, /not verified by any policy/);
      assert.equal((await agent.request("POST", "/v1/signals", { subject: "ghost", check: "anomaly_detection", status: "fail" })).status, 404);
      const huge = await agent.request("POST", "/v1/signals", JSON.stringify({ subject: "frontend", check: "anomaly_detection", status: "fail", reason: "x".repeat(200_000) }));
      assert.equal(huge.status, 413);
      assert.equal((await agent.request("GET", "/healthz", undefined, null)).status, 200);
      assert.equal((await agent.request("GET", "/readyz", undefined, null)).status, 200);
      assert.equal((await agent.request("GET", "/v1/status", undefined, null)).status, 401);
      const status = await agent.request("GET", "/v1/status");
      assert.equal(status.status, 200);
      assert.equal(status.json.ready, true);
      assert.equal(status.json.mode, "embedded");
      assert.equal(status.json.version, JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
      assert.deepEqual(Object.keys(status.json.queue).sort(), ["active", "delayed", "failed", "waiting"]);
      assert.equal(typeof status.json.idle, "boolean");
      assert.equal(agent.child.exitCode, null);
      assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(TOKEN)), "the token never appears in logs");
      assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(SECRET)), "the webhook secret never appears in logs");
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });

  it("reloads on SIGHUP, keeps the old config when the new one is invalid, and exits on SIGTERM", async () => {
    const { file, dir } = tempConfig((d) => config(d, hook));
    const agent = await AgentProcess.start(file);
    try {
      writeFileSync(file, config(dir, hook).replace("- {id: carol", "- {id: dave, kind: user, attributes: {mfa: true, device_managed: true}}\n      - {id: carol"));
      agent.child.kill("SIGHUP");
      await agent.waitFor((l) => l.msg === "configuration reloaded");
      assert.equal((await agent.request("GET", "/v1/subjects/dave")).status, 200);
      writeFileSync(file, config(dir, hook) + "\nbogus_key: 1\n");
      agent.child.kill("SIGHUP");
      const err = await agent.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("config reload failed"));
      assert.match(String(err.msg), /bogus_key/);
      assert.equal((await agent.request("GET", "/v1/subjects/dave")).status, 200, "old config still serves");
      const metrics = await (await fetch(agent.metrics + "/metrics")).text();
      assert.match(metrics, /vigil_config_reloads_total\{outcome="failure"\} 1/);
    } finally {
      const t0 = Date.now();
      assert.equal(await agent.stop(), 0);
      assert.ok(Date.now() - t0 < 10_000);
    }
  });

  it("audit verify passes on an intact log and fails on a changed line", async () => {
    const { file, dir } = tempConfig((d) => config(d, hook));
    const agent = await AgentProcess.start(file);
    await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "warn" });
    // The signal's decision is in the audit log before the log is checked.
    await until(async () => ((await agent.request("GET", "/v1/audit?type=decision&subject=frontend")).json.entries as { access: string }[]).some((e) => e.access === "read_only"));
    await agent.stop();
    const ok = await runCli(["audit", "verify", "-c", file]);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const log = join(dir, "var", "audit.jsonl");
    assert.ok(existsSync(log));
    const lines = readFileSync(log, "utf8").split("\n");
    lines[0] = lines[0]!.replace('"type":"', '"type":"x');
    writeFileSync(log, lines.join("\n"));
    const broken = await runCli(["audit", "verify", "-c", file]);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /line 1/);
  });

  it("exits 2 on a bad config, listing every problem with its path, and starts nothing", async () => {
    const { file } = tempConfig(
      () => `
agent:
  api: {listen: "nowhere", token: short}
  colour: blue
decision: {cooldown: "5 minutes"}
communication_policies:
  - {source: a, destination: b, port: 70000, continuous_verification: {interval: 7m}}
enforcement:
  deny: [{type: teleport}]
`,
    );
    const r = await runCli(["run", "-c", file]);
    assert.equal(r.code, 2);
    for (const path of ["agent.api.listen", "agent.api.token", "agent.colour", "decision.cooldown", "communication_policies[0].port"]) {
      assert.ok(r.stderr.includes(path), `stderr names ${path}:\n${r.stderr}`);
    }
    assert.match(r.stderr, /\(line \d+\)/);
    assert.equal(r.stdout, "", "nothing started, nothing logged");
  });
});

describe("one-shot commands", () => {
  it("check exits 1 when a subject is downgraded and 0 when all have full access", async () => {
    const bad = await runCli(["check", "--no-state", "-c", "config/vigil.yaml"]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stdout, /deny\s+high\s+identity-perimeter \/ bob/);
    const { file } = tempConfig(
      (d) => `
agent: {data_dir: ${join(d, "var")}}
inventories: [{type: static, subjects: [{id: erin, kind: user, attributes: {mfa: true, device_managed: true, country: NL}}]}]
identity_perimeter: {}
`,
    );
    const good = await runCli(["check", "-c", file]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
  });

  it("check marks an exempt subject and does not count it as downgraded", async () => {
    const { file } = tempConfig(
      (d) => `
agent: {data_dir: ${join(d, "var")}}
inventories: [{type: static, subjects: [
  {id: erin, kind: user, attributes: {mfa: true, device_managed: true, country: NL}},
  {id: root-breakglass, kind: user, attributes: {mfa: false, device_managed: true, country: NL}}]}]
identity_perimeter: {}
exempt: [{id: root-breakglass}]
`,
    );
    const r = await runCli(["check", "-c", file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^deny\s+high\s+identity-perimeter \/ root-breakglass\s+— .*\[exempt: never enforced\]$/m);
    assert.match(r.stdout, /^2 decision\(s\), 0 downgraded, 1 exempt \(decided, never enforced\)$/m);
    const json = await runCli(["check", "--json", "-c", file]);
    const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { subject: string; exempt: boolean });
    assert.deepEqual(lines.map((l) => [l.subject, l.exempt]).sort(), [["erin", false], ["root-breakglass", true]]);
  });

  it("plan, explain and the audit show a communication policy's authorization: oauth2 as it is, not as a secret", async () => {
    const planned = await runCli(["plan", "--subject", "frontend", "--access", "deny", "--json", "-c", "config/vigil.yaml"]);
    assert.equal(planned.code, 0, planned.stderr);
    const body = JSON.parse(planned.stdout).policies[0].actions[0].calls[0].body as { edge: { authorization: string } };
    assert.equal(body.edge.authorization, "oauth2");
    const explained = await runCli(["explain", "frontend", "--json", "-c", "config/vigil.yaml"]);
    assert.equal(JSON.parse(explained.stdout).policies[0].edge.authorization, "oauth2", explained.stderr);
    assert.doesNotMatch(planned.stdout + explained.stdout, /\[REDACTED\]/);
  });

  it("plan --json prints the exact webhook call with the secret masked", async () => {
    const { file } = tempConfig((d) => config(d, "https://hooks.example.org/vigil"));
    const r = await runCli(["plan", "--subject", "frontend", "--access", "deny", "--json", "-c", file]);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    const call = plan.policies[0].actions[0].calls[0];
    assert.equal(call.method, "POST");
    assert.equal(call.url, "https://hooks.example.org/vigil");
    assert.equal(call.headers["X-Vigil-Signature"] ?? call.headers["x-vigil-signature"], "[REDACTED]");
    assert.equal(call.body.access, "deny");
    assert.deepEqual(call.body.action, { name: "notify", type: "webhook" }, "the body names the action, as the agent sends it");
    assert.ok(!r.stdout.includes(SECRET));
  });

  it("explain shows each check and the resulting access", async () => {
    const r = await runCli(["explain", "bob", "-c", "config/vigil.yaml"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /mfa\s+fail/);
    assert.match(r.stdout, /MFA_MISSING/);
    assert.match(r.stdout, /→ risk high → deny/);
  });
});
