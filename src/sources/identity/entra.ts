/**
 * Microsoft Entra ID through Graph, for the user inventories and user_risk_score:
 *
 * - **Users** (`/users`, `$select`, `$top=999`, `@odata.nextLink`): the first sync takes a delta
 *   token (`/users/delta?$deltatoken=latest`) and then lists every user; each later sync follows
 *   the delta link (`@odata.deltaLink`), so a tick costs one request (plus one per page of changes),
 *   not one per 999 users. Graph answering 410 Gone (or an expired token) and `full_resync` start a
 *   full listing again. Service principals the same way (`/servicePrincipals`).
 * - **Group members** (`/groups/{id}/transitiveMembers/microsoft.graph.user`) for inventories
 *   scoped to groups.
 * - **Sign-ins** (`/auditLogs/signIns`, `$filter=createdDateTime ge …`, pages of 1,000): every
 *   read starts a little before the newest sign-in already seen, and entries seen twice are
 *   skipped. vigil reads the sign-in log rather than users' `signInActivity`: only the sign-in
 *   records say whether MFA satisfied the sign-in, where it came from and from which (managed,
 *   compliant) device, and one time-filtered read covers every user, where `signInActivity` holds
 *   times only and cannot be tracked by `users/delta`.
 * - **Identity Protection** (`/identityProtection/riskyUsers`, `riskDetections`,
 *   `riskyServicePrincipals`): the first read takes everything (detections within a lookback), later
 *   reads only what changed since (`riskLastUpdatedDateTime ge …`, `detectedDateTime ge …`).
 *
 * Each is a `SharedScan`: the inventory's listing before a tick and the check's runs of that
 * interval share one sync.
 */
import { UpstreamError } from "../../errors.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { intern, internList } from "../common/intern.ts";
import { Reader } from "../common/read.ts";
import { SharedScan } from "../common/scan.ts";
import { GraphClient } from "../graph/client.ts";
import { Directory, optObject, optStrings } from "./directory.ts";
import { countryCode, validCoordinates } from "./geo.ts";
import { ActivityStore, lower, userKeys, type EntraDetection, type EntraRisk, type IdentityUser, type ServicePrincipal, type SignIn } from "./model.ts";
import type { EntraConnection } from "./schema.ts";

/** Application permissions of each read, named when Graph refuses one. */
export const ENTRA_PERMISSIONS = {
  users: "User.Read.All",
  servicePrincipals: "Application.Read.All",
  groups: "GroupMember.Read.All and User.Read.All",
  signIns: "AuditLog.Read.All and Directory.Read.All",
  riskyUsers: "IdentityRiskyUser.Read.All",
  detections: "IdentityRiskEvent.Read.All",
  riskyServicePrincipals: "IdentityRiskyServicePrincipal.Read.All",
} as const;

/** Licences the reads need, named when Graph says the tenant lacks one. */
export const ENTRA_LICENCES = {
  signIns: "Microsoft Entra ID P1 or P2",
  identityProtection: "Microsoft Entra ID P2",
  workloadIdentities: "Microsoft Entra Workload ID Premium",
} as const;

/** What vigil reads of each user; nothing else is fetched. */
export const USER_SELECT = ["id", "userPrincipalName", "displayName", "mail", "accountEnabled", "userType", "lastPasswordChangeDateTime"] as const;
export const SERVICE_PRINCIPAL_SELECT = ["id", "appId", "displayName", "accountEnabled", "servicePrincipalType"] as const;

/** How one sync went, for logs, tests and benchmarks. */
export interface SyncStats {
  readonly kind: "full" | "delta";
  /** Records added, changed or removed. */
  readonly changes: number;
  /** Graph requests the sync made. */
  readonly calls: number;
}

// ---------------------------------------------------------------------------------------------
// Records

function userRecord(o: Record<string, unknown>, r: Reader, path: string, old: IdentityUser | undefined): IdentityUser {
  const has = (k: string) => Object.hasOwn(o, k);
  const id = lower(r.string(o, "id", path));
  const enabled = has("accountEnabled") ? (r.optBoolean(o, "accountEnabled", path) ?? true) : (old?.enabled ?? true);
  const login = has("userPrincipalName") ? r.optString(o, "userPrincipalName", path) : old?.login;
  const mail = has("mail") ? r.optString(o, "mail", path) : old?.email;
  return {
    provider: "entra",
    id,
    login,
    // Mail is the UPN for most users: one string for both.
    email: mail !== undefined && mail === login ? login : mail,
    name: has("displayName") ? r.optString(o, "displayName", path) : old?.name,
    enabled,
    status: enabled ? "enabled" : "disabled",
    userType: has("userType") ? intern(r.optString(o, "userType", path)) : old?.userType,
    passwordChangedAt: has("lastPasswordChangeDateTime") ? r.optTime(o, "lastPasswordChangeDateTime", path) : old?.passwordChangedAt,
  };
}

function servicePrincipalRecord(o: Record<string, unknown>, r: Reader, path: string, old: ServicePrincipal | undefined): ServicePrincipal {
  const has = (k: string) => Object.hasOwn(o, k);
  return {
    id: r.string(o, "id", path).toLowerCase(),
    appId: has("appId") ? r.optString(o, "appId", path)?.toLowerCase() : old?.appId,
    name: has("displayName") ? r.optString(o, "displayName", path) : old?.name,
    enabled: has("accountEnabled") ? (r.optBoolean(o, "accountEnabled", path) ?? true) : (old?.enabled ?? true),
    type: has("servicePrincipalType") ? intern(r.optString(o, "servicePrincipalType", path)) : old?.type,
  };
}

// ---------------------------------------------------------------------------------------------
// Directory sync (users, service principals)

interface DirectorySpec<T extends { readonly id: string }> {
  readonly collection: "users" | "servicePrincipals";
  readonly select: readonly string[];
  readonly permission: string;
  readonly record: (o: Record<string, unknown>, r: Reader, path: string, old: T | undefined) => T;
  readonly keys: (item: T) => readonly string[];
}

/** True when Graph says a delta link cannot be used any more: start over with a full listing. */
function needsResync(err: unknown): boolean {
  if (!(err instanceof UpstreamError)) return false;
  if (err.status === 410) return true;
  return (err.status === 400 || err.status === 404) && /syncStateNotFound|resyncRequired|syncStateInvalid|token has expired|expired token/i.test(err.message);
}

class GraphDirectorySync<T extends { readonly id: string }> {
  readonly dir: Directory<T>;
  #deltaLink: string | undefined;
  #fullAt: number | undefined;
  readonly #graph: GraphClient;
  readonly #spec: DirectorySpec<T>;
  readonly #config: EntraConnection;
  readonly #ctx: PluginContext;
  last: SyncStats | undefined;

  constructor(graph: GraphClient, spec: DirectorySpec<T>, config: EntraConnection, ctx: PluginContext) {
    this.#graph = graph;
    this.#spec = spec;
    this.#config = config;
    this.#ctx = ctx;
    this.dir = new Directory(spec.keys);
  }

  async sync(signal: AbortSignal, deadline: number): Promise<Directory<T>> {
    const before = this.#graph.calls;
    const due = this.#fullAt === undefined || this.#ctx.clock.now() - this.#fullAt >= this.#config.full_resync;
    if (this.#deltaLink === undefined || due) {
      this.last = { kind: "full", changes: await this.#full(signal, deadline), calls: this.#graph.calls - before };
      return this.dir;
    }
    try {
      this.last = { kind: "delta", changes: await this.#delta(this.#deltaLink, signal, deadline), calls: this.#graph.calls - before };
    } catch (err) {
      if (!needsResync(err)) throw err;
      this.#ctx.logger.info({ collection: this.#spec.collection }, `Graph asks for a full resync of ${this.#spec.collection}; listing them again`);
      this.#deltaLink = undefined;
      this.last = { kind: "full", changes: await this.#full(signal, deadline), calls: this.#graph.calls - before };
    }
    return this.dir;
  }

  /** A delta token first (changes made while the listing runs are in the next delta), then every record. */
  async #full(signal: AbortSignal, deadline: number): Promise<number> {
    const o = { signal, deadline, permission: this.#spec.permission, maxItems: this.#config.max_users, limitKey: "max_users" };
    let deltaLink: string | undefined;
    const latest = this.#graph.url(`/${this.#spec.collection}/delta`, { select: this.#spec.select, extra: { $deltatoken: "latest" } });
    for await (const _ of this.#graph.walk(latest, { ...o, onLastPage: (p) => (deltaLink = typeof p["@odata.deltaLink"] === "string" ? p["@odata.deltaLink"] : undefined) })) {
      // `latest` answers with no records, only the token.
    }
    if (deltaLink === undefined) throw new UpstreamError(false, `GET ${this.#graph.graphUrl}/${this.#spec.collection}/delta: malformed response: no @odata.deltaLink`, { details: { malformed: true } });
    const items = new Map<string, T>();
    let page = 0;
    for await (const value of this.#graph.pages(`/${this.#spec.collection}`, { select: this.#spec.select, top: 999 }, o)) {
      const r = new Reader(`GET ${this.#graph.graphUrl}/${this.#spec.collection} (page ${++page})`);
      for (let i = 0; i < value.length; i++) {
        const rec = this.#spec.record(r.object(value[i], `$.value[${i}]`), r, `$.value[${i}]`, undefined);
        items.set(rec.id, rec);
      }
    }
    this.dir.replace(items);
    this.#deltaLink = deltaLink;
    this.#fullAt = this.#ctx.clock.now();
    return items.size;
  }

  async #delta(link: string, signal: AbortSignal, deadline: number): Promise<number> {
    let next: string | undefined;
    let changes = 0;
    let page = 0;
    const walk = this.#graph.walk(link, {
      signal,
      deadline,
      permission: this.#spec.permission,
      maxItems: this.#config.max_users,
      limitKey: "max_users",
      onLastPage: (p) => (next = typeof p["@odata.deltaLink"] === "string" ? p["@odata.deltaLink"] : undefined),
    });
    for await (const value of walk) {
      const r = new Reader(`GET ${this.#graph.graphUrl}/${this.#spec.collection}/delta (page ${++page})`);
      for (let i = 0; i < value.length; i++) {
        const path = `$.value[${i}]`;
        const o = r.object(value[i], path);
        const id = r.string(o, "id", path).toLowerCase();
        // `@removed` with reason `changed` (restorable) or `deleted`: gone from the directory either way.
        if (o["@removed"] !== undefined && o["@removed"] !== null) {
          r.object(o["@removed"], `${path}.@removed`);
          this.dir.delete(id);
        } else {
          if (this.dir.size >= this.#config.max_users && !this.dir.get(id)) r.fail(path, `the directory has more than ${this.#config.max_users} entries (raise max_users if that is right)`);
          this.dir.set(this.#spec.record(o, r, path, this.dir.get(id)));
        }
        changes++;
      }
    }
    if (next === undefined) throw new UpstreamError(false, `GET ${this.#graph.graphUrl}/${this.#spec.collection}/delta: malformed response: the last page has no @odata.deltaLink`, { details: { malformed: true } });
    this.#deltaLink = next;
    return changes;
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-ins

/** `authenticationMethodsUsed` (beta) as RFC 8176 method references. */
const AMR: Readonly<Record<string, string>> = {
  password: "pwd",
  "text message": "sms",
  sms: "sms",
  "phone call": "tel",
  voice: "tel",
  "mobile app notification": "mfa",
  "microsoft authenticator app": "mfa",
  "authenticator app": "mfa",
  "oath verification code": "otp",
  "mobile app verification code": "otp",
  "software oath token": "otp",
  "hardware oath token": "otp",
  "fido2 security key": "hwk",
  passkey: "hwk",
  "windows hello for business": "swk",
  "x.509 certificate": "sc",
  certificate: "sc",
};

/** A Conditional Access grant control that asks for a second factor. */
const MFA_GRANT = /^(mfa|requireauthenticationstrength|authenticationstrength)$/i;

/** What one sign-in record says; undefined for one vigil does not use (another user's service principal, …). */
function readSignIn(o: Record<string, unknown>, r: Reader, path: string, api: "beta" | "v1.0", mfaCodes: ReadonlySet<number>): { userId: string; at: number; success: boolean; mfaFailure: boolean; signIn: SignIn } | undefined {
  const at = r.optTime(o, "createdDateTime", path);
  if (at === undefined) r.fail(`${path}.createdDateTime`, "expected a date and time");
  const rawUser = r.optString(o, "userId", path);
  if (rawUser === undefined) return undefined;
  const userId = lower(rawUser);
  const status = optObject(r, o, "status", path);
  const code = status ? (r.optNumber(status, "errorCode", `${path}.status`) ?? 0) : 0;
  const location = optObject(r, o, "location", path);
  const geo = location ? optObject(r, location, "geoCoordinates", `${path}.location`) : undefined;
  const lat = geo ? r.optNumber(geo, "latitude", `${path}.location.geoCoordinates`) : undefined;
  const lon = geo ? r.optNumber(geo, "longitude", `${path}.location.geoCoordinates`) : undefined;
  const coords = validCoordinates(lat, lon);
  const device = optObject(r, o, "deviceDetail", path);
  let mfa: boolean | undefined;
  let amr: readonly string[] | undefined;
  if (api === "beta") {
    const requirement = r.optString(o, "authenticationRequirement", path);
    // A successful sign-in that required MFA was satisfied with it (freshly or by an MFA claim).
    if (requirement === "multiFactorAuthentication") mfa = true;
    else if (requirement === "singleFactorAuthentication") mfa = false;
    const methods = optStrings(r, o, "authenticationMethodsUsed", path);
    if (methods) {
      const refs = new Set<string>();
      for (const m of methods) {
        const ref = AMR[m.trim().toLowerCase()];
        if (ref) refs.add(ref);
      }
      if (mfa) refs.add("mfa");
      amr = internList([...refs]);
    }
  } else {
    const policies = o.appliedConditionalAccessPolicies;
    if (Array.isArray(policies)) {
      const enforced = policies.some((p, i) => {
        const po = r.object(p, `${path}.appliedConditionalAccessPolicies[${i}]`);
        const controls = optStrings(r, po, "enforcedGrantControls", `${path}.appliedConditionalAccessPolicies[${i}]`) ?? [];
        return r.optString(po, "result", `${path}.appliedConditionalAccessPolicies[${i}]`) === "success" && controls.some((c) => MFA_GRANT.test(c));
      });
      // v1.0 says nothing of MFA outside Conditional Access: only a policy that enforced it tells.
      if (enforced) mfa = true;
    }
  }
  const deviceId = device ? r.optString(device, "deviceId", `${path}.deviceDetail`) : undefined;
  return {
    userId,
    at,
    success: code === 0,
    mfaFailure: mfaCodes.has(code),
    signIn: {
      at,
      ip: r.optString(o, "ipAddress", path),
      country: intern(countryCode(location ? r.optString(location, "countryOrRegion", `${path}.location`) : undefined)),
      city: intern(location ? r.optString(location, "city", `${path}.location`) : undefined),
      lat: coords ? lat : undefined,
      lon: coords ? lon : undefined,
      mfa,
      amr,
      deviceId: deviceId === undefined ? undefined : lower(deviceId),
      deviceName: device ? r.optString(device, "displayName", `${path}.deviceDetail`) : undefined,
      deviceManaged: device ? r.optBoolean(device, "isManaged", `${path}.deviceDetail`) : undefined,
      deviceCompliant: device ? r.optBoolean(device, "isCompliant", `${path}.deviceDetail`) : undefined,
      app: intern(r.optString(o, "appDisplayName", path)),
    },
  };
}

class EntraSignInFeed {
  readonly activity: ActivityStore;
  #cursor: number | undefined;
  /** Ids of sign-ins within the overlap window, so a re-read one is not counted twice. */
  readonly #recent = new Map<string, number>();
  readonly #graph: GraphClient;
  readonly #config: EntraConnection;
  readonly #ctx: PluginContext;
  readonly #mfaCodes: ReadonlySet<number>;
  last: SyncStats | undefined;

  constructor(graph: GraphClient, config: EntraConnection, ctx: PluginContext) {
    this.#graph = graph;
    this.#config = config;
    this.#ctx = ctx;
    this.activity = new ActivityStore(config.max_users, config.sign_ins.history);
    this.#mfaCodes = new Set(config.sign_ins.mfa_failure_codes);
  }

  async sync(signal: AbortSignal, deadline: number): Promise<ActivityStore> {
    const s = this.#config.sign_ins;
    const before = this.#graph.calls;
    const kind = this.#cursor === undefined ? "full" : "delta";
    const from = this.#cursor === undefined ? this.#ctx.clock.now() - s.lookback : this.#cursor - s.overlap;
    const base = s.api === "beta" ? this.#graph.betaUrl : this.#graph.graphUrl;
    const first = this.#graph.url("/auditLogs/signIns", { filter: `createdDateTime ge ${new Date(from).toISOString().replace(/\.\d{3}Z$/, "Z")}`, top: 1000 }, base);
    let newest = this.#cursor ?? from;
    let changes = 0;
    let page = 0;
    const walk = this.#graph.walk(first, { signal, deadline, permission: ENTRA_PERMISSIONS.signIns, licence: ENTRA_LICENCES.signIns, maxItems: s.max_sign_ins, limitKey: "sign_ins.max_sign_ins" });
    for await (const value of walk) {
      const r = new Reader(`GET ${base}/auditLogs/signIns (page ${++page})`);
      for (let i = 0; i < value.length; i++) {
        const path = `$.value[${i}]`;
        const o = r.object(value[i], path);
        const id = r.string(o, "id", path);
        if (this.#recent.has(id)) continue;
        const read = readSignIn(o, r, path, s.api, this.#mfaCodes);
        if (!read) continue;
        this.#recent.set(id, read.at);
        if (read.at > newest) newest = read.at;
        if (read.success) this.activity.signIn(read.userId, read.signIn, s.history);
        else if (read.mfaFailure) this.activity.mfaFailure(read.userId, read.at);
        changes++;
      }
    }
    this.#cursor = newest;
    const keepFrom = newest - s.overlap;
    for (const [id, at] of this.#recent) if (at < keepFrom) this.#recent.delete(id);
    this.last = { kind, changes, calls: this.#graph.calls - before };
    return this.activity;
  }
}

// ---------------------------------------------------------------------------------------------
// Identity Protection

function riskRecord(o: Record<string, unknown>, r: Reader, path: string, login: "userPrincipalName" | "appId"): EntraRisk {
  return {
    id: r.string(o, "id", path).toLowerCase(),
    login: r.optString(o, login, path)?.toLowerCase(),
    level: intern(r.optString(o, "riskLevel", path) ?? "none"),
    state: intern(r.optString(o, "riskState", path) ?? "none"),
    detail: intern(r.optString(o, "riskDetail", path) ?? "none"),
    updatedAt: r.optTime(o, "riskLastUpdatedDateTime", path),
    processing: r.optBoolean(o, "isProcessing", path) ?? false,
    deleted: r.optBoolean(o, "isDeleted", path) ?? false,
  };
}

function detectionRecord(o: Record<string, unknown>, r: Reader, path: string): EntraDetection | undefined {
  const rawUser = r.optString(o, "userId", path);
  if (rawUser === undefined) return undefined;
  const userId = lower(rawUser);
  const location = optObject(r, o, "location", path);
  const place = location
    ? [r.optString(location, "city", `${path}.location`), r.optString(location, "state", `${path}.location`), r.optString(location, "countryOrRegion", `${path}.location`)].filter((x) => x !== undefined).join(", ")
    : "";
  return {
    id: r.string(o, "id", path),
    userId,
    type: intern(r.optString(o, "riskEventType", path) ?? "generic"),
    level: intern(r.optString(o, "riskLevel", path) ?? "none"),
    state: intern(r.optString(o, "riskState", path) ?? "none"),
    detail: intern(r.optString(o, "riskDetail", path) ?? "none"),
    timing: intern(r.optString(o, "detectionTimingType", path)),
    activity: intern(r.optString(o, "activity", path)),
    activityAt: r.optTime(o, "activityDateTime", path),
    detectedAt: r.optTime(o, "detectedDateTime", path),
    ip: r.optString(o, "ipAddress", path),
    location: place === "" ? undefined : place,
  };
}

/** The risky users (or service principals) Identity Protection knows, by id and by login/appId. */
export class RiskSet {
  readonly byId = new Map<string, EntraRisk>();
  readonly #byLogin = new Map<string, EntraRisk>();

  set(risk: EntraRisk): void {
    const old = this.byId.get(risk.id);
    if (old?.login) this.#byLogin.delete(old.login);
    this.byId.set(risk.id, risk);
    if (risk.login) this.#byLogin.set(risk.login, risk);
  }

  find(keys: readonly string[]): EntraRisk | undefined {
    for (const k of keys) {
      const hit = this.byId.get(k) ?? this.#byLogin.get(k);
      if (hit) return hit;
    }
    return undefined;
  }
}

/** Filter timestamps as Graph writes them. */
function odataTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Changes Identity Protection publishes a little late are read again: the filters start this much before the newest one seen. */
const RISK_OVERLAP_MS = 10 * 60_000;

class RiskFeed {
  readonly set = new RiskSet();
  #cursor: number | undefined;
  #fullAt: number | undefined;
  readonly #graph: GraphClient;
  readonly #path: string;
  readonly #permission: string;
  readonly #licence: string;
  readonly #login: "userPrincipalName" | "appId";
  readonly #config: EntraConnection;
  readonly #ctx: PluginContext;

  constructor(graph: GraphClient, kind: "users" | "servicePrincipals", config: EntraConnection, ctx: PluginContext) {
    this.#graph = graph;
    this.#path = kind === "users" ? "/identityProtection/riskyUsers" : "/identityProtection/riskyServicePrincipals";
    this.#permission = kind === "users" ? ENTRA_PERMISSIONS.riskyUsers : ENTRA_PERMISSIONS.riskyServicePrincipals;
    this.#licence = kind === "users" ? ENTRA_LICENCES.identityProtection : ENTRA_LICENCES.workloadIdentities;
    this.#login = kind === "users" ? "userPrincipalName" : "appId";
    this.#config = config;
    this.#ctx = ctx;
  }

  async sync(signal: AbortSignal, deadline: number): Promise<RiskSet> {
    const now = this.#ctx.clock.now();
    const full = this.#cursor === undefined || this.#fullAt === undefined || now - this.#fullAt >= this.#config.full_resync;
    const filter = full ? undefined : `riskLastUpdatedDateTime ge ${odataTime(this.#cursor! - RISK_OVERLAP_MS)}`;
    let newest = full ? 0 : this.#cursor!;
    const seen = full ? new Set<string>() : undefined;
    let page = 0;
    // Identity Protection pages 20 at a time unless asked for more (500 at most).
    const pages = this.#graph.pages(this.#path, filter === undefined ? { top: 500 } : { filter, top: 500 }, {
      signal,
      deadline,
      permission: this.#permission,
      licence: this.#licence,
      maxItems: this.#config.max_users,
      limitKey: "max_users",
    });
    for await (const value of pages) {
      const r = new Reader(`GET ${this.#graph.graphUrl}${this.#path} (page ${++page})`);
      for (let i = 0; i < value.length; i++) {
        const risk = riskRecord(r.object(value[i], `$.value[${i}]`), r, `$.value[${i}]`, this.#login);
        this.set.set(risk);
        seen?.add(risk.id);
        if (risk.updatedAt !== undefined && risk.updatedAt > newest) newest = risk.updatedAt;
      }
    }
    // A full read is the whole truth: a user no longer listed carries no risk.
    if (seen) for (const id of [...this.set.byId.keys()]) if (!seen.has(id)) this.set.byId.delete(id);
    if (full) this.#fullAt = now;
    this.#cursor = Math.max(newest, this.#cursor ?? 0) || now;
    return this.set;
  }
}

/** The latest detections of each user, newest first. */
export class DetectionSet {
  readonly #byUser = new Map<string, EntraDetection[]>();
  readonly #perUser: number;

  constructor(perUser: number) {
    this.#perUser = perUser;
  }

  add(d: EntraDetection): void {
    const list = this.#byUser.get(d.userId) ?? [];
    const i = list.findIndex((x) => x.id === d.id);
    if (i >= 0) list.splice(i, 1);
    list.push(d);
    list.sort((a, b) => (b.detectedAt ?? 0) - (a.detectedAt ?? 0));
    if (list.length > this.#perUser) list.length = this.#perUser;
    this.#byUser.set(d.userId, list);
  }

  of(userId: string): readonly EntraDetection[] {
    return this.#byUser.get(userId) ?? [];
  }
}

class DetectionFeed {
  readonly set: DetectionSet;
  #cursor: number | undefined;
  readonly #graph: GraphClient;
  readonly #lookback: number;
  readonly #ctx: PluginContext;
  readonly #config: EntraConnection;

  constructor(graph: GraphClient, lookbackMs: number, perUser: number, config: EntraConnection, ctx: PluginContext) {
    this.#graph = graph;
    this.#lookback = lookbackMs;
    this.#ctx = ctx;
    this.#config = config;
    this.set = new DetectionSet(perUser);
  }

  async sync(signal: AbortSignal, deadline: number): Promise<DetectionSet> {
    const from = this.#cursor === undefined ? this.#ctx.clock.now() - this.#lookback : this.#cursor - RISK_OVERLAP_MS;
    let newest = this.#cursor ?? from;
    let page = 0;
    const pages = this.#graph.pages("/identityProtection/riskDetections", { filter: `detectedDateTime ge ${odataTime(from)}`, top: 500 }, {
      signal,
      deadline,
      permission: ENTRA_PERMISSIONS.detections,
      licence: ENTRA_LICENCES.identityProtection,
      maxItems: this.#config.max_users,
      limitKey: "max_users",
    });
    for await (const value of pages) {
      const r = new Reader(`GET ${this.#graph.graphUrl}/identityProtection/riskDetections (page ${++page})`);
      for (let i = 0; i < value.length; i++) {
        const d = detectionRecord(r.object(value[i], `$.value[${i}]`), r, `$.value[${i}]`);
        if (!d) continue;
        this.set.add(d);
        if (d.detectedAt !== undefined && d.detectedAt > newest) newest = d.detectedAt;
      }
    }
    this.#cursor = newest;
    return this.set;
  }
}

// ---------------------------------------------------------------------------------------------
// The source

export class EntraIdentitySource {
  readonly type = "entra";
  readonly config: EntraConnection;
  readonly graph: GraphClient;
  readonly #ctx: PluginContext;
  #users: { sync: GraphDirectorySync<IdentityUser>; scan: SharedScan<Directory<IdentityUser>> } | undefined;
  #servicePrincipals: { sync: GraphDirectorySync<ServicePrincipal>; scan: SharedScan<Directory<ServicePrincipal>> } | undefined;
  #signIns: { feed: EntraSignInFeed; scan: SharedScan<ActivityStore> } | undefined;
  #riskyUsers: SharedScan<RiskSet> | undefined;
  #riskyServicePrincipals: SharedScan<RiskSet> | undefined;
  readonly #detections = new Map<string, SharedScan<DetectionSet>>();
  readonly #groups = new Map<string, SharedScan<ReadonlySet<string>>>();

  constructor(config: EntraConnection, ctx: PluginContext) {
    this.config = config;
    this.#ctx = ctx;
    this.graph = new GraphClient({ app: config, ctx, name: `entra-identity:${config.tenant_id}`, timeoutMs: config.timeout, maxResponseBytes: config.max_response_bytes });
  }

  #scan<T>(run: (signal: AbortSignal, deadline: number) => Promise<T>): SharedScan<T> {
    return new SharedScan(run, { clock: this.#ctx.clock, scanTimeoutMs: this.config.scan_timeout });
  }

  /** The tenant's users, synced incrementally. */
  users(): SharedScan<Directory<IdentityUser>> {
    if (!this.#users) {
      const sync = new GraphDirectorySync<IdentityUser>(this.graph, { collection: "users", select: USER_SELECT, permission: ENTRA_PERMISSIONS.users, record: userRecord, keys: userKeys }, this.config, this.#ctx);
      this.#users = { sync, scan: this.#scan((signal, deadline) => sync.sync(signal, deadline)) };
    }
    return this.#users.scan;
  }

  /** How the last user sync went. */
  get lastUserSync(): SyncStats | undefined {
    return this.#users?.sync.last;
  }

  servicePrincipals(): SharedScan<Directory<ServicePrincipal>> {
    if (!this.#servicePrincipals) {
      const sync = new GraphDirectorySync<ServicePrincipal>(
        this.graph,
        { collection: "servicePrincipals", select: SERVICE_PRINCIPAL_SELECT, permission: ENTRA_PERMISSIONS.servicePrincipals, record: servicePrincipalRecord, keys: (sp) => (sp.appId ? [sp.id, sp.appId] : [sp.id]) },
        this.config,
        this.#ctx,
      );
      this.#servicePrincipals = { sync, scan: this.#scan((signal, deadline) => sync.sync(signal, deadline)) };
    }
    return this.#servicePrincipals.scan;
  }

  /** The users' sign-in activity, read from the sign-in log incrementally. */
  signIns(): SharedScan<ActivityStore> {
    if (!this.#signIns) {
      const feed = new EntraSignInFeed(this.graph, this.config, this.#ctx);
      this.#signIns = { feed, scan: this.#scan((signal, deadline) => feed.sync(signal, deadline)) };
    }
    return this.#signIns.scan;
  }

  get lastSignInSync(): SyncStats | undefined {
    return this.#signIns?.feed.last;
  }

  riskyUsers(): SharedScan<RiskSet> {
    if (!this.#riskyUsers) {
      const feed = new RiskFeed(this.graph, "users", this.config, this.#ctx);
      this.#riskyUsers = this.#scan((signal, deadline) => feed.sync(signal, deadline));
    }
    return this.#riskyUsers;
  }

  riskyServicePrincipals(): SharedScan<RiskSet> {
    if (!this.#riskyServicePrincipals) {
      const feed = new RiskFeed(this.graph, "servicePrincipals", this.config, this.#ctx);
      this.#riskyServicePrincipals = this.#scan((signal, deadline) => feed.sync(signal, deadline));
    }
    return this.#riskyServicePrincipals;
  }

  /** Each user's latest detections (at most `perUser`), first read `lookbackMs` back. Held per setting. */
  detections(lookbackMs: number, perUser: number): SharedScan<DetectionSet> {
    const key = `${lookbackMs}:${perUser}`;
    let scan = this.#detections.get(key);
    if (!scan) {
      const feed = new DetectionFeed(this.graph, lookbackMs, perUser, this.config, this.#ctx);
      scan = this.#scan((signal, deadline) => feed.sync(signal, deadline));
      this.#detections.set(key, scan);
    }
    return scan;
  }

  /** Object ids of the transitive user members of these groups, one paged walk per group. Held per group list. */
  groupMembers(groupIds: readonly string[]): SharedScan<ReadonlySet<string>> {
    const key = [...groupIds].map((g) => g.toLowerCase()).sort().join(",");
    let scan = this.#groups.get(key);
    if (!scan) {
      scan = this.#scan(async (signal, deadline) => {
        const ids = new Set<string>();
        for (const group of groupIds) {
          const pages = this.graph.pages(`/groups/${encodeURIComponent(group)}/transitiveMembers/microsoft.graph.user`, { select: ["id"], top: 999 }, {
            signal,
            deadline,
            permission: ENTRA_PERMISSIONS.groups,
            maxItems: this.config.max_users,
            limitKey: "max_users",
          });
          for await (const value of pages) {
            const r = new Reader(`GET ${this.config.graph_url}/groups/${group}/transitiveMembers/microsoft.graph.user`);
            value.forEach((raw, i) => ids.add(r.string(r.object(raw, `$.value[${i}]`), "id", `$.value[${i}]`).toLowerCase()));
          }
        }
        return ids;
      });
      this.#groups.set(key, scan);
    }
    return scan;
  }

  async close(): Promise<void> {
    await this.graph.close();
  }
}
