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
 *   `X-Rate-Limit-Reset`, 5xx on demand.
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
  if (/^\/api\/v1\/groups\/[^/]+\/users\/[^/]+$/.test(path)) return ["okta.groups.manage"];
  if (/^\/api\/v1\/users\/[^/]+\/groups$/.test(path)) return ["okta.users.read", "okta.users.manage", "okta.groups.read", "okta.groups.manage"];
  if (/^\/api\/v1\/users\//.test(path)) return method === "GET" ? ["okta.users.read", "okta.users.manage"] : ["okta.users.manage"];
  return undefined;
}

export class OktaFake {
  readonly api = new FakeApi();
  readonly users = new Map<string, FakeUser>();
  readonly groups = new Map<string, FakeGroup>();
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

  addUser(id: string, status: UserStatus = "ACTIVE", extra: Partial<Pick<FakeUser, "sessions" | "oauthTokens" | "login">> = {}): FakeUser {
    const user: FakeUser = { id, status, login: extra.login ?? `${id}@example.com`, sessions: extra.sessions ?? 2, oauthTokens: extra.oauthTokens ?? 3 };
    this.users.set(id, user);
    return user;
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
      statusChanged: "2025-01-01T00:00:00.000Z",
      profile: { login: u.login, email: u.login, firstName: "Test", lastName: u.id },
      credentials: { provider: { type: "OKTA", name: "OKTA" } },
      _links: { self: { href: `${this.base}/api/v1/users/${u.id}` } },
    };
  }

  #routes(): void {
    const api = this.api;
    const USER = "(?<user>[^/]+)";
    const GROUP = "(?<group>[^/]+)";
    api.route("POST", new RegExp(`^${TOKEN_PATH}$`), (req) => this.#token(req));

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
}

function isReply(x: unknown): x is FakeReply {
  return typeof x === "object" && x !== null && typeof (x as { status?: unknown }).status === "number";
}

/** Okta's error body. */
export function oktaError(code: string, summary: string, causes: readonly string[] = []): Record<string, unknown> {
  return { errorCode: code, errorSummary: summary, errorLink: code, errorId: `oae${randomBytes(9).toString("base64url")}`, errorCauses: causes.map((c) => ({ errorSummary: c })) };
}
