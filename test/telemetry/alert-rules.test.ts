// Checks and unit-tests the Prometheus alerting rules with the real promtool.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import * as N from "../../src/telemetry/names.ts";

const DIR = fileURLToPath(new URL("../../deploy/prometheus/", import.meta.url));
const RULES = `${DIR}vigil-alerts.yml`;
const RULE_TESTS = `${DIR}vigil-alerts.test.yml`;
const CONFIG = `${DIR}prometheus.yml`;

/** Every rule's `expr`, in file order. */
function ruleExpressions(): string[] {
  const doc = parse(readFileSync(RULES, "utf8")) as { groups: { rules: { expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

const hasPromtool = spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;
const skip = hasPromtool
  ? false
  : "promtool is not on PATH: install the Debian package `prometheus` (apt-get install prometheus) to check the alert rules";

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { cwd: DIR, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const EXPECTED_ALERTS = [
  "VigilDown",
  "VigilEnforcementPaused",
  "VigilActionFailures",
  "VigilEnforcementUnreconciled",
  "VigilEnforcementFailed",
  "VigilQueueBacklog",
  "VigilConfigReloadFailed",
  "VigilSignalLatencyHigh",
  "VigilCertificateExpiringSoon",
  "VigilCertificateRevoked",
  "VigilCertificateRevocationUnknown",
  "VigilCertificateCheckErrors",
  "VigilCheckErrors",
  "VigilNotEvaluating",
  "VigilEnforcementPausedTooLong",
  "VigilInventoryStale",
  "VigilClusterRedisDown",
];

test("promtool check rules accepts vigil-alerts.yml", { skip }, () => {
  const r = promtool("check", "rules", RULES);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, new RegExp(`SUCCESS: ${EXPECTED_ALERTS.length} rules found`));
});

test("promtool test rules passes vigil-alerts.test.yml", { skip }, () => {
  const r = promtool("test", "rules", RULE_TESTS);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS/);
});

test("promtool check config accepts the example prometheus.yml", { skip }, () => {
  const r = promtool("check", "config", "--syntax-only", CONFIG);
  assert.equal(r.status, 0, r.output);
});

test("the rules define exactly the expected alerts, each tested firing and not firing", () => {
  const rules = readFileSync(RULES, "utf8");
  const alerts = [...rules.matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
  assert.deepEqual(alerts, EXPECTED_ALERTS);
  const tests = readFileSync(RULE_TESTS, "utf8");
  for (const alert of EXPECTED_ALERTS) {
    const blocks = tests.split(/\n\s*- eval_time:/).filter((b) => new RegExp(`alertname: ${alert}\\n`).test(b));
    assert.ok(blocks.some((b) => /exp_alerts: \[\]/.test(b)), `${alert}: no not-firing case`);
    assert.ok(blocks.some((b) => /exp_alerts:\n\s+- exp_labels:/.test(b)), `${alert}: no firing case`);
  }
});

test("the rules only use metrics vigil exports", () => {
  // Parsed, not matched line by line: an expression may span lines (`expr: |-`).
  const exprs = ruleExpressions();
  assert.equal(exprs.length, EXPECTED_ALERTS.length);
  const known = new Set([...N.ALL_METRICS, ...N.CERTIFICATE_METRICS, ...N.CLUSTER_METRICS].map((d) => d.name));
  for (const expr of exprs) {
    for (const [name] of expr.matchAll(/\bvigil_[a-z0-9_]+/g)) {
      const base = name.replace(/_(bucket|count|sum)$/, "");
      assert.ok(known.has(name) || known.has(base), `${name} in "${expr}" is not defined in src/telemetry/names.ts`);
    }
  }
});
