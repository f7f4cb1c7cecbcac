/**
 * A policy names only checks that exist: a plugin, a seed check, or one declared under `checks:`
 * (`type: push` for a check fed by signals only). A typo used to become a push-only check that no
 * signal ever fed, which `hold` turned into a deny for every subject.
 */
import { builtinChecks } from "../../src/checks/registry.ts";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText, type LoadedConfig } from "../../src/config/load.ts";
import { ConfigError, type ConfigIssue } from "../../src/errors.ts";
import { own } from "../../src/util/own.ts";

const FILE = "/tmp/vigil-check-names/vigil.yaml";
const INVENTORY = "inventories:\n  - type: static\n    subjects:\n      - {id: frontend, kind: workload, identity: spiffe://example.org/frontend}\n      - {id: api, kind: workload}\n";

const load = (yaml: string): Promise<LoadedConfig> => loadConfigText(yaml, FILE, { env: {} });

async function issuesOf(yaml: string): Promise<ConfigIssue[]> {
  try {
    await load(yaml);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

describe("policies cannot name a check that does not exist", () => {
  it("a typo in a perimeter check list is an error at its key path, with a suggestion", async () => {
    const issues = await issuesOf(`identity_perimeter:
  continuous_verification:
    checks: [user_risk_scor]
`);
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [["identity_perimeter.continuous_verification.checks[0]", 3]],
    );
    assert.match(issues[0]!.message, /^unknown check "user_risk_scor"; did you mean "user_risk_score"\?/);
    assert.match(issues[0]!.message, /checks\.user_risk_scor: \{type: push\}/);
  });

  it("a typo in a communication policy is reported at each place it is used", async () => {
    const issues = await issuesOf(`communication_policies:
  - {source: frontend, destination: api, port: 1, continuous_verification: {checks: [certificate_validty]}}
  - {name: second, source: frontend, destination: api, port: 2, continuous_verification: {checks: [mfa, certificate_validty]}}
${INVENTORY}`);
    assert.deepEqual(
      issues.map((i) => i.path),
      ["communication_policies[0].continuous_verification.checks[0]", "communication_policies[1].continuous_verification.checks[1]"],
    );
    for (const i of issues) assert.match(i.message, /did you mean "certificate_validity"\?/);
  });

  it("a name far from every known check gets no suggestion, and still fails", async () => {
    const [issue] = await issuesOf("identity_perimeter:\n  continuous_verification:\n    checks: [zebra]\n");
    assert.match(issue!.message, /^unknown check "zebra"\. A check is a plugin \(([a-z_]+, )*[a-z_]+\)/);
    for (const builtin of builtinChecks) assert.ok(issue!.message.includes(builtin.type), `the message lists the plugin ${builtin.type}`);
    assert.doesNotMatch(issue!.message, /did you mean/);
  });

  it("an entry under checks: with no plugin and no type is not a declaration", async () => {
    const issues = await issuesOf("checks:\n  user_risk_scor: {ttl: 4h}\nidentity_perimeter:\n  continuous_verification:\n    checks: [user_risk_scor]\n");
    assert.deepEqual(issues.map((i) => [i.path, i.line]), [["checks.user_risk_scor", 2]]);
    assert.match(issues[0]!.message, /did you mean "user_risk_score"/);
  });

  it("type: push declares a check fed by signals only", async () => {
    const cfg = await load("checks:\n  my_signal: {type: push, ttl: 4h, on_unknown: ignore}\nidentity_perimeter:\n  continuous_verification:\n    checks: [my_signal]\n");
    assert.deepEqual(cfg.checks.my_signal, { name: "my_signal", type: "push", pull: false, config: undefined, on_unknown: "ignore", hold_grace: undefined, ttl: 14_400_000, timeout: 30_000 });
    assert.ok(cfg.policies[0]!.checks.includes("my_signal"));
  });

  it("a push check takes no plugin keys", async () => {
    const issues = await issuesOf("checks:\n  my_signal:\n    type: push\n    threshold: 5\n");
    assert.deepEqual(issues.map((i) => [i.path, i.line]), [["checks.my_signal.threshold", 4]]);
  });

  it("the seed's checks are known without a declaration: certificate_validity is a plugin, the others push-only", async () => {
    const cfg = await load("identity_perimeter:\n  continuous_verification:\n    checks: [device_compliance, user_risk_score, anomaly_detection]\n");
    assert.deepEqual(
      ["device_compliance", "user_risk_score", "anomaly_detection"].map((n) => [n, cfg.checks[n]!.pull, cfg.checks[n]!.type]),
      [
        ["device_compliance", false, "device_compliance"],
        ["user_risk_score", false, "user_risk_score"],
        ["anomaly_detection", false, "anomaly_detection"],
      ],
    );
    assert.ok(cfg.registry.checks.has("certificate_validity"));
  });

  it("an unknown explicit type suggests the plugin it resembles", async () => {
    const [issue] = await issuesOf("checks:\n  strong_auth: {type: mfq}\n");
    assert.equal(issue!.path, "checks.strong_auth.type");
    assert.match(issue!.message, /^unknown check type "mfq"; did you mean "mfa"\?; known: /);
  });

  it("a scoring weight and the Alertmanager default check name known checks too", async () => {
    const issues = await issuesOf("decision:\n  scoring:\n    weights: {user_risk_scor: 2}\nsignals:\n  alertmanager:\n    default_check: anomaly_detectoin\n");
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [
        ["decision.scoring.weights.user_risk_scor", 3],
        ["signals.alertmanager.default_check", 6],
      ],
    );
    assert.match(issues[0]!.message, /did you mean "user_risk_score"/);
    assert.match(issues[1]!.message, /did you mean "anomaly_detection"/);
  });

  it("a check named constructor is an ordinary declared name, not Object's", async () => {
    const issues = await issuesOf("identity_perimeter:\n  continuous_verification:\n    checks: [constructor]\n");
    assert.deepEqual(issues.map((i) => i.path), ["identity_perimeter.continuous_verification.checks[0]"]);
    const cfg = await load("checks:\n  constructor: {type: push}\nidentity_perimeter:\n  continuous_verification:\n    checks: [constructor]\n");
    assert.equal(own(cfg.checks, "constructor")?.type, "push");
  });
});

describe("communication policies cannot name a subject no inventory can yield", () => {
  const policy = (source: string, destination: string) => `communication_policies:\n  - {name: edge, source: "${source}", destination: "${destination}", port: 443}\n`;

  it("with static inventories only, an unknown source is an error with a suggestion", async () => {
    const issues = await issuesOf(policy("frontnd", "api") + INVENTORY);
    assert.deepEqual(issues.map((i) => [i.path, i.line]), [["communication_policies[0].source", 2]]);
    assert.match(issues[0]!.message, /^no subject has id or identity "frontnd"; did you mean "frontend"\?; .*static inventories cannot add one at run time/);
  });

  it("a source may be a subject's identity", async () => {
    const cfg = await load(policy("spiffe://example.org/frontend", "api") + INVENTORY);
    assert.deepEqual(cfg.warnings, []);
  });

  it("with no inventory at all, any source is an error", async () => {
    const issues = await issuesOf(policy("frontend", "api"));
    assert.deepEqual(issues.map((i) => i.path), ["communication_policies[0].source"]);
    assert.match(issues[0]!.message, /no inventory is configured/);
  });

  it("where a dynamic inventory may yield it, a near miss is a warning and the config loads", async () => {
    const cfg = await load(policy("frontnd", "api") + INVENTORY + "  - {type: file, path: more.yaml}\n");
    assert.deepEqual(
      cfg.warnings.map((w) => [w.path, w.line, w.message]),
      [["communication_policies[0].source", 2, 'no static subject has id or identity "frontnd"; did you mean "frontend"?']],
    );
  });

  it("where a dynamic inventory may yield it, a name unlike any static subject is left to run time", async () => {
    const cfg = await load(policy("checkout", "payments") + "inventories:\n  - {type: file, path: subjects.yaml}\n");
    assert.deepEqual(cfg.warnings, []);
  });

  it("a destination close to a subject's name is a warning; one unlike any is a service outside the inventories", async () => {
    const near = await load(policy("frontend", "apii") + INVENTORY);
    assert.deepEqual(near.warnings.map((w) => [w.path, w.message]), [["communication_policies[0].destination", 'no subject has id or identity "apii"; did you mean "api"?']]);
    const far = await load(policy("frontend", "ledger-db") + INVENTORY);
    assert.deepEqual(far.warnings, []);
  });
});
