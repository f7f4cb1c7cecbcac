/**
 * The counters an evaluation pass adds, through a real agent: check results by check and status, and
 * decision changes by access level, each equal to what was evaluated and decided, over several
 * batches (an evaluation adds its batch's tally once per status and access level).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { silentLogger } from "../../src/telemetry/log.ts";

const N = 250;

function series(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, "gm"))) out.set(m[1]!, Number(m[2]));
  return out;
}

test("a pass over several batches counts every check result and decision change once", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-pass-metrics-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Every third user has no MFA (fail, denied); the others pass.
  const users = Array.from({ length: N }, (_, i) => ({ id: `u${i}`, kind: "user", attributes: { mfa: i % 3 !== 0 } }));
  writeFileSync(join(dir, "users.json"), JSON.stringify(users));
  writeFileSync(
    join(dir, "vigil.yaml"),
    `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "pass-metrics-token-0123456789"}, metrics: {listen: "127.0.0.1:0"}}
inventories: [{type: file, path: users.json}]
identity_perimeter: {require_mfa: true, require_location_check: false, require_managed_device: false, continuous_verification: {interval: 1h}}
`,
  );
  const agent = new Agent(await loadConfig(join(dir, "vigil.yaml")), { logger: silentLogger() });
  t.after(() => agent.stop());
  await agent.start();
  await agent.idle();
  const { host, port } = agent.metricsAddress!;
  const text = await (await fetch(`http://${host}:${port}/metrics`)).text();
  const failing = users.filter((u) => !u.attributes.mfa).length;
  assert.equal(series(text, "vigil_check_results_total").get('check="mfa",status="pass"'), N - failing);
  assert.equal(series(text, "vigil_check_results_total").get('check="mfa",status="fail"'), failing);
  const changes = series(text, "vigil_decision_changes_total");
  assert.equal(changes.get('policy="identity-perimeter",access="full_access"'), N - failing);
  assert.equal(changes.get('policy="identity-perimeter",access="deny"'), failing);
  assert.equal([...series(text, "vigil_evaluations_total").values()].reduce((a, b) => a + b, 0), N);
});
