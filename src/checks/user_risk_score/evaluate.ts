/**
 * The pure half of user_risk_score: what each source's data says about one subject
 * (`entraVerdict`, `oktaVerdict`, and the computed score of `computed.ts`), and how the verdicts
 * combine (`combine`). Provider verdicts are taken as the provider gives them, never re-scored; the
 * stricter of the verdicts wins. Order of badness: high (fail) > unknown > medium (warn) > low
 * (pass): a source that cannot be read leaves the subject unknown unless another already says high.
 */
import type { CheckStatus, Reason, RiskLevel } from "../../policy/model.ts";
import type { EntraDetection, EntraRisk, OktaRisk } from "../../sources/identity/model.ts";
import type { ComputedScore, ProviderLevel } from "./computed.ts";
import { USER_RISK_REASONS as R } from "./reasons.ts";

/** What Identity Protection's `riskDetail` values mean, for reasons. Unknown values are shown as they come. */
export const RISK_DETAILS: Readonly<Record<string, string>> = {
  none: "no action taken yet",
  adminGeneratedTemporaryPassword: "an admin generated a temporary password",
  userPerformedSecuredPasswordChange: "the user changed their password securely",
  userPerformedSecuredPasswordReset: "the user reset their password securely",
  adminConfirmedSigninSafe: "an admin confirmed the sign-in safe",
  aiConfirmedSigninSafe: "Identity Protection's model confirmed the sign-in safe",
  userPassedMFADrivenByRiskBasedPolicy: "the user passed MFA required by a risk-based policy",
  adminDismissedAllRiskForUser: "an admin dismissed all risk for the user",
  adminConfirmedSigninCompromised: "an admin confirmed a sign-in compromised",
  hidden: "hidden (the tenant's licence does not show it)",
  adminConfirmedUserCompromised: "an admin confirmed the user compromised",
  unknownFutureValue: "a value this version of Graph does not name",
  m365DAdminDismissedDetection: "an admin dismissed the detection in Microsoft Defender",
  adminConfirmedServicePrincipalCompromised: "an admin confirmed the service principal compromised",
  adminDismissedAllRiskForServicePrincipal: "an admin dismissed all risk for the service principal",
  userChangedPasswordOnPremises: "the user changed their password on premises",
  adminDismissedRiskForSignIn: "an admin dismissed the sign-in's risk",
  adminConfirmedAccountSafe: "an admin confirmed the account safe",
};

const RESOLVED_STATES = new Set(["dismissed", "remediated", "confirmedSafe"]);
const LEVELS: readonly ProviderLevel[] = ["none", "low", "medium", "high"];

/** One source's word on a subject: a level, or unknown with why. */
export interface Verdict {
  readonly source: string;
  readonly kind: "entra" | "okta" | "computed";
  /** `unknown` when the source could not say. */
  readonly level: ProviderLevel | "unknown";
  /** Reasons that explain the level (the headline first). */
  readonly reasons: readonly Reason[];
  /** Informational reasons (resolved risk) that do not raise the level. */
  readonly notes: readonly Reason[];
  readonly evidence: Readonly<Record<string, unknown>>;
  /** How old the data is, ms. */
  readonly ageMs?: number;
}

/** Who the verdict is about: a user, or a workload's service principal. */
export type Who = "user" | "workload";

const detailText = (detail: string) => RISK_DETAILS[detail] ?? detail;

function headline(who: Who, level: "medium" | "high"): string {
  if (who === "workload") return level === "high" ? R.WORKLOAD_RISK_HIGH : R.WORKLOAD_RISK_MEDIUM;
  return level === "high" ? R.USER_RISK_HIGH : R.USER_RISK_MEDIUM;
}

function describeDetection(d: EntraDetection): string {
  const parts = [`${d.type}`];
  const how = [d.timing, d.activity].filter((x) => x !== undefined).join(", ");
  if (how) parts.push(`(${how})`);
  const at = d.activityAt ?? d.detectedAt;
  if (at !== undefined) parts.push(`at ${new Date(at).toISOString()}`);
  if (d.ip !== undefined) parts.push(`from ${d.ip}`);
  if (d.location !== undefined) parts.push(`in ${d.location}`);
  parts.push(`— level ${d.level}, state ${d.state}${d.detail !== "none" ? ` (${detailText(d.detail)})` : ""}, id ${d.id}`);
  return parts.join(" ");
}

/**
 * Entra ID Protection's word on a user (or service principal): `confirmedCompromised` is high
 * whatever the level; `dismissed`, `remediated` and `confirmedSafe` resolve earlier risk (none, with
 * a note); `atRisk` takes the level (`hidden`: unknown); a user Identity Protection does not list
 * carries no risk.
 */
export function entraVerdict(source: string, risk: EntraRisk | undefined, detections: readonly EntraDetection[], who: Who, scannedAt: number, now: number): Verdict {
  const ageMs = Math.max(0, now - scannedAt);
  const subject = who === "workload" ? "the service principal" : "the user";
  const base = { source, kind: "entra" as const, ageMs };
  if (!risk || risk.deleted) {
    return { ...base, level: "none", reasons: [], notes: [], evidence: { level: "none", state: "none", detail: "none", listed: false } };
  }
  const evidence = {
    level: risk.level,
    state: risk.state,
    detail: risk.detail,
    ...(risk.updatedAt !== undefined ? { updated_at: new Date(risk.updatedAt).toISOString() } : {}),
    ...(risk.processing ? { processing: true } : {}),
    detections: detections.map((d) => d.id),
  };
  const detail = risk.detail !== "none" ? `; ${detailText(risk.detail)}` : "";
  const processing = risk.processing ? " (Identity Protection is still applying a change)" : "";
  const detectionReasons = detections.filter((d) => !RESOLVED_STATES.has(d.state)).map((d) => ({ code: R.USER_RISK_DETECTION, message: `${source}: detection ${describeDetection(d)}` }));
  if (risk.state === "confirmedCompromised") {
    const code = who === "workload" ? R.WORKLOAD_CONFIRMED_COMPROMISED : R.USER_CONFIRMED_COMPROMISED;
    return { ...base, level: "high", reasons: [{ code, message: `${source}: ${subject} was confirmed compromised (riskLevel ${risk.level}${detail})${processing}` }, ...detectionReasons], notes: [], evidence };
  }
  if (RESOLVED_STATES.has(risk.state)) {
    return { ...base, level: "none", reasons: [], notes: [{ code: R.USER_RISK_RESOLVED, message: `${source}: earlier risk was ${risk.state === "confirmedSafe" ? "confirmed safe" : risk.state}${detail}${processing}` }], evidence };
  }
  if (risk.state === "none") return { ...base, level: "none", reasons: [], notes: [], evidence };
  if (risk.state !== "atRisk") {
    return { ...base, level: "unknown", reasons: [{ code: R.USER_RISK_UNKNOWN_VALUE, message: `${source}: riskState ${JSON.stringify(risk.state)} is not one vigil knows (riskLevel ${risk.level}${detail})` }], notes: [], evidence };
  }
  switch (risk.level) {
    case "high":
    case "medium":
      return { ...base, level: risk.level, reasons: [{ code: headline(who, risk.level), message: `${source}: ${subject} is at risk, riskLevel ${risk.level}${detail}${processing}` }, ...detectionReasons], notes: [], evidence };
    case "low":
      return { ...base, level: "low", reasons: [{ code: R.USER_RISK_LOW, message: `${source}: ${subject} is at risk, riskLevel low${detail}` }, ...detectionReasons], notes: [], evidence };
    case "none":
      return { ...base, level: "none", reasons: [], notes: [], evidence };
    case "hidden":
      return { ...base, level: "unknown", reasons: [{ code: R.USER_RISK_HIDDEN, message: `${source}: ${subject} is at risk but the level is hidden (Identity Protection shows levels with Microsoft Entra ID P2)` }], notes: [], evidence };
    default:
      return { ...base, level: "unknown", reasons: [{ code: R.USER_RISK_UNKNOWN_VALUE, message: `${source}: riskLevel ${JSON.stringify(risk.level)} is not one vigil knows` }], notes: [], evidence };
  }
}

/** Okta Identity Threat Protection's word on a user: its level (`NONE`, `LOW`, `MEDIUM`, `HIGH`) as reported. */
export function oktaVerdict(source: string, risk: OktaRisk | undefined, scannedAt: number, now: number): Verdict {
  const ageMs = Math.max(0, now - scannedAt);
  const base = { source, kind: "okta" as const, ageMs };
  if (!risk) return { ...base, level: "none", reasons: [], notes: [], evidence: { level: "NONE", reported: false } };
  const level = risk.level.toLowerCase();
  const evidence = {
    level: risk.level,
    ...(risk.previous !== undefined ? { previous_level: risk.previous } : {}),
    ...(risk.detection !== undefined ? { detection: risk.detection } : {}),
    ...(risk.reasons !== undefined ? { reasons: risk.reasons } : {}),
    ...(risk.issuer !== undefined ? { issuer: risk.issuer } : {}),
    ...(risk.reason !== undefined ? { reason: risk.reason } : {}),
    ...(risk.eventId !== undefined ? { event_id: risk.eventId } : {}),
    changed_at: new Date(risk.at).toISOString(),
  };
  const why = [risk.detection, risk.reasons, risk.reason].filter((x) => x !== undefined && x !== "").join("; ");
  const from = risk.previous !== undefined ? ` (was ${risk.previous})` : "";
  const message = `${source}: risk level ${risk.level}${from}${why ? `: ${why}` : ""}${risk.issuer !== undefined ? ` [issuer ${risk.issuer}]` : ""}`;
  if (level === "high" || level === "medium") return { ...base, level, reasons: [{ code: headline("user", level), message }], notes: [], evidence };
  if (level === "low") return { ...base, level: "low", reasons: [{ code: R.USER_RISK_LOW, message }], notes: [], evidence };
  if (level === "none") return { ...base, level: "none", reasons: [], notes: risk.previous !== undefined && risk.previous !== "NONE" ? [{ code: R.USER_RISK_RESOLVED, message }] : [], evidence };
  return { ...base, level: "unknown", reasons: [{ code: R.USER_RISK_UNKNOWN_VALUE, message: `${source}: risk level ${JSON.stringify(risk.level)} is not one vigil knows` }], notes: [], evidence };
}

/** The computed score as a verdict. */
export function computedVerdict(source: string, score: ComputedScore, ageMs: number | undefined): Verdict {
  const level: ProviderLevel = score.level === "low" ? (score.score > 0 ? "low" : "none") : score.level;
  const reasons: Reason[] =
    score.level === "low"
      ? []
      : [
          {
            code: headline("user", score.level),
            message: `${source}: score ${score.score}${score.thresholds ? `, at least ${score.level === "high" ? score.thresholds.high : score.thresholds.medium} (${score.level})` : ""}`,
          },
          ...score.contributions.map((c) => ({ code: c.code, message: c.message })),
        ];
  return {
    source,
    kind: "computed",
    level,
    reasons,
    notes: [],
    evidence: {
      score: score.score,
      level: score.level,
      contributions: score.contributions.map((c) => ({ rule: c.rule, code: c.code, source: c.source, points: c.points, weight: c.weight, ...(c.at !== undefined ? { at: new Date(c.at).toISOString() } : {}), message: c.message })),
    },
    ...(ageMs !== undefined ? { ageMs } : {}),
  };
}

/** A source that could not be read, as a verdict. */
export function errorVerdict(source: string, kind: Verdict["kind"], code: string, message: string): Verdict {
  return { source, kind, level: "unknown", reasons: [{ code, message: `${source}: ${message}` }], notes: [], evidence: { error: message } };
}

export interface SubjectRisk {
  readonly status: CheckStatus;
  /**
   * The level the result stands for. No numeric `score` is set on the result: the computed score has
   * its own scale (`thresholds`), so weighted decision scoring reads the level, and the computed score
   * travels in the evidence.
   */
  readonly risk?: RiskLevel;
  readonly reasons: readonly Reason[];
  readonly evidence: Readonly<Record<string, unknown>>;
}

const MAX_REASONS = 12;

/**
 * The verdicts of every source that applies to a subject, combined: the highest level wins; a
 * source that could not say leaves the result unknown unless another says high. `accountEnabled`
 * false adds `USER_ACCOUNT_DISABLED` without raising the risk: vigil's own deny actions disable
 * accounts, and a disabled account judged risky for it would never be restored once its risk is
 * dismissed.
 */
export function combine(verdicts: readonly Verdict[], accountEnabled: boolean | undefined): SubjectRisk {
  const known = verdicts.filter((v) => v.level !== "unknown");
  const unknown = verdicts.filter((v) => v.level === "unknown");
  const top = known.reduce<ProviderLevel>((m, v) => (LEVELS.indexOf(v.level as ProviderLevel) > LEVELS.indexOf(m) ? (v.level as ProviderLevel) : m), "none");
  const risk: RiskLevel = top === "high" ? "high" : top === "medium" ? "medium" : "low";
  const status: CheckStatus = risk === "high" ? "fail" : unknown.length > 0 ? "unknown" : risk === "medium" ? "warn" : "pass";
  const deciding = status === "unknown" ? unknown : known.filter((v) => v.level === top);
  const disabled = accountEnabled === false ? [{ code: R.USER_ACCOUNT_DISABLED, message: "the account cannot sign in (disabled, suspended or deactivated at the provider); risk is judged as for any account" }] : [];
  let reasons: Reason[] = status === "pass" ? [...verdicts.flatMap((v) => [...v.reasons, ...v.notes]), ...disabled] : [...deciding.flatMap((v) => v.reasons), ...(status === "unknown" ? known.flatMap((v) => v.reasons) : []), ...disabled];
  reasons = reasons.filter((r, i, all) => all.findIndex((x) => x.code === r.code && x.message === r.message) === i);
  if (reasons.length > MAX_REASONS) reasons = [...reasons.slice(0, MAX_REASONS), { code: reasons[MAX_REASONS]!.code, message: `…and ${reasons.length - MAX_REASONS} more` }];
  const ages = verdicts.map((v) => v.ageMs).filter((x): x is number => x !== undefined);
  const entra = verdicts.find((v) => v.kind === "entra" && v.level !== "unknown");
  const okta = verdicts.find((v) => v.kind === "okta" && v.level !== "unknown");
  const computed = verdicts.find((v) => v.kind === "computed" && v.level !== "unknown");
  const detections = (entra?.evidence.detections as string[] | undefined) ?? [];
  const evidence: Record<string, unknown> = {
    level: status === "unknown" ? "unknown" : risk,
    source: (status === "unknown" ? unknown : deciding).map((v) => v.source).join(",") || verdicts.map((v) => v.source).join(","),
    ...(entra ? { provider_level: entra.evidence.level, risk_state: entra.evidence.state, risk_detail: entra.evidence.detail } : {}),
    ...(okta ? { okta_level: okta.evidence.level } : {}),
    ...(detections.length ? { detection_ids: detections.join(",") } : {}),
    ...(computed ? { score: computed.evidence.score } : {}),
    data_age_seconds: ages.length ? Math.round(Math.max(...ages) / 1000) : null,
    ...(accountEnabled !== undefined ? { account_enabled: accountEnabled } : {}),
  };
  // A source with nothing to say (no risk, no note) is fully told by the scalars above; a hundred
  // thousand passing users need not each carry its details.
  const telling = verdicts.filter((v) => v.level !== "none" || v.notes.length > 0 || v.reasons.length > 0);
  if (telling.length > 0) {
    evidence.sources = Object.fromEntries(telling.map((v) => [v.source, { kind: v.kind, level: v.level, ...v.evidence, ...(v.ageMs !== undefined ? { data_age_seconds: Math.round(v.ageMs / 1000) } : {}) }]));
  }
  const contributions = computed?.evidence.contributions as unknown[] | undefined;
  if (contributions?.length) evidence.contributions = contributions;
  return { status, ...(status === "unknown" ? {} : { risk }), reasons, evidence };
}
