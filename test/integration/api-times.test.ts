/**
 * One timestamp format on every route: each instant a body of the real agent's API carries is ISO
 * 8601 UTC, decisions, check results (next_run_at included), their evidence, audit entries,
 * enforcement status and failed enforcement alike.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { AgentProcess, ROOT, TOKEN, tempConfig } from "../helpers/agent-process.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
let agent: AgentProcess;

before(async () => {
  const { dir, file } = tempConfig((d) => `
agent: {data_dir: ${join(d, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: false}, audit: {key: "${"k".repeat(40)}"}}
inventories: [{type: static, subjects: [{id: frontend, kind: workload, identity: "spiffe://example.org/ns/web/sa/frontend"}]}]
checks:
  certificate_validity: {trust_bundle: pki/root.pem, source: {type: file, paths: ["pki/{{id}}.pem"]}, purpose: client, revocation: {mode: crl, crl_files: [pki/root.crl]}}
  anomaly_detection: {on_unknown: ignore}
communication_policies:
  - {source: frontend, destination: api, port: 443, continuous_verification: {interval: 1h, checks: [certificate_validity, anomaly_detection]}}
enforcement:
  limits: {max_actions: 1, window: 1h, auto_resume: false}
  read_only: [{type: log}]
  deny: [{type: log}]
`);
  const pki = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts"), join(dir, "pki")], { encoding: "utf8" });
  assert.equal(pki.status, 0, pki.stderr);
  agent = await AgentProcess.start(file);
  await agent.idle();
  await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail", reason: "x" });
  await agent.idle();
});

after(async () => {
  assert.equal(await agent.stop(), 0);
});

/** Every `*_at` and `ts` value in a body, with its path. */
function instants(value: unknown, path = "$", out: [string, unknown][] = []): [string, unknown][] {
  if (Array.isArray(value)) value.forEach((v, i) => instants(v, `${path}[${i}]`, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if ((k.endsWith("_at") || k === "ts") && (typeof v !== "object" || v === null)) out.push([`${path}.${k}`, v]);
      else instants(v, `${path}.${k}`, out);
    }
  }
  return out;
}

test("every instant on every route is ISO 8601 UTC", async () => {
  const seen = new Set<string>();
  for (const [method, path] of [
    ["GET", "/v1/subjects"],
    ["GET", "/v1/subjects/frontend"],
    ["POST", "/v1/evaluate/frontend"],
    ["GET", "/v1/audit?limit=1000"],
    ["GET", "/v1/enforcement"],
    ["GET", "/v1/enforcement/failed"],
    ["GET", "/v1/status"],
  ] as const) {
    const res = await agent.request(method, path);
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.json)}`);
    for (const [where, v] of instants(res.json)) {
      if (v === null) continue;
      assert.match(String(v), ISO, `${method} ${path} ${where} = ${JSON.stringify(v)}`);
      seen.add(where.replace(/\[\d+\]/g, "[]").replace(/\.checks\.[a-z_]+\./, ".checks.*."));
    }
  }
  // The fields the model keeps as epoch milliseconds are among those checked.
  for (const f of ["$.decisions[].decided_at", "$.results[].observed_at", "$.results[].expires_at", "$.results[].next_run_at", "$.decisions[].evidence.checks.*.observed_at", "$.entries[].ts", "$.policies[].paused_at"]) {
    assert.ok(seen.has(f), `${f} was checked; seen: ${[...seen].join(", ")}`);
  }
});
