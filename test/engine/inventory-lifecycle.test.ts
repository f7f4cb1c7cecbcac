import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { AgentService } from "../../src/engine/service.ts";
import { Runtime } from "../../src/engine/runtime.ts";
import { SubjectIndex } from "../../src/engine/subjects.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { cliContext } from "../../src/cli/common.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { systemClock } from "../../src/util/clock.ts";
import { calls, listings, writeRecordPlugin } from "../helpers/record-plugin.ts";
import { runCli } from "../helpers/agent-process.ts";
import { until } from "../helpers/wait.ts";

const TOKEN = "inventory-token-0123456789";

function setup(t: TestContext, policy = "", extra = ""): { dir: string; subjects: string; write: (inventoryPath?: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), "vigil-inv-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = writeRecordPlugin(dir);
  const file = join(dir, "vigil.yaml");
  const subjects = join(dir, "subjects.yaml");
  return {
    dir,
    subjects,
    write: (inventoryPath = subjects) => {
      writeFileSync(
        file,
        `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: "127.0.0.1:0"}, audit: {key: "${"k".repeat(40)}"}}
plugins: [{module: ${plugin}}]
inventories: [{type: file, path: ${inventoryPath}}]
checks: {anomaly_detection: {on_unknown: ignore}}
communication_policies:
  - {name: w1-to-w2, source: w1, destination: w2, port: 443, continuous_verification: {interval: ${policy || "1h"}, checks: [anomaly_detection]}}
${extra}`,
      );
      return file;
    },
  };
}

const list = (...ids: string[]) => ids.map((id) => `- {id: ${id}, kind: workload}`).join("\n") + "\n";

async function scrape(agent: Agent): Promise<string> {
  const a = agent.metricsAddress!;
  return (await fetch(`http://${a.host}:${a.port}/metrics`)).text();
}

test("an inventory that has not loaded keeps /readyz not ready until it does, then its subjects are evaluated", async (t) => {
  const { write, subjects } = setup(t);
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    const r = agent.service.ready();
    assert.equal(r.ready, false);
    assert.deepEqual(r.reasons, ["inventory 0:file has not loaded yet"]);
    assert.match(await scrape(agent), /^vigil_inventory_stale\{inventory="0:file"\} 1$/m);
    writeFileSync(subjects, list("w1", "w2"));
    await until(() => agent.service.ready().ready, 15_000);
    await until(async () => ((await agent.service.getSubject("w1"))?.decisions.length ?? 0) > 0);
  } finally {
    await agent.stop();
  }
});

test("start and reload list each inventory once, not once more for every policy's pass", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-inv-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "vigil.yaml");
  writeFileSync(
    file,
    `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: "127.0.0.1:0"}, audit: {key: "${"k".repeat(40)}"}}
plugins: [{module: ${writeRecordPlugin(dir)}}]
inventories: [{type: counted}]
checks: {anomaly_detection: {on_unknown: ignore}}
communication_policies:
  - {name: w1-to-w2, source: w1, destination: w2, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
  - {name: w2-to-w1, source: w2, destination: w1, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
  - {name: w1-to-w1, source: w1, destination: w1, port: 8443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
`,
  );
  const before = listings();
  const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  try {
    await agent.idle();
    assert.equal(listings() - before, 1, "one listing for the start and its pass over three policies");
    const { subjects } = await agent.service.listSubjects({ limit: 10, offset: 0 });
    assert.deepEqual(subjects.map((s) => s.id), ["w1", "w2"]);
    assert.ok(subjects.every((s) => s.policies.length > 0), `the pass evaluated the listed subjects: ${JSON.stringify(subjects)}`);
    await agent.reload(await loadConfig(file));
    await agent.idle();
    assert.equal(listings() - before, 2, "one more for the reload and its pass");
  } finally {
    await agent.stop();
  }
});

test("a reload whose inventory cannot be read is refused and the subjects stay", async (t) => {
  const { write, subjects, dir } = setup(t);
  writeFileSync(subjects, list("w1", "w2", "w3"));
  const file = write();
  const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  try {
    write(join(dir, "missing.yaml"));
    await assert.rejects(agent.reload(await loadConfig(file)), (err: { code?: string; message?: string }) => err.code === "VIGIL_ERR_INVENTORY" && /missing\.yaml/.test(err.message ?? ""));
    assert.equal((await agent.service.listSubjects({ limit: 10, offset: 0 })).total, 3);
    assert.match(agent.config.raw.inventories[0]?.["path"] as string, /subjects\.yaml$/, "the running config stays");
  } finally {
    await agent.stop();
  }
});

test("a flaky inventory keeps its last good list, counts each failure and audits it once", async (t) => {
  const { write, subjects } = setup(t, '"* * * * * *"');
  writeFileSync(subjects, list("w1", "w2"));
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    rmSync(subjects);
    // Each tick (every second) lists the inventory again and fails.
    await until(async () => /^vigil_inventory_errors_total\{inventory="0:file"\} ([3-9]|\d\d+)$/m.test(await scrape(agent)), 15_000);
    assert.equal((await agent.service.listSubjects({ limit: 10, offset: 0 })).total, 2, "no subject vanished");
    const failed = await agent.service.readAudit({ type: "inventory_failed" });
    assert.equal(failed.length, 1, "one audit entry for the outage, not one per tick");
    assert.equal(failed[0]?.["kept_subjects"], 2);
    assert.match(await scrape(agent), /^vigil_inventory_stale\{inventory="0:file"\} 1$/m);
    writeFileSync(subjects, list("w1", "w2"));
    await until(async () => (await agent.service.readAudit({ type: "inventory_recovered" })).length === 1, 15_000);
  } finally {
    await agent.stop();
  }
});

test("a subject that leaves every inventory is audited, restored through the enforcer and pruned", async (t) => {
  calls().length = 0;
  const { write, subjects } = setup(t, '"* * * * * *"', "enforcement: {deny: [{type: record}], removed_subjects: restore}\n");
  writeFileSync(subjects, list("w1", "w2"));
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    await agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: "fail", risk: "high" });
    await agent.idle();
    assert.deepEqual(calls(), [["apply", "w1", "deny"]]);
    await until(async () => /^vigil_subjects\{policy="w1-to-w2",access="deny"\} 1$/m.test(await scrape(agent)), 15_000);
    writeFileSync(subjects, list("w2"));
    await until(async () => (await agent.service.readAudit({ type: "subject_removed" })).length === 1, 15_000);
    const [removed] = await agent.service.readAudit({ type: "subject_removed" });
    assert.equal(removed?.["subject"], "w1");
    assert.deepEqual(removed?.["policies"], [{ policy: "w1-to-w2", access: "deny", enforced_access: "deny" }]);
    await agent.idle();
    assert.deepEqual(calls(), [["apply", "w1", "deny"], ["revert", "w1", "full_access"]], "the revert ran like any restore");
    const body = await scrape(agent);
    assert.match(body, /^vigil_subjects\{policy="w1-to-w2",access="deny"\} 0$/m);
    assert.doesNotMatch(body, /^vigil_subjects\{policy="w1-to-w2",access="full_access"\} [1-9]/m, "the removed subject is not counted anywhere");
  } finally {
    await agent.stop();
  }
});

test("a covered subject no policy has evaluated yet shows pending and counts as default_security_rule", async (t) => {
  const { write, subjects } = setup(t);
  writeFileSync(subjects, list("w1", "w2"));
  const config = await loadConfig(write());
  const ctx = cliContext(config);
  const runtime = new Runtime(config, ctx);
  const index = new SubjectIndex(runtime.inventories, silentLogger());
  await index.refresh();
  const service = new AgentService({
    clock: systemClock,
    mode: "embedded",
    parts: () => ({ index, store: new MemoryStore(), runtime, evaluator: undefined as never, enforcer: undefined as never, queue: undefined as never }),
    lifecycle: () => ({ started: true, stopping: false, ready: true, caughtUp: true }),
  });
  try {
    const { subjects: listed } = await service.listSubjects({ limit: 10, offset: 0 });
    const w1 = listed.find((s) => s.id === "w1");
    assert.equal(w1?.access, "deny", "never evaluated is not full access under deny_all");
    assert.equal(w1?.status, "pending");
    assert.deepEqual(w1?.pending, ["w1-to-w2"]);
    const detail = await service.getSubject("w1");
    assert.equal(detail?.access, "deny");
    assert.equal(detail?.status, "pending");
  } finally {
    await runtime.stop();
    await ctx.http.close();
  }
});

test("vigil check fails when an inventory cannot be read or lists no subject", async (t) => {
  const { write, subjects } = setup(t);
  const file = write();
  const missing = await runCli(["check", "-c", file]);
  assert.equal(missing.code, 1, missing.stdout);
  assert.match(missing.stderr, /inventory 0:file failed/);
  writeFileSync(subjects, "[]\n");
  const empty = await runCli(["check", "-c", file]);
  assert.equal(empty.code, 1, empty.stdout);
  assert.match(empty.stderr, /inventory 0:file lists no subject/);
});

test("with removed_subjects: keep a removed subject is audited and pruned, and its access left as enforced", async (t) => {
  calls().length = 0;
  const { write, subjects } = setup(t, '"* * * * * *"', "enforcement: {deny: [{type: record}]}\n");
  writeFileSync(subjects, list("w1", "w2"));
  const agent = new Agent(await loadConfig(write()), { logger: silentLogger() });
  await agent.start();
  try {
    await agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: "fail", risk: "high" });
    await agent.idle();
    await until(async () => /^vigil_subjects\{policy="w1-to-w2",access="deny"\} 1$/m.test(await scrape(agent)), 15_000);
    writeFileSync(subjects, list("w2"));
    await until(async () => (await agent.service.readAudit({ type: "subject_removed" })).length === 1, 15_000);
    const [removed] = await agent.service.readAudit({ type: "subject_removed" });
    assert.equal(removed?.["removed_subjects"], "keep");
    await agent.idle();
    assert.deepEqual(calls(), [["apply", "w1", "deny"]], "nothing reverted");
    await until(async () => /^vigil_subjects\{policy="w1-to-w2",access="deny"\} 0$/m.test(await scrape(agent)));
    // Back in the inventory later, it starts over as a new subject (pending until evaluated).
    assert.equal(await agent.service.getSubject("w1"), undefined);
  } finally {
    await agent.stop();
  }
});
