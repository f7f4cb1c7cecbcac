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

/** What vigil has seen of one user's sign-ins, bounded. */
export class UserActivity {
  /** The latest successful sign-in. Replaced (never changed) when a later one arrives. */
  last: SignIn | undefined = undefined;
  /** Recent successful sign-ins, oldest first, at most the source's `history`. */
  recent: SignIn[] = [];
  countries: CountrySeen[] = [];
  /** Successful sign-ins recorded. */
  seen = 0;
  /** Times of failed second-factor attempts, oldest first. */
  mfaFailures: number[] = [];

  /** Records a successful sign-in; true when it is the new latest one. */
  record(s: SignIn, history: number): boolean {
    // Sign-in logs arrive late and out of order: insert by time.
    let i = this.recent.length;
    while (i > 0 && this.recent[i - 1]!.at > s.at) i--;
    const same = i > 0 ? this.recent[i - 1]! : undefined;
    if (same && same.at === s.at && same.ip === s.ip) {
      // The same sign-in again, with more known about it (a factor verified after the session began).
      this.recent[i - 1] = s;
      if (this.last !== same) return false;
      this.last = s;
      return true;
    }
    this.recent.splice(i, 0, s);
    if (this.recent.length > history) this.recent.splice(0, this.recent.length - history);
    if (s.country !== undefined) {
      const known = this.countries.find((c) => c.code === s.country);
      if (!known) {
        if (this.countries.length < MAX_COUNTRIES) this.countries.push({ code: s.country, first: s.at, prior: this.#priorTo(s.at) });
      } else if (s.at < known.first) {
        known.first = s.at;
        known.prior = this.#priorTo(s.at);
      }
    }
    this.seen++;
    if (this.last === undefined || s.at >= this.last.at) {
      this.last = s;
      return true;
    }
    return false;
  }

  #priorTo(at: number): number {
    // Sign-ins older than the kept ones count too: every one seen before `at` was before it.
    const later = this.recent.filter((r) => r.at >= at).length;
    return Math.max(0, this.seen - later + 1);
  }

  mfaFailure(at: number): void {
    let i = this.mfaFailures.length;
    while (i > 0 && this.mfaFailures[i - 1]! > at) i--;
    this.mfaFailures.splice(i, 0, at);
    if (this.mfaFailures.length > MAX_MFA_FAILURES) this.mfaFailures.shift();
  }
}

/** The activity of every user a source has seen sign in, by user id (and by login, where the log names it). */
export class ActivityStore {
  readonly #byUser = new Map<string, UserActivity>();
  readonly #byLogin = new Map<string, string>();
  readonly #max: number;
  /** Grows whenever a user's latest sign-in (or failures) change. */
  version = 0;

  constructor(maxUsers: number) {
    this.#max = maxUsers;
  }

  /** Ids are matched without regard to case (Okta's are mixed-case, subjects' lookup keys lower-case). */
  get(userId: string): UserActivity | undefined {
    return this.#byUser.get(userId.toLowerCase());
  }

  /** The activity any of these lower-cased keys (user id, login) names. */
  find(keys: readonly string[]): UserActivity | undefined {
    for (const k of keys) {
      const a = this.#byUser.get(k) ?? this.#byUser.get(this.#byLogin.get(k) ?? "");
      if (a) return a;
    }
    return undefined;
  }

  #of(id: string, login: string | undefined): UserActivity | undefined {
    const userId = id.toLowerCase();
    let a = this.#byUser.get(userId);
    if (!a) {
      if (this.#byUser.size >= this.#max) return undefined;
      a = new UserActivity();
      this.#byUser.set(userId, a);
      if (login !== undefined) this.#byLogin.set(login.toLowerCase(), userId);
    }
    return a;
  }

  signIn(userId: string, s: SignIn, history: number, login?: string): void {
    const a = this.#of(userId, login);
    if (a?.record(s, history)) this.version++;
  }

  mfaFailure(userId: string, at: number, login?: string): void {
    const a = this.#of(userId, login);
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
