import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import type net from "node:net";
import { createHttpClient, type HttpClient } from "../../../../src/net/http.ts";
import {
  certificateSourceSchema,
  gather,
  parseAddress,
  SourceError,
  type CertificateSourceConfig,
} from "../../../../src/checks/certificate_validity/sources/index.ts";
import { KubernetesSources } from "../../../../src/checks/certificate_validity/sources/kubernetes.ts";
import { sourceSchema } from "../../../../src/checks/certificate_validity/sources/schema.ts";
import { hex, makePki, subject, type Pki } from "./pki.ts";
import { startFakeKubeApi, type FakeKubeApi } from "./kube-api.ts";

let pki: Pki;
let configDir: string;
let http: HttpClient;
let kubernetes: KubernetesSources;
let api: FakeKubeApi;

before(async () => {
  pki = makePki();
  configDir = mkdtempSync(path.join(tmpdir(), "vigil-sources-gather-"));
  mkdirSync(path.join(configDir, "certs", "web"), { recursive: true });
  writeFileSync(path.join(configDir, "certs", "web", "web-1.pem"), pki.leaf.pem);
  writeFileSync(path.join(configDir, "certs", "int.pem"), pki.intermediate.pem);
  writeFileSync(path.join(configDir, "svid.pem"), pki.client.pem);
  writeFileSync(path.join(configDir, "bundle.pem"), pki.root.pem);
  writeFileSync(path.join(configDir, "client.pem"), pki.client.pem);
  writeFileSync(path.join(configDir, "client.key"), pki.client.key);
  http = createHttpClient();
  kubernetes = new KubernetesSources(http);
  api = await startFakeKubeApi({ chainPem: pki.leaf.pem + pki.intermediate.pem, tokens: ["good-token"] });
});
after(async () => {
  await api.close();
  await kubernetes.close();
  await http.close();
  rmSync(configDir, { recursive: true, force: true });
  pki.cleanup();
});

const parse = (entry: CertificateSourceConfig) => certificateSourceSchema.parse(entry);
const web = subject({ id: "web-1", attributes: { host: "127.0.0.1" }, labels: { app: "web", ns: "prod" } });

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<SourceError> {
  const err = await p.then(
    () => assert.fail("expected a SourceError"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SourceError, `not a SourceError: ${String(err)}`);
  assert.match(err.message, pattern);
  return err;
}

test("schema: defaults, durations, strictness and the discriminant", () => {
  assert.equal(sourceSchema, certificateSourceSchema);
  assert.deepEqual(parse({ type: "tls", address: "{{attributes.host}}:443" }), { type: "tls", address: "{{attributes.host}}:443", timeout: 5000 });
  assert.deepEqual(parse({ type: "file", paths: ["a.pem"], timeout: "2s" }), { type: "file", paths: ["a.pem"], timeout: 2000 });
  assert.deepEqual(parse({ type: "kubernetes_secret", namespace: "n", name: "x" }), { type: "kubernetes_secret", namespace: "n", name: "x", key: "tls.crt", timeout: 10_000 });
  assert.deepEqual(parse({ type: "spiffe", svid_path: "/run/svid.pem" }), { type: "spiffe", svid_path: "/run/svid.pem", timeout: 5000 });
  const bad: unknown[] = [
    { type: "tls", address: "h:443", extra: 1 },
    { type: "tls" },
    { type: "tls", address: "" },
    { type: "tls", address: "h:443", client_cert_file: "c.pem" },
    { type: "tls", address: "h:443", timeout: "soon" },
    { type: "file", paths: [] },
    { type: "file", path: "a.pem" },
    { type: "kubernetes_secret", namespace: "n" },
    { type: "kubernetes_secret", namespace: "n", name: "x", in_cluster: true, kubeconfig: "k" },
    { type: "spiffe", svidPath: "x" },
    { type: "ftp", url: "x" },
    {},
  ];
  for (const entry of bad) assert.equal(certificateSourceSchema.safeParse(entry).success, false, JSON.stringify(entry));
});

test("parseAddress", () => {
  assert.deepEqual(parseAddress("web.internal:8443"), { host: "web.internal", port: 8443 });
  assert.deepEqual(parseAddress("web.internal"), { host: "web.internal", port: 443 });
  assert.deepEqual(parseAddress("[::1]:8443"), { host: "::1", port: 8443 });
  assert.deepEqual(parseAddress("[::1]"), { host: "::1", port: 443 });
  assert.deepEqual(parseAddress("fe80::1"), { host: "fe80::1", port: 443 });
  for (const bad of ["", ":443", "h:0", "h:65536", "h:x", "h:", "[::1]:x"]) assert.throws(() => parseAddress(bad), SourceError, bad);
});

test("gather: file source with templated paths relative to the config directory", async () => {
  const source = parse({ type: "file", paths: ["certs/{{labels.app}}/{{id}}.pem", "certs/*.pem"] });
  const { gathered, bundle } = await gather(source, web, { kubernetes, configDir });
  assert.deepEqual(hex(gathered.chain), hex([pki.leaf.der, pki.intermediate.der]));
  assert.equal(gathered.origin, `file:${path.join(configDir, "certs", "web", "web-1.pem")}`);
  assert.equal(bundle, undefined);
  await rejectsWith(gather(source, subject({ id: "web-2", labels: { app: "web" } }), { kubernetes, configDir }), /web-2\.pem: not found/);
  await rejectsWith(gather(source, subject({ id: "web-1", labels: {} }), { kubernetes, configDir }), /\{\{labels\.app\}\}/);
  await rejectsWith(gather(source, subject({ id: "../../etc/passwd", labels: { app: "web" } }), { kubernetes, configDir }), /"\.\." path segment/);
});

test("gather: tls source with a templated address and client certificate files", async () => {
  const server = tls.createServer({ cert: pki.leaf.pem + pki.intermediate.pem, key: pki.leaf.key, requestCert: true, rejectUnauthorized: true, ca: pki.root.pem });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const s = subject({ attributes: { host: "127.0.0.1", port } });
    const withCert = parse({ type: "tls", address: "{{attributes.host}}:{{attributes.port}}", client_cert_file: "client.pem", client_key_file: "client.key", timeout: "3s" });
    const { gathered } = await gather(withCert, s, { kubernetes, configDir });
    assert.deepEqual(hex(gathered.chain), hex([pki.leaf.der, pki.intermediate.der]));
    assert.equal(gathered.origin, `tls:127.0.0.1:${port}`);
    await rejectsWith(gather(parse({ type: "tls", address: "{{attributes.host}}:{{attributes.port}}", timeout: "3s" }), s, { kubernetes, configDir }), /TLS handshake/);
    await rejectsWith(gather(parse({ type: "tls", address: "{{attributes.host}}:{{attributes.port}}", client_cert_file: "nope.pem", client_key_file: "client.key" }), s, { kubernetes, configDir }), /client certificate file .*nope\.pem: not found/);
    await rejectsWith(gather(parse({ type: "tls", address: "{{attributes.host}}:notaport" }), s, { kubernetes, configDir }), /invalid address/);
  } finally {
    server.close();
  }
});

test("gather: kubernetes_secret source through a kubeconfig relative to the config directory", async () => {
  writeFileSync(
    path.join(configDir, "kubeconfig.yaml"),
    `current-context: c
clusters: [{ name: k, cluster: { server: "${api.url}" } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
users: [{ name: u, user: { token: good-token } }]
`,
  );
  const source = parse({ type: "kubernetes_secret", namespace: "{{labels.ns}}", name: "{{labels.app}}-tls", kubeconfig: "kubeconfig.yaml" });
  const { gathered } = await gather(source, web, { kubernetes, configDir });
  assert.deepEqual(hex(gathered.chain), hex([pki.leaf.der, pki.intermediate.der]));
  assert.equal(gathered.origin, "k8s:prod/web-tls");
  await rejectsWith(gather(source, subject({ labels: { ns: "prod", app: "api" } }), { kubernetes, configDir }), /secret prod\/api-tls not found/);
  await rejectsWith(gather(source, subject({ labels: { ns: "Prod!", app: "web" } }), { kubernetes, configDir }), /invalid namespace/);
  await rejectsWith(gather(parse({ type: "kubernetes_secret", namespace: "prod", name: "web-tls", kubeconfig: "absent.yaml" }), web, { kubernetes, configDir }), /absent\.yaml: not found/);
});

test("gather: spiffe source returns the bundle", async () => {
  const { gathered, bundle } = await gather(parse({ type: "spiffe", svid_path: "svid.pem", bundle_path: "bundle.pem" }), web, { kubernetes, configDir });
  assert.deepEqual(hex(gathered.chain), hex([pki.client.der]));
  assert.equal(gathered.origin, `spiffe:${path.join(configDir, "svid.pem")}`);
  assert.deepEqual(hex(bundle ?? []), hex([pki.root.der]));
  const noBundle = await gather(parse({ type: "spiffe", svid_path: "svid.pem" }), web, { kubernetes, configDir });
  assert.equal(noBundle.bundle, undefined);
});

test("gather honours the caller's signal", async () => {
  const err = await rejectsWith(gather(parse({ type: "file", paths: ["certs/int.pem"] }), web, { kubernetes, configDir, signal: AbortSignal.abort() }), /aborted/);
  assert.equal(err.aborted, true);
});
