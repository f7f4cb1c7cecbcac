/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4) with a cached token: one token request serves
 * every call until shortly before it expires, and concurrent callers share one request.
 * Client authentication: `client_secret_post`, `client_secret_basic`, or `private_key_jwt`
 * (RFC 7523; what Okta service apps require and what Entra calls certificate credentials).
 */
import { createPrivateKey, randomUUID, createHash, X509Certificate } from "node:crypto";
import { UpstreamError, VigilError, errorMessage } from "../errors.ts";
import type { HttpClient } from "./http.ts";
import type { Clock } from "../util/clock.ts";
import { MASK, registerSecret, scrub } from "../util/redact.ts";
import { raceAbort } from "../util/abort.ts";
import { withoutCredentials, type Authenticator } from "./api-call.ts";

export type ClientAuth =
  | { readonly method: "client_secret_post" | "client_secret_basic"; readonly client_secret: string }
  | {
      readonly method: "private_key_jwt";
      /** PEM private key (RSA or EC). */
      readonly private_key: string;
      /** `kid` of the key as registered with the provider. */
      readonly key_id?: string;
      /** PEM certificate of the key: adds `x5t` (Entra certificate credentials). */
      readonly certificate?: string;
      /** JWS algorithm. Default RS256 for RSA keys, ES256 for EC keys. */
      readonly alg?: string;
    };

export interface ClientCredentialsOptions {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly auth: ClientAuth;
  /** Space-separated scopes; empty for servers that take none (Jamf Pro, CrowdStrike Falcon: the API client's roles decide). */
  readonly scope: string;
  readonly http: HttpClient;
  readonly clock: Clock;
  /** Refresh this long before expiry. Default 60000 (or a tenth of the lifetime when shorter). */
  readonly refreshBeforeMs?: number;
  readonly timeoutMs?: number;
}

interface Cached {
  readonly token: string;
  readonly refreshAt: number;
}

/** A bearer `Authenticator` backed by a cached client-credentials token. */
export class ClientCredentials implements Authenticator {
  readonly #o: ClientCredentialsOptions;
  #cached: Cached | undefined;
  #pending: Promise<string> | undefined;
  /** Token requests made; tests read it to check the cache. */
  requests = 0;

  constructor(options: ClientCredentialsOptions) {
    this.#o = options;
    if (options.auth.method === "private_key_jwt") registerSecret(options.auth.private_key);
    else registerSecret(options.auth.client_secret);
  }

  async headers(_call?: unknown, signal?: AbortSignal): Promise<Record<string, string>> {
    return { Authorization: `Bearer ${await this.token(signal)}` };
  }

  planned(): Record<string, string> {
    return { Authorization: `Bearer ${MASK}` };
  }

  invalidate(): void {
    this.#cached = undefined;
  }

  /**
   * The cached token, or a fresh one. `signal` ends this caller's wait (the agent stopping, the job's
   * deadline); the shared request itself goes on for the other callers, bounded by `timeoutMs`.
   */
  token(signal?: AbortSignal): Promise<string> {
    const c = this.#cached;
    if (c && this.#o.clock.now() < c.refreshAt) return Promise.resolve(c.token);
    if (signal?.aborted) return Promise.reject(this.#aborted(signal));
    const pending = (this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    }));
    return raceAbort(pending, signal, () => this.#aborted(signal!));
  }

  #aborted(signal: AbortSignal): UpstreamError {
    return new UpstreamError(true, `token request to ${this.#o.tokenUrl} aborted`, { cause: signal.reason });
  }

  async #fetch(): Promise<string> {
    const o = this.#o;
    const auth = o.auth;
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (o.scope !== "") form.set("scope", o.scope);
    const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" };
    if (auth.method === "client_secret_basic") {
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
      headers.Authorization = `Basic ${Buffer.from(`${enc(o.clientId)}:${enc(auth.client_secret)}`).toString("base64")}`;
    } else if (auth.method === "client_secret_post") {
      form.set("client_id", o.clientId);
      form.set("client_secret", auth.client_secret);
    } else {
      form.set("client_id", o.clientId);
      form.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      form.set("client_assertion", await this.#signedAssertion(auth as Extract<ClientAuth, { method: "private_key_jwt" }>));
    }
    this.requests++;
    // A refusal quotes the endpoint's answer; should it echo the client authentication, mask what is not a
    // registered secret: the Basic header's encoding of the secret, and the assertion (usable until it expires).
    const assertion = form.get("client_assertion");
    const sent: Record<string, string> = {
      ...(headers.Authorization ? { authorization: headers.Authorization } : {}),
      ...(assertion ? { assertion, signature: assertion.slice(assertion.lastIndexOf(".") + 1) } : {}),
    };
    let res;
    try {
      res = await o.http.request({ method: "POST", url: o.tokenUrl, headers, body: form.toString(), timeoutMs: o.timeoutMs ?? 10_000, ...(assertion ? { secrets: [assertion] } : {}) });
    } catch (err) {
      throw withoutCredentials(err, sent);
    }
    const body = res.json<{ access_token?: unknown; expires_in?: unknown; token_type?: unknown }>();
    if (typeof body.access_token !== "string" || body.access_token === "") {
      throw new UpstreamError(false, `token endpoint ${o.tokenUrl} answered without an access_token`, { status: res.status });
    }
    if (typeof body.token_type === "string" && body.token_type.toLowerCase() !== "bearer") {
      throw new UpstreamError(false, `token endpoint ${o.tokenUrl} issued a ${body.token_type} token; only Bearer is supported (turn off DPoP for this client)`, { status: res.status });
    }
    // Not registered as a global secret: a new token comes every hour or so, and the scrub list would
    // grow (and be recompiled) for as long as the agent runs. The API client masks it in the errors
    // it raises, and plans show it masked; it goes nowhere else.
    const lifetime = (typeof body.expires_in === "number" ? body.expires_in : Number(body.expires_in ?? 3600)) * 1000;
    const before = Math.min(o.refreshBeforeMs ?? 60_000, lifetime / 10);
    this.#cached = { token: body.access_token, refreshAt: o.clock.now() + Math.max(0, lifetime - before) };
    return body.access_token;
  }

  /** A key or certificate that cannot sign fails the same way on every try: permanent, and never quoting the key. */
  async #signedAssertion(auth: Extract<ClientAuth, { method: "private_key_jwt" }>): Promise<string> {
    try {
      return await this.#assertion(auth);
    } catch (err) {
      throw new VigilError("VIGIL_ERR_CONFIG_INVALID", scrub(`cannot sign the client assertion for ${this.#o.tokenUrl}: ${errorMessage(err)}`));
    }
  }

  async #assertion(auth: Extract<ClientAuth, { method: "private_key_jwt" }>): Promise<string> {
    const { SignJWT } = await import("jose");
    const key = createPrivateKey(auth.private_key);
    const alg = auth.alg ?? (key.asymmetricKeyType === "ec" ? "ES256" : "RS256");
    const header: Record<string, string> = { alg, typ: "JWT" };
    if (auth.key_id) header.kid = auth.key_id;
    if (auth.certificate) {
      const der = new X509Certificate(auth.certificate).raw;
      header.x5t = createHash("sha1").update(der).digest("base64url");
    }
    const now = Math.floor(this.#o.clock.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader(header as { alg: string })
      .setIssuer(this.#o.clientId)
      .setSubject(this.#o.clientId)
      .setAudience(this.#o.tokenUrl)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .sign(key);
  }
}
