/**
 * Durations, sizes and names in a config are bounded: a duration that becomes a timer fits Node's
 * timer, `1h1h` is not a duration, a config is at most 4 MiB and expands at most 100 YAML aliases, and
 * `__proto__` cannot smuggle keys past the schema.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, loadConfigText } from "../../src/config/load.ts";
import { ConfigError, type ConfigIssue } from "../../src/errors.ts";
import { runCli } from "../helpers/agent-process.ts";

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-limits-test-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The documented cap (docs/configuration.md): 4 MiB. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

async function issuesOf(yaml: string): Promise<ConfigIssue[]> {
  try {
    await loadConfigText(yaml, join(dir, "vigil.yaml"), { env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

const TIMER_LIMIT = /^must be at most 24d20h31m23s647ms \(2\^31-1 ms, the longest a timer can wait\)$/;

describe("durations that become timers fit Node's timer", () => {
  const cases: { name: string; yaml: string; path: string }[] = [
    { name: "a check timeout", yaml: "checks:\n  anomaly_detection: {timeout: 25d}\n", path: "checks.anomaly_detection.timeout" },
    { name: "agent.shutdown_timeout", yaml: "agent:\n  shutdown_timeout: 30d\n", path: "agent.shutdown_timeout" },
    { name: "the OTLP export interval", yaml: "agent:\n  metrics:\n    otlp: {endpoint: http://127.0.0.1:4318, interval: 4w}\n", path: "agent.metrics.otlp.interval" },
    { name: "the first retry delay", yaml: "enforcement:\n  retry: {delay: 25d}\n", path: "enforcement.retry.delay" },
    { name: "the longest retry delay", yaml: "enforcement:\n  retry: {max_delay: 52w}\n", path: "enforcement.retry.max_delay" },
    {
      name: "a certificate source timeout",
      yaml: "checks:\n  certificate_validity:\n    trust_bundle: ca.pem\n    source: {type: tls, address: \"{{attributes.endpoint}}\", timeout: 25d}\n",
      path: "checks.certificate_validity.source.timeout",
    },
  ];
  for (const c of cases) {
    it(`${c.name} over 24d20h31m23s647ms is an error at its path`, async () => {
      const issues = await issuesOf(c.yaml);
      assert.deepEqual(issues.map((i) => i.path), [c.path]);
      assert.match(issues[0]!.message, TIMER_LIMIT);
    });
  }

  it("exactly the timer limit is accepted", async () => {
    const cfg = await loadConfigText("checks:\n  anomaly_detection: {timeout: 24d20h31m23s647ms}\nagent:\n  shutdown_timeout: 24d20h31m23s647ms\n", join(dir, "vigil.yaml"), { env: {} });
    assert.equal(cfg.checks.anomaly_detection!.timeout, 2 ** 31 - 1);
    assert.equal(cfg.raw.agent.shutdown_timeout, 2 ** 31 - 1);
  });

  it("durations compared with timestamps (ttl, hold_grace, cooldown, window) may be longer, up to 3650d", async () => {
    const cfg = await loadConfigText(
      "checks:\n  anomaly_detection: {ttl: 90d, hold_grace: 30d}\ndecision:\n  cooldown: 60d\nenforcement:\n  limits: {window: 30d}\n",
      join(dir, "vigil.yaml"),
      { env: {} },
    );
    assert.equal(cfg.checks.anomaly_detection!.ttl, 90 * 86_400_000);
    const issues = await issuesOf("checks:\n  anomaly_detection: {ttl: 3651d}\n");
    assert.deepEqual(issues.map((i) => [i.path, i.message]), [["checks.anomaly_detection.ttl", "must be at most 3650d"]]);
  });
});

describe("a duration names each unit once, largest first", () => {
  for (const bad of ["1h1h", "30m1h", "1s1m"]) {
    it(`ttl: ${bad} is refused`, async () => {
      const issues = await issuesOf(`checks:\n  anomaly_detection: {ttl: ${bad}}\n`);
      assert.deepEqual(issues.map((i) => [i.path, i.line]), [["checks.anomaly_detection.ttl", 2]]);
    });
  }
});

describe("config size and YAML aliases", () => {
  it(`a config file over ${MAX_CONFIG_BYTES} bytes is refused before it is parsed`, async () => {
    const file = join(dir, "huge.yaml");
    // A comment is the cheapest YAML there is: the file would be a valid (empty) config if it were parsed.
    writeFileSync(file, "#" + "x".repeat(MAX_CONFIG_BYTES) + "\n");
    await assert.rejects(loadConfig(file), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.file, file);
      assert.match(err.issues[0]!.message, /larger than 4194304 bytes \(4 MiB\)/);
      return true;
    });
  });

  it("a config at the cap still loads", async () => {
    const file = join(dir, "at-cap.yaml");
    const head = "agent: {dry_run: true}\n#";
    writeFileSync(file, head + "x".repeat(MAX_CONFIG_BYTES - head.length - 1) + "\n");
    const cfg = await loadConfig(file);
    assert.equal(cfg.raw.agent.dry_run, true);
  });

  it("a device that never ends is refused, not read without end", async () => {
    await assert.rejects(loadConfig("/dev/zero"), (err: unknown) => err instanceof ConfigError && /larger than 4194304 bytes/.test(err.issues[0]!.message));
  });

  it("a ${file:…} reference over 4 MiB is an issue at its key", async () => {
    const big = join(dir, "big-secret");
    writeFileSync(big, "s".repeat(MAX_CONFIG_BYTES + 1));
    const issues = await issuesOf(`agent:\n  api:\n    token: "\${file:${big}}"\n`);
    const tooLarge = issues.filter((i) => /larger than 4194304 bytes/.test(i.message));
    assert.deepEqual(tooLarge.map((i) => [i.path, i.line]), [["agent.api.token", 3]]);
  });

  it("an alias bomb: vigil validate exits 2 naming the file", async () => {
    const file = join(dir, "bomb.yaml");
    const lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(",")}]`);
    writeFileSync(file, lines.join("\n") + "\n");
    const r = await runCli(["validate", "-c", file]);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(file), r.stderr);
    assert.match(r.stderr, /YAML: Excessive alias count.*at most 100 aliases/);
  });

  it("a few aliases (anchors reused for shared settings) still work", async () => {
    const cfg = await loadConfigText("checks:\n  anomaly_detection: &shared {on_unknown: ignore}\n  user_risk_score: *shared\n", join(dir, "vigil.yaml"), { env: {} });
    assert.equal(cfg.checks.user_risk_score!.on_unknown, "ignore");
  });
});

describe("__proto__ cannot smuggle keys past the schema", () => {
  it("a __proto__ key is an error at its path, and what it holds is not read", async () => {
    const issues = await issuesOf("agent:\n  __proto__:\n    dry_run: true\n");
    assert.deepEqual(issues.map((i) => [i.path, i.line, i.message]), [["agent.__proto__", 2, "__proto__ is not allowed as a key"]]);
  });

  it("${env:constructor} is an unset variable, not Object", async () => {
    const issues = await issuesOf("agent:\n  api:\n    token: \"${env:constructor}\"\n");
    assert.match(issues[0]!.message, /environment variable constructor is not set/);
  });
});

describe("a URL carrying user:password@ is refused, not sent without them", () => {
  const cases: { name: string; yaml: string; path: string }[] = [
    { name: "a webhook url", yaml: "enforcement:\n  deny:\n    - {type: webhook, url: \"https://hook:s3cr3t-pa55@hooks.example.com/vigil\", secret: 0123456789abcdef}\n", path: "enforcement.deny[0].url" },
    { name: "a webhook url with a user only", yaml: "enforcement:\n  deny:\n    - {type: webhook, url: \"https://hook@hooks.example.com/vigil\", secret: 0123456789abcdef}\n", path: "enforcement.deny[0].url" },
    { name: "a Consul address", yaml: "providers:\n  consul: {address: \"http://acl:s3cr3t-pa55@127.0.0.1:8500\"}\n", path: "providers.consul.address" },
    { name: "a Vault address", yaml: "providers:\n  vault: {address: \"https://x:s3cr3t-pa55@vault.example.com\", token: hvs.0123456789abcdef, mount: pki}\n", path: "providers.vault.address" },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const issues = (await issuesOf(c.yaml)).filter((i) => i.path === c.path);
      assert.equal(issues.length, 1, JSON.stringify(issues));
      assert.match(issues[0]!.message, /may not carry user:password@/);
      assert.ok(!issues[0]!.message.includes("s3cr3t"), issues[0]!.message);
    });
  }

  it("a URL without credentials is fine", async () => {
    const cfg = await loadConfigText("enforcement:\n  deny:\n    - {type: webhook, url: \"https://hooks.example.com/vigil\", secret: 0123456789abcdef}\n", join(dir, "vigil.yaml"), { env: {} });
    assert.equal(cfg.raw.enforcement.deny.length, 1);
  });
});
