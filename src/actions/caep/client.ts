/**
 * The `caep` provider client: the transmitter's keys and receivers, SET signing, and RFC 8935 push
 * delivery through the shared HTTP client and one circuit breaker.
 *
 * It remembers the signature of each token it made and, per `jti`, the receiver's answer (bounded,
 * in memory): a retry sends the same bytes even with randomized signatures (ECDSA, PSS), and a
 * retried job does not push again to receivers that already acknowledged. Plans show the signed part
 * of each token exactly, never its signature.
 * After a restart the memory is gone and a retry re-sends; receivers de-duplicate by `jti`, so
 * that is safe.
 */
import { createHash } from "node:crypto";
import { UpstreamError, isTransient, VigilError } from "../../errors.ts";
import type { HttpResponse } from "../../net/http.ts";
import { MASK, registerSecret } from "../../util/redact.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import type { ProviderClient, ProviderContext } from "../../plugin/provider.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import { type Authenticator } from "../../net/api-call.ts";
import type { CircuitBreaker } from "../../plugin/circuit.ts";
import type { CaepProviderConfig, ReceiverConfig } from "./config.ts";
import { jwsSignature, loadSigningKey, type SigningKey } from "./keys.ts";
import { signingInput, type SetClaims, type SetHeader } from "./set.ts";

/** Remembered signatures and delivery answers; the oldest are forgotten first. */
const MEMORY = 10_000;

/** The RFC 8935 request media type. */
export const SET_CONTENT_TYPE = "application/secevent+jwt";

class Bounded<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get(key: K): V | undefined {
    return this.#map.get(key);
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K);
  }
}

/** What a receiver answered for one `jti`. */
export type DeliveryRecord = { readonly status: number } | { readonly error: UpstreamError };

/** The answer of one push: the receiver's status, and whether it was remembered rather than sent now. */
export interface PushResult {
  readonly status: number;
  readonly earlier: boolean;
}

/** A signed SET. */
export interface SignedSet {
  readonly header: SetHeader;
  readonly jws: string;
}

/** The Authorization header a receiver requires, picked by the call's endpoint (the schema keeps it unambiguous). */
function receiverAuth(receivers: readonly ReceiverConfig[]): Authenticator {
  const byEndpoint = new Map<string, string>();
  for (const r of receivers) if (r.authorization !== undefined) byEndpoint.set(r.endpoint, r.authorization);
  return {
    headers: async (call): Promise<Record<string, string>> => {
      const value = byEndpoint.get(call.url);
      return value === undefined ? {} : { Authorization: value };
    },
    planned: (call): Record<string, string> => (byEndpoint.has(call.url) ? { Authorization: MASK } : {}),
  };
}

/** A compact JWS with its signature masked: `<header>.<claims>.[REDACTED]`. */
export function withoutSignature(jws: string): string {
  const m = /^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/.exec(jws);
  return m ? `${m[1]}.${MASK}` : jws;
}

const ERR_RE = /"err"\s*:\s*"([A-Za-z0-9_]{1,64})"/;

/** The failure of one receiver, named after it, with the RFC 8935 `err` code when it sent one. */
function receiverError(receiver: string, err: unknown): unknown {
  if (!(err instanceof UpstreamError)) return err;
  const code = ERR_RE.exec(err.message)?.[1];
  return new UpstreamError(err.transient, `caep receiver ${receiver}: ${err.message}`, {
    ...(err.status === undefined ? {} : { status: err.status }),
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    cause: err,
    details: { ...err.details, receiver, ...(code ? { err: code } : {}) },
  });
}

export class CaepClient implements ProviderClient {
  readonly name: string;
  readonly type = "caep";
  readonly issuer: string;
  /** Every configured key, published in the JWKS. */
  readonly keys: readonly SigningKey[];
  /** The key that signs. */
  readonly signingKey: SigningKey;
  readonly receivers: ReadonlyMap<string, ReceiverConfig>;
  readonly #api: ApiClient;
  readonly #signatures = new Bounded<string, string>(MEMORY);
  readonly #deliveries = new Bounded<string, DeliveryRecord>(MEMORY);

  constructor(config: CaepProviderConfig, ctx: ProviderContext) {
    for (const k of config.keys) registerSecret(k.private_key);
    for (const r of config.receivers) if (r.authorization !== undefined) registerSecret(r.authorization);
    this.name = ctx.name;
    this.issuer = config.issuer;
    this.keys = config.keys.map((k) => loadSigningKey(k.kid, k.alg, k.private_key));
    const signing = config.signing_kid === undefined ? this.keys[0] : this.keys.find((k) => k.kid === config.signing_kid);
    if (!signing) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `providers.${ctx.name}: no key with kid "${config.signing_kid}"`);
    this.signingKey = signing;
    this.receivers = new Map(config.receivers.map((r) => [r.name, r]));
    this.#api = new ApiClient({ ctx, type: this.type, auth: receiverAuth(config.receivers), timeoutMs: config.timeout, circuit: config.circuit });
  }

  get breaker(): CircuitBreaker {
    return this.#api.breaker;
  }

  /** The `aud` of a receiver's SETs: as configured, else the endpoint's origin. */
  audience(receiver: ReceiverConfig): string | readonly string[] {
    return receiver.audience ?? new URL(receiver.endpoint).origin;
  }

  /** Signs `claims` with the signing key; the same claims always give the same token while remembered. */
  sign(claims: SetClaims): SignedSet {
    const header: SetHeader = { alg: this.signingKey.alg, kid: this.signingKey.kid, typ: "secevent+jwt" };
    const input = signingInput(header, claims);
    // Keyed by a digest: the memory holds small entries however large the tokens are.
    const digest = createHash("sha256").update(input).digest("base64url");
    let signature = this.#signatures.get(digest);
    if (signature === undefined) {
      signature = jwsSignature(this.signingKey, input);
      this.#signatures.set(digest, signature);
    }
    return { header, jws: `${input}.${signature}` };
  }

  /** The RFC 8935 push of one SET to one receiver. */
  pushCall(receiver: ReceiverConfig, jws: string, summary: string): ApiCall {
    return { method: "POST", url: receiver.endpoint, headers: { "Content-Type": SET_CONTENT_TYPE, Accept: "application/json" }, body: jws, summary };
  }

  /** What the receiver answered for `jti` earlier, if remembered. */
  delivery(jti: string): DeliveryRecord | undefined {
    return this.#deliveries.get(jti);
  }

  /**
   * Pushes one SET unless the receiver already answered for its `jti`: an acknowledgement is returned,
   * a permanent refusal thrown again (the receiver would refuse the same token again).
   */
  async push(receiver: string, jti: string, call: ApiCall, signal?: AbortSignal): Promise<PushResult> {
    const earlier = this.#deliveries.get(jti);
    if (earlier !== undefined) {
      if ("error" in earlier) throw earlier.error;
      return { status: earlier.status, earlier: true };
    }
    try {
      const res = await this.send(call, signal);
      this.#deliveries.set(jti, { status: res.status });
      return { status: res.status, earlier: false };
    } catch (err) {
      const wrapped = receiverError(receiver, err);
      if (wrapped instanceof UpstreamError && !isTransient(wrapped)) this.#deliveries.set(jti, { error: wrapped });
      throw wrapped;
    }
  }

  /**
   * The push as a plan shows it. A signed SET is a statement receivers act on (and a dry run's never
   * reaches them, so its `jti` is unused): with its signature, a plan or the audit entry of a dry run
   * would be a token anyone reading it could push. The signed part is shown, the signature masked.
   */
  describe(call: ApiCall): PlannedCall {
    const planned = this.#api.describe(call);
    return typeof planned.body === "string" ? { ...planned, body: withoutSignature(planned.body) } : planned;
  }

  send(call: ApiCall, signal?: AbortSignal): Promise<HttpResponse> {
    return this.#api.send(call, signal);
  }

  close(): Promise<void> {
    return this.#api.close();
  }
}
