/**
 * How the `kubernetes` provider reaches and authenticates to the API server, on the shared loader in
 * `net/kubernetes.ts`.
 *
 * Plans must show the exact URL before anything is loaded, so the server URL (and whether a bearer
 * token will be sent) is worked out synchronously when the provider is created: `api_server`, the
 * in-cluster environment, or the kubeconfig's context. Credentials themselves (token, CA, client
 * certificate) are loaded on the first call, with the server pinned to that same URL, and again after
 * a 401, so a rotated service account token or kubeconfig `tokenFile` is picked up.
 *
 * A credential that cannot be loaded the first time is a permanent error: it does not appear by
 * retrying. Once loaded, a token file that is missing or empty (mid-rotation) is a transient error,
 * so the queue retries; a kubeconfig that became invalid stays permanent.
 */
import path from "node:path";
import { UpstreamError } from "../../errors.ts";
import type { HttpClient, HttpRequest, HttpResponse } from "../../net/http.ts";
import { KubeTransport, loadKubeAuth, resolveKubeTarget, type KubeAuth, type KubeConnectionOptions, type KubeTarget } from "../../net/kubernetes.ts";
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
export type Target = KubeTarget;

function connectionOf(source: CredentialSource, e: CredentialEnv): KubeConnectionOptions {
  return {
    ...(source.in_cluster === undefined ? {} : { inCluster: source.in_cluster }),
    ...(source.kubeconfig === undefined ? {} : { kubeconfig: path.resolve(e.configDir ?? process.cwd(), source.kubeconfig) }),
    ...(source.context === undefined ? {} : { context: source.context }),
    ...(source.api_server === undefined ? {} : { apiServer: source.api_server }),
    ...(e.env ? { env: e.env } : {}),
    ...(e.serviceAccountDir ? { serviceAccountDir: e.serviceAccountDir } : {}),
    ...(e.homedir ? { homedir: e.homedir } : {}),
  };
}

/**
 * The API server and auth style, without reading any secret: `in_cluster: true`, else `kubeconfig`,
 * else in-cluster when `KUBERNETES_SERVICE_HOST` is set (and `in_cluster` is not false), else
 * `$KUBECONFIG` or `~/.kube/config`. Throws `VIGIL_ERR_CONFIG_READ` with the reason when the server
 * cannot be determined (the agent refuses to start).
 */
export function resolveTarget(source: CredentialSource, e: CredentialEnv = {}): Target {
  return resolveKubeTarget(connectionOf(source, e));
}

function loadError(target: Target, err: unknown, transient: boolean): UpstreamError {
  const aborted = (err as { aborted?: unknown } | null)?.aborted === true;
  // The loader's messages quote no kubeconfig line; anything else that reaches here is cut the same way,
  // and then neither it nor the error carrying it (logs show a cause's message) goes on.
  const full = err instanceof Error ? err.message : String(err);
  const text = withoutQuotedLines(full);
  return new UpstreamError(aborted || transient, `kubernetes: cannot load credentials from ${target.description}: ${text}`, text === full.trim() ? { cause: err } : {});
}

/** Whether the loader said waiting may help (a token file missing or empty). */
function saysTransient(err: unknown): boolean {
  return err instanceof UpstreamError && err.transient;
}

/**
 * Bearer authentication and the TLS transport of one provider entry, both fed by one lazily loaded
 * `KubeAuth`. After a 401 `invalidate()` drops it, so the next call reloads (a fresh token file read).
 */
export class KubeCredentials implements Authenticator {
  readonly target: Target;
  readonly #options: KubeConnectionOptions;
  readonly #transport: KubeTransport;
  #auth: Promise<KubeAuth> | undefined;
  /** Whether a load ever succeeded: a failure before that is permanent. */
  #loaded = false;
  /** Times credentials were loaded; tests read it. */
  loads = 0;

  constructor(source: CredentialSource, target: Target, shared: HttpClient, e: CredentialEnv = {}) {
    this.target = target;
    this.#transport = new KubeTransport(shared);
    // The mode and the file the target was resolved from, so a changed $KUBECONFIG cannot move the provider.
    this.#options = {
      ...connectionOf({ context: source.context }, e),
      ...(target.inCluster ? { inCluster: true } : { inCluster: false, kubeconfig: target.kubeconfig }),
      apiServer: target.apiServer,
    };
  }

  load(): Promise<KubeAuth> {
    return (this.#auth ??= (async () => {
      this.loads++;
      try {
        const auth = await loadKubeAuth(this.#options);
        this.#loaded = true;
        return auth;
      } catch (err) {
        this.#auth = undefined;
        throw loadError(this.target, err, this.#loaded && saysTransient(err));
      }
    })());
  }

  async headers(): Promise<Record<string, string>> {
    const auth = await this.load();
    const token = await auth.token().catch((err: unknown) => {
      throw loadError(this.target, err, saysTransient(err));
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
    request: async (req: HttpRequest): Promise<HttpResponse> => this.#transport.for(await this.load(), this.target.apiServer).request(req),
    close: () => this.#transport.close(),
  };
}
