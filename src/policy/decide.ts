/**
 * The decision rules, as pure functions of their inputs and the clock's reading `now`.
 * See docs/decisions.md for the prose; test/policy/decide.test.ts holds the tables.
 */
import {
  accessRank,
  maxRisk,
  riskRank,
  statusRisk,
  type AccessLevel,
  type CheckResult,
  type CheckStatus,
  type Decision,
  type DecisionState,
  type Reason,
  type RiskLevel,
} from "./model.ts";
import { own } from "../util/own.ts";

export type OnUnknown = "deny" | "hold" | "ignore";

/** How a policy turns results into access. Durations in ms. */
export interface DecisionRules {
  readonly confirm: number;
  readonly restore_after: number;
  readonly cooldown: number;
  readonly scoring: {
    readonly mode: "highest" | "weighted";
    readonly weights: Readonly<Record<string, number>>;
    readonly thresholds: { readonly medium: number; readonly high: number };
  };
  readonly risk_based_access: { readonly low_risk: AccessLevel; readonly medium_risk: AccessLevel; readonly high_risk: AccessLevel };
}

/** Everything known about one check for one subject at decision time. */
export interface CheckInput {
  readonly check: string;
  readonly on_unknown: OnUnknown;
  readonly hold_grace: number;
  /** This run's result and the stored ones (pull and push), expired ones included. */
  readonly results: readonly CheckResult[];
}

/** One check's contribution after rule 1. */
export interface ResolvedCheck {
  readonly check: string;
  readonly status: CheckStatus;
  readonly risk: RiskLevel;
  readonly score: number;
  readonly reasons: readonly Reason[];
  readonly source: "pull" | "push" | "none";
  /** True when `hold` kept an expired result in force. */
  readonly held: boolean;
  readonly observed_at?: number;
  readonly expires_at?: number;
  /** The scalar facts of the result's evidence (a certificate's serial, …) for actions to act on. */
  readonly facts?: Readonly<Record<string, string | number | boolean>>;
}

/** At most this many evidence facts per check travel with a decision: states stay small. */
const MAX_FACTS = 16;

/** Top-level scalar fields of a result's evidence (strings capped at 256 characters). */
function factsOf(evidence: Readonly<Record<string, unknown>> | undefined): Record<string, string | number | boolean> | undefined {
  if (!evidence) return undefined;
  const out: Record<string, string | number | boolean> = {};
  let n = 0;
  for (const [k, v] of Object.entries(evidence)) {
    if (n >= MAX_FACTS) break;
    if ((typeof v === "string" && v.length <= 256) || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) {
      out[k] = v;
      n++;
    }
  }
  return n > 0 ? out : undefined;
}

/** Stable reason codes the decision rules add. */
export const DECISION_REASONS = {
  /** No current result for a check; its fail mode decided. */
  CHECK_UNKNOWN: "CHECK_UNKNOWN",
  /** No current result; `hold` kept the last known one within its grace period. */
  CHECK_HELD: "CHECK_HELD",
  /** Access stays where it is until more evaluations confirm the change (hysteresis). */
  HYSTERESIS_PENDING: "HYSTERESIS_PENDING",
  /** No policy covers the subject; `default_security_rule` decided. */
  DEFAULT_RULE: "DEFAULT_RULE",
} as const;

const RISK_SCORE: Record<RiskLevel, number> = { low: 0, medium: 50, high: 100 };

function resultRisk(r: CheckResult): RiskLevel {
  return r.risk ?? (r.status === "unknown" ? "high" : statusRisk(r.status));
}

/** Rule 1: a check's current results → one risk, applying the fail mode when nothing current is known. */
export function resolveCheck(input: CheckInput, now: number): ResolvedCheck {
  const known = input.results.filter((r) => r.status !== "unknown");
  const current = known.filter((r) => r.expires_at > now);
  if (current.length > 0) {
    // Pushed and pulled results both stand while current; the worse one wins.
    const worst = current.reduce((a, b) => (riskRank(resultRisk(b)) > riskRank(resultRisk(a)) ? b : a));
    return fromResult(input.check, worst, false);
  }
  const last = known.reduce<CheckResult | undefined>((a, b) => (!a || b.observed_at > a.observed_at ? b : a), undefined);
  const unknownReasons = input.results.filter((r) => r.status === "unknown").flatMap((r) => r.reasons);
  const why = unknownReasons[0]?.message ?? (last ? "the last result has expired" : "no result yet");
  switch (input.on_unknown) {
    case "ignore":
      return unknown(input.check, "low", [{ code: DECISION_REASONS.CHECK_UNKNOWN, message: `${input.check}: unknown (${why}); on_unknown=ignore` }]);
    case "hold":
      if (last && now < last.expires_at + input.hold_grace) {
        const held = fromResult(input.check, last, true);
        return { ...held, reasons: [...held.reasons, { code: DECISION_REASONS.CHECK_HELD, message: `${input.check}: unknown (${why}); holding the result of ${new Date(last.observed_at).toISOString()}` }] };
      }
      return unknown(input.check, "high", [
        { code: DECISION_REASONS.CHECK_UNKNOWN, message: `${input.check}: unknown (${why}) ${last ? "past the hold grace" : "and nothing known to hold"}` },
      ]);
    case "deny":
      return unknown(input.check, "high", [{ code: DECISION_REASONS.CHECK_UNKNOWN, message: `${input.check}: unknown (${why}); on_unknown=deny` }]);
  }
}

function fromResult(check: string, r: CheckResult, held: boolean): ResolvedCheck {
  const risk = resultRisk(r);
  return {
    check,
    status: r.status,
    risk,
    score: r.score ?? RISK_SCORE[risk],
    reasons: r.reasons,
    source: r.source ?? "pull",
    held,
    observed_at: r.observed_at,
    expires_at: r.expires_at,
    ...(r.evidence ? { facts: factsOf(r.evidence) } : {}),
  };
}

function unknown(check: string, risk: RiskLevel, reasons: Reason[]): ResolvedCheck {
  return { check, status: "unknown", risk, score: RISK_SCORE[risk], reasons, source: "none", held: false };
}

/** Rule 2: subject risk from its checks: the highest, or a weighted score against thresholds. */
export function aggregateRisk(checks: readonly ResolvedCheck[], scoring: DecisionRules["scoring"]): { risk: RiskLevel; score?: number } {
  if (scoring.mode === "highest") {
    return { risk: checks.reduce<RiskLevel>((acc, c) => maxRisk(acc, c.risk), "low") };
  }
  let total = 0;
  let weights = 0;
  for (const c of checks) {
    const w = own(scoring.weights, c.check) ?? 1;
    total += w * c.score;
    weights += w;
  }
  const score = weights === 0 ? 0 : Math.round((total / weights) * 100) / 100;
  const risk: RiskLevel = score >= scoring.thresholds.high ? "high" : score >= scoring.thresholds.medium ? "medium" : "low";
  return { risk, score };
}

/** Rule 3: risk → access. */
export function accessFor(risk: RiskLevel, rba: DecisionRules["risk_based_access"]): AccessLevel {
  return risk === "low" ? rba.low_risk : risk === "medium" ? rba.medium_risk : rba.high_risk;
}

/** Rule 4: hysteresis. Returns the access in force after this evaluation and the streak bookkeeping. */
export function applyHysteresis(
  prev: DecisionState | undefined,
  target: AccessLevel,
  now: number,
  rules: Pick<DecisionRules, "confirm" | "restore_after" | "cooldown">,
): { access: AccessLevel; candidate: AccessLevel; streak: number; pending?: string } {
  // Nothing was trusted before the first evaluation, so its outcome takes effect at once.
  if (!prev) return { access: target, candidate: target, streak: 0 };
  const current = prev.decision.access;
  if (target === current) return { access: current, candidate: current, streak: 0 };
  const down = accessRank(target) > accessRank(current);
  const sameDirection = prev.candidate !== current && accessRank(prev.candidate) > accessRank(current) === down;
  const streak = sameDirection ? prev.streak + 1 : 1;
  if (down) {
    if (streak >= rules.confirm) return { access: target, candidate: target, streak: 0 };
    return { access: current, candidate: target, streak, pending: `${rules.confirm - streak} more bad evaluation(s) before ${target}` };
  }
  const waited = now - prev.changed_at;
  if (streak >= rules.restore_after && waited >= rules.cooldown) return { access: target, candidate: target, streak: 0 };
  const needs: string[] = [];
  if (streak < rules.restore_after) needs.push(`${rules.restore_after - streak} more good evaluation(s)`);
  if (waited < rules.cooldown) needs.push(`${Math.ceil((rules.cooldown - waited) / 1000)}s of cooldown`);
  return { access: current, candidate: target, streak, pending: `${needs.join(" and ")} before ${target}` };
}

export interface DecideInput {
  readonly policy: string;
  readonly subject: string;
  readonly rules: DecisionRules;
  readonly checks: readonly CheckInput[];
  readonly prev: DecisionState | undefined;
  /** Break-glass (rule 5): evaluated and recorded, never enforced on. */
  readonly exempt: boolean;
  readonly now: number;
}

export interface DecideOutput {
  readonly state: DecisionState;
  /** Access changed (generation moved). */
  readonly changed: boolean;
  readonly resolved: readonly ResolvedCheck[];
}

/** Rules 1–5 for one (policy, subject). */
export function decide(input: DecideInput): DecideOutput {
  const resolved = input.checks.map((c) => resolveCheck(c, input.now));
  const { risk, score } = aggregateRisk(resolved, input.rules.scoring);
  const target = accessFor(risk, input.rules.risk_based_access);
  const h = applyHysteresis(input.prev, target, input.now, input.rules);
  const prevDecision = input.prev?.decision;
  const changed = !prevDecision || prevDecision.access !== h.access;
  const reasons: Reason[] = resolved.filter((c) => c.risk !== "low" || c.held).flatMap((c) => c.reasons);
  if (h.pending) reasons.push({ code: DECISION_REASONS.HYSTERESIS_PENDING, message: `access stays ${h.access}: ${h.pending}` });
  const decision: Decision = {
    policy: input.policy,
    subject: input.subject,
    access: h.access,
    risk,
    reasons,
    generation: !prevDecision ? 1 : changed ? prevDecision.generation + 1 : prevDecision.generation,
    decided_at: input.now,
    exempt: input.exempt,
    evidence: {
      target,
      ...(score === undefined ? {} : { score }),
      checks: Object.fromEntries(
        resolved.map((c) => [c.check, { status: c.status, risk: c.risk, source: c.source, held: c.held, observed_at: c.observed_at, expires_at: c.expires_at, ...(c.facts ? { evidence: c.facts } : {}) }]),
      ),
    },
  };
  return {
    state: { decision, candidate: h.candidate, streak: h.streak, changed_at: changed ? input.now : input.prev!.changed_at },
    changed,
    resolved,
  };
}

/** Decision for a subject that no policy covers (rule 3, second half). */
export function defaultDecision(subject: string, rule: "deny_all" | "allow_all", now: number): Decision {
  const access: AccessLevel = rule === "deny_all" ? "deny" : "full_access";
  return {
    policy: "default_security_rule",
    subject,
    access,
    risk: rule === "deny_all" ? "high" : "low",
    reasons: [{ code: DECISION_REASONS.DEFAULT_RULE, message: `no policy covers this subject; default_security_rule=${rule}` }],
    generation: 1,
    decided_at: now,
    exempt: false,
    evidence: {},
  };
}

/** Rule 6: the blast-radius guard's memory for one policy. */
export interface GuardState {
  /** When recent downgrade actions were admitted (ms), oldest first; never longer than max_actions. */
  readonly recent: readonly number[];
  readonly paused: boolean;
  readonly paused_at?: number;
}

export interface GuardLimits {
  readonly max_actions: number;
  readonly window: number;
  readonly auto_resume: boolean;
}

/**
 * Admits `n` downgrade actions or pauses enforcement. While paused nothing is admitted; with
 * `auto_resume` the pause lifts once the window has room again, otherwise only `resumeGuard` lifts it.
 */
export function admit(state: GuardState, n: number, now: number, limits: GuardLimits): { admitted: boolean; state: GuardState; paused_now: boolean; resumed_now: boolean } {
  const recent = state.recent.filter((t) => t > now - limits.window);
  let paused = state.paused;
  let resumed_now = false;
  if (paused && limits.auto_resume && recent.length + n <= limits.max_actions) {
    paused = false;
    resumed_now = true;
  }
  if (paused) return { admitted: false, state: { recent, paused, paused_at: state.paused_at }, paused_now: false, resumed_now };
  // A single decision needing more actions than the whole budget goes through only on an empty window.
  if (recent.length + n > limits.max_actions && !(recent.length === 0 && n > limits.max_actions)) {
    return { admitted: false, state: { recent, paused: true, paused_at: now }, paused_now: true, resumed_now };
  }
  // Keep at most max_actions stamps (GuardState.recent's bound; at least one so a non-empty window stays
  // non-empty). An oversized admission leaves a full window of `now` stamps, which blocks as long as n would.
  const all = [...recent, ...Array<number>(n).fill(now)];
  const next = all.slice(Math.max(0, all.length - Math.max(1, limits.max_actions)));
  return { admitted: true, state: { recent: next, paused: false }, paused_now: false, resumed_now };
}

/** Operator resume: clears the window and the pause. */
export function resumeGuard(): GuardState {
  return { recent: [], paused: false };
}
