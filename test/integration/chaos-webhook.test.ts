/**
 * Chaos: the webhook receiver is down for a minute (first refusing connections, then answering 503),
 * then up. The queue's attempts run out within a second of each failure, so what brings the decisions
 * to the receiver once it recovers is the re-drive of unreconciled work, with no operator action.
 * Real `vigil run`, real receiver.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AgentProcess, TOKEN, tempConfig } from "../helpers/agent-process.ts";
import { WebhookReceiver, type Delivery } from "../helpers/webhook-receiver.ts";
import { until } from "../helpers/wait.ts";

const SECRET = "whsec-chaos-0123456789abcdef";
const POLICY = "identity-perimeter";
const GAUGE = `vigil_enforcement_unreconciled{policy="${POLICY}",action="notify"}`;

describe("chaos: the webhook receiver is down for a minute", () => {
  const receiver = new WebhookReceiver(SECRET);
  let agent: AgentProcess;

  before(async () => {
    const hook = await receiver.start();
    const { file } = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
inventories:
  - type: static
    subjects:
      - {id: u1, kind: user, attributes: {mfa: true}}
      - {id: u2, kind: user, attributes: {mfa: true}}
      - {id: u3, kind: user, attributes: {mfa: true}}
      - {id: u4, kind: user, attributes: {mfa: true}}
identity_perimeter: {require_location_check: false, require_managed_device: false}
enforcement:
  deny:
    - {type: webhook, name: notify, url: "${hook}", secret: "${SECRET}", timeout: 2s}
  # Every queue attempt is used up within a second of a failure: only the re-drive can deliver later.
  retry: {attempts: 3, delay: 100ms, max_delay: 200ms}
  redrive: {delay: 5s, max_delay: 10s}
`,
    );
    agent = await AgentProcess.start(file);
    await agent.idle();
  });

  after(async () => {
    await agent?.stop();
    await receiver.stop();
  });

  const failed = async () => (await agent.request("GET", "/v1/enforcement/failed")).json as { items: { subject: string; operation: string; access: string; attempts: number; status: string }[]; total: number };
  const gauge = async () => {
    const text = await (await fetch(`${agent.metrics}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${GAUGE} `));
    return line === undefined ? undefined : Number(line.slice(GAUGE.length + 1));
  };
  const signal = async (subject: string, status: "fail" | "pass") => {
    const res = await agent.request("POST", "/v1/signals", { subject, check: "mfa", status, reason: "chaos" });
    assert.equal(res.status, 202, JSON.stringify(res.json));
  };

  it("every decision that stands reaches the receiver once it recovers, with no operator action", async () => {
    const started = Date.now();
    await receiver.down();

    // Refusing: u1 and u2 are denied; u3 is denied, then restored before the receiver comes back.
    await signal("u1", "fail");
    await signal("u2", "fail");
    await signal("u3", "fail");
    await until(async () => (await failed()).total === 3, 10_000);
    assert.ok(
      (await failed()).items.every((i) => i.attempts === 3 && i.operation === "apply" && i.access === "deny"),
      "each ran out of its queue attempts",
    );
    await signal("u3", "pass");
    await until(async () => ((await agent.request("GET", "/v1/subjects/u3")).json as { access: string }).access === "full_access", 10_000);
    // The deny it never delivered is superseded; the restore is now what stands, and fails too.
    await until(async () => (await failed()).items.some((i) => i.subject === "u3" && i.operation === "revert"), 10_000);
    assert.equal((await failed()).total, 3);
    await until(async () => (await gauge()) === 3, 10_000);

    // Answering 503 for the rest of the minute; u4 is denied meanwhile.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 30_000 - Date.now())));
    receiver.respond = () => 503;
    await receiver.up();
    await signal("u4", "fail");
    await until(async () => (await failed()).total === 4, 10_000);
    // The queue gave up on every one of them at least once (u3 twice: its deny, then its restore).
    const gaveUp = async () => ((await agent.request("GET", "/v1/audit?type=action_failed&limit=1000")).json as { entries: { subject: string }[] }).entries;
    await until(async () => new Set((await gaveUp()).map((e) => e.subject)).size === 4, 10_000);

    // A minute after it went down, the receiver recovers. Nobody calls the API to help.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 60_000 - Date.now())));
    const recovered = Date.now();
    receiver.respond = () => 200;

    const accepted = (subject: string): Delivery[] => receiver.deliveries.filter((d) => d.reply === 200 && d.body.subject === subject);
    await until(() => ["u1", "u2", "u3", "u4"].every((s) => accepted(s).length > 0), 30_000);
    await until(async () => (await failed()).total === 0, 10_000);
    await agent.idle();
    for (const s of ["u1", "u2", "u4"]) {
      const [d, ...more] = accepted(s);
      assert.equal(more.length, 0, `${s}: delivered once`);
      assert.equal(d!.signatureValid, true);
      assert.deepEqual([d!.body.access, d!.body.operation, d!.body.generation, d!.body.action], ["deny", "apply", 2, { name: "notify", type: "webhook" }], s);
      // Every try of one decision carries one idempotency key, the 503'd ones included.
      assert.deepEqual(new Set(receiver.deliveries.filter((x) => x.body.subject === s).map((x) => x.idempotencyKey)), new Set([d!.idempotencyKey]), s);
    }
    const restored = accepted("u3");
    assert.deepEqual(restored.map((d) => [d.body.access, d.body.operation, d.body.previous_access]), [["full_access", "revert", "deny"]], "u3: the restore, not the superseded deny");
    for (const s of ["u1", "u2", "u3", "u4"]) {
      const current = ((await agent.request("GET", `/v1/subjects/${s}`)).json as { access: string }).access;
      assert.equal(accepted(s).at(-1)!.body.access, current, `${s}: the receiver holds the decision in force`);
    }
    assert.ok(Date.now() - recovered < 30_000);
    await until(async () => (await gauge()) === 0, 10_000);
    const redriven = (await agent.request("GET", "/v1/audit?type=action_redriven&limit=1000")).json as { entries: { by: string }[] };
    assert.ok(redriven.entries.length >= 4);
    assert.ok(redriven.entries.every((e) => e.by === "schedule"), "no operator retried anything");
  });
});
