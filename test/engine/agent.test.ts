import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { calls as recordedCalls, holdActions, writeRecordPlugin } from "../helpers/record-plugin.ts";
import { VIGIL_VERSION } from "../../src/util/version.ts";
import { until } from "../helpers/wait.ts";

const calls = recordedCalls();

async function startAgent(subjects: string, extra = "") {
  const dir = mkdtempSync(join(tmpdir(), "vigil-agent-"));
  const plugin = writeRecordPlugin(dir);
  const file = join(dir, "vigil.yaml");
  writeFileSync(
    file,
    `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "agent-test-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${plugin}}]
inventories: [{type: static, subjects: [${subjects}]}]
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement:
  deny: [{type: record}]
  limits: {max_actions: 5, window: 1h, auto_resume: false}
${extra}`,
  );
  const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  return agent;
}

test("mass breakage: the blast-radius guard pauses after max_actions, records it, and an operator resume sends the rest", async () => {
  calls.length = 0;
  const users = Array.from({ length: 30 }, (_, i) => `{id: u${i}, kind: user, attributes: {mfa: false}}`).join(", ");
  const agent = await startAgent(users);
  try {
    await agent.idle();
    assert.equal(calls.length, 5, "exactly max_actions actions went out");
    const status = agent.service.enforcement().find((s) => s.policy === "identity-perimeter")!;
    assert.equal(status.paused, true);
    const paused = await agent.service.readAudit({ type: "enforcement_paused" });
    assert.equal(paused.length, 1, "the pause is recorded once");
    const listed = await agent.service.listSubjects({ access: "deny", limit: 100, offset: 0 });
    assert.equal(listed.total, 30, "decisions are made even while enforcement waits");
    const overview = await agent.service.status();
    assert.deepEqual(overview.paused, ["identity-perimeter"], "status names the paused policy");
    assert.deepEqual(overview.policies, [{ name: "identity-perimeter", subjects: { total: 30, full_access: 0, read_only: 0, deny: 30, pending: 0 }, paused: true }]);
    assert.deepEqual(overview.subjects, { total: 30, full_access: 0, read_only: 0, deny: 30, pending: 0 });
    const { resumed } = await agent.service.resumeEnforcement("identity-perimeter");
    assert.deepEqual(resumed, ["identity-perimeter"]);
    await until(() => calls.length >= 30);
    assert.equal(new Set(calls.map((c) => c[1])).size, 30, "every subject enforced once");
    assert.ok(calls.every((c) => c[0] === "apply" && c[2] === "deny"));
  } finally {
    await agent.stop();
  }
});

test("break-glass: an exempt subject is decided and recorded but never enforced on", async () => {
  calls.length = 0;
  const agent = await startAgent("{id: root, kind: user, attributes: {mfa: false}, labels: {breakglass: 'yes'}}, {id: eve, kind: user, attributes: {mfa: false}}", "exempt: [{labels: {breakglass: 'yes'}}]");
  try {
    await agent.idle();
    assert.deepEqual(calls.map((c) => c[1]), ["eve"]);
    const root = await agent.service.getSubject("root");
    assert.equal(root!.access, "deny");
    assert.equal(root!.decisions[0]!.exempt, true);
    const skipped = await agent.service.readAudit({ type: "enforcement_skipped", subject: "root" });
    assert.equal(skipped.length, 1);
  } finally {
    await agent.stop();
  }
});

test("a restored subject gets its deny actions reverted; signals for unverified checks or unknown subjects are refused", async () => {
  calls.length = 0;
  const agent = await startAgent("{id: fay, kind: user, attributes: {mfa: true}}", "checks: {user_risk_score: {on_unknown: ignore}}\n");
  try {
    // No policy here verifies user_risk_score: the signal is refused with a reason naming the checks.
    await assert.rejects(agent.service.acceptSignal({ subject: "fay", check: "user_risk_score", status: "fail" }), /not verified by any policy/);
    await assert.rejects(agent.service.acceptSignal({ subject: "nobody", check: "mfa", status: "fail" }), (e: { code?: string }) => e.code === "VIGIL_ERR_UNKNOWN_SUBJECT");
    await agent.service.acceptSignal({ subject: "fay", check: "mfa", status: "fail", reason: "token replay" });
    await until(() => calls.length >= 1);
    assert.deepEqual(calls[0], ["apply", "fay", "deny"]);
    await agent.service.acceptSignal({ subject: "fay", check: "mfa", status: "pass" });
    await until(async () => (await agent.service.getSubject("fay"))!.access === "full_access");
    // The pushed pass and the pulled pass agree; the deny is reverted.
    await until(() => calls.length >= 2);
    assert.deepEqual(calls[1], ["revert", "fay", "full_access"]);
  } finally {
    await agent.stop();
  }
});

test("dry-run records the exact plan in the audit log and calls nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-dry-"));
  const file = join(dir, "vigil.yaml");
  writeFileSync(
    file,
    `agent: {data_dir: ${join(dir, "var")}, dry_run: true, api: {listen: "127.0.0.1:0", token: "agent-test-token-0123456789"}, metrics: {listen: false}}
plugins: [{module: ${writeRecordPlugin(dir)}}]
inventories: [{type: static, subjects: [{id: hal, kind: user, attributes: {mfa: false}}]}]
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement: {deny: [{type: record, name: rec}]}
`,
  );
  calls.length = 0;
  const dry = new Agent(await loadConfig(file), { logger: silentLogger() });
  await dry.start();
  try {
    await until(async () => (await dry.service.readAudit({ type: "action_planned" })).length > 0);
    await dry.idle();
    const [planned] = await dry.service.readAudit({ type: "action_planned" });
    assert.equal(planned!.subject, "hal");
    assert.equal(planned!.action, "rec");
    assert.deepEqual(planned!.plan, [{ method: "RECORD", url: "record:", headers: {}, body: { subject: "hal", op: "apply" } }]);
    assert.equal(calls.filter((c) => c[1] === "hal").length, 0, "nothing was sent");
    assert.equal((await dry.service.readAudit({ type: "action" })).length, 0);
  } finally {
    await dry.stop();
  }
});

test("status: busy while the work a signal set off runs, idle once it is done; idle() waits for exactly that", async () => {
  calls.length = 0;
  const agent = await startAgent("{id: gil, kind: user, attributes: {mfa: true}}");
  const release = holdActions();
  try {
    await agent.idle();
    assert.deepEqual(await agent.service.status(), {
      ready: true,
      reasons: [],
      version: VIGIL_VERSION,
      mode: "embedded",
      dry_run: false,
      policies: [{ name: "identity-perimeter", subjects: { total: 1, full_access: 1, read_only: 0, deny: 0, pending: 0 }, paused: false }],
      subjects: { total: 1, full_access: 1, read_only: 0, deny: 0, pending: 0 },
      paused: [],
      unreconciled: { total: 0, oldest_failed_at: null },
      queue: { waiting: 0, delayed: 0, active: 0, failed: 0 },
      idle: true,
    });
    await agent.service.acceptSignal({ subject: "gil", check: "mfa", status: "fail" });
    await until(async () => (await agent.service.status()).queue.active === 1 && calls.length === 0);
    const busy = await agent.service.status();
    assert.equal(busy.idle, false, JSON.stringify(busy));
    await assert.rejects(agent.idle({ timeoutMs: 50 }), (err: Error) => err.name === "TimeoutError");
    release();
    await agent.idle();
    assert.deepEqual(calls, [["apply", "gil", "deny"]]);
    const done = await agent.service.status();
    assert.equal(done.idle, true);
    assert.deepEqual(done.queue, { waiting: 0, delayed: 0, active: 0, failed: 0 });
  } finally {
    release();
    await agent.stop();
  }
  await assert.rejects(new Agent(agent.config, { logger: silentLogger() }).idle(), { code: "VIGIL_ERR_SHUTDOWN" }, "an agent never started has nothing to wait for");
});
