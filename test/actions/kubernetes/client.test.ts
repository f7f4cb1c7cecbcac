import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import type { TLSSocket } from "node:tls";
import path from "node:path";
import { KubeClient, UID_PLACEHOLDER } from "../../../src/actions/kubernetes/client.ts";
import { planDeleteOwned } from "../../../src/actions/common/kubernetes/reconcile.ts";
import { resolveTarget } from "../../../src/actions/kubernetes/credentials.ts";
import { objectPath } from "../../../src/actions/common/kubernetes/paths.ts";
import { createKubernetesClient, kubernetesProvider, kubernetesProviderSchema } from "../../../src/actions/kubernetes/provider.ts";
import { OWNER_LABEL, OWNER_VALUE, POLICY_LABEL, type KubeObject } from "../../../src/actions/common/kubernetes/types.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, providerContext } from "../../helpers/action-context.ts";
import { FakeKubernetes, fakeKubernetesClient, writeKubeconfig } from "../../helpers/fakes/kubernetes.ts";

const NP = "networking.k8s.io/v1";

function policy(name: string, labels: Record<string, string> = { [OWNER_LABEL]: OWNER_VALUE, [POLICY_LABEL]: "p" }, ns = "web"): KubeObject {
  return {
    apiVersion: NP,
    kind: "NetworkPolicy",
    metadata: { name, namespace: ns, labels },
    spec: { podSelector: { matchLabels: { app: "frontend" } }, policyTypes: ["Egress"], egress: [{ ports: [{ protocol: "TCP", port: 443 }] }] },
  };
}

const ref = (name: string, ns = "web") => ({ apiVersion: NP, kind: "NetworkPolicy", name, namespace: ns });

describe("kubernetes object paths", () => {
  const cases: [string, string, string | undefined, string][] = [
    [NP, "NetworkPolicy", "web", "/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/x"],
    ["security.istio.io/v1", "AuthorizationPolicy", "web", "/apis/security.istio.io/v1/namespaces/web/authorizationpolicies/x"],
    ["security.istio.io/v1", "PeerAuthentication", "istio-system", "/apis/security.istio.io/v1/namespaces/istio-system/peerauthentications/x"],
    ["policy.linkerd.io/v1beta3", "Server", "web", "/apis/policy.linkerd.io/v1beta3/namespaces/web/servers/x"],
    ["policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "web", "/apis/policy.linkerd.io/v1alpha1/namespaces/web/authorizationpolicies/x"],
    ["policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", "web", "/apis/policy.linkerd.io/v1alpha1/namespaces/web/meshtlsauthentications/x"],
    ["policy.linkerd.io/v1beta3", "HTTPRoute", "web", "/apis/policy.linkerd.io/v1beta3/namespaces/web/httproutes/x"],
    ["gateway.networking.k8s.io/v1", "HTTPRoute", "web", "/apis/gateway.networking.k8s.io/v1/namespaces/web/httproutes/x"],
    [NP, "NetworkPolicy", undefined, "/apis/networking.k8s.io/v1/networkpolicies/x"],
  ];
  for (const [apiVersion, kind, namespace, want] of cases) {
    test(`${kind} ${apiVersion} → ${want}`, () => {
      assert.equal(objectPath({ apiVersion, kind, name: "x", ...(namespace ? { namespace } : {}) }), want);
    });
  }

  test("a kind vigil does not write is a programming error", () => {
    assert.throws(() => objectPath({ apiVersion: "v1", kind: "Secret", name: "x", namespace: "a" }), /no API path known for kind Secret/);
  });

  test("an invalid name or namespace is VIGIL_ERR_ACTION_INPUT", () => {
    for (const bad of [{ name: "Bad_Name", namespace: "a" }, { name: "x", namespace: "Not/ok" }, { name: "../x", namespace: "a" }]) {
      assert.throws(() => objectPath({ apiVersion: NP, kind: "NetworkPolicy", ...bad }), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
    }
  });
});

describe("kubernetes provider client against the fake API server", () => {
  const fake = new FakeKubernetes({ tokens: ["tok-0123456789-abcdef"] });
  let client: KubeClient;
  let clients: KubeClient[] = [];

  before(async () => {
    await fake.start();
  });
  after(async () => {
    await fake.stop();
  });
  beforeEach(() => {
    client = fakeKubernetesClient(fake).client;
    clients = [client];
    fake.api.clear();
    for (const o of fake.objects()) fake.remove({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace });
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  test("applyCall is a server-side apply with the field manager and force, the object as the body", () => {
    const call = client.applyCall(policy("a"));
    assert.equal(call.method, "PATCH");
    assert.equal(call.url, `${fake.base}/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/a?fieldManager=vigil&force=true`);
    assert.equal(call.headers?.["Content-Type"], "application/apply-patch+yaml");
    assert.deepEqual(JSON.parse(call.body!), policy("a"));
    const planned = client.describe(call);
    assert.equal(planned.headers.Authorization, "[REDACTED]");
    assert.deepEqual(planned.body, policy("a"));
    assert.ok(!JSON.stringify(planned).includes("tok-0123456789-abcdef"));
  });

  test("apply creates the object and returns it as the server holds it; re-applying changes nothing", async () => {
    const created = await client.apply(policy("a"));
    assert.match(String(created.metadata.uid), /^[0-9a-f-]{36}$/);
    assert.deepEqual(created.spec, policy("a").spec);
    const again = await client.apply(policy("a"));
    assert.equal(again.metadata.uid, created.metadata.uid);
    assert.equal(again.metadata.resourceVersion, created.metadata.resourceVersion);
    const [first] = fake.api.handled;
    assert.equal(first?.method, "PATCH");
    assert.equal(first?.headers["content-type"], "application/apply-patch+yaml");
    assert.equal(first?.headers.authorization, "Bearer tok-0123456789-abcdef");
    assert.equal(first?.query.get("fieldManager"), "vigil");
    assert.equal(first?.query.get("force"), "true");
  });

  test("a field manager set in the provider is used", async () => {
    const other = fakeKubernetesClient(fake, { field_manager: "vigil-prod" }).client;
    clients.push(other);
    await other.apply(policy("fm"));
    assert.equal(fake.api.handled.at(-1)?.query.get("fieldManager"), "vigil-prod");
    assert.deepEqual(fake.object(ref("fm"))?.metadata.managedFields, [{ manager: "vigil-prod", operation: "Apply", apiVersion: NP, fieldsType: "FieldsV1", fieldsV1: {}, time: fake.object(ref("fm"))?.metadata.creationTimestamp }]);
  });

  test("get returns the object, or undefined when absent", async () => {
    await client.apply(policy("a"));
    assert.equal((await client.get(ref("a")))?.metadata.name, "a");
    assert.equal(await client.get(ref("missing")), undefined);
  });

  test("422 Invalid is permanent and its message carries the causes", async () => {
    const bad = { ...policy("bad"), spec: { policyTypes: ["Egress"], egres: [] } } as KubeObject;
    await assert.rejects(client.apply(bad), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
      assert.equal(err.status, 422);
      assert.match(err.message, /422 Invalid/);
      assert.match(err.message, /spec\.podSelector: Required value/);
      assert.match(err.message, /spec\.egres: field not declared in schema/);
      const causes = err.details.causes as { field: string }[];
      assert.deepEqual(causes.map((c) => c.field).sort(), ["spec.egres", "spec.podSelector"]);
      return true;
    });
  });

  test("deleteOwned deletes a vigil object with a uid precondition", async () => {
    const created = await client.apply(policy("a"));
    fake.api.clear();
    assert.equal(await client.deleteOwned(ref("a")), "deleted");
    assert.equal(fake.object(ref("a")), undefined);
    assert.deepEqual(fake.api.lines(), ["GET /apis/networking.k8s.io/v1/namespaces/web/networkpolicies/a", "DELETE /apis/networking.k8s.io/v1/namespaces/web/networkpolicies/a"]);
    assert.deepEqual(JSON.parse(fake.api.handled[1]!.body), { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: created.metadata.uid } });
  });

  test("deleteOwned says absent for a missing object and sends no DELETE", async () => {
    assert.equal(await client.deleteOwned(ref("gone")), "absent");
    assert.deepEqual(fake.api.lines(), ["GET /apis/networking.k8s.io/v1/namespaces/web/networkpolicies/gone"]);
  });

  test("deleteOwned never deletes an object without the owner label", async () => {
    fake.put(policy("theirs", { team: "net" }));
    assert.equal(await client.deleteOwned(ref("theirs")), "not_owned");
    assert.ok(fake.object(ref("theirs")));
    assert.equal(fake.api.handled.filter((r) => r.method === "DELETE").length, 0);
    fake.put(policy("spoof", { [OWNER_LABEL]: "someone-else" }));
    assert.equal(await client.deleteOwned(ref("spoof")), "not_owned");
  });

  test("a DELETE whose uid precondition fails is 409 Conflict, transient: reading again decides", async () => {
    await client.apply(policy("a"));
    await assert.rejects(client.send(client.deleteCall(ref("a"), "00000000-0000-0000-0000-000000000000")), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.status, 409);
      assert.equal(err.transient, true);
      assert.match(err.message, /Precondition failed: UID in precondition/);
      return true;
    });
    assert.ok(fake.object(ref("a")));
  });

  test("the plan of deleteOwned is GET then DELETE with a uid placeholder", () => {
    const plan = planDeleteOwned(client, ref("a"));
    assert.deepEqual(plan.map((p) => p.method), ["GET", "DELETE"]);
    assert.deepEqual(plan[1]!.body, { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: UID_PLACEHOLDER } });
    assert.equal(plan[0]!.url, plan[1]!.url);
  });

  test("429 with Retry-After is transient with the hint; the next attempt succeeds", async () => {
    fake.throttle({ method: "PATCH" }, 3);
    const r = await attempt(() => client.apply(policy("a")));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [3000]);
    assert.ok(fake.object(ref("a")));
  });

  test("403 is permanent and not retried", async () => {
    fake.forbid({ method: "PATCH" });
    const r = await attempt(() => client.apply(policy("a")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError && r.error.status === 403 && !r.error.transient);
    assert.match((r.error as Error).message, /403 Forbidden: .*cannot perform this action/);
    assert.equal(fake.api.requests.filter((q) => q.method === "PATCH").length, 1);
  });

  test("a resource the server does not serve (CRD not installed) is a permanent error, not 'absent'", async () => {
    const route = { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", name: "r", namespace: "web" };
    await assert.rejects(client.get(route), (err: unknown) => err instanceof UpstreamError && err.status === 404 && /CRD installed/.test(err.message));
  });

  test("a wrong token is 401, permanent after one reload", async () => {
    fake.tokens = new Set(["another-token-value"]);
    try {
      await assert.rejects(client.get(ref("a")), (err: unknown) => err instanceof UpstreamError && err.status === 401 && !err.transient);
      assert.equal(fake.api.requests.length, 2, "one retry after reloading the credentials");
      assert.equal(client.credentials.loads, 2);
    } finally {
      fake.tokens = new Set(["tok-0123456789-abcdef"]);
    }
  });

  test("the circuit opens after repeated 5xx and then fails fast without reaching the server", async () => {
    const c = fakeKubernetesClient(fake, { circuit: { failures: 3, open_for: "1m" } }).client;
    clients.push(c);
    fake.serverError({}, 500, 3);
    for (let i = 0; i < 3; i++) await assert.rejects(c.get(ref("a")), (err: unknown) => err instanceof UpstreamError && err.status === 500 && err.transient);
    const seen = fake.api.requests.length;
    await assert.rejects(c.get(ref("a")), (err: unknown) => err instanceof UpstreamError && err.transient && /circuit open/.test(err.message) && (err.retryAfterMs ?? 0) > 0);
    assert.equal(fake.api.requests.length, seen);
    assert.equal(c.breaker.state, "open");
  });
});

describe("kubernetes credentials", () => {
  const fake = new FakeKubernetes({ tokens: ["sa-token-1-abcdefgh"] });
  const dir = mkdtempSync(path.join(tmpdir(), "vigil-kube-cred-"));
  const made: KubeClient[] = [];
  before(async () => {
    await fake.start();
  });
  after(async () => {
    await Promise.all(made.map((c) => c.close()));
    await fake.stop();
  });

  test("in-cluster: the service account token is sent as Bearer", async () => {
    const sa = mkdtempSync(path.join(dir, "sa-"));
    writeFileSync(path.join(sa, "token"), "sa-token-1-abcdefgh\n");
    writeFileSync(path.join(sa, "namespace"), "vigil");
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ in_cluster: true, api_server: fake.base }), providerContext("kubernetes"), { env: {}, serviceAccountDir: sa });
    made.push(c);
    assert.equal(await c.get(ref("none")), undefined);
    assert.equal(fake.api.requests.at(-1)?.headers.authorization, "Bearer sa-token-1-abcdefgh");
  });

  test("in-cluster without api_server takes KUBERNETES_SERVICE_HOST/PORT", () => {
    const t = resolveTarget({ in_cluster: true }, { env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" } });
    assert.deepEqual(t, { apiServer: "https://10.96.0.1:443", bearer: true, inCluster: true, description: "in-cluster service account" });
    assert.equal(resolveTarget({}, { env: { KUBERNETES_SERVICE_HOST: "fd00::1" } }).apiServer, "https://[fd00::1]:443");
    assert.throws(() => resolveTarget({ in_cluster: true }, { env: {} }), /KUBERNETES_SERVICE_HOST is not/);
  });

  test("a rotated kubeconfig tokenFile is picked up after a 401", async () => {
    const tokenFile = path.join(dir, "token");
    writeFileSync(tokenFile, "rotating-token-aaaa");
    const kubeconfig = writeKubeconfig(path.join(dir, "rot.yaml"), fake.base, { tokenFile });
    fake.tokens = new Set(["rotating-token-aaaa"]);
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ kubeconfig }), providerContext("kubernetes"));
    made.push(c);
    await c.get(ref("x"));
    writeFileSync(tokenFile, "rotating-token-bbbb");
    fake.tokens = new Set(["rotating-token-bbbb"]);
    fake.api.clear();
    assert.equal(await c.get(ref("x")), undefined);
    assert.deepEqual(
      fake.api.requests.map((r) => r.headers.authorization),
      ["Bearer rotating-token-aaaa", "Bearer rotating-token-bbbb"],
    );
    assert.equal(c.credentials.loads, 2);
    fake.tokens = new Set(["sa-token-1-abcdefgh"]);
  });

  test("a kubeconfig context and api_server override pick the server; a relative kubeconfig resolves against the config directory", () => {
    const file = path.join(dir, "multi.yaml");
    writeFileSync(
      file,
      JSON.stringify({
        "current-context": "a",
        clusters: [{ name: "a", cluster: { server: "https://a.example:6443" } }, { name: "b", cluster: { server: "https://b.example:6443/" } }],
        users: [{ name: "u", user: { token: "t-xyz-123" } }, { name: "cert", user: { "client-certificate": "c.pem", "client-key": "k.pem" } }],
        contexts: [{ name: "a", context: { cluster: "a", user: "u" } }, { name: "b", context: { cluster: "b", user: "cert" } }],
      }),
    );
    assert.equal(resolveTarget({ kubeconfig: file }).apiServer, "https://a.example:6443");
    const b = resolveTarget({ kubeconfig: "multi.yaml", context: "b" }, { configDir: dir });
    assert.equal(b.apiServer, "https://b.example:6443");
    assert.equal(b.bearer, false, "a client-certificate user sends no bearer token");
    assert.equal(resolveTarget({ kubeconfig: file, api_server: "https://override.example" }).apiServer, "https://override.example");
    assert.throws(() => resolveTarget({ kubeconfig: file, context: "zzz" }), /no context "zzz"/);
    assert.throws(() => resolveTarget({ kubeconfig: path.join(dir, "absent.yaml") }), /cannot read kubeconfig/);
  });

  test("a client-certificate user's plan shows no Authorization header", () => {
    const file = writeKubeconfig(path.join(dir, "cert.yaml"), "https://kube.example:6443", { clientCert: "x", clientKey: "y" });
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ kubeconfig: file }), providerContext("kubernetes"));
    made.push(c);
    const planned = c.describe(c.getCall(ref("a")));
    assert.equal(planned.url, "https://kube.example:6443/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/a");
    assert.equal(planned.headers.Authorization, undefined);
  });

  test("an invalid kubeconfig's error gives the reason and position, never the quoted line (it may hold a token)", async () => {
    const secret = "kubeconfig-token-0f9e8d7c6b5a4938";
    const broken = `apiVersion: v1\nkind: Config\ncurrent-context: x\nusers:\n- name: u\n  user: {token: ${secret}, bad: [}\n`;
    const file = path.join(dir, "broken.yaml");
    writeFileSync(file, broken);
    assert.throws(
      () => resolveTarget({ kubeconfig: file }),
      (err: unknown) => err instanceof Error && /not valid YAML: .*line 6/.test(err.message) && !err.message.includes(secret) && !String((err as Error).cause ?? "").includes(secret),
    );
    // Valid at start-up, broken later (a tool rewrote it): the credential load fails the same way.
    const later = path.join(dir, "later.yaml");
    writeFileSync(later, `apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: c, cluster: {server: "${fake.base}"}}]\nusers: [{name: u, user: {token: ${secret}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n`);
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ kubeconfig: later }), providerContext("kubernetes"));
    made.push(c);
    writeFileSync(later, broken);
    await assert.rejects(c.get(ref("a")), (err: unknown) => {
      const e = err as UpstreamError;
      return e instanceof UpstreamError && /cannot load credentials/.test(e.message) && !e.message.includes(secret) && !((e.cause as Error | undefined)?.message ?? "").includes(secret);
    });
  });

  test("once loaded, a service account token missing mid-rotation is a transient error, so the queue retries", async () => {
    const sa = mkdtempSync(path.join(dir, "rotating-sa-"));
    writeFileSync(path.join(sa, "token"), "sa-token-1-abcdefgh\n");
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ in_cluster: true, api_server: fake.base }), providerContext("kubernetes"), { env: {}, serviceAccountDir: sa });
    made.push(c);
    assert.equal(await c.get(ref("none")), undefined);
    // The old token is refused (401) and the new one is not written yet.
    rmSync(path.join(sa, "token"));
    fake.tokens = new Set(["sa-token-2-abcdefgh"]);
    try {
      await assert.rejects(c.get(ref("none")), (err: unknown) => err instanceof UpstreamError && err.transient && /cannot load credentials from in-cluster service account: .*token: not found/.test(err.message));
      writeFileSync(path.join(sa, "token"), "sa-token-2-abcdefgh\n");
      assert.equal(await c.get(ref("none")), undefined);
      assert.equal(fake.api.requests.at(-1)?.headers.authorization, "Bearer sa-token-2-abcdefgh");
    } finally {
      fake.tokens = new Set(["sa-token-1-abcdefgh"]);
    }
  });

  test("missing credentials are a permanent error naming the source", async () => {
    const sa = mkdtempSync(path.join(dir, "empty-sa-"));
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ in_cluster: true, api_server: fake.base }), providerContext("kubernetes"), { env: {}, serviceAccountDir: sa });
    made.push(c);
    await assert.rejects(c.get(ref("a")), (err: unknown) => err instanceof UpstreamError && !err.transient && /cannot load credentials from in-cluster service account/.test(err.message));
  });
});

describe("kubernetes provider config", () => {
  test("an empty entry validates with the defaults", () => {
    const c = kubernetesProviderSchema.parse({});
    assert.equal(c.field_manager, "vigil");
    assert.equal(c.timeout, 10_000);
    assert.deepEqual(c.circuit, { failures: 5, open_for: 30_000, max_open_for: 300_000 });
  });

  test("the example validates", () => {
    assert.equal(kubernetesProviderSchema.safeParse(kubernetesProvider.example).success, true);
    assert.equal(kubernetesProvider.type, "kubernetes");
  });

  const bad: [string, Record<string, unknown>][] = [
    ["in_cluster with a kubeconfig", { in_cluster: true, kubeconfig: "/k" }],
    ["in_cluster with a context", { in_cluster: true, context: "c" }],
    ["an api_server that is not http(s)", { api_server: "ftp://x" }],
    ["an api_server with credentials", { api_server: "https://u:p@x" }],
    ["an empty field manager", { field_manager: "" }],
    ["a field manager with a newline", { field_manager: "a\nb" }],
    ["a bad timeout", { timeout: "10 seconds" }],
    ["an unknown key", { token: "x" }],
  ];
  for (const [what, input] of bad) {
    test(`rejects ${what}`, () => {
      assert.equal(kubernetesProviderSchema.safeParse(input).success, false);
    });
  }
});

describe("kubernetes client certificates (kubeconfig mTLS)", () => {
  const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

  test("the client certificate from the kubeconfig is presented and the kubeconfig CA is trusted", { skip: hasOpenssl ? false : "openssl is not installed" }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "vigil-kube-mtls-"));
    const run = (...args: string[]) => {
      const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca");
    writeFileSync(path.join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
    for (const [name, subj] of [["server", "/CN=kube-apiserver"], ["client", "/CN=vigil/O=vigil-operators"]] as const) {
      run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj);
      run("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "1", "-extfile", `${name}.ext`);
    }
    const read = (f: string) => readFileSync(path.join(dir, f), "utf8");
    const seen: string[] = [];
    const server = createHttpsServer({ key: read("server.key"), cert: read("server.crt"), ca: read("ca.crt"), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push(`${req.method} ${req.url} ${peer.subject?.CN ?? "-"} ${req.headers.authorization ?? "no-auth"}`);
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, details: { name: "a", group: "networking.k8s.io", kind: "networkpolicies" } }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const kubeconfig = writeKubeconfig(path.join(dir, "config"), `https://127.0.0.1:${port}`, { clientCert: read("client.crt"), clientKey: read("client.key") }, read("ca.crt"));
    const c = createKubernetesClient(kubernetesProviderSchema.parse({ kubeconfig }), providerContext("kubernetes"));
    try {
      assert.equal(await c.get(ref("a")), undefined);
      assert.deepEqual(seen, ["GET /apis/networking.k8s.io/v1/namespaces/web/networkpolicies/a vigil no-auth"]);
      assert.ok(!JSON.stringify(c.describe(c.getCall(ref("a")))).includes("PRIVATE KEY"));
    } finally {
      await c.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
