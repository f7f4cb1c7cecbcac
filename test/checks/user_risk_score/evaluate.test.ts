/**
 * Provider verdicts, state by state and detail by detail (Entra ID Protection's riskState, riskLevel
 * and riskDetail values; Okta's levels), and how verdicts combine: the stricter wins, a source that
 * cannot say leaves the subject unknown unless another says high, a disabled account is a note.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { combine, computedVerdict, entraVerdict, errorVerdict, oktaVerdict, RISK_DETAILS } from "../../../src/checks/user_risk_score/evaluate.ts";
import type { EntraDetection, EntraRisk, OktaRisk } from "../../../src/sources/identity/model.ts";

const NOW = Date.parse("2026-12-10T12:00:00Z");
const SCANNED = NOW - 90_000;

function risk(level: string, state: string, detail = "none", extra: Partial<EntraRisk> = {}): EntraRisk {
  return { id: "0f8a1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a6b", login: "alice@contoso.example", level, state, detail, updatedAt: NOW - 3_600_000, processing: false, deleted: false, ...extra };
}

const detection: EntraDetection = {
  id: "8c2b8f3e0c1a",
  userId: "0f8a1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a6b",
  type: "unfamiliarFeatures",
  level: "medium",
  state: "atRisk",
  detail: "none",
  timing: "realtime",
  activity: "signin",
  activityAt: NOW - 3_700_000,
  detectedAt: NOW - 3_600_000,
  ip: "198.51.100.23",
  location: "Lagos, NG",
};

const codes = (v: { reasons: readonly { code: string }[] }) => v.reasons.map((r) => r.code);

describe("Entra ID Protection: every riskState", () => {
  const table: [state: string, level: string, expected: string, code?: string][] = [
    ["atRisk", "high", "high", "USER_RISK_HIGH"],
    ["atRisk", "medium", "medium", "USER_RISK_MEDIUM"],
    ["atRisk", "low", "low", "USER_RISK_LOW"],
    ["atRisk", "none", "none"],
    ["atRisk", "hidden", "unknown", "USER_RISK_HIDDEN"],
    ["atRisk", "unknownFutureValue", "unknown", "USER_RISK_UNKNOWN_VALUE"],
    ["confirmedCompromised", "high", "high", "USER_CONFIRMED_COMPROMISED"],
    ["confirmedCompromised", "low", "high", "USER_CONFIRMED_COMPROMISED"],
    ["confirmedCompromised", "none", "high", "USER_CONFIRMED_COMPROMISED"],
    ["confirmedCompromised", "hidden", "high", "USER_CONFIRMED_COMPROMISED"],
    ["dismissed", "high", "none"],
    ["remediated", "high", "none"],
    ["confirmedSafe", "medium", "none"],
    ["none", "none", "none"],
    ["unknownFutureValue", "high", "unknown", "USER_RISK_UNKNOWN_VALUE"],
  ];
  for (const [state, level, expected, code] of table) {
    test(`${state} at ${level} → ${expected}`, () => {
      const v = entraVerdict("entra", risk(level, state), [], "user", SCANNED, NOW);
      assert.equal(v.level, expected);
      if (code) assert.equal(codes(v)[0], code);
      else assert.deepEqual(codes(v), []);
      assert.equal(v.ageMs, 90_000);
      assert.equal(v.evidence.state, state);
      assert.equal(v.evidence.level, level);
    });
  }

  test("dismissed, remediated and confirmedSafe resolve earlier risk with a note saying how", () => {
    for (const [state, detail] of [["dismissed", "adminDismissedAllRiskForUser"], ["remediated", "userPerformedSecuredPasswordReset"], ["confirmedSafe", "adminConfirmedSigninSafe"]] as const) {
      const v = entraVerdict("entra", risk("none", state, detail), [detection], "user", SCANNED, NOW);
      assert.equal(v.level, "none");
      assert.deepEqual(v.reasons, []);
      assert.equal(v.notes[0]!.code, "USER_RISK_RESOLVED");
      assert.ok(v.notes[0]!.message.includes(RISK_DETAILS[detail]!), v.notes[0]!.message);
    }
  });

  test("every riskDetail value reads as words in the reason", () => {
    for (const [detail, words] of Object.entries(RISK_DETAILS)) {
      const v = entraVerdict("entra", risk("medium", "atRisk", detail), [], "user", SCANNED, NOW);
      assert.equal(v.evidence.detail, detail);
      if (detail !== "none") assert.ok(v.reasons[0]!.message.includes(words), `${detail}: ${v.reasons[0]!.message}`);
    }
    const odd = entraVerdict("entra", risk("medium", "atRisk", "somethingNew"), [], "user", SCANNED, NOW);
    assert.match(odd.reasons[0]!.message, /somethingNew/, "an unknown detail is shown as it came");
  });

  test("detections are reasons with their type, timing, time, address, place and id", () => {
    const v = entraVerdict("entra", risk("high", "atRisk"), [detection, { ...detection, id: "gone", state: "dismissed" }], "user", SCANNED, NOW);
    assert.deepEqual(codes(v), ["USER_RISK_HIGH", "USER_RISK_DETECTION"]);
    assert.match(v.reasons[1]!.message, /unfamiliarFeatures \(realtime, signin\) at 2026-12-10T10:58:20.000Z from 198\.51\.100\.23 in Lagos, NG — level medium, state atRisk, id 8c2b8f3e0c1a/);
    assert.deepEqual(v.evidence.detections, ["8c2b8f3e0c1a", "gone"]);
  });

  test("a user Identity Protection does not list (or lists as deleted) carries no risk", () => {
    assert.equal(entraVerdict("entra", undefined, [], "user", SCANNED, NOW).level, "none");
    assert.equal(entraVerdict("entra", risk("high", "atRisk", "none", { deleted: true }), [], "user", SCANNED, NOW).level, "none");
  });

  test("a service principal's verdict uses the workload codes", () => {
    assert.deepEqual(codes(entraVerdict("entra", risk("high", "atRisk"), [], "workload", SCANNED, NOW)), ["WORKLOAD_RISK_HIGH"]);
    assert.deepEqual(codes(entraVerdict("entra", risk("medium", "atRisk"), [], "workload", SCANNED, NOW)), ["WORKLOAD_RISK_MEDIUM"]);
    assert.deepEqual(codes(entraVerdict("entra", risk("low", "confirmedCompromised", "adminConfirmedServicePrincipalCompromised"), [], "workload", SCANNED, NOW)), ["WORKLOAD_CONFIRMED_COMPROMISED"]);
  });

  test("a change still being applied says so", () => {
    const v = entraVerdict("entra", risk("high", "atRisk", "none", { processing: true }), [], "user", SCANNED, NOW);
    assert.match(v.reasons[0]!.message, /still applying a change/);
    assert.equal(v.evidence.processing, true);
  });
});

describe("Okta Identity Threat Protection", () => {
  const okta = (level: string, extra: Partial<OktaRisk> = {}): OktaRisk => ({ level, previous: "LOW", detection: "Session Influenced User Risk", reasons: "Anomalous location", issuer: "OKTA", at: NOW - 600_000, eventId: "e1", reason: undefined, ...extra });
  for (const [level, expected, code] of [["HIGH", "high", "USER_RISK_HIGH"], ["MEDIUM", "medium", "USER_RISK_MEDIUM"], ["LOW", "low", "USER_RISK_LOW"], ["NONE", "none", undefined], ["SEVERE", "unknown", "USER_RISK_UNKNOWN_VALUE"]] as const) {
    test(`${level} → ${expected}`, () => {
      const v = oktaVerdict("okta", okta(level), SCANNED, NOW);
      assert.equal(v.level, expected);
      assert.equal(codes(v)[0], code);
      assert.equal(v.evidence.level, level);
    });
  }
  test("the reason names the detection, the reasons, the issuer and the previous level", () => {
    const v = oktaVerdict("okta", okta("HIGH", { reason: "Admin raised risk" }), SCANNED, NOW);
    assert.equal(v.reasons[0]!.message, "okta: risk level HIGH (was LOW): Session Influenced User Risk; Anomalous location; Admin raised risk [issuer OKTA]");
    assert.equal(oktaVerdict("okta", undefined, SCANNED, NOW).level, "none");
    assert.equal(oktaVerdict("okta", okta("NONE", { previous: "HIGH" }), SCANNED, NOW).notes[0]!.code, "USER_RISK_RESOLVED");
  });
});

describe("combining verdicts", () => {
  const entraHigh = entraVerdict("entra", risk("high", "atRisk"), [detection], "user", SCANNED, NOW);
  const entraNone = entraVerdict("entra", undefined, [], "user", SCANNED, NOW);
  const oktaMedium = oktaVerdict("okta", { level: "MEDIUM", previous: undefined, detection: undefined, reasons: undefined, issuer: undefined, at: NOW, eventId: undefined, reason: undefined }, NOW - 30_000, NOW);
  const down = errorVerdict("okta", "okta", "USER_RISK_SOURCE_UNAVAILABLE", "GET https://example.okta.com/api/v1/logs → 503");

  test("the stricter verdict wins, and the result carries the provider's level, state, detail, detections and data age", () => {
    const r = combine([entraHigh, oktaMedium], true);
    assert.equal(r.status, "fail");
    assert.equal(r.risk, "high");
    assert.deepEqual(codes(r), ["USER_RISK_HIGH", "USER_RISK_DETECTION"]);
    assert.equal(r.evidence.level, "high");
    assert.equal(r.evidence.source, "entra");
    assert.equal(r.evidence.provider_level, "high");
    assert.equal(r.evidence.risk_state, "atRisk");
    assert.equal(r.evidence.risk_detail, "none");
    assert.equal(r.evidence.okta_level, "MEDIUM");
    assert.equal(r.evidence.detection_ids, "8c2b8f3e0c1a");
    assert.equal(r.evidence.data_age_seconds, 90);
  });

  test("medium warns, low and none pass", () => {
    assert.equal(combine([entraNone, oktaMedium], true).status, "warn");
    const pass = combine([entraNone], true);
    assert.deepEqual([pass.status, pass.risk], ["pass", "low"]);
  });

  test("a source that cannot be read leaves the subject unknown, unless another says high", () => {
    const unknown = combine([entraNone, down], true);
    assert.equal(unknown.status, "unknown");
    assert.equal(unknown.risk, undefined);
    assert.deepEqual(codes(unknown), ["USER_RISK_SOURCE_UNAVAILABLE"]);
    assert.equal(unknown.evidence.level, "unknown");
    assert.equal(combine([entraHigh, down], true).status, "fail");
  });

  test("a disabled account is a note and never a risk of its own", () => {
    const r = combine([entraNone], false);
    assert.equal(r.status, "pass");
    assert.deepEqual(codes(r), ["USER_ACCOUNT_DISABLED"]);
    assert.equal(r.evidence.account_enabled, false);
    assert.deepEqual(codes(combine([entraHigh], false)), ["USER_RISK_HIGH", "USER_RISK_DETECTION", "USER_ACCOUNT_DISABLED"]);
  });

  test("the computed score's contributions travel as reasons and evidence", () => {
    const v = computedVerdict("computed", { score: 72.5, level: "high", contributions: [{ rule: "impossible_travel", code: "USER_IMPOSSIBLE_TRAVEL", source: "entra", points: 60, weight: 57.5, at: NOW - 3_600_000, message: "entra: impossible travel" }, { rule: "provider", code: "USER_PROVIDER_RISK", source: "entra", points: 15, weight: 15, at: undefined, message: "entra: the provider rates the user low" }] }, 1_000);
    const r = combine([entraNone, v], true);
    assert.equal(r.status, "fail");
    assert.deepEqual(codes(r), ["USER_RISK_HIGH", "USER_IMPOSSIBLE_TRAVEL", "USER_PROVIDER_RISK"]);
    assert.equal(r.evidence.score, 72.5);
    assert.equal((r.evidence.contributions as unknown[]).length, 2);
  });
});
