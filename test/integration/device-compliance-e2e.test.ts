/**
 * End to end: a real `vigil run` reading a local Fleet server that enforces its contract. A user's
 * laptop starts failing a Fleet policy: within a tick the user drops to the configured access and
 * the signed webhook reaches the receiver; the policy passes again: access comes back and the revert
 * is delivered. The Fleet token never reaches the agent's logs.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AgentProcess, tempConfig, TOKEN } from "../helpers/agent-process.ts";
import { FakeFleet, FLEET_TOKEN } from "../helpers/fakes/fleet.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { until } from "../helpers/wait.ts";

const SECRET = "whsec-device-e2e-0123456789";

describe("device_compliance end to end (real agent, local Fleet)", () => {
  const fleet = new FakeFleet();
  const receiver = new WebhookReceiver(SECRET);
  let agent: AgentProcess;

  before(async () => {
    await fleet.start();
    const hook = await receiver.start();
    fleet.addHost({ hostname: "alice-mbp.example.com", emails: ["alice@example.com"] });
    const { file } = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
decision: {confirm: 1, restore_after: 1, cooldown: 0s}
inventories:
  - type: static
    subjects:
      - {id: alice, kind: user, identity: alice@example.com}
  - type: fleet
    url: "${fleet.base}"
    token: "${FLEET_TOKEN}"
    refresh: 1s
checks:
  device_compliance:
    on_unknown: hold
    users: all
    sources:
      - type: fleet
        url: "${fleet.base}"
        token: "${FLEET_TOKEN}"
        refresh: 1s
        policies: [{id: 1, code: DEVICE_UNENCRYPTED}]
identity_perimeter:
  applies_to: {kind: user}
  require_mfa: false
  require_managed_device: false
  require_location_check: false
  risk_based_access: {low_risk: full_access, medium_risk: read_only, high_risk: read_only}
  continuous_verification: {interval: 2s, checks: [device_compliance]}
enforcement:
  read_only:
    - type: webhook
      name: notify
      url: "${hook}"
      secret: "${SECRET}"
  retry: {attempts: 5, delay: 100ms, max_delay: 1s}
`,
    );
    agent = await AgentProcess.start(file);
  });

  after(async () => {
    if (agent) assert.equal(await agent.stop(), 0);
    await receiver.stop();
    await fleet.stop();
  });

  it("a device turning noncompliant drops its user to read_only and fires the webhook; compliant again restores it", async () => {
    await until(async () => (await agent.request("GET", "/v1/subjects/alice")).json.access === "full_access", 10_000);
    const ok = (await agent.request("GET", "/v1/subjects/alice")).json;
    assert.equal(ok.decisions[0].access, "full_access");
    assert.equal(receiver.deliveries.length, 0);

    fleet.setResult(1, 1, "fail");
    await receiver.waitForDeliveries(1, 15_000);
    const down = receiver.deliveries[0]!;
    assert.equal(down.signatureValid, true);
    assert.equal(down.body.subject, "alice");
    assert.equal(down.body.access, "read_only");
    assert.equal(down.body.previous_access, "full_access");
    const detail = (await agent.request("GET", "/v1/subjects/alice")).json;
    assert.equal(detail.access, "read_only");
    const reasons = detail.decisions[0].reasons as { code: string; message: string }[];
    assert.ok(reasons.some((r) => r.code === "DEVICE_UNENCRYPTED" && /Full disk encryption enabled/.test(r.message)), JSON.stringify(reasons));

    fleet.setResult(1, 1, "pass");
    await receiver.waitForDeliveries(2, 15_000);
    const up = receiver.deliveries[1]!;
    assert.equal(up.body.subject, "alice");
    assert.equal(up.body.access, "full_access");
    assert.equal(up.body.operation, "revert");
    assert.equal((await agent.request("GET", "/v1/subjects/alice")).json.access, "full_access");

    // The device itself came from the Fleet inventory; the scans were shared and paged, not per subject.
    assert.equal((await agent.request("GET", "/v1/subjects/fleet:1")).status, 200);
    assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(FLEET_TOKEN)), "the Fleet token never appears in logs");
    assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(SECRET)), "the webhook secret never appears in logs");
  });
});
