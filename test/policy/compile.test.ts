import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText, type LoadedConfig } from "../../src/config/load.ts";
import { ConfigError, type ConfigIssue } from "../../src/errors.ts";

const FILE = "/tmp/vigil-compile-test/vigil.yaml";

/** The subjects the policies below name as source or destination (appended, so the lines asserted stay put). */
const SUBJECTS = ["a", "b", "c", "d", "frontend", "api", "spiffe://example.org/ns/web", "api:8443"];
const INVENTORY = `inventories:\n  - type: static\n    subjects:\n${SUBJECTS.map((id) => `      - {id: "${id}", kind: workload}\n`).join("")}`;

function load(yaml: string): Promise<LoadedConfig> {
  return loadConfigText(/^inventories:/m.test(yaml) ? yaml : yaml + INVENTORY, FILE, { env: {} });
}

async function issuesOf(yaml: string): Promise<ConfigIssue[]> {
  try {
    await load(yaml);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

/** One communication policy with the given interval. */
const withInterval = (interval: string) => `communication_policies:
  - source: frontend
    destination: api
    port: 443
    continuous_verification:
      interval: "${interval}"
`;

describe("compile: schedules", () => {
  const ok: { interval: string; cron: string; spread: number }[] = [
    { interval: "30s", cron: "*/30 * * * * *", spread: 30_000 },
    { interval: "5m", cron: "0 */5 * * * *", spread: 300_000 },
    { interval: "15m", cron: "0 */15 * * * *", spread: 900_000 },
    { interval: "1h", cron: "0 0 */1 * * *", spread: 3_600_000 },
    { interval: "6h", cron: "0 0 */6 * * *", spread: 21_600_000 },
    { interval: "1d", cron: "0 0 0 * * *", spread: 86_400_000 },
  ];
  for (const c of ok) {
    it(`${c.interval} → "${c.cron}"`, async () => {
      const cfg = await load(withInterval(c.interval));
      assert.deepEqual(cfg.policies[0]!.schedule, { cron: c.cron, spread: c.spread, text: c.interval });
    });
  }

  it("interval defaults to 5m", async () => {
    const cfg = await load("communication_policies:\n  - source: a\n    destination: b\n    port: 1\n");
    assert.deepEqual(cfg.policies[0]!.schedule, { cron: "0 */5 * * * *", spread: 300_000, text: "5m" });
  });

  for (const bad of ["7m", "90s", "1500ms", "2d", "7h"]) {
    it(`${bad} is rejected at the interval's path`, async () => {
      const issues = await issuesOf(withInterval(bad));
      assert.equal(issues.length, 1);
      assert.equal(issues[0]!.path, "communication_policies[0].continuous_verification.interval");
      assert.equal(issues[0]!.line, 6);
      assert.match(issues[0]!.message, new RegExp(`^interval ${bad} must be`));
    });
  }

  it("a cron expression is accepted as is", async () => {
    const cfg = await load(withInterval("*/10 * * * *"));
    assert.deepEqual(cfg.policies[0]!.schedule, { cron: "*/10 * * * *", spread: 60_000, text: "*/10 * * * *" });
  });

  it("something that is neither a duration nor a cron expression is rejected", async () => {
    const issues = await issuesOf(withInterval("every tuesday"));
    assert.deepEqual(issues.map((i) => i.path), ["communication_policies[0].continuous_verification.interval"]);
    assert.match(issues[0]!.message, /expected a duration like "5m" or a cron expression, got "every tuesday"/);
  });

  it("the perimeter's interval is checked too", async () => {
    const issues = await issuesOf("identity_perimeter:\n  continuous_verification:\n    interval: 7m\n");
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [["identity_perimeter.continuous_verification.interval", 3]],
    );
  });
});

describe("compile: policy names", () => {
  it("default name is <source>-to-<destination>", async () => {
    const cfg = await load("communication_policies:\n  - source: frontend\n    destination: api\n    port: 443\n");
    assert.deepEqual(cfg.policies.map((p) => p.name), ["frontend-to-api"]);
    assert.equal(cfg.policies[0]!.kind, "communication");
    assert.deepEqual(cfg.policies[0]!.edge, { source: "frontend", destination: "api", port: 443, protocol: "https", authentication: "mutual_tls", authorization: "none" });
  });

  it("default name replaces characters outside [A-Za-z0-9_.-] with _", async () => {
    const cfg = await load("communication_policies:\n  - source: spiffe://example.org/ns/web\n    destination: api:8443\n    port: 443\n");
    assert.deepEqual(cfg.policies.map((p) => p.name), ["spiffe_example.org_ns_web-to-api_8443"]);
  });

  it("an explicit name wins", async () => {
    const cfg = await load("communication_policies:\n  - name: edge-1\n    source: a\n    destination: b\n    port: 1\n");
    assert.deepEqual(cfg.policies.map((p) => p.name), ["edge-1"]);
  });

  it("duplicate policy names (explicit and default) → one issue per duplicate", async () => {
    const issues = await issuesOf(`communication_policies:
  - source: a
    destination: b
    port: 1
  - name: a-to-b
    source: c
    destination: d
    port: 2
identity_perimeter:
  name: a-to-b
`);
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [
        ["communication_policies[1].name", 5],
        ["identity_perimeter.name", 10],
      ],
    );
    assert.match(issues[0]!.message, /policy name "a-to-b" is already used by communication_policies\[0\]/);
  });

  it("two policies on the same edge without names collide", async () => {
    const issues = await issuesOf("communication_policies:\n  - {source: a, destination: b, port: 1}\n  - {source: a, destination: b, port: 2}\n");
    assert.deepEqual(issues.map((i) => [i.path, i.line]), [["communication_policies[1].name", 3]]);
  });
});

describe("compile: checks", () => {
  const perimeterCases: { name: string; yaml: string; checks: string[] }[] = [
    { name: "all require_* flags (defaults) → mfa, managed_device, location, session_age", yaml: "identity_perimeter: {}\n", checks: ["mfa", "managed_device", "location", "session_age"] },
    {
      name: "require_mfa false → no mfa",
      yaml: "identity_perimeter:\n  require_mfa: false\n",
      checks: ["managed_device", "location", "session_age"],
    },
    {
      name: "only session_age when every flag is off",
      yaml: "identity_perimeter:\n  require_mfa: false\n  require_managed_device: false\n  require_location_check: false\n",
      checks: ["session_age"],
    },
    {
      name: "extra checks follow the implied ones, without duplicates",
      yaml: "identity_perimeter:\n  require_location_check: false\n  continuous_verification:\n    checks: [user_risk, mfa]\nchecks:\n  user_risk: {type: push}\n",
      checks: ["mfa", "managed_device", "session_age", "user_risk"],
    },
  ];
  for (const c of perimeterCases) {
    it(`perimeter: ${c.name}`, async () => {
      const cfg = await load(c.yaml);
      const p = cfg.policies.find((x) => x.kind === "perimeter")!;
      assert.equal(p.name, "identity-perimeter");
      assert.deepEqual(p.checks, c.checks);
      for (const name of c.checks.filter((n) => n !== "user_risk")) assert.equal(cfg.checks[name]!.pull, true, name);
    });
  }

  it("perimeter settings flow into the implied checks' plugin config", async () => {
    const cfg = await load("identity_perimeter:\n  allowed_locations: [DE, FR]\n  session_duration: 30m\n");
    assert.deepEqual(cfg.checks.location!.config, { attribute: "country", allowed: ["DE", "FR"] });
    assert.deepEqual(cfg.checks.session_age!.config, { attribute: "authenticated_at", max_age: 1_800_000 });
    assert.deepEqual(cfg.checks.mfa!.config, { attribute: "mfa" });
    assert.deepEqual(cfg.checks.managed_device!.config, {});
  });

  it("push-only checks (no plugin) compile with pull:false and keep their common keys", async () => {
    const cfg = await load(`checks:
  user_risk_score:
    on_unknown: ignore
    ttl: 1h
    hold_grace: 2m
  anomaly_detection:
    on_unknown: ignore
    ttl: 1h
    hold_grace: 2m
  declared_signal: {type: push}
communication_policies:
  - source: a
    destination: b
    port: 1
    continuous_verification:
      checks: [user_risk_score, anomaly_detection, declared_signal]
`);
    // user_risk_score has a plugin now; without sources it gathers nothing and stays push-only.
    const { config: riskConfig, ...risk } = cfg.checks.user_risk_score!;
    assert.deepEqual(risk, { name: "user_risk_score", type: "user_risk_score", pull: false, on_unknown: "ignore", hold_grace: 120_000, ttl: 3_600_000, timeout: 30_000 });
    assert.ok(riskConfig !== undefined, "the plugin's defaults are compiled");
    // anomaly_detection has a plugin now; without series it gathers nothing and stays push-only.
    const { config: anomalyConfig, ...anomaly } = cfg.checks.anomaly_detection!;
    assert.deepEqual(anomaly, { name: "anomaly_detection", type: "anomaly_detection", pull: false, on_unknown: "ignore", hold_grace: 120_000, ttl: 3_600_000, timeout: 30_000 });
    assert.equal((anomalyConfig as { series?: unknown }).series, undefined);
    assert.deepEqual(cfg.checks.declared_signal, {
      name: "declared_signal",
      type: "push",
      pull: false,
      config: undefined,
      on_unknown: undefined,
      hold_grace: undefined,
      ttl: undefined,
      timeout: 30_000,
    });
    assert.deepEqual(cfg.policies[0]!.checks, ["user_risk_score", "anomaly_detection", "declared_signal"]);
  });

  it("a check with an explicit built-in type is a pull check", async () => {
    const cfg = await load("checks:\n  strong_auth:\n    type: mfa\n    attribute: amr\n");
    assert.equal(cfg.checks.strong_auth!.pull, true);
    assert.equal(cfg.checks.strong_auth!.type, "mfa");
    assert.deepEqual(cfg.checks.strong_auth!.config, { attribute: "amr" });
  });

  const checkIssues: { name: string; yaml: string; issues: [string, number][] }[] = [
    { name: "unknown check type", yaml: "checks:\n  foo:\n    type: nope\n", issues: [["checks.foo.type", 3]] },
    { name: "plugin-specific key on a push-only check", yaml: "checks:\n  anomaly_detection:\n    on_unknown: ignore\n    threshold: 5\n", issues: [["checks.anomaly_detection.threshold", 4]] },
    {
      name: "unknown type plus a plugin key → both reported",
      yaml: "checks:\n  foo:\n    type: nope\n    bar: 1\n",
      issues: [
        ["checks.foo.type", 3],
        ["checks.foo.bar", 4],
      ],
    },
    { name: "unknown key in a built-in check's config", yaml: "checks:\n  mfa:\n    bogus: 1\n", issues: [["checks.mfa.bogus", 3]] },
    { name: "wrong type in a built-in check's config", yaml: "checks:\n  location:\n    allowed: [germany]\n", issues: [["checks.location.allowed[0]", 3]] },
  ];
  for (const c of checkIssues) {
    it(`issue: ${c.name}`, async () => {
      const issues = await issuesOf(c.yaml);
      assert.deepEqual(issues.map((i) => [i.path, i.line]), c.issues);
    });
  }

  it("unknown check type message lists the known types", async () => {
    const [issue] = await issuesOf("checks:\n  foo:\n    type: nope\n");
    assert.equal(issue!.message, 'unknown check type "nope"; known: mfa, managed_device, location, session_age, certificate_validity, device_compliance, anomaly_detection, user_risk_score');
  });
});

describe("compile: actions", () => {
  const policy = "communication_policies:\n  - source: a\n    destination: b\n    port: 1\n";

  it("actions get default names and levels; policy enforcement overrides the top-level one", async () => {
    const cfg = await load(`communication_policies:
  - source: a
    destination: b
    port: 1
    enforcement:
      deny:
        - type: log
          name: policy-deny
identity_perimeter: {}
enforcement:
  read_only:
    - type: log
  deny:
    - type: log
      dry_run: true
`);
    const [comm, perim] = cfg.policies;
    assert.deepEqual(comm!.actions.deny.map((a) => [a.name, a.type, a.level]), [["policy-deny", "log", "deny"]]);
    assert.deepEqual(comm!.actions.read_only, []);
    assert.deepEqual(perim!.actions.read_only.map((a) => [a.name, a.level, a.dry_run]), [["read_only[0]:log", "read_only", undefined]]);
    assert.deepEqual(perim!.actions.deny.map((a) => [a.name, a.level, a.dry_run]), [["deny[0]:log", "deny", true]]);
  });

  const actionIssues: { name: string; yaml: string; issues: [string, number][] }[] = [
    { name: "unknown action type (top level)", yaml: `${policy}enforcement:\n  deny:\n    - type: carrier_pigeon\n`, issues: [["enforcement.deny[0].type", 7]] },
    {
      name: "unknown action type (policy level)",
      yaml: `${policy}    enforcement:\n      read_only:\n        - type: log\n        - type: carrier_pigeon\n`,
      issues: [["communication_policies[0].enforcement.read_only[1].type", 8]],
    },
    {
      name: "webhook: short secret is validated by the webhook schema",
      yaml: `${policy}enforcement:\n  deny:\n    - type: webhook\n      url: https://hooks.example.com/vigil\n      secret: short\n`,
      issues: [["enforcement.deny[0].secret", 9]],
    },
    {
      name: "webhook: bad url and unknown key",
      yaml: `${policy}enforcement:\n  deny:\n    - type: webhook\n      url: ftp://hooks.example.com/vigil\n      secret: 0123456789abcdef\n      retries: 3\n`,
      issues: [
        ["enforcement.deny[0].url", 8],
        ["enforcement.deny[0].retries", 10],
      ],
    },
    {
      name: "top-level problems are reported once even when several policies inherit them",
      yaml: `${policy}identity_perimeter: {}\nenforcement:\n  deny:\n    - type: carrier_pigeon\n    - type: webhook\n      url: https://hooks.example.com/vigil\n      secret: short\n`,
      issues: [
        ["enforcement.deny[0].type", 8],
        ["enforcement.deny[1].secret", 11],
      ],
    },
    {
      // At the second action's name, not at an enforcement key the policy does not have.
      name: "duplicate action names within a policy, across levels",
      yaml: `${policy}enforcement:\n  read_only:\n    - {type: log, name: same}\n  deny:\n    - {type: log, name: same}\n`,
      issues: [["enforcement.deny[0].name", 9]],
    },
  ];
  for (const c of actionIssues) {
    it(`issue: ${c.name}`, async () => {
      const issues = await issuesOf(c.yaml);
      assert.deepEqual(issues.map((i) => [i.path, i.line]), c.issues);
    });
  }

  it("webhook short secret message comes from the webhook schema", async () => {
    const [issue] = await issuesOf(`${policy}enforcement:\n  deny:\n    - type: webhook\n      url: https://hooks.example.com/vigil\n      secret: short\n`);
    assert.equal(issue!.message, "must be at least 16 characters");
  });
});

describe("compile: rules and limits", () => {
  it("policy decision overrides merge over the global decision section", async () => {
    const cfg = await load(`decision:
  confirm: 2
  restore_after: 3
  cooldown: 5m
  hold_grace: 2m
communication_policies:
  - source: a
    destination: b
    port: 1
    decision:
      confirm: 4
      on_unknown: deny
    risk_based_access:
      medium_risk: deny
identity_perimeter: {}
`);
    const [comm, perim] = cfg.policies;
    assert.equal(comm!.rules.confirm, 4);
    assert.equal(comm!.rules.restore_after, 3);
    assert.equal(comm!.rules.cooldown, 300_000);
    assert.equal(comm!.on_unknown, "deny");
    assert.equal(comm!.hold_grace, 120_000);
    assert.deepEqual(comm!.rules.risk_based_access, { low_risk: "full_access", medium_risk: "deny", high_risk: "deny" });
    assert.equal(perim!.rules.confirm, 2);
    assert.equal(perim!.on_unknown, "hold");
    assert.deepEqual(perim!.rules.risk_based_access, { low_risk: "full_access", medium_risk: "read_only", high_risk: "deny" });
    assert.deepEqual(perim!.limits, { max_actions: 20, window: 600_000, auto_resume: true });
  });
});
