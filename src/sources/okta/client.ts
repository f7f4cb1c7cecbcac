/**
 * A read client for an Okta org's management API, for every source that lists users, group members
 * or System Log events: SSWS or OAuth service-app authentication (`auth.ts`), lists followed through
 * `Link: <…>; rel="next"` (never off the org: the credential goes with every page), Okta's rate
 * limits honoured (429 with `X-Rate-Limit-Reset`, a floor for the wait), 5xx retried with backoff,
 * all within the caller's deadline.
 *
 * What it refuses: an answer that is not the documented JSON shape, an answer larger than
 * `maxResponseBytes`, a next link leaving the org. A 403 names the scope (or admin permission) the
 * call needs; Okta's `E0000006` is the same answer for both.
 */
import { UpstreamError } from "../../errors.ts";
import { maskUrl } from "../../net/http.ts";
import { nextLink } from "../../net/link.ts";
import type { ClientCredentials } from "../../net/oauth.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { scrub } from "../../util/redact.ts";
import { MalformedResponse, Reader } from "../common/read.ts";
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from "../common/retry.ts";
import { oktaAuthenticator } from "./auth.ts";
import type { OktaAuth } from "./config.ts";

export interface OktaReaderOptions {
  readonly orgUrl: string;
  readonly auth: OktaAuth;
  readonly ctx: PluginContext;
  /** Names the client in its circuit breaker and logs. */
  readonly name: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly retry?: RetryPolicy;
}

export interface OktaCallOptions {
  readonly signal: AbortSignal;
  /** Epoch ms (wall clock) after which no retry starts. */
  readonly deadline: number;
  /** The OAuth scope the call needs (`okta.users.read`, …), named when Okta answers 403. */
  readonly scope: string;
  /** Statuses besides 2xx whose body is still an answer (404 E0000007 for a user that is gone). */
  readonly accept?: readonly number[];
}

export interface OktaPage {
  readonly status: number;
  readonly body: unknown;
  /** The `rel="next"` link, checked to stay within the org. */
  readonly next: string | undefined;
  readonly reader: Reader;
}

export class OktaReader {
  /** `https://<org>`, without a trailing slash. */
  readonly orgUrl: string;
  readonly tokens: ClientCredentials | undefined;
  readonly authType: "ssws" | "oauth";
  readonly #api: ApiClient;
  readonly #maxBytes: number;
  readonly #retry: RetryPolicy;
  readonly #ctx: PluginContext;
  /** Okta requests sent, retries included (token requests are counted by `tokens.requests`). */
  calls = 0;

  constructor(o: OktaReaderOptions) {
    this.orgUrl = o.orgUrl;
    const { auth, tokens } = oktaAuthenticator(o.auth, o.orgUrl, o.ctx, o.timeoutMs);
    this.tokens = tokens;
    this.authType = o.auth.type;
    this.#api = new ApiClient({ ctx: { ...o.ctx, name: o.name }, type: "okta", auth, timeoutMs: o.timeoutMs });
    this.#maxBytes = o.maxResponseBytes;
    this.#retry = o.retry ?? DEFAULT_RETRY;
    this.#ctx = o.ctx;
  }

  /** An absolute URL under the org. */
  url(path: string, query: Readonly<Record<string, string | undefined>> = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
    const qs = params.toString().replace(/\+/g, "%20");
    return `${this.orgUrl}${path}${qs ? `?${qs}` : ""}`;
  }

  /** One GET, parsed as JSON, with the next link of its `Link` header. */
  async get(url: string, o: OktaCallOptions): Promise<OktaPage> {
    this.#inside(url);
    const shown = maskUrl(url, { guess: false });
    const res = await withRetries(
      () => {
        this.calls++;
        return this.#api.send({ method: "GET", url, headers: { Accept: "application/json" }, maxResponseBytes: this.#maxBytes, ...(o.accept ? { accept: o.accept } : {}) }, o.signal);
      },
      {
        signal: o.signal,
        deadline: o.deadline,
        policy: this.#retry,
        onRetry: (err, waitMs) => this.#ctx.logger.debug({ url: shown, wait_ms: waitMs }, `Okta call will be retried: ${err.message}`),
      },
    ).catch((err: unknown) => {
      throw explain(err, shown, o.scope, this.authType);
    });
    const reader = new Reader(`GET ${shown}`);
    const body = reader.json(res);
    const link = nextLink(res.headers["link"]);
    let next: string | undefined;
    if (link !== undefined) {
      try {
        next = new URL(link, url).href;
      } catch {
        throw new MalformedResponse(reader.where, "the next link is not a URL");
      }
      this.#inside(next);
    }
    return { status: res.status, body, next, reader };
  }

  /**
   * Every page of a list (`[...]` answers) from `first`, following next links until there is none.
   * `maxItems` bounds the walk: more is refused rather than held in memory.
   */
  async *pages(first: string, o: OktaCallOptions & { readonly maxItems: number; readonly limitKey: string }): AsyncGenerator<unknown[]> {
    let url: string | undefined = first;
    let items = 0;
    const seen = new Set<string>();
    while (url !== undefined) {
      if (seen.has(url)) throw new MalformedResponse(`GET ${maskUrl(url, { guess: false })}`, "the next link repeats a page already read");
      seen.add(url);
      const page = await this.get(url, o);
      const list = page.reader.array(page.body, "$");
      items += list.length;
      if (items > o.maxItems) throw new MalformedResponse(page.reader.where, `the list has more than ${o.maxItems} items (raise ${o.limitKey} if that is right)`);
      yield list;
      // An empty page ends a list even if Okta links a next one.
      url = list.length > 0 ? page.next : undefined;
    }
  }

  #inside(url: string): void {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new MalformedResponse(`Okta (${this.orgUrl})`, "a link is not a URL");
    }
    if (u.origin !== this.orgUrl) throw new MalformedResponse(`Okta (${this.orgUrl})`, `a next link leaves the org: ${maskUrl(url)}`);
  }

  async close(): Promise<void> {
    await this.#api.close();
  }
}

/** Okta's refusals with what to do about them; the rest unchanged. */
function explain(err: unknown, where: string, scope: string, authType: "ssws" | "oauth"): unknown {
  if (!(err instanceof UpstreamError) || err.transient) return err;
  if (err.status === 403) {
    const fix =
      authType === "oauth"
        ? `grant the scope ${scope} to the service app (and request it in auth.scopes), and give the app an admin role that allows it`
        : `the API token's admin lacks the permission this needs (OAuth scope ${scope}); use a token of an admin whose role allows it`;
    return new UpstreamError(false, scrub(`GET ${where} → 403: ${fix} — ${err.message}`), { status: 403, cause: err, details: { permission: scope } });
  }
  if (err.status === 401) {
    return new UpstreamError(false, scrub(`GET ${where} → 401: Okta refused the credential (a revoked or mistyped API token, or a service app whose key or client id is wrong) — ${err.message}`), { status: 401, cause: err });
  }
  return err;
}
