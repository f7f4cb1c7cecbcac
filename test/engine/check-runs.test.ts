/**
 * How a job's subjects reach a check: jobs carry up to MAX_BATCH subjects, and a check's `run` is
 * given at most CHECK_RUN_MAX of them at a time, the parts of one job one after the other, each
 * failing on its own.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { CHECK_RUN_MAX } from "../../src/engine/evaluator.ts";
import { MAX_BATCH } from "../../src/engine/scheduler.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { sizedRuns, sizedThrowsFor, writeRecordPlugin } from "../helpers/record-plugin.ts";

/** One job's worth of users and a quarter of a job more: the first job holds more than one check run. */
const N = MAX_BATCH + MAX_BATCH / 4;

async function startAgent(t: TestContext): Promise<Agent> {
  const dir = mkdtempSync(join(tmpdir(), "vigil-check-runs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = writeRecordPlugin(dir);
  writeFileSync(join(dir, "users.json"), JSON.stringify(Array.from({ length: N }, (_, i) => ({ id: `u${i}`, kind: "user" }))));
  writeFileSync(
    join(dir, "vigil.yaml"),
    `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "check-runs-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${plugin}}]
inventories: [{type: file, path: users.json}]
identity_perimeter:
  require_mfa: false
  require_managed_device: false
  require_location_check: false
  continuous_verification: {interval: 1h, checks: [sized]}
`,
  );
  const agent = new Agent(await loadConfig(join(dir, "vigil.yaml")), { logger: silentLogger() });
  t.after(() => agent.stop());
  await agent.start();
  await agent.idle();
  return agent;
}

test("a check runs on at most CHECK_RUN_MAX subjects at a time, a job's parts one after another", async (t) => {
  assert.ok(MAX_BATCH > CHECK_RUN_MAX, "jobs larger than a check run (else there is nothing to split)");
  sizedRuns().length = 0;
  sizedThrowsFor(undefined);
  await startAgent(t);
  const runs = sizedRuns();
  assert.equal(runs.reduce((n, r) => n + r.size, 0), N, "every subject once");
  assert.ok(runs.every((r) => r.size <= CHECK_RUN_MAX), JSON.stringify(runs));
  // Two jobs (MAX_BATCH and a quarter of it): the first in parts of CHECK_RUN_MAX.
  assert.equal(runs.length, Math.ceil(MAX_BATCH / CHECK_RUN_MAX) + 1, JSON.stringify(runs));
  // With each job's parts in turn, no more runs are in flight than there are jobs.
  assert.ok(runs.every((r) => r.inFlight <= 2), JSON.stringify(runs));
});

test("a failing part of a job leaves its own subjects unknown and the other parts' results stand", async (t) => {
  sizedRuns().length = 0;
  sizedThrowsFor("u0");
  t.after(() => sizedThrowsFor(undefined));
  const agent = await startAgent(t);
  const failed = (await agent.service.getSubject("u1"))!;
  const passed = (await agent.service.getSubject(`u${CHECK_RUN_MAX + 1}`))!;
  const sized = (d: typeof failed) => (d.decisions[0]!.evidence as { checks: Record<string, { status: string }> }).checks["sized"]?.status;
  assert.equal(sized(failed), "unknown", JSON.stringify(failed.decisions[0]));
  assert.match(failed.decisions[0]!.reasons.map((r) => r.message).join("; "), /check failed: source down/);
  assert.equal(sized(passed), "pass", JSON.stringify(passed.decisions[0]));
  assert.equal(passed.access, "full_access");
  assert.deepEqual(passed.results.filter((r) => r.check === "sized").map((r) => r.status), ["pass"]);
});
