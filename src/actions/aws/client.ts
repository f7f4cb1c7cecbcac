/**
 * The IAM Query API client: form-encoded `Action=…&Version=2010-05-08` POSTs, SigV4-signed for
 * service `iam`, XML answers. It classifies failures itself because AWS reports throttling as
 * HTTP 400 (`<Code>Throttling</Code>`), which a status-only rule would call permanent.
 */
import { UpstreamError } from "../../errors.ts";
import type { HttpClient, HttpResponse } from "../../net/http.ts";
import { isTransientStatus, maskUrl, parseRetryAfter } from "../../net/http.ts";
import type { Clock } from "../../util/clock.ts";
import { MASK, redact, scrub } from "../../util/redact.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import type { ProviderClient, ProviderContext } from "../../plugin/provider.ts";
import { CircuitBreaker } from "../../plugin/circuit.ts";
import type { AwsProviderConfig, ResolvedTarget } from "./config.ts";
import { resolveTarget } from "./config.ts";
import { chainCredentials, staticCredentials, type CredentialSource } from "./credentials.ts";
import { amzDate, sign } from "./sigv4.ts";
import { errorBody, parseXml, result, type XmlNode } from "./xml.ts";

export const IAM_VERSION = "2010-05-08";
export const FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8";

/**
 * Error codes worth retrying whatever the status: throttling (IAM answers it with 400), service
 * trouble, IAM's ConcurrentModification ("wait a few minutes and submit your request again"), and
 * expired temporary credentials (the next attempt fetches fresh ones).
 */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "SlowDown",
  "PriorRequestNotComplete",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "ServiceFailure",
  "InternalFailure",
  "InternalError",
  "RequestTimeout",
  "RequestTimeoutException",
  "ConcurrentModification",
  "ExpiredToken",
  "ExpiredTokenException",
  "RequestExpired",
]);

const EXPIRED_CODES: ReadonlySet<string> = new Set(["ExpiredToken", "ExpiredTokenException", "RequestExpired"]);
/** The session token itself expired (not the request's signing time, which a retry renews). */
const TOKEN_EXPIRED_CODES: ReadonlySet<string> = new Set(["ExpiredToken", "ExpiredTokenException"]);

/** What a Query call answered: the `<XResult>` of a 2xx, or the error code of an accepted non-2xx (NoSuchEntity). */
export interface IamAnswer {
  readonly status: number;
  readonly result?: XmlNode;
  readonly code?: string;
}

export interface IamCallOptions {
  /** Statuses that mean the wanted state already holds (404 NoSuchEntity on a delete). */
  readonly accept?: readonly number[];
  readonly summary?: string;
}

export interface AwsClientOptions {
  readonly ctx: ProviderContext;
  readonly config: AwsProviderConfig;
  /** Another credential source (tests); default: the config's static credentials, else the SDK chain. */
  readonly credentials?: CredentialSource;
}

export class AwsClient implements ProviderClient {
  readonly name: string;
  readonly type = "aws";
  readonly breaker: CircuitBreaker;
  readonly target: ResolvedTarget;
  readonly #credentials: CredentialSource;
  readonly #http: HttpClient;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  /** Set after AWS said the token expired: the next call skips the chain's cache. */
  #refresh = false;

  constructor(options: AwsClientOptions) {
    const { ctx, config } = options;
    this.name = ctx.name;
    this.target = resolveTarget(config);
    this.#clock = ctx.clock;
    this.#http = ctx.http;
    this.#timeoutMs = config.timeout;
    this.#credentials =
      options.credentials ??
      (config.credentials
        ? staticCredentials(config.credentials)
        : chainCredentials({ profile: config.profile, region: this.target.region, stsEndpoint: config.sts_endpoint }));
    this.breaker = new CircuitBreaker(ctx.name, ctx.clock, config.circuit, ctx.onCircuitChange);
  }

  /** The ARN partition (`aws`, `aws-cn`, `aws-us-gov`). */
  get partition(): string {
    return this.target.partition.id;
  }

  /** The Query API call for `action`: `Action` and `Version` first, then `params` in their order. */
  call(action: string, params: Readonly<Record<string, string>>, options: IamCallOptions = {}): ApiCall {
    const form = new URLSearchParams({ Action: action, Version: IAM_VERSION });
    for (const [k, v] of Object.entries(params)) form.append(k, v);
    return {
      method: "POST",
      url: this.target.endpoint,
      headers: { "Content-Type": FORM_CONTENT_TYPE },
      body: form.toString(),
      ...(options.accept ? { accept: options.accept } : {}),
      ...(options.summary ? { summary: options.summary } : {}),
    };
  }

  /** The call as a plan shows it: the form as an object, `X-Amz-Date` shown, the signature and session token masked. */
  describe(call: ApiCall): PlannedCall {
    const headers: Record<string, string> = { ...(call.headers ?? {}), Host: new URL(call.url).host, "X-Amz-Date": amzDate(this.#clock.now()) };
    if (this.#credentials.hasSessionToken) headers["X-Amz-Security-Token"] = MASK;
    headers.Authorization = MASK;
    return {
      method: call.method.toUpperCase(),
      url: maskUrl(call.url),
      headers: redact(headers),
      ...(call.body === undefined ? {} : { body: redact(Object.fromEntries(new URLSearchParams(call.body))) }),
      ...(call.summary ? { summary: call.summary } : {}),
    };
  }

  send(call: ApiCall, signal?: AbortSignal): Promise<HttpResponse> {
    return this.breaker.run(async () => {
      const action = new URLSearchParams(call.body ?? "").get("Action") ?? "request";
      const refresh = this.#refresh;
      this.#refresh = false;
      // The chain may call IMDS, a container endpoint or STS: bound that by the same deadline.
      const deadline = AbortSignal.timeout(this.#timeoutMs);
      const credentials = await this.#credentials.get({ refresh, signal: signal ? AbortSignal.any([signal, deadline]) : deadline });
      const body = call.body ?? "";
      const headers = await sign({
        method: call.method,
        url: call.url,
        headers: call.headers ?? {},
        body,
        credentials,
        region: this.target.signingRegion,
        service: "iam",
        date: new Date(this.#clock.now()),
      });
      const res = await this.#http.request({
        method: call.method,
        url: call.url,
        headers,
        body,
        timeoutMs: this.#timeoutMs,
        ...(signal ? { signal } : {}),
        ...(call.maxResponseBytes ? { maxResponseBytes: call.maxResponseBytes } : {}),
        // Every status comes back here: AWS's error code, not the status alone, says whether to retry.
        okStatus: () => true,
      });
      if ((res.status >= 200 && res.status < 300) || (call.accept ?? []).includes(res.status)) return res;
      throw await this.#failure(action, call, res);
    });
  }

  /** Sends a Query call and parses its answer. A 2xx without the action's XML answer is a permanent error. */
  async query(call: ApiCall, signal?: AbortSignal): Promise<IamAnswer> {
    const action = new URLSearchParams(call.body ?? "").get("Action") ?? "request";
    const res = await this.send(call, signal);
    const doc = await parseXml(res.text());
    if (res.status < 200 || res.status >= 300) {
      const { code } = errorBody(doc);
      return { status: res.status, ...(code ? { code } : {}) };
    }
    if (!doc || !Object.hasOwn(doc, `${action}Response`)) {
      throw new UpstreamError(false, `aws iam ${action} → ${res.status}: the answer has no <${action}Response> XML document`, {
        status: res.status,
        details: { provider: this.name, action, url: maskUrl(call.url) },
      });
    }
    const r = result(doc, action);
    return { status: res.status, ...(r === undefined ? {} : { result: r }) };
  }

  async #failure(action: string, call: ApiCall, res: HttpResponse): Promise<UpstreamError> {
    const raw = res.text();
    const { code, message, requestId } = errorBody(await parseXml(raw));
    // Static credentials never renew themselves: once their session token expired, every retry fails the same way.
    const staleForever = code !== undefined && TOKEN_EXPIRED_CODES.has(code) && this.#credentials.kind === "static";
    const transient = isTransientStatus(res.status) || (code !== undefined && TRANSIENT_CODES.has(code) && !staleForever);
    if (code && EXPIRED_CODES.has(code) && this.#credentials.kind === "chain") this.#refresh = true;
    const what = code ? res.mask(`${code}${message ? `: ${message}` : ""}`) : res.quote(200).trim();
    return new UpstreamError(transient, scrub(`aws iam ${action} → ${res.status}${what ? ` ${what}` : ""}`), {
      status: res.status,
      ...(transient ? { retryAfterMs: parseRetryAfter(res.headers, this.#clock.now()) } : {}),
      details: { provider: this.name, action, url: maskUrl(call.url), ...(code ? { aws_code: code } : {}), ...(requestId ? { request_id: requestId } : {}) },
    });
  }

  async close(): Promise<void> {
    // The shared HTTP client belongs to the agent; nothing else is held open.
  }
}
