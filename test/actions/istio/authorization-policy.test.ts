import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { actions, provider } from "../../../src/actions/istio/index.ts";
import { authorizationPolicyAction } from "../../../src/actions/istio/authorization-policy.ts";
import { istioConfigSchema } from "../../../src/actions/istio/config.ts";
import type { ActionRequest } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import type { KubeClient } from "../../../src/actions/kubernetes/client.ts";
import { UID_PLACEHOLDER } from "../../../src/actions/kubernetes/client.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { MASK } from "../../../src/util/redact.ts";
import type { AccessLevel } from "../../../src/policy/model.ts";
import { actionContext, attempt, request } from "../../helpers/action-context.ts";
import { FakeKubernetes, fakeKubernetesClient } from "../../helpers/fakes/kubernetes.ts";

const TOKEN = "k8s-istio-token-8f2c1d9e7a6b5c4d";
const POLICY = "frontend-to-api";
const EDGE = { source: "frontend", destination: "api", port: 8443, protocol: "https" } as const;
const PRINCIPAL = "cluster.local/ns/web/sa/frontend";
const OWNER = { "app.kubernetes.io/managed-by": "vigil", "vigil.dev/policy": POLICY };
const V = "security.istio.io/v1";
const ref = (kind: string, name: string) => ({ apiVersion: V, kind, namespace: "api", name });
const ALLOW = ref("AuthorizationPolicy", "vigil-frontend-to-api-allow");
const DENY = ref("AuthorizationPolicy", "vigil-frontend-to-api-deny");
const MTLS = ref("PeerAuthentication", "vigil-frontend-to-api-mtls");

function edgeRequest(access: AccessLevel, opts: { edge?: ActionRequest["edge"] | null; identity?: string | null; generation?: number } = {}): ActionRequest {
  const identity = opts.identity === undefined ? "spiffe://cluster.local/ns/web/sa/frontend" : opts.identity;
  return request({
    access,
    policy: POLICY,
    ...(opts.generation ? { generation: opts.generation } : {}),
    subject: { id: "frontend", kind: "workload", ...(identity === null ? {} : { identity }) },
    ...(opts.edge === null ? {} : { edge: opts.edge ?? EDGE }),
  });
}

/** Method, path and query, and body of each call: what a plan and the server's record have in common. */
function shape(calls: { method: string; url: string; body?: unknown }[]): { line: string; body: unknown }[] {
  return calls.map((c) => {
    const u = new URL(c.url, "http://x");
    return { line: `${c.method} ${u.pathname}${u.search}`, body: c.body };
  });
}

function planShape(plan: PlannedCall[]) {
  return shape(plan.map((p) => ({ method: p.method, url: p.url, body: p.body })));
}

describe("istio:authorization_policy against the fake Kubernetes API", () => {
  let fake: FakeKubernetes;
  let client: KubeClient;

  const action = (config: Record<string, unknown> = {}) =>
    authorizationPolicyAction.create(istioConfigSchema.parse({ namespace: "api", selector: { app: "{{id}}" }, ...config }), actionContext(client));
  /** The server's record, with the DELETE preconditions' uid replaced by the plan's placeholder. */
  const sent = () =>
    shape(
      fake.api.handled.map((r) => {
        let body: unknown = r.body ? JSON.parse(r.body) : undefined;
        if (r.method === "DELETE" && body && typeof body === "object") body = { ...body, preconditions: { uid: UID_PLACEHOLDER } };
        return { method: r.method, url: r.url, body };
      }),
    );

  before(async () => {
    fake = new FakeKubernetes({ tokens: [TOKEN] });
    await fake.start();
    client = fakeKubernetesClient(fake).client;
  });
  after(async () => {
    await client.close();
    await fake.stop();
  });
  beforeEach(() => {
    for (const o of fake.objects()) fake.remove({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace });
    fake.api.clear();
  });

  test("index exports the action and no provider of its own", () => {
    assert.equal(provider, undefined);
    assert.deepEqual(actions.map((a) => a.type), ["istio:authorization_policy"]);
    assert.equal(authorizationPolicyAction.reconciles, true);
    assert.equal(authorizationPolicyAction.revertible, false);
    assert.equal(authorizationPolicyAction.provider, "kubernetes");
    const { type, ...example } = authorizationPolicyAction.example;
    assert.equal(type, "istio:authorization_policy");
    assert.ok(istioConfigSchema.safeParse(example).success);
    for (const verb of ["get", "create", "patch", "delete"]) {
      assert.ok(authorizationPolicyAction.requiredPermissions.includes(`${verb} authorizationpolicies.security.istio.io`));
      assert.ok(authorizationPolicyAction.requiredPermissions.includes(`${verb} peerauthentications.security.istio.io`));
    }
  });

  test("full → read_only → deny → full: the objects at the API server follow, verified each time", async () => {
    const a = action({ peer_authentication: "STRICT" });
    const principals = [PRINCIPAL];

    let out = await a.apply(edgeRequest("full_access"));
    assert.equal(out.verified, true);
    assert.deepEqual(fake.object(MTLS)?.spec, { selector: { matchLabels: { app: "api" } }, mtls: { mode: "STRICT" } });
    let allow = fake.object(ALLOW)!;
    assert.deepEqual(allow.metadata.labels, OWNER);
    assert.deepEqual(allow.spec, { selector: { matchLabels: { app: "api" } }, action: "ALLOW", rules: [{ from: [{ source: { principals } }], to: [{ operation: { ports: ["8443"] } }] }] });
    assert.equal(fake.object(DENY), undefined);

    out = await a.apply(edgeRequest("read_only", { generation: 3 }));
    assert.equal(out.verified, true);
    allow = fake.object(ALLOW)!;
    assert.deepEqual((allow.spec as { rules: unknown }).rules, [{ from: [{ source: { principals } }], to: [{ operation: { ports: ["8443"], methods: ["GET", "HEAD", "OPTIONS"] } }] }]);
    const deny = fake.object(DENY)!;
    assert.equal((deny.spec as { action: string }).action, "DENY");
    assert.deepEqual((deny.spec as { rules: unknown }).rules, [{ from: [{ source: { principals } }], to: [{ operation: { ports: ["8443"], notMethods: ["GET", "HEAD", "OPTIONS"] } }] }]);

    fake.api.clear();
    out = await a.apply(edgeRequest("deny", { generation: 4 }));
    assert.equal(out.verified, true);
    // vigil's ALLOW stays, emptied: it matches nothing, and the workload stays deny-by-default.
    assert.deepEqual(fake.object(ALLOW)!.spec, { selector: { matchLabels: { app: "api" } }, action: "ALLOW", rules: [] });
    // The narrowed DENY became a DENY of everything on the port: notMethods is gone.
    assert.deepEqual((fake.object(DENY)!.spec as { rules: unknown }).rules, [{ from: [{ source: { principals } }], to: [{ operation: { ports: ["8443"] } }] }]);
    // Never more open: the DENY was written before the ALLOW was emptied.
    const lines = fake.api.lines();
    const denyPatch = lines.findIndex((l) => l.startsWith("PATCH") && l.includes("/vigil-frontend-to-api-deny"));
    const allowPatch = lines.findIndex((l) => l.startsWith("PATCH") && l.includes("/vigil-frontend-to-api-allow"));
    assert.ok(denyPatch >= 0 && allowPatch > denyPatch, lines.join("\n"));
    assert.equal(lines.filter((l) => l.startsWith("DELETE")).length, 0, lines.join("\n"));

    fake.api.clear();
    out = await a.apply(edgeRequest("full_access", { generation: 5 }));
    assert.equal(out.verified, true);
    assert.equal(fake.object(DENY), undefined);
    assert.deepEqual((fake.object(ALLOW)!.spec as { rules: unknown }).rules, [{ from: [{ source: { principals } }], to: [{ operation: { ports: ["8443"] } }] }]);
    const restore = fake.api.lines();
    assert.ok(restore.findIndex((l) => l.startsWith("PATCH") && l.includes("-allow")) < restore.findIndex((l) => l.startsWith("DELETE") && l.includes("-deny")), "ALLOW applied before the DENY is removed");
    assert.deepEqual(out.detail, {
      access: "full_access",
      enforced: "full_access",
      objects: {
        "PeerAuthentication api/vigil-frontend-to-api-mtls": "applied",
        "AuthorizationPolicy api/vigil-frontend-to-api-allow": "applied",
        "AuthorizationPolicy api/vigil-frontend-to-api-deny": "deleted",
      },
    });
  });

  test("deny never leaves the destination without vigil's ALLOW, so other callers and other ports stay closed", async () => {
    // Istio allows every request no DENY refuses once no ALLOW policy selects the workload: deleting
    // vigil's only ALLOW would open the destination to everyone, and to the denied source on other ports.
    const a = action();
    await a.apply(edgeRequest("full_access"));
    await a.apply(edgeRequest("deny", { generation: 3 }));
    const allows = fake.objects().filter((o) => o.kind === "AuthorizationPolicy" && (o.spec as { action?: string }).action === "ALLOW");
    assert.equal(allows.length, 1, "an ALLOW policy still selects the destination");
    assert.deepEqual((allows[0]!.spec as { rules: unknown }).rules, [], "and it matches nothing");
    // From nothing (a first decision of deny) the same holds.
    for (const o of fake.objects()) fake.remove({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace });
    const out = await a.apply(edgeRequest("deny"));
    assert.equal(out.verified, true);
    assert.deepEqual((fake.object(ALLOW)!.spec as { rules: unknown }).rules, []);
  });

  test("applying the same level again changes nothing and is verified", async () => {
    const a = action();
    await a.apply(edgeRequest("deny"));
    const before = fake.object(DENY)!;
    const allowBefore = fake.object(ALLOW)!;
    fake.api.clear();
    const out = await a.apply(edgeRequest("deny"));
    assert.equal(out.verified, true);
    const again = fake.object(DENY)!;
    assert.equal(again.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal(again.metadata.uid, before.metadata.uid);
    assert.equal(fake.api.handled.filter((r) => r.method === "DELETE").length, 0, "nothing left to delete");
    assert.equal(fake.object(ALLOW)!.metadata.resourceVersion, allowBefore.metadata.resourceVersion, "the emptied ALLOW is unchanged too");
    assert.deepEqual((out.detail as { objects: unknown }).objects, {
      "PeerAuthentication api/vigil-frontend-to-api-mtls": "absent",
      "AuthorizationPolicy api/vigil-frontend-to-api-deny": "applied",
      "AuthorizationPolicy api/vigil-frontend-to-api-allow": "applied",
    });
  });

  test("the plan is exactly what apply sends (objects to delete present)", async () => {
    const a = action({ peer_authentication: "STRICT" });
    await a.apply(edgeRequest("full_access"));
    fake.api.clear();
    const req = edgeRequest("deny", { generation: 3 });
    const plan = a.plan(req);
    assert.equal(fake.api.requests.length, 0, "planning sends nothing");
    await a.apply(req);
    assert.deepEqual(sent(), planShape(plan));
    // The applied objects are the JSON bodies of the apply calls.
    const patch = plan.find((p) => p.method === "PATCH" && p.url.includes("-deny"))!;
    assert.deepEqual(Object.keys(patch.body as object), ["apiVersion", "kind", "metadata", "spec"]);
    assert.match(patch.url, /\?fieldManager=vigil&force=true$/);
    assert.equal(patch.headers["Content-Type"], "application/apply-patch+yaml");
  });

  test("from nothing, the plan's DELETEs of absent objects are the only calls not sent", async () => {
    const a = action();
    const req = edgeRequest("full_access");
    const plan = a.plan(req);
    await a.apply(req);
    const expected = planShape(plan).filter((c) => !c.line.startsWith("DELETE"));
    assert.deepEqual(sent(), expected);
    assert.equal(plan.filter((p) => p.method === "DELETE").length, 2, "the PeerAuthentication and the DENY");
  });

  test("dry run: plan() sends nothing, masks the token and lists SSA/GET/DELETE per level", () => {
    const a = action();
    for (const level of ["full_access", "read_only", "deny"] as const) {
      const plan = a.plan(edgeRequest(level));
      assert.ok(plan.length > 0);
      assert.ok(!JSON.stringify(plan).includes(TOKEN));
      for (const p of plan) assert.equal(p.headers.Authorization, MASK);
      // Every level deletes something (the PeerAuthentication without STRICT, the ALLOW or the DENY).
      assert.deepEqual([...new Set(plan.map((p) => p.method))].sort(), ["DELETE", "GET", "PATCH"]);
    }
    assert.equal(fake.api.requests.length, 0);
  });

  test("429 is retried by the queue with the server's hint; the end state is right", async () => {
    const a = action();
    fake.throttle({ method: "PATCH" }, 3);
    const r = await attempt(() => a.apply(edgeRequest("deny")));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [3000]);
    assert.equal(r.value?.verified, true);
    assert.equal((fake.object(DENY)!.spec as { action: string }).action, "DENY");
  });

  test("403 is permanent: one attempt, one request of that kind", async () => {
    const a = action();
    fake.forbid({ method: "PATCH" });
    const r = await attempt(() => a.apply(edgeRequest("deny")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal((r.error as UpstreamError).code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.equal((r.error as UpstreamError).status, 403);
    assert.equal(fake.api.requests.filter((q) => q.method === "PATCH").length, 1);
    assert.equal(fake.object(DENY), undefined);
  });

  test("read_only on a tcp edge enforces the fallback and says so", async () => {
    const tcp = { ...EDGE, protocol: "tcp", port: 5432 };
    let out = await action().apply(edgeRequest("read_only", { edge: tcp }));
    assert.equal(out.verified, true);
    assert.equal((out.detail as { enforced: string }).enforced, "deny");
    assert.match(String((out.detail as { note: string }).note), /read_only_fallback/);
    assert.deepEqual((fake.object(DENY)!.spec as { rules: unknown }).rules, [{ from: [{ source: { principals: [PRINCIPAL] } }], to: [{ operation: { ports: ["5432"] } }] }]);
    out = await action({ read_only_fallback: "full_access" }).apply(edgeRequest("read_only", { edge: tcp }));
    assert.equal((out.detail as { enforced: string }).enforced, "full_access");
    assert.equal(fake.object(DENY), undefined);
    assert.ok(fake.object(ALLOW));
  });

  test("target_ref and an explicit principal template", async () => {
    const a = authorizationPolicyAction.create(
      istioConfigSchema.parse({ namespace: "api", target_ref: { kind: "Service", name: "{{id}}" }, source_principal: "spiffe://prod.example/ns/web/sa/{{id}}", port: 9090 }),
      actionContext(client),
    );
    const out = await a.apply(edgeRequest("full_access", { identity: null }));
    assert.equal(out.verified, true);
    assert.deepEqual(fake.object(ALLOW)!.spec, {
      targetRef: { group: "", kind: "Service", name: "api" },
      action: "ALLOW",
      rules: [{ from: [{ source: { principals: ["prod.example/ns/web/sa/frontend"] } }], to: [{ operation: { ports: ["9090"] } }] }],
    });
  });

  test("an object of the same name that vigil does not own is neither overwritten nor deleted", async () => {
    fake.put({ apiVersion: V, kind: "AuthorizationPolicy", metadata: { name: ALLOW.name, namespace: "api", labels: { team: "platform" } }, spec: { action: "ALLOW" } });
    const r = await attempt(() => action().apply(edgeRequest("full_access")));
    assert.equal(r.attempts, 1);
    assert.equal((r.error as VigilError).code, "VIGIL_ERR_ACTION_INPUT");
    assert.deepEqual(fake.object(ALLOW)!.metadata.labels, { team: "platform" });
    // deny writes its DENY, then refuses to touch the operator's ALLOW, and says so.
    const d = await attempt(() => action().apply(edgeRequest("deny")));
    assert.equal(d.attempts, 1);
    assert.equal((d.error as VigilError).code, "VIGIL_ERR_ACTION_INPUT");
    assert.equal((fake.object(DENY)!.spec as { action: string }).action, "DENY");
    assert.deepEqual(fake.object(ALLOW)!.metadata.labels, { team: "platform" });
    assert.deepEqual(fake.object(ALLOW)!.spec, { action: "ALLOW" });
    assert.equal(fake.api.requests.filter((q) => q.method === "DELETE").length, 0);
  });

  test("missing inputs are permanent input errors, before any call", async () => {
    const cases: [ActionRequest, RegExp][] = [
      [edgeRequest("deny", { identity: null }), /has no identity/],
      [edgeRequest("deny", { identity: "frontend@example.org" }), /not a SPIFFE ID/],
      [edgeRequest("deny", { edge: null }), /communication policies only/],
    ];
    for (const [req, message] of cases) {
      const r = await attempt(() => action().apply(req));
      assert.equal(r.attempts, 1);
      assert.equal((r.error as VigilError).code, "VIGIL_ERR_ACTION_INPUT");
      assert.match((r.error as Error).message, message);
      assert.throws(() => action().plan(req), message);
    }
    const wildcard = authorizationPolicyAction.create(istioConfigSchema.parse({ namespace: "api", source_principal: "{{attributes.p}}" }), actionContext(client));
    const req = request({ access: "deny", policy: POLICY, subject: { id: "frontend", kind: "workload", attributes: { p: "*" } }, edge: EDGE });
    assert.throws(() => wildcard.plan(req), /no wildcards/);
    const badNs = authorizationPolicyAction.create(istioConfigSchema.parse({ namespace: "Api_NS" }), actionContext(client));
    assert.throws(() => badNs.plan(edgeRequest("deny")), /not a namespace name/);
    assert.equal(fake.api.requests.length, 0);
  });

  test("config validation", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{}, /namespace/],
      [{ namespace: "api", selector: { app: "api" }, target_ref: { kind: "Service", name: "api" } }, /not both/],
      [{ namespace: "api", target_ref: { kind: "Service", name: "api" }, peer_authentication: "STRICT" }, /STRICT needs a selector/],
      [{ namespace: "api", peer_authentication: "PERMISSIVE" }, /peer_authentication/],
      [{ namespace: "api", name_prefix: "Vigil" }, /name_prefix/],
      [{ namespace: "api", extra: 1 }, /extra/],
      [{ namespace: "{{nope}}" }, /unknown placeholder/],
      [{ namespace: "{{attributes.ns}}" }, /only \{\{id\}\}/],
      [{ namespace: "api", selector: { app: "{{labels.app}}" } }, /only \{\{id\}\}/],
    ];
    for (const [config, message] of bad) {
      const r = istioConfigSchema.safeParse(config);
      assert.equal(r.success, false, JSON.stringify(config));
      assert.match(JSON.stringify(r.error?.issues), message);
    }
    assert.deepEqual(istioConfigSchema.parse({ namespace: "api" }), { namespace: "api", peer_authentication: "none", read_only_fallback: "deny", name_prefix: "vigil" });
  });

  test("without a kubernetes provider the action says so at creation", () => {
    assert.throws(() => authorizationPolicyAction.create(istioConfigSchema.parse({ namespace: "api" }), actionContext(undefined)), /provider of type kubernetes/);
  });
});
