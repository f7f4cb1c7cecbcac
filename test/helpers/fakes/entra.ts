/**
 * A local Microsoft identity platform token endpoint and Microsoft Graph v1.0, enforcing what the
 * Entra actions rely on:
 * - `POST /<tenant>/oauth2/v2.0/token`: client credentials only; the client secret, or a
 *   private_key_jwt assertion checked here with node:crypto alone (RS256/PS256 signature by the
 *   registered certificate's key, `x5t` of that certificate, `aud` = the token URL, `iss` = `sub` =
 *   client id, time window, no replayed `jti`); scope `<graph origin>/.default`. Errors in Entra's
 *   form (`{error, error_description: "AADSTS…", error_codes}`).
 * - Graph routes under `/v1.0`: a bearer token this server issued and that has not expired (401
 *   InvalidAuthenticationToken), the application permission the route documents (403
 *   Authorization_RequestDenied), the body shape (400 with `{error: {code, message, innerError}}`),
 *   users, risky users and groups kept as state, 404 Request_ResourceNotFound for unknown ids.
 * - `throttle()` / `unavailable()` queue 429 / 503 answers with `Retry-After`, as Graph throttles.
 */
import { createHash, randomBytes, randomUUID, verify, constants, X509Certificate } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
export const CLIENT_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
export const CLIENT_SECRET = "entra-fake-client-secret~0123456789abcdef";

/** Every application permission the Entra actions document, for a fake that grants them all. */
export const ALL_PERMISSIONS = [
  "User.RevokeSessions.All",
  "IdentityRiskyUser.ReadWrite.All",
  "User.EnableDisableAccount.All",
  "User.Read.All",
  "GroupMember.ReadWrite.All",
  "GroupMember.Read.All",
];

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface FakeUser {
  id: string;
  userPrincipalName: string;
  displayName: string;
  accountEnabled: boolean;
  signInSessionsValidFromDateTime: string;
}

export interface FakeRiskyUser {
  id: string;
  userPrincipalName: string;
  userDisplayName: string;
  riskState: string;
  riskLevel: string;
  riskDetail: string;
  riskLastUpdatedDateTime: string;
  isDeleted: boolean;
  isProcessing: boolean;
}

export interface FakeEntraOptions {
  tenant?: string;
  clientId?: string;
  /** The secret the app registration holds; undefined: secrets are refused. Default CLIENT_SECRET. */
  clientSecret?: string | undefined;
  /** PEM certificate registered for private_key_jwt; undefined: assertions are refused. */
  certificate?: string;
  /** Application permissions granted (admin-consented) to the app. Default ALL_PERMISSIONS. */
  permissions?: readonly string[];
  /** Token lifetime in seconds. Default 3599, as Entra issues. */
  tokenLifetimeS?: number;
  /** The server's clock in ms; share the test's fake clock so expiry lines up. Default Date.now. */
  now?: () => number;
}

interface Issued {
  readonly expiresAt: number;
  readonly roles: ReadonlySet<string>;
}

/** Any one alternative, each a set of permissions all required. */
export type Needs = readonly (readonly string[])[];

const b64url = (b: Buffer) => b.toString("base64url");

export class FakeEntra extends FakeApi {
  readonly tenant: string;
  readonly clientId: string;
  clientSecret: string | undefined;
  certificate: string | undefined;
  /** Permissions put into the next tokens issued (like admin consent, they reach only new tokens). */
  readonly granted: Set<string>;
  tokenLifetimeS: number;
  readonly now: () => number;
  readonly users = new Map<string, FakeUser>();
  readonly riskyUsers = new Map<string, FakeRiskyUser>();
  /** Group id → member object ids (users or groups). */
  readonly groups = new Map<string, Set<string>>();
  /** When true, risky-user changes are only queued (isProcessing), as Identity Protection does at times. */
  deferRiskUpdates = false;
  /** Token requests received (answered or refused). */
  tokenRequests = 0;
  readonly #issued = new Map<string, Issued>();
  readonly #seenJti = new Set<string>();
  readonly #tokenOf = new WeakMap<FakeRequest, Issued>();

  constructor(options: FakeEntraOptions = {}) {
    super();
    this.tenant = options.tenant ?? TENANT;
    this.clientId = options.clientId ?? CLIENT_ID;
    this.clientSecret = "clientSecret" in options ? options.clientSecret : CLIENT_SECRET;
    this.certificate = options.certificate;
    this.granted = new Set(options.permissions ?? ALL_PERMISSIONS);
    this.tokenLifetimeS = options.tokenLifetimeS ?? 3599;
    this.now = options.now ?? Date.now;
    this.authenticate = (req) => this.#authenticate(req);
    this.#routes();
  }

  get loginUrl(): string {
    return this.base;
  }
  get graphUrl(): string {
    return `${this.base}/v1.0`;
  }
  get tokenUrl(): string {
    return `${this.base}/${this.tenant}/oauth2/v2.0/token`;
  }
  get scope(): string {
    return `${this.base}/.default`;
  }

  /** `providers.entra` for this server, with the client secret unless `auth` says otherwise. */
  providerConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { tenant_id: this.tenant, client_id: this.clientId, auth: { client_secret: this.clientSecret }, login_url: this.loginUrl, graph_url: this.graphUrl, ...extra };
  }

  addUser(user: Partial<FakeUser> & { id: string; userPrincipalName: string }): FakeUser {
    const u: FakeUser = { displayName: user.userPrincipalName.split("@")[0]!, accountEnabled: true, signInSessionsValidFromDateTime: "2026-01-01T00:00:00Z", ...user };
    this.users.set(u.id.toLowerCase(), u);
    return u;
  }

  addGroup(id: string, members: readonly string[] = []): Set<string> {
    const set = new Set(members.map((m) => m.toLowerCase()));
    this.groups.set(id.toLowerCase(), set);
    return set;
  }

  isMember(group: string, member: string): boolean {
    return this.groups.get(group.toLowerCase())?.has(member.toLowerCase()) ?? false;
  }

  /** Forgets every token issued, as a key rollover or a revoked grant does. */
  revokeTokens(): void {
    this.#issued.clear();
  }

  /** Requests that reached Graph routes (token requests left out), in order. */
  graphRequests(): FakeRequest[] {
    return this.requests.filter((r) => r.path.startsWith("/v1.0/") || r.path.startsWith("/beta/"));
  }

  /** Handled Graph requests as `METHOD path?query` lines, for comparing with plans. */
  graphLines(): string[] {
    return this.handled.filter((r) => r.path.startsWith("/v1.0/")).map((r) => `${r.method} ${r.url}`);
  }

  /** The next `count` Graph requests matching `match` get 429 TooManyRequests with `Retry-After: seconds`. */
  throttle(match: { method?: string; path?: RegExp }, seconds = 7, count = 1): this {
    const reply = graphError(429, "TooManyRequests", "Too many requests, please retry after the time in the Retry-After header.", { "Retry-After": String(seconds) });
    return this.fail(match, ...Array.from({ length: count }, () => reply));
  }

  /** The next `count` Graph requests matching `match` get 503 ServiceUnavailable with `Retry-After`. */
  unavailable(match: { method?: string; path?: RegExp }, count = 1, seconds = 3): this {
    const reply = graphError(503, "ServiceUnavailable", "Service is temporarily unavailable.", { "Retry-After": String(seconds) });
    return this.fail(match, ...Array.from({ length: count }, () => reply));
  }

  // -------------------------------------------------------------------------------------------
  // Token endpoint

  #authenticate(req: FakeRequest): FakeReply | undefined {
    if (!req.path.startsWith("/v1.0/") && !req.path.startsWith("/beta/")) return undefined;
    const m = /^Bearer ([A-Za-z0-9._~-]+)$/.exec(req.headers["authorization"] ?? "");
    if (!m) return graphError(401, "InvalidAuthenticationToken", "Access token is empty.");
    const issued = this.#issued.get(m[1]!);
    if (!issued) return graphError(401, "InvalidAuthenticationToken", "Invalid signature.");
    if (this.now() >= issued.expiresAt) return graphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.");
    this.#tokenOf.set(req, issued);
    return undefined;
  }

  #token(req: FakeRequest): FakeReply {
    this.tokenRequests++;
    if (req.params.tenant !== this.tenant) return aadError(400, "invalid_request", 90002, `Tenant '${req.params.tenant}' not found.`);
    if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
      return aadError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.");
    }
    const form = new URLSearchParams(req.body);
    if (form.get("grant_type") !== "client_credentials") return aadError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
    const clientId = form.get("client_id");
    if (clientId !== this.clientId) return aadError(400, "unauthorized_client", 700016, `Application with identifier '${clientId}' was not found in the directory.`);
    const secret = form.get("client_secret");
    const assertion = form.get("client_assertion");
    if (secret !== null && assertion !== null) return aadError(400, "invalid_request", 90014, "Only one client credential may be presented.");
    if (secret !== null) {
      if (this.clientSecret === undefined || secret !== this.clientSecret) return aadError(401, "invalid_client", 7000215, "Invalid client secret provided.");
    } else if (assertion !== null) {
      if (form.get("client_assertion_type") !== "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return aadError(400, "invalid_request", 50027, "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.");
      }
      const problem = this.#checkAssertion(assertion);
      if (problem) return aadError(401, "invalid_client", problem.code, problem.message);
    } else {
      return aadError(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    }
    if (form.get("scope") !== this.scope) return aadError(400, "invalid_scope", 1002012, `The provided value for scope ${form.get("scope")} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`);
    const token = b64url(randomBytes(32));
    this.#issued.set(token, { expiresAt: this.now() + this.tokenLifetimeS * 1000, roles: new Set(this.granted) });
    return { status: 200, body: { token_type: "Bearer", expires_in: this.tokenLifetimeS, ext_expires_in: this.tokenLifetimeS, access_token: token } };
  }

  /** RFC 7523 client assertion as Entra checks a certificate credential; undefined when it holds. */
  #checkAssertion(jwt: string): { code: number; message: string } | undefined {
    if (!this.certificate) return { code: 700027, message: "Client assertion failed signature validation: no certificate is registered for the app." };
    const parts = jwt.split(".");
    if (parts.length !== 3) return { code: 50012, message: "Client assertion is not a JWT." };
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")) as Record<string, unknown>;
      claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
    } catch {
      return { code: 50012, message: "Client assertion could not be decoded." };
    }
    const cert = new X509Certificate(this.certificate);
    const x5t = b64url(createHash("sha1").update(cert.raw).digest());
    const x5tS256 = b64url(createHash("sha256").update(cert.raw).digest());
    if (header.x5t !== x5t && header["x5t#S256"] !== x5tS256) {
      return { code: 700027, message: `Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '${String(header.x5t)}']` };
    }
    const input = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2]!, "base64url");
    let ok = false;
    if (header.alg === "RS256") ok = verify("sha256", input, cert.publicKey, signature);
    else if (header.alg === "PS256") ok = verify("sha256", input, { key: cert.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
    else return { code: 5002738, message: `Unsupported client assertion algorithm ${String(header.alg)}.` };
    if (!ok) return { code: 700027, message: "Client assertion failed signature validation." };
    if (claims.aud !== this.tokenUrl) return { code: 700021, message: `Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com. Provided value: '${String(claims.aud)}'.` };
    if (claims.iss !== this.clientId || claims.sub !== this.clientId) return { code: 700023, message: "Client assertion issuer and subject must be the client id." };
    const now = Math.floor(this.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp <= now || (typeof claims.nbf === "number" && claims.nbf > now + 300)) {
      return { code: 700024, message: "Client assertion is not within its valid time range." };
    }
    if (typeof claims.jti !== "string" || claims.jti === "") return { code: 700025, message: "Client assertion has no jti." };
    if (this.#seenJti.has(claims.jti)) return { code: 700025, message: "Client assertion is a replay (jti already used)." };
    this.#seenJti.add(claims.jti);
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Graph

  #routes(): void {
    const USER = String.raw`users(?:/(?<id>[^/()]+)|\('(?<quoted>(?:[^']|'')+)'\))`;
    this.route("POST", /^\/(?<tenant>[^/]+)\/oauth2\/v2\.0\/token$/, (req) => this.#token(req));

    this.route("POST", new RegExp(`^/v1\\.0/${USER}/revokeSignInSessions$`), (req) =>
      this.#guard(req, [["User.RevokeSessions.All"]], () => {
        if (req.body.trim() !== "") return graphError(400, "BadRequest", "revokeSignInSessions takes no request body.");
        const user = this.#user(req);
        if (!user) return notFound(userKey(req));
        user.signInSessionsValidFromDateTime = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
        return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#Edm.Boolean`, value: true } };
      }),
    );

    this.route("POST", new RegExp(`^/v1\\.0/${USER}/checkMemberGroups$`), (req) =>
      this.#guard(req, [["User.Read.All", "GroupMember.Read.All"], ["User.Read.All", "Group.Read.All"], ["Directory.Read.All"]], () => {
        const body = this.#json(req);
        if ("reply" in body) return body.reply;
        const ids = body.value.groupIds;
        if (Object.keys(body.value).some((k) => k !== "groupIds") || !Array.isArray(ids) || ids.length === 0 || ids.length > 20 || !ids.every((g) => typeof g === "string" && GUID_RE.test(g))) {
          return graphError(400, "Request_BadRequest", "groupIds must hold 1 to 20 group object ids.");
        }
        const user = this.#user(req);
        if (!user) return notFound(userKey(req));
        const value = (ids as string[]).filter((g) => this.#memberOf(g.toLowerCase(), user.id.toLowerCase(), 0));
        return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#Collection(Edm.String)`, value } };
      }),
    );

    this.route("GET", new RegExp(`^/v1\\.0/${USER}$`), (req) =>
      this.#guard(req, [["User.Read.All"], ["User.ReadWrite.All"], ["Directory.Read.All"], ["Directory.ReadWrite.All"]], () => {
        const user = this.#user(req);
        if (!user) return notFound(userKey(req));
        const select = req.query.get("$select");
        const fields = select === null ? ["id", "displayName", "userPrincipalName"] : select.split(",").map((s) => s.trim());
        const known = new Set(Object.keys(user));
        const bad = fields.find((f) => !known.has(f));
        if (bad) return graphError(400, "Request_BadRequest", `Could not find a property named '${bad}' on type 'microsoft.graph.user'.`);
        // Graph answers with the id whatever was selected.
        const out: Record<string, unknown> = { "@odata.context": `${this.graphUrl}/$metadata#users(${fields.join(",")})/$entity`, id: user.id };
        for (const f of fields) out[f] = user[f as keyof FakeUser];
        return { status: 200, body: out };
      }),
    );

    this.route("PATCH", new RegExp(`^/v1\\.0/${USER}$`), (req) =>
      this.#guard(req, [["User.EnableDisableAccount.All", "User.Read.All"], ["User.ReadWrite.All"], ["Directory.ReadWrite.All"]], () => {
        const body = this.#json(req);
        if ("reply" in body) return body.reply;
        const keys = Object.keys(body.value);
        const unknown = keys.find((k) => k !== "accountEnabled");
        if (unknown) return graphError(400, "Request_BadRequest", `Property '${unknown}' is not supported by this fake or is read-only.`);
        if (keys.length === 0) return graphError(400, "Request_BadRequest", "No properties to update.");
        if (typeof body.value.accountEnabled !== "boolean") return graphError(400, "Request_BadRequest", "Invalid value specified for property 'accountEnabled' of resource 'User'.");
        const user = this.#user(req);
        if (!user) return notFound(userKey(req));
        user.accountEnabled = body.value.accountEnabled;
        return { status: 204 };
      }),
    );

    for (const verb of ["confirmCompromised", "dismiss"] as const) {
      this.route("POST", new RegExp(`^/v1\\.0/identityProtection/riskyUsers/${verb}$`), (req) =>
        this.#guard(req, [["IdentityRiskyUser.ReadWrite.All"]], () => {
          const body = this.#json(req);
          if ("reply" in body) return body.reply;
          const ids = body.value.userIds;
          if (Object.keys(body.value).some((k) => k !== "userIds") || !Array.isArray(ids) || ids.length === 0 || !ids.every((u) => typeof u === "string")) {
            return graphError(400, "BadRequest", "The request body must hold userIds, a non-empty array of user object ids.");
          }
          const bad = (ids as string[]).find((u) => !GUID_RE.test(u));
          if (bad !== undefined) return graphError(400, "BadRequest", `Invalid user id '${bad}': userIds take object ids.`);
          const missing = (ids as string[]).find((u) => !this.users.has(u.toLowerCase()));
          if (missing !== undefined) return notFound(missing);
          for (const id of ids as string[]) this.#risk(this.users.get(id.toLowerCase())!, verb);
          return { status: 204 };
        }),
      );
    }

    this.route("GET", /^\/v1\.0\/identityProtection\/riskyUsers\/(?<id>[^/]+)$/, (req) =>
      this.#guard(req, [["IdentityRiskyUser.Read.All"], ["IdentityRiskyUser.ReadWrite.All"]], () => {
        const risky = this.riskyUsers.get(req.params.id!.toLowerCase());
        if (!risky) return notFound(req.params.id!);
        return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#identityProtection/riskyUsers/$entity`, ...risky } };
      }),
    );

    const MEMBER_WRITE: Needs = [["GroupMember.ReadWrite.All"], ["Group.ReadWrite.All"], ["Directory.ReadWrite.All"]];
    this.route("POST", /^\/v1\.0\/groups\/(?<group>[^/]+)\/members\/\$ref$/, (req) =>
      this.#guard(req, MEMBER_WRITE, () => {
        const body = this.#json(req);
        if ("reply" in body) return body.reply;
        const ref = body.value["@odata.id"];
        if (Object.keys(body.value).length !== 1 || typeof ref !== "string") return graphError(400, "Request_BadRequest", "The request body must hold exactly one @odata.id.");
        const prefix = `${this.graphUrl}/directoryObjects/`;
        const id = ref.startsWith(prefix) ? ref.slice(prefix.length) : undefined;
        if (id === undefined || !GUID_RE.test(id)) return graphError(400, "Request_BadRequest", `Invalid object identifier '${ref}'.`);
        const members = this.groups.get(req.params.group!.toLowerCase());
        if (!members) return notFound(req.params.group!);
        if (!this.users.has(id.toLowerCase()) && !this.groups.has(id.toLowerCase())) return notFound(id);
        if (members.has(id.toLowerCase())) return graphError(400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.");
        members.add(id.toLowerCase());
        return { status: 204 };
      }),
    );

    this.route("DELETE", /^\/v1\.0\/groups\/(?<group>[^/]+)\/members\/(?<member>[^/]+)\/\$ref$/, (req) =>
      this.#guard(req, MEMBER_WRITE, () => {
        if (req.body !== "") return graphError(400, "Request_BadRequest", "DELETE takes no body.");
        const members = this.groups.get(req.params.group!.toLowerCase());
        if (!members) return notFound(req.params.group!);
        if (!members.delete(req.params.member!.toLowerCase())) return notFound(req.params.member!);
        return { status: 204 };
      }),
    );
  }

  /**
   * Checks the token's roles (any one alternative of `needs`, each a set all required), then runs the
   * route: 401 without a token this server issued, 403 Authorization_RequestDenied without the roles.
   * For Graph fakes built on this one (Intune).
   */
  requireRoles(req: FakeRequest, needs: Needs, handler: () => FakeReply): FakeReply {
    return this.#guard(req, needs, handler);
  }

  /** Checks the token's roles, then runs the route. */
  #guard(req: FakeRequest, needs: Needs, handler: () => FakeReply): FakeReply {
    const issued = this.#tokenOf.get(req);
    if (!issued) return graphError(401, "InvalidAuthenticationToken", "Access token is empty.");
    if (!needs.some((set) => set.every((p) => issued.roles.has(p)))) return graphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
    return handler();
  }

  #json(req: FakeRequest): { value: Record<string, unknown> } | { reply: FakeReply } {
    if (!(req.headers["content-type"] ?? "").toLowerCase().startsWith("application/json")) {
      return { reply: graphError(400, "BadRequest", "Write requests (excluding DELETE) must contain the Content-Type header declaration.") };
    }
    try {
      const v = JSON.parse(req.body) as unknown;
      if (v === null || typeof v !== "object" || Array.isArray(v)) return { reply: graphError(400, "BadRequest", "The request body must be a JSON object.") };
      return { value: v as Record<string, unknown> };
    } catch {
      return { reply: graphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.") };
    }
  }

  /** The user a `/users/{id | userPrincipalName}` path names. */
  #user(req: FakeRequest): FakeUser | undefined {
    const key = userKey(req).toLowerCase();
    return this.users.get(key) ?? [...this.users.values()].find((u) => u.userPrincipalName.toLowerCase() === key);
  }

  #memberOf(group: string, member: string, depth: number): boolean {
    const members = this.groups.get(group);
    if (!members || depth > 8) return false;
    if (members.has(member)) return true;
    return [...members].some((m) => this.groups.has(m) && this.#memberOf(m, member, depth + 1));
  }

  #risk(user: FakeUser, verb: "confirmCompromised" | "dismiss"): void {
    const at = new Date(this.now()).toISOString();
    const key = user.id.toLowerCase();
    const existing = this.riskyUsers.get(key);
    if (verb === "dismiss" && !existing) return; // nothing at risk to dismiss
    const base: FakeRiskyUser = existing ?? { id: user.id, userPrincipalName: user.userPrincipalName, userDisplayName: user.displayName, riskState: "none", riskLevel: "none", riskDetail: "none", riskLastUpdatedDateTime: at, isDeleted: false, isProcessing: false };
    if (this.deferRiskUpdates) {
      this.riskyUsers.set(key, { ...base, isProcessing: true });
      return;
    }
    this.riskyUsers.set(
      key,
      verb === "confirmCompromised"
        ? { ...base, riskState: "confirmedCompromised", riskLevel: "high", riskDetail: "adminConfirmedUserCompromised", riskLastUpdatedDateTime: at, isProcessing: false }
        : { ...base, riskState: "dismissed", riskLevel: "none", riskDetail: "adminDismissedAllRiskForUser", riskLastUpdatedDateTime: at, isProcessing: false },
    );
  }
}

/** The id or UPN of a users path, decoded (`users('$x')` keys have their quotes undoubled). */
function userKey(req: FakeRequest): string {
  if (req.params.quoted !== undefined) return decodeURIComponent(req.params.quoted.replace(/''/g, "'"));
  return decodeURIComponent(req.params.id ?? "");
}

/** Graph's error answer. */
export function graphError(status: number, code: string, message: string, headers: Record<string, string> = {}): FakeReply {
  return {
    status,
    headers: { "request-id": randomUUID(), ...headers },
    body: { error: { code, message, innerError: { date: new Date().toISOString().replace(/\.\d{3}Z$/, ""), "request-id": randomUUID(), "client-request-id": randomUUID() } } },
  };
}

function notFound(id: string): FakeReply {
  return graphError(404, "Request_ResourceNotFound", `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
}

/** The identity platform's error answer. */
function aadError(status: number, error: string, code: number, description: string): FakeReply {
  const trace = randomUUID();
  const correlation = randomUUID();
  const timestamp = new Date().toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: trace,
      correlation_id: correlation,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}
