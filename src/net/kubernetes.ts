/**
 * How vigil reaches a Kubernetes API server. One loader serves the `kubernetes` provider (and the
 * Istio and Linkerd actions on it) and the certificate check's `kubernetes_secret` source.
 *
 * Where the connection comes from, in this order:
 * - `inCluster: true` → the pod's service account; `kubeconfig` given → that file;
 * - neither: in-cluster when `KUBERNETES_SERVICE_HOST` is set (and `inCluster` is not false),
 *   otherwise `$KUBECONFIG` (its first entry) or `~/.kube/config`.
 * `apiServer` overrides the server URL in every mode.
 *
 * In-cluster reads `<dir>/token`, `<dir>/ca.crt`, `<dir>/namespace` (dir default
 * `/var/run/secrets/kubernetes.io/serviceaccount`) and `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
 * kubeconfig supports `token`, `tokenFile`, client certificates (`client-certificate(-data)`,
 * `client-key(-data)`) and `certificate-authority(-data)`; exec and auth-provider plugins, basic
 * auth and `insecure-skip-tls-verify` are refused.
 *
 * Token files (in-cluster, kubeconfig `tokenFile`) are `TokenFile`s: checked at most every 60 s and
 * read again when they changed (bound service account tokens rotate; a 401 makes the caller
 * `invalidate()` for an immediate re-read). A re-read that fails keeps the token read before for up
 * to 10 minutes: the kubelet replaces a token long before it expires, and the server's 401 for a
 * token that did lapse drops it at once.
 *
 * - `resolveKubeTarget` works out the server and whether a bearer token is sent, reading no secret:
 *   plans show the exact URL before anything is loaded.
 * - `loadKubeAuth` loads the credentials.
 * - `KubeTransport` holds the HTTP client for the server's CA and client certificate; its owner closes it.
 *
 * A connection the settings cannot give (a kubeconfig that is missing or does not parse, a missing
 * context, cluster or user, unsupported authentication, no in-cluster environment) is
 * `VIGIL_ERR_CONFIG_READ`; a token file that is missing or empty is a transient `UpstreamError`.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { VigilError } from "../errors.ts";
import { registerSecret } from "../util/redact.ts";
import { withoutQuotedLines } from "../util/yaml-error.ts";
import { createHttpClient, type HttpClient } from "./http.ts";
import { fileError, readSmallFile, TokenFile } from "./token-file.ts";

export const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Token files are checked for a change at most this often. */
export const TOKEN_RECHECK_MS = 60_000;
/** How long a token file that cannot be read again may be bridged by the token it gave last. */
export const TOKEN_STALE_GRACE_MS = 10 * 60_000;
const MAX_SMALL_FILE = 1024 * 1024;

/** How to reach and authenticate to one API server. A plain object: callers may copy it with a field changed. */
export interface KubeAuth {
  /** Base URL, e.g. `https://10.96.0.1:443`, without a trailing slash. */
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
  /** The bearer token, if any. */
  token(): Promise<string | undefined>;
  /** The server refused the token (401): the next `token()` reads its file again. Absent for a fixed token. */
  invalidate?(): void;
}

/** Where the connection comes from. */
export interface KubeConnectionOptions {
  /** kubeconfig file (absolute, or relative to the working directory). */
  readonly kubeconfig?: string;
  /** kubeconfig context. Default its `current-context`. */
  readonly context?: string;
  /** Force (true) or forbid (false) the pod's service account. Default: detected. */
  readonly inCluster?: boolean;
  /** Overrides the server URL. */
  readonly apiServer?: string;
  /** Service account directory (tests). Default `/var/run/secrets/kubernetes.io/serviceaccount`. */
  readonly serviceAccountDir?: string;
  /** Environment (tests); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Home directory for `~/.kube/config` (tests); default the user's. */
  readonly homedir?: string;
  /** Clock for the token file intervals (tests); default `Date.now`. */
  readonly now?: () => number;
}

/** What is known before any credential is read. */
export interface KubeTarget {
  /** Base URL of the API server, without a trailing slash. */
  readonly apiServer: string;
  /** Whether calls carry `Authorization: Bearer` (in-cluster, kubeconfig token or tokenFile). */
  readonly bearer: boolean;
  /** The kubeconfig file, when credentials come from one. */
  readonly kubeconfig?: string;
  readonly inCluster: boolean;
  /** For messages: never secret. */
  readonly description: string;
}

const IN_CLUSTER = "in-cluster service account";

function configError(message: string): never {
  throw new VigilError("VIGIL_ERR_CONFIG_READ", message);
}

/** `url` without a trailing slash; `VIGIL_ERR_CONFIG_READ` when it is not a plain http(s) URL. */
export function checkServer(url: string, where: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    configError(`${where}: API server ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") configError(`${where}: API server ${url} must be http or https`);
  if (u.username || u.password || u.search || u.hash) configError(`${where}: API server URL must not carry credentials, a query or a fragment`);
  return url.replace(/\/+$/, "");
}

type Mode = { inCluster: true } | { inCluster: false; kubeconfig: string };

function modeOf(options: KubeConnectionOptions): Mode {
  const env = options.env ?? process.env;
  if (options.inCluster === true) return { inCluster: true };
  if (options.kubeconfig !== undefined) return { inCluster: false, kubeconfig: path.resolve(options.kubeconfig) };
  if (options.inCluster === undefined && env.KUBERNETES_SERVICE_HOST) return { inCluster: true };
  const fromEnv = env.KUBECONFIG?.split(path.delimiter).find((p) => p !== "");
  return { inCluster: false, kubeconfig: path.resolve(fromEnv ?? path.join(options.homedir ?? os.homedir(), ".kube", "config")) };
}

function inClusterServer(options: KubeConnectionOptions): string {
  let server = options.apiServer;
  if (server === undefined) {
    const env = options.env ?? process.env;
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT ?? "443";
    if (!host) configError(`${IN_CLUSTER}: KUBERNETES_SERVICE_HOST is not set (not running in a pod?); set api_server or use a kubeconfig`);
    if (!/^\d{1,5}$/.test(port)) configError(`${IN_CLUSTER}: KUBERNETES_SERVICE_PORT ${JSON.stringify(port)} is not a port`);
    server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  return checkServer(server, IN_CLUSTER);
}

// ---- kubeconfig ----

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

type KubeUser = z.output<typeof userSchema>;

/** One context of a kubeconfig, its cluster and user looked up. */
interface Selected {
  readonly file: string;
  readonly description: string;
  readonly cluster: z.output<typeof clusterSchema>;
  readonly userName?: string;
  readonly user?: KubeUser;
  readonly namespace?: string;
}

function selectContext(text: string, file: string, wanted: string | undefined): Selected {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    // Not the parser's full message, nor the error as cause: both quote the offending line, which may hold a token.
    configError(`kubeconfig ${file} is not valid YAML: ${withoutQuotedLines(err instanceof Error ? err.message : String(err))}`);
  }
  const parsed = kubeconfigSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    configError(`kubeconfig ${file}: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}`);
  }
  const kc = parsed.data;
  const contextName = wanted ?? kc["current-context"] ?? undefined;
  if (!contextName) configError(`kubeconfig ${file} has no current-context; name a context`);
  const description = `kubeconfig ${file} (context ${contextName})`;
  const context = kc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) configError(`kubeconfig ${file} has no context ${JSON.stringify(contextName)}`);
  const cluster = kc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) configError(`${description}: no cluster ${JSON.stringify(context.cluster)}`);
  const userName = context.user ?? undefined;
  const user = userName === undefined ? undefined : (kc.users?.find((u) => u.name === userName)?.user ?? configError(`${description}: no user ${JSON.stringify(userName)}`));
  return {
    file,
    description,
    cluster,
    ...(userName === undefined ? {} : { userName }),
    ...(user ? { user } : {}),
    ...(context.namespace ? { namespace: context.namespace } : {}),
  };
}

function readKubeconfigSync(file: string): string {
  try {
    if (statSync(file).size > MAX_SMALL_FILE) configError(`cannot read kubeconfig ${file}: larger than ${MAX_SMALL_FILE} bytes`);
    return readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw fileError("cannot read kubeconfig", file, err, false);
  }
}

/**
 * The API server and whether a bearer token is sent, reading no secret (the kubeconfig is read, its
 * token files and keys are not). Throws `VIGIL_ERR_CONFIG_READ` with the reason when the server
 * cannot be determined.
 */
export function resolveKubeTarget(options: KubeConnectionOptions): KubeTarget {
  const mode = modeOf(options);
  if (mode.inCluster) return { apiServer: inClusterServer(options), bearer: true, inCluster: true, description: IN_CLUSTER };
  const sel = selectContext(readKubeconfigSync(mode.kubeconfig), mode.kubeconfig, options.context);
  const bearer = Boolean(sel.user?.token || sel.user?.tokenFile);
  return { apiServer: checkServer(options.apiServer ?? sel.cluster.server, sel.description), bearer, kubeconfig: mode.kubeconfig, inCluster: false, description: sel.description };
}

// ---- credentials ----

async function readText(file: string, label: string): Promise<string> {
  return (await readSmallFile(file, label, MAX_SMALL_FILE)).toString("utf8");
}

async function readOptional(file: string, label: string): Promise<string | undefined> {
  try {
    return await readText(file, label);
  } catch (err) {
    if ((err as { cause?: { code?: unknown } }).cause?.code === "ENOENT") return undefined;
    throw err;
  }
}

/** A token file as `KubeAuth` reads it, read once now so a missing token fails the load. */
async function tokenFrom(file: string, label: string, options: KubeConnectionOptions): Promise<Pick<KubeAuth, "token" | "invalidate">> {
  const reader = new TokenFile(file, { label, recheckMs: TOKEN_RECHECK_MS, staleGraceMs: TOKEN_STALE_GRACE_MS, ...(options.now ? { now: options.now } : {}) });
  await reader.token();
  return { token: () => reader.token(), invalidate: () => reader.invalidate() };
}

async function inClusterAuth(options: KubeConnectionOptions): Promise<KubeAuth> {
  const dir = options.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  const apiServer = inClusterServer(options);
  const token = await tokenFrom(path.join(dir, "token"), "service account token file", options);
  const ca = await readOptional(path.join(dir, "ca.crt"), "cannot read service account CA");
  const namespace = (await readOptional(path.join(dir, "namespace"), "cannot read service account namespace"))?.trim();
  return { apiServer, ...(ca === undefined ? {} : { ca }), ...(namespace ? { namespace } : {}), description: IN_CLUSTER, ...token };
}

function base64Text(value: string, what: string): string {
  const body = value.replace(/\s+/g, "");
  if (body === "" || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) configError(`${what} is not valid base64`);
  return Buffer.from(body, "base64").toString("utf8");
}

async function kubeconfigAuth(file: string, options: KubeConnectionOptions): Promise<KubeAuth> {
  const sel = selectContext(await readText(file, "cannot read kubeconfig"), file, options.context);
  const { description, cluster, user, userName } = sel;
  if (cluster["insecure-skip-tls-verify"] === true) configError(`${description}: insecure-skip-tls-verify is not supported; give certificate-authority(-data)`);
  if (user?.exec !== undefined && user.exec !== null) configError(`${description}: user ${userName} uses an exec credential plugin, which vigil does not run; use token, tokenFile or a client certificate`);
  if (user?.["auth-provider"] !== undefined && user["auth-provider"] !== null) configError(`${description}: user ${userName} uses an auth-provider plugin, which vigil does not support`);
  if (user?.username || user?.password) configError(`${description}: basic authentication (username/password) is not supported`);

  const dir = path.dirname(file);
  const resolve = (p: string) => path.resolve(dir, p);
  const pem = async (data: string | null | undefined, ref: string | null | undefined, key: string): Promise<string | undefined> => {
    if (data) return base64Text(data, `${description}: ${key}-data`);
    if (ref) return readText(resolve(ref), `cannot read kubeconfig ${key}`);
    return undefined;
  };
  const ca = await pem(cluster["certificate-authority-data"], cluster["certificate-authority"], "certificate-authority");
  const clientCert = await pem(user?.["client-certificate-data"], user?.["client-certificate"], "client-certificate");
  const clientKey = await pem(user?.["client-key-data"], user?.["client-key"], "client-key");
  if ((clientCert === undefined) !== (clientKey === undefined)) configError(`${description}: a client certificate needs its key and vice versa`);

  let token: Pick<KubeAuth, "token" | "invalidate">;
  if (user?.token) {
    const value = user.token;
    token = { token: () => Promise.resolve(value) };
  } else if (user?.tokenFile) {
    token = await tokenFrom(resolve(user.tokenFile), "kubeconfig tokenFile", options);
  } else {
    token = { token: () => Promise.resolve(undefined) };
  }
  return {
    apiServer: checkServer(options.apiServer ?? cluster.server, description),
    ...(ca === undefined ? {} : { ca }),
    ...(clientCert === undefined ? {} : { clientCert }),
    ...(clientKey === undefined ? {} : { clientKey }),
    ...(sel.namespace === undefined ? {} : { namespace: sel.namespace }),
    description,
    ...token,
  };
}

/** Loads the API server's credentials (see the module comment for the order). */
export async function loadKubeAuth(options: KubeConnectionOptions = {}): Promise<KubeAuth> {
  const mode = modeOf(options);
  return mode.inCluster ? inClusterAuth(options) : kubeconfigAuth(mode.kubeconfig, options);
}

// ---- transport ----

/**
 * The HTTP client for an API server with its own CA or a client certificate: the shared client takes
 * TLS settings only when created, so a dedicated one is made for them, and replaced when they change
 * (a rotated certificate). Owned by one user (a provider, a check), which closes it.
 */
export class KubeTransport {
  readonly #shared: HttpClient;
  #dedicated: { id: string; client: HttpClient } | undefined;

  constructor(shared: HttpClient) {
    this.#shared = shared;
  }

  /** The client for a request to `url` with `auth`'s TLS settings. */
  for(auth: Pick<KubeAuth, "ca" | "clientCert" | "clientKey">, url: string): HttpClient {
    if (!url.startsWith("https:") || (auth.ca === undefined && auth.clientCert === undefined)) return this.#shared;
    if (auth.clientKey !== undefined) registerSecret(auth.clientKey);
    const id = createHash("sha256").update(`${auth.ca ?? ""}\0${auth.clientCert ?? ""}\0${auth.clientKey ?? ""}`).digest("hex");
    const current = this.#dedicated;
    if (current?.id === id) return current.client;
    const client = createHttpClient({
      ...(auth.ca === undefined ? {} : { ca: auth.ca }),
      ...(auth.clientCert === undefined || auth.clientKey === undefined ? {} : { cert: auth.clientCert, key: auth.clientKey }),
    });
    this.#dedicated = { id, client };
    // The old pool finishes the requests it carries, then closes.
    if (current) void current.client.close().catch(() => undefined);
    return client;
  }

  /** Closes the dedicated client; the shared one belongs to the caller. A later request makes a new one. */
  async close(): Promise<void> {
    const d = this.#dedicated;
    this.#dedicated = undefined;
    await d?.client.close();
  }
}
