/**
 * End to end with the real agent (`bin/vigil run`, built by the test script): a signal denies a user,
 * vigil pushes CAEP SETs, and the receiver verifies them with the JWKS it fetched from the agent's
 * unauthenticated /.well-known/ documents over HTTP.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PublicDocument } from "../../../src/plugin/provider.ts";
import { AgentProcess, ROOT, TOKEN, tempConfig } from "../../helpers/agent-process.ts";
import { SsfReceiver } from "../../helpers/fakes/ssf-receiver.ts";
import { until } from "../../helpers/wait.ts";
import { KEYS } from "./world.ts";

const built = existsSync(join(ROOT, "dist/cli/main.js"));

describe("caep with the real agent", { skip: built ? false : "needs `npm run build` (npm test builds first)" }, () => {
  /** The agent's documents, fetched over HTTP without a token, as a receiver would. */
  let fetched: Record<string, PublicDocument> = {};
  const receiver = new SsfReceiver({ documents: () => fetched, authorization: "Bearer e2e-receiver-token-0123456789" });
  let endpoint = "";
  before(async () => {
    endpoint = await receiver.start();
  });
  after(() => receiver.stop());

  it("serves the SSF documents publicly and delivers verified SETs on deny and on restore", async () => {
    const { file } = tempConfig((dir) => {
      writeFileSync(join(dir, "caep.pem"), KEYS.ec);
      return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
inventories:
  - type: static
    subjects:
      - {id: carol, kind: user, attributes: {email: carol@example.org, mfa: true, device_managed: true, country: DE}}
checks:
  user_risk_score: {on_unknown: ignore}
providers:
  caep:
    issuer: https://vigil.example.com
    keys: [{kid: e2e-1, private_key: "\${file:${join(dir, "caep.pem")}}"}]
    receivers:
      - {name: rp, endpoint: "${endpoint}", authorization: "Bearer e2e-receiver-token-0123456789"}
identity_perimeter:
  require_location_check: false
  continuous_verification: {interval: 1h, checks: [user_risk_score]}
  enforcement:
    deny:
      - {type: caep:transmit, name: revoke, event: session-revoked}
      - {type: caep:transmit, name: device, event: device-compliance-change}
enforcement:
  retry: {attempts: 5, delay: 200ms, max_delay: 1s}
`;
    });
    const agent = await AgentProcess.start(file);
    try {
      const docs: Record<string, PublicDocument> = {};
      for (const path of ["/.well-known/ssf-configuration", "/.well-known/jwks.json"]) {
        const res = await agent.request("GET", path, undefined, null);
        assert.equal(res.status, 200, path);
        const text = JSON.stringify(res.json);
        docs[path] = { contentType: res.headers.get("content-type") ?? "", body: () => text };
      }
      fetched = docs;
      assert.equal(JSON.parse(docs["/.well-known/ssf-configuration"]!.body()).issuer, "https://vigil.example.com");
      assert.equal(docs["/.well-known/ssf-configuration"]!.contentType.split(";")[0], "application/json");
      assert.equal((await agent.request("GET", "/.well-known/nothing-here", undefined, null)).status, 404);

      const res = await agent.request("POST", "/v1/signals", { subject: "carol", check: "user_risk_score", status: "fail", reason: "impossible travel" });
      assert.equal(res.status, 202);
      await until(() => receiver.accepted.length >= 2, 10_000);
      const events = receiver.accepted.map((s) => s.event.split("/").pop());
      assert.deepEqual(events.sort(), ["device-compliance-change", "session-revoked"]);
      for (const s of receiver.accepted) {
        assert.deepEqual(s.claims.sub_id, { format: "email", email: "carol@example.org" });
        assert.equal(s.header.kid, "e2e-1");
      }
      assert.deepEqual(receiver.rejected, []);

      // Restored access: only the reversible event is sent back.
      await agent.request("POST", "/v1/signals", { subject: "carol", check: "user_risk_score", status: "pass" });
      await until(() => receiver.accepted.length >= 3, 10_000);
      const back = receiver.accepted[2]!;
      assert.equal(back.event.split("/").pop(), "device-compliance-change");
      assert.equal(back.payload.current_status, "compliant");
      assert.equal(back.claims.txn !== receiver.accepted[0]!.claims.txn, true, "another decision, another txn");
      await agent.idle();
      assert.equal(receiver.accepted.length, 3, "no session-revoked revert");
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});
