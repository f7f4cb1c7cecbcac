/**
 * A Shared Signals (SSF 1.0) push receiver (RFC 8935) that checks every Security Event Token the
 * way a strict receiver does, with node:crypto only (never the library the transmitter might use):
 *
 * - `Content-Type: application/secevent+jwt`, `Accept` allowing `application/json`, and the
 *   `Authorization` header when one is configured (401 when missing, 403 when wrong);
 * - the compact JWS: header `typ` `secevent+jwt`, an allowed `alg`, a `kid` found in the JWKS named
 *   by the transmitter's SSF configuration (both read from its public documents on every request,
 *   so key rotation shows at once), and the signature;
 * - the claims: `iss` equal to the configuration's issuer, `aud` naming this receiver, `iat`, `jti`,
 *   an RFC 9493 `sub_id`, exactly one known CAEP event with its required members, no `sub`, no `exp`.
 *
 * Failures are answered 400 `{err, description}` with the RFC 8935 error codes. A repeated `jti` is
 * answered 202 again but recorded once. Faults (429 + Retry-After, 503) can be injected.
 */
import { constants, createPublicKey, verify, type JsonWebKey } from "node:crypto";
import type { PublicDocument } from "../../../src/plugin/provider.ts";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const CAEP_EVENT_TYPES = [
  "session-revoked",
  "token-claims-change",
  "credential-change",
  "assurance-level-change",
  "device-compliance-change",
  "session-established",
  "session-presented",
  "risk-level-change",
] as const;
const CAEP_BASE = "https://schemas.openid.net/secevent/caep/event-type/";
const ALLOWED_ALGS = ["ES256", "RS256", "PS256", "EdDSA"];
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

export interface SsfReceiverOptions {
  /** The transmitter's public documents (`provider.publicDocuments(client)`). */
  readonly documents: () => Readonly<Record<string, PublicDocument>>;
  /** Audience this receiver answers to. Default its own origin. */
  readonly audience?: string;
  /** `Authorization` value required on every push. Default none. */
  readonly authorization?: string;
  /** Path of the push endpoint. Default `/events`. */
  readonly path?: string;
}

export interface ReceivedSet {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  /** The compact JWS as received. */
  readonly raw: string;
  /** The event type URI. */
  readonly event: string;
  /** The event object. */
  readonly payload: Record<string, unknown>;
}

class Rejection extends Error {
  readonly err: string;
  constructor(err: string, description: string) {
    super(description);
    this.err = err;
  }
}

const fail = (err: string, description: string): never => {
  throw new Rejection(err, description);
};

function decodeJson(segment: string, what: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) fail("invalid_request", `${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    fail("invalid_request", `${what} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail("invalid_request", `${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const isString = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;

/** RFC 9493 simple identifiers: the format's required members, nothing else. */
export function subIdProblem(sub: unknown): string | undefined {
  if (sub === null || typeof sub !== "object" || Array.isArray(sub)) return "sub_id must be an object";
  const s = sub as Record<string, unknown>;
  const members: Record<string, readonly string[]> = {
    email: ["email"],
    opaque: ["id"],
    iss_sub: ["iss", "sub"],
    did: ["url"],
    uri: ["uri"],
    phone_number: ["phone_number"],
    account: ["uri"],
  };
  if (!isString(s.format) || !(s.format in members)) return `sub_id format ${JSON.stringify(s.format)} is not an RFC 9493 simple format`;
  const want = members[s.format]!;
  const extra = Object.keys(s).filter((k) => k !== "format" && !want.includes(k));
  if (extra.length > 0) return `sub_id ${s.format} has unexpected members ${extra.join(", ")}`;
  for (const m of want) if (!isString(s[m])) return `sub_id ${s.format} needs ${m}`;
  if (s.format === "email" && !/^[^\s@]+@[^\s@]+$/.test(s.email as string)) return "sub_id email is not an email address";
  if (s.format === "phone_number" && !/^\+[1-9][0-9]{1,14}$/.test(s.phone_number as string)) return "sub_id phone_number is not E.164";
  if (s.format === "account" && !/^acct:[^\s@]+@[^\s@]+$/.test(s.uri as string)) return "sub_id account uri is not an acct: URI";
  if (s.format === "did" && !/^did:[a-z0-9]+:\S+$/.test(s.url as string)) return "sub_id did url is not a DID";
  if (s.format === "uri" && !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(s.uri as string)) return "sub_id uri is not an absolute URI";
  return undefined;
}

function localizedProblem(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== "object" || Array.isArray(v) || Object.keys(v).length === 0) return `${name} must be an object of language → text`;
  for (const [lang, text] of Object.entries(v)) {
    if (!/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(lang) || !isString(text)) return `${name} must map BCP 47 tags to text`;
  }
  return undefined;
}

/** CAEP 1.0: the optional claims every event may carry and each type's required members. */
export function eventProblem(type: string, e: Record<string, unknown>): string | undefined {
  if (e.event_timestamp !== undefined && !isInt(e.event_timestamp)) return "event_timestamp must be whole seconds";
  if (isInt(e.event_timestamp) && e.event_timestamp > 1e11) return "event_timestamp looks like milliseconds";
  if (e.initiating_entity !== undefined && !["admin", "user", "policy", "system"].includes(e.initiating_entity as string)) return "initiating_entity must be admin, user, policy or system";
  const loc = localizedProblem("reason_admin", e.reason_admin) ?? localizedProblem("reason_user", e.reason_user);
  if (loc) return loc;
  const oneOf = (name: string, values: readonly string[], required = true) =>
    e[name] === undefined && !required ? undefined : values.includes(e[name] as string) ? undefined : `${name} must be one of ${values.join(", ")}`;
  const str = (name: string, required = true) => (e[name] === undefined && !required ? undefined : isString(e[name]) ? undefined : `${name} must be a string`);
  switch (type) {
    case "session-revoked":
      return undefined;
    case "credential-change":
      return str("credential_type") ?? oneOf("change_type", ["create", "revoke", "update", "delete"]);
    case "assurance-level-change":
      return str("namespace") ?? str("current_level") ?? str("previous_level", false) ?? oneOf("change_direction", ["increase", "decrease"], false);
    case "device-compliance-change":
      return oneOf("current_status", ["compliant", "not-compliant"]) ?? oneOf("previous_status", ["compliant", "not-compliant"]);
    case "risk-level-change":
      return str("principal") ?? oneOf("current_level", ["LOW", "MEDIUM", "HIGH"]) ?? oneOf("previous_level", ["LOW", "MEDIUM", "HIGH"], false) ?? str("risk_reason", false);
    case "token-claims-change":
      return e.claims !== null && typeof e.claims === "object" ? undefined : "claims is required";
    default:
      return undefined;
  }
}

function verifySignature(alg: string, jwk: JsonWebKey, input: string, signature: Buffer): boolean {
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(input, "ascii");
  switch (alg) {
    case "ES256":
      if (jwk.kty !== "EC" || jwk.crv !== "P-256") fail("invalid_key", "ES256 needs an EC P-256 key");
      return verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature);
    case "RS256":
      if (jwk.kty !== "RSA") fail("invalid_key", "RS256 needs an RSA key");
      return verify("sha256", data, key, signature);
    case "PS256":
      if (jwk.kty !== "RSA") fail("invalid_key", "PS256 needs an RSA key");
      return verify("sha256", data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
    case "EdDSA":
      if (jwk.kty !== "OKP") fail("invalid_key", "EdDSA needs an OKP key");
      return verify(null, data, key, signature);
    default:
      return fail("invalid_key", `alg ${alg} is not accepted`);
  }
}

/** The transmitter's metadata and keys, read the way a receiver discovers them. */
export function discover(documents: Readonly<Record<string, PublicDocument>>): { issuer: string; jwks: { keys: JsonWebKey[] } } {
  const configDoc = documents["/.well-known/ssf-configuration"];
  if (!configDoc) throw new Error("the transmitter publishes no /.well-known/ssf-configuration");
  const config = JSON.parse(configDoc.body()) as { issuer?: unknown; jwks_uri?: unknown; spec_version?: unknown };
  if (!isString(config.issuer) || !isString(config.jwks_uri)) throw new Error("ssf-configuration lacks issuer or jwks_uri");
  const jwksUrl = new URL(config.jwks_uri);
  if (jwksUrl.protocol !== "https:" || jwksUrl.origin !== new URL(config.issuer).origin) throw new Error("jwks_uri must be https under the issuer");
  const jwksDoc = documents[jwksUrl.pathname];
  if (!jwksDoc) throw new Error(`no document at ${jwksUrl.pathname}`);
  const jwks = JSON.parse(jwksDoc.body()) as { keys: JsonWebKey[] };
  return { issuer: config.issuer, jwks };
}

/** Verifies one SET for a receiver; throws a `Rejection` (`err`, message) on the first problem. */
export function verifySet(raw: string, opts: { documents: Readonly<Record<string, PublicDocument>>; audience: string }): Omit<ReceivedSet, "raw"> {
  const parts = raw.trim().split(".");
  if (parts.length !== 3) fail("invalid_request", "the body is not a compact JWS");
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h, "header");
  if (header.typ !== "secevent+jwt") fail("invalid_request", `typ must be secevent+jwt, got ${JSON.stringify(header.typ)}`);
  if (!isString(header.alg) || !ALLOWED_ALGS.includes(header.alg)) fail("invalid_key", `alg ${JSON.stringify(header.alg)} is not accepted`);
  if (!isString(header.kid)) fail("invalid_key", "the header names no kid");
  const { issuer, jwks } = discover(opts.documents);
  for (const k of jwks.keys) {
    const leaked = PRIVATE_JWK_MEMBERS.filter((m) => m in k);
    if (leaked.length > 0) fail("invalid_key", `the JWKS publishes private members ${leaked.join(", ")}`);
  }
  const jwk = jwks.keys.find((k) => (k as { kid?: unknown }).kid === header.kid);
  if (!jwk) fail("invalid_key", `kid ${String(header.kid)} is not in the transmitter's JWKS`);
  const k = jwk as JsonWebKey & { alg?: string; use?: string };
  if (k.alg !== undefined && k.alg !== header.alg) fail("invalid_key", `key ${String(header.kid)} is for ${k.alg}, not ${String(header.alg)}`);
  if (k.use !== undefined && k.use !== "sig") fail("invalid_key", `key ${String(header.kid)} is not a signing key`);
  if (!/^[A-Za-z0-9_-]+$/.test(s)) fail("invalid_request", "signature is not base64url");
  if (!verifySignature(header.alg as string, k, `${h}.${p}`, Buffer.from(s, "base64url"))) fail("invalid_key", "signature does not verify");

  const claims = decodeJson(p, "payload");
  if (claims.iss !== issuer) fail("invalid_issuer", `iss ${JSON.stringify(claims.iss)} is not ${issuer}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.every(isString) || !aud.includes(opts.audience)) fail("invalid_audience", `aud ${JSON.stringify(claims.aud)} does not name ${opts.audience}`);
  if (!isInt(claims.iat)) fail("invalid_request", "iat must be a NumericDate");
  if (!isString(claims.jti)) fail("invalid_request", "jti is required");
  if ("sub" in claims) fail("invalid_request", "SSF SETs carry sub_id, not sub");
  if ("exp" in claims) fail("invalid_request", "SETs must not carry exp");
  if (claims.txn !== undefined && !isString(claims.txn)) fail("invalid_request", "txn must be a string");
  const subProblem = subIdProblem(claims.sub_id);
  if (subProblem) fail("invalid_request", subProblem);
  const events = claims.events;
  if (events === null || typeof events !== "object" || Array.isArray(events)) fail("invalid_request", "events must be an object");
  const keys = Object.keys(events as object);
  if (keys.length !== 1) fail("invalid_request", `events must hold exactly one event, got ${keys.length}`);
  const uri = keys[0]!;
  if (!uri.startsWith(CAEP_BASE) || !(CAEP_EVENT_TYPES as readonly string[]).includes(uri.slice(CAEP_BASE.length))) fail("invalid_request", `unknown event type ${uri}`);
  const payload = (events as Record<string, unknown>)[uri];
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) fail("invalid_request", "the event must be an object");
  const problem = eventProblem(uri.slice(CAEP_BASE.length), payload as Record<string, unknown>);
  if (problem) fail("invalid_request", problem);
  return { header, claims, event: uri, payload: payload as Record<string, unknown> };
}

export class SsfReceiver {
  readonly api = new FakeApi();
  /** SETs accepted, once per jti, in order. */
  readonly accepted: ReceivedSet[] = [];
  /** Pushes answered 202 for a jti already accepted. */
  duplicates = 0;
  /** 400 answers, in order. */
  readonly rejected: { err: string; description: string }[] = [];
  readonly #opts: SsfReceiverOptions;
  readonly #path: string;
  readonly #seen = new Set<string>();

  constructor(opts: SsfReceiverOptions) {
    this.#opts = opts;
    this.#path = opts.path ?? "/events";
    const escaped = this.#path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    this.api.authenticate = (req) => this.#authenticate(req);
    this.api.route("POST", new RegExp(`^${escaped}$`), (req) => this.#receive(req));
  }

  async start(): Promise<string> {
    await this.api.start();
    return this.endpoint;
  }

  stop(): Promise<void> {
    return this.api.stop();
  }

  get endpoint(): string {
    return `${this.api.base}${this.#path}`;
  }

  get audience(): string {
    return this.#opts.audience ?? this.api.base;
  }

  /** The accepted SETs' event objects keyed by nothing: the order they arrived in. */
  get events(): Record<string, unknown>[] {
    return this.accepted.map((s) => s.payload);
  }

  /** The next pushes get these replies, one each (after authentication). */
  fault(...replies: FakeReply[]): this {
    this.api.fail({ method: "POST", path: new RegExp(`^${this.#path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) }, ...replies);
    return this;
  }

  /** The next push is rate limited. */
  tooManyRequests(retryAfterSeconds: number): this {
    return this.fault({ status: 429, headers: { "retry-after": String(retryAfterSeconds) }, body: { err: "too_many_requests", description: "slow down" } });
  }

  /** The next `n` pushes find the receiver down. */
  unavailable(n = 1): this {
    return this.fault(...Array.from({ length: n }, () => ({ status: 503, headers: { "retry-after": "7" }, body: "receiver restarting" })));
  }

  #authenticate(req: FakeRequest): FakeReply | undefined {
    const want = this.#opts.authorization;
    if (want === undefined) return undefined;
    const got = req.headers["authorization"];
    if (got === undefined) return { status: 401, headers: { "www-authenticate": 'Bearer realm="ssf"' }, body: { err: "authentication_failed", description: "an Authorization header is required" } };
    if (got !== want) return { status: 403, body: { err: "access_denied", description: "the transmitter is not authorized to push here" } };
    return undefined;
  }

  #receive(req: FakeRequest): FakeReply {
    try {
      if ((req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() !== "application/secevent+jwt") fail("invalid_request", "Content-Type must be application/secevent+jwt");
      const accept = req.headers["accept"] ?? "";
      if (!/application\/json|\*\/\*/.test(accept)) fail("invalid_request", "Accept must allow application/json");
      const set = verifySet(req.body, { documents: this.#opts.documents(), audience: this.audience });
      const jti = set.claims.jti as string;
      if (this.#seen.has(jti)) {
        this.duplicates++;
      } else {
        this.#seen.add(jti);
        this.accepted.push({ ...set, raw: req.body });
      }
      return { status: 202 };
    } catch (err) {
      if (!(err instanceof Rejection)) throw err;
      this.rejected.push({ err: err.err, description: err.message });
      return { status: 400, body: { err: err.err, description: err.message } };
    }
  }
}
