import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { consulProvider, consulProviderSchema, intentionAction, intentionConfigSchema, OWNER_MARK, type ConsulClient } from "../../../src/actions/consul/index.ts";
import { actions, provider } from "../../../src/actions/consul/index.ts";
import type { ActionRequest } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { MASK } from "../../../src/util/redact.ts";
import { actionContext, attempt, providerContext, request } from "../../helpers/action-context.ts";
import { consulRateLimited, FakeConsul } from "../../helpers/fakes/consul.ts";

const TOKEN = "5d9c8a4e-consul-secret-0f1e2d3c";
const READER = "8e1f-consul-reader-token-77aa";
const EDGE = { source: "web", destination: "api", port: 443, protocol: "https" } as const;

function client(base: string, extra: Record<string, unknown> = {}): ConsulClient {
  const config = consulProviderSchema.parse({ address: base, token: TOKEN, ...extra });
  return consulProvider.create(config, providerContext("consul"));
}

function action(c: ConsulClient, config: Record<string, unknown> = {}) {
  return intentionAction.create(intentionConfigSchema.parse(config), actionContext(c));
}

function edgeRequest(access: "full_access" | "read_only" | "deny", opts: { edge?: ActionRequest["edge"]; subject?: Record<string, unknown> } = {}): ActionRequest {
  return request({ access, policy: "web-to-api", subject: { id: "web", kind: "workload", ...opts.subject }, edge: opts.edge ?? EDGE });
}

/** The plan as `METHOD path?query` lines and bodies, to compare with what the fake received. */
function planned(plan: PlannedCall[]): { lines: string[]; bodies: unknown[] } {
  return { lines: plan.map((p) => `${p.method} ${new URL(p.url).pathname}${new URL(p.url).search}`), bodies: plan.map((p) => p.body) };
}

function received(fake: FakeConsul): { lines: string[]; bodies: unknown[] } {
  return { lines: fake.api.lines(), bodies: fake.api.handled.map((r) => (r.body ? JSON.parse(r.body) : undefined)) };
}

describe("consul:intention against a contract-enforcing Consul", () => {
  let fake: FakeConsul;
  let base = "";

  before(async () => {
    fake = new FakeConsul();
    base = await fake.start();
  });
  after(() => fake.stop());
  beforeEach(() => {
    fake.api.clear();
    fake.intentions.clear();
    fake.tokens.clear();
    fake.protocols.clear();
    fake.tokens.set(TOKEN, { accessor: "a1b2c3d4-0000-4000-8000-00000000abcd", write: ["api"] });
    fake.tokens.set(READER, { accessor: "a1b2c3d4-0000-4000-8000-00000000beef", read: ["*"] });
    fake.protocols.set("api", "http");
  });

  test("index exports the provider and the action", () => {
    assert.equal(provider, consulProvider);
    assert.deepEqual(actions.map((a) => a.type), ["consul:intention"]);
    assert.equal(intentionAction.reconciles, true);
    assert.equal(intentionAction.revertible, false);
    assert.equal(intentionAction.provider, "consul");
    assert.match(intentionAction.requiredPermissions.join(" "), /service "<destination>" \{ intentions = "write" \}/);
    assert.ok(intentionConfigSchema.safeParse(Object.fromEntries(Object.entries(intentionAction.example).filter(([k]) => k !== "type"))).success);
  });

  test("deny writes a deny intention, verified, and the plan is exactly what was sent", async () => {
    const a = action(client(base));
    const req = edgeRequest("deny");
    const plan = a.plan(req);
    assert.equal(fake.api.requests.length, 0, "planning sends nothing");
    const outcome = await a.apply(req);
    assert.equal(outcome.verified, true);
    assert.deepEqual(outcome.detail, { source: "web", destination: "api", access: "deny", intention: "deny" });
    const stored = fake.get("web", "api")!;
    assert.equal(stored.Action, "deny");
    assert.equal(stored.Permissions, undefined);
    assert.ok(stored.Description.startsWith(OWNER_MARK));
    assert.deepEqual(received(fake), planned(plan));
    assert.deepEqual(fake.api.lines(), [
      "GET /v1/connect/intentions/exact?source=web&destination=api",
      "PUT /v1/connect/intentions/exact?source=web&destination=api",
      "GET /v1/connect/intentions/exact?source=web&destination=api",
    ]);
    assert.deepEqual(plan[1]!.body, { SourceType: "consul", Description: `${OWNER_MARK}: deny (policy web-to-api)`, Action: "deny" });
  });

  test("read_only on an http edge writes L7 safe-method permissions ending in a deny", async () => {
    const a = action(client(base));
    const req = edgeRequest("read_only");
    const plan = a.plan(req);
    const outcome = await a.apply(req);
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.["intention"], "l7_read_only");
    const stored = fake.get("web", "api")!;
    assert.equal(stored.Action, "");
    assert.deepEqual(stored.Permissions, [
      { Action: "allow", HTTP: { Methods: ["GET", "HEAD", "OPTIONS"] } },
      { Action: "deny", HTTP: { PathPrefix: "/" } },
    ]);
    assert.deepEqual(received(fake), planned(plan));
  });

  test("full_access after deny restores the allow intention (the reconciler's restore)", async () => {
    const a = action(client(base));
    await a.apply(edgeRequest("deny"));
    const outcome = await a.apply(edgeRequest("full_access"));
    assert.equal(outcome.verified, true);
    const stored = fake.get("web", "api")!;
    assert.equal(stored.Action, "allow");
    assert.equal(stored.Permissions, undefined);
    assert.match(stored.Description, /full_access/);
  });

  test("applying the same level twice is idempotent", async () => {
    const a = action(client(base));
    const first = await a.apply(edgeRequest("read_only"));
    const state = structuredClone(fake.get("web", "api"));
    const second = await a.apply(edgeRequest("read_only"));
    assert.equal(first.verified, true);
    assert.equal(second.verified, true);
    const after2 = fake.get("web", "api")!;
    assert.deepEqual({ ...after2, ModifyIndex: 0 }, { ...state, ModifyIndex: 0 });
    assert.equal(fake.intentions.size, 1);
  });

  test("read_only on a tcp edge writes a deny under read_only: auto, an allow under read_only: allow", async () => {
    const tcp = { ...EDGE, protocol: "tcp" };
    const outcome = await action(client(base)).apply(edgeRequest("read_only", { edge: tcp }));
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.["intention"], "deny");
    assert.equal(fake.get("web", "api")!.Action, "deny");
    assert.match(fake.get("web", "api")!.Description, /read_only as deny/);
    const grpc = await action(client(base)).apply(edgeRequest("read_only", { edge: { ...EDGE, protocol: "grpc" } }));
    assert.equal(grpc.detail?.["intention"], "deny", "gRPC calls are all POST: a method filter cannot express read-only");
    const open = await action(client(base), { read_only: "allow" }).apply(edgeRequest("read_only", { edge: tcp }));
    assert.equal(open.detail?.["intention"], "allow");
    assert.equal(fake.get("web", "api")!.Action, "allow");
  });

  test("L7 on a destination whose protocol is tcp fails permanently, once", async () => {
    fake.protocols.set("api", "tcp");
    const a = action(client(base));
    const r = await attempt(() => a.apply(edgeRequest("read_only")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal((r.error as UpstreamError).transient, false);
    assert.match((r.error as Error).message, /incompatible with L7 intentions permissions/);
    assert.equal(fake.api.requests.filter((q) => q.method === "PUT").length, 1);
    assert.equal(fake.get("web", "api"), undefined);
  });

  test("source from a subject template, destination as a plain string", async () => {
    const a = action(client(base), { source: "{{attributes.consul_service}}", destination: "api" });
    const req = request({ access: "deny", subject: { id: "frontend-7", kind: "workload", attributes: { consul_service: "frontend" } } });
    const outcome = await a.apply(req);
    assert.equal(outcome.verified, true);
    assert.equal(fake.get("frontend", "api")!.Action, "deny");
  });

  test("missing attribute, missing edge and a wildcard are permanent input errors with no request", async () => {
    const templ = action(client(base), { source: "{{attributes.consul_service}}" });
    for (const [a, req] of [
      [templ, edgeRequest("deny")],
      [action(client(base)), request({ access: "deny" })],
      [action(client(base), { destination: "*" }), edgeRequest("deny")],
      [action(client(base), { destination: "api?x=1" }), edgeRequest("deny")],
    ] as const) {
      const r = await attempt(() => a.apply(req));
      assert.equal(r.attempts, 1);
      assert.ok(r.error instanceof VigilError);
      assert.equal((r.error as VigilError).code, "VIGIL_ERR_ACTION_INPUT");
      assert.throws(() => a.plan(req), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
    }
    assert.equal(fake.api.requests.length, 0);
  });

  test("an operator's deny is not loosened unless take_over is set; tightening an operator's allow is fine", async () => {
    fake.seed("web", "api", { Action: "deny", Description: "blocked by the security team, INC-4411" });
    const outcome = await action(client(base)).apply(edgeRequest("full_access"));
    assert.equal(outcome.verified, false);
    assert.match(String(outcome.detail?.["skipped"]), /take_over/);
    assert.equal(fake.get("web", "api")!.Action, "deny");
    assert.deepEqual(fake.api.lines(), ["GET /v1/connect/intentions/exact?source=web&destination=api"]);

    const taken = await action(client(base), { take_over: true }).apply(edgeRequest("full_access"));
    assert.equal(taken.verified, true);
    assert.equal(fake.get("web", "api")!.Action, "allow");

    fake.seed("web", "api", { Action: "allow", Description: "hand-made" });
    const tightened = await action(client(base)).apply(edgeRequest("read_only"));
    assert.equal(tightened.verified, true);
    assert.ok(fake.get("web", "api")!.Description.startsWith(OWNER_MARK));
  });

  test("an operator's deny that vigil's deny agrees with stays the operator's: a later full_access does not relax it", async () => {
    fake.seed("web", "api", { Action: "deny", Description: "blocked by the security team, INC-4411" });
    const a = action(client(base));
    const denied = await a.apply(edgeRequest("deny"));
    assert.equal(denied.verified, true);
    assert.match(String(denied.detail?.["unchanged"]), /not written by vigil/);
    assert.equal(fake.get("web", "api")!.Description, "blocked by the security team, INC-4411", "vigil did not put its mark on it");
    assert.deepEqual(fake.api.lines(), ["GET /v1/connect/intentions/exact?source=web&destination=api"], "nothing written");

    fake.api.clear();
    const restored = await a.apply(edgeRequest("full_access"));
    assert.equal(restored.verified, false);
    assert.match(String(restored.detail?.["skipped"]), /take_over/);
    assert.equal(fake.get("web", "api")!.Action, "deny", "the operator's deny still stands");
    assert.deepEqual(fake.api.lines(), ["GET /v1/connect/intentions/exact?source=web&destination=api"]);
  });

  test("a 429 is retried with Consul's Retry-After, then the intention is written", async () => {
    fake.api.fail({ method: "PUT" }, consulRateLimited(3));
    const a = action(client(base));
    const r = await attempt(() => a.apply(edgeRequest("deny")));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [3000]);
    assert.equal(r.value?.verified, true);
    assert.equal(fake.get("web", "api")!.Action, "deny");
  });

  test("a token without intentions write gets 403 and is not retried", async () => {
    const a = action(client(base, { token: READER }));
    const r = await attempt(() => a.apply(edgeRequest("deny")));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal((r.error as UpstreamError).status, 403);
    assert.equal((r.error as UpstreamError).transient, false);
    assert.match((r.error as Error).message, /Permission denied: token with AccessorID '[^']+' lacks permission 'intention:write' on "api"/);
    assert.equal(fake.api.requests.filter((q) => q.method === "PUT").length, 1, "the server saw the write exactly once");
    assert.equal(fake.get("web", "api"), undefined);
  });

  test("an unknown token gets Consul's 403 ACL not found, one request", async () => {
    const a = action(client(base, { token: "not-a-known-consul-token" }));
    const r = await attempt(() => a.apply(edgeRequest("deny")));
    assert.equal(r.attempts, 1);
    assert.match((r.error as Error).message, /ACL not found/);
    assert.equal(fake.api.requests.length, 1);
  });

  test("dry run: plan() sends nothing and shows the token masked", () => {
    const a = action(client(base));
    const plan = a.plan(edgeRequest("read_only"));
    assert.equal(fake.api.requests.length, 0);
    assert.equal(plan.length, 3);
    assert.ok(!JSON.stringify(plan).includes(TOKEN));
    for (const p of plan) assert.equal(p.headers["X-Consul-Token"], MASK);
    assert.deepEqual(plan.map((p) => p.method), ["GET", "PUT", "GET"]);
  });

  test("Consul 1.11's 500 'Intention not found' on the first read counts as no intention", async () => {
    fake.api.fail({ method: "GET" }, { status: 500, body: "rpc error making call: Intention not found", headers: { "content-type": "text/plain" } });
    const outcome = await action(client(base)).apply(edgeRequest("deny"));
    assert.equal(outcome.verified, true);
  });

  test("the circuit opens after repeated 5xx and a further call fails fast without reaching Consul", async () => {
    const c = client(base, { circuit: { failures: 3 } });
    const a = action(c);
    fake.api.fail({}, ...Array.from({ length: 3 }, () => ({ status: 503, body: "No cluster leader" })));
    for (let i = 0; i < 3; i++) {
      await assert.rejects(a.apply(edgeRequest("deny")), (e: unknown) => e instanceof UpstreamError && e.transient && e.status === 503);
    }
    const seen = fake.api.requests.length;
    assert.equal(seen, 3);
    await assert.rejects(a.apply(edgeRequest("deny")), (e: unknown) => e instanceof UpstreamError && e.transient && /circuit open/.test(e.message) && (e.retryAfterMs ?? 0) > 0);
    assert.equal(fake.api.requests.length, seen, "the open circuit kept the call away from Consul");
    assert.equal(c.breaker.state, "open");
  });

  test("token_file: the token is read from the file and re-read after it is replaced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-consul-"));
    try {
      const file = join(dir, "consul-token");
      writeFileSync(file, `${READER}\n`);
      const a = action(client(base, { token: undefined, token_file: file }));
      await assert.rejects(a.apply(edgeRequest("deny")), /lacks permission 'intention:write'/);
      writeFileSync(`${file}.new`, TOKEN);
      renameSync(`${file}.new`, file);
      assert.equal((await a.apply(edgeRequest("deny"))).verified, true);
      assert.equal(fake.api.requests.at(-1)!.headers["x-consul-token"], TOKEN);
      assert.ok(!JSON.stringify(a.plan(edgeRequest("deny"))).includes(TOKEN));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Consul CE refuses ns; the client only sends ns/partition/dc when configured", async () => {
    await assert.rejects(action(client(base, { namespace: "team-a" })).apply(edgeRequest("deny")), /Namespaces are a Consul Enterprise feature/);
    fake.api.clear();
    await action(client(base, { datacenter: "dc1" })).apply(edgeRequest("deny"));
    assert.deepEqual(fake.api.lines()[1], "PUT /v1/connect/intentions/exact?source=web&destination=api&dc=dc1");
  });
});

describe("consul:intention with Consul Enterprise scoping", () => {
  let fake: FakeConsul;
  let base = "";
  before(async () => {
    fake = new FakeConsul({ enterprise: true });
    fake.tokens.set(TOKEN, { accessor: "e1", write: ["*"] });
    fake.protocols.set("api", "http");
    base = await fake.start();
  });
  after(() => fake.stop());

  test("namespace and partition go into ns and partition, and scope the intention", async () => {
    const c = client(base, { namespace: "payments", partition: "eu" });
    const a = action(c);
    const req = edgeRequest("read_only");
    const plan = a.plan(req);
    const outcome = await a.apply(req);
    assert.equal(outcome.verified, true);
    assert.equal(fake.get("web", "api", "payments", "eu")?.Permissions?.length, 2);
    assert.deepEqual(received(fake), planned(plan));
    assert.equal(fake.api.lines()[1], "PUT /v1/connect/intentions/exact?source=web&destination=api&ns=payments&partition=eu");
  });
});

describe("consul provider config", () => {
  test("an empty entry validates with the local agent's address and defaults", () => {
    const c = consulProviderSchema.parse({});
    assert.equal(c.address, "http://127.0.0.1:8500");
    assert.equal(c.timeout, 10_000);
    assert.equal(c.circuit.failures, 5);
    assert.equal(c.token, undefined);
  });

  test("unknown keys, bad addresses and bad durations are rejected", () => {
    assert.equal(consulProviderSchema.safeParse({ adress: "http://x" }).success, false);
    assert.equal(consulProviderSchema.safeParse({ address: "ftp://x" }).success, false);
    assert.equal(consulProviderSchema.safeParse({ timeout: "10 seconds" }).success, false);
    assert.equal(consulProviderSchema.safeParse({ namespace: "a b" }).success, false);
    assert.equal(consulProviderSchema.safeParse({ token: "a", token_file: "/t" }).success, false);
    assert.ok(consulProviderSchema.safeParse(consulProvider.example).success);
  });

  test("the action schema refuses engine keys and bad methods", () => {
    assert.equal(intentionConfigSchema.safeParse({ type: "consul:intention" }).success, false);
    assert.equal(intentionConfigSchema.safeParse({ read_only_methods: ["GET", "GET"] }).success, false);
    assert.equal(intentionConfigSchema.safeParse({ read_only_methods: ["FETCH"] }).success, false);
    assert.equal(intentionConfigSchema.safeParse({ source: "{{attributes.x" }).success, false);
  });

  test("create without a consul provider is a clear error", () => {
    assert.throws(() => intentionAction.create(intentionConfigSchema.parse({}), actionContext(undefined)), /needs a consul provider/);
  });

  test("a missing ca_file fails at start-up", () => {
    assert.throws(() => consulProvider.create(consulProviderSchema.parse({ ca_file: "/nonexistent/consul-ca.pem" }), providerContext("consul")), /ENOENT/);
  });
});
