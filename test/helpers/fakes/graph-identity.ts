/**
 * Microsoft Graph for identity, on the identity platform and token checks of FakeEntra, enforcing
 * what the Entra identity sources rely on:
 * - `GET /v1.0/users` (`User.Read.All`): `$select` of user properties only (400 otherwise), `$top`
 *   1–999, pages linked by an opaque `$skiptoken`. `GET /v1.0/users/delta`: `$select` remembered in
 *   the state token; `$deltatoken=latest` answers no users and a delta link; a delta link answers the
 *   users changed since it was issued (all selected properties, as Graph does by default) and
 *   `{"@removed": {"reason": "deleted"}}` for deleted ones, paged with `$skiptoken`, the last page
 *   carrying the next `@odata.deltaLink`; `$top` is refused, as Graph refuses it on user delta.
 *   `expireDeltaTokens()` makes every earlier token answer 410 Gone with a `Location`, Graph's
 *   "start over" signal. Service principals the same way (`Application.Read.All`).
 * - `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` (`GroupMember.Read.All` and
 *   `User.Read.All`), members of nested groups included.
 * - `GET /{v1.0|beta}/auditLogs/signIns` (`AuditLog.Read.All` and `Directory.Read.All`, and an Entra
 *   ID P1/P2 tenant — else 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`): only
 *   `$filter=createdDateTime ge <time>` (anything else is 400), no `$select` (400, as Graph refuses
 *   it there), `$top` 1–1000, newest first, paged;
 *   beta records carry `authenticationRequirement`, `authenticationDetails` and
 *   `authenticationMethodsUsed`, v1.0 records do not.
 * - `GET /v1.0/identityProtection/riskyUsers` (`IdentityRiskyUser.Read.All`, P2),
 *   `riskDetections` (`IdentityRiskEvent.Read.All`, P2; `$filter=detectedDateTime ge …`, `$top` ≤ 500)
 *   and `riskyServicePrincipals` (`IdentityRiskyServicePrincipal.Read.All`, Workload ID Premium),
 *   with `$filter=riskLastUpdatedDateTime ge|gt …`; pages of 20 unless `$top` (≤ 500) asks for more.
 * Faults (429 with or without Retry-After, 503) come from `throttle()`, `unavailable()` and `fail()`.
 */
import { randomUUID } from "node:crypto";
import { FakeEntra, graphError, type FakeEntraOptions, type FakeUser } from "./entra.ts";
import type { FakeReply, FakeRequest } from "../fake-api.ts";

export const IDENTITY_PERMISSIONS = [
  "User.Read.All",
  "GroupMember.Read.All",
  "Application.Read.All",
  "AuditLog.Read.All",
  "Directory.Read.All",
  "IdentityRiskyUser.Read.All",
  "IdentityRiskEvent.Read.All",
  "IdentityRiskyServicePrincipal.Read.All",
  // What the Entra actions need, so one fake serves the identity perimeter end to end.
  "User.RevokeSessions.All",
  "IdentityRiskyUser.ReadWrite.All",
  "User.EnableDisableAccount.All",
  "GroupMember.ReadWrite.All",
];

/** A user with the properties the identity sources select. */
export interface IdentityFakeUser extends FakeUser {
  mail: string | null;
  userType: "Member" | "Guest";
  lastPasswordChangeDateTime: string;
}

export interface FakeServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
  accountEnabled: boolean;
  servicePrincipalType: string;
}

export interface SignInSpec {
  /** Default now. */
  at?: number;
  /** `multiFactorAuthentication` when true (default), `singleFactorAuthentication` when false. */
  mfa?: boolean;
  country?: string | null;
  city?: string | null;
  lat?: number | null;
  lon?: number | null;
  ip?: string;
  deviceId?: string;
  deviceName?: string;
  managed?: boolean | null;
  compliant?: boolean | null;
  /** `status.errorCode`; 0 (default) is success, 500121 a failed second factor. */
  errorCode?: number;
  app?: string;
}

export interface FakeGraphIdentityOptions extends FakeEntraOptions {
  /** The tenant has Entra ID P1 or P2 (sign-in logs). Default true. */
  premium?: boolean;
  /** The tenant has Entra ID P2 (Identity Protection). Default true. */
  p2?: boolean;
  /** The tenant has Workload ID Premium (risky service principals). Default true. */
  workloadPremium?: boolean;
  /** Changes per page of a delta answer. Default 500. */
  deltaPageSize?: number;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");
const odata = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$10000Z");

const USER_PROPS = ["id", "userPrincipalName", "displayName", "mail", "accountEnabled", "userType", "lastPasswordChangeDateTime", "signInSessionsValidFromDateTime"];
const SP_PROPS = ["id", "appId", "displayName", "accountEnabled", "servicePrincipalType"];

const unlicensed = () => graphError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license");

interface DeltaState {
  /** Change sequence the token was issued at. */
  readonly seq: number;
  readonly select: readonly string[];
  readonly epoch: number;
}

/** Changes of one collection, found by comparing each object's properties with what was last seen. */
class ChangeLog<T extends { id: string }> {
  seq = 0;
  /** id → [fingerprint, sequence of its last change]. */
  readonly #seen = new Map<string, [string, number]>();
  /** Deleted ids → sequence of the deletion. */
  readonly #removed = new Map<string, number>();
  readonly #items: () => Iterable<T>;

  constructor(items: () => Iterable<T>) {
    this.#items = items;
  }

  /** Brings the change sequence up to date (what Graph's change tracking does on its own). */
  sweep(): void {
    const present = new Set<string>();
    for (const item of this.#items()) {
      const key = item.id.toLowerCase();
      present.add(key);
      const fp = JSON.stringify(item);
      const had = this.#seen.get(key);
      if (!had || had[0] !== fp) this.#seen.set(key, [fp, ++this.seq]);
      this.#removed.delete(key);
    }
    for (const key of this.#seen.keys()) {
      if (!present.has(key)) {
        this.#seen.delete(key);
        this.#removed.set(key, ++this.seq);
      }
    }
  }

  /** Ids changed after `seq`, and ids removed after it. */
  since(seq: number): { changed: string[]; removed: string[] } {
    const changed = [...this.#seen].filter(([, [, s]]) => s > seq).map(([id]) => id);
    const removed = [...this.#removed].filter(([, s]) => s > seq).map(([id]) => id);
    return { changed, removed };
  }
}

export class FakeGraphIdentity extends FakeEntra {
  premium: boolean;
  p2: boolean;
  workloadPremium: boolean;
  readonly deltaPageSize: number;
  readonly servicePrincipals = new Map<string, FakeServicePrincipal>();
  readonly riskyServicePrincipals = new Map<string, Record<string, unknown>>();
  /** Sign-in records as Graph beta returns them. */
  readonly signIns: Record<string, unknown>[] = [];
  readonly detections: Record<string, unknown>[] = [];
  /** Tokens issued before this epoch answer 410 Gone. */
  #epoch = 0;
  readonly #pages = new Map<string, { ids: readonly string[]; offset: number; select: readonly string[]; top: number; kind: "users" | "servicePrincipals" }>();
  readonly #userLog = new ChangeLog<IdentityFakeUser>(() => this.users.values() as Iterable<IdentityFakeUser>);
  readonly #spLog = new ChangeLog<FakeServicePrincipal>(() => this.servicePrincipals.values());

  constructor(options: FakeGraphIdentityOptions = {}) {
    super({ permissions: IDENTITY_PERMISSIONS, ...options });
    this.premium = options.premium ?? true;
    this.p2 = options.p2 ?? true;
    this.workloadPremium = options.workloadPremium ?? true;
    this.deltaPageSize = options.deltaPageSize ?? 500;
    this.#routes();
  }

  // -------------------------------------------------------------------------------------------
  // State

  /** A realistic user number `i`; `over` replaces any property. */
  static user(i: number, over: Partial<IdentityFakeUser> = {}): IdentityFakeUser {
    const upn = `user${i}@contoso.example`;
    return {
      id: `${hex(i, 8)}-1111-4222-8333-${hex(i, 12)}`,
      userPrincipalName: upn,
      displayName: `User ${i}`,
      mail: upn,
      accountEnabled: true,
      userType: "Member",
      lastPasswordChangeDateTime: "2026-01-15T08:00:00Z",
      signInSessionsValidFromDateTime: "2026-01-01T00:00:00Z",
      ...over,
    };
  }

  addIdentityUser(user: IdentityFakeUser): IdentityFakeUser {
    this.users.set(user.id.toLowerCase(), user);
    return user;
  }

  /** Adds `count` users numbered from the current size. */
  addUsers(count: number, over: (i: number) => Partial<IdentityFakeUser> = () => ({})): IdentityFakeUser[] {
    const start = this.users.size;
    const out: IdentityFakeUser[] = [];
    for (let i = start; i < start + count; i++) out.push(this.addIdentityUser(FakeGraphIdentity.user(i, over(i))));
    return out;
  }

  identityUser(id: string): IdentityFakeUser | undefined {
    return this.users.get(id.toLowerCase()) as IdentityFakeUser | undefined;
  }

  removeUser(id: string): void {
    this.users.delete(id.toLowerCase());
  }

  addServicePrincipal(sp: FakeServicePrincipal): FakeServicePrincipal {
    this.servicePrincipals.set(sp.id.toLowerCase(), sp);
    return sp;
  }

  /** Sets a user's risk as Identity Protection would (the risky-user record, stamped now). */
  setRisk(userId: string, risk: { riskLevel: string; riskState: string; riskDetail?: string; isProcessing?: boolean }): void {
    const user = this.identityUser(userId);
    if (!user) throw new Error(`no user ${userId}`);
    this.riskyUsers.set(user.id.toLowerCase(), {
      id: user.id,
      userPrincipalName: user.userPrincipalName,
      userDisplayName: user.displayName,
      riskLevel: risk.riskLevel,
      riskState: risk.riskState,
      riskDetail: risk.riskDetail ?? "none",
      riskLastUpdatedDateTime: odata(this.now()),
      isDeleted: false,
      isProcessing: risk.isProcessing ?? false,
    });
  }

  setServicePrincipalRisk(spId: string, risk: { riskLevel: string; riskState: string; riskDetail?: string }): void {
    const sp = this.servicePrincipals.get(spId.toLowerCase());
    if (!sp) throw new Error(`no service principal ${spId}`);
    this.riskyServicePrincipals.set(sp.id.toLowerCase(), {
      id: sp.id,
      appId: sp.appId,
      displayName: sp.displayName,
      servicePrincipalType: sp.servicePrincipalType,
      isEnabled: sp.accountEnabled,
      isProcessing: false,
      riskLevel: risk.riskLevel,
      riskState: risk.riskState,
      riskDetail: risk.riskDetail ?? "none",
      riskLastUpdatedDateTime: odata(this.now()),
    });
  }

  addDetection(userId: string, d: { riskEventType: string; riskLevel?: string; riskState?: string; riskDetail?: string; detectionTimingType?: string; ipAddress?: string; city?: string; country?: string; at?: number }): Record<string, unknown> {
    const user = this.identityUser(userId);
    if (!user) throw new Error(`no user ${userId}`);
    const at = d.at ?? this.now();
    const record = {
      "@odata.type": "#microsoft.graph.riskDetection",
      id: randomUUID().replace(/-/g, ""),
      requestId: randomUUID(),
      correlationId: randomUUID(),
      riskEventType: d.riskEventType,
      riskState: d.riskState ?? "atRisk",
      riskLevel: d.riskLevel ?? "high",
      riskDetail: d.riskDetail ?? "none",
      source: "IdentityProtection",
      detectionTimingType: d.detectionTimingType ?? "realtime",
      activity: "signin",
      tokenIssuerType: "AzureAD",
      ipAddress: d.ipAddress ?? "198.51.100.23",
      location: { city: d.city ?? "Lagos", state: null, countryOrRegion: d.country ?? "NG", geoCoordinates: null },
      activityDateTime: odata(at - 60_000),
      detectedDateTime: odata(at),
      lastUpdatedDateTime: odata(at),
      userId: user.id,
      userDisplayName: user.displayName,
      userPrincipalName: user.userPrincipalName,
      additionalInfo: '[{"Key":"userAgent","Value":"Mozilla/5.0"}]',
    };
    this.detections.push(record);
    return record;
  }

  /** A sign-in record as Graph beta returns it. */
  addSignIn(userId: string, s: SignInSpec = {}): Record<string, unknown> {
    const user = this.identityUser(userId);
    if (!user) throw new Error(`no user ${userId}`);
    const at = s.at ?? this.now();
    const mfa = s.mfa ?? true;
    const code = s.errorCode ?? 0;
    const record: Record<string, unknown> = {
      id: randomUUID(),
      createdDateTime: odata(at),
      userDisplayName: user.displayName,
      userPrincipalName: user.userPrincipalName.toLowerCase(),
      userId: user.id,
      appId: "00000003-0000-0ff1-ce00-000000000000",
      appDisplayName: s.app ?? "Office 365 SharePoint Online",
      ipAddress: s.ip ?? "203.0.113.10",
      clientAppUsed: "Browser",
      correlationId: randomUUID(),
      conditionalAccessStatus: mfa ? "success" : "notApplied",
      isInteractive: true,
      riskDetail: "none",
      riskLevelAggregated: "none",
      riskLevelDuringSignIn: "none",
      riskState: "none",
      riskEventTypes_v2: [],
      resourceDisplayName: "Office 365 SharePoint Online",
      resourceId: "00000003-0000-0ff1-ce00-000000000000",
      status: { errorCode: code, failureReason: code === 0 ? "Other." : code === 500121 ? "Authentication failed during strong authentication request." : "Error.", additionalDetails: mfa && code === 0 ? "MFA requirement satisfied by claim in the token" : null },
      deviceDetail: {
        deviceId: s.deviceId ?? "",
        displayName: s.deviceName ?? null,
        operatingSystem: "Windows10",
        browser: "Edge 124.0.0",
        isCompliant: s.compliant === undefined ? true : s.compliant,
        isManaged: s.managed === undefined ? true : s.managed,
        trustType: "Azure AD joined",
      },
      location: {
        city: s.city === undefined ? "Berlin" : s.city,
        state: null,
        countryOrRegion: s.country === undefined ? "DE" : s.country,
        geoCoordinates: s.lat === null || s.lon === null ? null : { altitude: null, latitude: s.lat ?? 52.52, longitude: s.lon ?? 13.405 },
      },
      appliedConditionalAccessPolicies: [
        { id: "3b6f7f5d-7f7e-4a4e-9f4b-1b7f0c1d2e3f", displayName: "Require MFA for all users", enforcedGrantControls: mfa ? ["Mfa"] : [], enforcedSessionControls: [], result: mfa ? "success" : "notApplied" },
      ],
      // beta only (removed from v1.0 answers)
      authenticationRequirement: mfa ? "multiFactorAuthentication" : "singleFactorAuthentication",
      authenticationMethodsUsed: mfa ? ["Password", "Mobile app notification"] : ["Password"],
      authenticationDetails: [
        { authenticationStepDateTime: odata(at), authenticationMethod: "Password", authenticationMethodDetail: "Password in the cloud", succeeded: true, authenticationStepResultDetail: "Correct password", authenticationStepRequirement: "Primary authentication" },
        ...(mfa ? [{ authenticationStepDateTime: odata(at), authenticationMethod: "Mobile app notification", authenticationMethodDetail: null, succeeded: code === 0, authenticationStepResultDetail: code === 0 ? "MFA successfully completed" : "MFA denied; user declined the authentication", authenticationStepRequirement: "Multifactor authentication" }] : []),
      ],
      signInEventTypes: ["interactiveUser"],
    };
    this.signIns.push(record);
    return record;
  }

  /** Earlier delta tokens now answer 410 Gone (Graph's "resync from scratch"). */
  expireDeltaTokens(): void {
    this.#epoch++;
  }

  /** Handled requests to a path (query ignored), e.g. `/v1.0/users/delta`. */
  requestsTo(path: string): FakeRequest[] {
    return this.handled.filter((r) => r.path === path);
  }

  // -------------------------------------------------------------------------------------------
  // Routes

  #routes(): void {
    const USERS: readonly (readonly string[])[] = [["User.Read.All"], ["User.ReadWrite.All"], ["Directory.Read.All"]];
    const SPS: readonly (readonly string[])[] = [["Application.Read.All"], ["Application.ReadWrite.All"], ["Directory.Read.All"]];
    // Before FakeEntra's `/users/{id}`, which would take `delta` for an id.
    this.routeFirst("GET", /^\/v1\.0\/users\/delta$/, (req) => this.requireRoles(req, USERS, () => this.#delta(req, "users")));
    this.routeFirst("GET", /^\/v1\.0\/servicePrincipals\/delta$/, (req) => this.requireRoles(req, SPS, () => this.#delta(req, "servicePrincipals")));
    this.route("GET", /^\/v1\.0\/users$/, (req) => this.requireRoles(req, USERS, () => this.#list(req, "users")));
    this.route("GET", /^\/v1\.0\/servicePrincipals$/, (req) => this.requireRoles(req, SPS, () => this.#list(req, "servicePrincipals")));
    this.route("GET", /^\/v1\.0\/groups\/(?<group>[^/]+)\/transitiveMembers\/microsoft\.graph\.user$/, (req) =>
      this.requireRoles(req, [["GroupMember.Read.All", "User.Read.All"], ["Group.Read.All", "User.Read.All"], ["Directory.Read.All"]], () => this.#members(req)),
    );
    this.route("GET", /^\/(?<version>v1\.0|beta)\/auditLogs\/signIns$/, (req) =>
      this.requireRoles(req, [["AuditLog.Read.All", "Directory.Read.All"]], () => (this.premium ? this.#signIns(req) : unlicensed())),
    );
    this.route("GET", /^\/v1\.0\/identityProtection\/riskyUsers$/, (req) =>
      this.requireRoles(req, [["IdentityRiskyUser.Read.All"], ["IdentityRiskyUser.ReadWrite.All"]], () => (this.p2 ? this.#risky(req, [...this.riskyUsers.values()] as unknown as Record<string, unknown>[], "riskyUsers") : unlicensed())),
    );
    this.route("GET", /^\/v1\.0\/identityProtection\/riskyServicePrincipals$/, (req) =>
      this.requireRoles(req, [["IdentityRiskyServicePrincipal.Read.All"], ["IdentityRiskyServicePrincipal.ReadWrite.All"]], () =>
        this.workloadPremium ? this.#risky(req, [...this.riskyServicePrincipals.values()], "riskyServicePrincipals") : unlicensed(),
      ),
    );
    this.route("GET", /^\/v1\.0\/identityProtection\/riskDetections$/, (req) =>
      this.requireRoles(req, [["IdentityRiskEvent.Read.All"], ["IdentityRiskEvent.ReadWrite.All"]], () => (this.p2 ? this.#detections(req) : unlicensed())),
    );
  }

  #select(req: FakeRequest, props: readonly string[], type: string): readonly string[] | FakeReply {
    const select = req.query.get("$select");
    if (select === null) return props.slice(0, 5);
    const fields = select.split(",").map((s) => s.trim());
    const bad = fields.find((f) => !props.includes(f));
    if (bad !== undefined) return graphError(400, "Request_BadRequest", `Could not find a property named '${bad}' on type 'microsoft.graph.${type}'.`);
    return fields.includes("id") ? fields : ["id", ...fields];
  }

  #objects(kind: "users" | "servicePrincipals"): Map<string, Record<string, unknown>> {
    return (kind === "users" ? this.users : this.servicePrincipals) as unknown as Map<string, Record<string, unknown>>;
  }

  #page(kind: "users" | "servicePrincipals", ids: readonly string[], offset: number, select: readonly string[], top: number, base: string): Record<string, unknown> {
    const objects = this.#objects(kind);
    const value = ids.slice(offset, offset + top).flatMap((id) => {
      const o = objects.get(id);
      return o ? [Object.fromEntries(select.map((f) => [f, o[f] ?? null]))] : [];
    });
    const body: Record<string, unknown> = { "@odata.context": `${this.graphUrl}/$metadata#${kind}(${select.join(",")})`, value };
    if (offset + top < ids.length) {
      const token = randomUUID().replace(/-/g, "");
      this.#pages.set(token, { ids, offset: offset + top, select, top, kind });
      body["@odata.nextLink"] = `${base}?$skiptoken=${token}`;
    }
    return body;
  }

  #list(req: FakeRequest, kind: "users" | "servicePrincipals"): FakeReply {
    const token = req.query.get("$skiptoken");
    if (token !== null) {
      const state = this.#pages.get(token);
      if (!state || state.kind !== kind) return graphError(400, "Request_BadRequest", "The skip token is invalid or has expired.");
      return { status: 200, body: this.#page(kind, state.ids, state.offset, state.select, state.top, `${this.graphUrl}/${kind}`) };
    }
    const select = this.#select(req, kind === "users" ? USER_PROPS : SP_PROPS, kind === "users" ? "user" : "servicePrincipal");
    if (!Array.isArray(select)) return select as FakeReply;
    const topText = req.query.get("$top");
    const top = topText === null ? 100 : Number(topText);
    if (!Number.isInteger(top) || top < 1 || top > 999) return graphError(400, "Request_BadRequest", `Invalid page size specified: '${topText}'. Must be between 1 and 999 inclusive.`);
    return { status: 200, body: this.#page(kind, [...this.#objects(kind).keys()].sort(), 0, select, top, `${this.graphUrl}/${kind}`) };
  }

  #delta(req: FakeRequest, kind: "users" | "servicePrincipals"): FakeReply {
    if (req.query.has("$top")) return graphError(400, "Request_BadRequest", "The query parameter '$top' is not supported with delta on this resource.");
    const log = kind === "users" ? this.#userLog : this.#spLog;
    log.sweep();
    const base = `${this.graphUrl}/${kind}/delta`;
    const skip = req.query.get("$skiptoken");
    if (skip !== null) {
      const state = this.#pages.get(skip);
      if (!state || state.kind !== kind) return graphError(400, "Request_BadRequest", "The skip token is invalid or has expired.");
      return { status: 200, body: this.#deltaPage(kind, state.ids, state.offset, state.select, base, log.seq) };
    }
    const tokenText = req.query.get("$deltatoken");
    if (tokenText === "latest") {
      const select = this.#select(req, kind === "users" ? USER_PROPS : SP_PROPS, kind === "users" ? "user" : "servicePrincipal");
      if (!Array.isArray(select)) return select as FakeReply;
      return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#${kind}`, value: [], "@odata.deltaLink": `${base}?$deltatoken=${this.#token({ seq: log.seq, select, epoch: this.#epoch })}` } };
    }
    let state: DeltaState;
    if (tokenText === null) {
      // A first delta round lists everything, like a full listing that ends with a delta link.
      const select = this.#select(req, kind === "users" ? USER_PROPS : SP_PROPS, kind === "users" ? "user" : "servicePrincipal");
      if (!Array.isArray(select)) return select as FakeReply;
      state = { seq: 0, select, epoch: this.#epoch };
    } else {
      const parsed = this.#parseToken(tokenText);
      if (!parsed) return graphError(400, "Request_BadRequest", "Badly formed token.");
      if (parsed.epoch !== this.#epoch) {
        return { ...graphError(410, "SyncStateNotFound", "The delta token is no longer valid; restart with a full synchronization."), headers: { Location: `${base}?$deltatoken=` } };
      }
      state = parsed;
    }
    const { changed, removed } = log.since(state.seq);
    const ids = [...changed.sort(), ...removed.sort().map((id) => `-${id}`)];
    return { status: 200, body: this.#deltaPage(kind, ids, 0, state.select, base, log.seq) };
  }

  #deltaPage(kind: "users" | "servicePrincipals", ids: readonly string[], offset: number, select: readonly string[], base: string, seq: number): Record<string, unknown> {
    const objects = this.#objects(kind);
    const value = ids.slice(offset, offset + this.deltaPageSize).flatMap((entry) => {
      if (entry.startsWith("-")) return [{ "@odata.type": `#microsoft.graph.${kind === "users" ? "user" : "servicePrincipal"}`, id: entry.slice(1), "@removed": { reason: "deleted" } }];
      const o = objects.get(entry);
      // Graph's default delta answer: every selected property, changed or not; never-set ones left out.
      return o ? [Object.fromEntries(select.filter((f) => o[f] !== undefined && o[f] !== null).map((f) => [f, o[f]]))] : [];
    });
    const body: Record<string, unknown> = { "@odata.context": `${this.graphUrl}/$metadata#${kind}`, value };
    if (offset + this.deltaPageSize < ids.length) {
      const token = randomUUID().replace(/-/g, "");
      this.#pages.set(token, { ids, offset: offset + this.deltaPageSize, select, top: this.deltaPageSize, kind });
      body["@odata.nextLink"] = `${base}?$skiptoken=${token}`;
    } else {
      body["@odata.deltaLink"] = `${base}?$deltatoken=${this.#token({ seq, select, epoch: this.#epoch })}`;
    }
    return body;
  }

  #token(state: DeltaState): string {
    return Buffer.from(JSON.stringify(state)).toString("base64url");
  }

  #parseToken(text: string): DeltaState | undefined {
    try {
      const v = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as DeltaState;
      return typeof v.seq === "number" && Array.isArray(v.select) && typeof v.epoch === "number" ? v : undefined;
    } catch {
      return undefined;
    }
  }

  #members(req: FakeRequest): FakeReply {
    const group = req.params.group!.toLowerCase();
    if (!this.groups.has(group)) return graphError(404, "Request_ResourceNotFound", `Resource '${req.params.group}' does not exist or one of its queried reference-property objects are not present.`);
    const select = this.#select(req, USER_PROPS, "user");
    if (!Array.isArray(select)) return select as FakeReply;
    const top = Number(req.query.get("$top") ?? 100);
    if (!Number.isInteger(top) || top < 1 || top > 999) return graphError(400, "Request_BadRequest", `Invalid page size specified: '${req.query.get("$top")}'. Must be between 1 and 999 inclusive.`);
    const ids = new Set<string>();
    const walk = (g: string, depth: number) => {
      for (const m of this.groups.get(g) ?? []) {
        if (this.users.has(m)) ids.add(m);
        else if (this.groups.has(m) && depth < 8) walk(m, depth + 1);
      }
    };
    walk(group, 0);
    const offset = Number(req.query.get("$skiptoken") ?? 0);
    const list = [...ids].sort();
    const value = list.slice(offset, offset + top).map((id) => {
      const u = this.users.get(id) as unknown as Record<string, unknown>;
      return { "@odata.type": "#microsoft.graph.user", ...Object.fromEntries(select.map((f) => [f, u[f] ?? null])) };
    });
    const next = offset + top < list.length ? `${this.graphUrl}/groups/${req.params.group}/transitiveMembers/microsoft.graph.user?$select=${select.join(",")}&$top=${top}&$skiptoken=${offset + top}` : undefined;
    return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#users`, value, ...(next ? { "@odata.nextLink": next } : {}) } };
  }

  /** `<property> ge|gt <time>`, the only filter these lists take here. */
  #timeFilter(req: FakeRequest, property: string, ops: readonly string[]): { op: string; at: number } | undefined | FakeReply {
    const filter = req.query.get("$filter");
    if (filter === null) return undefined;
    const m = new RegExp(`^${property} (${ops.join("|")}) (\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,7})?Z)$`).exec(filter.trim());
    if (!m) return graphError(400, "Request_UnsupportedQuery", `Invalid filter clause: '${filter}'.`);
    return { op: m[1]!, at: Date.parse(m[2]!) };
  }

  #signIns(req: FakeRequest): FakeReply {
    const beta = req.params.version === "beta";
    const base = `${this.base}/${beta ? "beta" : "v1.0"}/auditLogs/signIns`;
    const token = req.query.get("$skiptoken");
    let rows: Record<string, unknown>[];
    let top: number;
    let offset = 0;
    if (token !== null) {
      const state = this.#signInPages.get(token);
      if (!state) return graphError(400, "Request_BadRequest", "The skip token is invalid or has expired.");
      ({ rows, top, offset } = state);
    } else {
      // Graph refuses $select on sign-ins: every record comes whole.
      if (req.query.has("$select")) return graphError(400, "BadRequest", "Query option 'Select' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.");
      const f = this.#timeFilter(req, "createdDateTime", ["ge", "le", "eq"]);
      if (f && "status" in f) return f;
      const topText = req.query.get("$top");
      top = topText === null ? 1000 : Number(topText);
      if (!Number.isInteger(top) || top < 1 || top > 1000) return graphError(400, "Request_BadRequest", `Invalid $top value '${topText}': must be between 1 and 1000.`);
      rows = this.signIns
        .filter((s) => {
          if (!f) return true;
          const at = Date.parse(s.createdDateTime as string);
          return f.op === "ge" ? at >= f.at : f.op === "le" ? at <= f.at : at === f.at;
        })
        .sort((a, b) => Date.parse(b.createdDateTime as string) - Date.parse(a.createdDateTime as string));
    }
    const value = rows.slice(offset, offset + top).map((s) => {
      if (beta) return s;
      const { authenticationRequirement: _a, authenticationMethodsUsed: _b, authenticationDetails: _c, signInEventTypes: _d, ...v1 } = s;
      return v1;
    });
    const body: Record<string, unknown> = { "@odata.context": `${base.replace(/\/auditLogs\/signIns$/, "")}/$metadata#auditLogs/signIns`, value };
    if (offset + top < rows.length) {
      const next = randomUUID().replace(/-/g, "");
      this.#signInPages.set(next, { rows, top, offset: offset + top });
      body["@odata.nextLink"] = `${base}?$top=${top}&$skiptoken=${next}`;
    }
    return { status: 200, body };
  }

  readonly #signInPages = new Map<string, { rows: Record<string, unknown>[]; top: number; offset: number }>();

  #risky(req: FakeRequest, all: Record<string, unknown>[], path: string): FakeReply {
    const f = this.#timeFilter(req, "riskLastUpdatedDateTime", ["ge", "gt"]);
    if (f && "status" in f) return f;
    const topText = req.query.get("$top");
    const top = topText === null ? 20 : Number(topText);
    if (!Number.isInteger(top) || top < 1 || top > 500) return graphError(400, "Request_BadRequest", `Invalid $top value '${topText}': the maximum is 500.`);
    const rows = all.filter((r) => {
      if (!f) return true;
      const at = Date.parse(r.riskLastUpdatedDateTime as string);
      return f.op === "ge" ? at >= f.at : at > f.at;
    });
    return this.#paged(req, rows, path, top);
  }

  #detections(req: FakeRequest): FakeReply {
    const f = this.#timeFilter(req, "detectedDateTime", ["ge", "gt"]);
    if (f && "status" in f) return f;
    const topText = req.query.get("$top");
    const top = topText === null ? 20 : Number(topText);
    if (!Number.isInteger(top) || top < 1 || top > 500) return graphError(400, "Request_BadRequest", `Invalid $top value '${topText}': the maximum is 500.`);
    const rows = this.detections.filter((d) => {
      if (!f) return true;
      const at = Date.parse(d.detectedDateTime as string);
      return f.op === "ge" ? at >= f.at : at > f.at;
    });
    return this.#paged(req, rows, "riskDetections", top);
  }

  readonly #listPages = new Map<string, { rows: Record<string, unknown>[]; top: number; offset: number }>();

  #paged(req: FakeRequest, rows: Record<string, unknown>[], path: string, top: number): FakeReply {
    const token = req.query.get("$skiptoken");
    let offset = 0;
    if (token !== null) {
      const state = this.#listPages.get(token);
      if (!state) return graphError(400, "Request_BadRequest", "The skip token is invalid or has expired.");
      ({ rows, top, offset } = state);
    }
    const body: Record<string, unknown> = { "@odata.context": `${this.graphUrl}/$metadata#identityProtection/${path}`, value: rows.slice(offset, offset + top) };
    if (offset + top < rows.length) {
      const next = randomUUID().replace(/-/g, "");
      this.#listPages.set(next, { rows, top, offset: offset + top });
      body["@odata.nextLink"] = `${this.graphUrl}/identityProtection/${path}?$skiptoken=${next}`;
    }
    return { status: 200, body };
  }
}
