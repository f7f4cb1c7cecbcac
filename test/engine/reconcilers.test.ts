/**
 * The engine around reconcilers and provider clients: one reconciler per change however many levels
 * list it, jobs of one action for one subject never interleaving, and a retired runtime (config
 * reload) closing its provider clients only after the action calls running on them are done.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigText, type LoadedConfig } from "../../src/config/load.ts";
import { Runtime } from "../../src/engine/runtime.ts";
import { Enforcer, idempotencyKey, transition, type ActionJob } from "../../src/engine/enforcer.ts";
import { SubjectIndex } from "../../src/engine/subjects.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { StoredState } from "../../src/store/contract.ts";
import type { JobRecord, WorkQueue } from "../../src/queue/contract.ts";
import { noopMetrics } from "../../src/telemetry/metrics.ts";
import { createLogger } from "../../src/telemetry/log.ts";
import { systemClock } from "../../src/util/clock.ts";
import type { AccessLevel } from "../../src/policy/model.ts";
import { pluginContext } from "../helpers/action-context.ts";
import { settled, until } from "../helpers/wait.ts";
import { isTransient } from "../../src/errors.ts";

interface Shared {
  /** What the demo target holds: an allow and a deny object, like Istio's. */
  target: { allow: boolean; deny: boolean };
  /** Resolvers the test calls to let a waiting action go on. */
  gates: (() => void)[];
  closed: string[];
  signals: AbortSignal[];
}
const shared = globalThis as unknown as { __reconcileTest: Shared };
shared.__reconcileTest = { target: { allow: false, deny: false }, gates: [], closed: [], signals: [] };
const S = () => shared.__reconcileTest;

let dir = "";

/**
 * `demo:steps` reconciles in two steps with a pause between them, in the safe order a mesh reconciler
 * uses (full: write the allow, then drop the deny; deny: write the deny, then drop the allow).
 * `demo:wait` waits for a gate or for its signal to abort.
 */
function writePlugin(target: string): void {
  const zod = import.meta.resolve("zod");
  writeFileSync(
    join(target, "reconcile-plugin.mjs"),
    `import { z } from ${JSON.stringify(zod)};
const S = () => globalThis.__reconcileTest;
const gate = () => new Promise((resolve) => S().gates.push(resolve));
export const providers = [
  { type: "demo", description: "demo", example: {}, configSchema: z.object({}).strict(),
    create: (_config, ctx) => ({ name: ctx.name, type: "demo", breaker: { state: "closed" }, describe: (c) => c, send: async () => ({}),
      close: async () => { S().closed.push(ctx.name); } }) },
];
export const actions = [
  { type: "demo:steps", description: "two-step reconciler", requiredPermissions: [], example: { type: "demo:steps" }, revertible: false, reconciles: true, provider: "demo",
    configSchema: z.object({ label: z.string().default("x") }).strict(),
    create: () => ({
      plan: (req) => [{ method: "PUT", url: "demo:", headers: {}, body: { access: req.decision.access } }],
      apply: async (req) => {
        const t = S().target;
        if (req.decision.access === "deny") { t.deny = true; await Promise.resolve(); t.allow = false; }
        else { t.allow = true; await gate(); t.deny = false; }
        return { verified: true };
      },
    }) },
  { type: "demo:wait", description: "waits", requiredPermissions: [], example: { type: "demo:wait" }, revertible: false, provider: "demo",
    configSchema: z.object({}).strict(),
    create: () => ({
      plan: () => [],
      apply: async (req) => {
        S().signals.push(req.signal);
        await new Promise((resolve, reject) => {
          S().gates.push(resolve);
          req.signal?.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })), { once: true });
        });
        return {};
      },
    }) },
];
`,
  );
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-reconcilers-"));
  writePlugin(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const base = `plugins:
  - module: ./reconcile-plugin.mjs
inventories:
  - type: static
    subjects:
      - {id: web, kind: workload}
      - {id: api, kind: workload}
communication_policies:
  - {name: web-to-api, source: web, destination: api, port: 443}
providers:
  demo: {}
`;

const load = (yaml: string): Promise<LoadedConfig> => loadConfigText(yaml, join(dir, "vigil.yaml"));

function state(access: AccessLevel, generation: number): StoredState {
  return {
    decision: { policy: "web-to-api", subject: "web", access, risk: access === "deny" ? "high" : "low", reasons: [], generation, decided_at: 0, evidence: {}, exempt: false },
    candidate: access,
    streak: 1,
    changed_at: 0,
    enforced_generation: generation,
    enforced_access: access,
  } as StoredState;
}

function job(action: string, access: AccessLevel, previous: AccessLevel, generation: number): JobRecord<ActionJob> {
  const key = idempotencyKey("web-to-api", "web", generation, action, "apply");
  return {
    id: key,
    kind: "action",
    attempt: 1,
    max_attempts: 3,
    enqueued_at: 0,
    payload: { policy: "web-to-api", subject: "web", generation, action, type: "demo:steps", operation: "apply", access, previous_access: previous, idempotency_key: key, decided_at: 0, dry_run: false },
  };
}

async function enforcerFor(runtime: Runtime, store: MemoryStore): Promise<Enforcer> {
  const logger = createLogger({ level: "silent" });
  const index = new SubjectIndex(runtime.inventories, logger);
  await index.refresh();
  return new Enforcer({ store, queue: {} as WorkQueue, index, metrics: noopMetrics(), clock: systemClock, logger, runtime });
}

describe("reconcilers in the engine", () => {
  it("a reconciler written under several levels runs once per change", async () => {
    const cfg = await load(`${base}enforcement:
  full_access:
    - {type: demo:steps}
  read_only:
    - {type: demo:steps}
  deny:
    - {type: demo:steps}
    - {type: demo:steps, label: other}
`);
    const runtime = new Runtime(cfg, pluginContext());
    try {
      const policy = runtime.policy("web-to-api")!;
      const names = (from: AccessLevel, to: AccessLevel, first = false) => transition(runtime, policy, from, to, first).map((c) => `${c.operation} ${c.bound.spec.name}`);
      // The identical entries are one reconciler; the one with another config is another.
      assert.deepEqual(names("full_access", "deny"), ["apply full_access[0]:demo:steps", "apply deny[1]:demo:steps"]);
      assert.deepEqual(names("deny", "full_access"), ["apply full_access[0]:demo:steps", "apply deny[1]:demo:steps"]);
      assert.deepEqual(names("full_access", "full_access", true), ["apply full_access[0]:demo:steps", "apply deny[1]:demo:steps"]);
    } finally {
      await runtime.stop();
    }
  });

  it("jobs of one reconciler for one subject do not interleave: two quick changes end at the decided level", async () => {
    const cfg = await load(`${base}enforcement:\n  full_access:\n    - {type: demo:steps, name: mesh}\n`);
    const runtime = new Runtime(cfg, pluginContext());
    const store = new MemoryStore();
    const enforcer = await enforcerFor(runtime, store);
    S().target = { allow: false, deny: true };
    S().gates = [];
    try {
      await store.putStates([state("full_access", 1)]);
      const first = enforcer.run(job("mesh", "full_access", "deny", 1));
      await until(() => S().gates.length === 1);
      assert.equal(S().gates.length, 1, "the full_access job is between its two steps");
      // Access drops to deny while the first job is still running; its job starts at once.
      await store.putStates([state("deny", 2)]);
      const second = enforcer.run(job("mesh", "deny", "full_access", 2));
      // The store and the demo action are in memory: whatever the second job may do before the first finishes, it has done.
      await settled();
      S().gates.shift()!();
      await Promise.all([first, second]);
      assert.deepEqual(S().target, { allow: false, deny: true }, "the target holds the deny, as decided");
    } finally {
      await runtime.stop();
    }
  });
});

describe("a retired runtime and its provider clients", () => {
  it("a reload closes the old provider clients only after the jobs running on them finish, without waiting for them", async () => {
    const cfg = await load(`${base}enforcement:\n  deny:\n    - {type: demo:wait, name: wait}\n`);
    const runtime = new Runtime(cfg, pluginContext());
    const store = new MemoryStore();
    const enforcer = await enforcerFor(runtime, store);
    S().gates = [];
    S().closed = [];
    S().signals = [];
    await store.putStates([state("deny", 2)]);
    const running = enforcer.run({ ...job("wait", "deny", "full_access", 2), payload: { ...job("wait", "deny", "full_access", 2).payload, type: "demo:wait" } });
    await until(() => S().gates.length === 1);
    assert.equal(S().gates.length, 1);
    await runtime.stop();
    // Closing does no I/O here: a runtime that did not wait for the job would have closed by now.
    await settled();
    assert.deepEqual(S().closed, [], "not closed while a job runs on it");
    S().gates.shift()!();
    await running;
    await until(() => S().closed.length > 0, 2_000);
    assert.deepEqual(S().closed, ["demo"]);
    assert.equal(S().signals[0]!.aborted, false, "the job got a signal, and finished without it aborting");

    // Idle: stop() closes at once.
    S().closed = [];
    const idle = new Runtime(cfg, pluginContext());
    await idle.stop();
    assert.deepEqual(S().closed, ["demo"]);
  });

  it("a job that outlives the grace is aborted through req.signal, then the clients close", async () => {
    const cfg = await load(`${base}enforcement:\n  deny:\n    - {type: demo:wait, name: wait}\n`);
    const runtime = new Runtime(cfg, pluginContext());
    const store = new MemoryStore();
    const enforcer = await enforcerFor(runtime, store);
    S().gates = [];
    S().closed = [];
    S().signals = [];
    await store.putStates([state("deny", 2)]);
    const running = enforcer.run({ ...job("wait", "deny", "full_access", 2), payload: { ...job("wait", "deny", "full_access", 2).payload, type: "demo:wait" } });
    await until(() => S().gates.length === 1);
    await runtime.stop(50);
    let failure: unknown;
    const observed = running.catch((err: unknown) => {
      failure = err;
      throw err;
    });
    await assert.rejects(observed, /aborted/, "the job fails (transiently) and the queue runs it again on the new runtime");
    assert.ok(isTransient(failure), "the plugin's own AbortError still counts as transient: the job was cut short, not wrong");
    assert.equal(S().signals[0]!.aborted, true);
    await until(() => S().closed.length > 0, 2_000);
    assert.deepEqual(S().closed, ["demo"]);
  });
});
