import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadConfig, loadConfigText, type LoadedConfig } from "../../src/config/load.ts";
import { ConfigError, VigilError, type ConfigIssue } from "../../src/errors.ts";
import { scrub } from "../../src/util/redact.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");
const DEFAULT_CONFIG = join(ROOT, "config/vigil.yaml");

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-load-test-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function load(yaml: string, env: Record<string, string> = {}): Promise<LoadedConfig> {
  return loadConfigText(yaml, join(dir, "vigil.yaml"), { env });
}

async function issuesOf(yaml: string, env: Record<string, string> = {}): Promise<ConfigIssue[]> {
  try {
    await load(yaml, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, "VIGIL_ERR_CONFIG_INVALID");
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

const pathsAndLines = (issues: readonly ConfigIssue[]) => issues.map((i) => [i.path, i.line]);

/** Unique per run so secrets registered by one test cannot make another pass by accident. */
const uniq = (label: string) => `${label}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

describe("loadConfig: the default config", () => {
  it("config/vigil.yaml loads with its 3 policies", async () => {
    const cfg = await loadConfig(DEFAULT_CONFIG);
    assert.equal(cfg.file, DEFAULT_CONFIG);
    assert.equal(cfg.dir, join(ROOT, "config"));
    assert.deepEqual(
      cfg.policies.map((p) => [p.name, p.kind]),
      [
        ["frontend-to-api", "communication"],
        ["billing-to-api", "communication"],
        ["identity-perimeter", "perimeter"],
      ],
    );
    assert.equal(cfg.default_security_rule, "deny_all");
    assert.deepEqual(cfg.policies[1]!.checks, ["certificate_validity"]);
    assert.deepEqual(cfg.policies[2]!.checks, ["mfa", "managed_device", "location", "session_age", "user_risk_score", "device_compliance"]);
    assert.deepEqual(
      Object.values(cfg.checks).filter((c) => !c.pull).map((c) => c.name).sort(),
      ["anomaly_detection", "device_compliance", "user_risk_score"],
    );
  });

  it("a missing file → VigilError VIGIL_ERR_CONFIG_READ", async () => {
    await assert.rejects(loadConfig(join(dir, "nope.yaml")), (err: unknown) => {
      assert.ok(err instanceof VigilError);
      assert.ok(!(err instanceof ConfigError));
      assert.equal(err.code, "VIGIL_ERR_CONFIG_READ");
      assert.match(err.message, /ENOENT/);
      return true;
    });
  });
});

describe("loadConfig: every problem at once", () => {
  it("reports all 6 planted problems with dotted paths and 1-based lines", async () => {
    const yaml = [
      /*  1 */ "agent:",
      /*  2 */ "  log_level: loud",
      /*  3 */ "  api:",
      /*  4 */ '    listen: "nohost"',
      /*  5 */ "decision:",
      /*  6 */ "  confirm: 0",
      /*  7 */ "communication_policies:",
      /*  8 */ "  - source: frontend",
      /*  9 */ "    destination: api",
      /* 10 */ "    port: 70000",
      /* 11 */ "identity_perimeter:",
      /* 12 */ "  allowed_locations:",
      /* 13 */ "    - DE",
      /* 14 */ "    - germany",
      /* 15 */ "enforcement:",
      /* 16 */ "  limits:",
      /* 17 */ "    max_actions: 0",
      "",
    ].join("\n");
    const issues = await issuesOf(yaml);
    assert.equal(issues.length, 6);
    assert.deepEqual(pathsAndLines(issues), [
      ["agent.log_level", 2],
      ["agent.api.listen", 4],
      ["decision.confirm", 6],
      ["communication_policies[0].port", 10],
      ["identity_perimeter.allowed_locations[1]", 14],
      ["enforcement.limits.max_actions", 17],
    ]);
    assert.equal(issues[4]!.message, "expected an ISO 3166-1 alpha-2 code like DE");
  });

  it("the error message lists every problem with its path and line", async () => {
    try {
      await load("agent:\n  log_level: loud\ndecision:\n  confirm: 0\n");
      assert.fail("expected a ConfigError");
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const lines = err.message.split("\n");
      assert.equal(lines[0], `${join(dir, "vigil.yaml")}: 2 problems`);
      assert.match(lines[1]!, /^ {2}agent\.log_level \(line 2\): /);
      assert.match(lines[2]!, /^ {2}decision\.confirm \(line 4\): /);
    }
  });

  const unknownKeys: { name: string; yaml: string; issues: [string, number][] }[] = [
    { name: "top level", yaml: "colour: blue\n", issues: [["colour", 1]] },
    { name: "agent.api", yaml: "agent:\n  api:\n    tls: true\n", issues: [["agent.api.tls", 3]] },
    {
      name: "a communication policy",
      // With an inventory naming the source: the later checks (run too) find nothing else wrong.
      yaml: "communication_policies:\n  - source: a\n    destination: b\n    port: 1\n    timeout: 5s\ninventories: [{type: static, subjects: [{id: a, kind: workload}]}]\n",
      issues: [["communication_policies[0].timeout", 5]],
    },
    {
      name: "identity_perimeter.risk_based_access",
      yaml: "identity_perimeter:\n  risk_based_access:\n    critical_risk: deny\n",
      issues: [["identity_perimeter.risk_based_access.critical_risk", 3]],
    },
    {
      name: "one issue per key, at every level together",
      yaml: "colour: blue\nshape: round\nagent:\n  api:\n    tls: true\n  colour: red\nidentity_perimeter:\n  risk_based_access:\n    critical_risk: deny\n",
      issues: [
        ["colour", 1],
        ["shape", 2],
        ["agent.api.tls", 5],
        ["agent.colour", 6],
        ["identity_perimeter.risk_based_access.critical_risk", 9],
      ],
    },
  ];
  for (const c of unknownKeys) {
    it(`unknown keys are errors: ${c.name}`, async () => {
      const issues = await issuesOf(c.yaml);
      assert.deepEqual(pathsAndLines(issues), c.issues);
      for (const i of issues) assert.equal(i.message, "unknown key");
    });
  }

  it("YAML syntax error → ConfigError with a line", async () => {
    const issues = await issuesOf("agent:\n  mode: embedded\n  api: [\n");
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, "");
    assert.equal(issues[0]!.line, 4);
    assert.match(issues[0]!.message, /^YAML: /);
  });

  it("duplicate YAML keys are a syntax error with the duplicate's line", async () => {
    const issues = await issuesOf("agent:\n  dry_run: true\n  dry_run: false\n");
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.line, 3);
    assert.match(issues[0]!.message, /^YAML: /);
  });
});

describe("loadConfig: ${env:…} and ${file:…}", () => {
  it("${env:NAME} expands and the value is a registered secret", async () => {
    const token = uniq("env-token");
    const cfg = await load('agent:\n  api:\n    token: "${env:VIGIL_TEST_TOKEN}"\n', { VIGIL_TEST_TOKEN: token });
    assert.equal(cfg.raw.agent.api.token, token);
    assert.equal(scrub(`Authorization: Bearer ${token}.`), "Authorization: Bearer [REDACTED].");
  });

  it("${env:NAME} expands inside a longer string", async () => {
    const host = uniq("host");
    const cfg = await load('exempt:\n  - id: "pre-${env:VIGIL_TEST_HOST}-post"\n', { VIGIL_TEST_HOST: host });
    assert.equal(cfg.raw.exempt[0]!.id, `pre-${host}-post`);
  });

  it("a missing env var → issue at its path and line", async () => {
    const issues = await issuesOf('communication_policies:\n  - source: a\n    destination: b\n    port: 1\n    exempt:\n      - id: "${env:VIGIL_TEST_MISSING}"\ninventories: [{type: static, subjects: [{id: a, kind: workload}]}]\n');
    assert.deepEqual(pathsAndLines(issues), [["communication_policies[0].exempt[0].id", 6]]);
    assert.equal(issues[0]!.message, "environment variable VIGIL_TEST_MISSING is not set");
  });

  it("${file:…} reads the file and strips one trailing newline", async () => {
    const secret = uniq("file-secret");
    writeFileSync(join(dir, "token.txt"), `${secret}\n`);
    writeFileSync(join(dir, "two-newlines.txt"), `${secret}-2\n\n`);
    const cfg = await load(`agent:\n  api:\n    token: "\${file:${join(dir, "token.txt")}}"\nexempt:\n  - id: "\${file:two-newlines.txt}"\n`);
    assert.equal(cfg.raw.agent.api.token, secret);
    // Relative paths resolve against the config file's directory; only one newline is stripped.
    assert.equal(cfg.raw.exempt[0]!.id, `${secret}-2\n`);
    assert.equal(scrub(`x ${secret} y`), "x [REDACTED] y");
  });

  it("${file:…} also strips a trailing CRLF", async () => {
    const secret = uniq("crlf-secret");
    writeFileSync(join(dir, "crlf.txt"), `${secret}\r\n`);
    const cfg = await load('agent:\n  api:\n    token: "${file:crlf.txt}"\n');
    assert.equal(cfg.raw.agent.api.token, secret);
  });

  it("an unreadable file → issue at its path and line", async () => {
    const missing = join(dir, "no-such-secret");
    const issues = await issuesOf(`exempt:\n  - kind: user\n    id: "\${file:${missing}}"\n`);
    assert.deepEqual(pathsAndLines(issues), [["exempt[0].id", 3]]);
    assert.equal(issues[0]!.message, `cannot read ${missing}: ENOENT`);
  });

  it("$${ stands for a literal ${ and is not expanded", async () => {
    const cfg = await load('$schema: "$${env:HOME}"\nexempt:\n  - id: "a$${b}c"\n', { HOME: "/root" });
    assert.equal(cfg.raw.$schema, "${env:HOME}");
    assert.equal(cfg.raw.exempt[0]!.id, "a${b}c");
  });

  it("values under secret-named keys are registered even when inline", async () => {
    const inline = uniq("inline-token");
    await load(`agent:\n  api:\n    token: "${inline}"\n`);
    assert.equal(scrub(inline), "[REDACTED]");
  });

  it("a communication policy's authorization mechanism is not a secret", async () => {
    await load("inventories:\n  - type: static\n    subjects: [{id: a, kind: workload}, {id: b, kind: workload}]\ncommunication_policies:\n  - {source: a, destination: b, port: 443, authorization: spiffe}\n  - {source: b, destination: a, port: 443}\n");
    assert.equal(scrub("authorization none, spiffe"), "authorization none, spiffe");
  });
});

describe("loadConfig: parsed values", () => {
  const durations: { name: string; yaml: string; get: (c: LoadedConfig) => number; ms: number }[] = [
    { name: 'decision.cooldown "5m" → 300000', yaml: "decision:\n  cooldown: 5m\n", get: (c) => c.raw.decision.cooldown, ms: 300_000 },
    { name: "decision.hold_grace defaults to 10m", yaml: "{}\n", get: (c) => c.raw.decision.hold_grace, ms: 600_000 },
    { name: 'decision.hold_grace "1h30m" → 5400000', yaml: "decision:\n  hold_grace: 1h30m\n", get: (c) => c.raw.decision.hold_grace, ms: 5_400_000 },
    { name: 'enforcement.limits.window "250ms" → 250', yaml: "enforcement:\n  limits:\n    window: 250ms\n", get: (c) => c.raw.enforcement.limits.window, ms: 250 },
    { name: 'identity_perimeter.session_duration "14d"', yaml: "identity_perimeter:\n  session_duration: 14d\n", get: (c) => c.raw.identity_perimeter!.session_duration, ms: 14 * 86_400_000 },
    { name: "agent.shutdown_timeout defaults to 8s", yaml: "{}\n", get: (c) => c.raw.agent.shutdown_timeout, ms: 8_000 },
  ];
  for (const c of durations) {
    it(`duration: ${c.name}`, async () => assert.equal(c.get(await load(c.yaml)), c.ms));
  }

  it("a bad duration → issue at its path", async () => {
    const issues = await issuesOf("decision:\n  cooldown: 5 minutes\n");
    assert.deepEqual(pathsAndLines(issues), [["decision.cooldown", 2]]);
    assert.equal(issues[0]!.message, 'expected a duration like "30s", "5m", "1h" or "14d"');
  });

  it("the loaded config is frozen", async () => {
    const cfg = await loadConfig(DEFAULT_CONFIG);
    assert.ok(Object.isFrozen(cfg.raw));
    assert.throws(() => {
      (cfg.raw.agent as { dry_run: boolean }).dry_run = true;
    }, TypeError);
    assert.throws(() => {
      (cfg.raw.communication_policies as unknown as unknown[]).push({});
    }, TypeError);
    assert.throws(() => {
      (cfg.policies[0]!.rules as { confirm: number }).confirm = 9;
    }, TypeError);
    assert.throws(() => {
      (cfg.checks as Record<string, unknown>).injected = {};
    }, TypeError);
    assert.equal(cfg.raw.agent.dry_run, false);
  });
});

describe("loadConfig: plugin modules", () => {
  const zodUrl = pathToFileURL(join(ROOT, "node_modules/zod/index.js")).href;
  const policyUsing = (check: string) =>
    `communication_policies:\n  - source: a\n    destination: b\n    port: 1\n    continuous_verification:\n      checks: [${check}]\ninventories:\n  - {type: static, subjects: [{id: a, kind: workload}, {id: b, kind: workload}]}\n`;

  it("a check factory from a plugin module compiles with pull:true", async () => {
    writeFileSync(
      join(dir, "ping-plugin.mjs"),
      `import { z } from ${JSON.stringify(zodUrl)};
export const checks = [{
  type: "ping",
  description: "test plugin",
  reasons: [],
  configSchema: z.object({ host: z.string(), count: z.number().int().default(3) }).strict(),
  create() { return { async run() { return []; } }; },
}];
`,
    );
    const cfg = await load(`plugins:\n  - module: ./ping-plugin.mjs\nchecks:\n  reach:\n    type: ping\n    host: example.org\n${policyUsing("reach")}`);
    assert.deepEqual(cfg.checks.reach, { name: "reach", type: "ping", pull: true, config: { host: "example.org", count: 3 }, on_unknown: undefined, hold_grace: undefined, ttl: undefined, timeout: 30_000 });
    assert.deepEqual(cfg.policies[0]!.checks, ["reach"]);
    assert.ok(cfg.registry.checks.has("ping"));
  });

  it("the plugin's own schema validates its section", async () => {
    const issues = await issuesOf(`plugins:\n  - module: ./ping-plugin.mjs\nchecks:\n  reach:\n    type: ping\n    port: 7\n${policyUsing("reach")}`);
    assert.deepEqual(pathsAndLines(issues), [
      ["checks.reach.host", 4],
      ["checks.reach.port", 6],
    ]);
  });

  it("a module exporting nothing useful → issue at plugins[0]", async () => {
    writeFileSync(join(dir, "empty-plugin.mjs"), "export const nothing = 1;\n");
    const issues = await issuesOf("plugins:\n  - module: ./empty-plugin.mjs\n");
    assert.deepEqual(pathsAndLines(issues), [["plugins[0]", 2]]);
    assert.match(issues[0]!.message, /exports no checks, actions, inventories or providers$/);
  });

  it("a module exporting a non-factory → issue at plugins[0]", async () => {
    writeFileSync(join(dir, "bad-plugin.mjs"), "export const checks = [{ type: 'x' }];\n");
    const issues = await issuesOf("plugins:\n  - module: ./bad-plugin.mjs\n");
    assert.deepEqual(
      issues.map((i) => i.path),
      ["plugins[0]", "plugins[0]"],
    );
    assert.match(issues[0]!.message, /checks must hold factories/);
  });

  it("a module that cannot be imported → issue at plugins[0].module", async () => {
    const issues = await issuesOf("plugins:\n  - module: ./missing-plugin.mjs\n");
    assert.deepEqual(pathsAndLines(issues), [["plugins[0].module", 2]]);
  });
});

describe("bin/vigil validate (exit codes)", () => {
  const MAIN = join(ROOT, "dist/cli/main.js");
  before(() => {
    if (!existsSync(MAIN)) spawnSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.json"], { cwd: ROOT, stdio: "ignore" });
    assert.ok(existsSync(MAIN), "dist/cli/main.js is missing; run npm run build");
  });
  const vigil = (...args: string[]) => spawnSync(NODE, [MAIN, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });

  it("0 for config/vigil.yaml", () => {
    const r = vigil("validate", "-c", "config/vigil.yaml");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /config\/vigil\.yaml: valid/);
    assert.match(r.stdout, /policy frontend-to-api \(communication\) every 5m/);
    assert.match(r.stdout, /policy identity-perimeter \(perimeter\) every 5m/);
  });

  it("2 for a bad config, stderr lists every problem with paths and lines", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "agent:\n  log_level: loud\ncolour: blue\ndecision:\n  confirm: 0\n");
    const r = vigil("validate", "-c", file);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /: 3 problems\n/);
    assert.match(r.stderr, /^ {2}agent\.log_level \(line 2\): /m);
    assert.match(r.stderr, /^ {2}colour \(line 3\): unknown key$/m);
    assert.match(r.stderr, /^ {2}decision\.confirm \(line 5\): /m);
  });

  it("2 for a missing file", () => {
    const r = vigil("validate", "-c", join(dir, "does-not-exist.yaml"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /cannot read config .*does-not-exist\.yaml: ENOENT/);
  });

  it("--help exits 0", () => {
    const r = vigil("validate", "--help");
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^Usage: vigil validate/);
    assert.equal(vigil("--help").status, 0);
  });
});

describe("inline subjects", () => {
  const inline = (n: number) =>
    `inventories:\n  - type: static\n    subjects:\n${Array.from({ length: n }, (_, i) => `      - {id: u${i}, kind: user, identity: u${i}@example.org}`).join("\n")}\n`;

  it("a static inventory takes up to 1000 subjects", async () => {
    const cfg = await loadConfigText(inline(1000), "/tmp/inline.yaml");
    assert.equal(cfg.raw.inventories.length, 1);
  });

  it("more are refused with a message that points to a file inventory", async () => {
    const err = await loadConfigText(inline(1001), "/tmp/inline.yaml").then(
      () => assert.fail("1001 inline subjects were accepted"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError);
    assert.equal(err.issues.length, 1);
    assert.equal(err.issues[0]!.path, "inventories[0].subjects");
    assert.match(err.issues[0]!.message, /at most 1000 subjects can be listed inline: list them in a file inventory instead \(\{type: file/);
  });
});
