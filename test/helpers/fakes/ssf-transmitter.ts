/**
 * A Shared Signals (SSF 1.0) transmitter for tests, on node:http, with its own RSA keys: the
 * transmitter metadata, a JWKS, an OAuth token endpoint (client credentials, short-lived tokens
 * rejected with 401 `invalid_token` once expired), the stream management API (create → 201, or 409
 * when a stream exists; read, PATCH, PUT, DELETE; status; verification with 429 below
 * `min_verification_interval`) and delivery by RFC 8935 push or RFC 8936 poll.
 *
 * It enforces the rules a receiver must follow and records every breach in `violations` (a test
 * expects none): bearer tokens in the header only, request bodies of the documented shape, `ack`
 * only for SETs it delivered, `setErrs` with a registered error code, a stream used after its
 * creation answered a foreign `iss`. SETs are signed with node:crypto (never the receiver's library).
 */
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const SSF_BASE = "https://schemas.openid.net/secevent/ssf/event-type/";
export const CAEP_BASE = "https://schemas.openid.net/secevent/caep/event-type/";
export const RISC_BASE = "https://schemas.openid.net/secevent/risc/event-type/";
export const VERIFICATION = `${SSF_BASE}verification`;
export const STREAM_UPDATED = `${SSF_BASE}stream-updated`;
const PUSH = "urn:ietf:rfc:8935";
const POLL = "urn:ietf:rfc:8936";
const ERROR_CODES = ["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience", "authentication_failed", "access_denied", "invalid_state"];
const CAEP = ["session-revoked", "token-claims-change", "credential-change", "assurance-level-change", "device-compliance-change", "session-established", "session-presented", "risk-level-change"];
const RISC = ["account-credential-change-required", "account-purged", "account-disabled", "account-enabled", "identifier-changed", "identifier-recycled", "credential-compromise", "sessions-revoked", "recovery-activated"];

/** A short name (`session-revoked`, `account-disabled`) → its URI; URIs pass through. */
export function uriOf(event: string): string {
  if (CAEP.includes(event)) return CAEP_BASE + event;
  if (RISC.includes(event)) return RISC_BASE + event;
  return event;
}

export interface TransmitterOptions {
  /** Path of the issuer under the server's origin (`/tenant-1` → metadata at `/.well-known/ssf-configuration/tenant-1`). Default none. */
  readonly issuerPath?: string;
  /** `oauth` (client credentials at /token) or `bearer` (a fixed token). Default oauth. */
  readonly auth?: "oauth" | "bearer";
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly bearerToken?: string;
  /** Lifetime of issued access tokens. Default 3600 s. */
  readonly tokenLifetimeS?: number;
  /** Several streams per receiver (else 409 when one exists). Default false. */
  readonly multipleStreams?: boolean;
  /** PATCH and PUT on the configuration endpoint (else 405, as the CAEP interoperability profile allows). Default true. */
  readonly patch?: boolean;
  readonly put?: boolean;
  /** `iss` the create answer carries instead of the issuer (a foreign one: the receiver must not use the stream). */
  readonly createIssuer?: string;
  readonly minVerificationInterval?: number;
  readonly inactivityTimeout?: number;
  /** Never send verification events (the receiver's verification must become overdue). */
  readonly silentVerification?: boolean;
  /** How long a long poll is held waiting for events. Default 1000 ms. */
  readonly pollHoldMs?: number;
  /** The streams' `aud`. Default `["https://vigil.test/receiver"]`. */
  readonly aud?: readonly string[];
  /** Omit `status_endpoint` and `verification_endpoint` from the metadata. */
  readonly minimal?: boolean;
  /** The metadata names this as jwks_uri instead of its own. */
  readonly jwksUri?: string;
  /** `critical_subject_members` of the metadata. */
  readonly critical?: readonly string[];
}

export interface Stream {
  config: {
    stream_id: string;
    iss: string;
    aud: string[];
    delivery: { method: string; endpoint_url?: string };
    events_supported: string[];
    events_requested: string[];
    events_delivered: string[];
    description?: string;
    min_verification_interval?: number;
    inactivity_timeout?: number;
  };
  authorization?: string;
  status: "enabled" | "paused" | "disabled";
  reason?: string;
  /** SETs waiting for delivery (poll, or push while paused). */
  queue: Queued[];
  /** Polled SETs waiting for ack or setErrs. */
  outstanding: Map<string, Queued>;
  /** The create answer carried a foreign iss. */
  refused: boolean;
  lastVerification: number;
}

interface Queued {
  readonly jti: string;
  readonly jws: string;
  readonly event: string;
  readonly settle: (r: Delivery) => void;
}

/** What became of one SET. */
export type Delivery =
  | { readonly kind: "push"; readonly status: number; readonly body: string; readonly contentType: string }
  | { readonly kind: "ack" }
  | { readonly kind: "setErr"; readonly err: string; readonly description: string }
  | { readonly kind: "dropped" };

export interface SetOptions {
  readonly jti?: string;
  readonly iat?: number;
  readonly txn?: string | number;
  /** Claims merged over the built ones (`undefined` values delete). */
  readonly claims?: Record<string, unknown>;
  /** Header members merged over the built ones. */
  readonly header?: Record<string, unknown>;
  /** Sign with a key the JWKS does not hold. */
  readonly rogueKey?: boolean;
  /** Flip a bit of the signature. */
  readonly corruptSignature?: boolean;
  /** Stream to deliver on. Default the only one. */
  readonly streamId?: string;
}

export class SsfTransmitter extends FakeApi {
  readonly options: TransmitterOptions;
  issuer = "";
  readonly streams = new Map<string, Stream>();
  /** Breaches of the spec by the receiver. */
  readonly violations: string[] = [];
  readonly pushes: { jti: string; event: string; status: number; body: string }[] = [];
  readonly acks: string[] = [];
  readonly setErrs: { jti: string; err: string; description: string }[] = [];
  readonly verificationRequests: { stream_id: string; state?: string }[] = [];
  readonly tokensIssued: { token: string; expiresAt: number }[] = [];
  /** Requests rejected because their token had expired. */
  expiredRejections = 0;
  /** The next verification answers: a state the receiver did not send, or another stream as subject. */
  nextVerification: "wrong_state" | "wrong_subject" | undefined;
  readonly #key: KeyObject;
  readonly #rogue: KeyObject;
  readonly kid = "tx-2026-1";
  #pushChain = Promise.resolve();
  readonly #waiters = new Set<() => void>();

  constructor(options: TransmitterOptions = {}) {
    super();
    this.options = options;
    this.#key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    this.#rogue = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    this.authenticate = (req) => this.#authenticate(req);
    this.#routes();
  }

  override async start(): Promise<string> {
    const base = await super.start();
    this.issuer = base + (this.options.issuerPath ?? "");
    return base;
  }

  /** The one stream (tests with a single receiver). */
  get stream(): Stream | undefined {
    return [...this.streams.values()][0];
  }

  /** The transmitter's private key as PEM (for a test that signs by hand). */
  get privateKeyPem(): string {
    return this.#key.export({ type: "pkcs8", format: "pem" }).toString();
  }

  // -------------------------------------------------------------------------------------------
  // Building and signing SETs

  jws(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject = this.#key): string {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const input = `${enc(header)}.${enc(claims)}`;
    const signature = sign("sha256", Buffer.from(input), key).toString("base64url");
    return `${input}.${signature}`;
  }

  /** A signed SET for `event` about `subject` on the stream. */
  set(event: string, subject: unknown, payload: Record<string, unknown> = {}, o: SetOptions = {}): { jti: string; jws: string } {
    const stream = this.#streamFor(o.streamId);
    const jti = o.jti ?? randomBytes(12).toString("hex");
    const claims: Record<string, unknown> = {
      iss: this.issuer,
      jti,
      iat: o.iat ?? Math.floor(Date.now() / 1000),
      aud: stream?.config.aud.length === 1 ? stream.config.aud[0] : (stream?.config.aud ?? this.options.aud ?? ["https://vigil.test/receiver"]),
      ...(o.txn !== undefined ? { txn: o.txn } : {}),
      ...(subject === undefined ? {} : { sub_id: subject }),
      events: { [uriOf(event)]: payload },
    };
    for (const [k, v] of Object.entries(o.claims ?? {})) {
      if (v === undefined) delete claims[k];
      else claims[k] = v;
    }
    const header = { alg: "RS256", typ: "secevent+jwt", kid: o.rogueKey ? "rogue-1" : this.kid, ...o.header };
    let jws = this.jws(header, claims, o.rogueKey ? this.#rogue : this.#key);
    if (o.corruptSignature) {
      const i = jws.length - 10;
      jws = jws.slice(0, i) + (jws[i] === "A" ? "B" : "A") + jws.slice(i + 1);
    }
    return { jti, jws };
  }

  /** Signs and delivers an event; resolves with what the receiver made of it. */
  emit(event: string, subject: unknown, payload: Record<string, unknown> = {}, o: SetOptions = {}): Promise<Delivery> {
    const { jti, jws } = this.set(event, subject, payload, o);
    return this.deliver(jti, jws, uriOf(event), o.streamId);
  }

  /** Delivers a SET as given (push now, or queued for the next poll). */
  deliver(jti: string, jws: string, event = "raw", streamId?: string): Promise<Delivery> {
    const stream = this.#streamFor(streamId);
    if (!stream) throw new Error("no stream to deliver on");
    return new Promise<Delivery>((settle) => {
      const q: Queued = { jti, jws, event, settle };
      if (stream.status === "disabled") return settle({ kind: "dropped" });
      if (stream.config.delivery.method === PUSH && stream.status === "enabled") this.#push(stream, q);
      else {
        stream.queue.push(q);
        this.#wakePolls();
      }
    });
  }

  /** A verification event; `state` undefined = unsolicited. */
  verification(state?: string, o: SetOptions = {}): Promise<Delivery> {
    const stream = this.#streamFor(o.streamId)!;
    return this.emit(VERIFICATION, { format: "opaque", id: stream.config.stream_id }, state === undefined ? {} : { state }, o);
  }

  /**
   * The transmitter changes the stream's status on its own (SSF 1.0 §8.1.5): the stream-updated
   * event goes out before a pause or disable takes effect, and after an enable.
   */
  async changeStatus(status: Stream["status"], reason: string): Promise<Delivery> {
    const stream = this.stream!;
    const event = () => this.emit(STREAM_UPDATED, { format: "opaque", id: stream.config.stream_id }, { status, reason });
    if (status === "enabled") {
      stream.status = "enabled";
      stream.reason = undefined;
      const d = event();
      this.#flush(stream);
      return d;
    }
    const d = await event();
    stream.status = status;
    stream.reason = reason;
    return d;
  }

  /** Every token issued so far stops working (as after a key rotation at the authorization server). */
  revokeTokens(): void {
    for (const t of this.tokensIssued) t.expiresAt = 0;
  }

  /** Puts a polled SET back in the queue, as a transmitter does when it thinks the ack was lost. */
  redeliver(jti: string): Promise<Delivery> {
    for (const stream of this.streams.values()) {
      for (const q of [...stream.outstanding.values(), ...this.#delivered.values()]) {
        if (q.jti === jti) return this.deliver(q.jti, q.jws, q.event, stream.config.stream_id);
      }
    }
    throw new Error(`no SET ${jti} was delivered`);
  }

  readonly #delivered = new Map<string, Queued>();

  // -------------------------------------------------------------------------------------------
  // Delivery

  #push(stream: Stream, q: Queued): void {
    this.#delivered.set(q.jti, q);
    this.#pushChain = this.#pushChain.then(async () => {
      const url = stream.config.delivery.endpoint_url!;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/secevent+jwt", accept: "application/json", ...(stream.authorization ? { authorization: stream.authorization } : {}) },
          body: q.jws,
        });
        const body = await res.text();
        this.pushes.push({ jti: q.jti, event: q.event, status: res.status, body });
        if (res.status !== 202 && res.status !== 400 && res.status < 500) this.violations.push(`push of ${q.jti} answered ${res.status} (RFC 8935: 202 or 400)`);
        if (res.status === 400) {
          const type = res.headers.get("content-type") ?? "";
          let parsed: { err?: unknown; description?: unknown } = {};
          try {
            parsed = JSON.parse(body);
          } catch {
            this.violations.push(`push of ${q.jti}: the 400 body is not JSON`);
          }
          if (!type.startsWith("application/json")) this.violations.push(`push of ${q.jti}: the 400 answer is ${type}, not application/json`);
          if (typeof parsed.err !== "string" || !ERROR_CODES.includes(parsed.err)) this.violations.push(`push of ${q.jti}: err ${String(parsed.err)} is not a registered code`);
          if (typeof parsed.description !== "string") this.violations.push(`push of ${q.jti}: no description`);
        }
        q.settle({ kind: "push", status: res.status, body, contentType: res.headers.get("content-type") ?? "" });
      } catch (err) {
        this.pushes.push({ jti: q.jti, event: q.event, status: 0, body: String(err) });
        q.settle({ kind: "push", status: 0, body: String(err), contentType: "" });
      }
    });
  }

  #flush(stream: Stream): void {
    if (stream.config.delivery.method !== PUSH) return this.#wakePolls();
    const held = stream.queue.splice(0);
    for (const q of held) this.#push(stream, q);
  }

  #wakePolls(): void {
    for (const w of [...this.#waiters]) w();
  }

  #streamFor(id?: string): Stream | undefined {
    return id === undefined ? this.stream : this.streams.get(id);
  }

  // -------------------------------------------------------------------------------------------
  // Authentication

  #authenticate(req: FakeRequest): FakeReply | undefined {
    if (req.path === "/token" || req.path.startsWith("/.well-known/") || req.path === "/jwks") return undefined;
    if (req.query.has("access_token")) this.violations.push(`${req.method} ${req.path}: access token in the query (CAEP interop 2.7.3 forbids it)`);
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    const challenge = (error?: string): FakeReply => ({ status: 401, headers: { "www-authenticate": error ? `Bearer error="${error}"` : "Bearer" }, body: { error: error ?? "unauthorized" } });
    if (!m) return challenge();
    if (this.options.auth === "bearer") return m[1] === this.options.bearerToken ? undefined : challenge("invalid_token");
    const token = this.tokensIssued.find((t) => t.token === m[1]);
    if (!token) return challenge("invalid_token");
    if (Date.now() >= token.expiresAt) {
      this.expiredRejections++;
      return challenge("invalid_token");
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Routes

  #metadata(): Record<string, unknown> {
    const base = this.base;
    return {
      spec_version: "1_0",
      issuer: this.issuer,
      jwks_uri: this.options.jwksUri ?? `${base}/jwks`,
      delivery_methods_supported: [PUSH, POLL],
      configuration_endpoint: `${base}/streams`,
      ...(this.options.minimal ? {} : { status_endpoint: `${base}/status`, verification_endpoint: `${base}/verify` }),
      authorization_schemes: [{ spec_urn: "urn:ietf:rfc:6749" }],
      ...(this.options.critical ? { critical_subject_members: this.options.critical } : {}),
      default_subjects: "ALL",
    };
  }

  #answer(stream: Stream): Record<string, unknown> {
    const c = stream.config;
    return { ...c, delivery: { ...c.delivery } };
  }

  #use(stream: Stream, what: string): void {
    if (stream.refused) this.violations.push(`the receiver ${what} stream ${stream.config.stream_id}, whose create answer carried a foreign iss`);
  }

  #routes(): void {
    const wellKnown = `/.well-known/ssf-configuration${this.options.issuerPath ?? ""}`;
    this.route("GET", new RegExp(`^${wellKnown.replace(/[.]/g, "\\.")}$`), () => ({ status: 200, body: this.#metadata() }));
    this.route("GET", /^\/jwks$/, () => {
      const { kty, n, e } = createPublicKey(this.#key).export({ format: "jwk" });
      return { status: 200, body: { keys: [{ kty, n, e, kid: this.kid, use: "sig", alg: "RS256" }] } };
    });
    this.route("POST", /^\/token$/, (req) => this.#token(req));
    this.route("POST", /^\/streams$/, (req) => this.#create(req));
    this.route("GET", /^\/streams$/, (req) => {
      const id = req.query.get("stream_id");
      if (id === null) return { status: 200, body: [...this.streams.values()].map((s) => this.#answer(s)) };
      const s = this.streams.get(id);
      return s ? { status: 200, body: this.#answer(s) } : { status: 404, body: { error: "no such stream" } };
    });
    this.route("PATCH", /^\/streams$/, (req) => this.#update(req, "PATCH"));
    this.route("PUT", /^\/streams$/, (req) => this.#update(req, "PUT"));
    this.route("DELETE", /^\/streams$/, (req) => {
      const id = req.query.get("stream_id");
      if (id === null) return { status: 400, body: { error: "stream_id is required" } };
      const s = this.streams.get(id);
      if (!s) return { status: 404, body: { error: "no such stream" } };
      this.streams.delete(id);
      for (const q of [...s.queue, ...s.outstanding.values()]) q.settle({ kind: "dropped" });
      return { status: 204 };
    });
    this.route("GET", /^\/status$/, (req) => {
      const s = this.streams.get(req.query.get("stream_id") ?? "");
      if (!s) return { status: 404, body: { error: "no such stream" } };
      this.#use(s, "read the status of");
      return { status: 200, body: { stream_id: s.config.stream_id, status: s.status, ...(s.reason ? { reason: s.reason } : {}) } };
    });
    this.route("POST", /^\/status$/, (req) => {
      const body = this.#json(req);
      const s = this.streams.get(String(body.stream_id));
      if (!s) return { status: 404, body: { error: "no such stream" } };
      this.#use(s, "updated the status of");
      if (!["enabled", "paused", "disabled"].includes(String(body.status))) {
        this.violations.push(`status update with status ${String(body.status)}`);
        return { status: 400, body: { error: "bad status" } };
      }
      s.status = body.status as Stream["status"];
      s.reason = typeof body.reason === "string" ? body.reason : undefined;
      if (s.status === "enabled") this.#flush(s);
      return { status: 200, body: { stream_id: s.config.stream_id, status: s.status, ...(s.reason ? { reason: s.reason } : {}) } };
    });
    this.route("POST", /^\/verify$/, (req) => this.#verify(req));
    this.route("POST", /^\/poll\/(?<id>[^/]+)$/, (req) => this.#poll(req));
  }

  #json(req: FakeRequest): Record<string, unknown> {
    if (!(req.headers["content-type"] ?? "").startsWith("application/json")) this.violations.push(`${req.method} ${req.path}: body is not sent as application/json`);
    try {
      const v = JSON.parse(req.body) as unknown;
      if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* recorded below */
    }
    this.violations.push(`${req.method} ${req.path}: body is not a JSON object`);
    return {};
  }

  #token(req: FakeRequest): FakeReply {
    const form = new URLSearchParams(req.body);
    if (form.get("grant_type") !== "client_credentials") return { status: 400, body: { error: "unsupported_grant_type" } };
    let id = form.get("client_id");
    let secret = form.get("client_secret");
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
    if (basic) [id, secret] = Buffer.from(basic[1]!, "base64").toString().split(":").map(decodeURIComponent) as [string, string];
    if (id !== (this.options.clientId ?? "vigil") || secret !== (this.options.clientSecret ?? "client-secret-0123456789")) return { status: 401, body: { error: "invalid_client" } };
    const scopes = (form.get("scope") ?? "").split(" ");
    if (!scopes.includes("ssf.manage")) this.violations.push(`token request without the ssf.manage scope (${form.get("scope")})`);
    const lifetime = this.options.tokenLifetimeS ?? 3600;
    const token = randomBytes(16).toString("hex");
    this.tokensIssued.push({ token, expiresAt: Date.now() + lifetime * 1000 });
    return { status: 200, body: { access_token: token, token_type: "Bearer", expires_in: lifetime } };
  }

  #create(req: FakeRequest): FakeReply {
    const body = this.#json(req);
    for (const k of Object.keys(body)) if (!["delivery", "events_requested", "description"].includes(k)) this.violations.push(`create: ${k} is not a receiver-supplied property`);
    const delivery = (body.delivery ?? { method: POLL }) as Record<string, unknown>;
    if (delivery.method !== PUSH && delivery.method !== POLL) return { status: 400, body: { error: "unsupported delivery method" } };
    if (delivery.method === PUSH && (typeof delivery.endpoint_url !== "string" || typeof delivery.authorization_header !== "string")) {
      this.violations.push("create: a push stream without endpoint_url or authorization_header");
      return { status: 400, body: { error: "push needs endpoint_url" } };
    }
    const requested = body.events_requested;
    if (!Array.isArray(requested) || requested.length === 0 || !requested.every((e) => typeof e === "string")) this.violations.push("create: events_requested is not a non-empty list of strings");
    if (!this.options.multipleStreams && this.streams.size > 0) return { status: 409, body: { error: "a stream exists" } };
    const id = randomBytes(8).toString("hex");
    const supported = [...CAEP.map((e) => CAEP_BASE + e), ...RISC.map((e) => RISC_BASE + e), VERIFICATION, STREAM_UPDATED];
    const requestedList = Array.isArray(requested) ? (requested as string[]) : [];
    const stream: Stream = {
      config: {
        stream_id: id,
        iss: this.issuer,
        aud: [...(this.options.aud ?? ["https://vigil.test/receiver"])],
        delivery: delivery.method === PUSH ? { method: PUSH, endpoint_url: String(delivery.endpoint_url) } : { method: POLL, endpoint_url: `${this.base}/poll/${id}` },
        events_supported: supported,
        events_requested: requestedList,
        events_delivered: supported.filter((e) => requestedList.includes(e)),
        ...(typeof body.description === "string" ? { description: body.description } : {}),
        ...(this.options.minVerificationInterval !== undefined ? { min_verification_interval: this.options.minVerificationInterval } : {}),
        ...(this.options.inactivityTimeout !== undefined ? { inactivity_timeout: this.options.inactivityTimeout } : {}),
      },
      ...(delivery.method === PUSH ? { authorization: String(delivery.authorization_header) } : {}),
      status: "enabled",
      queue: [],
      outstanding: new Map(),
      refused: this.options.createIssuer !== undefined,
      lastVerification: 0,
    };
    this.streams.set(id, stream);
    const answer = this.#answer(stream);
    return { status: 201, body: this.options.createIssuer !== undefined ? { ...answer, iss: this.options.createIssuer } : answer };
  }

  #update(req: FakeRequest, method: "PATCH" | "PUT"): FakeReply {
    if (method === "PATCH" && this.options.patch === false) return { status: 405, body: { error: "PATCH not supported" } };
    if (method === "PUT" && this.options.put === false) return { status: 405, body: { error: "PUT not supported" } };
    const body = this.#json(req);
    const s = this.streams.get(String(body.stream_id));
    if (!s) return { status: 404, body: { error: "no such stream" } };
    this.#use(s, "updated");
    if (method === "PUT" && (body.delivery === undefined || body.events_requested === undefined)) this.violations.push("PUT without the full set of receiver-supplied properties");
    const delivery = body.delivery as Record<string, unknown> | undefined;
    if (delivery) {
      if (delivery.method !== s.config.delivery.method) return { status: 400, body: { error: "the delivery method cannot change" } };
      if (delivery.method === PUSH) {
        s.config.delivery.endpoint_url = String(delivery.endpoint_url);
        if (typeof delivery.authorization_header === "string") s.authorization = delivery.authorization_header;
      }
    }
    if (Array.isArray(body.events_requested)) {
      s.config.events_requested = body.events_requested as string[];
      s.config.events_delivered = s.config.events_supported.filter((e) => s.config.events_requested.includes(e));
    }
    if (typeof body.description === "string") s.config.description = body.description;
    else if (method === "PUT") delete s.config.description;
    return { status: 200, body: this.#answer(s) };
  }

  #verify(req: FakeRequest): FakeReply {
    const body = this.#json(req);
    const s = this.streams.get(String(body.stream_id));
    if (!s) return { status: 404, body: { error: "no such stream" } };
    this.#use(s, "requested a verification event for");
    const now = Date.now();
    const min = (this.options.minVerificationInterval ?? 0) * 1000;
    if (now - s.lastVerification < min) return { status: 429, headers: { "retry-after": String(Math.ceil((min - (now - s.lastVerification)) / 1000)) }, body: { error: "too many verification requests" } };
    s.lastVerification = now;
    const state = typeof body.state === "string" ? body.state : undefined;
    this.verificationRequests.push({ stream_id: s.config.stream_id, ...(state !== undefined ? { state } : {}) });
    if (!this.options.silentVerification) {
      const twist = this.nextVerification;
      this.nextVerification = undefined;
      // After the answer, as a real transmitter queues it.
      setImmediate(() => {
        if (twist === "wrong_subject") void this.emit(VERIFICATION, { format: "opaque", id: "not-this-stream" }, state === undefined ? {} : { state }, { streamId: s.config.stream_id });
        else void this.verification(twist === "wrong_state" ? `${state ?? ""}-not-yours` : state, { streamId: s.config.stream_id });
      });
    }
    return { status: 204 };
  }

  async #poll(req: FakeRequest): Promise<FakeReply> {
    const s = this.streams.get(req.params.id ?? "");
    if (!s) return { status: 404, body: { error: "no such stream" } };
    this.#use(s, "polled");
    const body = this.#json(req);
    const maxEvents = body.maxEvents ?? 100;
    if (typeof maxEvents !== "number" || !Number.isInteger(maxEvents) || maxEvents < 0) this.violations.push(`poll: maxEvents ${String(maxEvents)}`);
    if (body.returnImmediately !== undefined && typeof body.returnImmediately !== "boolean") this.violations.push("poll: returnImmediately is not a boolean");
    const ack = body.ack ?? [];
    if (!Array.isArray(ack) || !ack.every((j) => typeof j === "string")) this.violations.push("poll: ack is not a list of strings");
    for (const jti of Array.isArray(ack) ? (ack as string[]) : []) {
      const q = s.outstanding.get(jti);
      this.acks.push(jti);
      if (!q) {
        // A repeat acknowledgement is allowed (RFC 8936 §2.4: the receiver acks what it sees again).
        if (!this.#delivered.has(jti)) this.violations.push(`poll: ack of ${jti}, which was never delivered`);
        continue;
      }
      s.outstanding.delete(jti);
      q.settle({ kind: "ack" });
    }
    const errs = body.setErrs ?? {};
    if (errs === null || typeof errs !== "object" || Array.isArray(errs)) this.violations.push("poll: setErrs is not an object");
    for (const [jti, e] of Object.entries(errs as Record<string, { err?: unknown; description?: unknown }>)) {
      if (typeof e?.err !== "string" || !ERROR_CODES.includes(e.err)) this.violations.push(`poll: setErrs for ${jti} has err ${String(e?.err)}, not a registered code`);
      this.setErrs.push({ jti, err: String(e?.err), description: String(e?.description) });
      const q = s.outstanding.get(jti);
      if (q) {
        s.outstanding.delete(jti);
        q.settle({ kind: "setErr", err: String(e?.err), description: String(e?.description) });
      }
    }
    const take = (): Record<string, string> => {
      const out: Record<string, string> = {};
      if (s.status !== "enabled") return out;
      for (const q of s.queue.splice(0, typeof maxEvents === "number" ? maxEvents : 100)) {
        s.outstanding.set(q.jti, q);
        this.#delivered.set(q.jti, q);
        out[q.jti] = q.jws;
      }
      return out;
    };
    let sets = take();
    if (Object.keys(sets).length === 0 && body.returnImmediately !== true && maxEvents !== 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, this.options.pollHoldMs ?? 1000);
        this.#waiters.add(done);
      });
      if (this.streams.has(s.config.stream_id)) sets = take();
    }
    return { status: 200, body: { sets, moreAvailable: s.status === "enabled" && s.queue.length > 0 } };
  }
}
