/**
 * Two real agents (`bin/vigil run`, built by the test script) chained by Shared Signals, as in
 * config/examples/ssf-peer.yaml: the edge agent denies a user and its `caep:transmit` actions push
 * signed CAEP SETs; the core agent's SSF receiver verifies them with the edge agent's JWKS and its
 * own decision for the same person goes to deny.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { AgentProcess, ROOT, TOKEN, tempConfig } from "../helpers/agent-process.ts";
import { until } from "../helpers/wait.ts";
import { freePort } from "../signals/ssf/world.ts";

const built = existsSync(join(ROOT, "dist/cli/main.js"));
const PUSH_TOKEN = "Bearer edge-to-core-0123456789abcdef";

describe("SSF round trip between two agents", { skip: built ? false : "needs `npm run build` (npm test builds first)" }, () => {
  const running: AgentProcess[] = [];
  after(async () => {
    for (const a of running) await a.stop();
  });

  it("the edge agent's caep:transmit drives the core agent's decision", async () => {
    const [edgePort, corePort] = [await freePort(), await freePort()];
    const edge = tempConfig((dir) => {
      const key = join(dir, "caep.pem");
      writeFileSync(key, String(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" })));
      return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${edgePort}", token: "${TOKEN}"}
  metrics: {listen: false}
inventories:
  - type: static
    subjects:
      - {id: carol-at-edge, kind: user, attributes: {email: carol@example.org, mfa: true, device_managed: true}}
checks:
  user_risk_score: {on_unknown: ignore}
providers:
  caep:
    issuer: https://vigil-edge.example.com
    keys: [{kid: edge-2026-01, private_key: "\${file:${key}}"}]
    receivers:
      - {name: core, endpoint: "http://127.0.0.1:${corePort}/v1/signals/ssf/edge", authorization: "${PUSH_TOKEN}", subject: {format: email}}
identity_perimeter:
  require_location_check: false
  continuous_verification: {interval: 1h, checks: [user_risk_score]}
  enforcement:
    deny:
      - {type: caep:transmit, name: revoke, event: session-revoked, reason_admin: "denied at the edge"}
      - {type: caep:transmit, name: device, event: device-compliance-change}
enforcement:
  retry: {attempts: 10, delay: 200ms, max_delay: 1s}
`;
    });
    const core = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${corePort}", token: "${TOKEN}"}
  metrics: {listen: false}
inventories:
  - type: static
    subjects:
      - {id: carol, kind: user, attributes: {email: carol@example.org, mfa: true, device_managed: true}}
checks:
  device_compliance: {on_unknown: ignore}
  session_state: {type: push, on_unknown: ignore}
signals:
  ssf:
    transmitters:
      - name: edge
        issuer: https://vigil-edge.example.com
        jwks_uri: http://127.0.0.1:${edgePort}/.well-known/jwks.json
        manage: false
        delivery: push
        push:
          endpoint_url: http://127.0.0.1:${corePort}/v1/signals/ssf/edge
          authorization: "${PUSH_TOKEN}"
        algorithms: [ES256, RS256]
identity_perimeter:
  require_location_check: false
  continuous_verification: {interval: 1h, checks: [device_compliance, session_state]}
`,
    );
    const coreAgent = await AgentProcess.start(core.file);
    running.push(coreAgent);
    const edgeAgent = await AgentProcess.start(edge.file);
    running.push(edgeAgent);

    assert.equal((await coreAgent.request("GET", "/v1/subjects/carol")).json.access, "full_access");
    const signal = await edgeAgent.request("POST", "/v1/signals", { subject: "carol-at-edge", check: "user_risk_score", status: "fail", reason: "impossible travel" });
    assert.equal(signal.status, 202);

    await until(async () => (await coreAgent.request("GET", "/v1/subjects/carol")).json.access === "deny", 15_000);
    const carol = (await coreAgent.request("GET", "/v1/subjects/carol")).json as { results: { check: string; status: string; evidence: Record<string, unknown> }[] };
    const byCheck = new Map(carol.results.map((r) => [r.check, r]));
    assert.equal(byCheck.get("session_state")?.status, "fail");
    assert.equal(byCheck.get("device_compliance")?.status, "fail");
    assert.equal(byCheck.get("session_state")?.evidence.transmitter, "edge");
    assert.deepEqual(byCheck.get("session_state")?.evidence.reason_admin, { en: "denied at the edge" });
    assert.equal(byCheck.get("session_state")?.evidence.initiating_entity, "policy");
    const lines = (await coreAgent.request("GET", "/v1/audit?type=signal")).json.entries as { subject: string; source: string }[];
    assert.deepEqual(lines.map((l) => [l.subject, l.source]), [["carol", "ssf:edge"], ["carol", "ssf:edge"]]);
    // The edge agent saw both pushes acknowledged with 202 (verified: true).
    await edgeAgent.idle();
    const actions = (await edgeAgent.request("GET", "/v1/audit?type=action")).json.entries as { verified?: boolean }[];
    assert.equal(actions.length, 2);
    assert.ok(actions.every((a) => a.verified === true), JSON.stringify(actions));

    // Restored at the edge: the compliance event is sent reversed and clears the core's device_compliance.
    assert.equal((await edgeAgent.request("POST", "/v1/signals", { subject: "carol-at-edge", check: "user_risk_score", status: "pass" })).status, 202);
    await until(async () => {
      const r = (await coreAgent.request("GET", "/v1/subjects/carol")).json as { results: { check: string; status: string }[] };
      return r.results.some((x) => x.check === "device_compliance" && x.status === "pass");
    }, 15_000);
  });
});
