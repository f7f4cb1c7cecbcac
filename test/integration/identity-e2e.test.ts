/**
 * End to end: a real `vigil run` on the identity providers' contract servers.
 *
 * Entra ID: users come from the Entra inventory with the facts of their real sign-ins. A user who
 * signed in without MFA is caught by require_mfa; a user whose Identity Protection risk turns high
 * is denied and the configured Entra actions (revoke sessions, disable the account) reach Graph;
 * dismissing the risk restores access and the account is enabled again.
 *
 * Okta: the same with Identity Threat Protection's `user.risk.detect` and the Okta actions.
 *
 * The credentials never reach the agent's logs.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AgentProcess, runCli, tempConfig, TOKEN } from "../helpers/agent-process.ts";
import { FakeGraphIdentity } from "../helpers/fakes/graph-identity.ts";
import { CLIENT_SECRET } from "../helpers/fakes/entra.ts";
import { OktaFake } from "../helpers/fakes/okta.ts";
import { until } from "../helpers/wait.ts";

interface Reason {
  code: string;
  message: string;
}

describe("identity perimeter end to end (real agent, local Entra ID)", () => {
  const graph = new FakeGraphIdentity();
  let agent: AgentProcess;
  let file = "";
  const alice = FakeGraphIdentity.user(1, { userPrincipalName: "alice@contoso.example", mail: "alice@contoso.example" });
  const bob = FakeGraphIdentity.user(2, { userPrincipalName: "bob@contoso.example", mail: "bob@contoso.example" });
  const carol = FakeGraphIdentity.user(3, { userPrincipalName: "carol@contoso.example", mail: "carol@contoso.example" });
  const dave = FakeGraphIdentity.user(4, { userPrincipalName: "dave@contoso.example", mail: "dave@contoso.example" });
  const subject = (u: { id: string }) => `entra:${u.id.toLowerCase()}`;

  before(async () => {
    await graph.start();
    for (const u of [alice, bob, carol, dave]) graph.addIdentityUser(u);
    const now = Date.now();
    graph.addSignIn(alice.id, { at: now - 10 * 60_000, mfa: true, country: "DE" });
    graph.addSignIn(bob.id, { at: now - 5 * 60_000, mfa: false, country: "DE" });
    graph.addSignIn(carol.id, { at: now - 8 * 60_000, mfa: true, country: "FR" });
    // Berlin, then Sydney an hour later.
    graph.addSignIn(dave.id, { at: now - 70 * 60_000, mfa: true, country: "DE", city: "Berlin", lat: 52.52, lon: 13.405 });
    graph.addSignIn(dave.id, { at: now - 10 * 60_000, mfa: true, country: "AU", city: "Sydney", lat: -33.87, lon: 151.21, ip: "198.51.100.77" });
    const conn = `
    tenant_id: ${graph.tenant}
    client_id: ${graph.clientId}
    auth: {client_secret: "${CLIENT_SECRET}"}
    login_url: "${graph.loginUrl}"
    graph_url: "${graph.graphUrl}"`;
    ({ file } = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
decision: {confirm: 1, restore_after: 1, cooldown: 0s}
inventories:
  - type: entra${conn}
    refresh: 1s
checks:
  user_risk_score:
    on_unknown: hold
    sources:
      - type: entra${conn.replace(/\n {4}/g, "\n        ")}
        refresh: 1s
      - type: computed
providers:
  entra:${conn.replace(/\n {4}/g, "\n    ")}
identity_perimeter:
  applies_to: {kind: user}
  require_mfa: true
  require_managed_device: false
  require_location_check: false
  session_duration: 24h
  risk_based_access: {low_risk: full_access, medium_risk: read_only, high_risk: deny}
  continuous_verification: {interval: 2s, checks: [user_risk_score]}
enforcement:
  deny:
    - type: entra:revoke_sessions
      name: revoke
    - type: entra:disable_account
      name: disable
  retry: {attempts: 5, delay: 100ms, max_delay: 1s}
`,
    ));
    agent = await AgentProcess.start(file);
  });

  after(async () => {
    if (agent) assert.equal(await agent.stop(), 0);
    await graph.stop();
  });

  const detail = async (u: { id: string }) => (await agent.request("GET", `/v1/subjects/${encodeURIComponent(subject(u))}`)).json;

  it("a user who signed in without MFA is denied by require_mfa, from the sign-in log", async () => {
    await until(async () => (await detail(bob)).access === "deny", 20_000);
    const d = await detail(bob);
    const reasons = d.decisions[0].reasons as Reason[];
    assert.ok(reasons.some((r) => r.code === "MFA_MISSING"), JSON.stringify(reasons));
    await until(() => graph.identityUser(bob.id)!.accountEnabled === false, 10_000);
    assert.equal((await detail(alice)).access, "full_access");
    assert.equal((await detail(carol)).access, "full_access");
  });

  it("a user whose risk turns high is denied and the Entra actions arrive; dismissing the risk restores access", async () => {
    const sessionsBefore = graph.identityUser(alice.id)!.signInSessionsValidFromDateTime;
    graph.setRisk(alice.id, { riskLevel: "high", riskState: "atRisk", riskDetail: "none" });
    graph.addDetection(alice.id, { riskEventType: "unfamiliarFeatures", riskLevel: "high" });
    await until(async () => (await detail(alice)).access === "deny", 20_000);
    const reasons = (await detail(alice)).decisions[0].reasons as Reason[];
    assert.ok(reasons.some((r) => r.code === "USER_RISK_HIGH"), JSON.stringify(reasons));
    assert.ok(reasons.some((r) => r.code === "USER_RISK_DETECTION" && /unfamiliarFeatures/.test(r.message)), JSON.stringify(reasons));
    await until(() => graph.identityUser(alice.id)!.accountEnabled === false && graph.identityUser(alice.id)!.signInSessionsValidFromDateTime !== sessionsBefore, 10_000);

    // An admin dismisses the risk (as Identity Protection's API does it).
    graph.setRisk(alice.id, { riskLevel: "none", riskState: "dismissed", riskDetail: "adminDismissedAllRiskForUser" });
    await until(async () => (await detail(alice)).access === "full_access", 20_000);
    await until(() => graph.identityUser(alice.id)!.accountEnabled === true, 10_000);
    assert.equal((await detail(carol)).access, "full_access", "nobody else was touched");
  });

  it("impossible travel in the sign-in log lowers access; vigil explain shows each contribution; secrets never reach the logs", async () => {
    await until(async () => (await detail(dave)).access === "read_only", 20_000);
    const reasons = (await detail(dave)).decisions[0].reasons as Reason[];
    assert.ok(reasons.some((r) => r.code === "USER_IMPOSSIBLE_TRAVEL" && /Berlin, DE .* to Sydney, AU/.test(r.message)), JSON.stringify(reasons));
    const out = await runCli(["explain", subject(dave), "-c", file]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /user_risk_score\s+warn\s+risk medium/);
    assert.match(out.stdout, /USER_RISK_MEDIUM: computed: score \d+(\.\d)?, at least 40 \(medium\)/);
    assert.match(out.stdout, /\n\s+\+\s*\d+(\.\d)?\s+entra: impossible travel: \d+ km from Berlin, DE .* to Sydney, AU/, out.stdout);
    assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(CLIENT_SECRET)), "the client secret never appears in logs");
    assert.ok(!out.stdout.includes(CLIENT_SECRET) && !out.stderr.includes(CLIENT_SECRET));
  });
});

describe("identity perimeter end to end (real agent, local Okta)", () => {
  const TOKEN_OKTA = "00Okta-e2e-identity-token-4Vb8Nw1Qz9Lm2Xc";
  const okta = new OktaFake({ apiToken: TOKEN_OKTA });
  let agent: AgentProcess;

  before(async () => {
    await okta.start();
    okta.addUser("00uAlice0001", "ACTIVE", { login: "alice@example.org" });
    okta.addUser("00uDana00004", "ACTIVE", { login: "dana@example.org" });
    for (const [user, session] of [["00uAlice0001", "102a"], ["00uDana00004", "102d"]] as const) {
      okta.mfa(user, { sessionId: session, factor: "OKTA_VERIFY_PUSH" });
      okta.sessionStart(user, { sessionId: session, country: "Germany" });
    }
    const conn = `
    org_url: "${okta.base}"
    auth: {type: ssws, token: "${TOKEN_OKTA}"}`;
    const { file } = tempConfig(
      (dir) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
decision: {confirm: 1, restore_after: 1, cooldown: 0s}
inventories:
  - type: okta${conn}
    refresh: 1s
checks:
  user_risk_score:
    on_unknown: hold
    sources:
      - type: okta${conn.replace(/\n {4}/g, "\n        ")}
        refresh: 1s
providers:
  okta:${conn.replace(/\n {4}/g, "\n    ")}
identity_perimeter:
  applies_to: {kind: user}
  require_mfa: true
  require_managed_device: false
  require_location_check: true
  allowed_locations: [DE]
  session_duration: 24h
  risk_based_access: {low_risk: full_access, medium_risk: read_only, high_risk: deny}
  continuous_verification: {interval: 2s, checks: [user_risk_score]}
enforcement:
  deny:
    - type: okta:suspend
      name: suspend
    - type: okta:clear_sessions
      name: end-sessions
  retry: {attempts: 5, delay: 100ms, max_delay: 1s}
`,
    );
    agent = await AgentProcess.start(file);
  });

  after(async () => {
    if (agent) assert.equal(await agent.stop(), 0);
    await okta.stop();
  });

  const detail = async (id: string) => (await agent.request("GET", `/v1/subjects/${encodeURIComponent(`okta:${id}`)}`)).json;

  it("a user whose Okta risk turns high is suspended and their sessions end; risk back to none restores them", async () => {
    await until(async () => (await detail("00uAlice0001")).access === "full_access", 20_000);
    okta.riskDetect("00uAlice0001", { level: "HIGH", previous: "LOW", detection: "Entity Critical Event" });
    await until(async () => (await detail("00uAlice0001")).access === "deny", 20_000);
    const reasons = (await detail("00uAlice0001")).decisions[0].reasons as Reason[];
    assert.ok(reasons.some((r) => r.code === "USER_RISK_HIGH" && /Entity Critical Event/.test(r.message)), JSON.stringify(reasons));
    await until(() => okta.status("00uAlice0001") === "SUSPENDED" && okta.users.get("00uAlice0001")!.sessions === 0, 10_000);

    okta.riskDetect("00uAlice0001", { level: "NONE", previous: "HIGH", detection: "Admin Reset" });
    await until(async () => (await detail("00uAlice0001")).access === "full_access", 20_000);
    await until(() => okta.status("00uAlice0001") === "ACTIVE", 10_000);
    assert.equal((await detail("00uDana00004")).access, "full_access");
    assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(TOKEN_OKTA)), "the API token never appears in logs");
  });
});
