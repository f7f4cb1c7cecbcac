/**
 * Identities as the identity providers report them, in one shape for Entra ID and Okta: the
 * accounts of the directory, the facts of their sign-ins, and the risk the providers hold about
 * them. Kept for a whole directory of up to hundreds of thousands of users, so records hold only
 * what an inventory or an evaluation reads, every record of a kind has every field (one object
 * shape), and a record is replaced, never changed, when its data changes: whoever built something
 * from it can tell by identity whether it is still current.
 */

export const IDENTITY_PROVIDERS = ["entra", "okta"] as const;
export type IdentityProvider = (typeof IDENTITY_PROVIDERS)[number];

/** A user account of the directory. */
export interface IdentityUser {
  readonly provider: IdentityProvider;
  /** Entra object id (lower case) or Okta user id. */
  readonly id: string;
  /** Entra `userPrincipalName`, Okta `profile.login`. */
  readonly login: string | undefined;
  /** Entra `mail`, Okta `profile.email`. */
  readonly email: string | undefined;
  readonly name: string | undefined;
  /** False for an account that cannot sign in: Entra `accountEnabled: false`, Okta `SUSPENDED` or `DEPROVISIONED`. */
  readonly enabled: boolean;
  /** Entra `enabled`/`disabled`; Okta's `status` (`ACTIVE`, `SUSPENDED`, `DEPROVISIONED`, `LOCKED_OUT`, …). */
  readonly status: string;
  /** Entra `userType` (`Member`, `Guest`). */
  readonly userType: string | undefined;
  /** Entra `lastPasswordChangeDateTime`, Okta `passwordChanged`, epoch ms. */
  readonly passwordChangedAt: number | undefined;
}

/** An Entra service principal (an application's identity in the tenant): a workload subject. */
export interface ServicePrincipal {
  readonly id: string;
  readonly appId: string | undefined;
  readonly name: string | undefined;
  readonly enabled: boolean;
  /** `servicePrincipalType`: `Application`, `ManagedIdentity`, `Legacy`, `SocialIdp`. */
  readonly type: string | undefined;
}

/** The facts of one successful sign-in. */
export interface SignIn {
  /** When it happened, epoch ms. */
  readonly at: number;
  readonly ip: string | undefined;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string | undefined;
  readonly city: string | undefined;
  readonly lat: number | undefined;
  readonly lon: number | undefined;
  /** Whether the sign-in was satisfied with a second factor; undefined when the source does not say. */
  readonly mfa: boolean | undefined;
  /** RFC 8176 authentication method references (`pwd`, `mfa`, `otp`, `hwk`, …), when known. */
  readonly amr: readonly string[] | undefined;
  /** The device's id at the provider (Entra device id, Okta device id). */
  readonly deviceId: string | undefined;
  readonly deviceName: string | undefined;
  readonly deviceManaged: boolean | undefined;
  /** Entra's Intune compliance of the device at sign-in. */
  readonly deviceCompliant: boolean | undefined;
  /** The application signed in to. */
  readonly app: string | undefined;
}

/** A country a user has signed in from: first seen, and how many sign-ins came before it. */
export interface CountrySeen {
  readonly code: string;
  first: number;
  prior: number;
}

/** Most MFA failures kept per user (the computed rule counts within a window, far below this). */
const MAX_MFA_FAILURES = 64;
/** Most distinct countries kept per user. */
const MAX_COUNTRIES = 32;

const NONE: readonly never[] = Object.freeze([]);

/** `s` lower-cased, the same string when it already is (a directory's ids and logins mostly are). */
export function lower(s: string): string {
  return /[A-Z]/.test(s) ? s.toLowerCase() : s;
}

/**
 * What vigil has seen of one user's sign-ins, bounded. Kept for every user of a directory, so the
 * lists are made only once there is something to put in them (most users have one sign-in, one
 * country and no MFA failure).
 */
export class UserActivity {
  /** The latest successful sign-in. Replaced (never changed) when a later one arrives. */
  last: SignIn | undefined = undefined;
  /** Successful sign-ins before `last`, oldest first. */
  #older: SignIn[] | undefined = undefined;
  /** The one country most users have, or the list once there are more. */
  #countries: CountrySeen | CountrySeen[] | undefined = undefined;
  #failures: number[] | undefined = undefined;
  /** Successful sign-ins recorded. */
  seen = 0;

  /** The activity of a user vigil has seen sign in once, with `s`. */
  static of(s: SignIn, history: number): UserActivity {
    const a = new UserActivity();
    a.record(s, history);
    return a;
  }

  /** Recent successful sign-ins, oldest first, `last` included: at most the source's `history`. */
  get recent(): readonly SignIn[] {
    if (this.last === undefined) return NONE;
    return this.#older ? [...this.#older, this.last] : [this.last];
  }

  get countries(): readonly CountrySeen[] {
    const c = this.#countries;
    return c === undefined ? NONE : Array.isArray(c) ? c : [c];
  }

  /** Times of failed second-factor attempts, oldest first. */
  get mfaFailures(): readonly number[] {
    return this.#failures ?? NONE;
  }

  /** Records a successful sign-in; true when it is the new latest one. */
  record(s: SignIn, history: number): boolean {
    const all = this.last === undefined ? [] : this.#older ? [...this.#older, this.last] : [this.last];
    // Sign-in logs arrive late and out of order: insert by time.
    let i = all.length;
    while (i > 0 && all[i - 1]!.at > s.at) i--;
    const same = i > 0 ? all[i - 1]! : undefined;
    if (same && same.at === s.at && same.ip === s.ip) {
      // The same sign-in again, with more known about it (a factor verified after the session began).
      if (this.last === same) {
        this.last = s;
        return true;
      }
      all[i - 1] = s;
      this.#keep(all, history);
      return false;
    }
    all.splice(i, 0, s);
    this.#keep(all, history);
    if (s.country !== undefined) {
      const known = this.countries.find((c) => c.code === s.country);
      if (!known) {
        const seen: CountrySeen = { code: s.country, first: s.at, prior: this.#priorTo(s.at) };
        const c = this.#countries;
        if (c === undefined) this.#countries = seen;
        else if (!Array.isArray(c)) this.#countries = [c, seen];
        else if (c.length < MAX_COUNTRIES) c.push(seen);
      } else if (s.at < known.first) {
        known.first = s.at;
        known.prior = this.#priorTo(s.at);
      }
    }
    this.seen++;
    return this.last === s;
  }

  /** Keeps the newest `history` of `all` (sorted by time) as `last` and the ones before it. */
  #keep(all: SignIn[], history: number): void {
    const kept = all.length > history ? all.slice(all.length - history) : all;
    this.last = kept[kept.length - 1];
    this.#older = kept.length > 1 ? kept.slice(0, -1) : undefined;
  }

  #priorTo(at: number): number {
    // Sign-ins older than the kept ones count too: every one seen before `at` was before it.
    const later = this.recent.filter((r) => r.at >= at).length;
    return Math.max(0, this.seen - later + 1);
  }

  mfaFailure(at: number): void {
    const list = (this.#failures ??= []);
    let i = list.length;
    while (i > 0 && list[i - 1]! > at) i--;
    list.splice(i, 0, at);
    if (list.length > MAX_MFA_FAILURES) list.shift();
  }
}

/**
 * The activity of every user a source has seen sign in, by user id. Most users of a directory
 * signed in once in the log's reach and never failed a second factor: for them the sign-in itself is
 * kept, and a `UserActivity` is made only once there is more to keep (a hundred thousand users,
 * about 13 MiB less).
 */
export class ActivityStore {
  readonly #byUser = new Map<string, SignIn | UserActivity>();
  readonly #max: number;
  readonly #history: number;
  /** Grows whenever a user's latest sign-in (or failures) change. */
  version = 0;

  constructor(maxUsers: number, history = 10) {
    this.#max = maxUsers;
    this.#history = history;
  }

  /** The user's latest successful sign-in. Ids are matched without regard to case (Okta's are mixed-case). */
  lastOf(userId: string): SignIn | undefined {
    const v = this.#byUser.get(lower(userId));
    return v instanceof UserActivity ? v.last : v;
  }

  /** The user's activity (made for the asking when only one sign-in is kept). */
  get(userId: string): UserActivity | undefined {
    const v = this.#byUser.get(lower(userId));
    return v === undefined || v instanceof UserActivity ? v : UserActivity.of(v, this.#history);
  }

  /** The activity the first of these lower-cased user ids names. */
  find(ids: readonly string[]): UserActivity | undefined {
    for (const id of ids) {
      const a = this.get(id);
      if (a) return a;
    }
    return undefined;
  }

  #activity(userId: string): UserActivity | undefined {
    const v = this.#byUser.get(userId);
    if (v instanceof UserActivity) return v;
    if (v === undefined && this.#byUser.size >= this.#max) return undefined;
    const a = v === undefined ? new UserActivity() : UserActivity.of(v, this.#history);
    this.#byUser.set(userId, a);
    return a;
  }

  signIn(id: string, s: SignIn, history: number): void {
    const userId = lower(id);
    const v = this.#byUser.get(userId);
    if (v === undefined) {
      if (this.#byUser.size >= this.#max) return;
      this.#byUser.set(userId, s);
      this.version++;
      return;
    }
    if (!(v instanceof UserActivity) && v.at === s.at && v.ip === s.ip) {
      // The same sign-in again, with more known about it.
      this.#byUser.set(userId, s);
      this.version++;
      return;
    }
    if (this.#activity(userId)?.record(s, history)) this.version++;
  }

  mfaFailure(id: string, at: number): void {
    const a = this.#activity(lower(id));
    if (!a) return;
    a.mfaFailure(at);
    this.version++;
  }

  get size(): number {
    return this.#byUser.size;
  }
}

/** Entra ID Protection's view of a risky user (or service principal). */
export interface EntraRisk {
  readonly id: string;
  /** `userPrincipalName` (users) or `appId` (service principals). */
  readonly login: string | undefined;
  /** `riskLevel`: `none`, `low`, `medium`, `high`, `hidden`, `unknownFutureValue`. */
  readonly level: string;
  /** `riskState`: `none`, `atRisk`, `confirmedCompromised`, `remediated`, `dismissed`, `confirmedSafe`, `unknownFutureValue`. */
  readonly state: string;
  /** `riskDetail` (`none`, `adminDismissedAllRiskForUser`, `userPerformedSecuredPasswordReset`, …). */
  readonly detail: string;
  /** `riskLastUpdatedDateTime`, epoch ms. */
  readonly updatedAt: number | undefined;
  /** `isProcessing`: Identity Protection is still applying a change. */
  readonly processing: boolean;
  readonly deleted: boolean;
}

/** One Identity Protection risk detection. */
export interface EntraDetection {
  readonly id: string;
  readonly userId: string;
  /** `riskEventType` (`unfamiliarFeatures`, `leakedCredentials`, `impossibleTravel`, …). */
  readonly type: string;
  readonly level: string;
  readonly state: string;
  readonly detail: string;
  /** `detectionTimingType`: `notDefined`, `realtime`, `nearRealtime`, `offline`. */
  readonly timing: string | undefined;
  /** `activity`: `signin`, `user`. */
  readonly activity: string | undefined;
  readonly activityAt: number | undefined;
  readonly detectedAt: number | undefined;
  readonly ip: string | undefined;
  /** `City, State, CC` of the detection's sign-in, as far as known. */
  readonly location: string | undefined;
}

/** Okta Identity Threat Protection's view of a user, from `user.risk.detect` and `GET /users/{id}/risk`. */
export interface OktaRisk {
  /** `LOW`, `MEDIUM`, `HIGH` (or `NONE`). */
  readonly level: string;
  readonly previous: string | undefined;
  /** The detection that changed it (`Session Influenced User Risk`, `Entity Critical Event`, …). */
  readonly detection: string | undefined;
  readonly reasons: string | undefined;
  /** `OKTA`, or the partner that reported it. */
  readonly issuer: string | undefined;
  /** When Okta published the change (or vigil read the level), epoch ms. */
  readonly at: number;
  /** The System Log event's `uuid`, when the level came from one. */
  readonly eventId: string | undefined;
  /** `reason` of the user's risk object, when it was read. */
  readonly reason: string | undefined;
}

/** Lower-cased lookup keys of a user: id, login and e-mail. */
export function userKeys(u: Pick<IdentityUser, "id" | "login" | "email">): string[] {
  const out = [u.id.toLowerCase()];
  for (const k of [u.login, u.email]) if (k !== undefined && !out.includes(k.toLowerCase())) out.push(k.toLowerCase());
  return out;
}
