import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KubeClient } from "../../../src/actions/kubernetes/client.ts";
import { UID_PLACEHOLDER } from "../../../src/actions/kubernetes/client.ts";
import { networkPolicyAction, networkPolicyConfigSchema, networkPolicySteps, type NetworkPolicyConfig } from "../../../src/actions/kubernetes/network-policy.ts";
import { OWNER_LABEL, OWNER_VALUE, POLICY_LABEL } from "../../../src/actions/common/kubernetes/types.ts";
import type { ActionRequest } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import type { AccessLevel } from "../../../src/policy/model.ts";
import { actionContext, attempt, request } from "../../helpers/action-context.ts";
import type { FakeRequest } from "../../helpers/fake-api.ts";
import { FakeKubernetes, fakeKubernetesClient, validateKubeObject } from "../../helpers/fakes/kubernetes.ts";

const TOKEN = "np-token-9f8e7d6c5b4a";
const NP = "networking.k8s.io/v1";
const POLICY = "frontend-to-api";
const ref = (name: string, namespace: string) => ({ apiVersion: NP, kind: "NetworkPolicy", name, namespace });

function req(access: AccessLevel, extra: Parameters<typeof request>[0] = {}): ActionRequest {
  return request({
    subject: { id: "frontend", kind: "workload", identity: "spiffe://example.org/ns/web/sa/frontend", attributes: { namespace: "web" } },
    access,
    policy: POLICY,
    edge: { source: "frontend", destination: "api", port: 443, protocol: "https" },
    ...extra,
  });
}

function config(extra: Record<string, unknown> = {}): NetworkPolicyConfig {
  return networkPolicyConfigSchema.parse({ destination: { namespace: "api" }, ...extra });
}

/** `METHOD path?query` + body of a planned call, as the server would see it. */
function planned(p: PlannedCall): { line: string; body: unknown } {
  const u = new URL(p.url);
  return { line: `${p.method} ${u.pathname}${u.search}`, body: p.body };
}

function received(r: FakeRequest): { line: string; body: unknown } {
  return { line: `${r.method} ${r.url}`, body: r.body === "" ? undefined : JSON.parse(r.body) };
}

const LABELS = { [OWNER_LABEL]: OWNER_VALUE, [POLICY_LABEL]: POLICY };

const EGRESS = {
  podSelector: { matchLabels: { "app.kubernetes.io/name": "frontend" } },
  policyTypes: ["Egress"],
  egress: [
    {
      to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "api" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "api" } } }],
      ports: [{ protocol: "TCP", port: 443 }],
    },
  ],
};
const INGRESS = {
  podSelector: { matchLabels: { "app.kubernetes.io/name": "api" } },
  policyTypes: ["Ingress"],
  ingress: [
    {
      from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "web" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "frontend" } } }],
      ports: [{ protocol: "TCP", port: 443 }],
    },
  ],
};

describe("kubernetes:network_policy against the fake API server", () => {
  const fake = new FakeKubernetes({ tokens: [TOKEN] });
  let client: KubeClient;

  before(async () => {
    await fake.start();
  });
  after(async () => {
    await fake.stop();
  });
  beforeEach(() => {
    client = fakeKubernetesClient(fake).client;
    for (const o of fake.objects()) fake.remove({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace });
    fake.api.clear();
  });
  afterEach(async () => {
    await client.close();
  });

  const action = (extra: Record<string, unknown> = {}) => networkPolicyAction.create(config(extra), actionContext(client));

  test("full_access: an egress allow on the source pods and an ingress allow on the destination pods, verified", async () => {
    const out = await action().apply(req("full_access"));
    assert.equal(out.verified, true);
    assert.deepEqual(out.detail, {
      access: "full_access",
      objects: { "web/vigil-frontend-to-api-egress": "applied", "api/vigil-frontend-to-api-ingress": "applied", "web/vigil-frontend-to-api-deny-egress": "absent", "api/vigil-frontend-to-api-deny-ingress": "absent" },
    });
    const egress = fake.object(ref("vigil-frontend-to-api-egress", "web"));
    const ingress = fake.object(ref("vigil-frontend-to-api-ingress", "api"));
    assert.deepEqual(egress?.spec, EGRESS);
    assert.deepEqual(ingress?.spec, INGRESS);
    assert.deepEqual(egress?.metadata.labels, LABELS);
    assert.deepEqual(ingress?.metadata.labels, LABELS);
    assert.equal(fake.objects().length, 2);
  });

  test("read_only keeps the L4 allow (a NetworkPolicy cannot tell reads from writes)", async () => {
    const out = await action().apply(req("read_only"));
    assert.equal(out.verified, true);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-egress", "web"))?.spec, EGRESS);
  });

  test("deny empties both allows: the pods stay isolated and the edge is closed, verified", async () => {
    const a = action();
    await a.apply(req("full_access"));
    const out = await a.apply(req("deny", { previous: "full_access" }));
    assert.equal(out.verified, true);
    assert.equal(fake.objects().length, 2);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-egress", "web"))?.spec, { podSelector: EGRESS.podSelector, policyTypes: ["Egress"] });
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-ingress", "api"))?.spec, { podSelector: INGRESS.podSelector, policyTypes: ["Ingress"] });
    assert.equal((out.detail?.objects as Record<string, string>)["web/vigil-frontend-to-api-egress"], "applied");
    assert.equal((out.detail?.objects as Record<string, string>)["api/vigil-frontend-to-api-ingress"], "applied");
  });

  test("deny never ends the isolation full_access brought: without a namespace default-deny the edge would open", async () => {
    // Pods no NetworkPolicy selects are not isolated: deleting vigil's allows at deny would let the
    // source send anywhere and anyone reach the destination, more than full_access allowed.
    const a = action();
    await a.apply(req("full_access"));
    await a.apply(req("deny", { previous: "full_access" }));
    const egress = fake.objects().filter((o) => (o.spec as { policyTypes?: string[] }).policyTypes?.includes("Egress") && o.metadata.namespace === "web");
    const ingress = fake.objects().filter((o) => (o.spec as { policyTypes?: string[] }).policyTypes?.includes("Ingress") && o.metadata.namespace === "api");
    assert.equal(egress.length, 1, "the source pods are still isolated for egress");
    assert.equal(ingress.length, 1, "the destination pods are still isolated for ingress");
    assert.equal((egress[0]!.spec as { egress?: unknown[] }).egress, undefined, "and allowed nothing");
    assert.equal((ingress[0]!.spec as { ingress?: unknown[] }).ingress, undefined, "and allowed nothing");
  });

  test("default_deny: vigil's own default-deny stays at every level, DNS egress open; the allows come and go", async () => {
    const a = action({ default_deny: true });
    await a.apply(req("deny"));
    assert.deepEqual(
      fake.objects().map((o) => o.metadata.name).sort(),
      ["vigil-frontend-to-api-deny-egress", "vigil-frontend-to-api-deny-ingress", "vigil-frontend-to-api-egress", "vigil-frontend-to-api-ingress"],
    );
    assert.equal((fake.object(ref("vigil-frontend-to-api-egress", "web"))?.spec as { egress?: unknown }).egress, undefined);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-deny-egress", "web"))?.spec, {
      podSelector: { matchLabels: { "app.kubernetes.io/name": "frontend" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }], ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }] }],
    });
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-deny-ingress", "api"))?.spec, { podSelector: { matchLabels: { "app.kubernetes.io/name": "api" } }, policyTypes: ["Ingress"] });
    const up = await a.apply(req("full_access", { previous: "deny" }));
    assert.equal(up.verified, true);
    assert.equal(fake.objects().length, 4);
    // Turning default_deny off removes vigil's default-deny on the next reconcile.
    await action().apply(req("full_access"));
    assert.deepEqual(fake.objects().map((o) => o.metadata.name).sort(), ["vigil-frontend-to-api-egress", "vigil-frontend-to-api-ingress"]);
  });

  test("ingress: false manages only the egress allow (and removes a stale ingress allow)", async () => {
    await action().apply(req("full_access"));
    await action({ ingress: false }).apply(req("full_access"));
    assert.deepEqual(fake.objects().map((o) => o.metadata.name), ["vigil-frontend-to-api-egress"]);
  });

  test("applying twice gives the same end state and changes nothing the second time", async () => {
    const a = action({ default_deny: true });
    await a.apply(req("full_access"));
    const before = fake.objects().map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();
    const out = await a.apply(req("full_access"));
    assert.equal(out.verified, true);
    assert.deepEqual(fake.objects().map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort(), before);
    await a.apply(req("deny"));
    const denied = fake.objects().map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();
    const again = await a.apply(req("deny"));
    assert.equal(again.verified, true);
    assert.deepEqual(fake.objects().map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort(), denied);
    assert.equal(fake.objects().length, 4);
  });

  test("an object of the same name that vigil does not own is neither overwritten nor deleted", async () => {
    const theirs = { apiVersion: NP, kind: "NetworkPolicy", metadata: { name: "vigil-frontend-to-api-egress", namespace: "web", labels: { team: "net" } }, spec: { podSelector: {}, policyTypes: ["Egress"] } };
    fake.put(theirs);
    const r = await attempt(() => action().apply(req("full_access")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof VigilError && r.error.code === "VIGIL_ERR_ACTION_INPUT");
    assert.match((r.error as Error).message, /not labelled app\.kubernetes\.io\/managed-by=vigil/);
    assert.equal(fake.api.handled.filter((q) => q.method === "PATCH").length, 0);
    // deny refuses it the same way, and still neither writes nor deletes it.
    const d = await attempt(() => action().apply(req("deny")));
    assert.equal(d.attempts, 1);
    assert.ok(d.error instanceof VigilError && d.error.code === "VIGIL_ERR_ACTION_INPUT");
    assert.equal(fake.api.handled.filter((q) => q.method === "DELETE").length, 0);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-egress", "web"))?.spec, theirs.spec);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-egress", "web"))?.metadata.labels, theirs.metadata.labels);
  });

  test("the plan makes no request, masks the token, and equals what apply sends (allow)", async () => {
    const a = action({ default_deny: true });
    const plan = a.plan(req("full_access"));
    assert.equal(fake.api.requests.length, 0);
    assert.ok(!JSON.stringify(plan).includes(TOKEN));
    assert.ok(plan.every((p) => p.headers.Authorization === "[REDACTED]"));
    await a.apply(req("full_access"));
    assert.deepEqual(fake.api.handled.map(received), plan.map(planned));
    assert.equal(plan.length, 12);
  });

  test("the plan equals what apply sends (deny, the DELETE's uid read by the GET before it)", async () => {
    const a = action({ ingress: false });
    await a.apply(req("full_access"));
    // A stale ingress allow and default-deny pair from an earlier config, to be deleted.
    await action({ default_deny: true }).apply(req("full_access"));
    const uids = new Map(fake.objects().map((o) => [o.metadata.name, o.metadata.uid]));
    fake.api.clear();
    const plan = a.plan(req("deny"));
    await a.apply(req("deny"));
    const expected = plan.map((p) => {
      const pl = planned(p);
      if (p.method !== "DELETE") return pl;
      const name = new URL(p.url).pathname.split("/").at(-1)!;
      assert.deepEqual(p.body, { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: UID_PLACEHOLDER } });
      return { ...pl, body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: uids.get(name) } } };
    });
    assert.deepEqual(fake.api.handled.map(received), expected);
    assert.deepEqual(plan.map((p) => p.method), ["GET", "DELETE", "GET", "GET", "DELETE", "GET", "GET", "PATCH", "GET", "GET", "DELETE", "GET"]);
  });

  test("429 from API priority and fairness: transient with the Retry-After hint, the retry converges", async () => {
    fake.throttle({ method: "PATCH" }, 2);
    const a = action();
    const r = await attempt(() => a.apply(req("full_access")));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [2000]);
    assert.equal((r.value as { verified?: boolean }).verified, true);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-egress", "web"))?.spec, EGRESS);
  });

  test("403 (RBAC) is permanent: one attempt, the server saw exactly one PATCH", async () => {
    fake.forbid({ method: "PATCH" });
    const r = await attempt(() => action().apply(req("full_access")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError && r.error.status === 403 && !r.error.transient);
    assert.equal(fake.api.requests.filter((q) => q.method === "PATCH").length, 1);
  });

  test("a subject without the namespace attribute is VIGIL_ERR_ACTION_INPUT before any request", async () => {
    const r = req("full_access", { subject: { id: "frontend", kind: "workload", attributes: {} } });
    await assert.rejects(action().apply(r), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT" && /attributes\.namespace/.test(e.message));
    assert.throws(() => action().plan(r), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
    assert.equal(fake.api.requests.length, 0);
  });

  test("a decision without an edge (a perimeter policy) is VIGIL_ERR_ACTION_INPUT", async () => {
    const r = request({ subject: { id: "frontend", kind: "workload", attributes: { namespace: "web" } }, access: "deny" });
    await assert.rejects(action().apply(r), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT" && /communication policies only/.test(e.message));
  });

  test("a selector value the subject renders into an invalid label value is VIGIL_ERR_ACTION_INPUT", async () => {
    const r = req("full_access", { subject: { id: "frontend", kind: "workload", attributes: { namespace: "web", app: "has spaces" } } });
    await assert.rejects(action({ source: { pod_selector: { app: "{{attributes.app}}" } } }).apply(r), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT" && /source\.pod_selector\.app/.test(e.message));
  });

  test("templates: source from the subject, destination {{id}} is the edge's destination, a custom name", async () => {
    const a = action({
      name: "np-{{id}}",
      source: { namespace: "{{labels.ns}}", pod_selector: { app: "{{labels.app}}", tier: "web" } },
      destination: { namespace: "{{id}}-ns", pod_selector: { svc: "{{id}}" } },
    });
    const r = req("full_access", { subject: { id: "frontend", kind: "workload", attributes: {}, labels: { ns: "shop", app: "front" } } });
    const out = await a.apply(r);
    assert.equal(out.verified, true);
    const egress = fake.object(ref("np-frontend-egress", "shop"));
    assert.deepEqual(egress?.spec, {
      podSelector: { matchLabels: { app: "front", tier: "web" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "api-ns" } }, podSelector: { matchLabels: { svc: "api" } } }], ports: [{ protocol: "TCP", port: 443 }] }],
    });
    assert.ok(fake.object(ref("np-frontend-ingress", "api-ns")));
  });

  test("a UDP edge allows UDP; an empty pod selector selects every pod of the namespace", async () => {
    const r = req("full_access", { edge: { source: "frontend", destination: "dns", port: 53, protocol: "udp" } });
    await action({ destination: { namespace: "kube-system", pod_selector: {} }, ingress: false }).apply(r);
    assert.deepEqual(fake.object(ref("vigil-frontend-to-api-egress", "web"))?.spec, {
      podSelector: { matchLabels: { "app.kubernetes.io/name": "frontend" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: {} }], ports: [{ protocol: "UDP", port: 53 }] }],
    });
  });

  test("a long or odd policy name still gives valid, distinct object names and label values", async () => {
    const long = `Payments Team / ${"x".repeat(80)}`;
    const out = await action({ default_deny: true }).apply(req("full_access", { policy: long }));
    assert.equal(out.verified, true);
    for (const o of fake.objects()) {
      assert.ok(o.metadata.name.length <= 63, o.metadata.name);
      assert.match(o.metadata.name, /^vigil-payments-team-x+-[0-9a-f]{8}-(egress|ingress|deny-egress|deny-ingress)$/);
      assert.match(o.metadata.labels![POLICY_LABEL]!, /^[A-Za-z0-9][-A-Za-z0-9_.]{0,61}[A-Za-z0-9]$/);
    }
  });
});

describe("kubernetes:network_policy objects and config", () => {
  test("every object it renders is valid against the official NetworkPolicy schema", () => {
    for (const access of ["full_access", "deny"] as const) {
      const steps = networkPolicySteps(networkPolicyConfigSchema.parse({ default_deny: true }), req(access));
      for (const s of steps) if (s.op === "apply") assert.deepEqual(validateKubeObject(s.object), [], s.object.metadata.name);
    }
  });

  test("order: allows before the default-deny when opening, the default-deny before the allows are emptied when closing", () => {
    const cfg = networkPolicyConfigSchema.parse({ default_deny: true });
    const show = (access: AccessLevel) => networkPolicySteps(cfg, req(access)).map((s) => `${s.op} ${s.op === "apply" ? s.object.metadata.name : s.ref.name}`);
    assert.deepEqual(show("full_access"), ["apply vigil-frontend-to-api-egress", "apply vigil-frontend-to-api-ingress", "apply vigil-frontend-to-api-deny-egress", "apply vigil-frontend-to-api-deny-ingress"]);
    assert.deepEqual(show("deny"), ["apply vigil-frontend-to-api-deny-egress", "apply vigil-frontend-to-api-deny-ingress", "apply vigil-frontend-to-api-egress", "apply vigil-frontend-to-api-ingress"]);
  });

  test("the destination namespace defaults to the source's", () => {
    const [egress] = networkPolicySteps(networkPolicyConfigSchema.parse({}), req("full_access"));
    assert.ok(egress?.op === "apply");
    assert.deepEqual((egress.object.spec as typeof EGRESS).egress[0]!.to[0]!.namespaceSelector, { matchLabels: { "kubernetes.io/metadata.name": "web" } });
  });

  test("factory metadata and the example", () => {
    assert.equal(networkPolicyAction.type, "kubernetes:network_policy");
    assert.equal(networkPolicyAction.provider, "kubernetes");
    assert.equal(networkPolicyAction.reconciles, true);
    assert.equal(networkPolicyAction.revertible, false);
    assert.deepEqual(networkPolicyAction.requiredPermissions, [
      "get networkpolicies.networking.k8s.io",
      "create networkpolicies.networking.k8s.io",
      "patch networkpolicies.networking.k8s.io",
      "delete networkpolicies.networking.k8s.io",
    ]);
    const { type: _t, ...example } = networkPolicyAction.example;
    assert.equal(networkPolicyConfigSchema.safeParse(example).success, true);
    const d = networkPolicyConfigSchema.parse({});
    assert.equal(d.ingress, true);
    assert.equal(d.default_deny, false);
  });

  test("create without a kubernetes provider fails clearly", () => {
    assert.throws(() => networkPolicyAction.create(networkPolicyConfigSchema.parse({}), actionContext(undefined)), /needs a provider of type kubernetes/);
  });

  const bad: [string, Record<string, unknown>][] = [
    ["an invalid label key", { source: { pod_selector: { "bad key": "x" } } }],
    ["a broken template", { source: { namespace: "{{attributes.ns" } }],
    ["an unknown key", { egress: true }],
    ["an unknown endpoint key", { destination: { service: "api" } }],
    ["a non-boolean ingress", { ingress: "yes" }],
    ["an engine key", { type: "kubernetes:network_policy" }],
  ];
  for (const [what, input] of bad) {
    test(`config rejects ${what}`, () => {
      assert.equal(networkPolicyConfigSchema.safeParse(input).success, false);
    });
  }

  test("a custom name that is not a DNS label is VIGIL_ERR_ACTION_INPUT", () => {
    assert.throws(() => networkPolicySteps(networkPolicyConfigSchema.parse({ name: "Bad_Name" }), req("deny")), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
    assert.throws(() => networkPolicySteps(networkPolicyConfigSchema.parse({ name: "x".repeat(51) }), req("deny")), /at most 50/);
  });
});
