/**
 * A read client for Microsoft Graph, for every source that lists directory or Intune objects: one
 * app registration signed in with client credentials (a cached token, refreshed before it expires and
 * once more when Graph refuses it mid-scan), `$select`ed lists followed through `@odata.nextLink`,
 * and throttling handled as Graph asks (429/503 with `Retry-After`, exponential backoff when the
 * header is missing), all within the caller's deadline.
 *
 * What it refuses: a next link that leaves the Graph deployment (the bearer token would go with it),
 * a page that is not `{value: [...]}`, an answer larger than `maxResponseBytes`. A 403 names the
 * application permission the call needs.
 */
import { UpstreamError } from "../../errors.ts";
import { maskUrl } from "../../net/http.ts";
import { ClientCredentials } from "../../net/oauth.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { scrub } from "../../util/redact.ts";
import { MalformedResponse, Reader } from "../common/read.ts";
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from "../common/retry.ts";
import { clientAuth, scopeFor, tokenUrlFor, type GraphApp } from "./config.ts";

export interface GraphClientOptions {
  readonly app: GraphApp;
  readonly ctx: PluginContext;
  /** Names the client in its circuit breaker and in logs (e.g. `intune`). */
  readonly name: string;
  /** Deadline of one request (token requests included). */
  readonly timeoutMs: number;
  /** Largest answer accepted. */
  readonly maxResponseBytes: number;
  readonly retry?: RetryPolicy;
}

export interface GraphCallOptions {
  readonly signal: AbortSignal;
  /** Epoch ms (wall clock) after which no retry starts. */
  readonly deadline: number;
  /** The application permission the call needs, named when Graph answers 403. */
  readonly permission: string;
  /** The licence the API needs (e.g. `Microsoft Entra ID P2`), named when Graph says the tenant lacks it. */
  readonly licence?: string;
}

/** Options of a paged walk. */
export interface GraphWalkOptions extends GraphCallOptions {
  /** Most items the whole walk may return; more is refused. */
  readonly maxItems: number;
  /** The config key that raises `maxItems`, named when it is exceeded. Default `max_devices`. */
  readonly limitKey?: string;
  /** Told the last page of the walk (delta queries end with `@odata.deltaLink` there). */
  readonly onLastPage?: (page: Record<string, unknown>) => void;
}

/**
 * Graph's answer when a tenant lacks the licence an API needs: `Authentication_RequestFromNonPremiumTenantOrB2CTenant`
 * ("Neither tenant is B2C or tenant doesn't have premium license") for sign-in logs and sign-in
 * activity, and a 403 whose message names the missing licence elsewhere.
 */
const LICENCE_RE = /Authentication_RequestFromNonPremiumTenantOrB2CTenant|premium licen[cs]e|not licensed|licen[cs]e (?:is )?required|requires? (?:an? )?(?:Microsoft Entra ID|Azure AD(?: Premium)?) P[12]/i;

export interface GraphQuery {
  /** `$select`: the properties to return. */
  readonly select?: readonly string[];
  /** `$top`: the page size asked for. */
  readonly top?: number;
  /** `$filter`, as Graph's OData expression. */
  readonly filter?: string;
}

export class GraphClient {
  /** Graph base URL, version included, without a trailing slash. */
  readonly graphUrl: string;
  /** The same deployment's `beta` endpoint (sign-in details that v1.0 does not publish). */
  readonly betaUrl: string;
  readonly tokenUrl: string;
  readonly credentials: ClientCredentials;
  readonly #api: ApiClient;
  readonly #maxBytes: number;
  readonly #retry: RetryPolicy;
  readonly #ctx: PluginContext;
  /** Graph requests sent, retries included (token requests are counted by `credentials.requests`). */
  calls = 0;

  constructor(o: GraphClientOptions) {
    this.graphUrl = o.app.graph_url;
    this.betaUrl = o.app.graph_url.replace(/\/[^/]*$/, "/beta");
    this.tokenUrl = tokenUrlFor(o.app.login_url, o.app.tenant_id);
    this.credentials = new ClientCredentials({
      tokenUrl: this.tokenUrl,
      clientId: o.app.client_id,
      auth: clientAuth(o.app.auth),
      scope: scopeFor(o.app.graph_url),
      http: o.ctx.http,
      clock: o.ctx.clock,
      timeoutMs: o.timeoutMs,
    });
    this.#api = new ApiClient({ ctx: { ...o.ctx, name: o.name }, type: "graph", auth: this.credentials, timeoutMs: o.timeoutMs });
    this.#maxBytes = o.maxResponseBytes;
    this.#retry = o.retry ?? DEFAULT_RETRY;
    this.#ctx = o.ctx;
  }

  /** `<graph>/<path>?<query>` with `$` and `,` left as Graph's examples write them; `base` defaults to `graphUrl`. */
  url(path: string, query: GraphQuery & { readonly extra?: Readonly<Record<string, string>> } = {}, base = this.graphUrl): string {
    const params: string[] = [];
    if (query.select?.length) params.push(`$select=${query.select.map(encodeURIComponent).join(",")}`);
    if (query.filter !== undefined) params.push(`$filter=${encodeURIComponent(query.filter)}`);
    if (query.top !== undefined) params.push(`$top=${query.top}`);
    for (const [k, v] of Object.entries(query.extra ?? {})) params.push(`${k}=${encodeURIComponent(v)}`);
    return `${base}${path.startsWith("/") ? path : `/${path}`}${params.length ? `?${params.join("&")}` : ""}`;
  }

  /** One GET of a Graph URL, parsed as a JSON object. */
  async get(url: string, o: GraphCallOptions): Promise<Record<string, unknown>> {
    this.#inside(url);
    const res = await withRetries(
      () => {
        this.calls++;
        return this.#api.send({ method: "GET", url, headers: { Accept: "application/json" }, maxResponseBytes: this.#maxBytes }, o.signal);
      },
      {
        signal: o.signal,
        deadline: o.deadline,
        policy: this.#retry,
        onRetry: (err, waitMs) => this.#ctx.logger.debug({ url: maskUrl(url, { guess: false }), wait_ms: waitMs }, `Graph call will be retried: ${(err as Error).message}`),
      },
    ).catch((err: unknown) => {
      throw explain(err, url, o.permission, o.licence);
    });
    const reader = new Reader(`GET ${maskUrl(url, { guess: false })}`);
    return reader.object(reader.json(res), "$");
  }

  /**
   * The pages of a list, each page's `value`, following `@odata.nextLink` until Graph gives none.
   * `maxItems` bounds the whole walk: more is refused, so a runaway listing cannot eat the agent.
   */
  pages(path: string, query: GraphQuery, o: GraphWalkOptions): AsyncGenerator<unknown[]> {
    return this.walk(this.url(path, query), o);
  }

  /** The pages from `url` on (a first URL, or a delta or next link kept from an earlier walk). */
  async *walk(first: string, o: GraphWalkOptions): AsyncGenerator<unknown[]> {
    let url: string | undefined = first;
    let items = 0;
    const seen = new Set<string>();
    while (url !== undefined) {
      if (seen.has(url)) throw new MalformedResponse(`GET ${maskUrl(url, { guess: false })}`, "@odata.nextLink repeats a page already read");
      seen.add(url);
      const page = await this.get(url, o);
      const reader = new Reader(`GET ${maskUrl(url, { guess: false })}`);
      const value = reader.array(page.value, "$.value");
      items += value.length;
      if (items > o.maxItems) throw new MalformedResponse(reader.where, `the list has more than ${o.maxItems} items (raise ${o.limitKey ?? "max_devices"} if that is right)`);
      yield value;
      const next = page["@odata.nextLink"];
      if (next === undefined || next === null) {
        url = undefined;
        const delta = page["@odata.deltaLink"];
        if (delta !== undefined && delta !== null && (typeof delta !== "string" || delta === "")) reader.fail("$.@odata.deltaLink", "expected a URL");
        if (typeof delta === "string") this.#inside(delta);
        o.onLastPage?.(page);
      } else if (typeof next !== "string" || next === "") reader.fail("$.@odata.nextLink", "expected a URL");
      else url = next;
    }
  }

  /**
   * Refuses URLs outside this Graph deployment (its configured version and its `beta`): a next or
   * delta link is answer data, and the token goes with the request.
   */
  #inside(url: string): void {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new MalformedResponse(`Graph (${this.graphUrl})`, "a next link is not a URL");
    }
    const under = (base: string) => {
      const b = new URL(base);
      return u.origin === b.origin && `${u.pathname}/`.startsWith(`${b.pathname.replace(/\/$/, "")}/`);
    };
    if (!under(this.graphUrl) && !under(this.betaUrl)) {
      throw new MalformedResponse(`Graph (${this.graphUrl})`, `a next link points outside ${this.graphUrl}: ${maskUrl(url)}`);
    }
  }

  async close(): Promise<void> {
    await this.#api.close();
  }
}

/** Graph's refusals with what to do about them; the rest unchanged. */
function explain(err: unknown, url: string, permission: string, licence: string | undefined): unknown {
  if (!(err instanceof UpstreamError) || err.transient) return err;
  const where = `GET ${maskUrl(url, { guess: false })}`;
  if (err.status === 403 && LICENCE_RE.test(err.message)) {
    const needs = licence ?? "a Microsoft Entra ID premium licence";
    return new UpstreamError(false, scrub(`${where} → 403: the tenant is not licensed for this API (it needs ${needs}) — ${err.message}`), {
      status: 403,
      cause: err,
      details: { licence: needs },
    });
  }
  if (err.status === 403) {
    // Identity Protection answers an unlicensed tenant with a bare 403 at times: say both.
    const orLicence = licence ? `, or the tenant lacks ${licence}` : "";
    return new UpstreamError(false, scrub(`${where} → 403: the app registration lacks the application permission ${permission} (grant it in Entra ID and give admin consent)${orLicence} — ${err.message}`), {
      status: 403,
      cause: err,
      details: { permission },
    });
  }
  if (err.status === 401) {
    return new UpstreamError(false, scrub(`${where} → 401: Graph refused the app's token even after a fresh one; check tenant_id, client_id and the credential — ${err.message}`), { status: 401, cause: err });
  }
  return err;
}
