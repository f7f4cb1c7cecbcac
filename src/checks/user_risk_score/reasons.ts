/**
 * The reason codes of user_risk_score, stable strings documented one by one in docs/checks.md.
 */
export const USER_RISK_REASONS = {
  /** The user's risk is high (a provider's level, or the computed score at or above `thresholds.high`). */
  USER_RISK_HIGH: "USER_RISK_HIGH",
  /** The user's risk is medium. */
  USER_RISK_MEDIUM: "USER_RISK_MEDIUM",
  /** A provider rates the user's risk low (informational: low risk passes). */
  USER_RISK_LOW: "USER_RISK_LOW",
  /** Entra ID Protection: an admin confirmed the user compromised (`riskState: confirmedCompromised`): high whatever the level. */
  USER_CONFIRMED_COMPROMISED: "USER_CONFIRMED_COMPROMISED",
  /** Earlier risk was resolved (`dismissed`, `remediated`, `confirmedSafe`): informational, the user passes. */
  USER_RISK_RESOLVED: "USER_RISK_RESOLVED",
  /** One of the user's latest Identity Protection detections (type, timing, time, address, place, id). */
  USER_RISK_DETECTION: "USER_RISK_DETECTION",
  /** Entra reports the level `hidden` (the tenant's licence does not show it): unknown. */
  USER_RISK_HIDDEN: "USER_RISK_HIDDEN",
  /** A provider reports a level or state vigil does not know: unknown. */
  USER_RISK_UNKNOWN_VALUE: "USER_RISK_UNKNOWN_VALUE",
  /** Computed: consecutive sign-ins too far apart for the time between them. */
  USER_IMPOSSIBLE_TRAVEL: "USER_IMPOSSIBLE_TRAVEL",
  /** Computed: repeated failed second-factor attempts within the window. */
  USER_MFA_FAILURES: "USER_MFA_FAILURES",
  /** Computed: a sign-in from a country the user had not signed in from. */
  USER_NEW_COUNTRY: "USER_NEW_COUNTRY",
  /** Computed: a sign-in from a configured risky network. */
  USER_RISKY_NETWORK: "USER_RISKY_NETWORK",
  /** Computed: the account's password was changed or reset recently. */
  USER_RECENTLY_RESET: "USER_RECENTLY_RESET",
  /** Computed: a provider's own level, counted as points. */
  USER_PROVIDER_RISK: "USER_PROVIDER_RISK",
  /** The account cannot sign in (disabled, suspended, deactivated): informational, never a risk of its own. */
  USER_ACCOUNT_DISABLED: "USER_ACCOUNT_DISABLED",
  /** The subject names no user the sources can look up (no id, login or e-mail): unknown. */
  USER_NOT_FOUND: "USER_NOT_FOUND",
  /** The tenant lacks the licence the provider's API needs (Entra ID P1/P2, Workload ID Premium): unknown, not retried. */
  USER_RISK_NOT_LICENSED: "USER_RISK_NOT_LICENSED",
  /** The provider refused vigil: credentials, or a missing permission or scope (named): unknown, not retried. */
  USER_RISK_PERMISSION_DENIED: "USER_RISK_PERMISSION_DENIED",
  /** The provider could not be read within the run's deadline (down, throttling, 5xx): unknown. */
  USER_RISK_SOURCE_UNAVAILABLE: "USER_RISK_SOURCE_UNAVAILABLE",
  /** The provider answered malformed or oversized data: unknown. */
  USER_RISK_SOURCE_ERROR: "USER_RISK_SOURCE_ERROR",
  /** A service principal's risk is high (Entra ID Protection for workload identities). */
  WORKLOAD_RISK_HIGH: "WORKLOAD_RISK_HIGH",
  /** A service principal's risk is medium. */
  WORKLOAD_RISK_MEDIUM: "WORKLOAD_RISK_MEDIUM",
  /** A service principal was confirmed compromised: high whatever the level. */
  WORKLOAD_CONFIRMED_COMPROMISED: "WORKLOAD_CONFIRMED_COMPROMISED",
} as const;

export type UserRiskCode = (typeof USER_RISK_REASONS)[keyof typeof USER_RISK_REASONS];

/** One line per code, for `vigil checks` and the registry. */
export const USER_RISK_DOCS: Readonly<Record<UserRiskCode, string>> = {
  USER_RISK_HIGH: "The user's risk is high: a provider's level, or the computed score at or above thresholds.high.",
  USER_RISK_MEDIUM: "The user's risk is medium.",
  USER_RISK_LOW: "A provider rates the user's risk low (informational).",
  USER_CONFIRMED_COMPROMISED: "Entra ID Protection: the user was confirmed compromised; high whatever the level.",
  USER_RISK_RESOLVED: "Earlier risk was dismissed, remediated or confirmed safe (informational).",
  USER_RISK_DETECTION: "One of the user's latest Identity Protection detections.",
  USER_RISK_HIDDEN: "Entra reports the level hidden (the licence does not show it): unknown.",
  USER_RISK_UNKNOWN_VALUE: "A provider reports a level or state vigil does not know: unknown.",
  USER_IMPOSSIBLE_TRAVEL: "Computed: consecutive sign-ins too far apart for the time between them.",
  USER_MFA_FAILURES: "Computed: repeated failed second-factor attempts within the window.",
  USER_NEW_COUNTRY: "Computed: a sign-in from a country the user had not signed in from.",
  USER_RISKY_NETWORK: "Computed: a sign-in from a configured risky network.",
  USER_RECENTLY_RESET: "Computed: the account's password was changed or reset recently.",
  USER_PROVIDER_RISK: "Computed: a provider's own level, counted as points.",
  USER_ACCOUNT_DISABLED: "The account cannot sign in (disabled, suspended, deactivated); informational.",
  USER_NOT_FOUND: "The subject names no user the sources can look up: unknown.",
  USER_RISK_NOT_LICENSED: "The tenant lacks the licence the provider's API needs: unknown, not retried.",
  USER_RISK_PERMISSION_DENIED: "The provider refused vigil (credentials, or a missing permission or scope, named): unknown.",
  USER_RISK_SOURCE_UNAVAILABLE: "The provider could not be read within the run's deadline: unknown.",
  USER_RISK_SOURCE_ERROR: "The provider answered malformed or oversized data: unknown.",
  WORKLOAD_RISK_HIGH: "A service principal's risk is high.",
  WORKLOAD_RISK_MEDIUM: "A service principal's risk is medium.",
  WORKLOAD_CONFIRMED_COMPROMISED: "A service principal was confirmed compromised; high whatever the level.",
};
