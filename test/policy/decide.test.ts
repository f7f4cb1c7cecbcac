import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  accessFor,
  admit,
  aggregateRisk,
  applyHysteresis,
  decide,
  defaultDecision,
  resolveCheck,
  resumeGuard,
  type CheckInput,
  type DecisionRules,
  type GuardLimits,
  type GuardState,
  type OnUnknown,
  type ResolvedCheck,
} from "../../src/policy/decide.ts";
import type { AccessLevel, CheckResult, CheckStatus, Decision, DecisionState, Reason, RiskLevel } from "../../src/policy/model.ts";

/** Fixed clock: 2023-11-14T22:13:20Z. */
const T0 = 1_700_000_000_000;
const MIN = 60_000;

function result(status: CheckStatus, opts: Partial<CheckResult> = {}): CheckResult {
  return {
    check: "c",
    subject: "s",
    status,
    reasons: status === "pass" ? [] : [{ code: `C_${status.toUpperCase()}`, message: `c is ${status}` }],
    observed_at: T0 - MIN,
    expires_at: T0 + 10 * MIN,
    ...opts,
  };
}

function input(results: readonly CheckResult[], on_unknown: OnUnknown = "hold", hold_grace = 5 * MIN, check = "c"): CheckInput {
  return { check, on_unknown, hold_grace, results };
}

function resolved(check: string, risk: RiskLevel, score?: number): ResolvedCheck {
  return { check, status: "pass", risk, score: score ?? { low: 0, medium: 50, high: 100 }[risk], reasons: [], source: "pull", held: false };
}

const codes = (reasons: readonly Reason[]) => reasons.map((r) => r.code);

const RBA_DEFAULT: DecisionRules["risk_based_access"] = { low_risk: "full_access", medium_risk: "read_only", high_risk: "deny" };

function rules(over: Partial<DecisionRules> = {}): DecisionRules {
  return {
    confirm: 1,
    restore_after: 1,
    cooldown: 0,
    scoring: { mode: "highest", weights: {}, thresholds: { medium: 40, high: 70 } },
    risk_based_access: RBA_DEFAULT,
    ...over,
  };
}

function state(access: AccessLevel, candidate: AccessLevel = access, streak = 0, changed_at = T0 - 60 * MIN, generation = 1): DecisionState {
  const decision: Decision = { policy: "p", subject: "s", access, risk: "low", reasons: [], generation, decided_at: changed_at, evidence: {}, exempt: false };
  return { decision, candidate, streak, changed_at };
}

describe("resolveCheck (rule 1)", () => {
  const expired = (status: CheckStatus, observed_at: number, expires_at: number, extra: Partial<CheckResult> = {}) => result(status, { observed_at, expires_at, ...extra });
  const cases: { name: string; in: CheckInput; now?: number; status: CheckStatus; risk: RiskLevel; held?: boolean; source?: string; reasons: string[]; score?: number }[] = [
    { name: "pass → low", in: input([result("pass")]), status: "pass", risk: "low", reasons: [], score: 0 },
    { name: "warn → medium", in: input([result("warn")]), status: "warn", risk: "medium", reasons: ["C_WARN"], score: 50 },
    { name: "fail → high", in: input([result("fail")]), status: "fail", risk: "high", reasons: ["C_FAIL"], score: 100 },
    { name: "explicit risk overrides status (pass with risk high)", in: input([result("pass", { risk: "high" })]), status: "pass", risk: "high", reasons: [], score: 100 },
    { name: "explicit risk overrides status (fail with risk medium)", in: input([result("fail", { risk: "medium" })]), status: "fail", risk: "medium", reasons: ["C_FAIL"] },
    { name: "explicit score is kept", in: input([result("warn", { score: 63 })]), status: "warn", risk: "medium", reasons: ["C_WARN"], score: 63 },
    { name: "source defaults to pull", in: input([result("pass")]), status: "pass", risk: "low", source: "pull", reasons: [] },
    {
      name: "expired fail is ignored next to a current pass",
      in: input([expired("fail", T0 - 20 * MIN, T0 - MIN), result("pass")]),
      status: "pass",
      risk: "low",
      reasons: [],
    },
    {
      name: "result expiring exactly now is expired",
      in: input([result("pass", { expires_at: T0 })], "deny"),
      status: "unknown",
      risk: "high",
      source: "none",
      reasons: ["CHECK_UNKNOWN"],
    },
    {
      name: "push fail and pull pass both current → fail (push) wins",
      in: input([result("pass", { source: "pull" }), result("fail", { source: "push" })]),
      status: "fail",
      risk: "high",
      source: "push",
      reasons: ["C_FAIL"],
    },
    {
      name: "pull warn and push pass both current → warn (pull) wins",
      in: input([result("warn", { source: "pull" }), result("pass", { source: "push", observed_at: T0 })]),
      status: "warn",
      risk: "medium",
      source: "pull",
      reasons: ["C_WARN"],
    },
    { name: "on_unknown deny, nothing known → high", in: input([], "deny"), status: "unknown", risk: "high", source: "none", reasons: ["CHECK_UNKNOWN"], score: 100 },
    { name: "on_unknown ignore, nothing known → low", in: input([], "ignore"), status: "unknown", risk: "low", source: "none", reasons: ["CHECK_UNKNOWN"], score: 0 },
    {
      name: "on_unknown deny with an expired pass → high",
      in: input([expired("pass", T0 - 20 * MIN, T0 - MIN)], "deny"),
      status: "unknown",
      risk: "high",
      reasons: ["CHECK_UNKNOWN"],
    },
    {
      name: "on_unknown ignore with an expired fail → low",
      in: input([expired("fail", T0 - 20 * MIN, T0 - MIN)], "ignore"),
      status: "unknown",
      risk: "low",
      reasons: ["CHECK_UNKNOWN"],
    },
    {
      name: "hold within grace keeps the last known warn and adds CHECK_HELD",
      in: input([expired("warn", T0 - 20 * MIN, T0 - 4 * MIN)], "hold", 5 * MIN),
      status: "warn",
      risk: "medium",
      held: true,
      reasons: ["C_WARN", "CHECK_HELD"],
    },
    {
      name: "hold within grace keeps a held pass (low) with CHECK_HELD",
      in: input([expired("pass", T0 - 20 * MIN, T0 - 4 * MIN), result("unknown", { reasons: [{ code: "X", message: "probe timed out" }] })], "hold", 5 * MIN),
      status: "pass",
      risk: "low",
      held: true,
      reasons: ["CHECK_HELD"],
    },
    {
      name: "hold grace is measured from expires_at, not observed_at (observed long ago, expired 1ms ago)",
      in: input([expired("pass", T0 - 600 * MIN, T0 - 1)], "hold", 5 * MIN),
      status: "pass",
      risk: "low",
      held: true,
      reasons: ["CHECK_HELD"],
    },
    {
      name: "hold keeps the most recently observed known result",
      in: input([expired("fail", T0 - 30 * MIN, T0 - 2 * MIN), expired("pass", T0 - 10 * MIN, T0 - MIN)], "hold", 5 * MIN),
      status: "pass",
      risk: "low",
      held: true,
      reasons: ["CHECK_HELD"],
    },
    {
      name: "hold exactly at grace end → high with CHECK_UNKNOWN",
      in: input([expired("pass", T0 - 20 * MIN, T0 - 5 * MIN)], "hold", 5 * MIN),
      status: "unknown",
      risk: "high",
      held: false,
      source: "none",
      reasons: ["CHECK_UNKNOWN"],
    },
    {
      name: "hold past grace → high with CHECK_UNKNOWN",
      in: input([expired("pass", T0 - 60 * MIN, T0 - 30 * MIN)], "hold", 5 * MIN),
      status: "unknown",
      risk: "high",
      reasons: ["CHECK_UNKNOWN"],
    },
    { name: "hold with nothing known → high", in: input([], "hold"), status: "unknown", risk: "high", source: "none", reasons: ["CHECK_UNKNOWN"] },
    {
      name: "hold with only unknown results → high",
      in: input([result("unknown"), result("unknown", { observed_at: T0 })], "hold"),
      status: "unknown",
      risk: "high",
      reasons: ["CHECK_UNKNOWN"],
    },
    {
      name: "unknown result next to a current pass → the pass stands (even with on_unknown deny)",
      in: input([result("unknown", { observed_at: T0 }), result("pass")], "deny"),
      status: "pass",
      risk: "low",
      held: false,
      reasons: [],
    },
    {
      name: "unknown result next to a current fail → the fail stands (even with on_unknown ignore)",
      in: input([result("fail"), result("unknown", { observed_at: T0 })], "ignore"),
      status: "fail",
      risk: "high",
      reasons: ["C_FAIL"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = resolveCheck(c.in, c.now ?? T0);
      assert.equal(r.check, c.in.check);
      assert.equal(r.status, c.status);
      assert.equal(r.risk, c.risk);
      assert.equal(r.held, c.held ?? false);
      assert.deepEqual(codes(r.reasons), c.reasons);
      if (c.source !== undefined) assert.equal(r.source, c.source);
      if (c.score !== undefined) assert.equal(r.score, c.score);
    });
  }

  it("an unknown result's reason explains the unknown", () => {
    const r = resolveCheck(input([result("unknown", { reasons: [{ code: "X", message: "probe timed out" }] })], "deny"), T0);
    assert.deepEqual(codes(r.reasons), ["CHECK_UNKNOWN"]);
    assert.match(r.reasons[0]!.message, /probe timed out/);
  });

  it("a held result keeps its observed_at and expires_at", () => {
    const r = resolveCheck(input([result("warn", { observed_at: T0 - 20 * MIN, expires_at: T0 - MIN })], "hold", 5 * MIN), T0);
    assert.equal(r.observed_at, T0 - 20 * MIN);
    assert.equal(r.expires_at, T0 - MIN);
  });
});

describe("aggregateRisk (rule 2)", () => {
  const highest: DecisionRules["scoring"] = { mode: "highest", weights: {}, thresholds: { medium: 40, high: 70 } };
  const weighted = (weights: Record<string, number> = {}, medium = 40, high = 70): DecisionRules["scoring"] => ({ mode: "weighted", weights, thresholds: { medium, high } });
  const cases: { name: string; checks: ResolvedCheck[]; scoring: DecisionRules["scoring"]; risk: RiskLevel; score?: number }[] = [
    { name: "highest: empty → low", checks: [], scoring: highest, risk: "low" },
    { name: "highest: low, low → low", checks: [resolved("a", "low"), resolved("b", "low")], scoring: highest, risk: "low" },
    { name: "highest: low, medium → medium", checks: [resolved("a", "low"), resolved("b", "medium")], scoring: highest, risk: "medium" },
    { name: "highest: medium, high, low → high", checks: [resolved("a", "medium"), resolved("b", "high"), resolved("c", "low")], scoring: highest, risk: "high" },
    { name: "weighted: empty → low, score 0", checks: [], scoring: weighted(), risk: "low", score: 0 },
    { name: "weighted: default weight 1, (0+100)/2 = 50 → medium", checks: [resolved("a", "low"), resolved("b", "high")], scoring: weighted(), risk: "medium", score: 50 },
    { name: "weighted: (0+0+100)/3 = 33.33 → low", checks: [resolved("a", "low"), resolved("b", "low"), resolved("c", "high")], scoring: weighted(), risk: "low", score: 33.33 },
    { name: "weighted: b weight 3, (0+300)/4 = 75 → high", checks: [resolved("a", "low"), resolved("b", "high")], scoring: weighted({ b: 3 }), risk: "high", score: 75 },
    { name: "weighted: a weight 3, (0+100)/4 = 25 → low", checks: [resolved("a", "low"), resolved("b", "high")], scoring: weighted({ a: 3 }), risk: "low", score: 25 },
    { name: "weighted: weight 0 removes a check", checks: [resolved("a", "low"), resolved("b", "high")], scoring: weighted({ b: 0 }), risk: "low", score: 0 },
    { name: "weighted: all weights 0 → score 0", checks: [resolved("a", "high")], scoring: weighted({ a: 0 }), risk: "low", score: 0 },
    { name: "weighted: score exactly at medium threshold → medium", checks: [resolved("a", "low", 40)], scoring: weighted(), risk: "medium", score: 40 },
    { name: "weighted: score just below medium threshold → low", checks: [resolved("a", "low", 39.99)], scoring: weighted(), risk: "low", score: 39.99 },
    { name: "weighted: score exactly at high threshold → high", checks: [resolved("a", "low", 70)], scoring: weighted(), risk: "high", score: 70 },
    { name: "weighted: score just below high threshold → medium", checks: [resolved("a", "low", 69.99)], scoring: weighted(), risk: "medium", score: 69.99 },
    { name: "weighted: explicit scores 20 and 80 → 50 → medium", checks: [resolved("a", "high", 20), resolved("b", "low", 80)], scoring: weighted(), risk: "medium", score: 50 },
    { name: "weighted: custom thresholds 10/20, score 15 → medium", checks: [resolved("a", "low", 15)], scoring: weighted({}, 10, 20), risk: "medium", score: 15 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(aggregateRisk(c.checks, c.scoring), c.score === undefined ? { risk: c.risk } : { risk: c.risk, score: c.score });
    });
  }
});

describe("accessFor (rule 3)", () => {
  const strict: DecisionRules["risk_based_access"] = { low_risk: "read_only", medium_risk: "deny", high_risk: "deny" };
  const cases: { name: string; risk: RiskLevel; rba: DecisionRules["risk_based_access"]; access: AccessLevel }[] = [
    { name: "default: low → full_access", risk: "low", rba: RBA_DEFAULT, access: "full_access" },
    { name: "default: medium → read_only", risk: "medium", rba: RBA_DEFAULT, access: "read_only" },
    { name: "default: high → deny", risk: "high", rba: RBA_DEFAULT, access: "deny" },
    { name: "custom: low → read_only", risk: "low", rba: strict, access: "read_only" },
    { name: "custom: medium → deny", risk: "medium", rba: strict, access: "deny" },
    { name: "custom: high → deny", risk: "high", rba: strict, access: "deny" },
  ];
  for (const c of cases) it(c.name, () => assert.equal(accessFor(c.risk, c.rba), c.access));
});

describe("applyHysteresis (rule 4)", () => {
  type Rules = Pick<DecisionRules, "confirm" | "restore_after" | "cooldown">;
  /** Feeds targets one per minute starting at T0 and returns the access in force after each. */
  function series(start: AccessLevel | undefined, targets: AccessLevel[], r: Rules, changedAt = T0 - 60 * MIN): AccessLevel[] {
    let prev: DecisionState | undefined = start === undefined ? undefined : state(start, start, 0, changedAt);
    const out: AccessLevel[] = [];
    targets.forEach((target, i) => {
      const now = T0 + i * MIN;
      const h = applyHysteresis(prev, target, now, r);
      const changed = !prev || prev.decision.access !== h.access;
      const base = state(h.access, h.candidate, h.streak, changed ? now : prev!.changed_at);
      prev = base;
      out.push(h.access);
    });
    return out;
  }
  const F = "full_access" as const;
  const R = "read_only" as const;
  const D = "deny" as const;
  const r = (confirm = 1, restore_after = 1, cooldown = 0): Rules => ({ confirm, restore_after, cooldown });
  const cases: { name: string; start: AccessLevel | undefined; targets: AccessLevel[]; rules: Rules; expect: AccessLevel[]; changedAt?: number }[] = [
    { name: "first evaluation takes effect at once (deny, confirm 3)", start: undefined, targets: [D], rules: r(3, 3, 10 * MIN), expect: [D] },
    { name: "first evaluation takes effect at once (full_access, restore_after 3)", start: undefined, targets: [F], rules: r(3, 3, 10 * MIN), expect: [F] },
    { name: "confirm=1: one bad evaluation goes down", start: F, targets: [D], rules: r(1), expect: [D] },
    { name: "confirm=2: second bad evaluation goes down", start: F, targets: [D, D, D], rules: r(2), expect: [F, D, D] },
    { name: "confirm=3: third bad evaluation goes down", start: F, targets: [D, D, D, D], rules: r(3), expect: [F, F, D, D] },
    { name: "confirm=3: a good evaluation in between resets the streak", start: F, targets: [D, D, F, D, D, D], rules: r(3), expect: [F, F, F, F, F, D] },
    { name: "confirm=2: read_only then deny count as the same direction → deny", start: F, targets: [R, D], rules: r(2), expect: [F, D] },
    { name: "confirm=2: deny then read_only count as the same direction → read_only", start: F, targets: [D, R], rules: r(2), expect: [F, R] },
    { name: "confirm=2 from read_only: deny twice", start: R, targets: [D, D], rules: r(2), expect: [R, D] },
    { name: "confirm=2: up then down switches direction, streak restarts", start: R, targets: [F, D, D], rules: r(2, 5), expect: [R, R, D] },
    { name: "restore_after=1: one good evaluation goes up", start: D, targets: [F], rules: r(1, 1), expect: [F] },
    { name: "restore_after=2: second good evaluation goes up", start: D, targets: [F, F, F], rules: r(1, 2), expect: [D, F, F] },
    { name: "restore_after=2: a bad evaluation in between resets", start: D, targets: [F, D, F, F], rules: r(1, 2), expect: [D, D, D, F] },
    { name: "restore_after=2: read_only then full_access count as the same direction → full_access", start: D, targets: [R, F], rules: r(1, 2), expect: [D, F] },
    {
      name: "cooldown 3m blocks restore until elapsed (changed at T0)",
      start: D,
      changedAt: T0,
      targets: [F, F, F, F, F],
      rules: r(1, 1, 3 * MIN),
      expect: [D, D, D, F, F],
    },
    {
      name: "cooldown already elapsed → restore at once",
      start: D,
      changedAt: T0 - 3 * MIN,
      targets: [F],
      rules: r(1, 1, 3 * MIN),
      expect: [F],
    },
    {
      name: "restore needs both: restore_after=3 reached after cooldown 1m",
      start: D,
      changedAt: T0,
      targets: [F, F, F, F],
      rules: r(1, 3, 1 * MIN),
      expect: [D, D, F, F],
    },
    {
      name: "restore needs both: cooldown 4m reached after restore_after=2",
      start: D,
      changedAt: T0,
      targets: [F, F, F, F, F],
      rules: r(1, 2, 4 * MIN),
      expect: [D, D, D, D, F],
    },
    {
      name: "cooldown does not delay going down",
      start: F,
      changedAt: T0,
      targets: [D],
      rules: r(1, 1, 60 * MIN),
      expect: [D],
    },
    {
      name: "flapping: bad/good alternating from full_access with confirm=2, restore_after=2 never changes access",
      start: F,
      targets: [D, F, D, F, D, F, D, F, D, F, D, F, R, F, R, F],
      rules: r(2, 2),
      expect: Array<AccessLevel>(16).fill(F),
    },
    {
      name: "flapping: good/bad alternating from deny with confirm=2, restore_after=2 never changes access",
      start: D,
      targets: [F, D, F, D, F, D, F, D, F, D, R, D, F, D],
      rules: r(2, 2),
      expect: Array<AccessLevel>(14).fill(D),
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(series(c.start, c.targets, c.rules, c.changedAt), c.expect));
  }

  it("streak bookkeeping and pending text while confirming", () => {
    const a = applyHysteresis(state("full_access"), "deny", T0, r(3));
    assert.deepEqual(a, { access: "full_access", candidate: "deny", streak: 1, pending: "2 more bad evaluation(s) before deny" });
    const b = applyHysteresis(state("full_access", "deny", 1), "deny", T0, r(3));
    assert.deepEqual(b, { access: "full_access", candidate: "deny", streak: 2, pending: "1 more bad evaluation(s) before deny" });
    const c = applyHysteresis(state("full_access", "deny", 2), "deny", T0, r(3));
    assert.deepEqual(c, { access: "deny", candidate: "deny", streak: 0 });
  });

  it("pending text names both missing restore conditions", () => {
    const h = applyHysteresis(state("deny", "deny", 0, T0), "full_access", T0 + 30_000, r(1, 3, 2 * MIN));
    assert.deepEqual(h, { access: "deny", candidate: "full_access", streak: 1, pending: "2 more good evaluation(s) and 90s of cooldown before full_access" });
  });

  it("target equal to current resets candidate and streak", () => {
    assert.deepEqual(applyHysteresis(state("full_access", "deny", 5), "full_access", T0, r(9)), { access: "full_access", candidate: "full_access", streak: 0 });
  });
});

describe("decide (rules 1–5)", () => {
  const passing = (check: string): CheckInput => input([result("pass", { check })], "hold", 5 * MIN, check);
  const failing = (check: string): CheckInput => input([result("fail", { check, reasons: [{ code: "MFA_MISSING", message: "no mfa" }] })], "hold", 5 * MIN, check);
  const warning = (check: string): CheckInput => input([result("warn", { check, reasons: [{ code: "CERT_SOON", message: "cert expires soon" }] })], "hold", 5 * MIN, check);
  const base = { policy: "p", subject: "s", exempt: false };

  it("first decision: generation 1, changed, changed_at = now", () => {
    const out = decide({ ...base, rules: rules(), checks: [passing("mfa")], prev: undefined, now: T0 });
    assert.equal(out.changed, true);
    assert.equal(out.state.decision.generation, 1);
    assert.equal(out.state.decision.access, "full_access");
    assert.equal(out.state.decision.risk, "low");
    assert.equal(out.state.decision.decided_at, T0);
    assert.equal(out.state.changed_at, T0);
    assert.equal(out.state.decision.exempt, false);
    assert.deepEqual(out.state.decision.reasons, []);
    assert.equal(out.resolved.length, 1);
  });

  it("first decision with confirm 3 still takes effect (deny, generation 1)", () => {
    const out = decide({ ...base, rules: rules({ confirm: 3 }), checks: [failing("mfa")], prev: undefined, now: T0 });
    assert.equal(out.state.decision.access, "deny");
    assert.equal(out.state.decision.generation, 1);
  });

  it("generation increments only on change; changed_at only on change", () => {
    const r = rules();
    const d1 = decide({ ...base, rules: r, checks: [passing("mfa")], prev: undefined, now: T0 });
    const d2 = decide({ ...base, rules: r, checks: [passing("mfa")], prev: d1.state, now: T0 + MIN });
    assert.equal(d2.changed, false);
    assert.equal(d2.state.decision.generation, 1);
    assert.equal(d2.state.changed_at, T0);
    assert.equal(d2.state.decision.decided_at, T0 + MIN);
    const d3 = decide({ ...base, rules: r, checks: [failing("mfa")], prev: d2.state, now: T0 + 2 * MIN });
    assert.equal(d3.changed, true);
    assert.equal(d3.state.decision.generation, 2);
    assert.equal(d3.state.decision.access, "deny");
    assert.equal(d3.state.changed_at, T0 + 2 * MIN);
    const d4 = decide({ ...base, rules: r, checks: [failing("mfa")], prev: d3.state, now: T0 + 3 * MIN });
    assert.equal(d4.changed, false);
    assert.equal(d4.state.decision.generation, 2);
    assert.equal(d4.state.changed_at, T0 + 2 * MIN);
    const d5 = decide({ ...base, rules: r, checks: [warning("mfa")], prev: d4.state, now: T0 + 4 * MIN });
    assert.equal(d5.changed, true);
    assert.equal(d5.state.decision.access, "read_only");
    assert.equal(d5.state.decision.generation, 3);
    assert.equal(d5.state.changed_at, T0 + 4 * MIN);
  });

  it("a risk change that maps to the same access is not a change", () => {
    const r = rules({ risk_based_access: { low_risk: "full_access", medium_risk: "deny", high_risk: "deny" } });
    const d1 = decide({ ...base, rules: r, checks: [warning("mfa")], prev: undefined, now: T0 });
    const d2 = decide({ ...base, rules: r, checks: [failing("mfa")], prev: d1.state, now: T0 + MIN });
    assert.equal(d2.changed, false);
    assert.equal(d2.state.decision.risk, "high");
    assert.equal(d2.state.decision.generation, 1);
  });

  it("exempt flag is recorded and does not change the decision", () => {
    const out = decide({ ...base, exempt: true, rules: rules(), checks: [failing("mfa")], prev: undefined, now: T0 });
    assert.equal(out.state.decision.exempt, true);
    assert.equal(out.state.decision.access, "deny");
  });

  it("reasons: only risky (or held) checks contribute, plus HYSTERESIS_PENDING while pending", () => {
    const r = rules({ confirm: 2 });
    const d1 = decide({ ...base, rules: r, checks: [passing("a")], prev: undefined, now: T0 });
    const d2 = decide({ ...base, rules: r, checks: [passing("a"), failing("mfa"), warning("cert")], prev: d1.state, now: T0 + MIN });
    assert.equal(d2.changed, false);
    assert.equal(d2.state.decision.access, "full_access");
    assert.equal(d2.state.decision.risk, "high");
    assert.deepEqual(codes(d2.state.decision.reasons), ["MFA_MISSING", "CERT_SOON", "HYSTERESIS_PENDING"]);
    assert.equal(d2.state.decision.reasons[2]!.message, "access stays full_access: 1 more bad evaluation(s) before deny");
    assert.equal(d2.state.candidate, "deny");
    assert.equal(d2.state.streak, 1);
    const d3 = decide({ ...base, rules: r, checks: [passing("a"), failing("mfa")], prev: d2.state, now: T0 + 2 * MIN });
    assert.equal(d3.state.decision.access, "deny");
    assert.deepEqual(codes(d3.state.decision.reasons), ["MFA_MISSING"]);
  });

  it("a held low-risk check contributes CHECK_HELD", () => {
    const held = input([result("pass", { check: "mfa", observed_at: T0 - 20 * MIN, expires_at: T0 - MIN })], "hold", 5 * MIN, "mfa");
    const out = decide({ ...base, rules: rules(), checks: [held], prev: undefined, now: T0 });
    assert.equal(out.state.decision.access, "full_access");
    assert.deepEqual(codes(out.state.decision.reasons), ["CHECK_HELD"]);
  });

  it("evidence: target, per-check status, and score only when weighted", () => {
    const r = rules({ confirm: 2 });
    const d1 = decide({ ...base, rules: r, checks: [passing("a")], prev: undefined, now: T0 });
    const d2 = decide({ ...base, rules: r, checks: [failing("mfa")], prev: d1.state, now: T0 + MIN });
    assert.deepEqual(d2.state.decision.evidence, {
      target: "deny",
      checks: { mfa: { status: "fail", risk: "high", source: "pull", held: false, observed_at: T0 - MIN, expires_at: T0 + 10 * MIN } },
    });
    const w = rules({ scoring: { mode: "weighted", weights: {}, thresholds: { medium: 40, high: 70 } } });
    const d3 = decide({ ...base, rules: w, checks: [passing("a"), failing("mfa")], prev: undefined, now: T0 });
    assert.equal(d3.state.decision.evidence.target, "read_only");
    assert.equal(d3.state.decision.evidence.score, 50);
    assert.equal(d3.state.decision.risk, "medium");
  });

  it("no checks → low risk → low_risk access", () => {
    const out = decide({ ...base, rules: rules(), checks: [], prev: undefined, now: T0 });
    assert.equal(out.state.decision.access, "full_access");
    assert.deepEqual(out.state.decision.evidence, { target: "full_access", checks: {} });
  });
});

describe("defaultDecision (rule 3, uncovered subjects)", () => {
  const cases: { name: string; rule: "deny_all" | "allow_all"; access: AccessLevel; risk: RiskLevel }[] = [
    { name: "deny_all → deny", rule: "deny_all", access: "deny", risk: "high" },
    { name: "allow_all → full_access", rule: "allow_all", access: "full_access", risk: "low" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = defaultDecision("stranger", c.rule, T0);
      assert.equal(d.access, c.access);
      assert.equal(d.risk, c.risk);
      assert.equal(d.subject, "stranger");
      assert.equal(d.policy, "default_security_rule");
      assert.equal(d.generation, 1);
      assert.equal(d.decided_at, T0);
      assert.equal(d.exempt, false);
      assert.deepEqual(codes(d.reasons), ["DEFAULT_RULE"]);
    });
  }
});

describe("admit / resumeGuard (rule 6, blast-radius guard)", () => {
  const W = 10 * MIN;
  const limits = (max_actions: number, auto_resume = true): GuardLimits => ({ max_actions, window: W, auto_resume });
  const empty: GuardState = { recent: [], paused: false };

  it("under the limit: admitted, timestamps recorded", () => {
    const a = admit(empty, 2, T0, limits(3));
    assert.deepEqual(a, { admitted: true, state: { recent: [T0, T0], paused: false }, paused_now: false, resumed_now: false });
    const b = admit(a.state, 1, T0 + 1, limits(3));
    assert.deepEqual(b, { admitted: true, state: { recent: [T0, T0, T0 + 1], paused: false }, paused_now: false, resumed_now: false });
  });

  it("the call that would exceed pauses once and admits nothing; while paused nothing is admitted", () => {
    let s = admit(empty, 3, T0, limits(3)).state;
    const over = admit(s, 1, T0 + 1, limits(3));
    assert.deepEqual(over, { admitted: false, state: { recent: [T0, T0, T0], paused: true, paused_at: T0 + 1 }, paused_now: true, resumed_now: false });
    s = over.state;
    const again = admit(s, 1, T0 + 2, limits(3));
    assert.deepEqual(again, { admitted: false, state: { recent: [T0, T0, T0], paused: true, paused_at: T0 + 1 }, paused_now: false, resumed_now: false });
  });

  it("a request that would exceed pauses even if a smaller one would fit", () => {
    const s = admit(empty, 2, T0, limits(3)).state;
    const r = admit(s, 2, T0 + 1, limits(3));
    assert.equal(r.admitted, false);
    assert.equal(r.paused_now, true);
    assert.deepEqual(r.state.recent, [T0, T0]);
  });

  it("auto_resume: resumes once the window slides (resumed_now), and admits that call", () => {
    const s1 = admit(empty, 3, T0, limits(3)).state;
    const s2 = admit(s1, 1, T0 + MIN, limits(3)).state;
    assert.equal(s2.paused, true);
    const still = admit(s2, 1, T0 + W - 1, limits(3)); // T0 is still inside (now - window, now]
    assert.equal(still.admitted, false);
    assert.equal(still.resumed_now, false);
    assert.equal(still.state.paused, true);
    const r = admit(still.state, 1, T0 + W, limits(3)); // exactly one window later T0 has left it
    assert.deepEqual(r, { admitted: true, state: { recent: [T0 + W], paused: false }, paused_now: false, resumed_now: true });
  });

  it("auto_resume false: stays paused after the window slides until resumeGuard()", () => {
    const s1 = admit(empty, 3, T0, limits(3, false)).state;
    const s2 = admit(s1, 1, T0 + MIN, limits(3, false)).state;
    const late = admit(s2, 1, T0 + 10 * W, limits(3, false));
    assert.deepEqual(late, { admitted: false, state: { recent: [], paused: true, paused_at: T0 + MIN }, paused_now: false, resumed_now: false });
    const resumed = resumeGuard();
    assert.deepEqual(resumed, { recent: [], paused: false });
    assert.deepEqual(admit(resumed, 1, T0 + 10 * W, limits(3, false)), {
      admitted: true,
      state: { recent: [T0 + 10 * W], paused: false },
      paused_now: false,
      resumed_now: false,
    });
  });

  it("a single request bigger than max on an empty window is admitted; on a non-empty window it pauses", () => {
    const big = admit(empty, 5, T0, limits(3));
    assert.equal(big.admitted, true);
    assert.equal(big.paused_now, false);
    const s = admit(empty, 1, T0, limits(3)).state;
    const blocked = admit(s, 5, T0 + 1, limits(3));
    assert.equal(blocked.admitted, false);
    assert.equal(blocked.paused_now, true);
  });

  it("after an oversized admission the next request pauses until the window slides", () => {
    const big = admit(empty, 5, T0, limits(3)).state;
    const next = admit(big, 1, T0 + 1, limits(3));
    assert.equal(next.admitted, false);
    assert.equal(next.paused_now, true);
    const later = admit(next.state, 1, T0 + W + 1, limits(3));
    assert.equal(later.admitted, true);
    assert.equal(later.resumed_now, true);
  });

  it("recent never grows beyond max_actions (bounded), including an oversized admission", () => {
    let s: GuardState = empty;
    let maxLen = 0;
    const lim = limits(4);
    // Oversized first, then a long run of single actions spread over many windows.
    s = admit(s, 9, T0, lim).state;
    maxLen = Math.max(maxLen, s.recent.length);
    for (let i = 0; i < 500; i++) {
      s = admit(s, 1 + (i % 3), T0 + i * 7_000, lim).state;
      maxLen = Math.max(maxLen, s.recent.length);
    }
    assert.equal(maxLen, 4);
  });

  it("mass breakage: 1,000 subjects needing 1 action each, max 20 → exactly 20 admitted", () => {
    let s: GuardState = empty;
    let admitted = 0;
    let pausedNow = 0;
    for (let i = 0; i < 1000; i++) {
      const r = admit(s, 1, T0 + i, limits(20));
      s = r.state;
      if (r.admitted) admitted++;
      if (r.paused_now) pausedNow++;
    }
    assert.equal(admitted, 20);
    assert.equal(pausedNow, 1);
    assert.equal(s.paused, true);
    assert.equal(s.paused_at, T0 + 20);
    assert.equal(s.recent.length, 20);
  });
});
