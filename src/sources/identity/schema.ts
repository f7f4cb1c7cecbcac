/**
 * How vigil reaches an identity provider: the connection and sync settings an inventory and the
 * user_risk_score check both write under `type: entra|okta`. Everything here decides what a sync
 * fetches, so two entries with the same values share one source (one directory sync, one sign-in
 * read, one System Log cursor per tick) whatever else they say.
 */
import { z } from "zod";
import { boundedDuration, callTimeout } from "../../plugin/schema.ts";
import { graphAppShape } from "../graph/config.ts";
import { oktaAuthSchema, oktaOrgUrl } from "../okta/config.ts";

const MIB = 1024 * 1024;
const DAY = 86_400_000;

/** Bounds of one sync, shared by both providers. */
export const identityScanShape = {
  /** Deadline of one request (token requests included), up to 5m. Default `30s`. */
  timeout: callTimeout("30s"),
  /** Bound of a whole sync: every page, retries and their waits. Default `5m`. */
  scan_timeout: boundedDuration({ min: 1_000, max: 60 * 60_000, fallback: "5m", message: 'expected a duration between 1s and 1h, like "5m"' }),
  /** Largest answer accepted, in bytes; a larger one is refused. Default 16 MiB. */
  max_response_bytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(256 * MIB)
    .default(16 * MIB),
  /** Most users (and service principals) one directory may hold; more is refused rather than held in memory. Default 1,000,000. */
  max_users: z.number().int().min(1).max(10_000_000).default(1_000_000),
  /**
   * After the first full listing only changes are fetched (Graph `users/delta`, Okta `lastUpdated`);
   * the whole directory is listed again this often to catch drift. Graph delta tokens of directory
   * objects live 7 days. Default `24h`.
   */
  full_resync: boundedDuration({ min: 60_000, max: 7 * DAY, fallback: "24h", message: 'expected a duration between 1m and 7d, like "24h"' }),
};

/** Entra sign-in logs (`/auditLogs/signIns`): where the perimeter attributes and the computed score's facts come from. */
export const entraSignInsSchema = z
  .object({
    /**
     * `beta` (default) or `v1.0`. Only beta publishes whether a sign-in was satisfied with MFA
     * (`authenticationRequirement`, `authenticationDetails`); with `v1.0` MFA is known only where a
     * Conditional Access policy enforced it, and is otherwise left unset (`MFA_UNKNOWN`).
     */
    api: z.enum(["beta", "v1.0"]).default("beta"),
    /** How far back the first read goes (the log keeps 30 days with P1/P2). Default `24h`. */
    lookback: boundedDuration({ min: 60_000, max: 30 * DAY, fallback: "24h", message: 'expected a duration between 1m and 30d, like "24h"' }),
    /** Each later read starts this long before the newest sign-in seen, for entries the log publishes late. Default `10m`. */
    overlap: boundedDuration({ min: 0, max: 6 * 3_600_000, fallback: "10m", message: 'expected a duration up to 6h, like "10m"' }),
    /** `status.errorCode`s that count as a failed second factor (AADSTS500121: authentication failed during the strong authentication request). Default `[500121]`. */
    mfa_failure_codes: z.array(z.number().int().min(1)).default([500121]),
    /** Successful sign-ins kept per user for impossible travel and new countries. Default 10. */
    history: z.number().int().min(1).max(100).default(10),
    /** Most sign-ins one read may return; more is refused. Default 2,000,000. */
    max_sign_ins: z.number().int().min(1).max(50_000_000).default(2_000_000),
  })
  .strict();

export const entraConnectionShape = {
  type: z.literal("entra"),
  ...graphAppShape,
  ...identityScanShape,
  /** Sign-in log reading (see `entraSignInsSchema`). */
  sign_ins: entraSignInsSchema.prefault({}),
};

/** Scopes a service app requests by default to read an org: users, groups and the System Log. */
export const OKTA_READ_SCOPES: readonly string[] = ["okta.users.read", "okta.groups.read", "okta.logs.read"];

/** Okta's System Log (`/api/v1/logs`), polled with its `next` cursor for sign-ins and MFA. */
export const oktaSignInsSchema = z
  .object({
    /** How far back the first poll starts (the System Log keeps 90 days). Default `24h`. */
    lookback: boundedDuration({ min: 60_000, max: 90 * DAY, fallback: "24h", message: 'expected a duration between 1m and 90d, like "24h"' }),
    /** Successful sign-ins kept per user for impossible travel and new countries. Default 10. */
    history: z.number().int().min(1).max(100).default(10),
    /** Most events one poll may return; more is read on the next tick. Default 200,000. */
    max_events: z.number().int().min(1_000).max(10_000_000).default(200_000),
  })
  .strict();

export const oktaConnectionShape = {
  type: z.literal("okta"),
  /** The org's URL, e.g. `https://example.okta.com`. Required. */
  org_url: oktaOrgUrl(),
  /**
   * `{type: ssws, token}` or `{type: oauth, client_id, private_key, key_id?, scopes?, token_url?}`.
   * OAuth scopes default to `[okta.users.read, okta.groups.read, okta.logs.read]`; the risk source
   * also needs `okta.userRisk.read` when it reads users' risk objects.
   */
  auth: oktaAuthSchema(OKTA_READ_SCOPES),
  ...identityScanShape,
  /** Users per page of `/api/v1/users` (Okta's limit is 200). Default 200. */
  page_size: z.number().int().min(1).max(200).default(200),
  /** System Log polling (see `oktaSignInsSchema`). */
  sign_ins: oktaSignInsSchema.prefault({}),
};

const entraConnection = z.object(entraConnectionShape).strict();
const oktaConnection = z.object(oktaConnectionShape).strict();
export type EntraConnection = z.output<typeof entraConnection>;
export type OktaConnection = z.output<typeof oktaConnection>;
export type IdentityConnection = EntraConnection | OktaConnection;

/** The keys of each connection that decide what a sync fetches (the source's shared-resources key). */
export const IDENTITY_CONNECTION_KEYS: Readonly<Record<IdentityConnection["type"], readonly string[]>> = {
  entra: Object.keys(entraConnectionShape),
  okta: Object.keys(oktaConnectionShape),
};
