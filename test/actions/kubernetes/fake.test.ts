// The fake API server is only worth testing against if it refuses what a real one refuses.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeKubernetes, lookupSchema, pluralise, registerSchema, registeredKinds, validateKubeObject } from "../../helpers/fakes/kubernetes.ts";

const TOKEN = "fake-contract-token";
const PATH = "/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/p";
const NP = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "p", namespace: "web" }, spec: { podSelector: {}, policyTypes: ["Ingress"] } };

describe("fake Kubernetes API server contract", () => {
  const fake = new FakeKubernetes({ tokens: [TOKEN] });
  before(async () => {
    await fake.start();
  });
  after(async () => {
    await fake.stop();
  });
  beforeEach(() => {
    fake.remove({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", name: "p", namespace: "web" });
  });

  async function call(method: string, path: string, init: { body?: unknown; type?: string; token?: string | null } = {}) {
    const headers: Record<string, string> = {};
    if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
    if (init.type) headers["content-type"] = init.type;
    const res = await fetch(`${fake.base}${path}`, { method, headers, ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
  }
  const apply = (body: unknown, query = "?fieldManager=vigil&force=true", type = "application/apply-patch+yaml", path = PATH) => call("PATCH", `${path}${query}`, { body, type });

  test("no or a wrong bearer token is 401 Unauthorized", async () => {
    for (const token of [null, "nope"]) {
      const r = await call("GET", PATH, { token });
      assert.equal(r.status, 401);
      assert.equal(r.body.kind, "Status");
      assert.equal(r.body.reason, "Unauthorized");
    }
  });

  test("apply creates with 201 and server fields, then 200; an unchanged apply keeps the resourceVersion", async () => {
    const c = await apply(NP);
    assert.equal(c.status, 201);
    assert.match(c.body.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(c.body.metadata.generation, 1);
    assert.match(c.body.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const again = await apply(NP);
    assert.equal(again.status, 200);
    assert.equal(again.body.metadata.resourceVersion, c.body.metadata.resourceVersion);
    const changed = await apply({ ...NP, spec: { podSelector: { matchLabels: { a: "b" } }, policyTypes: ["Ingress"] } });
    assert.notEqual(changed.body.metadata.resourceVersion, c.body.metadata.resourceVersion);
    assert.equal(changed.body.metadata.generation, 2);
  });

  test("YAML bodies are accepted (JSON is YAML, YAML too)", async () => {
    const yaml = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n";
    const r = await apply(yaml);
    assert.equal(r.status, 201);
    assert.equal(r.body.metadata.namespace, "web");
    assert.deepEqual(r.body.spec.policyTypes, ["Ingress"], "defaulted as the API server does");
  });

  test("a merge patch is 415; only server-side apply is served", async () => {
    const r = await apply(NP, "?fieldManager=vigil", "application/merge-patch+json");
    assert.equal(r.status, 415);
    assert.equal(r.body.reason, "UnsupportedMediaType");
  });

  test("apply without fieldManager is 400", async () => {
    const r = await apply(NP, "?force=true");
    assert.equal(r.status, 400);
    assert.match(r.body.message, /fieldManager is required/);
  });

  test("a body that does not match the URL is 400", async () => {
    for (const [body, re] of [
      [{ ...NP, metadata: { name: "other" } }, /name of the object \(other\) does not match the name on the URL \(p\)/],
      [{ ...NP, metadata: { name: "p", namespace: "elsewhere" } }, /namespace of the provided object does not match/],
      [{ ...NP, kind: "Ingress" }, /kind in the data \(Ingress\)/],
      [{ ...NP, apiVersion: "networking.k8s.io/v1beta1" }, /API version in the data/],
      [{ ...NP, metadata: { name: "p", managedFields: [] } }, /managedFields must be nil/],
    ] as const) {
      const r = await apply(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.message, re);
    }
  });

  test("an object its schema refuses is 422 Invalid with every cause", async () => {
    const r = await apply({ ...NP, metadata: { name: "p", labels: { "x/y/z": "ok", good: "not ok!" } }, spec: { policyTypes: "Ingress", ingress: [{ ports: [{ port: 1.5 }] }], extra: 1 } });
    assert.equal(r.status, 422);
    assert.equal(r.body.reason, "Invalid");
    assert.match(r.body.message, /^NetworkPolicy\.networking\.k8s\.io "p" is invalid: \[/);
    const fields = (r.body.details.causes as { field: string }[]).map((c) => c.field).sort();
    assert.deepEqual(fields, ["metadata.labels", "metadata.labels", "spec.extra", "spec.ingress[0].ports[0].port", "spec.podSelector", "spec.policyTypes"]);
  });

  test("label selectors are checked like labels", async () => {
    const r = await apply({ ...NP, spec: { podSelector: { matchLabels: { app: "two words" } } } });
    assert.equal(r.status, 422);
    assert.equal(r.body.details.causes[0].field, "spec.podSelector.matchLabels");
  });

  test("without force, changing fields another manager applied is 409 FieldManagerConflict", async () => {
    fake.put(NP, "kubectl");
    const changed = { ...NP, spec: { podSelector: { matchLabels: { a: "b" } }, policyTypes: ["Egress"] } };
    const r = await apply(changed, "?fieldManager=vigil");
    assert.equal(r.status, 409);
    assert.equal(r.body.details.causes[0].reason, "FieldManagerConflict");
    assert.equal((await apply(changed, "?fieldManager=vigil&force=true")).status, 200);
  });

  test("the same manager's dropped fields are removed; other managers' labels stay", async () => {
    fake.put({ ...NP, metadata: { name: "p", namespace: "web", labels: { team: "net" } } }, "kubectl");
    await apply({ ...NP, metadata: { name: "p", labels: { mine: "1", extra: "2" } } });
    const r = await apply({ ...NP, metadata: { name: "p", labels: { mine: "1" } } });
    assert.deepEqual(r.body.metadata.labels, { team: "net", mine: "1" });
  });

  test("GET of a missing object is 404 NotFound naming it; an unserved resource is 404 without a name", async () => {
    const r = await call("GET", PATH);
    assert.equal(r.status, 404);
    assert.deepEqual(r.body.details, { name: "p", group: "networking.k8s.io", kind: "networkpolicies" });
    const u = await call("GET", "/apis/example.com/v1/namespaces/web/widgets/w");
    assert.equal(u.status, 404);
    assert.equal(u.body.message, "the server could not find the requested resource");
    assert.deepEqual(u.body.details, {});
  });

  test("DELETE enforces the uid precondition (409), answers 404 when absent, 200 Success otherwise", async () => {
    const created = (await apply(NP)).body;
    const wrong = await call("DELETE", PATH, { type: "application/json", body: { kind: "DeleteOptions", apiVersion: "v1", preconditions: { uid: "wrong" } } });
    assert.equal(wrong.status, 409);
    assert.equal(wrong.body.reason, "Conflict");
    const ok = await call("DELETE", PATH, { type: "application/json", body: { kind: "DeleteOptions", apiVersion: "v1", preconditions: { uid: created.metadata.uid } } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, "Success");
    assert.equal(ok.body.details.uid, created.metadata.uid);
    assert.equal((await call("DELETE", PATH)).status, 404);
    const badOpts = await call("DELETE", PATH, { type: "application/json", body: { kind: "DeleteOptions", preconditon: {} } });
    assert.equal(badOpts.status, 400);
  });

  test("faults: 429 with Retry-After, 5xx, 403, each once", async () => {
    fake.throttle({ method: "GET" }, 7).serverError({ method: "GET" }, 503).forbid({ method: "GET" });
    const t = await call("GET", PATH);
    assert.equal(t.status, 429);
    assert.equal(t.headers.get("retry-after"), "7");
    assert.equal(t.body.details.retryAfterSeconds, 7);
    assert.equal((await call("GET", PATH)).status, 503);
    assert.equal((await call("GET", PATH)).status, 403);
    assert.equal((await call("GET", PATH)).status, 404);
  });
});

describe("fake Kubernetes schemas", () => {
  test("every fixture is registered, NetworkPolicy among them", () => {
    const kinds = registeredKinds().map((k) => `${k.apiVersion} ${k.kind}`);
    assert.ok(kinds.includes("networking.k8s.io/v1 NetworkPolicy"));
    assert.ok(lookupSchema("networking.k8s.io/v1", "NetworkPolicy"));
  });

  test("int-or-string accepts a number or a string, nothing else", () => {
    const port = (p: unknown) => validateKubeObject({ ...NP, spec: { podSelector: {}, ingress: [{ ports: [{ port: p }] }] } });
    assert.deepEqual(port(443), []);
    assert.deepEqual(port("https"), []);
    const bad = port(true);
    assert.equal(bad.length, 1);
    assert.match(bad[0]!.message, /must be of type integer or string/);
  });

  test("a registered schema is used at once; x-kubernetes-int-or-string and preserve-unknown-fields are honoured", () => {
    registerSchema("example.com/v1", "Widget", {
      type: "object",
      properties: {
        spec: {
          type: "object",
          required: ["port"],
          properties: { port: { "x-kubernetes-int-or-string": true }, free: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      },
    });
    const w = (spec: unknown) => validateKubeObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, spec });
    assert.deepEqual(w({ port: "http", free: { anything: 1 } }), []);
    assert.deepEqual(w({ port: { no: 1 } }).map((c) => c.field), ["spec.port"]);
    assert.deepEqual(w({ port: 1, other: 2 }).map((c) => c.message), ["field not declared in schema"]);
    assert.throws(() => validateKubeObject({ apiVersion: "example.com/v1", kind: "Gadget", metadata: { name: "g" } }), /no schema registered/);
  });

  test("pluralise follows the API server's default", () => {
    assert.deepEqual(["NetworkPolicy", "PeerAuthentication", "Server", "MeshTLSAuthentication", "HTTPRoute", "Ingress", "Gateway"].map(pluralise), [
      "networkpolicies",
      "peerauthentications",
      "servers",
      "meshtlsauthentications",
      "httproutes",
      "ingresses",
      "gateways",
    ]);
  });
});
