/**
 * The providers section, reconciling actions and provider documents, through a plugin module that
 * contributes a provider type like a built-in one does.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigText, type LoadedConfig } from "../../src/config/load.ts";
import { ConfigError, type ConfigIssue } from "../../src/errors.ts";
import { Runtime } from "../../src/engine/runtime.ts";
import { transition } from "../../src/engine/enforcer.ts";
import { pluginContext } from "../helpers/action-context.ts";
import { AgentProcess, runCli, tempConfig, TOKEN } from "../helpers/agent-process.ts";
import { until } from "../helpers/wait.ts";

let dir = "";
let plugin = "";

/** A plugin with a `demo` provider (needs a url), a `lazy` provider (all defaults), a plain action and a reconciler. */
function writePlugin(target: string): string {
  const zod = import.meta.resolve("zod");
  const file = join(target, "demo-plugin.mjs");
  writeFileSync(
    file,
    `import { z } from ${JSON.stringify(zod)};
import { appendFileSync } from "node:fs";
globalThis.__providersCreated ??= 0;
const log = (line) => process.env.DEMO_LOG && appendFileSync(process.env.DEMO_LOG, JSON.stringify(line) + "\\n");
const client = (name, type, extra) => ({ name, type, breaker: { state: "closed" }, describe: (c) => c, send: async () => ({}), close: async () => {}, ...extra });
export const providers = [
  { type: "demo", description: "demo provider", example: { url: "https://demo" },
    configSchema: z.object({ url: z.string().url(), kid: z.string().default("k1") }).strict(),
    create: (config, ctx) => { globalThis.__providersCreated++; return client(ctx.name, "demo", { url: config.url, kid: config.kid }); },
    publicDocuments: (c) => ({ "/.well-known/demo.json": { contentType: "application/json", body: () => JSON.stringify({ issuer: c.url, kid: c.kid }) } }) },
  { type: "lazy", description: "all defaults", example: {}, configSchema: z.object({ region: z.string().default("here") }).strict(),
    create: (config, ctx) => client(ctx.name, "lazy", { region: config.region }) },
];
const plan = (req, ctx, what) => [{ method: "POST", url: ctx.provider.url ?? "lazy:", headers: {}, body: { what, subject: req.subject.id, access: req.decision.access, op: req.operation } }];
export const actions = [
  { type: "demo:poke", description: "poke", requiredPermissions: ["demo.poke"], example: { type: "demo:poke" }, revertible: true, provider: "demo",
    configSchema: z.object({}).strict(),
    create: (_c, ctx) => ({ plan: (req) => plan(req, ctx, "poke"), apply: async (req) => { log(["poke", req.subject.id, req.decision.access, ctx.provider.name]); return { verified: true }; }, revert: async (req) => { log(["unpoke", req.subject.id, req.decision.access]); return {}; } }) },
  { type: "demo:mesh", description: "reconcile", requiredPermissions: ["demo.mesh"], example: { type: "demo:mesh" }, revertible: false, reconciles: true, provider: "demo",
    configSchema: z.object({}).strict(),
    create: (_c, ctx) => ({ plan: (req) => plan(req, ctx, "mesh"), apply: async (req) => { log(["mesh", req.subject.id, req.decision.access, req.operation]); return { verified: true }; } }) },
  { type: "lazy:poke", description: "poke lazily", requiredPermissions: [], example: { type: "lazy:poke" }, revertible: false, provider: "lazy",
    configSchema: z.object({}).strict(),
    create: (_c, ctx) => ({ plan: (req) => plan(req, ctx, "lazy"), apply: async () => ({}) }) },
];
`,
  );
  return file;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-providers-"));
  plugin = writePlugin(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const base = `plugins:
  - module: ./demo-plugin.mjs
inventories:
  - type: static
    subjects:
      - {id: web, kind: workload}
      - {id: api, kind: workload}
communication_policies:
  - {name: web-to-api, source: web, destination: api, port: 443}
  - {name: api-to-web, source: api, destination: web, port: 443}
`;

const load = (yaml: string): Promise<LoadedConfig> => loadConfigText(yaml, join(dir, "vigil.yaml"));

async function issuesOf(yaml: string): Promise<ConfigIssue[]> {
  try {
    await load(yaml);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

describe("providers in the config", () => {
  it("an action uses the entry named after its provider type; every problem is reported with its path", async () => {
    const issues = await issuesOf(`${base}providers:
  demo: {url: not-a-url}
  other: {type: lazy}
  mystery: {type: nope}
enforcement:
  deny:
    - type: demo:poke
    - {type: demo:poke, provider: other}
    - {type: demo:poke, provider: absent}
    - {type: log, provider: demo}
`);
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [
        ["providers.demo.url", 12],
        ["providers.mystery.type", 14],
        ["enforcement.deny[1].provider", 18],
        ["enforcement.deny[2].provider", 19],
        ["enforcement.deny[3].provider", 20],
      ],
    );
    assert.match(issues[2]!.message, /needs a provider of type "demo", but providers.other is of type "lazy"/);
    assert.match(issues[3]!.message, /needs providers.absent \(type demo\), which is not configured/);
    assert.match(issues[4]!.message, /action log uses no provider/);
  });

  it("a provider without an entry is an error unless its defaults validate", async () => {
    const issues = await issuesOf(`${base}enforcement:\n  deny:\n    - type: demo:poke\n`);
    assert.deepEqual(issues.map((i) => i.path), ["enforcement.deny[0]"]);
    assert.match(issues[0]!.message, /needs providers.demo \(type demo\), which is not configured/);
    const cfg = await load(`${base}enforcement:\n  deny:\n    - type: lazy:poke\n`);
    assert.deepEqual(cfg.providers, { lazy: { name: "lazy", type: "lazy", config: { region: "here" } } });
    assert.equal(cfg.policies[0]!.actions.deny[0]!.provider, "lazy");
  });

  it("one client per provider entry serves every policy; reconcilers run once per change whatever list names them", async () => {
    const cfg = await load(`${base}providers:
  demo: {url: "https://demo.example"}
  second: {type: demo, url: "https://second.example"}
enforcement:
  full_access:
    - {type: demo:mesh, name: mesh}
  read_only:
    - {type: demo:poke, name: poke-ro, provider: second}
  deny:
    - {type: demo:poke, name: poke}
`);
    const g = globalThis as { __providersCreated?: number };
    const before = g.__providersCreated ?? 0;
    const runtime = new Runtime(cfg, pluginContext());
    try {
      assert.equal((g.__providersCreated ?? 0) - before, 2, "two entries, two clients, however many policies");
      const policy = runtime.policy("web-to-api")!;
      const names = (from: "full_access" | "read_only" | "deny", to: "full_access" | "read_only" | "deny", first = false) =>
        transition(runtime, policy, from, to, first).map((c) => `${c.operation} ${c.bound.spec.name}`);
      assert.deepEqual(names("full_access", "deny"), ["apply poke", "apply mesh"]);
      assert.deepEqual(names("deny", "read_only"), ["revert poke", "apply poke-ro", "apply mesh"]);
      assert.deepEqual(names("read_only", "full_access"), ["revert poke-ro", "apply mesh"]);
      assert.deepEqual(names("read_only", "deny"), ["apply poke", "apply mesh"], "tightening reverts nothing: no window of more access");
      assert.deepEqual(names("deny", "full_access"), ["revert poke", "revert poke-ro", "apply mesh"], "loosening undoes every stricter level");
      assert.deepEqual(names("full_access", "full_access"), []);
      assert.deepEqual(names("full_access", "full_access", true), ["apply mesh"], "a first enforcement puts the declared allow in place");
      assert.equal(runtime.action("web-to-api", "poke-ro")!.action.plan({ decision: { policy: "web-to-api", subject: "web", access: "read_only", risk: "medium", reasons: [], generation: 1, decided_at: 0, evidence: {}, exempt: false }, subject: { id: "web", kind: "workload", attributes: {}, labels: {} }, previous_access: "full_access", operation: "apply", idempotency_key: "k" })[0]!.url, "https://second.example");
      // Both entries publish the path; the first one keeps it.
      assert.deepEqual(JSON.parse(runtime.publicDocument("/.well-known/demo.json")!.body()), { issuer: "https://demo.example", kid: "k1" });
      assert.deepEqual(runtime.circuits(), { demo: false, second: false });
    } finally {
      await runtime.stop();
    }
  });
});

describe("built-in provider folders load on demand", () => {
  it("a config loads only the folders it uses, and the provider folders their actions need", async () => {
    const none = await load(base);
    assert.deepEqual([...none.registry.actions.keys()].filter((t) => t.includes(":") && !t.startsWith("demo:") && !t.startsWith("lazy:")), []);
    const some = await load(`${base}providers:\n  okta: {org_url: "https://example.okta.com", auth: {type: ssws, token: t-0123456789abcdef}}\nenforcement:\n  deny:\n    - {type: okta:suspend}\n    - {type: istio:authorization_policy, namespace: api}\n`);
    const folders = new Set([...some.registry.actions.keys()].filter((t) => t.includes(":")).map((t) => t.split(":")[0]));
    assert.deepEqual([...folders].sort(), ["demo", "istio", "kubernetes", "lazy", "okta"]);
    assert.ok(some.registry.providers.has("kubernetes"), "istio's actions bring the kubernetes provider");
  });

  it("an unknown type still lists every known type; a plugin still cannot shadow a built-in it does not use", async () => {
    const issues = await issuesOf(`${base}enforcement:\n  deny:\n    - {type: okta:suspendd}\n`);
    assert.match(issues[0]!.message, /unknown action type "okta:suspendd"; known: .*aws:revoke_role_sessions.*okta:suspend.*caep:transmit/);
    const zod = import.meta.resolve("zod");
    writeFileSync(join(dir, "shadow.mjs"), `import { z } from ${JSON.stringify(zod)};\nexport const actions = [{ type: "vault:revoke_certificate", description: "x", requiredPermissions: [], example: {}, revertible: false, configSchema: z.object({}), create: () => ({ plan: () => [], apply: async () => ({}) }) }];\n`);
    const shadow = await issuesOf("plugins:\n  - module: ./shadow.mjs\n");
    assert.match(shadow[0]!.message, /actions type "vault:revoke_certificate" is already registered/);
  });
});

describe("providers in a running agent", () => {
  it("serves provider documents without a token, runs the reconciler on first enforcement, and lists the actions", async () => {
    const logFile = join(dir, "calls.jsonl");
    writeFileSync(logFile, "");
    const { file } = tempConfig(
      (d) => `${base.replace("./demo-plugin.mjs", plugin)}
agent:
  data_dir: ${join(d, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
checks:
  anomaly_detection: {on_unknown: ignore}
providers:
  demo: {url: "https://demo.example", kid: k9}
enforcement:
  full_access:
    - {type: demo:mesh, name: mesh}
  deny:
    - {type: demo:poke, name: poke}
`.replace("communication_policies:\n", "communication_policies:\n  - {name: only, source: web, destination: api, port: 8443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}\n").replace(/  - \{name: web-to-api.*\n  - \{name: api-to-web.*\n/, ""),
    );
    const agent = await AgentProcess.start(file, { DEMO_LOG: logFile });
    const calls = () => readFileSync(logFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as string[]);
    try {
      const doc = await fetch(`${agent.api}/.well-known/demo.json`);
      assert.equal(doc.status, 200);
      assert.equal(doc.headers.get("content-type"), "application/json");
      assert.deepEqual(await doc.json(), { issuer: "https://demo.example", kid: "k9" });
      assert.equal((await fetch(`${agent.api}/.well-known/other.json`)).status, 404);
      assert.equal((await agent.request("GET", "/v1/subjects", undefined, null)).status, 401, "the rest of the API still needs the token");

      await agent.request("POST", "/v1/evaluate/web");
      await until(() => calls().some((c) => c[0] === "mesh"), 30_000);
      assert.deepEqual(calls(), [["mesh", "web", "full_access", "apply"]]);
      await agent.request("POST", "/v1/signals", { subject: "web", check: "anomaly_detection", status: "fail" });
      await until(() => calls().length >= 3, 30_000);
      assert.deepEqual(calls().slice(1).sort(), [["mesh", "web", "deny", "apply"], ["poke", "web", "deny", "demo"]]);
    } finally {
      await agent.stop();
    }
    const listed = await runCli(["actions", "list", "-c", file, "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const out = JSON.parse(listed.stdout) as { actions: { type: string; restore: string; required_permissions: string[] }[]; providers: { type: string }[] };
    assert.deepEqual(out.actions.find((a) => a.type === "demo:mesh"), { type: "demo:mesh", description: "reconcile", provider: "demo", restore: "reconcile", required_permissions: ["demo.mesh"], example: { type: "demo:mesh" } });
    assert.equal(out.actions.find((a) => a.type === "demo:poke")!.restore, "revert");
    assert.ok(out.actions.some((a) => a.type === "webhook"));
    assert.ok(out.providers.some((p) => p.type === "demo"));
    const text = await runCli(["actions", "list", "-c", file, "--type", "demo"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^demo:poke {2}\(provider: demo\)$/m);
    assert.match(text.stdout, /^ {4}- demo\.poke$/m);
    assert.doesNotMatch(text.stdout, /^webhook/m);
    const istio = await runCli(["actions", "list", "--type", "istio", "--json"]);
    assert.equal(istio.code, 0, istio.stderr);
    const istioOut = JSON.parse(istio.stdout) as { actions: { type: string; provider: string }[]; providers: { type: string }[] };
    assert.deepEqual(istioOut.actions.map((a) => [a.type, a.provider]), [["istio:authorization_policy", "kubernetes"]]);
    assert.deepEqual(istioOut.providers.map((p) => p.type), ["kubernetes"]);
    const bad = await runCli(["actions", "list", "--type", "nope"]);
    assert.equal(bad.code, 2);
  });
});
