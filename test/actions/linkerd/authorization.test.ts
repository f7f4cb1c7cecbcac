import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { actions, provider } from "../../../src/actions/linkerd/index.ts";
import { authorizationAction } from "../../../src/actions/linkerd/authorization.ts";
import { linkerdConfigSchema } from "../../../src/actions/linkerd/config.ts";
import type { ActionRequest } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import type { KubeClient } from "../../../src/actions/kubernetes/client.ts";
import { UID_PLACEHOLDER } from "../../../src/actions/kubernetes/client.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { MASK } from "../../../src/util/redact.ts";
import type { AccessLevel } from "../../../src/policy/model.ts";
import { actionContext, attempt, request } from "../../helpers/action-context.ts";
import { FakeKubernetes, fakeKubernetesClient } from "../../helpers/fakes/kubernetes.ts";

const TOKEN = "k8s-linkerd-token-3e4f5a6b7c8d9e0f";
const POLICY = "books-to-authors";
const EDGE = { source: "books", destination: "authors", port: 7001, protocol: "http" } as const;
const OWNER = { "app.kubernetes.io/managed-by": "vigil", "vigil.dev/policy": POLICY };
const G = "policy.linkerd.io";
const ref = (apiVersion: string, kind: string, name: string) => ({ apiVersion: `${G}/${apiVersion}`, kind, namespace: "booksapp", name });
const P = "vigil-books-to-authors";
const SERVER = ref("v1beta3", "Server", `${P}-server`);
const AUTHN = ref("v1alpha1", "MeshTLSAuthentication", `${P}-client`);
const FULL = ref("v1alpha1", "AuthorizationPolicy", `${P}-full`);
const ROUTE = ref("v1beta3", "HTTPRoute", `${P}-safe-methods`);
const READ = ref("v1alpha1", "AuthorizationPolicy", `${P}-read-only`);
const AUTHN_REFS = [{ group: G, kind: "MeshTLSAuthentication", name: `${P}-client` }];

function edgeRequest(access: AccessLevel, opts: { edge?: ActionRequest["edge"] | null; identity?: string | null; generation?: number } = {}): ActionRequest {
  const identity = opts.identity === undefined ? "spiffe://cluster.local/ns/booksapp/sa/books" : opts.identity;
  return request({
    access,
    policy: POLICY,
    ...(opts.generation ? { generation: opts.generation } : {}),
    subject: { id: "books", kind: "workload", ...(identity === null ? {} : { identity }) },
    ...(opts.edge === null ? {} : { edge: opts.edge ?? EDGE }),
  });
}

function shape(calls: { method: string; url: string; body?: unknown }[]): { line: string; body: unknown }[] {
  return calls.map((c) => {
    const u = new URL(c.url, "http://x");
    return { line: `${c.method} ${u.pathname}${u.search}`, body: c.body };
  });
}

const planShape = (plan: PlannedCall[]) => shape(plan.map((p) => ({ method: p.method, url: p.url, body: p.body })));

describe("linkerd:authorization against the fake Kubernetes API", () => {
  let fake: FakeKubernetes;
  let client: KubeClient;

  const action = (config: Record<string, unknown> = {}) =>
    authorizationAction.create(linkerdConfigSchema.parse({ namespace: "booksapp", selector: { app: "{{id}}" }, ...config }), actionContext(client));
  const sent = () =>
    shape(
      fake.api.handled.map((r) => {
        let body: unknown = r.body ? JSON.parse(r.body) : undefined;
        if (r.method === "DELETE" && body && typeof body === "object") body = { ...body, preconditions: { uid: UID_PLACEHOLDER } };
        return { method: r.method, url: r.url, body };
      }),
    );
  /** Which of vigil's objects exist at the server. */
  const present = () => [SERVER, AUTHN, FULL, ROUTE, READ].filter((r) => fake.object(r) !== undefined).map((r) => r.name);

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
    assert.deepEqual(actions.map((a) => a.type), ["linkerd:authorization"]);
    assert.equal(authorizationAction.reconciles, true);
    assert.equal(authorizationAction.revertible, false);
    assert.equal(authorizationAction.provider, "kubernetes");
    const { type, ...example } = authorizationAction.example;
    assert.equal(type, "linkerd:authorization");
    assert.ok(linkerdConfigSchema.safeParse(example).success);
    for (const r of ["servers", "meshtlsauthentications", "authorizationpolicies", "httproutes"]) {
      for (const verb of ["get", "create", "patch", "delete"]) assert.ok(authorizationAction.requiredPermissions.includes(`${verb} ${r}.policy.linkerd.io`), `${verb} ${r}`);
    }
  });

  test("full → read_only → deny → full: the objects at the API server follow, verified each time", async () => {
    const a = action();

    let out = await a.apply(edgeRequest("full_access"));
    assert.equal(out.verified, true);
    assert.deepEqual(present(), [SERVER.name, AUTHN.name, FULL.name]);
    const server = fake.object(SERVER)!;
    assert.deepEqual(server.metadata.labels, OWNER);
    assert.deepEqual(server.spec, { podSelector: { matchLabels: { app: "authors" } }, port: 7001, accessPolicy: "deny" });
    assert.deepEqual(fake.object(AUTHN)!.spec, { identityRefs: [{ kind: "ServiceAccount", name: "books", namespace: "booksapp" }] });
    assert.deepEqual(fake.object(FULL)!.spec, { targetRef: { group: G, kind: "Server", name: SERVER.name }, requiredAuthenticationRefs: AUTHN_REFS });

    fake.api.clear();
    out = await a.apply(edgeRequest("read_only", { generation: 3 }));
    assert.equal(out.verified, true);
    assert.deepEqual(present(), [SERVER.name, AUTHN.name, ROUTE.name, READ.name]);
    assert.deepEqual(fake.object(ROUTE)!.spec, {
      parentRefs: [{ group: G, kind: "Server", name: SERVER.name }],
      rules: [{ matches: ["GET", "HEAD", "OPTIONS"].map((method) => ({ path: { type: "PathPrefix", value: "/" }, method })) }],
    });
    assert.deepEqual(fake.object(READ)!.spec, { targetRef: { group: G, kind: "HTTPRoute", name: ROUTE.name }, requiredAuthenticationRefs: AUTHN_REFS });
    // Never more open: the route's authorization exists before the Server-wide one goes.
    let lines = fake.api.lines();
    assert.ok(lines.findIndex((l) => l.startsWith("PATCH") && l.endsWith(`/${READ.name}?fieldManager=vigil&force=true`)) < lines.findIndex((l) => l.startsWith("DELETE") && l.includes(`/${FULL.name}`)));

    fake.api.clear();
    out = await a.apply(edgeRequest("deny", { generation: 4 }));
    assert.equal(out.verified, true);
    assert.deepEqual(present(), [SERVER.name], "only the Server stays");
    lines = fake.api.lines().filter((l) => l.startsWith("DELETE"));
    assert.deepEqual(
      lines.map((l) => l.split("/").pop()),
      [READ.name, ROUTE.name, AUTHN.name],
      "authorizations go before what they refer to",
    );

    out = await a.apply(edgeRequest("full_access", { generation: 5 }));
    assert.equal(out.verified, true);
    assert.deepEqual(present(), [SERVER.name, AUTHN.name, FULL.name]);
    assert.deepEqual(out.detail, {
      access: "full_access",
      enforced: "full_access",
      objects: {
        [`Server booksapp/${SERVER.name}`]: "applied",
        [`MeshTLSAuthentication booksapp/${AUTHN.name}`]: "applied",
        [`AuthorizationPolicy booksapp/${FULL.name}`]: "applied",
        [`AuthorizationPolicy booksapp/${READ.name}`]: "absent",
        [`HTTPRoute booksapp/${ROUTE.name}`]: "absent",
      },
    });
  });

  test("applying the same level again changes nothing and is verified", async () => {
    const a = action();
    await a.apply(edgeRequest("read_only"));
    const versions = [SERVER, AUTHN, ROUTE, READ].map((r) => fake.object(r)!.metadata.resourceVersion);
    fake.api.clear();
    const out = await a.apply(edgeRequest("read_only"));
    assert.equal(out.verified, true);
    assert.deepEqual([SERVER, AUTHN, ROUTE, READ].map((r) => fake.object(r)!.metadata.resourceVersion), versions);
    assert.equal(fake.api.handled.filter((r) => r.method === "DELETE").length, 0);
  });

  test("the plan is exactly what apply sends (objects to delete present)", async () => {
    const a = action();
    await a.apply(edgeRequest("read_only"));
    fake.api.clear();
    // read_only → full deletes the route and its authorization, both present.
    const req = edgeRequest("full_access", { generation: 3 });
    const plan = a.plan(req);
    assert.equal(fake.api.requests.length, 0, "planning sends nothing");
    await a.apply(req);
    assert.deepEqual(sent(), planShape(plan));
    const server = plan.find((p) => p.method === "PATCH" && p.url.includes("/servers/"))!;
    assert.deepEqual(server.body, {
      apiVersion: `${G}/v1beta3`,
      kind: "Server",
      metadata: { name: SERVER.name, namespace: "booksapp", labels: OWNER },
      spec: { podSelector: { matchLabels: { app: "authors" } }, port: 7001, accessPolicy: "deny" },
    });
  });

  test("from nothing, the plan's DELETEs of absent objects are the only calls not sent", async () => {
    const a = action();
    const req = edgeRequest("deny");
    const plan = a.plan(req);
    await a.apply(req);
    assert.deepEqual(sent(), planShape(plan).filter((c) => !c.line.startsWith("DELETE")));
    assert.equal(plan.filter((p) => p.method === "DELETE").length, 4);
  });

  test("dry run: plan() sends nothing and masks the token", () => {
    const a = action();
    for (const level of ["full_access", "read_only", "deny"] as const) {
      const plan = a.plan(edgeRequest(level));
      assert.ok(!JSON.stringify(plan).includes(TOKEN));
      for (const p of plan) assert.equal(p.headers.Authorization, MASK);
      assert.ok(plan.some((p) => p.method === "PATCH" && p.url.includes("/servers/")), "the Server is applied at every level");
    }
    assert.equal(fake.api.requests.length, 0);
  });

  test("429 is retried by the queue with the server's hint; the end state is right", async () => {
    const a = action();
    fake.throttle({ method: "PATCH", path: /httproutes/ }, 2);
    const r = await attempt(() => a.apply(edgeRequest("read_only")));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [2000]);
    assert.equal(r.value?.verified, true);
    assert.deepEqual(present(), [SERVER.name, AUTHN.name, ROUTE.name, READ.name]);
  });

  test("403 is permanent: one attempt, one request of that kind", async () => {
    const a = action();
    fake.forbid({ method: "PATCH", path: /servers/ });
    const r = await attempt(() => a.apply(edgeRequest("full_access")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal((r.error as UpstreamError).code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.equal(fake.api.requests.filter((q) => q.method === "PATCH").length, 1);
    assert.deepEqual(present(), []);
  });

  test("an operator's Server is read back, never written or deleted", async () => {
    fake.put({ apiVersion: `${G}/v1beta3`, kind: "Server", metadata: { name: "authors-server", namespace: "booksapp" }, spec: { podSelector: { matchLabels: { app: "authors" } }, port: "service" } });
    const before = fake.object({ ...SERVER, name: "authors-server" })!;
    const a = action({ server: "{{id}}-server" });
    let out = await a.apply(edgeRequest("read_only"));
    assert.equal(out.verified, true);
    assert.equal(fake.object(SERVER), undefined, "no vigil Server");
    assert.equal((fake.object(ROUTE)!.spec as { parentRefs: { name: string }[] }).parentRefs[0]!.name, "authors-server");
    out = await a.apply(edgeRequest("deny"));
    assert.equal(out.verified, true);
    assert.equal(fake.object({ ...SERVER, name: "authors-server" })!.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal(fake.api.handled.filter((r) => r.url.includes("/servers/") && r.method !== "GET").length, 0);
    // Gone Server: the authorizations are written, but the outcome is not verified.
    fake.remove({ ...SERVER, name: "authors-server" });
    out = await a.apply(edgeRequest("full_access"));
    assert.equal(out.verified, false);
    assert.deepEqual((out.detail as { unverified: string[] }).unverified, ["Server booksapp/authors-server"]);
  });

  test("source identity: a literal identity, or the ServiceAccount from templates", async () => {
    await action({ source_identity: "{{id}}.booksapp.serviceaccount.identity.linkerd.cluster.local" }).apply(edgeRequest("full_access", { identity: null }));
    assert.deepEqual(fake.object(AUTHN)!.spec, { identities: ["books.booksapp.serviceaccount.identity.linkerd.cluster.local"] });
    await action({ source_service_account: "{{id}}", source_namespace: "{{attributes.ns}}" }).apply(
      request({ access: "full_access", policy: POLICY, subject: { id: "books", kind: "workload", attributes: { ns: "shop" } }, edge: EDGE }),
    );
    // The apply replaced the list: identities gone, identityRefs there.
    assert.deepEqual(fake.object(AUTHN)!.spec, { identityRefs: [{ kind: "ServiceAccount", name: "books", namespace: "shop" }] });
  });

  test("read_only on an opaque edge enforces the fallback", async () => {
    const out = await action().apply(edgeRequest("read_only", { edge: { ...EDGE, protocol: "tcp" } }));
    assert.equal((out.detail as { enforced: string }).enforced, "deny");
    assert.deepEqual(present(), [SERVER.name]);
  });

  test("missing inputs are permanent input errors, before any call", async () => {
    const cases: [ActionRequest, RegExp][] = [
      [edgeRequest("deny", { identity: null }), /has no identity/],
      [edgeRequest("deny", { identity: "spiffe://cluster.local/workload/books" }), /not of the form/],
      [edgeRequest("deny", { edge: null }), /communication policies only/],
      [edgeRequest("deny", { edge: { source: "books", destination: "authors" } }), /no port/],
    ];
    for (const [req, message] of cases) {
      const r = await attempt(() => action().apply(req));
      assert.equal(r.attempts, 1);
      assert.equal((r.error as VigilError).code, "VIGIL_ERR_ACTION_INPUT");
      assert.match((r.error as Error).message, message);
    }
    assert.throws(() => action({ source_identity: "*.booksapp.serviceaccount.identity.linkerd.cluster.local" }).plan(edgeRequest("deny")), /no wildcards/);
    assert.equal(fake.api.requests.length, 0);
  });

  test("config validation", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ namespace: "booksapp" }, /selector/],
      [{ namespace: "booksapp", selector: {} }, /at least one label/],
      [{ namespace: "booksapp", selector: { app: "a" }, source_identity: "x", source_namespace: "y" }, /not both/],
      [{ namespace: "booksapp", selector: { app: "a" }, server: "s", access_policy: "audit" }, /configure your Server yourself/],
      [{ namespace: "booksapp", selector: { app: "a" }, access_policy: "allow" }, /access_policy/],
      [{ namespace: "booksapp", selector: { app: "a" }, port: "Not_A_Port" }, /port/],
      [{ namespace: "booksapp", selector: { app: "a" }, server: "{{attributes.server}}" }, /only \{\{id\}\}/],
    ];
    for (const [config, message] of bad) {
      const r = linkerdConfigSchema.safeParse(config);
      assert.equal(r.success, false, JSON.stringify(config));
      assert.match(JSON.stringify(r.error?.issues), message);
    }
    assert.deepEqual(linkerdConfigSchema.parse({ namespace: "booksapp", selector: { app: "authors" } }), {
      namespace: "booksapp",
      selector: { app: "authors" },
      access_policy: "deny",
      read_only_fallback: "deny",
      name_prefix: "vigil",
    });
  });
});
