/**
 * The generic provider client: authenticates an `ApiCall`, sends it through the shared HTTP client
 * and the provider's circuit breaker, and renders it for plans with the authentication masked.
 * Provider folders supply an `Authenticator` (SigV4, SSWS, OAuth bearer, X-Vault-Token …).
 */
import { UpstreamError } from "../errors.ts";
import type { HttpClient, HttpResponse } from "../net/http.ts";
import { maskUrl } from "../net/http.ts";
import { redact } from "../util/redact.ts";
import type { PlannedCall } from "../net/api-call.ts";
import { withoutCredentials, type ApiCall, type Authenticator } from "../net/api-call.ts";
import type { ProviderClient, ProviderContext } from "./provider.ts";
import { CircuitBreaker, type CircuitOptions } from "./circuit.ts";

export interface ApiClientOptions {
  readonly ctx: ProviderContext;
  readonly type: string;
  readonly auth: Authenticator;
  /** Whole-request deadline per call. Default 10000. */
  readonly timeoutMs?: number;
  readonly circuit?: Partial<CircuitOptions>;
  /** Another HTTP client (a custom CA); default the shared one. */
  readonly http?: HttpClient;
}

/** Parses a JSON body for plans; other bodies are shown as text. */
function shownBody(call: ApiCall): unknown {
  if (call.body === undefined) return undefined;
  const type = Object.entries(call.headers ?? {}).find(([k]) => k.toLowerCase() === "content-type")?.[1] ?? "";
  if (/json|yaml/i.test(type) || /^\s*[[{]/.test(call.body)) {
    try {
      return JSON.parse(call.body);
    } catch {
      /* not JSON after all: show the text */
    }
  }
  return call.body;
}

/** The plan entry of a call: the authentication headers masked, secrets scrubbed everywhere. */
export function describeCall(call: ApiCall, authShown: Record<string, string>): PlannedCall {
  const body = shownBody(call);
  return {
    method: call.method.toUpperCase(),
    // vigil built this URL from config and subject values: mask secret-named parameters, not every long value.
    url: maskUrl(call.url, { guess: false }),
    headers: redact({ ...(call.headers ?? {}), ...authShown }),
    ...(body === undefined ? {} : { body: redact(body) }),
    ...(call.summary ? { summary: call.summary } : {}),
  };
}

export class ApiClient implements ProviderClient {
  readonly name: string;
  readonly type: string;
  readonly breaker: CircuitBreaker;
  readonly #auth: Authenticator;
  readonly #http: HttpClient;
  readonly #timeoutMs: number;
  readonly #ownHttp: boolean;

  constructor(options: ApiClientOptions) {
    this.name = options.ctx.name;
    this.type = options.type;
    this.#auth = options.auth;
    this.#http = options.http ?? options.ctx.http;
    this.#ownHttp = options.http !== undefined;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.breaker = new CircuitBreaker(options.ctx.name, options.ctx.clock, options.circuit, options.ctx.onCircuitChange);
  }

  describe(call: ApiCall): PlannedCall {
    return describeCall(call, this.#auth.planned(call));
  }

  send(call: ApiCall, signal?: AbortSignal): Promise<HttpResponse> {
    return this.breaker.run(async () => {
      // A refusal at a token endpoint surfaces here, outside the retry below: a wrong secret costs one request.
      const auth = await this.#auth.headers(call, signal);
      try {
        return await this.#once(call, auth, signal);
      } catch (err) {
        // The API refused the token (expired, rotated): fetch a fresh one and try once more right away.
        if (err instanceof UpstreamError && err.status === 401 && this.#auth.invalidate) {
          this.#auth.invalidate();
          return await this.#once(call, await this.#auth.headers(call, signal), signal);
        }
        throw err;
      }
    });
  }

  async #once(call: ApiCall, auth: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    const accept = call.accept ?? [];
    try {
      return await this.#http.request({
        method: call.method,
        url: call.url,
        headers: { ...(call.headers ?? {}), ...auth },
        ...(call.body === undefined ? {} : { body: call.body }),
        timeoutMs: this.#timeoutMs,
        ...(signal ? { signal } : {}),
        ...(call.maxResponseBytes ? { maxResponseBytes: call.maxResponseBytes } : {}),
        okStatus: (s) => (s >= 200 && s < 300) || accept.includes(s),
      });
    } catch (err) {
      throw withoutCredentials(err, auth);
    }
  }

  async close(): Promise<void> {
    if (this.#ownHttp) await this.#http.close();
  }
}

/** Runs calls one after another; the first failure stops the sequence (the queue retries the job). */
export async function sendAll(client: ProviderClient, calls: readonly ApiCall[], signal?: AbortSignal): Promise<HttpResponse[]> {
  const out: HttpResponse[] = [];
  for (const call of calls) out.push(await client.send(call, signal));
  return out;
}

/** JSON body text and its content type, for `ApiCall`s. */
export function jsonCall(method: string, url: string, body: unknown, extra: Omit<ApiCall, "method" | "url" | "body"> = {}): ApiCall {
  return { ...extra, method, url, headers: { "Content-Type": "application/json", Accept: "application/json", ...(extra.headers ?? {}) }, body: JSON.stringify(body) };
}
