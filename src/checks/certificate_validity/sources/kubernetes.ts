/**
 * Certificates from a Kubernetes Secret (`kubernetes.io/tls`, key `tls.crt` by default), read with
 * one GET from the API server. The connection (kubeconfig, in-cluster service account, token files,
 * client certificates, CA) comes from the shared loader in `net/kubernetes.ts`; this module turns its
 * failures into `SourceError`s, the check's CERT_SOURCE_UNAVAILABLE.
 *
 * The request needs RBAC `get` on `secrets` in the namespace. The secret's other keys (`tls.key`)
 * are never decoded, kept or quoted.
 */
import { z } from "zod";
import type { GatheredCertificate } from "../types.ts";
import type { HttpClient } from "../../../net/http.ts";
import { checkServer as checkApiServer, KubeTransport, loadKubeAuth as loadConnection, type KubeAuth, type KubeConnectionOptions } from "../../../net/kubernetes.ts";
import { certificatesFromBytes, Deadline, errorText, SourceError } from "./common.ts";

export type { KubeAuth, KubeConnectionOptions } from "../../../net/kubernetes.ts";

export const DEFAULT_K8S_TIMEOUT_MS = 10_000;
/** A Secret holds at most 1 MiB; base64 and JSON make the response larger. */
export const MAX_SECRET_RESPONSE_BYTES = 2 * 1024 * 1024;
/** Credentials are loaded again after this long, so an edited kubeconfig (a new CA, server or user) is picked up. */
export const AUTH_RELOAD_MS = 60_000;

/** One Secret to read, and with which credentials. */
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

function fail(message: string): never {
  throw new SourceError(message);
}

function asSourceError(err: unknown, prefix = ""): SourceError {
  if (err instanceof SourceError) return err;
  return new SourceError(`${prefix}${errorText(err)}`, { cause: err });
}

/** Loads API server credentials with the shared loader; any failure is a SourceError. */
export async function loadKubeAuth(options: KubeConnectionOptions = {}): Promise<KubeAuth> {
  try {
    return await loadConnection(options);
  } catch (err) {
    throw asSourceError(err);
  }
}

/**
 * The Kubernetes side of one certificate check: per connection setting (a check has one), the
 * credentials, loaded again every `AUTH_RELOAD_MS` and shared by concurrent reads (a failed load is
 * not kept), and the HTTP client for the API server's CA and client certificate. The check closes it
 * when it stops.
 */
export class KubernetesSources {
  readonly #shared: HttpClient;
  readonly #now: () => number;
  readonly #connections = new Map<string, { transport: KubeTransport; auth?: { at: number; promise: Promise<KubeAuth> } }>();

  constructor(shared: HttpClient, now: () => number = Date.now) {
    this.#shared = shared;
    this.#now = now;
  }

  /** Reads one Secret over the connection `connection` describes. */
  async read(connection: KubeConnectionOptions, secret: Omit<KubernetesSecretOptions, "auth">, signal?: AbortSignal): Promise<GatheredCertificate> {
    const key = JSON.stringify(connection);
    let c = this.#connections.get(key);
    if (c === undefined) {
      c = { transport: new KubeTransport(this.#shared) };
      this.#connections.set(key, c);
    }
    const now = this.#now();
    let auth = c.auth;
    if (auth === undefined || now - auth.at >= AUTH_RELOAD_MS) {
      const entry = c;
      const promise = loadKubeAuth(connection);
      auth = entry.auth = { at: now, promise };
      promise.catch(() => {
        if (entry.auth?.promise === promise) entry.auth = undefined;
      });
    }
    return fromKubernetesSecret({ ...secret, auth: await auth.promise }, { transport: c.transport }, signal);
  }

  /** Closes the dedicated HTTP clients. */
  async close(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(all.map((c) => c.transport.close()));
  }
}

interface Answer {
  status: number;
  body: Buffer;
}

async function get(url: string, headers: Record<string, string>, auth: KubeAuth, transport: KubeTransport, deadline: Deadline): Promise<Answer> {
  try {
    const res = await transport.for(auth, url).request({
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
    throw asSourceError(err, "Kubernetes API: ");
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

/** Reads the certificate chain from one Secret; `transport` supplies the client for the API server's TLS settings. */
export async function fromKubernetesSecret(options: KubernetesSecretOptions, deps: { transport: KubeTransport }, signal?: AbortSignal): Promise<GatheredCertificate> {
  const { namespace: ns, name, auth } = options;
  const key = options.key ?? "tls.crt";
  if (typeof ns !== "string" || !DNS_LABEL.test(ns)) fail(`kubernetes secret: invalid namespace ${JSON.stringify(ns)}`);
  if (typeof name !== "string" || !DNS_SUBDOMAIN.test(name)) fail(`kubernetes secret: invalid secret name ${JSON.stringify(name)}`);
  if (typeof key !== "string" || !DATA_KEY.test(key) || key === "." || key === "..") fail(`kubernetes secret: invalid key ${JSON.stringify(key)}`);
  if (key.endsWith(".key")) fail(`kubernetes secret ${ns}/${name}: key ${key} looks like a private key; name the certificate key (tls.crt)`);
  const ref = `${ns}/${name}`;
  let server: string;
  try {
    server = checkApiServer(options.apiServer ?? auth.apiServer, `kubernetes secret ${ref}`);
  } catch (err) {
    throw asSourceError(err);
  }
  const deadline = new Deadline(signal, options.timeoutMs ?? DEFAULT_K8S_TIMEOUT_MS, `reading secret ${ref}`);

  const headers: Record<string, string> = { accept: "application/json" };
  const token = await deadline.race(auth.token()).catch((err: unknown) => {
    throw asSourceError(err, `${auth.description}: `);
  });
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const url = `${server}/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`;
  const res = await get(url, headers, auth, deps.transport, deadline);

  if (res.status === 404) fail(`secret ${ref} not found`);
  if (res.status === 401 || res.status === 403) {
    // A refused token is read from its file again next time, not reused until the next reload.
    if (res.status === 401) auth.invalidate?.();
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
