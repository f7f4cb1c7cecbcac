/**
 * Cluster mode with real `vigil run` replicas and a real redis-server on loopback: what a replica
 * does while Redis is away (at start and while running), the blast-radius guard's one budget for the
 * cluster, leadership moving when the leader dies, and `vigil audit verify` on the shared chain.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { AgentProcess, runCli } from "../helpers/agent-process.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";
import { HOOK_SECRET, clusterConfig, subjectId } from "../helpers/cluster.ts";
import { until } from "../helpers/wait.ts";

describe("cluster mode", { skip: REDIS_MISSING ?? false }, () => {
  test("Redis unreachable at start: the replica waits, not ready with the reason, signals get 503; then it starts by itself", async (t) => {
    const redis = await RedisServer.start();
    t.after(() => redis.stop());
    await redis.kill();
    const receiver = new WebhookReceiver(HOOK_SECRET);
    const hook = await receiver.start();
    t.after(() => receiver.stop());
    const { file } = clusterConfig({ redisUrl: redis.url, hook, subjects: 3 });
    const agent = await AgentProcess.start(file, {}, { until: "listening" });
    t.after(() => agent.stop());

    assert.equal((await agent.request("GET", "/healthz", undefined, null)).status, 200, "alive while it waits: no restart loop");
    await until(async () => {
      const r = await agent.request("GET", "/readyz", undefined, null);
      return r.status === 503 && (r.json.reasons as string[]).some((x) => /waiting for Redis at redis:\/\/127\.0\.0\.1:\d+\/0: .*ECONNREFUSED/.test(x));
    }, 10_000);
    const signal = await agent.request("POST", "/v1/signals", { subject: subjectId(0), check: "mfa", status: "fail" });
    assert.equal(signal.status, 503);
    assert.equal(signal.json.error.code, "VIGIL_ERR_UNAVAILABLE");
    assert.equal(signal.headers.get("retry-after"), "5");
    assert.ok(agent.child.exitCode === null, "still running");
    assert.ok(!agent.lines.some((l) => l.msg === "vigil started"), "never fell back to running without Redis");

    await redis.restart();
    await agent.waitFor((l) => l.msg === "vigil started", 15_000);
    await until(async () => (await agent.request("GET", "/readyz", undefined, null)).status === 200, 10_000);
    const accepted = await agent.request("POST", "/v1/signals", { subject: subjectId(0), check: "mfa", status: "fail" });
    assert.equal(accepted.status, 202);
    await receiver.waitForDeliveries(1);
    assert.equal(receiver.deliveries[0]!.body.subject, subjectId(0));
  });

  test("Redis lost while running: 503 with Retry-After instead of accepting and losing; everything resumes when it is back", async (t) => {
    const redis = await RedisServer.start();
    t.after(() => redis.stop());
    const receiver = new WebhookReceiver(HOOK_SECRET);
    const hook = await receiver.start();
    t.after(() => receiver.stop());
    const { file } = clusterConfig({ redisUrl: redis.url, hook, subjects: 4 });
    const agent = await AgentProcess.start(file);
    t.after(() => agent.stop());
    await agent.idle();

    await redis.kill();
    await until(async () => {
      const r = await agent.request("GET", "/readyz", undefined, null);
      return r.status === 503 && (r.json.reasons as string[]).some((x) => /^redis redis:\/\/127\.0\.0\.1:\d+\/0: not connected/.test(x));
    }, 10_000);
    const single = await agent.request("POST", "/v1/signals", { subject: subjectId(1), check: "mfa", status: "fail" });
    assert.deepEqual([single.status, single.json.error.code, single.headers.get("retry-after")], [503, "VIGIL_ERR_UNAVAILABLE", "5"]);
    const batch = await agent.request("POST", "/v1/signals", [{ subject: subjectId(2), check: "mfa", status: "fail" }]);
    assert.deepEqual([batch.status, batch.json.error.code], [503, "VIGIL_ERR_UNAVAILABLE"], "a batch of which nothing was taken is a 503 as a whole");
    const metrics = await (await fetch(`${agent.metrics}/metrics`)).text();
    assert.match(metrics, /^vigil_cluster_redis_up 0$/m);

    await redis.restart();
    await until(async () => (await agent.request("GET", "/readyz", undefined, null)).status === 200, 15_000);
    const retried = await agent.request("POST", "/v1/signals", { subject: subjectId(1), check: "mfa", status: "fail" });
    assert.equal(retried.status, 202);
    await receiver.waitForDeliveries(1, 15_000);
    assert.deepEqual(
      receiver.deliveries.map((d) => d.body.subject),
      [subjectId(1)],
      "the refused signals left nothing behind; the retried one was delivered",
    );
    assert.match(await (await fetch(`${agent.metrics}/metrics`)).text(), /^vigil_cluster_redis_up 1$/m);
  });

  test("Redis credentials reach no log line, error, readiness reason, API answer or metric, wrong or right", async (t) => {
    const redis = await RedisServer.start();
    t.after(() => redis.stop());
    const password = "s3cret-replica-password-0123456";
    const wrong = "wrong-replica-password-7654321";
    await redis.client().call("ACL", "SETUSER", "vigil", "on", `>${password}`, "~*", "&*", "+@all");
    const receiver = new WebhookReceiver(HOOK_SECRET);
    const hook = await receiver.start();
    t.after(() => receiver.stop());
    const { file } = clusterConfig({ redisUrl: redis.url, hook, subjects: 2, redis: 'username: vigil, password: "${env:VIGIL_TEST_REDIS_PASSWORD}"' });
    const seen: string[] = [];
    const answer = async (a: AgentProcess, method: string, path: string, body?: unknown) => {
      const r = await a.request(method, path, body);
      seen.push(JSON.stringify(r.json), [...r.headers].join("\n"));
      return r;
    };

    // A wrong password: Redis refuses it, and the replica says so without saying what it sent.
    const refused = await AgentProcess.start(file, { VIGIL_TEST_REDIS_PASSWORD: wrong }, { until: "listening" });
    t.after(() => refused.stop());
    await until(async () => {
      const r = await answer(refused, "GET", "/readyz");
      return r.status === 503 && (r.json.reasons as string[]).some((x) => /WRONGPASS|invalid username-password/.test(x));
    }, 10_000);
    assert.equal((await answer(refused, "POST", "/v1/signals", { subject: subjectId(0), check: "mfa", status: "fail" })).status, 503);
    await refused.stop();

    // The right one: it works, and it is nowhere either.
    const agent = await AgentProcess.start(file, { VIGIL_TEST_REDIS_PASSWORD: password });
    t.after(() => agent.stop());
    assert.equal((await answer(agent, "POST", "/v1/signals", { subject: subjectId(0), check: "mfa", status: "fail" })).status, 202);
    await receiver.waitForDeliveries(1);
    for (const path of ["/readyz", "/v1/status", "/v1/enforcement", "/v1/audit?limit=1000"]) await answer(agent, "GET", path);
    seen.push(await (await fetch(`${agent.metrics}/metrics`)).text());
    await agent.stop();

    const everything = [...seen, ...[refused, agent].flatMap((a) => [...a.lines.map((l) => JSON.stringify(l)), ...a.stderr])].join("\n");
    assert.match(everything, /WRONGPASS|invalid username-password/, "the refusal itself was reported");
    for (const secret of [password, wrong]) assert.ok(!everything.includes(secret), "a Redis password was written out");
  });

  test("the blast-radius guard holds at its limit across replicas, not at the limit times the replicas", async (t) => {
    const redis = await RedisServer.start();
    t.after(() => redis.stop());
    const receiver = new WebhookReceiver(HOOK_SECRET);
    const hook = await receiver.start();
    t.after(() => receiver.stop());
    const enforcement = "  limits: {max_actions: 5, window: 10m, auto_resume: false}\n";
    const replicas: AgentProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await AgentProcess.start(clusterConfig({ redisUrl: redis.url, hook, subjects: 30, enforcement }).file);
      t.after(() => a.stop());
      replicas.push(a);
    }
    await replicas[0]!.idle();
    // Ten denials sent to each replica at once.
    await Promise.all(
      replicas.flatMap((a, r) =>
        Array.from({ length: 10 }, async (_, i) => {
          const res = await a.request("POST", "/v1/signals", { subject: subjectId(r * 10 + i), check: "mfa", status: "fail" });
          assert.equal(res.status, 202);
        }),
      ),
    );
    await replicas[0]!.idle(20_000);
    assert.equal(receiver.deliveries.length, 5, `the cluster sent ${receiver.deliveries.length} actions`);
    for (const a of replicas) {
      await until(async () => {
        const g = (await a.request("GET", "/v1/enforcement")).json as { policies: { policy: string; paused: boolean; recent_actions: number }[] };
        return g.policies.some((p) => p.paused && p.recent_actions === 5);
      }, 10_000);
    }
    const paused = (await replicas[1]!.request("GET", "/v1/audit?type=enforcement_paused&limit=100")).json as { entries: unknown[] };
    assert.ok(paused.entries.length >= 1);
    // One operator resume, on any replica, releases what waited: the limit was only ever a pause.
    await replicas[2]!.request("POST", "/v1/enforcement/resume", {});
    await until(() => receiver.deliveries.length === 30, 20_000);
    assert.equal(new Set(receiver.deliveries.map((d) => d.body.subject)).size, 30);

    const verify = await runCli(["audit", "verify", "-c", clusterConfig({ redisUrl: redis.url, hook, subjects: 1 }).file]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /chain intact/);
  });

  test("when the leader dies another replica takes over within the lease, and the schedules keep running", async (t) => {
    const redis = await RedisServer.start();
    t.after(() => redis.stop());
    const receiver = new WebhookReceiver(HOOK_SECRET);
    const hook = await receiver.start();
    t.after(() => receiver.stop());
    const replicas: AgentProcess[] = [];
    for (let i = 0; i < 2; i++) {
      const a = await AgentProcess.start(clusterConfig({ redisUrl: redis.url, hook, subjects: 5, interval: "2s", lease: "2s", logLevel: "debug" }).file);
      t.after(() => a.stop());
      replicas.push(a);
    }
    const leaderOf = () => replicas.findIndex((a) => {
      const events = a.lines.filter((l) => /is (now|no longer) the leader/.test(l.msg));
      return events.at(-1)?.msg === "cluster: this replica is now the leader";
    });
    await until(() => leaderOf() !== -1, 10_000);
    const old = leaderOf();
    const other = replicas[1 - old]!;
    const killedAt = Date.now();
    replicas[old]!.child.kill("SIGKILL");
    await other.waitFor((l) => l.msg === "cluster: this replica is now the leader", 10_000);
    const handover = Date.now() - killedAt;
    assert.ok(handover <= 2_000 + 1_000, `took over after ${handover} ms (lease 2 s)`);
    // Ticks keep coming, now run by the survivor.
    const before = other.lines.filter((l) => l.msg === "tick" && l.trigger === "schedule").length;
    await until(() => other.lines.filter((l) => l.msg === "tick" && l.trigger === "schedule").length >= before + 2, 10_000);
  });
});
