/**
 * What the identity inventories (Entra ID, Okta) share: a directory user and the facts of their
 * latest sign-in as a subject, under attribute names the perimeter checks read (configurable), and a
 * listing that rebuilds only the subjects whose user or sign-in changed.
 *
 * Subjects: id `<provider>:<user id>`, kind `user`, identity the login (UPN); labels `source`,
 * `account` (`enabled`/`disabled`) and the provider's own (`user_type`, `status`).
 */
import { z } from "zod";
import type { Subject } from "../../policy/model.ts";
import { boundedDuration } from "../../plugin/schema.ts";
import type { Directory } from "../../sources/identity/directory.ts";
import type { ActivityStore, IdentityUser, SignIn } from "../../sources/identity/model.ts";
import type { SharedScan } from "../../sources/common/scan.ts";
import type { Logger } from "../../telemetry/log.ts";
import { errorMessage } from "../../errors.ts";
import { scrub } from "../../util/redact.ts";

/**
 * The facts an identity inventory writes, and the attribute each goes to by default (`false`: left
 * out unless named). The defaults are the attributes the perimeter checks read (`mfa`/`amr`,
 * `device_managed`, `country`, `authenticated_at`), what device_compliance matches users and their
 * devices by (`user_principal_name`, `email`, `device_id`) and what the provider's actions take the
 * user id from (`entra_id`, `okta_id`). A 100,000-user directory keeps every attribute of every
 * subject in memory, so the descriptive facts are opt-in.
 */
export const FACT_DEFAULTS = {
  /** The provider's user id (`entra_id` or `okta_id`, the default the actions read). */
  id: undefined,
  user_principal_name: "user_principal_name",
  email: "email",
  account_enabled: "account_enabled",
  /** Whether the latest successful sign-in was satisfied with MFA (boolean). */
  mfa: "mfa",
  /** Its RFC 8176 methods (`pwd`, `mfa`, `otp`, `hwk`, …). */
  amr: "amr",
  /** Its country, ISO 3166-1 alpha-2. */
  country: "country",
  /** Its time (ISO 8601): what session_age judges against `session_duration`. */
  signed_in_at: "authenticated_at",
  /** The device's id at the provider (Entra: the device id Intune calls `azureADDeviceId`). */
  device_id: "device_id",
  /** Whether the provider saw the device as managed (Entra `isManaged`, Okta device `managed`). */
  device_managed: "device_managed",
  /** Entra: whether Intune reported the device compliant at sign-in. */
  device_compliant: "device_compliant",
  display_name: false,
  /** Entra `enabled`/`disabled`, Okta's status (`ACTIVE`, `SUSPENDED`, …). */
  account_status: false,
  password_changed_at: false,
  city: false,
  ip_address: false,
  device_name: false,
} as const;

export type Fact = keyof typeof FACT_DEFAULTS;

const attributeName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, { error: "expected an attribute name (letters, digits, _)" });

/** `attributes:` — fact → attribute name, or `false` to leave the fact out. */
export const attributeMappingSchema = z
  .object(Object.fromEntries(Object.keys(FACT_DEFAULTS).map((k) => [k, z.union([attributeName, z.literal(false)]).optional()])) as Record<Fact, z.ZodOptional<z.ZodUnion<[typeof attributeName, z.ZodLiteral<false>]>>>)
  .strict()
  .prefault({});

export type AttributeMapping = z.output<typeof attributeMappingSchema>;

/** Keys every identity inventory takes besides its connection. */
export const identityInventoryShape = {
  /** Fact → attribute name (or `false`); see `FACT_DEFAULTS`. */
  attributes: attributeMappingSchema,
  /** Read the sign-in log for the sign-in facts (MFA, country, device, time). Default true. */
  sign_in_facts: z.boolean().default(true),
  /** Keep accounts that cannot sign in (disabled, suspended, deactivated) as subjects. Default true. */
  include_disabled: z.boolean().default(true),
  /** How often group memberships are read again (when `groups` is set). Default `1h`. */
  groups_refresh: boundedDuration({ min: 60_000, fallback: "1h", message: 'expected a duration of at least 1m, like "1h"' }),
  /**
   * A sync younger than this is reused (the inventory is listed before every policy tick, so it
   * refreshes on the policy interval; this only joins ticks that come together). Default `30s`.
   */
  refresh: boundedDuration({ min: 1_000, fallback: "30s", message: 'expected a duration of at least 1s, like "30s"' }),
};

/** The attribute each written fact goes to. */
export function resolveMapping(mapping: AttributeMapping, idAttribute: string): ReadonlyArray<readonly [Fact, string]> {
  const out: [Fact, string][] = [];
  for (const fact of Object.keys(FACT_DEFAULTS) as Fact[]) {
    const configured = mapping[fact];
    const name = configured ?? (fact === "id" ? idAttribute : FACT_DEFAULTS[fact]);
    if (name !== false && name !== undefined) out.push([fact, name]);
  }
  return out;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** A fact's value for a user and their latest sign-in. */
function factValue(fact: Fact, u: IdentityUser, s: SignIn | undefined): unknown {
  switch (fact) {
    case "id":
      return u.id;
    case "user_principal_name":
      return u.login;
    case "email":
      return u.email;
    case "display_name":
      return u.name;
    case "account_enabled":
      return u.enabled;
    case "account_status":
      return u.status;
    case "password_changed_at":
      return iso(u.passwordChangedAt);
    case "mfa":
      return s?.mfa;
    case "amr":
      return s?.amr;
    case "country":
      return s?.country;
    case "city":
      return s?.city;
    case "ip_address":
      return s?.ip;
    case "signed_in_at":
      return iso(s?.at);
    case "device_id":
      return s?.deviceId;
    case "device_name":
      return s?.deviceName;
    case "device_managed":
      return s?.deviceManaged;
    case "device_compliant":
      return s?.deviceCompliant;
  }
}

const LABELS = new Map<string, Readonly<Record<string, string>>>();

/**
 * One shared, frozen object per distinct label set: a directory has a handful of them (source,
 * account state, user type), and a hundred thousand subjects need not carry a hundred thousand copies.
 */
export function sharedLabels(labels: Record<string, string>): Readonly<Record<string, string>> {
  const key = JSON.stringify(labels);
  const had = LABELS.get(key);
  if (had) return had;
  const frozen = Object.freeze(labels);
  if (LABELS.size < 1024) LABELS.set(key, frozen);
  return frozen;
}

/** A directory user (with their latest sign-in) as a subject. */
export function userSubject(u: IdentityUser, s: SignIn | undefined, mapping: ReadonlyArray<readonly [Fact, string]>, labels: Record<string, string>): Subject {
  const attributes: Record<string, unknown> = {};
  // Only facts with a value: a user without a sign-in carries no sign-in attributes at all.
  for (const [fact, name] of mapping) {
    const v = factValue(fact, u, s);
    if (v !== undefined) attributes[name] = v;
  }
  return { id: `${u.provider}:${u.id}`, kind: "user", identity: u.login ?? u.email ?? u.id, labels: sharedLabels(labels), attributes };
}

interface Built {
  readonly user: IdentityUser;
  readonly last: SignIn | undefined;
  readonly subject: Subject;
}

/**
 * Subjects made from a directory and its sign-in activity. Listing again with nothing changed
 * returns the same list; after a change, subjects whose user record and latest sign-in are the same
 * objects as before are reused, so an incremental sync of 100 changed users rebuilds 100 subjects,
 * not the whole directory.
 */
export class IdentitySubjects {
  #built = new Map<string, Built>();
  #list: Subject[] = [];
  #key: readonly unknown[] = [];

  list(dir: Directory<IdentityUser>, activity: ActivityStore | undefined, members: ReadonlySet<string> | undefined, accept: (u: IdentityUser) => boolean, make: (u: IdentityUser, s: SignIn | undefined) => Subject): Subject[] {
    const key = [dir, dir.version, activity, activity?.version, members];
    if (key.length === this.#key.length && key.every((k, i) => k === this.#key[i])) return this.#list;
    const next = new Map<string, Built>();
    const list: Subject[] = [];
    for (const user of dir.values()) {
      if (members && !members.has(user.id)) continue;
      if (!accept(user)) continue;
      const last = activity?.lastOf(user.id);
      const had = this.#built.get(user.id);
      const built = had && had.user === user && had.last === last ? had : { user, last, subject: make(user, last) };
      next.set(user.id, built);
      list.push(built.subject);
    }
    this.#built = next;
    this.#list = list;
    this.#key = key;
    return list;
  }
}

/**
 * Reads the sign-in activity, or gives what was last read of it when the log cannot be read now:
 * users are still listed (the perimeter checks then find their sign-in attributes missing), and the
 * log says why once per distinct failure. `what` names the log in that line ("Entra sign-in log").
 */
export function signInsOrLast(inventory: string, what: string, refreshMs: number, logger: Logger): (scan: SharedScan<ActivityStore>, signal: AbortSignal) => Promise<ActivityStore | undefined> {
  let lastError: string | undefined;
  return async (scan, signal) => {
    try {
      const value = (await scan.get(refreshMs, signal)).value;
      lastError = undefined;
      return value;
    } catch (err) {
      const message = scrub(errorMessage(err));
      if (message !== lastError) {
        lastError = message;
        logger.warn({ inventory }, `${what} cannot be read; users are listed without their sign-in facts: ${message}`);
      }
      return scan.last?.value;
    }
  };
}
