/**
 * Certificates from a Kubernetes Secret (`kubernetes.io/tls`, key `tls.crt` by default), read with
 * one GET from the API server, and the credentials to do it (`loadKubeAuth`).
 *
 * Credentials, in this order:
 * - `kubeconfig` given → that file; `inCluster: true` → the pod's service account;
 * - neither: in-cluster when `KUBERNETES_SERVICE_HOST` is set, otherwise `$KUBECONFIG` (its first
 *   entry) or `~/.kube/config`.
 * `apiServer` overrides the server URL in every mode.
 *
 * In-cluster reads `<dir>/token`, `<dir>/ca.crt`, `<dir>/namespace` (dir default
 * `/var/run/secrets/kubernetes.io/serviceaccount`) and `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
 * Token files (in-cluster, kubeconfig `tokenFile`) are re-read at most every 60 s: bound service
 * account tokens rotate. kubeconfig supports `token`, `tokenFile`, client certificates
 * (`client-certificate(-data)`, `client-key(-data)`) and `certificate-authority(-data)`; exec and
 * auth-provider plugins, basic auth and `insecure-skip-tls-verify` are refused with a SourceError.
 *
 * The request needs RBAC `get` on `secrets` in the namespace. The secret's other keys (`tls.key`)
 * are never decoded, kept or quoted.
 */
import { createHash } from "node:crypto";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { GatheredCertificate } from "../types.ts";
import { createHttpClient, type HttpClient } from "../../../net/http.ts";
import { certificatesFromBytes, Deadline, errorText, readFileCapped, SourceError } from "./common.ts";
import { withoutQuotedLines } from "../../../util/yaml-error.ts";

export const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Token files are re-read at most this often. */
export const TOKEN_REREAD_MS = 60_000;
export const DEFAULT_K8S_TIMEOUT_MS = 10_000;
/** A Secret holds at most 1 MiB; base64 and JSON make the response larger. */
export const MAX_SECRET_RESPONSE_BYTES = 2 * 1024 * 1024;
const MAX_SMALL_FILE = 1024 * 1024;
const FILE_TIMEOUT_MS = 5_000;

/** How to reach and authenticate to one API server. */
export interface KubeAuth {
  /** Base URL, e.g. `https://10.96.0.1:443`. */
  readonly apiServer: string;
  /** PEM CA bundle for the API server; absent: the system store. */
  readonly ca?: string;
  /** PEM client certificate and key (kubeconfig mTLS). */
  readonly clientCert?: string;
  readonly clientKey?: string;
  /** The service account's or the context's namespace, when known. */
  readonly namespace?: string;
  /** For messages: `in-cluster service account`, `kubeconfig /x (context y)`. Never secret. */
  readonly description: string;
  /** The bearer token, if any (token files are re-read at most every 60 s). */
  token(): Promise<string | undefined>;
}

export interface LoadKubeAuthOptions {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  apiServer?: string;
  /** Service account directory (tests). */
  serviceAccountDir?: string;
  /** Environment (tests); default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Clock for the token re-read interval (tests); default `Date.now`. */
  now?: () => number;
  signal?: AbortSignal;
}

export interface KubernetesSecretOptions {
  readonly namespace: string;
  readonly name: string;
  /** Data key holding the PEM chain. Default `tls.crt`. */
  readonly key?: string;
  /** Overrides `auth.apiServer`. */
  readonly apiServer?: string;
  readonly auth: KubeAuth;
  /** Request deadline. Default 10000. */
  readonly timeoutMs?: number;
}

/**
 * A token file reader that re-reads at most every `rereadMs`. When a re-read fails the token
 * read before is used (it is likely still valid) and the next call tries again.
 */
export function tokenFile(file: string, now: () => number = Date.now, rereadMs = TOKEN_REREAD_MS): () => Promise<string> {
  let cached: { value: string; at: number } | undefined;
  let pending: Promise<string> | undefined;
  const read = async (): Promise<string> => {
    try {
      const buf = await readFileCapped(file, 64 * 1024, new Deadline(undefined, FILE_TIMEOUT_MS, `token file ${file}`), "token file");
      const value = buf.toString("utf8").trim();
      if (value === "") throw new SourceError(`token file ${file} is empty`);
      if (/[\r\n\0]/.test(value)) throw new SourceError(`token file ${file} holds more than one line`);
      cached = { value, at: now() };
      return value;
    } catch (err) {
      if (cached !== undefined) return cached.value;
      throw err;
    } finally {
      pending = undefined;
    }
  };
  return () => {
    if (cached !== undefined && now() - cached.at < rereadMs) return Promise.resolve(cached.value);
    return (pending ??= read());
  };
}

function fail(message: string): never {
  throw new SourceError(message);
}

async function readText(file: string, what: string, signal: AbortSignal | undefined): Promise<string> {
  return (await readFileCapped(file, MAX_SMALL_FILE, new Deadline(signal, FILE_TIMEOUT_MS, what), what)).toString("utf8");
}

async function readOptional(file: string, what: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  try {
    return await readText(file, what, signal);
  } catch (err) {
    if (err instanceof SourceError && / not found$/.test(err.message)) return undefined;
    throw err;
  }
}

function checkServer(url: string, where: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    fail(`${where}: API server ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") fail(`${where}: API server ${url} must be http or https`);
  if (u.username || u.password || u.search || u.hash) fail(`${where}: API server URL must not carry credentials, a query or a fragment`);
  return url.replace(/\/+$/, "");
}

async function inClusterAuth(options: LoadKubeAuthOptions): Promise<KubeAuth> {
  const env = options.env ?? process.env;
  const dir = options.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  const description = "in-cluster service account";
  let server = options.apiServer;
  if (server === undefined) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT ?? "443";
    if (!host) fail(`${description}: KUBERNETES_SERVICE_HOST is not set (not running in a pod?); set api_server or use a kubeconfig`);
    if (!/^\d{1,5}$/.test(port)) fail(`${description}: KUBERNETES_SERVICE_PORT ${JSON.stringify(port)} is not a port`);
    server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  const apiServer = checkServer(server, description);
  const token = tokenFile(path.join(dir, "token"), options.now);
  await token(); // fail now when there is no token
  const ca = await readOptional(path.join(dir, "ca.crt"), "service account CA", options.signal);
  const namespace = (await readOptional(path.join(dir, "namespace"), "service account namespace", options.signal))?.trim();
  return { apiServer, ca, namespace: namespace || undefined, description, token };
}

const clusterSchema = z.looseObject({
  server: z.string(),
  "certificate-authority": z.string().nullish(),
  "certificate-authority-data": z.string().nullish(),
  "insecure-skip-tls-verify": z.boolean().nullish(),
});
const userSchema = z.looseObject({
  token: z.string().nullish(),
  tokenFile: z.string().nullish(),
  "client-certificate": z.string().nullish(),
  "client-certificate-data": z.string().nullish(),
  "client-key": z.string().nullish(),
  "client-key-data": z.string().nullish(),
  exec: z.unknown().optional(),
  "auth-provider": z.unknown().optional(),
  username: z.string().nullish(),
  password: z.string().nullish(),
});
const contextSchema = z.looseObject({ cluster: z.string(), user: z.string().nullish(), namespace: z.string().nullish() });

const kubeconfigSchema = z.looseObject({
  "current-context": z.string().nullish(),
  clusters: z.array(z.looseObject({ name: z.string(), cluster: clusterSchema })).nullish(),
  users: z.array(z.looseObject({ name: z.string(), user: userSchema.nullish() })).nullish(),
  contexts: z.array(z.looseObject({ name: z.string(), context: contextSchema })).nullish(),
});

function base64Text(value: string, what: string): string {
  const body = value.replace(/\s+/g, "");
  if (body === "" || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) fail(`${what} is not valid base64`);
  return Buffer.from(body, "base64").toString("utf8");
}

async function kubeconfigAuth(file: string, options: LoadKubeAuthOptions): Promise<KubeAuth> {
  const kubeconfig = path.resolve(file);
  const dir = path.dirname(kubeconfig);
  const text = await readText(kubeconfig, "kubeconfig", options.signal);
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    // Not the parser's full message, nor the error as cause: both quote the offending line, which may hold a token.
    throw new SourceError(`kubeconfig ${kubeconfig} is not valid YAML: ${withoutQuotedLines(errorText(err))}`);
  }
  const parsed = kubeconfigSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    fail(`kubeconfig ${kubeconfig}: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}`);
  }
  const kc = parsed.data;
  const contextName = options.context ?? kc["current-context"] ?? undefined;
  if (!contextName) fail(`kubeconfig ${kubeconfig} has no current-context; name a context`);
  const description = `kubeconfig ${kubeconfig} (context ${contextName})`;
  const context = kc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) fail(`kubeconfig ${kubeconfig} has no context ${JSON.stringify(contextName)}`);
  const cluster = kc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) fail(`${description}: no cluster ${JSON.stringify(context.cluster)}`);
  const userName = context.user ?? undefined;
  const user = userName === undefined ? undefined : (kc.users?.find((u) => u.name === userName)?.user ?? fail(`${description}: no user ${JSON.stringify(userName)}`));

  if (cluster["insecure-skip-tls-verify"] === true) fail(`${description}: insecure-skip-tls-verify is not supported; give certificate-authority(-data)`);
  if (user?.exec !== undefined && user.exec !== null) fail(`${description}: user ${userName} uses an exec credential plugin, which vigil does not run; use token, tokenFile or a client certificate`);
  if (user?.["auth-provider"] !== undefined && user["auth-provider"] !== null) fail(`${description}: user ${userName} uses an auth-provider plugin, which vigil does not support`);
  if (user?.username || user?.password) fail(`${description}: basic authentication (username/password) is not supported`);

  const resolve = (p: string) => path.resolve(dir, p);
  const ca = cluster["certificate-authority-data"]
    ? base64Text(cluster["certificate-authority-data"], `${description}: certificate-authority-data`)
    : cluster["certificate-authority"]
      ? await readText(resolve(cluster["certificate-authority"]), "kubeconfig certificate-authority", options.signal)
      : undefined;
  const clientCert = user?.["client-certificate-data"]
    ? base64Text(user["client-certificate-data"], `${description}: client-certificate-data`)
    : user?.["client-certificate"]
      ? await readText(resolve(user["client-certificate"]), "kubeconfig client-certificate", options.signal)
      : undefined;
  const clientKey = user?.["client-key-data"]
    ? base64Text(user["client-key-data"], `${description}: client-key-data`)
    : user?.["client-key"]
      ? await readText(resolve(user["client-key"]), "kubeconfig client-key", options.signal)
      : undefined;
  if ((clientCert === undefined) !== (clientKey === undefined)) fail(`${description}: a client certificate needs its key and vice versa`);

  let token: () => Promise<string | undefined>;
  if (user?.token) {
    const value = user.token;
    token = () => Promise.resolve(value);
  } else if (user?.tokenFile) {
    const read = tokenFile(resolve(user.tokenFile), options.now);
    await read();
    token = read;
  } else {
    token = () => Promise.resolve(undefined);
  }
  const apiServer = checkServer(options.apiServer ?? cluster.server, description);
  return { apiServer, ca, clientCert, clientKey, namespace: context.namespace ?? undefined, description, token };
}

/** Loads API server credentials (see the module comment for the order). */
export async function loadKubeAuth(options: LoadKubeAuthOptions = {}): Promise<KubeAuth> {
  const env = options.env ?? process.env;
  if (options.inCluster === true) return inClusterAuth(options);
  if (options.kubeconfig !== undefined) return kubeconfigAuth(options.kubeconfig, options);
  if (options.inCluster === undefined && env.KUBERNETES_SERVICE_HOST) return inClusterAuth(options);
  const fromEnv = env.KUBECONFIG?.split(path.delimiter).find((p) => p !== "");
  return kubeconfigAuth(fromEnv ?? path.join(os.homedir(), ".kube", "config"), options);
}

// ---- HTTP ----

/** Dedicated clients for API servers with their own CA, one per CA (the shared client takes `ca` only at construction). */
const caClients = new Map<string, HttpClient>();
const mtlsAgents = new Map<string, https.Agent>();

function clientForCa(ca: string): HttpClient {
  let c = caClients.get(ca);
  if (c === undefined) {
    c = createHttpClient({ ca });
    caClients.set(ca, c);
  }
  return c;
}

function agentFor(auth: KubeAuth): https.Agent {
  const id = createHash("sha256").update(`${auth.ca ?? ""}\0${auth.clientCert}\0${auth.clientKey}`).digest("hex");
  let a = mtlsAgents.get(id);
  if (a === undefined) {
    a = new https.Agent({ keepAlive: true, maxSockets: 8, ca: auth.ca, cert: auth.clientCert, key: auth.clientKey });
    mtlsAgents.set(id, a);
  }
  return a;
}

/** Closes the dedicated per-CA clients and mTLS agents (agent shutdown, tests). */
export async function closeKubernetesClients(): Promise<void> {
  const clients = [...caClients.values()];
  caClients.clear();
  for (const a of mtlsAgents.values()) a.destroy();
  mtlsAgents.clear();
  await Promise.all(clients.map((c) => c.close()));
}

interface Answer {
  status: number;
  body: Buffer;
}

/** GET over node:https with a client certificate (the shared client has no client certificate option). */
function mtlsGet(url: string, headers: Record<string, string>, auth: KubeAuth, deadline: Deadline): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let agent: https.Agent;
    try {
      agent = agentFor(auth);
    } catch (err) {
      reject(new SourceError(`${auth.description}: invalid client certificate, key or CA: ${errorText(err)}`, { cause: err }));
      return;
    }
    const req = https.request(url, { method: "GET", headers, agent, signal: deadline.signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_SECRET_RESPONSE_BYTES) req.destroy(new SourceError(`GET ${url}: response larger than ${MAX_SECRET_RESPONSE_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", (err) => reject(err));
    });
    req.on("error", (err) => reject(err));
    req.end();
  });
}

async function get(url: string, headers: Record<string, string>, auth: KubeAuth, http: HttpClient, deadline: Deadline): Promise<Answer> {
  try {
    if (auth.clientCert !== undefined && url.startsWith("https:")) return await deadline.race(mtlsGet(url, headers, auth, deadline));
    const client = auth.ca !== undefined && url.startsWith("https:") ? clientForCa(auth.ca) : http;
    const res = await client.request({
      method: "GET",
      url,
      headers,
      timeoutMs: Math.max(1, Math.ceil(deadline.remaining())),
      signal: deadline.signal,
      maxResponseBytes: MAX_SECRET_RESPONSE_BYTES,
      okStatus: () => true,
    });
    return { status: res.status, body: res.body };
  } catch (err) {
    if (deadline.signal.aborted) throw deadline.error();
    if (err instanceof SourceError) throw err;
    throw new SourceError(`Kubernetes API: ${errorText(err)}`, { cause: err });
  }
}

// ---- the source ----

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

const secretSchema = z.looseObject({
  type: z.string().optional(),
  data: z.record(z.string(), z.string()).nullish(),
});

export async function fromKubernetesSecret(options: KubernetesSecretOptions, deps: { http: HttpClient }, signal?: AbortSignal): Promise<GatheredCertificate> {
  const { namespace: ns, name, auth } = options;
  const key = options.key ?? "tls.crt";
  if (typeof ns !== "string" || !DNS_LABEL.test(ns)) fail(`kubernetes secret: invalid namespace ${JSON.stringify(ns)}`);
  if (typeof name !== "string" || !DNS_SUBDOMAIN.test(name)) fail(`kubernetes secret: invalid secret name ${JSON.stringify(name)}`);
  if (typeof key !== "string" || !DATA_KEY.test(key) || key === "." || key === "..") fail(`kubernetes secret: invalid key ${JSON.stringify(key)}`);
  if (key.endsWith(".key")) fail(`kubernetes secret ${ns}/${name}: key ${key} looks like a private key; name the certificate key (tls.crt)`);
  const ref = `${ns}/${name}`;
  const server = checkServer(options.apiServer ?? auth.apiServer, `kubernetes secret ${ref}`);
  const deadline = new Deadline(signal, options.timeoutMs ?? DEFAULT_K8S_TIMEOUT_MS, `reading secret ${ref}`);

  const headers: Record<string, string> = { accept: "application/json" };
  const token = await deadline.race(auth.token());
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const url = `${server}/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`;
  const res = await get(url, headers, auth, deps.http, deadline);

  if (res.status === 404) fail(`secret ${ref} not found`);
  if (res.status === 401 || res.status === 403) {
    fail(`Kubernetes API ${server} refused to read secret ${ref} (HTTP ${res.status}): ${auth.description} needs permission "get secrets" in namespace ${ns}`);
  }
  if (res.status < 200 || res.status >= 300) {
    const snippet = res.body.toString("utf8", 0, Math.min(res.body.length, 300)).replace(/\s+/g, " ").trim();
    fail(`Kubernetes API ${server} answered HTTP ${res.status} for secret ${ref}${snippet ? `: ${snippet}` : ""}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(res.body.toString("utf8"));
  } catch {
    fail(`Kubernetes API ${server}: the answer for secret ${ref} is not JSON`);
  }
  const secret = secretSchema.safeParse(doc);
  if (!secret.success) fail(`Kubernetes API ${server}: the answer for secret ${ref} is not a Secret`);
  const value = secret.data.data?.[key];
  if (value === undefined) {
    const type = secret.data.type ?? "(none)";
    fail(type === "kubernetes.io/tls" ? `secret ${ref} has no key ${key}` : `secret ${ref} is of type ${type}, not kubernetes.io/tls, and has no key ${key}`);
  }
  if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) fail(`secret ${ref}: data.${key} is not valid base64`);
  const chain = certificatesFromBytes(Buffer.from(value, "base64"));
  if (chain.length === 0) fail(`secret ${ref}: data.${key} holds no certificate`);
  return { chain, origin: `k8s:${ref}` };
}
