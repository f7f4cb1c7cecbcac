/**
 * The calls a receiver makes to a transmitter: the SSF metadata (SSF 1.0 §7), the stream management
 * API (§8.1: configuration, status, verification) and RFC 8936 polls.
 *
 * The metadata URL is the operator's; every URL the metadata names is the transmitter's word and is
 * fetched through the hostile-URL guard (public https targets only) unless the transmitter is
 * configured `internal`. A 401 drops the cached access token and the call is made once more with a
 * fresh one: short-lived tokens expire during normal operation.
 */
import { UpstreamError, VigilError, errorMessage } from "../../errors.ts";
import type { HttpClient, HttpResponse } from "../../net/http.ts";
import { withoutCredentials, type Authenticator } from "../../net/api-call.ts";
import type { TransmitterConfig } from "./config.ts";
import { metadataUrl } from "./config.ts";

/** Transmitter Configuration Metadata (SSF 1.0 §7.1), the members vigil reads. */
export interface TransmitterMetadata {
  readonly issuer: string;
  readonly spec_version?: string;
  readonly jwks_uri?: string;
  readonly delivery_methods_supported: readonly string[];
  readonly configuration_endpoint?: string;
  readonly status_endpoint?: string;
  readonly verification_endpoint?: string;
  readonly critical_subject_members: readonly string[];
}

/** A Stream Configuration (SSF 1.0 §8.1.1), the members vigil reads. */
export interface StreamConfiguration {
  readonly stream_id: string;
  readonly iss: string;
  readonly aud: readonly string[];
  readonly delivery: { readonly method: string; readonly endpoint_url?: string };
  readonly events_requested: readonly string[];
  readonly events_delivered: readonly string[];
  readonly min_verification_interval?: number;
  readonly inactivity_timeout?: number;
  readonly description?: string;
}

export type StreamStatus = "enabled" | "paused" | "disabled";
export const STREAM_STATUSES: readonly StreamStatus[] = ["enabled", "paused", "disabled"];

/** The body of a stream create or update, as vigil sends it. */
export interface StreamRequest {
  readonly stream_id?: string;
  readonly delivery: { readonly method: string; readonly endpoint_url?: string; readonly authorization_header?: string };
  readonly events_requested: readonly string[];
  readonly description: string;
}

/** An RFC 8936 poll answer. */
export interface PollAnswer {
  readonly sets: Readonly<Record<string, string>>;
  readonly moreAvailable: boolean;
}

/** The transmitter's answer breaks SSF: not retried until something changes (a reload, the next bring-up). */
export class ProtocolError extends UpstreamError {
  constructor(message: string) {
    super(false, message);
    this.name = "ProtocolError";
  }
}

/** A stream configuration names another issuer than the transmitter's (SSF 1.0 §8.1.1.1: the stream must not be used). */
export class IssuerMismatch extends ProtocolError {
  readonly streamId: string;
  constructor(streamId: string, iss: string) {
    super(`the stream's iss ${JSON.stringify(iss.slice(0, 200))} is not the transmitter's issuer`);
    this.name = "IssuerMismatch";
    this.streamId = streamId;
  }
}

const MAX_DOCUMENT_BYTES = 256 * 1024;
/** An RFC 8936 answer holds up to max_events SETs of up to max_set_bytes each. */
const pollBytes = (t: TransmitterConfig) => t.poll.max_events * (t.max_set_bytes + 512) + 4096;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

export interface ClientOptions {
  readonly config: TransmitterConfig;
  readonly http: HttpClient;
  readonly auth: Authenticator | undefined;
}

export class TransmitterClient {
  readonly #t: TransmitterConfig;
  readonly #http: HttpClient;
  readonly #auth: Authenticator | undefined;

  constructor(options: ClientOptions) {
    this.#t = options.config;
    this.#http = options.http;
    this.#auth = options.auth;
  }

  /** Reads and checks the metadata: `issuer` must equal the configured issuer (SSF 1.0 §7.2.2). */
  async discover(signal?: AbortSignal): Promise<TransmitterMetadata> {
    const url = metadataUrl(this.#t);
    const res = await this.#http.request({ method: "GET", url, headers: { Accept: "application/json" }, timeoutMs: this.#t.timeout, maxResponseBytes: MAX_DOCUMENT_BYTES, ...(signal ? { signal } : {}) });
    const doc = res.json<unknown>();
    if (!isObject(doc)) throw new ProtocolError(`the SSF metadata at ${url} is not a JSON object`);
    if (doc.issuer !== this.#t.issuer) throw new ProtocolError(`the SSF metadata at ${url} names issuer ${JSON.stringify(String(doc.issuer).slice(0, 200))}, not ${this.#t.issuer}`);
    const endpoint = (key: string): string | undefined => {
      const v = doc[key];
      if (v === undefined) return undefined;
      if (typeof v !== "string") throw new ProtocolError(`the SSF metadata's ${key} is not a string`);
      this.#checkUrl(v, key);
      return v;
    };
    return {
      issuer: this.#t.issuer,
      ...(typeof doc.spec_version === "string" ? { spec_version: doc.spec_version } : {}),
      ...opt("jwks_uri", endpoint("jwks_uri")),
      delivery_methods_supported: strings(doc.delivery_methods_supported),
      ...opt("configuration_endpoint", endpoint("configuration_endpoint")),
      ...opt("status_endpoint", endpoint("status_endpoint")),
      ...opt("verification_endpoint", endpoint("verification_endpoint")),
      critical_subject_members: strings(doc.critical_subject_members).slice(0, 32),
    };
  }

  /** POST the configuration endpoint: the new stream (201), or `conflict` when the transmitter allows one stream per receiver (409). */
  async createStream(endpoint: string, body: StreamRequest, signal?: AbortSignal): Promise<StreamConfiguration | "conflict"> {
    const res = await this.#call("POST", endpoint, body, signal, [409]);
    if (res.status === 409) return "conflict";
    return this.#stream(res.json<unknown>(), "create");
  }

  /** GET the configuration endpoint: one stream (undefined when 404), or with no id the receiver's streams. */
  async readStream(endpoint: string, streamId: string, signal?: AbortSignal): Promise<StreamConfiguration | undefined> {
    const res = await this.#call("GET", withQuery(endpoint, { stream_id: streamId }), undefined, signal, [404]);
    if (res.status === 404) return undefined;
    const doc = res.json<unknown>();
    // Some transmitters answer a read by id with a one-element list.
    return this.#stream(Array.isArray(doc) && doc.length === 1 ? doc[0] : doc, "read");
  }

  async listStreams(endpoint: string, signal?: AbortSignal): Promise<StreamConfiguration[]> {
    const res = await this.#call("GET", endpoint, undefined, signal);
    const doc = res.json<unknown>();
    const list = Array.isArray(doc) ? doc : isObject(doc) ? [doc] : undefined;
    if (list === undefined) throw new ProtocolError("the stream list is not a JSON array");
    return list.slice(0, 100).map((s) => this.#stream(s, "list"));
  }

  /** PATCH (or PUT) the configuration endpoint; `unsupported` when the transmitter refuses the method (405, as the CAEP interoperability profile allows). */
  async updateStream(endpoint: string, method: "PATCH" | "PUT", body: StreamRequest, signal?: AbortSignal): Promise<StreamConfiguration | "unsupported"> {
    const res = await this.#call(method, endpoint, body, signal, [405, 501]);
    if (res.status === 405 || res.status === 501) return "unsupported";
    return this.#stream(res.json<unknown>(), "update");
  }

  /** DELETE the stream; an already missing stream (404) counts as deleted. */
  async deleteStream(endpoint: string, streamId: string, signal?: AbortSignal): Promise<void> {
    await this.#call("DELETE", withQuery(endpoint, { stream_id: streamId }), undefined, signal, [404]);
  }

  async readStatus(endpoint: string, streamId: string, signal?: AbortSignal): Promise<{ status: StreamStatus; reason?: string }> {
    const res = await this.#call("GET", withQuery(endpoint, { stream_id: streamId }), undefined, signal);
    return parseStatus(res.json<unknown>());
  }

  async updateStatus(endpoint: string, streamId: string, status: StreamStatus, reason: string, signal?: AbortSignal): Promise<{ status: StreamStatus; reason?: string } | "pending"> {
    const res = await this.#call("POST", endpoint, { stream_id: streamId, status, reason }, signal);
    // 202: accepted but not decided yet (SSF 1.0 §8.1.2.2).
    if (res.status === 202) return "pending";
    return parseStatus(res.json<unknown>());
  }

  /** POST the verification endpoint (204). A 429 (faster than min_verification_interval) is transient with the server's wait. */
  async requestVerification(endpoint: string, streamId: string, state: string, signal?: AbortSignal): Promise<void> {
    await this.#call("POST", endpoint, { stream_id: streamId, state }, signal);
  }

  /** One RFC 8936 poll. `timeoutMs` bounds a long poll. */
  async poll(url: string, body: { maxEvents: number; returnImmediately: boolean; ack: readonly string[]; setErrs: Readonly<Record<string, { err: string; description: string }>> }, timeoutMs: number, signal?: AbortSignal): Promise<PollAnswer> {
    this.#checkUrl(url, "poll endpoint_url");
    const res = await this.#call("POST", url, body, signal, [], timeoutMs, pollBytes(this.#t));
    const doc = res.json<unknown>();
    if (!isObject(doc)) throw new ProtocolError("the poll answer is not a JSON object");
    const sets = doc.sets ?? {};
    if (!isObject(sets)) throw new ProtocolError("the poll answer's sets is not an object");
    const out: Record<string, string> = {};
    for (const [jti, jws] of Object.entries(sets)) {
      if (typeof jws !== "string") throw new ProtocolError("a SET in the poll answer is not a string");
      out[jti] = jws;
    }
    return { sets: out, moreAvailable: doc.moreAvailable === true };
  }

  /** Discovered URLs must be https (SSF 1.0 §7.1) unless the transmitter is internal. */
  #checkUrl(url: string, what: string): void {
    const u = URL.parse(url);
    if (u === null || !/^https?:$/.test(u.protocol)) throw new ProtocolError(`the transmitter's ${what} is not an http(s) URL`);
    if (u.protocol !== "https:" && !this.#t.internal) throw new VigilError("VIGIL_ERR_HOSTILE_URL", `the transmitter's ${what} does not use https (set internal: true for a transmitter on a private network)`);
  }

  async #call(method: string, url: string, body: unknown, signal: AbortSignal | undefined, accept: readonly number[] = [], timeoutMs = this.#t.timeout, maxBytes = MAX_DOCUMENT_BYTES): Promise<HttpResponse> {
    this.#checkUrl(url, "endpoint");
    const send = async (): Promise<HttpResponse> => {
      const auth = this.#auth ? await this.#auth.headers({ method, url }, signal) : {};
      try {
        return await this.#http.request({
          method,
          url,
          headers: { Accept: "application/json", ...auth },
          ...(body === undefined ? {} : { json: body }),
          timeoutMs,
          maxResponseBytes: maxBytes,
          untrusted: { allowPrivate: this.#t.internal },
          okStatus: (s) => (s >= 200 && s < 300) || accept.includes(s),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        throw withoutCredentials(err, auth);
      }
    };
    try {
      return await send();
    } catch (err) {
      if (err instanceof UpstreamError && err.status === 401 && this.#auth?.invalidate) {
        // The access token expired or was revoked: a fresh one, then the same call once more.
        this.#auth.invalidate();
        return await send();
      }
      throw err;
    }
  }

  #stream(doc: unknown, what: string): StreamConfiguration {
    if (!isObject(doc)) throw new ProtocolError(`the stream configuration (${what}) is not a JSON object`);
    const id = doc.stream_id;
    if (typeof id !== "string" || id === "" || id.length > 512) throw new ProtocolError(`the stream configuration (${what}) has no stream_id`);
    if (doc.iss !== this.#t.issuer) throw new IssuerMismatch(id, String(doc.iss));
    const aud = typeof doc.aud === "string" ? [doc.aud] : strings(doc.aud);
    const delivery = isObject(doc.delivery) ? doc.delivery : undefined;
    if (delivery === undefined || typeof delivery.method !== "string") throw new ProtocolError(`the stream configuration (${what}) has no delivery method`);
    const seconds = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined);
    return {
      stream_id: id,
      iss: this.#t.issuer,
      aud,
      delivery: { method: delivery.method, ...(typeof delivery.endpoint_url === "string" ? { endpoint_url: delivery.endpoint_url } : {}) },
      events_requested: strings(doc.events_requested),
      events_delivered: strings(doc.events_delivered),
      ...opt("min_verification_interval", seconds(doc.min_verification_interval)),
      ...opt("inactivity_timeout", seconds(doc.inactivity_timeout)),
      ...opt("description", typeof doc.description === "string" ? doc.description : undefined),
    };
  }
}

function parseStatus(doc: unknown): { status: StreamStatus; reason?: string } {
  if (!isObject(doc) || !STREAM_STATUSES.includes(doc.status as StreamStatus)) throw new ProtocolError("the stream status answer has no valid status");
  return { status: doc.status as StreamStatus, ...(typeof doc.reason === "string" ? { reason: doc.reason.slice(0, 256) } : {}) };
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function withQuery(endpoint: string, params: Record<string, string>): string {
  const u = new URL(endpoint);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

/** The message of a failed call, for logs and readiness detail (credentials already masked by the HTTP client). */
export function failure(err: unknown): string {
  return errorMessage(err).slice(0, 300);
}
