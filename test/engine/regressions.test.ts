import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { calls, setFlaky, writeRecordPlugin } from "../helpers/record-plugin.ts";
import { until } from "../helpers/wait.ts";
import { isSecretKey, registerSecret, scrub } from "../../src/util/redact.ts";

function setup(body: (dir: string, plugin: string) => string): { dir: string; write: (extra?: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), "vigil-reg-"));
  const plugin = writeRecordPlugin(dir);
  const file = join(dir, "vigil.yaml");
  return {
    dir,
    write: (extra = "") => {
      writeFileSync(file, body(dir, plugin) + extra);
      return file;
    },
  };
}

const head = (dir: string, plugin: string) => `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "regression-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${plugin}}]
inventories: [{type: static, subjects: [{id: w1, kind: workload}, {id: w2, kind: workload}]}]
`;

test("hold keeps the last known result through a failed check run instead of denying at once", async () => {
  calls().length = 0;
  setFlaky("pass");
  const { write } = setup((d, p) => head(d, p) + `communication_policies:
  - {source: w1, destination: w2, port: 443, continuous_verification: {interval: 1h, checks: [flaky]}}
checks: {flaky: {ttl: 1ms}}
decision: {on_unknown: hold, hold_grace: 10m}
enforcement: {deny: [{type: record}]}
`);
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    await until(async () => (await agent.service.getSubject("w1"))!.decisions.length > 0);
    setFlaky("throw");
    const [d] = (await agent.service.evaluate("w1"))!;
    assert.equal(d!.access, "full_access", JSON.stringify(d!.reasons));
    assert.ok(d!.reasons.some((r) => r.code === "CHECK_HELD"));
    assert.equal(calls().length, 0);
  } finally {
    await agent.stop();
  }
});

test("a resolved alert for one stream does not clear another stream still failing", async () => {
  const { write } = setup((d, p) => head(d, p) + `checks: {anomaly_detection: {on_unknown: ignore}}
communication_policies:
  - {source: w1, destination: w2, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
`);
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    await agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: "fail", stream: "alertmanager:exfil", source: "alertmanager" });
    await agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: "pass", stream: "alertmanager:latency", source: "alertmanager" });
    await agent.idle();
    const detail = (await agent.service.getSubject("w1"))!;
    assert.equal(detail.access, "deny", "the pass on another stream does not clear the failing one");
    assert.deepEqual(detail.results.map((r) => [r.stream, r.status]).sort(), [["alertmanager:exfil", "fail"], ["alertmanager:latency", "pass"]]);
    await agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: "pass", stream: "alertmanager:exfil", source: "alertmanager" });
    await until(async () => (await agent.service.getSubject("w1"))!.access === "full_access");
  } finally {
    await agent.stop();
  }
});

test("decisions planned in dry-run are carried out once dry-run is switched off (restart)", async () => {
  calls().length = 0;
  const cfg = (dry: boolean) => (d: string, p: string) =>
    `agent: {data_dir: ${join(d, "var")}, dry_run: ${dry}, api: {listen: "127.0.0.1:0", token: "regression-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${p}}]
inventories: [{type: static, subjects: [{id: ann, kind: user, attributes: {mfa: false}}]}]
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement: {deny: [{type: record}]}
`;
  const dry = setup(cfg(true));
  const file = dry.write();
  let agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  await until(async () => (await agent.service.readAudit({ type: "action_planned" })).length > 0);
  await agent.idle();
  await agent.stop();
  assert.equal(calls().filter((c) => c[1] === "ann").length, 0);
  writeFileSync(file, cfg(false)(dry.dir, join(dry.dir, "record-plugin.mjs")));
  agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  try {
    await until(() => calls().some((c) => c[1] === "ann"));
    assert.deepEqual(calls().filter((c) => c[1] === "ann"), [["apply", "ann", "deny"]]);
  } finally {
    await agent.stop();
  }
});

test("lifting a break-glass exemption enforces the access already decided (reload)", async () => {
  calls().length = 0;
  const cfg = (exempt: boolean) => (d: string, p: string) =>
    `agent: {data_dir: ${join(d, "var")}, api: {listen: "127.0.0.1:0", token: "regression-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${p}}]
inventories: [{type: static, subjects: [{id: bea, kind: user, attributes: {mfa: false}}]}]
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement: {deny: [{type: record}]}
${exempt ? "exempt: [{id: bea}]" : ""}
`;
  const s = setup(cfg(true));
  const file = s.write();
  const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  try {
    await until(async () => (await agent.service.getSubject("bea"))!.decisions.length > 0);
    assert.equal((await agent.service.getSubject("bea"))!.access, "deny");
    await agent.idle();
    assert.equal(calls().filter((c) => c[1] === "bea").length, 0);
    writeFileSync(file, cfg(false)(s.dir, join(s.dir, "record-plugin.mjs")));
    await agent.reload(await loadConfig(file));
    await until(() => calls().some((c) => c[1] === "bea"));
    assert.deepEqual(calls().filter((c) => c[1] === "bea"), [["apply", "bea", "deny"]]);
  } finally {
    await agent.stop();
  }
});

test("a burst of alternating signals ends with enforcement matching the decision", async () => {
  calls().length = 0;
  const { write } = setup((d, p) => head(d, p) + `checks: {anomaly_detection: {on_unknown: ignore}}
communication_policies:
  - {source: w1, destination: w2, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
enforcement: {deny: [{type: record}], limits: {max_actions: 1000}}
`);
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: i % 2 ? "pass" : "fail", ttl_ms: 3_600_000 })),
    );
    await Promise.all([agent.service.evaluate("w1"), agent.service.evaluate("w1"), agent.service.evaluate("w1")]);
    // Once every evaluation and action job has run, compare what the target saw with what vigil decided.
    await agent.idle();
    const net = calls().filter((c) => c[1] === "w1").reduce((denied, c) => (c[0] === "apply" ? true : c[0] === "revert" ? false : denied), false);
    const access = (await agent.service.getSubject("w1"))!.access;
    assert.equal(net ? "deny" : "full_access", access, JSON.stringify(calls()));
  } finally {
    await agent.stop();
  }
});

test("secrets are masked in JSON-escaped form and under camelCase or *_key names", () => {
  registerSecret('pa"ss\\word-123');
  assert.ok(!scrub(JSON.stringify({ msg: 'login with pa"ss\\word-123' })).includes("word-123"));
  for (const k of ["accessToken", "secret_access_key", "hmac_key", "passphrase", "clientSecret", "Authorization", "x-api-key"]) assert.ok(isSecretKey(k), k);
  for (const k of ["idempotency_key", "subject", "policy", "token_file", "keyUsage"]) assert.ok(!isSecretKey(k), k);
});

test("a blast-radius pause survives a restart: a crash loop does not reset the budget", async () => {
  calls().length = 0;
  const users = Array.from({ length: 6 }, (_, i) => `{id: r${i}, kind: user, attributes: {mfa: false}}`).join(", ");
  const { write } = setup(
    (d, p) => `agent: {data_dir: ${join(d, "var")}, api: {listen: "127.0.0.1:0", token: "regression-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${p}}]
inventories: [{type: static, subjects: [${users}]}]
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement: {deny: [{type: record}], limits: {max_actions: 2, window: 1h, auto_resume: false}}
`,
  );
  const file = write();
  for (let run = 0; run < 3; run++) {
    const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
    await agent.start();
    await agent.idle();
    assert.equal(agent.service.enforcement()[0]!.paused, true, `run ${run}`);
    await agent.stop();
  }
  assert.equal(calls().length, 2, "three starts, still only max_actions sent");
});
