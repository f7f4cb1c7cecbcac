/**
 * The words of vigil as types: subjects, check results, risks, access levels and decisions.
 * Everything here is plain data (JSON-serialisable) so it can cross the queue and the store.
 */

/** Access levels, from most to least permissive. */
export const ACCESS_LEVELS = ["full_access", "read_only", "deny"] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

/** Risk levels, from lowest to highest. */
export const RISK_LEVELS = ["low", "medium", "high"] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

/** Outcome of one check for one subject. */
export const CHECK_STATUSES = ["pass", "warn", "fail", "unknown"] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export const SUBJECT_KINDS = ["workload", "user", "device", "session"] as const;
export type SubjectKind = (typeof SUBJECT_KINDS)[number];

/** Something whose access can change. */
export interface Subject {
  /** Stable identifier, unique across inventories. */
  readonly id: string;
  readonly kind: SubjectKind;
  /** Identity as the enforcement points know it: a SPIFFE ID, a mesh principal, a user login. */
  readonly identity?: string;
  /** Free attributes read by checks (e.g. `mfa: true`, `managed: true`, `country: "DE"`). */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Labels used by selectors. */
  readonly labels: Readonly<Record<string, string>>;
}

/** A stable reason code with its human message. */
export interface Reason {
  readonly code: string;
  readonly message: string;
}

/** What one check concluded about one subject. Times are epoch milliseconds. */
export interface CheckResult {
  readonly check: string;
  readonly subject: string;
  readonly status: CheckStatus;
  /** Risk implied by this result; defaults from the status (pass→low, warn→medium, fail→high). */
  readonly risk?: RiskLevel;
  /** Optional 0..100 score, used by weighted scoring. */
  readonly score?: number;
  readonly reasons: readonly Reason[];
  readonly evidence?: Readonly<Record<string, unknown>>;
  readonly observed_at: number;
  /** After this instant the result no longer stands on its own. */
  readonly expires_at: number;
  /** The check asks to be run again at this instant (e.g. a certificate's warning point). */
  readonly next_run_at?: number;
  /** `pull` when a check plugin produced it, `push` when it arrived as a signal. */
  readonly source?: "pull" | "push";
  /**
   * For pushed results: the signal stream it belongs to (e.g. one Alertmanager alert). Results of
   * different streams stand side by side and the worst current one counts, so one alert resolving
   * does not clear another that still fires. Absent: the single default stream.
   */
  readonly stream?: string;
}

/** Key under which the store keeps a result: one per (subject, check, source and stream). */
export function resultSlot(r: Pick<CheckResult, "source" | "stream">): string {
  return r.source === "push" && r.stream ? `push:${r.stream}` : (r.source ?? "pull");
}

/** The access decided for one subject under one policy. */
export interface Decision {
  readonly policy: string;
  readonly subject: string;
  readonly access: AccessLevel;
  readonly risk: RiskLevel;
  readonly reasons: readonly Reason[];
  /** Increases by one every time `access` changes. */
  readonly generation: number;
  readonly decided_at: number;
  /** Per-check status and risk that led here. */
  readonly evidence: Readonly<Record<string, unknown>>;
  /** Exempt subjects are evaluated and recorded but never enforced on. */
  readonly exempt: boolean;
}

/** Per (policy, subject) memory the decision rules need between evaluations. */
export interface DecisionState {
  /** The decision currently in force. */
  readonly decision: Decision;
  /** Access the latest evaluation pointed at (may differ from `decision.access` under hysteresis). */
  readonly candidate: AccessLevel;
  /** Consecutive evaluations that pointed at `candidate`. */
  readonly streak: number;
  /** When `decision.access` last changed (epoch ms). */
  readonly changed_at: number;
}

export function riskRank(risk: RiskLevel): number {
  return RISK_LEVELS.indexOf(risk);
}

export function accessRank(access: AccessLevel): number {
  return ACCESS_LEVELS.indexOf(access);
}

export function maxRisk(a: RiskLevel, b: RiskLevel): RiskLevel {
  return riskRank(a) >= riskRank(b) ? a : b;
}

/** Default risk for a check status (rule 1 of the decision rules; `unknown` is resolved by the fail mode). */
export function statusRisk(status: Exclude<CheckStatus, "unknown">): RiskLevel {
  return status === "pass" ? "low" : status === "warn" ? "medium" : "high";
}
