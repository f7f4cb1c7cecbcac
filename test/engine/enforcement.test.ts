/**
 * Enforcement that converges: an action the queue gave up on stays unreconciled and is driven again
 * until it is achieved or a later decision supersedes it; reverts undo only what vigil applied and
 * get what the target looked like before. Real agent in process, the `record` plugin as the target.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { calls, failActions, priorFor, requests, writeRecordPlugin } from "../helpers/record-plugin.ts";
import { until } from "../helpers/wait.ts";

interface Setup {
  readonly file: string;
  start(): Promise<Agent>;
}

/** ann and bob, users; `record` actions named `ro` (read_only) and `dn` (deny). */
function setup(enforcement = "", metrics = "false"): Setup {
  const dir = mkdtempSync(join(tmpdir(), "vigil-enf-"));
  const plugin = writeRecordPlugin(dir);
  const file = join(dir, "vigil.yaml");
  writeFileSync(
    file,
    `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "enforcement-token-0123456789"}, metrics: {listen: ${metrics}}}
plugins: [{module: ${plugin}}]
inventories: [{type: static, subjects: [{id: ann, kind: user, attributes: {mfa: true}}, {id: bob, kind: user, attributes: {mfa: true}}]}]
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement:
  read_only: [{type: record, name: ro}]
  deny: [{type: record, name: dn}]
  limits: {max_actions: 1000}
  retry: {attempts: 2, delay: 10ms, max_delay: 20ms}
${enforcement}`,
  );
  return {
    file,
    start: async () => {
      const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
      await agent.start();
      await agent.idle();
      return agent;
    },
  };
}

function reset(): void {
  calls().length = 0;
  requests().length = 0;
  failActions(undefined);
  priorFor(undefined);
}

const ofSubject = (subject: string) => calls().filter((c) => c[1] === subject);

test("an action whose attempts ran out is re-driven, without operator action, once the target recovers", async () => {
  reset();
  // Long enough that the asserts on the first failure run before the first re-drive.
  const agent = await setup("  redrive: {delay: 2s, max_delay: 2s}\n").start();
  try {
    failActions("transient");
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "fail" });
    // Both queue attempts fail: the failure is recorded, and the work stays unreconciled.
    await until(async () => (await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total === 1);
    const { items } = await agent.service.failedEnforcement({ limit: 10, offset: 0 });
    const item = items[0]!;
    assert.equal(item.policy, "identity-perimeter");
    assert.equal(item.subject, "ann");
    assert.equal(item.action, "dn");
    assert.equal(item.action_type, "record");
    assert.equal(item.operation, "apply");
    assert.equal(item.access, "deny");
    assert.equal(item.generation, 2);
    assert.equal(item.status, "failed");
    assert.equal(item.attempts, 2);
    assert.match(item.last_error!, /record target unavailable/);
    assert.match(item.first_failed_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(item.next_retry_at!) > Date.parse(item.first_failed_at), "a re-drive is due after backoff");
    assert.equal((await agent.service.readAudit({ type: "action_failed" })).length, 1, "the failure is recorded as before");
    await agent.idle();
    assert.deepEqual(ofSubject("ann"), [], "nothing reached the target yet");

    failActions(undefined);
    await until(() => ofSubject("ann").length > 0, 10_000);
    assert.deepEqual(ofSubject("ann"), [["apply", "ann", "deny"]]);
    await until(async () => (await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total === 0);
    const redriven = await agent.service.readAudit({ type: "action_redriven" });
    assert.ok(redriven.length >= 1);
    assert.equal(redriven.at(-1)!.by, "schedule");
    // The re-drive carries the same decision, so a receiver de-duplicates on the same key.
    const done = (await agent.service.readAudit({ type: "action", subject: "ann" })).at(-1)!;
    assert.equal(done.idempotency_key, redriven.at(-1)!.idempotency_key);
  } finally {
    await agent.stop();
  }
});

/** The agent's unreconciled gauges, as scraped. */
async function gauges(agent: Agent): Promise<string[]> {
  const { host, port } = agent.metricsAddress!;
  const text = await (await fetch(`http://${host}:${port}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith("vigil_enforcement_unreconciled"));
}

test("failed work is counted in the gauges, and an operator retry re-drives it at once", async () => {
  reset();
  const agent = await setup("  redrive: {delay: 1h, max_delay: 1h}\n", '"127.0.0.1:0"').start();
  try {
    failActions("permanent");
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "fail" });
    await agent.service.acceptSignal({ subject: "bob", check: "mfa", status: "fail" });
    await until(async () => (await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total === 2);
    const { items } = await agent.service.failedEnforcement({ limit: 10, offset: 0 });
    assert.equal(items[0]!.attempts, 1, "a permanent error ends the queue's attempts at once, and still stays on record");
    assert.ok(Date.parse(items[0]!.next_retry_at!) - Date.now() > 20 * 60_000, "the next re-drive waits out the backoff (about an hour here)");
    await agent.idle();
    await until(async () => (await gauges(agent)).includes('vigil_enforcement_unreconciled{policy="identity-perimeter",action="dn"} 2'));
    const oldest = (await gauges(agent)).find((l) => l.startsWith("vigil_enforcement_unreconciled_oldest_seconds "))!;
    assert.ok(Number(oldest.split(" ")[1]) > 0, oldest);

    failActions(undefined);
    const ann = items.find((i) => i.subject === "ann")!;
    const result = await agent.service.retryEnforcement({ ids: [ann.id, "0000"] });
    assert.deepEqual(result, { retried: [ann.id], in_progress: [], not_failed: ["0000"] });
    await until(() => ofSubject("ann").length > 0);
    assert.deepEqual(ofSubject("ann"), [["apply", "ann", "deny"]]);
    assert.deepEqual(ofSubject("bob"), [], "only the named item was retried");
    await until(async () => (await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total === 1);
    assert.equal((await agent.service.readAudit({ type: "action_redriven", subject: "ann" })).at(-1)!.by, "operator");

    await assert.rejects(agent.service.retryEnforcement({ all: true, policy: "nope" }), { code: "VIGIL_ERR_BAD_REQUEST" });
    const all = await agent.service.retryEnforcement({ all: true, policy: "identity-perimeter" });
    assert.equal(all.retried.length, 1);
    await until(() => ofSubject("bob").length > 0);
    await until(async () => (await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total === 0);
    await until(async () => (await gauges(agent)).includes('vigil_enforcement_unreconciled{policy="identity-perimeter",action="dn"} 0'));
    assert.ok((await gauges(agent)).includes("vigil_enforcement_unreconciled_oldest_seconds 0"));
  } finally {
    await agent.stop();
  }
});

test("a later decision supersedes failed work: it is no longer listed or re-driven, and the restore is sent", async () => {
  reset();
  const agent = await setup("  redrive: {delay: 1h, max_delay: 1h}\n").start();
  try {
    failActions("transient");
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "fail" });
    await until(async () => (await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total === 1);
    failActions(undefined);
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "pass" });
    await until(async () => (await agent.service.getSubject("ann"))!.access === "full_access");
    await agent.idle();
    assert.equal((await agent.service.failedEnforcement({ limit: 10, offset: 0 })).total, 0, "the deny it failed to apply is no longer wanted");
    // Its attempts may have reached the target, so the restore is sent; the deny is never sent again.
    await until(() => ofSubject("ann").length > 0);
    // A retry of everything re-drives whatever is still unreconciled, at once: nothing is.
    assert.deepEqual(await agent.service.retryEnforcement({ all: true }), { retried: [], in_progress: [], not_failed: [] });
    await agent.idle();
    assert.deepEqual(ofSubject("ann"), [["revert", "ann", "full_access"]]);
    assert.equal((await agent.service.readAudit({ type: "action_redriven" })).length, 0);
  } finally {
    await agent.stop();
  }
});

test("deny → full_access reverts only the levels vigil applied: a skipped read_only gets no revert", async () => {
  reset();
  const agent = await setup().start();
  try {
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "fail" });
    await until(() => ofSubject("ann").length === 1);
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "pass" });
    await until(async () => (await agent.service.getSubject("ann"))!.access === "full_access");
    await agent.idle();
    assert.deepEqual(
      requests().filter((r) => r.subject === "ann").map((r) => `${r.op} ${r.action?.name}`),
      ["apply dn", "revert dn"],
      "full_access → deny skipped read_only, so its action was never applied and is not reverted",
    );
    // Through read_only on the way down, both are applied and both reverted.
    await agent.service.acceptSignal({ subject: "bob", check: "mfa", status: "warn" });
    await until(async () => (await agent.service.getSubject("bob"))!.access === "read_only");
    await agent.service.acceptSignal({ subject: "bob", check: "mfa", status: "fail" });
    await until(async () => (await agent.service.getSubject("bob"))!.access === "deny");
    await agent.idle();
    await agent.service.acceptSignal({ subject: "bob", check: "mfa", status: "pass" });
    await until(async () => (await agent.service.getSubject("bob"))!.access === "full_access");
    await agent.idle();
    assert.deepEqual(requests().filter((r) => r.subject === "bob").map((r) => `${r.op} ${r.action?.name}`).sort(), ["apply dn", "apply ro", "revert dn", "revert ro"]);
  } finally {
    await agent.stop();
  }
});

test("the prior an apply returns is kept with the enforcement record, across a restart, and given to its revert", async () => {
  reset();
  const s = setup();
  priorFor((subject) => ({ was: `${subject}-before-vigil` }));
  let agent = await s.start();
  try {
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "fail" });
    await until(() => ofSubject("ann").length === 1);
    await agent.idle();
    const applied = (await agent.service.readAudit({ type: "action", subject: "ann" })).at(-1)!;
    assert.deepEqual(applied.prior, { was: "ann-before-vigil" }, "the audit entry records it too");
  } finally {
    await agent.stop();
  }
  priorFor(undefined);
  agent = await s.start();
  try {
    await agent.service.acceptSignal({ subject: "ann", check: "mfa", status: "pass" });
    await until(() => ofSubject("ann").length === 2);
    const revert = requests().filter((r) => r.subject === "ann" && r.op === "revert");
    assert.deepEqual(revert.map((r) => r.prior), [{ was: "ann-before-vigil" }]);
    assert.deepEqual(revert[0]!.action, { name: "dn", type: "record" }, "the engine names the action carrying the request");
  } finally {
    await agent.stop();
  }
});
