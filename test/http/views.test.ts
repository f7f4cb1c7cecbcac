import { test } from "node:test";
import assert from "node:assert/strict";
import { decisionView, resultView, subjectDetailView } from "../../src/http/views.ts";
import type { CheckResult, Decision } from "../../src/policy/model.ts";

const T = Date.UTC(2026, 10, 24, 10, 2, 11, 204);
const ISO = "2026-11-24T10:02:11.204Z";

const decision: Decision = {
  policy: "p",
  subject: "s",
  access: "deny",
  risk: "high",
  reasons: [],
  generation: 2,
  decided_at: T,
  evidence: { target: "deny", checks: { mfa: { status: "fail", observed_at: T, expires_at: T + 1000, evidence: { serial: "0a" } } } },
  exempt: false,
};
const result: CheckResult = { check: "mfa", subject: "s", status: "fail", reasons: [], evidence: { stale_at: T }, observed_at: T, expires_at: T, next_run_at: T };

test("the API writes a decision's instants as ISO 8601 UTC, its evidence's included", () => {
  const v = decisionView(decision);
  assert.equal(v.decided_at, ISO);
  assert.deepEqual(v.evidence, { target: "deny", checks: { mfa: { status: "fail", observed_at: ISO, expires_at: "2026-11-24T10:02:12.204Z", evidence: { serial: "0a" } } } });
  assert.equal(decision.decided_at, T, "the model is left as it is");
});

test("the API writes a check result's observed_at, expires_at and next_run_at as ISO 8601 UTC", () => {
  assert.deepEqual(resultView(result), { ...result, observed_at: ISO, expires_at: ISO, next_run_at: ISO, evidence: { stale_at: ISO } });
  const { next_run_at: _, ...without } = result;
  assert.equal("next_run_at" in resultView(without), false, "an absent next_run_at stays absent");
});

test("a subject's detail carries the views of its decisions and results", () => {
  const v = subjectDetailView({ subject: { id: "s", kind: "user", attributes: { authenticated_at: 5 }, labels: {} }, access: "deny", status: "evaluated", pending: [], decisions: [decision], results: [result] });
  assert.equal(v.decisions[0]!.decided_at, ISO);
  assert.equal(v.results[0]!.observed_at, ISO);
  assert.deepEqual(v.subject.attributes, { authenticated_at: 5 }, "inventory attributes are the inventory's data, passed through as given");
});
