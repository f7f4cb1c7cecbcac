/**
 * End to end: a real agent, local AWS IAM, Okta and Kubernetes API servers that enforce their
 * contracts. A signal drops a workload to deny; each server receives exactly the calls
 * `vigil plan` showed for that change; a good result restores access and the reverts arrive.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentProcess, runCli, tempConfig, TOKEN } from "../helpers/agent-process.ts";
import { until } from "../helpers/wait.ts";
import { FakeIam, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, formOf } from "../helpers/fakes/aws.ts";
import { OktaFake } from "../helpers/fakes/okta.ts";
import { FakeKubernetes } from "../helpers/fakes/kubernetes.ts";
import type { FakeRequest } from "../helpers/fake-api.ts";

const OKTA_TOKEN = "00okta-e2e-token-0123456789abcdef";
const K8S_TOKEN = "k8s-e2e-token-0123456789";
const OKTA_USER = "00u1e2eservice0001";

interface PlannedCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  summary?: string;
}
interface Plan {
  policies: { policy: string; actions: { action: string; type: string; operation: string; calls: PlannedCall[] }[] }[];
}

/** `METHOD path?query` of a planned call, relative to its server. */
const line = (c: { method: string; url: string }) => {
  const u = new URL(c.url);
  return `${c.method} ${u.pathname}${u.search}`;
};
const sent = (r: FakeRequest) => `${r.method} ${r.url}`;
const withoutManager = (l: string) => l.replace(/[?&]fieldManager=.*$/, "");

/**
 * The received calls are the planned ones, in order: a planned call may be missing only when the plan
 * says it is conditional ("only if/when …", e.g. a DELETE of an object that is not there).
 */
function assertFollowsPlan(received: readonly string[], planned: readonly PlannedCall[], norm: (l: string) => string = (l) => l): void {
  let i = 0;
  for (const r of received) {
    while (i < planned.length && norm(line(planned[i]!)) !== norm(r)) {
      assert.match(planned[i]!.summary ?? "", /\bonly (if|when)\b/, `planned call ${line(planned[i]!)} was not sent, and the plan did not say it was conditional; received: ${received.join(" | ")}`);
      i++;
    }
    assert.ok(i < planned.length, `received ${r}, which the plan does not show (next planned: none)`);
    i++;
  }
  for (; i < planned.length; i++) assert.match(planned[i]!.summary ?? "", /\bonly (if|when)\b/, `planned call ${line(planned[i]!)} never arrived`);
}

describe("enforcement end to end (real agent, local AWS, Okta and Kubernetes)", () => {
  const iam = new FakeIam();
  const okta = new OktaFake({ apiToken: OKTA_TOKEN });
  const k8s = new FakeKubernetes({ tokens: [K8S_TOKEN] });
  let file = "";
  let agent: AgentProcess;

  before(async () => {
    await Promise.all([iam.start(), okta.start(), k8s.start()]);
    iam.addRole("frontend-irsa");
    okta.addUser(OKTA_USER, "ACTIVE");
    ({ file } = tempConfig((dir) => {
      const kubeconfig = join(dir, "kubeconfig");
      writeFileSync(
        kubeconfig,
        `apiVersion: v1\nkind: Config\ncurrent-context: e2e\nclusters: [{name: e2e, cluster: {server: "${k8s.base}"}}]\nusers: [{name: vigil, user: {token: ${K8S_TOKEN}}}]\ncontexts: [{name: e2e, context: {cluster: e2e, user: vigil, namespace: web}}]\n`,
      );
      return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
decision: {confirm: 1, restore_after: 1, cooldown: 1s}
inventories:
  - type: static
    subjects:
      - id: frontend
        kind: workload
        identity: "spiffe://cluster.local/ns/web/sa/frontend"
        attributes: {namespace: web, aws_role: frontend-irsa, okta_id: ${OKTA_USER}}
      - {id: api, kind: workload, identity: "spiffe://cluster.local/ns/api/sa/api", attributes: {namespace: api}}
checks:
  anomaly_detection: {on_unknown: ignore}
providers:
  aws:
    endpoint: "${iam.base}/"
    region: us-east-1
    credentials: {access_key_id: ${TEST_ACCESS_KEY_ID}, secret_access_key: "${TEST_SECRET_ACCESS_KEY}"}
  okta:
    org_url: "${okta.base}"
    auth: {type: ssws, token: "${OKTA_TOKEN}"}
  kubernetes:
    kubeconfig: ${kubeconfig}
communication_policies:
  - name: frontend-to-api
    source: frontend
    destination: api
    port: 8443
    continuous_verification: {interval: 1h, checks: [anomaly_detection]}
    enforcement:
      full_access:
        - type: kubernetes:network_policy
          name: k8s
          destination: {namespace: api}
      deny:
        - {type: aws:revoke_role_sessions, name: aws}
        - {type: okta:suspend, name: okta}
enforcement:
  retry: {attempts: 5, delay: 100ms, max_delay: 1s}
`;
    }));
    agent = await AgentProcess.start(file);
  });

  after(async () => {
    await agent?.stop();
    await Promise.all([iam.stop(), okta.stop(), k8s.stop()]);
  });

  async function plan(access: string, from: string): Promise<Map<string, PlannedCall[]>> {
    const res = await runCli(["plan", "-c", file, "--subject", "frontend", "--access", access, "--from", from, "--json"]);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout, new RegExp(`${OKTA_TOKEN}|${K8S_TOKEN}|${TEST_SECRET_ACCESS_KEY.replace(/[+/]/g, "\\$&")}`), "no secret in the plan");
    const byType = new Map<string, PlannedCall[]>();
    for (const a of (JSON.parse(res.stdout) as Plan).policies[0]!.actions) byType.set(a.type, [...(byType.get(a.type) ?? []), ...a.calls]);
    return byType;
  }

  it("the first decision puts the declared allow in place", async () => {
    await agent.request("POST", "/v1/evaluate/frontend");
    await until(() => k8s.objects("NetworkPolicy").length === 2, 20_000);
    assert.deepEqual(k8s.objects("NetworkPolicy").map((o) => o.metadata.labels?.["app.kubernetes.io/managed-by"]), ["vigil", "vigil"]);
  });

  it("a failing signal denies: each server receives exactly the calls the plan showed", async () => {
    const expected = await plan("deny", "full_access");
    iam.api.clear();
    okta.api.clear();
    k8s.api.clear();
    const res = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail", reason: "exfiltration" });
    assert.equal(res.status, 202);
    const want = (type: string) => expected.get(type)!.map(line);
    await until(() => iam.api.handled.length >= 2 && okta.api.handled.length >= 3 && k8s.api.handled.length >= 10, 20_000);
    await agent.idle(); // everything the signal set off has run: nothing more may arrive

    assert.deepEqual(okta.api.handled.map(sent), want("okta:suspend"), "the user was ACTIVE: every planned call, the suspend included");
    assertFollowsPlan(k8s.api.handled.map(sent), expected.get("kubernetes:network_policy")!, withoutManager);
    // Both allows stay, emptied: the pods stay isolated and the edge is closed.
    const deniedObjects = k8s.api.handled.filter((r) => r.method === "PATCH").map((r) => JSON.parse(r.body) as { spec: Record<string, unknown> });
    assert.equal(deniedObjects.length, 2);
    for (const o of deniedObjects) assert.ok(o.spec.egress === undefined && o.spec.ingress === undefined, "an emptied allow allows nothing");
    // IAM's Query API posts every call to "/": the Action and its parameters tell them apart.
    const awsPlanned = expected.get("aws:revoke_role_sessions")!;
    assert.deepEqual(iam.api.handled.map((r) => `${r.method} ${r.url} ${formOf(r).Action}`), awsPlanned.map((c) => `${line(c)} ${(c.body as Record<string, string>).Action}`));
    const put = formOf(iam.api.handled[0]!);
    assert.equal(put.RoleName, "frontend-irsa");
    assert.equal(put.PolicyName, "AWSRevokeOlderSessions");
    const doc = JSON.parse(put.PolicyDocument!) as { Statement: { Effect: string; Condition: { DateLessThan: Record<string, string> } }[] };
    assert.equal(doc.Statement[0]!.Effect, "Deny");
    assert.match(doc.Statement[0]!.Condition.DateLessThan["aws:TokenIssueTime"]!, /^\d{4}-\d\d-\d\dT/);

    // The effects are in place at each target.
    assert.ok(iam.roles.get("frontend-irsa")!.inline.has("AWSRevokeOlderSessions"));
    assert.equal(okta.status(OKTA_USER), "SUSPENDED");
    assert.equal(k8s.objects("NetworkPolicy").length, 2, "the pods stay isolated");
    for (const o of k8s.objects("NetworkPolicy")) assert.deepEqual([(o.spec as Record<string, unknown>).egress, (o.spec as Record<string, unknown>).ingress], [undefined, undefined], "and nothing is allowed: the edge is denied");
    // Each action's verification (read back from the target) is in the audit log.
    await until(async () => ((await agent.request("GET", "/v1/audit?subject=frontend&type=action")).json.entries ?? []).filter((e: { access: string }) => e.access === "deny").length === 3, 10_000);
    const audit = (await agent.request("GET", "/v1/audit?subject=frontend&type=action")).json as { entries: { action: string; access: string; outcome: string; verified: boolean | null }[] };
    const outcomes = audit.entries.filter((e) => e.access === "deny").map((e) => `${e.action}:${e.outcome}:${e.verified}`).sort();
    assert.deepEqual(outcomes, ["aws:success:true", "k8s:success:true", "okta:success:true"]);
  });

  it("a good result restores access and the reverts arrive as planned", async () => {
    const expected = await plan("full_access", "deny");
    iam.api.clear();
    okta.api.clear();
    k8s.api.clear();
    // decision.cooldown is 1 s of real time since the deny: nothing the agent does can shorten it.
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "pass" });
    assert.equal(res.status, 202);
    const allowing = () => k8s.objects("NetworkPolicy").filter((o) => (o.spec as Record<string, unknown>).egress !== undefined || (o.spec as Record<string, unknown>).ingress !== undefined).length;
    await until(() => okta.status(OKTA_USER) === "ACTIVE" && !iam.roles.get("frontend-irsa")!.inline.has("AWSRevokeOlderSessions") && allowing() === 2, 20_000);
    await until(() => iam.api.handled.length >= expected.get("aws:revoke_role_sessions")!.length && okta.api.handled.length >= expected.get("okta:suspend")!.length, 10_000);
    await agent.idle();
    assert.deepEqual(okta.api.handled.map(sent), expected.get("okta:suspend")!.map(line));
    assert.deepEqual(iam.api.handled.map((r) => formOf(r).Action), expected.get("aws:revoke_role_sessions")!.map((c) => (c.body as Record<string, string>).Action));
    assertFollowsPlan(k8s.api.handled.map(sent), expected.get("kubernetes:network_policy")!, withoutManager);
    // The applied objects are exactly the bodies the plan showed.
    const planned = expected.get("kubernetes:network_policy")!.filter((c) => c.method === "PATCH").map((c) => c.body);
    const applied = k8s.api.handled.filter((r) => r.method === "PATCH").map((r) => JSON.parse(r.body) as unknown);
    assert.deepEqual(applied, planned);
    assert.equal(applied.length, 2);
    const subject = (await agent.request("GET", "/v1/subjects/frontend")).json as { access: string };
    assert.equal(subject.access, "full_access");
  });
});
