/**
 * How a config's problems are reported: all at once (the schema's and the later checks' together),
 * in vigil's words, one per cause, each at the key that is wrong.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { loadConfigText } from "../../src/config/load.ts";
import { salvage } from "../../src/config/salvage.ts";
import { ConfigError, type ConfigIssue } from "../../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "vigil-problems-"));
const FILE = join(dir, "vigil.yaml");
const INVENTORY = "inventories:\n  - type: static\n    subjects:\n      - {id: a, kind: workload}\n";

async function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): Promise<ConfigIssue[]> {
  try {
    await loadConfigText(yaml, FILE, { env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

const at = (issues: ConfigIssue[]) => issues.map((i) => [i.path, i.line]);

describe("every problem at once", () => {
  it("an unknown key and an interval the later phase refuses are reported together", async () => {
    const issues = await issuesOf(`agent:
  colour: blue
communication_policies:
  - source: a
    destination: b
    port: 443
    continuous_verification: {interval: 7m}
${INVENTORY}`);
    assert.deepEqual(at(issues), [
      ["agent.colour", 2],
      ["communication_policies[0].continuous_verification.interval", 7],
    ]);
    assert.equal(issues[0]!.message, "unknown key");
    assert.match(issues[1]!.message, /^interval 7m must be whole seconds/);
  });

  it("a missing required key, a wrong enum value, a plugin's problem and a duplicate name come together", async () => {
    const issues = await issuesOf(`communication_policies:
  - source: a
    destination: b
    protocol: ftp
  - name: dup
    source: a
    destination: c
    port: 1
  - name: dup
    source: a
    destination: d
    port: 2
enforcement:
  deny:
    - {type: webhook, url: "https://hooks.example.org/x", secret: short}
${INVENTORY}`);
    assert.deepEqual(at(issues), [
      ["communication_policies[0].port", 2],
      ["communication_policies[0].protocol", 4],
      ["communication_policies[2].name", 9],
      ["enforcement.deny[0].secret", 15],
    ]);
  });

  it("what the later phase finds at a value the schema refused is not reported again", async () => {
    // `type: 123` is refused; without it the entry would be an unknown check, an effect of the repair.
    const issues = await issuesOf(`checks:
  mine: {type: 123}
communication_policies:
  - source: a
    destination: b
    port: 443
    continuous_verification: {checks: [mine]}
${INVENTORY}`);
    assert.deepEqual(at(issues), [["checks.mine.type", 2]]);
    assert.equal(issues[0]!.message, "expected text, got a number (123)");
  });

  it("problems the schema finds only once others are out of the way are reported too", () => {
    const schema = z.object({ a: z.string(), b: z.number() }).strict().refine((v) => v.b !== 3, { message: "b must not be 3", path: ["b"] });
    const first = schema.safeParse({ a: 5, b: 3 });
    assert.equal(first.success, false);
    assert.deepEqual(first.error!.issues.map((i) => i.path), [["a"]], "the refinement waits for a valid object");
    const saved = salvage(schema, { a: 5, b: 3 }, first.error!.issues);
    assert.ok(saved);
    assert.deepEqual(saved.later.map((i) => [i.path, i.message]), [[["b"], "b must not be 3"]]);
    assert.deepEqual(saved.touched.map((p) => p.join(".")), ["a", "a", "b", "b"]);
  });
});

describe("messages in vigil's words", () => {
  it("a missing trust_bundle says so", async () => {
    const issues = await issuesOf(`checks:
  certificate_validity:
    source: {type: file, paths: [x.pem]}
communication_policies:
  - source: a
    destination: b
    port: 443
    continuous_verification: {checks: [certificate_validity]}
${INVENTORY}`);
    assert.deepEqual(issues.map((i) => [i.path, i.message]), [["checks.certificate_validity.trust_bundle", "trust_bundle is required (text or a list)"]]);
  });

  it("no message is zod's own English", async () => {
    const issues = await issuesOf(`agent:
  log_level: loud
  api: {max_body_bytes: 10, listen: 5}
decision: {confirm: "2"}
communication_policies:
  - source: a
    destination: b
    exempt: [{kind: robot}]
identity_perimeter: {allowed_locations: DE}
checks:
  certificate_validity: {trust_bundle: 5, source: {type: file}}
providers:
  okta: {}
${INVENTORY}`);
    assert.ok(issues.length >= 8, JSON.stringify(issues));
    for (const i of issues) assert.doesNotMatch(i.message, /Invalid input|Invalid option|received undefined|Too (small|big)|expected (string|number|array|object)\b|Invalid discriminator/, `${i.path}: ${i.message}`);
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    assert.equal(byPath.get("communication_policies[0].port"), "port is required (a number)");
    assert.equal(byPath.get("agent.log_level"), 'expected one of trace, debug, info, warn, error, fatal, silent, got "loud"');
    assert.equal(byPath.get("agent.api.max_body_bytes"), "must be at least 1024");
    assert.equal(byPath.get("decision.confirm"), 'expected a number, got text ("2")');
    assert.equal(byPath.get("checks.certificate_validity.source.paths"), "paths is required (a list)");
  });

  it("a secret-named key's value is never quoted back", async () => {
    const issues = await issuesOf(`providers:\n  okta: {org_url: "https://example.okta.com", auth: {type: ssws, token: 1234567}}\n`);
    for (const i of issues) assert.doesNotMatch(i.message, /1234567/);
  });
});

describe("one error per cause, at the key that is wrong", () => {
  it("an unreadable token file is not also too short", async () => {
    const issues = await issuesOf(`agent:\n  api:\n    token: "\${file:${join(dir, "no-such-token")}}"\n`);
    assert.deepEqual(issues.map((i) => [i.path, i.message]), [["agent.api.token", `cannot read ${join(dir, "no-such-token")}: ENOENT`]]);
  });

  it("an unset variable in a plugin's key is not also that plugin's problem", async () => {
    const issues = await issuesOf(`communication_policies:
  - source: a
    destination: b
    port: 443
enforcement:
  deny:
    - {type: webhook, url: "https://hooks.example.org/x", secret: "\${env:VIGIL_NO_SUCH_SECRET}"}
${INVENTORY}`);
    assert.deepEqual(issues.map((i) => [i.path, i.message]), [["enforcement.deny[0].secret", "environment variable VIGIL_NO_SUCH_SECRET is not set"]]);
  });

  it("a duplicate action name is reported at the action, once, however many policies inherit it", async () => {
    const issues = await issuesOf(`communication_policies:
  - {source: a, destination: b, port: 1}
  - {source: a, destination: c, port: 2}
enforcement:
  read_only:
    - {type: log, name: notify}
  deny:
    - {type: log, name: notify}
${INVENTORY}`);
    assert.deepEqual(at(issues), [["enforcement.deny[0].name", 8]]);
    assert.match(issues[0]!.message, /action name "notify" is already used by enforcement\.read_only\[0\]; action names must be unique across the levels of a policy/);
  });
});

describe("data_dir", () => {
  it("resolves against the config file, like every other path", async () => {
    const relative = await loadConfigText("agent: {data_dir: ./state}\n", FILE, { env: {} });
    assert.equal(relative.raw.agent.data_dir, join(dir, "state"));
    const byDefault = await loadConfigText("{}\n", FILE, { env: {} });
    assert.equal(byDefault.raw.agent.data_dir, join(dir, "var"));
    const absolute = await loadConfigText("agent: {data_dir: /var/lib/vigil}\n", FILE, { env: {} });
    assert.equal(absolute.raw.agent.data_dir, "/var/lib/vigil");
  });
});

describe("offline", () => {
  const secretConfig = `agent:
  api: {token: "\${file:/run/secrets/vigil-api-token}"}
  audit: {key: "\${env:VIGIL_AUDIT_KEY_NOT_SET}"}
communication_policies:
  - source: a
    destination: b
    port: 443
enforcement:
  deny:
    - {type: webhook, url: "https://hooks.example.org/x", secret: "\${file:/run/secrets/hook}"}
${INVENTORY}`;

  it("without --offline a secret that is not there is a problem", async () => {
    assert.deepEqual((await issuesOf(secretConfig)).map((i) => i.path), ["agent.api.token", "agent.audit.key", "enforcement.deny[0].secret"]);
  });

  it("offline, it is a placeholder, listed and marked as such, and the config loads", async () => {
    const cfg = await loadConfigText(secretConfig, FILE, { env: {}, offline: true });
    assert.deepEqual(
      cfg.placeholders.map((p) => [p.path, p.line, p.reference]),
      [
        ["agent.api.token", 2, "${file:/run/secrets/vigil-api-token}"],
        ["agent.audit.key", 3, "${env:VIGIL_AUDIT_KEY_NOT_SET}"],
        ["enforcement.deny[0].secret", 10, "${file:/run/secrets/hook}"],
      ],
    );
    assert.match(cfg.placeholders[0]!.reason, /cannot read \/run\/secrets\/vigil-api-token: ENOENT/);
    assert.equal(cfg.raw.agent.api.token, "<placeholder-for-${file:/run/secrets/vigil-api-token}-not-available-here>");
  });

  it("offline, every other problem is still one", async () => {
    const issues = await (async () => {
      try {
        await loadConfigText(secretConfig.replace("port: 443", "port: 443\n    colour: red"), FILE, { env: {}, offline: true });
      } catch (err) {
        return (err as ConfigError).issues;
      }
      assert.fail("expected a ConfigError");
    })();
    assert.deepEqual(issues.map((i) => i.path), ["communication_policies[0].colour"]);
  });
});

writeFileSync(join(dir, "README"), "scratch directory of test/config/problems.test.ts\n");
