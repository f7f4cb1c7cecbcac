/**
 * How the `kubernetes` provider reaches and authenticates to the API server.
 *
 * Plans must show the exact URL before anything is loaded, so the server URL (and whether a bearer
 * token will be sent) is worked out synchronously when the provider is created: `api_server`, the
 * in-cluster environment, or the kubeconfig's context. Credentials themselves (token, CA, client
 * certificate) are loaded on the first call with `loadKubeAuth`, whose server is pinned to that same
 * URL, and again after a 401, so a rotated service account token or kubeconfig `tokenFile` is picked
 * up.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { loadKubeAuth, type KubeAuth, type LoadKubeAuthOptions } from "../../checks/certificate_validity/sources/kubernetes.ts";
import { UpstreamError } from "../../errors.ts";
import { createHttpClient, type HttpClient, type HttpRequest, type HttpResponse } from "../../net/http.ts";
import { MASK, registerSecret } from "../../util/redact.ts";
import type { Authenticator } from "../../net/api-call.ts";
import { withoutQuotedLines } from "../../util/yaml-error.ts";

/** Where the credentials come from, as configured. */
export interface CredentialSource {
  readonly in_cluster?: boolean;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly api_server?: string;
}

/** Test seams: the environment, the service account directory and the home directory. */
export interface CredentialEnv {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly serviceAccountDir?: string;
  readonly homedir?: string;
  /** Resolves a relative `kubeconfig`. Default the working directory. */
  readonly configDir?: string;
}

/** What is known before any credential is read. */
export interface Target {
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

const MAX_KUBECONFIG_BYTES = 1024 * 1024;

function cleanServer(url: string, where: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${where}: API server ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error(`${where}: API server ${url} must be http or https`);
  if (u.username || u.password || u.search || u.hash) throw new Error(`${where}: API server URL must not carry credentials, a query or a fragment`);
  return url.replace(/\/+$/, "");
}

interface KubeconfigView {
  "current-context"?: unknown;
  contexts?: { name?: unknown; context?: { cluster?: unknown; user?: unknown } }[];
  clusters?: { name?: unknown; cluster?: { server?: unknown } }[];
  users?: { name?: unknown; user?: { token?: unknown; tokenFile?: unknown } | null }[];
}

/** The kubeconfig file `loadKubeAuth` would read: the configured one, else `$KUBECONFIG`'s first entry, else `~/.kube/config`. */
function kubeconfigPath(source: CredentialSource, e: CredentialEnv): string {
  if (source.kubeconfig !== undefined) return path.resolve(e.configDir ?? process.cwd(), source.kubeconfig);
  const env = e.env ?? process.env;
  const fromEnv = env.KUBECONFIG?.split(path.delimiter).find((p) => p !== "");
  return path.resolve(fromEnv ?? path.join(e.homedir ?? os.homedir(), ".kube", "config"));
}

function readKubeconfig(file: string): KubeconfigView {
  let text: string;
  try {
    if (statSync(file).size > MAX_KUBECONFIG_BYTES) throw new Error(`larger than ${MAX_KUBECONFIG_BYTES} bytes`);
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`kubernetes: cannot read kubeconfig ${file}: ${(err as Error).message}`);
  }
  try {
    const doc = parseYaml(text, { maxAliasCount: 100 }) as unknown;
    return doc !== null && typeof doc === "object" ? (doc as KubeconfigView) : {};
  } catch (err) {
    throw new Error(`kubernetes: kubeconfig ${file} is not valid YAML: ${withoutQuotedLines((err as Error).message)}`);
  }
}

function viewOf(doc: KubeconfigView, file: string, wanted?: string): { server: string; bearer: boolean; context: string } {
  const contextName = wanted ?? (typeof doc["current-context"] === "string" ? doc["current-context"] : undefined);
  if (!contextName) throw new Error(`kubernetes: kubeconfig ${file} has no current-context; set context`);
  const ctx = (Array.isArray(doc.contexts) ? doc.contexts : []).find((c) => c?.name === contextName)?.context;
  if (!ctx) throw new Error(`kubernetes: kubeconfig ${file} has no context ${JSON.stringify(contextName)}`);
  const cluster = (Array.isArray(doc.clusters) ? doc.clusters : []).find((c) => c?.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== "string") throw new Error(`kubernetes: kubeconfig ${file} context ${contextName}: no cluster ${JSON.stringify(ctx.cluster)} with a server`);
  const user = (Array.isArray(doc.users) ? doc.users : []).find((u) => u?.name === ctx.user)?.user;
  const bearer = Boolean(user && ((typeof user.token === "string" && user.token !== "") || (typeof user.tokenFile === "string" && user.tokenFile !== "")));
  return { server: cluster.server, bearer, context: contextName };
}

/**
 * The API server and auth style, without reading any secret. Same order as `loadKubeAuth`:
 * `in_cluster: true`, else `kubeconfig`, else in-cluster when `KUBERNETES_SERVICE_HOST` is set (and
 * `in_cluster` is not false), else `$KUBECONFIG` or `~/.kube/config`. Throws a plain Error with the
 * reason when the server cannot be determined (the agent refuses to start).
 */
export function resolveTarget(source: CredentialSource, e: CredentialEnv = {}): Target {
  const env = e.env ?? process.env;
  const inCluster = source.in_cluster === true || (source.in_cluster === undefined && source.kubeconfig === undefined && Boolean(env.KUBERNETES_SERVICE_HOST));
  if (inCluster) {
    const description = "in-cluster service account";
    let server = source.api_server;
    if (server === undefined) {
      const host = env.KUBERNETES_SERVICE_HOST;
      const port = env.KUBERNETES_SERVICE_PORT ?? "443";
      if (!host) throw new Error("kubernetes: in_cluster is set but KUBERNETES_SERVICE_HOST is not (not running in a pod?); set api_server or use a kubeconfig");
      if (!/^\d{1,5}$/.test(port)) throw new Error(`kubernetes: KUBERNETES_SERVICE_PORT ${JSON.stringify(port)} is not a port`);
      server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
    }
    return { apiServer: cleanServer(server, description), bearer: true, inCluster: true, description };
  }
  const file = kubeconfigPath(source, e);
  const view = viewOf(readKubeconfig(file), file, source.context);
  const description = `kubeconfig ${file} (context ${view.context})`;
  return { apiServer: cleanServer(source.api_server ?? view.server, description), bearer: view.bearer, kubeconfig: file, inCluster: false, description };
}

function loadError(target: Target, err: unknown): UpstreamError {
  const aborted = (err as { aborted?: unknown } | null)?.aborted === true;
  // A kubeconfig that became invalid YAML since start-up: the parser's message quotes its lines, so
  // neither it nor the error carrying it (logs show a cause's message) goes on.
  const full = err instanceof Error ? err.message : String(err);
  const text = withoutQuotedLines(full);
  // A missing or unreadable credential does not fix itself between retries; an aborted read may.
  return new UpstreamError(aborted, `kubernetes: cannot load credentials from ${target.description}: ${text}`, text === full.trim() ? { cause: err } : {});
}

/**
 * Bearer authentication and the TLS transport of one provider entry, both fed by one lazily loaded
 * `KubeAuth`. After a 401 `invalidate()` drops it, so the next call reloads (a fresh token file read).
 */
export class KubeCredentials implements Authenticator {
  readonly target: Target;
  readonly #options: LoadKubeAuthOptions;
  readonly #shared: HttpClient;
  #auth: Promise<KubeAuth> | undefined;
  #dedicated: { id: string; client: HttpClient } | undefined;
  /** Times credentials were loaded; tests read it. */
  loads = 0;

  constructor(source: CredentialSource, target: Target, shared: HttpClient, e: CredentialEnv = {}) {
    this.target = target;
    this.#shared = shared;
    this.#options = {
      ...(target.inCluster ? { inCluster: true } : { inCluster: false, kubeconfig: target.kubeconfig }),
      ...(source.context === undefined ? {} : { context: source.context }),
      apiServer: target.apiServer,
      ...(e.env ? { env: e.env } : {}),
      ...(e.serviceAccountDir ? { serviceAccountDir: e.serviceAccountDir } : {}),
    };
  }

  load(): Promise<KubeAuth> {
    return (this.#auth ??= (async () => {
      this.loads++;
      try {
        return await loadKubeAuth(this.#options);
      } catch (err) {
        this.#auth = undefined;
        throw loadError(this.target, err);
      }
    })());
  }

  async headers(): Promise<Record<string, string>> {
    const auth = await this.load();
    const token = await auth.token().catch((err: unknown) => {
      throw loadError(this.target, err);
    });
    if (token === undefined) return {};
    registerSecret(token);
    return { Authorization: `Bearer ${token}` };
  }

  planned(): Record<string, string> {
    return this.target.bearer ? { Authorization: `Bearer ${MASK}` } : {};
  }

  invalidate(): void {
    this.#auth = undefined;
  }

  /** The HTTP client for the API server: the shared one, or one holding the CA and client certificate. */
  readonly transport: HttpClient = {
    request: async (req: HttpRequest): Promise<HttpResponse> => (await this.#clientFor(await this.load())).request(req),
    close: async () => {
      const d = this.#dedicated;
      this.#dedicated = undefined;
      await d?.client.close();
    },
  };

  async #clientFor(auth: KubeAuth): Promise<HttpClient> {
    if (!this.target.apiServer.startsWith("https:") || (auth.ca === undefined && auth.clientCert === undefined)) return this.#shared;
    if (auth.clientKey !== undefined) registerSecret(auth.clientKey);
    const id = createHash("sha256").update(`${auth.ca ?? ""}\0${auth.clientCert ?? ""}\0${auth.clientKey ?? ""}`).digest("hex");
    const current = this.#dedicated;
    if (current?.id === id) return current.client;
    const client = createHttpClient({
      ...(auth.ca === undefined ? {} : { ca: auth.ca }),
      ...(auth.clientCert === undefined || auth.clientKey === undefined ? {} : { cert: auth.clientCert, key: auth.clientKey }),
    });
    this.#dedicated = { id, client };
    // Rotated certificates: the old pool finishes its requests, then closes.
    if (current) void current.client.close().catch(() => undefined);
    return client;
  }
}
