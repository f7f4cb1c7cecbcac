import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHttpClient, type HttpClient } from "../../../../src/net/http.ts";
import { fromKubernetesSecret, loadKubeAuth, type KubeAuth } from "../../../../src/checks/certificate_validity/sources/kubernetes.ts";
import { KubeTransport } from "../../../../src/net/kubernetes.ts";
import { SourceError } from "../../../../src/checks/certificate_validity/sources/common.ts";
import { hex, makePki, type Pki } from "./pki.ts";
import { startFakeKubeApi, type FakeKubeApi } from "./kube-api.ts";

let pki: Pki;
let api: FakeKubeApi;
let dir: string;
let http: HttpClient;
let transport: KubeTransport;

before(async () => {
  pki = makePki();
  dir = mkdtempSync(path.join(tmpdir(), "vigil-sources-k8s-"));
  api = await startFakeKubeApi({ chainPem: pki.leaf.pem + pki.intermediate.pem, tokens: ["good-token"] });
  http = createHttpClient();
  transport = new KubeTransport(http);
});
after(async () => {
  await api.close();
  await transport.close();
  await http.close();
  rmSync(dir, { recursive: true, force: true });
  pki.cleanup();
});

const staticAuth = (token: string | undefined, apiServer = api.url): KubeAuth => ({ apiServer, description: "test credentials", token: () => Promise.resolve(token) });

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<SourceError> {
  const err = await p.then(
    () => assert.fail("expected a SourceError"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SourceError, `not a SourceError: ${String(err)}`);
  assert.match(err.message, pattern);
  return err;
}

test("reads a kubernetes.io/tls secret with a bearer token", async () => {
  const before = api.authorizations.length;
  const got = await fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: staticAuth("good-token") }, { transport });
  assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.intermediate.der]));
  assert.equal(got.origin, "k8s:prod/web-tls");
  assert.deepEqual(api.authorizations.slice(before), ["Bearer good-token"]);
  assert.equal(api.paths.at(-1), "/api/v1/namespaces/prod/secrets/web-tls");
});

test("401 and 403 name the permission; 404 names the secret", async () => {
  const denied = await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: staticAuth("wrong") }, { transport }), /"get secrets" in namespace prod/);
  assert.match(denied.message, /HTTP 401/);
  assert.doesNotMatch(denied.message, /wrong/); // the token is not quoted
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: staticAuth(undefined) }, { transport }), /HTTP 401.*"get secrets" in namespace prod/);
  await rejectsWith(fromKubernetesSecret({ namespace: "locked", name: "web-tls", auth: staticAuth("good-token") }, { transport }), /HTTP 403.*"get secrets" in namespace locked/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "missing", auth: staticAuth("good-token") }, { transport }), /^secret prod\/missing not found$/);
});

test("secret type and key rules", async () => {
  const auth = staticAuth("good-token");
  const opaque = await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "opaque", auth }, { transport }), /of type Opaque, not kubernetes.io\/tls, and has no key tls\.crt/);
  assert.doesNotMatch(opaque.message, /hunter2|aHVudGVyMg/);
  // Another type is fine when the key is there.
  const other = await fromKubernetesSecret({ namespace: "prod", name: "opaque-with-cert", key: "ca.crt", auth }, { transport });
  assert.deepEqual(hex(other.chain), hex([pki.leaf.der, pki.intermediate.der]));
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", key: "ca.crt", auth }, { transport }), /secret prod\/web-tls has no key ca\.crt/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", key: "tls.key", auth }, { transport }), /looks like a private key/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "not-json", auth }, { transport }), /not JSON/);
});

test("names from templates are validated before any request", async () => {
  const auth = staticAuth("good-token");
  const before = api.paths.length;
  await rejectsWith(fromKubernetesSecret({ namespace: "../prod", name: "web-tls", auth }, { transport }), /invalid namespace/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls/../../x", auth }, { transport }), /invalid secret name/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "Web", auth }, { transport }), /invalid secret name/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", key: "a/b", auth }, { transport }), /invalid key/);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: staticAuth("t", "ftp://x") }, { transport }), /must be http or https/);
  assert.equal(api.paths.length, before);
});

test("an unreachable API server and an aborted signal are SourceErrors", async () => {
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: staticAuth("good-token", "http://127.0.0.1:1"), timeoutMs: 2000 }, { transport }), /Kubernetes API/);
  const err = await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: staticAuth("good-token") }, { transport }, AbortSignal.abort()), /aborted/);
  assert.equal(err.aborted, true);
});

function serviceAccountDir(token: string): string {
  const sa = mkdtempSync(path.join(dir, "sa-"));
  writeFileSync(path.join(sa, "token"), `${token}\n`);
  writeFileSync(path.join(sa, "namespace"), "vigil");
  writeFileSync(path.join(sa, "ca.crt"), pki.root.pem);
  return sa;
}

test("in-cluster auth: service account directory and KUBERNETES_SERVICE_HOST/PORT, over https with the pod's CA", async () => {
  const tlsApi = await startFakeKubeApi({ chainPem: pki.leaf.pem, tokens: ["sa-token"], tls: { cert: pki.leaf.pem + pki.intermediate.pem, key: pki.leaf.key } });
  try {
    const sa = serviceAccountDir("sa-token");
    const auth = await loadKubeAuth({ serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(tlsApi.port) } });
    assert.equal(auth.apiServer, `https://127.0.0.1:${tlsApi.port}`);
    assert.equal(auth.namespace, "vigil");
    assert.equal(auth.ca, pki.root.pem);
    assert.equal(await auth.token(), "sa-token");
    const got = await fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth }, { transport });
    assert.deepEqual(hex(got.chain), hex([pki.leaf.der]));
    assert.deepEqual(tlsApi.authorizations, ["Bearer sa-token"]);
    // Without the pod's CA the server is not trusted.
    await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: { ...auth, ca: undefined } }, { transport }), /Kubernetes API/);
  } finally {
    await tlsApi.close();
  }
});

test("in-cluster auth: missing environment or token is a SourceError", async () => {
  const sa = serviceAccountDir("sa-token");
  await rejectsWith(loadKubeAuth({ inCluster: true, serviceAccountDir: sa, env: {} }), /KUBERNETES_SERVICE_HOST is not set/);
  await rejectsWith(loadKubeAuth({ inCluster: true, serviceAccountDir: path.join(dir, "nope"), env: { KUBERNETES_SERVICE_HOST: "10.0.0.1" } }), /token file .*token: not found/);
  const v6 = await loadKubeAuth({ inCluster: true, serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" } });
  assert.equal(v6.apiServer, "https://[fd00::1]:443");
  const overridden = await loadKubeAuth({ inCluster: true, serviceAccountDir: sa, apiServer: "http://127.0.0.1:9/", env: {} });
  assert.equal(overridden.apiServer, "http://127.0.0.1:9");
});

test("the token is re-read from disk at most every 60 s", async () => {
  let now = 1_000_000;
  const sa = serviceAccountDir("good-token");
  const auth = await loadKubeAuth({ inCluster: true, serviceAccountDir: sa, apiServer: api.url, env: {}, now: () => now });
  const read = () => fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth }, { transport });
  api.tokens.add("rotated-token");
  const seen = api.authorizations.length;
  await read();
  writeFileSync(path.join(sa, "token"), "rotated-token");
  now += 59_000;
  await read(); // still the cached token
  now += 1_000;
  await read(); // 60 s later: re-read
  assert.deepEqual(api.authorizations.slice(seen), ["Bearer good-token", "Bearer good-token", "Bearer rotated-token"]);
  // A failed re-read keeps the token it had.
  rmSync(path.join(sa, "token"));
  now += 60_000;
  assert.equal(await auth.token(), "rotated-token");
});

test("tokenFile refuses empty and multi-line tokens", async () => {
  const f = path.join(dir, "tok");
  const file = kubeconfig(
    "config-bad-token.yaml",
    `current-context: c
clusters: [{ name: k, cluster: { server: "${api.url}" } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
users: [{ name: u, user: { tokenFile: tok } }]
`,
  );
  writeFileSync(f, "  \n");
  await rejectsWith(loadKubeAuth({ kubeconfig: file }), /is empty/);
  writeFileSync(f, "a\nb");
  await rejectsWith(loadKubeAuth({ kubeconfig: file }), /more than one line/);
});

function kubeconfig(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

test("kubeconfig with a token: current-context or a named context", async () => {
  const file = kubeconfig(
    "config-token.yaml",
    `apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: local
    cluster:
      server: ${api.url}
  - name: elsewhere
    cluster:
      server: http://127.0.0.1:1
contexts:
  - name: dev
    context: { cluster: local, user: robot, namespace: team }
  - name: other
    context: { cluster: elsewhere, user: robot }
  - name: anon
    context: { cluster: local }
users:
  - name: robot
    user:
      token: good-token
`,
  );
  const auth = await loadKubeAuth({ kubeconfig: file });
  assert.equal(auth.apiServer, api.url);
  assert.equal(auth.namespace, "team");
  assert.match(auth.description, /context dev/);
  const got = await fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth }, { transport });
  assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.intermediate.der]));

  assert.equal((await loadKubeAuth({ kubeconfig: file, context: "other" })).apiServer, "http://127.0.0.1:1");
  assert.equal((await loadKubeAuth({ kubeconfig: file, context: "other", apiServer: api.url })).apiServer, api.url);
  await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: await loadKubeAuth({ kubeconfig: file, context: "anon" }) }, { transport }), /HTTP 401/);
  await rejectsWith(loadKubeAuth({ kubeconfig: file, context: "missing" }), /no context "missing"/);
  // Without kubeconfig or in-cluster options, $KUBECONFIG is used.
  assert.equal((await loadKubeAuth({ env: { KUBECONFIG: `${file}${path.delimiter}/elsewhere` } })).apiServer, api.url);
});

test("kubeconfig tokenFile is resolved next to the kubeconfig", async () => {
  writeFileSync(path.join(dir, "robot.token"), "good-token\n");
  const file = kubeconfig(
    "config-tokenfile.yaml",
    `current-context: c
clusters: [{ name: k, cluster: { server: "${api.url}" } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
users: [{ name: u, user: { tokenFile: robot.token } }]
`,
  );
  const auth = await loadKubeAuth({ kubeconfig: file });
  assert.equal(await auth.token(), "good-token");
});

test("kubeconfig: unsupported and broken configurations are clear SourceErrors", async () => {
  const base = (user: string, cluster = "") => `current-context: c
clusters: [{ name: k, cluster: { server: "${api.url}"${cluster} } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
users: [{ name: u, user: ${user} }]
`;
  const cases: [string, RegExp][] = [
    [base(`{ exec: { command: aws, args: [eks, get-token] } }`), /exec credential plugin/],
    [base(`{ auth-provider: { name: gcp } }`), /auth-provider/],
    [base(`{ username: a, password: b }`), /basic authentication/],
    [base(`{ token: t }`, `, insecure-skip-tls-verify: true`), /insecure-skip-tls-verify is not supported/],
    [base(`{ client-certificate-data: "${Buffer.from(pki.client.pem).toString("base64")}" }`), /needs its key/],
    [base(`{ client-certificate-data: "not base64!" , client-key-data: "x" }`), /not valid base64/],
    [base(`{ token: t }`, `, certificate-authority: missing-ca.pem`), /certificate-authority .*missing-ca\.pem: not found/],
    [`current-context: c\nclusters: [{ name: k, cluster: { server: "${api.url}" } }]\ncontexts: [{ name: c, context: { cluster: k, user: nobody } }]\n`, /no user "nobody"/],
    [`clusters: []\n`, /no current-context/],
    [`: : :\n  - [`, /not valid YAML/],
    [`clusters: 5\n`, /kubeconfig .*clusters/],
    [`a: &a [*a, *a]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n`, /kubeconfig/],
  ];
  for (const [i, [text, pattern]] of cases.entries()) await rejectsWith(loadKubeAuth({ kubeconfig: kubeconfig(`bad-${i}.yaml`, text) }), pattern);
  await rejectsWith(loadKubeAuth({ kubeconfig: path.join(dir, "absent.yaml") }), /kubeconfig .*absent\.yaml: not found/);
});

test("a kubeconfig YAML error gives the reason and position, never the quoted line (it may hold a token)", async () => {
  const secret = "kubeconfig-token-7a6b5c4d3e2f1a09";
  const file = kubeconfig("leaky.yaml", `apiVersion: v1\nkind: Config\ncurrent-context: x\nusers:\n- name: u\n  user: {token: ${secret}, bad: [}\n`);
  await assert.rejects(loadKubeAuth({ kubeconfig: file }), (err: unknown) => {
    const e = err as Error;
    return /not valid YAML: .*line 6/.test(e.message) && !e.message.includes(secret) && !String((e.cause as Error | undefined)?.message ?? "").includes(secret);
  });
});

test("kubeconfig with client-certificate-data authenticates by mTLS over https", async () => {
  const mtlsApi = await startFakeKubeApi({ chainPem: pki.leaf.pem, tokens: [], tls: { cert: pki.leaf.pem + pki.intermediate.pem, key: pki.leaf.key, clientCa: pki.root.pem } });
  try {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const file = kubeconfig(
      "config-mtls.yaml",
      `current-context: c
clusters: [{ name: k, cluster: { server: "${mtlsApi.url}", certificate-authority-data: "${b64(pki.root.pem)}" } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
users:
  - name: u
    user: { client-certificate-data: "${b64(pki.client.pem)}", client-key-data: "${b64(pki.client.key)}" }
  - name: t
    user: { token: nope }
`,
    );
    const auth = await loadKubeAuth({ kubeconfig: file });
    const got = await fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth }, { transport });
    assert.deepEqual(hex(got.chain), hex([pki.leaf.der]));
    assert.deepEqual(mtlsApi.authorizations, [undefined]); // no bearer token: the certificate did it
    // Same server, custom CA, no certificate: the per-CA client is used and the server says 401.
    await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth: { ...auth, clientCert: undefined, clientKey: undefined } }, { transport }), /HTTP 401/);
  } finally {
    await transport.close();
    await mtlsApi.close();
  }
});

test("a 401 makes the next read take the token file again instead of waiting out the 60 s", async () => {
  const now = 5_000_000;
  const sa = serviceAccountDir("good-token");
  const auth = await loadKubeAuth({ inCluster: true, serviceAccountDir: sa, apiServer: api.url, env: {}, now: () => now });
  writeFileSync(path.join(sa, "token"), "second-token");
  api.tokens.add("second-token");
  api.tokens.delete("good-token");
  try {
    const seen = api.authorizations.length;
    await rejectsWith(fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth }, { transport }), /HTTP 401/);
    await fromKubernetesSecret({ namespace: "prod", name: "web-tls", auth }, { transport });
    assert.deepEqual(api.authorizations.slice(seen), ["Bearer good-token", "Bearer second-token"]);
  } finally {
    api.tokens.add("good-token");
  }
});

test("the check owns its API server clients: stop() closes the connection a kubeconfig CA needed", async () => {
  const { certificateValidityCheck, certificateValidityConfigSchema } = await import("../../../../src/checks/certificate_validity/index.ts");
  const { metrics, trace } = await import("@opentelemetry/api");
  const { silentLogger } = await import("../../../../src/telemetry/log.ts");
  const { FakeClock } = await import("../../../../src/util/clock.ts");
  const tlsApi = await startFakeKubeApi({ chainPem: pki.leaf.pem + pki.intermediate.pem, tokens: ["good-token"], tls: { cert: pki.leaf.pem + pki.intermediate.pem, key: pki.leaf.key } });
  const shared = createHttpClient();
  try {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    writeFileSync(path.join(dir, "root-bundle.pem"), pki.root.pem);
    kubeconfig(
      "config-check.yaml",
      `current-context: c
clusters: [{ name: k, cluster: { server: "${tlsApi.url}", certificate-authority-data: "${b64(pki.root.pem)}" } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
users: [{ name: u, user: { token: good-token } }]
`,
    );
    const config = certificateValidityConfigSchema.parse({
      trust_bundle: "root-bundle.pem",
      source: { type: "kubernetes_secret", namespace: "prod", name: "web-tls", kubeconfig: "config-check.yaml" },
      purpose: "server",
      match_identity: false,
      warn_before: "1h",
      revocation: { mode: "none" },
    });
    const ctx = { clock: new FakeClock(Date.now()), logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http: shared, dataDir: dir, configDir: dir };
    const check = certificateValidityCheck.create(config, ctx);
    const [result] = await check.run([{ id: "web", kind: "workload", attributes: {}, labels: {} }], { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 });
    assert.equal(result?.status, "pass", JSON.stringify(result?.reasons));
    assert.ok((await tlsApi.connections()) > 0, "the read left a kept-alive connection");
    await check.stop?.();
    const deadline = Date.now() + 2_000;
    while ((await tlsApi.connections()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await tlsApi.connections(), 0, "stop() closed the client holding the kubeconfig CA");
  } finally {
    await shared.close();
    await tlsApi.close();
  }
});
