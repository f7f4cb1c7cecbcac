/**
 * A local Okta org that holds the contract the okta actions rely on:
 * - authentication: `Authorization: SSWS <token>` against the configured API token, or a Bearer token
 *   this fake issued from its own `/oauth2/v1/token` after verifying the `private_key_jwt` client
 *   assertion itself with node:crypto (signature against the registered public key, iss = sub =
 *   client_id, aud = token URL, exp/iat/nbf, one-time jti, grant type, allowed scopes). Tokens expire
 *   on the fake's clock and are refused afterwards; each endpoint checks the token's scopes;
 * - state: users with a lifecycle status, groups (OKTA_GROUP/APP_GROUP) with members, session and
 *   OAuth-token counts per user, Universal Logout requests;
 * - answers as Okta gives them: documented statuses, error bodies `{errorCode, errorSummary,
 *   errorLink, errorId, errorCauses}`, 404 E0000007 for unknown users and groups, 403 E0000006,
 *   401 E0000011, 400 E0000001/E0000003, rate-limit headers on every answer and 429 E0000047 with
 *   `X-Rate-Limit-Reset`, 5xx on demand;
 * - what the identity sources read: `GET /api/v1/users` (`limit` ≤ 200, `after` cursors in
 *   `Link: rel="next"`, `filter` on status/lastUpdated/id/login/email/name and `search` on any
 *   attribute; `DEPROVISIONED` users only when the expression names a status, as Okta lists them),
 *   `GET /api/v1/groups/{id}/users`, `GET /api/v1/users/{id}/risk`, and the System Log
 *   (`GET /api/v1/logs`: `since` or `after` — never both —, `sortOrder`, `limit` ≤ 1000, a `filter` of
 *   `eventType eq "…"` clauses; polling requests, without `until`, always link a next page, even an
 *   empty one), each behind its scope (`okta.users.read`, `okta.groups.read`, `okta.logs.read`,
 *   `okta.userRisk.read`).
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";
import { systemClock, type Clock } from "../../../src/util/clock.ts";

export type UserStatus = "STAGED" | "PROVISIONED" | "ACTIVE" | "RECOVERY" | "PASSWORD_EXPIRED" | "LOCKED_OUT" | "SUSPENDED" | "DEPROVISIONED";

export interface FakeUser {
  id: string;
  status: UserStatus;
  login: string;
  sessions: number;
  oauthTokens: number;
  /** `lastUpdated`, epoch ms on the fake's clock; set when the user is added or changes. */
  lastUpdated?: number;
  /** `passwordChanged`, epoch ms. */
  passwordChanged?: number;
  department?: string;
}

/** The user's risk object (Identity Threat Protection). */
export interface FakeUserRisk {
  riskLevel: "NONE" | "LOW" | "MEDIUM" | "HIGH";
  reason?: string;
}

export interface SessionStartSpec {
  at?: number;
  sessionId?: string;
  result?: "SUCCESS" | "FAILURE";
  ip?: string;
  /** Country name, as the System Log writes it. Default "Germany". */
  country?: string | null;
  city?: string | null;
  lat?: number | null;
  lon?: number | null;
  deviceId?: string;
  managed?: boolean;
}

export interface FakeGroup {
  id: string;
  name: string;
  type: "OKTA_GROUP" | "APP_GROUP";
  members: Set<string>;
}

export interface FakeClient {
  readonly client_id: string;
  /** PEM or KeyObject of the registered public key. */
  readonly publicKey: string | KeyObject;
  /** When set, the assertion's `kid` must match. */
  readonly kid?: string;
  /** Scopes granted to the service app. */
  readonly scopes: readonly string[];
  /** The app requires DPoP-bound tokens (Okta then refuses plain client-credentials requests). */
  readonly dpop?: boolean;
}

export interface OktaFakeOptions {
  /** The accepted SSWS API token. */
  readonly apiToken?: string;
  readonly clients?: readonly FakeClient[];
  /** Clock for token lifetimes and assertion times. Default the system clock. */
  readonly clock?: Clock;
  /** `expires_in` of issued tokens. Default 3600. */
  readonly tokenLifetimeSeconds?: number;
  /** Page size of `GET /api/v1/users/{id}/groups`; default: everything on one page. */
  readonly groupPageSize?: number;
}

interface Issued {
  readonly client_id: string;
  readonly scopes: ReadonlySet<string>;
  readonly expiresAt: number;
}

interface Match {
  readonly method?: string;
  readonly path?: RegExp;
}

const TOKEN_PATH = "/oauth2/v1/token";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const RATE_LIMIT = 600;

/** Scopes any one of which lets a Bearer token call the endpoint (`okta.*.manage` includes read). */
function scopesFor(method: string, path: string): readonly string[] | undefined {
  if (path === "/oauth2/v1/global-token-revocation") return ["okta.universalLogout.manage"];
  if (path === "/api/v1/logs") return ["okta.logs.read"];
  if (path === "/api/v1/users") return method === "GET" ? ["okta.users.read", "okta.users.manage"] : ["okta.users.manage"];
  if (/^\/api\/v1\/groups\/[^/]+\/users$/.test(path)) return ["okta.groups.read", "okta.groups.manage"];
  if (/^\/api\/v1\/users\/[^/]+\/risk$/.test(path)) return method === "GET" ? ["okta.userRisk.read", "okta.userRisk.manage"] : ["okta.userRisk.manage"];
  if (/^\/api\/v1\/groups\/[^/]+\/users\/[^/]+$/.test(path)) return ["okta.groups.manage"];
  if (/^\/api\/v1\/users\/[^/]+\/groups$/.test(path)) return ["okta.users.read", "okta.users.manage", "okta.groups.read", "okta.groups.manage"];
  if (/^\/api\/v1\/users\//.test(path)) return method === "GET" ? ["okta.users.read", "okta.users.manage"] : ["okta.users.manage"];
  return undefined;
}

export class OktaFake {
  readonly api = new FakeApi();
  readonly users = new Map<string, FakeUser>();
  readonly groups = new Map<string, FakeGroup>();
  /** Users' risk objects; a user without one answers `NONE`. */
  readonly userRisk = new Map<string, FakeUserRisk>();
  /** System Log events in the order Okta stored them. */
  readonly logEvents: Record<string, unknown>[] = [];
  /** Universal Logout requests received, as user ids. */
  readonly universalLogouts: string[] = [];
  /** Token requests received at `/oauth2/v1/token`, successful or not. */
  tokenRequests = 0;
  /** Tokens issued, successful requests only. */
  tokensIssued = 0;
  groupPageSize: number | undefined;
  readonly #apiToken: string | undefined;
  readonly #clients = new Map<string, FakeClient & { key: KeyObject }>();
  readonly #clock: Clock;
  readonly #lifetime: number;
  readonly #issued = new Map<string, Issued>();
  readonly #usedJti = new Set<string>();
  readonly #denied: Match[] = [];
  #remaining = RATE_LIMIT;

  constructor(options: OktaFakeOptions = {}) {
    this.#apiToken = options.apiToken;
    for (const c of options.clients ?? []) this.#clients.set(c.client_id, { ...c, key: typeof c.publicKey === "string" ? createPublicKey(c.publicKey) : c.publicKey });
    this.#clock = options.clock ?? systemClock;
    this.#lifetime = options.tokenLifetimeSeconds ?? 3600;
    this.groupPageSize = options.groupPageSize;
    this.api.authenticate = (req) => this.#authenticate(req);
    this.#routes();
  }

  async start(): Promise<string> {
    return this.api.start();
  }

  stop(): Promise<void> {
    return this.api.stop();
  }

  get base(): string {
    return this.api.base;
  }

  get tokenUrl(): string {
    return `${this.api.base}${TOKEN_PATH}`;
  }

  // ------------------------------------------------------------------ state

  addUser(id: string, status: UserStatus = "ACTIVE", extra: Partial<Pick<FakeUser, "sessions" | "oauthTokens" | "login" | "passwordChanged" | "department">> = {}): FakeUser {
    const user: FakeUser = {
      id,
      status,
      login: extra.login ?? `${id}@example.com`,
      sessions: extra.sessions ?? 2,
      oauthTokens: extra.oauthTokens ?? 3,
      lastUpdated: this.#clock.now(),
      ...(extra.passwordChanged !== undefined ? { passwordChanged: extra.passwordChanged } : {}),
      ...(extra.department !== undefined ? { department: extra.department } : {}),
    };
    this.users.set(id, user);
    return user;
  }

  /** Changes a user's status as an admin would (and stamps `lastUpdated`). */
  setStatus(id: string, status: UserStatus): void {
    const u = this.users.get(id);
    if (!u) throw new Error(`no user ${id}`);
    u.status = status;
    u.lastUpdated = this.#clock.now();
  }

  /** Appends a System Log event as Okta stores it. */
  logEvent(event: Record<string, unknown>): Record<string, unknown> {
    const e = { uuid: randomBytes(16).toString("hex").replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5"), version: "0", severity: "INFO", legacyEventType: null, ...event };
    this.logEvents.push(e);
    return e;
  }

  /** `user.session.start`: a user signed in to Okta. */
  sessionStart(userId: string, o: SessionStartSpec = {}): Record<string, unknown> {
    const u = this.users.get(userId);
    const at = o.at ?? this.#clock.now();
    return this.logEvent({
      published: new Date(at).toISOString(),
      eventType: "user.session.start",
      displayMessage: "User login to Okta",
      actor: { id: userId, type: "User", alternateId: u?.login ?? userId, displayName: `User ${userId}`, detailEntry: null },
      client: {
        userAgent: { rawUserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)", os: "Mac OS X", browser: "CHROME" },
        zone: "null",
        device: "Computer",
        id: null,
        ipAddress: o.ip ?? "203.0.113.10",
        geographicalContext: {
          city: o.city === undefined ? "Berlin" : o.city,
          state: "Land Berlin",
          country: o.country === undefined ? "Germany" : o.country,
          postalCode: "10115",
          geolocation: o.lat === null || o.lon === null ? null : { lat: o.lat ?? 52.52, lon: o.lon ?? 13.405 },
        },
      },
      ...(o.deviceId !== undefined || o.managed !== undefined ? { device: { id: o.deviceId ?? "guo1a2b3c4d5e6f7g8h9", name: "MacBookPro18,3", os_platform: "OSX", os_version: "14.4.1", managed: o.managed ?? false, registered: true } } : {}),
      authenticationContext: { authenticationProvider: null, credentialProvider: null, credentialType: null, issuer: null, interface: null, authenticationStep: 0, externalSessionId: o.sessionId ?? `102${randomBytes(9).toString("base64url")}` },
      outcome: { result: o.result ?? "SUCCESS", reason: o.result === "FAILURE" ? "INVALID_CREDENTIALS" : null },
      securityContext: { asNumber: 3320, asOrg: "deutsche telekom ag", isp: "deutsche telekom ag", domain: "t-ipconnect.de", isProxy: false },
      debugContext: { debugData: { requestUri: "/idp/idx/identify", risk: "{level=LOW}" } },
      transaction: { type: "WEB", id: randomBytes(12).toString("base64url"), detail: {} },
      target: [],
    });
  }

  /** A second factor verified (or refused) in a session: `user.authentication.auth_via_mfa` (classic) or `user.authentication.verify` (Identity Engine). */
  mfa(userId: string, o: { at?: number; sessionId: string; factor?: string; result?: "SUCCESS" | "FAILURE"; type?: "user.authentication.auth_via_mfa" | "user.authentication.verify" }): Record<string, unknown> {
    const u = this.users.get(userId);
    const at = o.at ?? this.#clock.now();
    const type = o.type ?? "user.authentication.auth_via_mfa";
    return this.logEvent({
      published: new Date(at).toISOString(),
      eventType: type,
      displayMessage: type === "user.authentication.verify" ? "Verify user identity" : "Authentication of user via MFA",
      actor: { id: userId, type: "User", alternateId: u?.login ?? userId, displayName: `User ${userId}`, detailEntry: null },
      client: { ipAddress: "203.0.113.10", geographicalContext: { city: "Berlin", state: null, country: "Germany", postalCode: null, geolocation: { lat: 52.52, lon: 13.405 } } },
      authenticationContext: { authenticationStep: 0, externalSessionId: o.sessionId },
      outcome: { result: o.result ?? "SUCCESS", reason: o.result === "FAILURE" ? "INVALID_CREDENTIALS" : null },
      debugContext: { debugData: { factor: o.factor ?? "OKTA_VERIFY_PUSH", factorIntent: "AUTHENTICATION" } },
      target: type === "user.authentication.verify" ? [{ id: "aut1abcd", type: "AuthenticatorEnrollment", alternateId: "unknown", displayName: "Okta Verify", detailEntry: { methodTypeUsed: o.factor ?? "Okta Verify Push" } }] : [],
    });
  }

  /** `user.risk.detect`: Identity Threat Protection changed a user's risk (and the risk object follows). */
  riskDetect(userId: string, o: { level: FakeUserRisk["riskLevel"]; previous?: string; detection?: string; reasons?: string; issuer?: string; at?: number }): Record<string, unknown> {
    const u = this.users.get(userId);
    const at = o.at ?? this.#clock.now();
    this.userRisk.set(userId, { riskLevel: o.level, reason: o.reasons ?? o.detection ?? "Risk detected" });
    return this.logEvent({
      published: new Date(at).toISOString(),
      eventType: "user.risk.detect",
      displayMessage: "User risk change detected",
      actor: { id: "0oa1itpsystem", type: "PublicClientApp", alternateId: "Okta ITP", displayName: "Okta ITP", detailEntry: null },
      outcome: { result: "SUCCESS", reason: null },
      debugContext: {
        debugData: {
          risk: `{previousLevel=${o.previous ?? "LOW"}, level=${o.level}, detectionName=${o.detection ?? "Session Influenced User Risk"}, reasons=${o.reasons ?? "Anomalous location, Anomalous device"}, issuer=${o.issuer ?? "OKTA"}}`,
          TraceId: randomBytes(8).toString("hex"),
        },
      },
      target: [{ id: userId, type: "User", alternateId: u?.login ?? userId, displayName: `User ${userId}`, detailEntry: null }],
    });
  }

  addGroup(id: string, name = id, type: FakeGroup["type"] = "OKTA_GROUP"): FakeGroup {
    const group: FakeGroup = { id, name, type, members: new Set() };
    this.groups.set(id, group);
    return group;
  }

  addMember(group: string, user: string): void {
    this.groups.get(group)!.members.add(user);
  }

  status(user: string): UserStatus | undefined {
    return this.users.get(user)?.status;
  }

  groupsOf(user: string): string[] {
    return [...this.groups.values()].filter((g) => g.members.has(user)).map((g) => g.id).sort();
  }

  // ------------------------------------------------------------------ faults

  /** The next `count` matching requests get 429 E0000047 with `X-Rate-Limit-Reset` `resetInSeconds` from now. */
  rateLimit(match: Match, resetInSeconds = 30, count = 1): number {
    const reset = Math.ceil(Date.now() / 1000) + resetInSeconds;
    const reply: FakeReply = {
      status: 429,
      headers: { "X-Rate-Limit-Limit": String(RATE_LIMIT), "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": String(reset) },
      body: oktaError("E0000047", "API call exceeded rate limit due to too many requests."),
    };
    this.api.fail(match, ...Array.from({ length: count }, () => reply));
    return reset;
  }

  /** The next `count` matching requests get a 5xx with Okta's error body. */
  serverError(match: Match, status = 500, count = 1): void {
    const reply: FakeReply = { status, body: status === 503 ? oktaError("E0000010", "Service is temporarily unavailable") : oktaError("E0000009", "Internal Server Error") };
    this.api.fail(match, ...Array.from({ length: count }, () => reply));
  }

  /** Every matching request from now on gets 403 E0000006, as for a credential without the permission. */
  deny(match: Match): void {
    this.#denied.push(match);
  }

  /** Drops the `deny` rules. */
  allowAll(): void {
    this.#denied.length = 0;
  }

  /** Forgets every issued access token, as after a revocation on the Okta side. */
  revokeTokens(): void {
    this.#issued.clear();
  }

  /** Handled requests as `METHOD path?query`, without token requests: what the actions sent to the API. */
  apiLines(): string[] {
    return this.api.handled.filter((r) => r.path !== TOKEN_PATH).map((r) => `${r.method} ${r.url}`);
  }

  /** Handled API requests (token requests excluded). */
  apiRequests(): FakeRequest[] {
    return this.api.handled.filter((r) => r.path !== TOKEN_PATH);
  }

  // ------------------------------------------------------------------ authentication

  #authenticate(req: FakeRequest): FakeReply | undefined {
    if (req.path === TOKEN_PATH) return undefined;
    const header = req.headers["authorization"] ?? "";
    let scopes: ReadonlySet<string> | undefined; // undefined: an API token, which acts with its admin's roles
    if (header.startsWith("SSWS ")) {
      if (this.#apiToken === undefined || header !== `SSWS ${this.#apiToken}`) return this.#reply(401, oktaError("E0000011", "Invalid token provided"));
    } else if (header.startsWith("Bearer ")) {
      const issued = this.#issued.get(header.slice("Bearer ".length));
      if (!issued || this.#clock.now() >= issued.expiresAt) {
        return this.#reply(401, oktaError("E0000011", "Invalid token provided"), { "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The token has expired."' });
      }
      scopes = issued.scopes;
    } else {
      return this.#reply(401, oktaError("E0000011", "Invalid token provided"));
    }
    const needed = scopesFor(req.method, req.path);
    if (scopes && needed && !needed.some((s) => scopes.has(s))) {
      return this.#reply(403, oktaError("E0000006", "You do not have permission to perform the requested action"), {
        "WWW-Authenticate": 'Bearer error="insufficient_scope", error_description="The access token provided does not contain the required scopes."',
      });
    }
    if (this.#denied.some((d) => (!d.method || d.method.toUpperCase() === req.method) && (!d.path || d.path.test(req.path)))) {
      return this.#reply(403, oktaError("E0000006", "You do not have permission to perform the requested action"));
    }
    return undefined;
  }

  #token(req: FakeRequest): FakeReply {
    this.tokenRequests++;
    const fail = (status: number, error: string, description: string): FakeReply => ({ status, headers: { "Cache-Control": "no-store" }, body: { error, error_description: description } });
    if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return fail(400, "invalid_request", "The request must use application/x-www-form-urlencoded.");
    const form = new URLSearchParams(req.body);
    for (const [k] of form) if (form.getAll(k).length > 1) return fail(400, "invalid_request", `The '${k}' parameter was repeated.`);
    if (req.headers["authorization"]) return fail(401, "invalid_client", "Client authentication via the Authorization header is not allowed with private_key_jwt.");
    if (form.get("grant_type") !== "client_credentials") return fail(400, "unsupported_grant_type", `The authorization grant type is not supported by the authorization server.`);
    if (form.get("client_assertion_type") !== ASSERTION_TYPE) return fail(401, "invalid_client", "client_assertion_type is missing or invalid.");
    const assertion = form.get("client_assertion");
    if (!assertion) return fail(401, "invalid_client", "The client_assertion is missing.");
    const checked = this.#checkAssertion(assertion);
    if (typeof checked === "string") return fail(401, "invalid_client", checked);
    const client = checked;
    if (form.has("client_id") && form.get("client_id") !== client.client_id) return fail(401, "invalid_client", "client_id does not match the client_assertion issuer.");
    if (client.dpop) return fail(400, "invalid_dpop_proof", "The DPoP proof JWT header is missing.");
    const requested = (form.get("scope") ?? "").split(" ").filter(Boolean);
    if (requested.length === 0) return fail(400, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.");
    const refused = requested.filter((s) => !client.scopes.includes(s));
    if (refused.length) return fail(400, "invalid_scope", `The following scopes are not allowed: ${refused.join(", ")}`);
    const token = randomBytes(32).toString("base64url");
    this.#issued.set(token, { client_id: client.client_id, scopes: new Set(requested), expiresAt: this.#clock.now() + this.#lifetime * 1000 });
    this.tokensIssued++;
    return { status: 200, headers: { "Cache-Control": "no-store" }, body: { token_type: "Bearer", expires_in: this.#lifetime, access_token: token, scope: requested.join(" ") } };
  }

  /** The registered client the assertion proves, or why it does not. */
  #checkAssertion(jwt: string): (FakeClient & { key: KeyObject }) | string {
    const parts = jwt.split(".");
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return "The client_assertion is not a well-formed JWS.";
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    } catch {
      return "The client_assertion is not a well-formed JWT.";
    }
    const iss = claims.iss;
    const client = typeof iss === "string" ? this.#clients.get(iss) : undefined;
    if (!client) return "The client_assertion issuer is not a registered client.";
    if (claims.sub !== iss) return "The client_assertion sub must equal its iss.";
    if (client.kid !== undefined && header.kid !== client.kid) return "The client_assertion kid does not match a registered key.";
    const algs: Record<string, { hash: string; type: string }> = {
      RS256: { hash: "sha256", type: "rsa" },
      RS384: { hash: "sha384", type: "rsa" },
      RS512: { hash: "sha512", type: "rsa" },
      ES256: { hash: "sha256", type: "ec" },
    };
    const alg = typeof header.alg === "string" ? algs[header.alg] : undefined;
    if (!alg || alg.type !== client.key.asymmetricKeyType) return `The client_assertion alg ${String(header.alg)} is not allowed for the registered key.`;
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2]!, "base64url");
    const ok = verify(alg.hash, signed, alg.type === "ec" ? { key: client.key, dsaEncoding: "ieee-p1363" } : client.key, signature);
    if (!ok) return "The client_assertion signature is invalid.";
    const aud = claims.aud;
    if (!(aud === this.tokenUrl || (Array.isArray(aud) && aud.includes(this.tokenUrl)))) return "The audience of the client_assertion is not the token endpoint.";
    const now = Math.floor(this.#clock.now() / 1000);
    const { exp, iat, nbf, jti } = claims;
    if (typeof exp !== "number" || exp <= now) return "The client_assertion token is expired.";
    if (typeof iat !== "number" || iat > now + 60) return "The client_assertion iat is missing or in the future.";
    if (exp - iat > 3600) return "The client_assertion exp is more than one hour after iat.";
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + 60)) return "The client_assertion is not valid yet.";
    if (typeof jti !== "string" || jti === "") return "The client_assertion jti is missing.";
    if (this.#usedJti.has(jti)) return "The client_assertion token has already been used.";
    this.#usedJti.add(jti);
    return client;
  }

  // ------------------------------------------------------------------ API

  #reply(status: number, body?: unknown, headers: Record<string, string> = {}): FakeReply {
    // Okta sends its rate-limit headers on every API answer.
    this.#remaining = this.#remaining > 1 ? this.#remaining - 1 : RATE_LIMIT;
    return {
      status,
      headers: { "X-Rate-Limit-Limit": String(RATE_LIMIT), "X-Rate-Limit-Remaining": String(this.#remaining), "X-Rate-Limit-Reset": String(Math.ceil(Date.now() / 1000) + 60), ...headers },
      ...(body === undefined ? {} : { body }),
    };
  }

  #user(raw: string): FakeUser | FakeReply {
    const id = decodeURIComponent(raw);
    return this.users.get(id) ?? [...this.users.values()].find((u) => u.login === id) ?? this.#reply(404, oktaError("E0000007", `Not found: Resource not found: ${id} (User)`));
  }

  /** Okta ignores a body on these calls but refuses one that is not JSON. */
  #badBody(req: FakeRequest): FakeReply | undefined {
    if (req.body === "") return undefined;
    try {
      JSON.parse(req.body);
      return undefined;
    } catch {
      return this.#reply(400, oktaError("E0000003", "The request body was not well-formed."));
    }
  }

  #userJson(u: FakeUser): Record<string, unknown> {
    return {
      id: u.id,
      status: u.status,
      created: "2025-01-01T00:00:00.000Z",
      activated: "2025-01-01T00:00:00.000Z",
      statusChanged: "2025-01-01T00:00:00.000Z",
      lastLogin: null,
      lastUpdated: new Date(u.lastUpdated ?? Date.parse("2025-01-01T00:00:00.000Z")).toISOString(),
      passwordChanged: u.passwordChanged !== undefined ? new Date(u.passwordChanged).toISOString() : null,
      type: { id: "oty1defaultUserType" },
      profile: { login: u.login, email: u.login, firstName: "Test", lastName: u.id, ...(u.department !== undefined ? { department: u.department } : {}) },
      credentials: { provider: { type: "OKTA", name: "OKTA" } },
      _links: { self: { href: `${this.base}/api/v1/users/${u.id}` } },
    };
  }

  #routes(): void {
    const api = this.api;
    const USER = "(?<user>[^/]+)";
    const GROUP = "(?<group>[^/]+)";
    api.route("POST", new RegExp(`^${TOKEN_PATH}$`), (req) => this.#token(req));
    api.route("GET", /^\/api\/v1\/users$/, (req) => this.#listUsers(req));
    api.route("GET", /^\/api\/v1\/groups\/(?<group>[^/]+)\/users$/, (req) => this.#groupUsers(req));
    api.route("GET", /^\/api\/v1\/logs$/, (req) => this.#logs(req));
    api.route("GET", /^\/api\/v1\/users\/(?<user>[^/]+)\/risk$/, (req) => {
      const found = this.#user(req.params.user!);
      if (isReply(found)) return found;
      const risk = this.userRisk.get(found.id) ?? { riskLevel: "NONE" as const };
      return this.#reply(200, { riskLevel: risk.riskLevel, ...(risk.reason !== undefined ? { reason: risk.reason } : {}), _links: { self: { href: `${this.base}/api/v1/users/${found.id}/risk` }, user: { href: `${this.base}/api/v1/users/${found.id}` } } });
    });

    api.route("GET", new RegExp(`^/api/v1/users/${USER}$`), (req) => {
      const found = this.#user(req.params.user!);
      return isReply(found) ? found : this.#reply(200, this.#userJson(found));
    });

    api.route("POST", new RegExp(`^/api/v1/users/${USER}/lifecycle/(?<op>suspend|unsuspend)$`), (req) => {
      const bad = this.#badBody(req);
      if (bad) return bad;
      const found = this.#user(req.params.user!);
      if (isReply(found)) return found;
      const [from, to] = req.params.op === "suspend" ? (["ACTIVE", "SUSPENDED"] as const) : (["SUSPENDED", "ACTIVE"] as const);
      if (found.status !== from) {
        return this.#reply(400, oktaError("E0000001", `Api validation failed: ${req.params.op}User`, [`Cannot ${req.params.op} a user that is not ${from.toLowerCase()}`]));
      }
      found.status = to;
      found.lastUpdated = this.#clock.now();
      return this.#reply(200, {});
    });

    api.route("DELETE", new RegExp(`^/api/v1/users/${USER}/sessions$`), (req) => {
      for (const flag of ["oauthTokens", "forgetDevices"]) {
        const v = req.query.get(flag);
        if (v !== null && v !== "true" && v !== "false") return this.#reply(400, oktaError("E0000001", "Api validation failed: " + flag, [`${flag}: must be true or false`]));
      }
      const found = this.#user(req.params.user!);
      if (isReply(found)) return found;
      found.sessions = 0;
      if (req.query.get("oauthTokens") === "true") found.oauthTokens = 0;
      return this.#reply(204);
    });

    api.route("GET", new RegExp(`^/api/v1/users/${USER}/groups$`), (req) => {
      const found = this.#user(req.params.user!);
      if (isReply(found)) return found;
      const all = [...this.groups.values()].filter((g) => g.members.has(found.id)).sort((a, b) => a.id.localeCompare(b.id));
      const size = this.groupPageSize ?? all.length;
      const after = req.query.get("after");
      const start = after ? all.findIndex((g) => g.id === after) + 1 : 0;
      const page = all.slice(start, start + Math.max(1, size));
      const json = page.map((g) => ({ id: g.id, type: g.type, profile: { name: g.name, description: null }, _links: { self: { href: `${this.base}/api/v1/groups/${g.id}` } } }));
      const more = start + page.length < all.length;
      const self = `<${this.base}${req.url}>; rel="self"`;
      const link = more ? `${self}, <${this.base}/api/v1/users/${found.id}/groups?after=${page.at(-1)!.id}&limit=${size}>; rel="next"` : self;
      return this.#reply(200, json, { Link: link });
    });

    const membership = (req: FakeRequest): { group: FakeGroup; user: FakeUser } | FakeReply => {
      const bad = this.#badBody(req);
      if (bad) return bad;
      const gid = decodeURIComponent(req.params.group!);
      const group = this.groups.get(gid);
      if (!group) return this.#reply(404, oktaError("E0000007", `Not found: Resource not found: ${gid} (UserGroup)`));
      const user = this.#user(req.params.user!);
      if (isReply(user)) return user;
      if (group.type !== "OKTA_GROUP") return this.#reply(400, oktaError("E0000001", "Api validation failed: members", ["You can only modify memberships of OKTA_GROUP groups"]));
      return { group, user };
    };
    api.route("PUT", new RegExp(`^/api/v1/groups/${GROUP}/users/${USER}$`), (req) => {
      const m = membership(req);
      if (isReply(m)) return m;
      m.group.members.add(m.user.id);
      return this.#reply(204);
    });
    api.route("DELETE", new RegExp(`^/api/v1/groups/${GROUP}/users/${USER}$`), (req) => {
      const m = membership(req);
      if (isReply(m)) return m;
      m.group.members.delete(m.user.id);
      return this.#reply(204);
    });

    api.route("POST", /^\/oauth2\/v1\/global-token-revocation$/, (req) => {
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) return this.#reply(415, oktaError("E0000001", "Unsupported media type"));
      let body: { sub_id?: { format?: unknown; id?: unknown } } | undefined;
      try {
        body = JSON.parse(req.body);
      } catch {
        return this.#reply(400, { error: "invalid_request", error_description: "The request body is not valid JSON." });
      }
      const sub = body?.sub_id;
      if (!sub || sub.format !== "opaque" || typeof sub.id !== "string" || Object.keys(body!).length !== 1 || Object.keys(sub).length !== 2) {
        return this.#reply(400, { error: "invalid_request", error_description: "sub_id must be {format: opaque, id}." });
      }
      const user = this.users.get(sub.id);
      if (!user) return this.#reply(400, { error: "invalid_request", error_description: "The subject is not a user of this org." });
      this.universalLogouts.push(user.id);
      user.sessions = 0;
      user.oauthTokens = 0;
      return this.#reply(204);
    });
  }

  // ------------------------------------------------------------------ lists

  /** An expression of `<attr> <op> "<value>"` clauses joined by `and` (parentheses ignored); 400 for anything else. */
  #expression(text: string, attrs: RegExp): ((u: FakeUser) => boolean) | FakeReply {
    const clauses = text.replace(/[()]/g, "").split(/\s+and\s+/i);
    const tests: ((u: FakeUser) => boolean)[] = [];
    for (const c of clauses) {
      const m = /^\s*([A-Za-z.]+)\s+(eq|gt|ge|lt|le|sw)\s+"([^"]*)"\s*$/.exec(c);
      if (!m || !attrs.test(m[1]!)) return this.#reply(400, oktaError("E0000031", `Invalid search criteria: ${c.trim()}`));
      const [, attr, op, value] = m as unknown as [string, string, string, string];
      const get = (u: FakeUser): string | number | undefined => {
        switch (attr) {
          case "status":
            return u.status;
          case "id":
            return u.id;
          case "lastUpdated":
            return u.lastUpdated ?? 0;
          case "profile.login":
          case "profile.email":
            return u.login;
          case "profile.department":
            return u.department;
          default:
            return undefined;
        }
      };
      const target = attr === "lastUpdated" ? Date.parse(value) : value;
      if (attr === "lastUpdated" && Number.isNaN(target)) return this.#reply(400, oktaError("E0000031", `Invalid date: ${value}`));
      tests.push((u) => {
        const v = get(u);
        if (v === undefined) return false;
        switch (op) {
          case "eq":
            return v === target;
          case "gt":
            return v > target;
          case "ge":
            return v >= target;
          case "lt":
            return v < target;
          case "le":
            return v <= target;
          default:
            return String(v).startsWith(String(target));
        }
      });
    }
    return (u) => tests.every((t) => t(u));
  }

  /** `limit` (1–`max`, default `max`) and `after` paging over `items` sorted by id, with Okta's Link header. */
  #page(req: FakeRequest, items: FakeUser[], max: number, path: string): FakeReply {
    const limitText = req.query.get("limit");
    const limit = limitText === null ? max : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1) return this.#reply(400, oktaError("E0000001", "Api validation failed: limit", ["limit: must be a positive integer"]));
    const size = Math.min(limit, max);
    const sorted = items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const after = req.query.get("after");
    const start = after === null ? 0 : sorted.findIndex((u) => u.id > after);
    const page = start < 0 ? [] : sorted.slice(start, start + size);
    const self = `<${this.base}${req.url}>; rel="self"`;
    let link = self;
    if (start >= 0 && start + size < sorted.length) {
      const q = new URLSearchParams(req.query);
      q.set("after", page.at(-1)!.id);
      q.set("limit", String(size));
      link = `${self}, <${this.base}${path}?${q.toString()}>; rel="next"`;
    }
    return this.#reply(200, page.map((u) => this.#userJson(u)), { Link: link });
  }

  #listUsers(req: FakeRequest): FakeReply {
    const filter = req.query.get("filter");
    const search = req.query.get("search");
    if (filter !== null && search !== null) return this.#reply(400, oktaError("E0000001", "Api validation failed: filter and search may not be combined"));
    let match: (u: FakeUser) => boolean = () => true;
    if (filter !== null) {
      const m = this.#expression(filter, /^(status|lastUpdated|id|profile\.(login|email|firstName|lastName))$/);
      if (isReply(m)) return m;
      match = m;
    } else if (search !== null) {
      const m = this.#expression(search, /^(status|lastUpdated|id|profile\.[A-Za-z]+)$/);
      if (isReply(m)) return m;
      match = m;
    }
    // Okta lists deactivated users only to an expression that asks about status.
    const namesStatus = /\bstatus\b/.test(filter ?? search ?? "");
    const users = [...this.users.values()].filter((u) => (namesStatus || u.status !== "DEPROVISIONED") && match(u));
    return this.#page(req, users, 200, "/api/v1/users");
  }

  #groupUsers(req: FakeRequest): FakeReply {
    const group = this.groups.get(decodeURIComponent(req.params.group!));
    if (!group) return this.#reply(404, oktaError("E0000007", `Not found: Resource not found: ${req.params.group} (UserGroup)`));
    const users = [...group.members].map((id) => this.users.get(id)).filter((u): u is FakeUser => u !== undefined);
    return this.#page(req, users, 1000, `/api/v1/groups/${group.id}/users`);
  }

  #logs(req: FakeRequest): FakeReply {
    const since = req.query.get("since");
    const until = req.query.get("until");
    const after = req.query.get("after");
    if (since !== null && after !== null) return this.#reply(400, oktaError("E0000001", "Api validation failed: since and after are mutually exclusive"));
    const sortOrder = req.query.get("sortOrder") ?? "ASCENDING";
    if (sortOrder !== "ASCENDING" && sortOrder !== "DESCENDING") return this.#reply(400, oktaError("E0000001", "Api validation failed: sortOrder"));
    const limitText = req.query.get("limit");
    const limit = limitText === null ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 0 || limit > 1000) return this.#reply(400, oktaError("E0000001", "Api validation failed: limit", ["limit: must be between 0 and 1000"]));
    const filter = req.query.get("filter");
    let types: Set<string> | undefined;
    if (filter !== null) {
      types = new Set();
      for (const c of filter.split(/\s+or\s+/)) {
        const m = /^\s*eventType eq "([a-z0-9_.]+)"\s*$/.exec(c);
        if (!m) return this.#reply(400, oktaError("E0000053", `Invalid filter '${filter}'`));
        types.add(m[1]!);
      }
    }
    const now = this.#clock.now();
    let start = 0;
    if (after !== null) {
      start = Number(after);
      if (!Number.isInteger(start) || start < 0 || start > this.logEvents.length) return this.#reply(400, oktaError("E0000001", "Api validation failed: after"));
    } else {
      const from = since === null ? now - 7 * 86_400_000 : Date.parse(since);
      if (Number.isNaN(from)) return this.#reply(400, oktaError("E0000001", "Api validation failed: 'since': The date format in your query is not recognized."));
      if (from < now - 180 * 86_400_000) return this.#reply(400, oktaError("E0000053", "Invalid parameter: The since parameter is over 180 days prior to the current day."));
      start = this.logEvents.findIndex((e) => Date.parse(e.published as string) >= from);
      if (start < 0) start = this.logEvents.length;
    }
    const to = until === null ? Number.POSITIVE_INFINITY : Date.parse(until);
    const page: Record<string, unknown>[] = [];
    let i = start;
    for (; i < this.logEvents.length && page.length < limit; i++) {
      const e = this.logEvents[i]!;
      if (Date.parse(e.published as string) > to) break;
      if (!types || types.has(e.eventType as string)) page.push(e);
    }
    const self = `<${this.base}${req.url}>; rel="self"`;
    // Polling requests (no until) always link the next page; bounded ones only while events remain.
    const more = until === null || i < this.logEvents.length;
    const q = new URLSearchParams(req.query);
    q.delete("since");
    q.set("after", String(i));
    const link = more ? `${self}, <${this.base}/api/v1/logs?${q.toString()}>; rel="next"` : self;
    return this.#reply(200, sortOrder === "ASCENDING" ? page : page.reverse(), { Link: link });
  }
}

function isReply(x: unknown): x is FakeReply {
  return typeof x === "object" && x !== null && typeof (x as { status?: unknown }).status === "number";
}

/** Okta's error body. */
export function oktaError(code: string, summary: string, causes: readonly string[] = []): Record<string, unknown> {
  return { errorCode: code, errorSummary: summary, errorLink: code, errorId: `oae${randomBytes(9).toString("base64url")}`, errorCauses: causes.map((c) => ({ errorSummary: c })) };
}
