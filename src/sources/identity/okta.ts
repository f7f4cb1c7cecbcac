/**
 * An Okta org, for the user inventories and user_risk_score:
 *
 * - **Users** (`/api/v1/users`, pages of up to 200 through `Link: rel="next"`): the first sync lists
 *   every user (deactivated ones too: Okta leaves `DEPROVISIONED` users out unless a filter asks for
 *   them), each later one only those changed since (`filter=lastUpdated gt "…"`, which Okta answers
 *   from up-to-date data); `full_resync` lists everyone again. With a `search` expression, both use
 *   `search`.
 * - **Group members** (`/api/v1/groups/{id}/users`) for inventories scoped to groups.
 * - **Sign-ins** from the System Log (`/api/v1/logs`): one polling stream (`since` on the first
 *   poll, `sortOrder=ASCENDING`, no `until`), resumed from the `next` link of the last poll, so a
 *   tick costs one request for the whole org however many users there are. `user.session.start`
 *   gives the sign-in (time, address, place, device); MFA verifications in the same session
 *   (`user.authentication.auth_via_mfa`, `user.authentication.verify`) give its methods, and their
 *   failures count as MFA failures.
 * - **Risk** (Identity Threat Protection): a second stream of `user.risk.detect` events
 *   (`debugContext.debugData.risk`: level, previous level, detection, reasons, issuer), and each
 *   changed user's risk object (`GET /api/v1/users/{id}/risk`) for its current level and reason.
 */
import type { PluginContext } from "../../plugin/context.ts";
import { intern, internList } from "../common/intern.ts";
import { MalformedResponse, Reader } from "../common/read.ts";
import { SharedScan } from "../common/scan.ts";
import { OktaReader } from "../okta/client.ts";
import { Directory, optObject } from "./directory.ts";
import type { SyncStats } from "./entra.ts";
import { countryCode, validCoordinates } from "./geo.ts";
import { ActivityStore, userKeys, type IdentityUser, type OktaRisk, type SignIn } from "./model.ts";
import type { OktaConnection } from "./schema.ts";

/** OAuth scopes of each read, named when Okta refuses one. */
export const OKTA_SCOPES = {
  users: "okta.users.read",
  groups: "okta.groups.read",
  logs: "okta.logs.read",
  userRisk: "okta.userRisk.read",
} as const;

/** Statuses of accounts that cannot sign in. */
const DISABLED = new Set(["SUSPENDED", "DEPROVISIONED"]);

/** System Log event types the sign-in stream reads. */
export const SIGN_IN_EVENTS = ["user.session.start", "user.authentication.auth_via_mfa", "user.authentication.verify"] as const;
export const RISK_EVENT = "user.risk.detect";

/** Events per System Log page (Okta's largest). */
const LOG_PAGE = 1000;

function oktaTime(ms: number): string {
  return new Date(ms).toISOString();
}

export function oktaUserRecord(o: Record<string, unknown>, r: Reader, path: string): IdentityUser {
  const profile = optObject(r, o, "profile", path) ?? {};
  const status = intern(r.string(o, "status", path));
  const login = r.optString(profile, "login", `${path}.profile`);
  const email = r.optString(profile, "email", `${path}.profile`);
  const first = r.optString(profile, "firstName", `${path}.profile`);
  const last = r.optString(profile, "lastName", `${path}.profile`);
  return {
    provider: "okta",
    id: r.string(o, "id", path),
    login,
    email: email !== undefined && email === login ? login : email,
    name: r.optString(profile, "displayName", `${path}.profile`) ?? ([first, last].filter((x) => x !== undefined).join(" ") || undefined),
    enabled: !DISABLED.has(status),
    status,
    userType: undefined,
    passwordChangedAt: r.optTime(o, "passwordChanged", path),
  };
}

// ---------------------------------------------------------------------------------------------
// Users

class OktaDirectorySync {
  readonly dir = new Directory<IdentityUser>(userKeys);
  /** The newest `lastUpdated` seen (Okta's clock), where the next incremental read starts. */
  #cursor: number | undefined;
  #fullAt: number | undefined;
  readonly #okta: OktaReader;
  readonly #config: OktaConnection;
  readonly #search: string | undefined;
  readonly #ctx: PluginContext;
  last: SyncStats | undefined;

  constructor(okta: OktaReader, config: OktaConnection, search: string | undefined, ctx: PluginContext) {
    this.#okta = okta;
    this.#config = config;
    this.#search = search;
    this.#ctx = ctx;
  }

  async sync(signal: AbortSignal, deadline: number): Promise<Directory<IdentityUser>> {
    const before = this.#okta.calls;
    const due = this.#fullAt === undefined || this.#ctx.clock.now() - this.#fullAt >= this.#config.full_resync;
    if (this.#cursor === undefined || due) {
      const items = new Map<string, IdentityUser>();
      const lists = this.#search !== undefined ? [{ search: this.#search }] : [{}, { filter: 'status eq "DEPROVISIONED"' }];
      let newest = 0;
      for (const q of lists) newest = Math.max(newest, await this.#read(q, (u) => items.set(u.id, u), signal, deadline));
      this.dir.replace(items);
      this.#cursor = newest || this.#ctx.clock.now();
      this.#fullAt = this.#ctx.clock.now();
      this.last = { kind: "full", changes: items.size, calls: this.#okta.calls - before };
      return this.dir;
    }
    // One second of overlap: `lastUpdated` has millisecond precision but changes land in any order within it.
    const since = `lastUpdated gt "${oktaTime(this.#cursor - 1000)}"`;
    const lists = this.#search !== undefined ? [{ search: `(${this.#search}) and ${since}` }] : [{ filter: since }, { filter: `${since} and status eq "DEPROVISIONED"` }];
    let changes = 0;
    let newest = this.#cursor;
    for (const q of lists) {
      newest = Math.max(
        newest,
        await this.#read(
          q,
          (u) => {
            const old = this.dir.get(u.id);
            if (!old || old.status !== u.status || old.login !== u.login || old.email !== u.email || old.name !== u.name || old.passwordChangedAt !== u.passwordChangedAt) {
              if (!old && this.dir.size >= this.#config.max_users) throw new MalformedResponse(`GET ${this.#config.org_url}/api/v1/users`, `the directory has more than ${this.#config.max_users} users (raise max_users if that is right)`);
              this.dir.set(u);
              changes++;
            }
          },
          signal,
          deadline,
        ),
      );
    }
    this.#cursor = newest;
    this.last = { kind: "delta", changes, calls: this.#okta.calls - before };
    return this.dir;
  }

  /** Reads one list; returns the newest `lastUpdated` in it (0 when empty). */
  async #read(query: { search?: string; filter?: string }, add: (u: IdentityUser) => void, signal: AbortSignal, deadline: number): Promise<number> {
    const url = this.#okta.url("/api/v1/users", { limit: String(this.#config.page_size), ...query });
    let newest = 0;
    let page = 0;
    for await (const list of this.#okta.pages(url, { signal, deadline, scope: OKTA_SCOPES.users, maxItems: this.#config.max_users, limitKey: "max_users" })) {
      const r = new Reader(`GET ${this.#config.org_url}/api/v1/users (page ${++page})`);
      for (let i = 0; i < list.length; i++) {
        const o = r.object(list[i], `$[${i}]`);
        add(oktaUserRecord(o, r, `$[${i}]`));
        const updated = r.optTime(o, "lastUpdated", `$[${i}]`);
        if (updated !== undefined && updated > newest) newest = updated;
      }
    }
    return newest;
  }
}

// ---------------------------------------------------------------------------------------------
// The System Log

/** A polling stream of System Log events: one cursor (the last `next` link), resumed every tick. */
class LogStream {
  #next: string | undefined;
  readonly #okta: OktaReader;
  readonly #filter: string;
  readonly #lookback: number;
  readonly #maxEvents: number;
  readonly #ctx: PluginContext;
  readonly #org: string;

  constructor(okta: OktaReader, filter: string, lookbackMs: number, maxEvents: number, org: string, ctx: PluginContext) {
    this.#okta = okta;
    this.#filter = filter;
    this.#lookback = lookbackMs;
    this.#maxEvents = maxEvents;
    this.#org = org;
    this.#ctx = ctx;
  }

  /**
   * Reads the events published since the last poll, page by page, handing each to `take`. Polling
   * requests always link a next page, so the stream stops at a short page (caught up) or at
   * `maxEvents` (the rest waits for the next tick), and keeps that page's next link.
   */
  async poll(take: (event: Record<string, unknown>, r: Reader, path: string) => void, signal: AbortSignal, deadline: number): Promise<number> {
    let url =
      this.#next ?? this.#okta.url("/api/v1/logs", { since: oktaTime(this.#ctx.clock.now() - this.#lookback), sortOrder: "ASCENDING", limit: String(LOG_PAGE), filter: this.#filter });
    let events = 0;
    for (;;) {
      const page = await this.#okta.get(url, { signal, deadline, scope: OKTA_SCOPES.logs });
      const r = new Reader(`GET ${this.#org}/api/v1/logs`);
      const list = r.array(page.body, "$");
      for (let i = 0; i < list.length; i++) take(r.object(list[i], `$[${i}]`), r, `$[${i}]`);
      events += list.length;
      // The cursor moves only once a page is taken whole: a failure re-reads it on the next tick.
      if (page.next !== undefined) this.#next = page.next;
      if (page.next === undefined || list.length < LOG_PAGE || events >= this.#maxEvents) return events;
      url = page.next;
    }
  }
}

/** The user an event is about, id and login: its `User` actor (sign-ins) or its `User` target (risk changes). */
function eventUser(e: Record<string, unknown>, r: Reader, path: string, from: "actor" | "target"): { id: string; login: string | undefined } | undefined {
  const of = (o: Record<string, unknown>, p: string) => {
    if (r.optString(o, "type", p) !== "User") return undefined;
    const id = r.optString(o, "id", p);
    return id === undefined ? undefined : { id, login: r.optString(o, "alternateId", p) };
  };
  if (from === "actor") {
    const actor = optObject(r, e, "actor", path);
    return actor ? of(actor, `${path}.actor`) : undefined;
  }
  const targets = e.target;
  if (!Array.isArray(targets)) return undefined;
  for (let i = 0; i < targets.length; i++) {
    const hit = of(r.object(targets[i], `${path}.target[${i}]`), `${path}.target[${i}]`);
    if (hit) return hit;
  }
  return undefined;
}

/** The method an MFA event verified (`OKTA_VERIFY_PUSH`, `FIDO_WEBAUTHN`, `Password`, …), if it says. */
function verifiedMethod(e: Record<string, unknown>, r: Reader, path: string): string | undefined {
  const debug = optObject(r, e, "debugContext", path);
  const data = debug ? optObject(r, debug, "debugData", `${path}.debugContext`) : undefined;
  const factor = data ? (data.factor ?? data.factorType ?? data.authenticator) : undefined;
  if (typeof factor === "string" && factor !== "") return factor;
  const targets = Array.isArray(e.target) ? e.target : [];
  for (const t of targets) {
    const detail = t && typeof t === "object" ? (t as Record<string, unknown>).detailEntry : undefined;
    const m = detail && typeof detail === "object" ? (detail as Record<string, unknown>).methodTypeUsed : undefined;
    if (typeof m === "string" && m !== "") return m;
  }
  return undefined;
}

/** An Okta factor or authenticator name as an RFC 8176 method reference. */
export function methodRef(method: string | undefined): string {
  const m = (method ?? "").toLowerCase();
  if (/webauthn|fido|u2f|yubikey|security key|passkey/.test(m)) return "hwk";
  if (/sms/.test(m)) return "sms";
  if (/call|voice/.test(m)) return "tel";
  if (/totp|otp|google|passcode|token:software|hotp|rsa|symantec|duo/.test(m)) return "otp";
  if (/push|fastpass|signed_nonce|okta verify/.test(m)) return "swk";
  if (/smart ?card|piv|x509|certificate/.test(m)) return "sc";
  return "mfa";
}

const isPassword = (method: string | undefined) => method !== undefined && /password|^pwd$/i.test(method);

interface Session {
  readonly userId: string;
  readonly at: number;
  methods: string[];
  signIn: SignIn | undefined;
}

/** Sessions remembered for matching late MFA events, at most this many, for this long. */
const MAX_SESSIONS = 50_000;
const SESSION_MS = 12 * 3_600_000;

class OktaSignInFeed {
  readonly activity: ActivityStore;
  readonly #stream: LogStream;
  readonly #sessions = new Map<string, Session>();
  readonly #config: OktaConnection;
  last: SyncStats | undefined;
  #polls = 0;
  readonly #okta: OktaReader;

  constructor(okta: OktaReader, config: OktaConnection, ctx: PluginContext) {
    this.#okta = okta;
    this.#config = config;
    this.activity = new ActivityStore(config.max_users, config.sign_ins.history);
    const filter = SIGN_IN_EVENTS.map((t) => `eventType eq "${t}"`).join(" or ");
    this.#stream = new LogStream(okta, filter, config.sign_ins.lookback, config.sign_ins.max_events, config.org_url, ctx);
  }

  async sync(signal: AbortSignal, deadline: number): Promise<ActivityStore> {
    const before = this.#okta.calls;
    const events = await this.#stream.poll((e, r, path) => this.#take(e, r, path), signal, deadline);
    this.last = { kind: this.#polls++ === 0 ? "full" : "delta", changes: events, calls: this.#okta.calls - before };
    return this.activity;
  }

  #take(e: Record<string, unknown>, r: Reader, path: string): void {
    const type = r.optString(e, "eventType", path);
    const at = r.optTime(e, "published", path);
    const user = eventUser(e, r, path, "actor");
    if (at === undefined || user === undefined) return;
    const userId = user.id;
    const outcome = optObject(r, e, "outcome", path);
    const result = outcome ? r.optString(outcome, "result", `${path}.outcome`) : undefined;
    const auth = optObject(r, e, "authenticationContext", path);
    const sessionId = auth ? r.optString(auth, "externalSessionId", `${path}.authenticationContext`) : undefined;
    if (type === "user.session.start") {
      if (result !== "SUCCESS") return;
      const session = sessionId !== undefined ? this.#sessions.get(sessionId) : undefined;
      const methods = session?.methods ?? [];
      const signIn = this.#signIn(e, r, path, at, methods);
      this.activity.signIn(userId, signIn, this.#config.sign_ins.history);
      if (sessionId !== undefined) this.#remember(sessionId, { userId, at, methods, signIn });
      return;
    }
    // user.authentication.auth_via_mfa, user.authentication.verify
    const method = verifiedMethod(e, r, path);
    if (isPassword(method)) return;
    if (result === "FAILURE" || result === "DENY") {
      this.activity.mfaFailure(userId, at);
      return;
    }
    if (result !== "SUCCESS" || sessionId === undefined) return;
    const session = this.#sessions.get(sessionId);
    const ref = methodRef(method);
    if (!session) {
      this.#remember(sessionId, { userId, at, methods: [ref], signIn: undefined });
      return;
    }
    if (!session.methods.includes(ref)) session.methods.push(ref);
    // A factor verified after the session started: the sign-in it belongs to was satisfied with MFA.
    if (session.signIn && !session.signIn.mfa) {
      const upgraded: SignIn = { ...session.signIn, mfa: true, amr: amrOf(session.methods) };
      session.signIn = upgraded;
      this.activity.signIn(session.userId, upgraded, this.#config.sign_ins.history);
    }
  }

  #remember(id: string, s: Session): void {
    this.#sessions.delete(id);
    this.#sessions.set(id, s);
    const cutoff = s.at - SESSION_MS;
    for (const [k, v] of this.#sessions) {
      if (this.#sessions.size <= MAX_SESSIONS && v.at >= cutoff) break;
      this.#sessions.delete(k);
    }
  }

  #signIn(e: Record<string, unknown>, r: Reader, path: string, at: number, methods: readonly string[]): SignIn {
    const client = optObject(r, e, "client", path);
    const geo = client ? optObject(r, client, "geographicalContext", `${path}.client`) : undefined;
    const loc = geo ? optObject(r, geo, "geolocation", `${path}.client.geographicalContext`) : undefined;
    const lat = loc ? r.optNumber(loc, "lat", `${path}.client.geographicalContext.geolocation`) : undefined;
    const lon = loc ? r.optNumber(loc, "lon", `${path}.client.geographicalContext.geolocation`) : undefined;
    const coords = validCoordinates(lat, lon);
    const device = optObject(r, e, "device", path);
    return {
      at,
      ip: client ? r.optString(client, "ipAddress", `${path}.client`) : undefined,
      country: intern(countryCode(geo ? r.optString(geo, "country", `${path}.client.geographicalContext`) : undefined)),
      city: intern(geo ? r.optString(geo, "city", `${path}.client.geographicalContext`) : undefined),
      lat: coords ? lat : undefined,
      lon: coords ? lon : undefined,
      mfa: methods.length > 0,
      amr: amrOf(methods),
      deviceId: device ? r.optString(device, "id", `${path}.device`) : undefined,
      deviceName: device ? r.optString(device, "name", `${path}.device`) : undefined,
      deviceManaged: device ? r.optBoolean(device, "managed", `${path}.device`) : undefined,
      deviceCompliant: undefined,
      app: undefined,
    };
  }
}

function amrOf(methods: readonly string[]): readonly string[] {
  return internList(methods.length === 0 ? ["pwd"] : ["pwd", "mfa", ...methods.filter((m) => m !== "mfa")]);
}

// ---------------------------------------------------------------------------------------------
// Risk

/**
 * `debugContext.debugData.risk` of a `user.risk.detect` event. Okta writes it as
 * `{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=…, issuer=OKTA}`;
 * a JSON object is read too. Reasons may hold commas: a field ends only where the next `key=` begins.
 */
export function parseOktaRisk(value: unknown): Record<string, string> | undefined {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) if (typeof v === "string") out[k] = v;
    return out;
  }
  if (typeof value !== "string") return undefined;
  const text = value.trim().replace(/^\{/, "").replace(/\}$/, "");
  if (text === "") return undefined;
  const out: Record<string, string> = {};
  for (const part of text.split(/,\s*(?=[A-Za-z][A-Za-z0-9_]*=)/)) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const LEVELS = new Set(["NONE", "LOW", "MEDIUM", "HIGH"]);

/**
 * Each user's risk as the org last reported it, by user id (and by login, as the events name it).
 * Keys are lower-cased: subjects are looked up by lower-cased keys, Okta's ids are mixed-case.
 */
export class OktaRiskSet {
  readonly byUser = new Map<string, OktaRisk>();
  readonly #byLogin = new Map<string, string>();

  get(user: string): OktaRisk | undefined {
    return this.byUser.get(user.toLowerCase());
  }

  set(user: string, login: string | undefined, risk: OktaRisk): void {
    this.byUser.set(user.toLowerCase(), risk);
    if (login !== undefined) this.#byLogin.set(login.toLowerCase(), user.toLowerCase());
  }

  delete(user: string): void {
    this.byUser.delete(user.toLowerCase());
  }

  find(keys: readonly string[]): OktaRisk | undefined {
    for (const k of keys) {
      const hit = this.byUser.get(k) ?? this.byUser.get(this.#byLogin.get(k) ?? "");
      if (hit) return hit;
    }
    return undefined;
  }
}

class OktaRiskFeed {
  readonly set = new OktaRiskSet();
  readonly #stream: LogStream;
  readonly #okta: OktaReader;
  readonly #lookups: number;
  readonly #ctx: PluginContext;
  readonly #config: OktaConnection;

  constructor(okta: OktaReader, config: OktaConnection, lookbackMs: number, lookups: number, ctx: PluginContext) {
    this.#okta = okta;
    this.#lookups = lookups;
    this.#ctx = ctx;
    this.#config = config;
    this.#stream = new LogStream(okta, `eventType eq "${RISK_EVENT}"`, lookbackMs, config.sign_ins.max_events, config.org_url, ctx);
  }

  async sync(signal: AbortSignal, deadline: number): Promise<OktaRiskSet> {
    const changed = new Set<string>();
    await this.#stream.poll(
      (e, r, path) => {
        if (r.optString(e, "eventType", path) !== RISK_EVENT) return;
        const at = r.optTime(e, "published", path);
        const target = eventUser(e, r, path, "target");
        if (at === undefined || target === undefined) return;
        const user = target.id;
        const debug = optObject(r, e, "debugContext", path);
        const data = debug ? optObject(r, debug, "debugData", `${path}.debugContext`) : undefined;
        const risk = parseOktaRisk(data ? (data.risk ?? data.Risk) : undefined);
        const level = risk?.level?.toUpperCase();
        if (!risk || level === undefined || !LEVELS.has(level)) return;
        const old = this.set.get(user);
        if (old && old.at > at) return;
        this.set.set(user, target.login, {
          level: intern(level),
          previous: intern(risk.previousLevel?.toUpperCase()),
          detection: intern(risk.detectionName),
          reasons: risk.reasons,
          issuer: intern(risk.issuer),
          at,
          eventId: r.optString(e, "uuid", path),
          reason: undefined,
        });
        changed.add(user);
      },
      signal,
      deadline,
    );
    // The risk object is the current truth (an admin may have reset it since the event): read it for
    // the users that just changed, a bounded number per tick.
    let n = 0;
    for (const user of changed) {
      if (n++ >= this.#lookups) break;
      const page = await this.#okta.get(this.#okta.url(`/api/v1/users/${encodeURIComponent(user)}/risk`), { signal, deadline, scope: OKTA_SCOPES.userRisk, accept: [404] });
      if (page.status === 404) {
        this.set.delete(user);
        continue;
      }
      const o = page.reader.object(page.body, "$");
      const level = page.reader.optString(o, "riskLevel", "$")?.toUpperCase() ?? "NONE";
      if (!LEVELS.has(level)) page.reader.fail("$.riskLevel", `expected NONE, LOW, MEDIUM or HIGH, got ${JSON.stringify(level.slice(0, 20))}`);
      const old = this.set.get(user);
      this.set.set(user, undefined, {
        level: intern(level),
        previous: old?.previous,
        detection: old?.detection,
        reasons: old?.reasons,
        issuer: old?.issuer,
        at: old?.level === level ? old.at : this.#ctx.clock.now(),
        eventId: old?.eventId,
        reason: page.reader.optString(o, "reason", "$"),
      });
    }
    return this.set;
  }
}

// ---------------------------------------------------------------------------------------------
// The source

export class OktaIdentitySource {
  readonly type = "okta";
  readonly config: OktaConnection;
  readonly okta: OktaReader;
  readonly #ctx: PluginContext;
  readonly #users = new Map<string, { sync: OktaDirectorySync; scan: SharedScan<Directory<IdentityUser>> }>();
  readonly #groups = new Map<string, SharedScan<ReadonlySet<string>>>();
  #signIns: { feed: OktaSignInFeed; scan: SharedScan<ActivityStore> } | undefined;
  readonly #risk = new Map<string, SharedScan<OktaRiskSet>>();

  constructor(config: OktaConnection, ctx: PluginContext) {
    this.config = config;
    this.#ctx = ctx;
    this.okta = new OktaReader({ orgUrl: config.org_url, auth: config.auth, ctx, name: `okta-identity:${new URL(config.org_url).host}`, timeoutMs: config.timeout, maxResponseBytes: config.max_response_bytes });
  }

  #scan<T>(run: (signal: AbortSignal, deadline: number) => Promise<T>): SharedScan<T> {
    return new SharedScan(run, { clock: this.#ctx.clock, scanTimeoutMs: this.config.scan_timeout });
  }

  /** The org's users (those `search` matches, when given), synced incrementally. Held per search. */
  users(search?: string): SharedScan<Directory<IdentityUser>> {
    const key = search ?? "";
    let held = this.#users.get(key);
    if (!held) {
      const sync = new OktaDirectorySync(this.okta, this.config, search, this.#ctx);
      held = { sync, scan: this.#scan((signal, deadline) => sync.sync(signal, deadline)) };
      this.#users.set(key, held);
    }
    return held.scan;
  }

  lastUserSync(search?: string): SyncStats | undefined {
    return this.#users.get(search ?? "")?.sync.last;
  }

  groupMembers(groupIds: readonly string[]): SharedScan<ReadonlySet<string>> {
    const key = [...groupIds].sort().join(",");
    let scan = this.#groups.get(key);
    if (!scan) {
      scan = this.#scan(async (signal, deadline) => {
        const ids = new Set<string>();
        for (const group of groupIds) {
          const url = this.okta.url(`/api/v1/groups/${encodeURIComponent(group)}/users`, { limit: String(this.config.page_size) });
          for await (const list of this.okta.pages(url, { signal, deadline, scope: OKTA_SCOPES.groups, maxItems: this.config.max_users, limitKey: "max_users" })) {
            const r = new Reader(`GET ${this.config.org_url}/api/v1/groups/${group}/users`);
            list.forEach((raw, i) => ids.add(r.string(r.object(raw, `$[${i}]`), "id", `$[${i}]`)));
          }
        }
        return ids;
      });
      this.#groups.set(key, scan);
    }
    return scan;
  }

  signIns(): SharedScan<ActivityStore> {
    if (!this.#signIns) {
      const feed = new OktaSignInFeed(this.okta, this.config, this.#ctx);
      this.#signIns = { feed, scan: this.#scan((signal, deadline) => feed.sync(signal, deadline)) };
    }
    return this.#signIns.scan;
  }

  get lastSignInSync(): SyncStats | undefined {
    return this.#signIns?.feed.last;
  }

  /** Users' risk from `user.risk.detect` events (first read `lookbackMs` back) and up to `lookups` risk objects per tick. */
  risk(lookbackMs: number, lookups: number): SharedScan<OktaRiskSet> {
    const key = `${lookbackMs}:${lookups}`;
    let scan = this.#risk.get(key);
    if (!scan) {
      const feed = new OktaRiskFeed(this.okta, this.config, lookbackMs, lookups, this.#ctx);
      scan = this.#scan((signal, deadline) => feed.sync(signal, deadline));
      this.#risk.set(key, scan);
    }
    return scan;
  }

  async close(): Promise<void> {
    await this.okta.close();
  }
}
