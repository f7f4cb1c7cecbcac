/**
 * `agent.mode: cluster` in the config: what it requires (each missing piece an error with its
 * path), how the Redis connection is given, and that its credentials become secrets.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigText, type LoadedConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";
import { scrub } from "../../src/util/redact.ts";
import { describeRedis, redisOptions } from "../../src/db/redis/connection.ts";

const KEY = "k".repeat(40);
const TOKEN = "t".repeat(24);

function load(yaml: string, env: Record<string, string> = {}): Promise<LoadedConfig> {
  return loadConfigText(yaml, join(tmpdir(), "vigil-cluster-config.yaml"), { env });
}

async function issues(yaml: string, env: Record<string, string> = {}): Promise<[string, string][]> {
  try {
    await load(yaml, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => [i.path, i.message]);
  }
  assert.fail("expected the config to be rejected");
}

const cluster = (redis: string, extra = `  audit: {key: "${KEY}"}\n  api: {token: "${TOKEN}"}\n`) => `agent:\n  mode: cluster\n${extra}  cluster:\n    redis: ${redis}\n`;

test("cluster mode without Redis settings is an error at agent.cluster.redis", async () => {
  const found = await issues(`agent:\n  mode: cluster\n  audit: {key: "${KEY}"}\n  api: {token: "${TOKEN}"}\n`);
  assert.deepEqual(found.map(([p]) => p), ["agent.cluster.redis"]);
  assert.match(found[0]![1], /set agent\.cluster\.redis/);
});

test("cluster mode needs one audit key and one API token for every replica, each missing one named by its path", async () => {
  const found = await issues(`agent:\n  mode: cluster\n  cluster:\n    redis: {url: "redis://127.0.0.1:6379"}\n`);
  assert.deepEqual(found.map(([p]) => p).sort(), ["agent.api.token", "agent.audit.key"]);
});

test("a Redis URL may not carry credentials; url and host are one or the other", async () => {
  const withPassword = await issues(cluster(`{url: "redis://:hunter2hunter2@redis:6379/0"}`));
  assert.deepEqual(withPassword.map(([p]) => p), ["agent.cluster.redis.url"]);
  assert.ok(!withPassword[0]![1].includes("hunter2"), "the message does not quote the credential");
  assert.deepEqual((await issues(cluster(`{url: "redis://redis:6379", host: redis}`))).map(([p]) => p), ["agent.cluster.redis"]);
  assert.deepEqual((await issues(cluster(`{port: 6379}`))).map(([p]) => p), ["agent.cluster.redis"]);
  assert.deepEqual((await issues(cluster(`{url: "http://redis:6379"}`))).map(([p]) => p), ["agent.cluster.redis.url"]);
  assert.deepEqual((await issues(cluster(`{url: "redis://redis:6379", port: 6380}`))).map(([p]) => p), ["agent.cluster.redis.port"]);
});

test("a cluster config loads with its defaults; credentials from ${env:} are secrets and never in the described endpoint", async () => {
  const cfg = await load(cluster(`{host: redis.internal, port: 6380, db: 2, username: vigil, password: "\${env:REDIS_PASSWORD}", tls: true}`), { REDIS_PASSWORD: "pa55-word-from-the-env" });
  const c = cfg.raw.agent.cluster;
  assert.equal(cfg.raw.agent.mode, "cluster");
  assert.deepEqual(
    { prefix: c.prefix, lock: c.lock_duration, lease: c.lease, completed: c.keep_completed, failed: c.keep_failed, connect: c.redis?.connect_timeout, command: c.redis?.command_timeout },
    { prefix: "vigil", lock: 30_000, lease: 15_000, completed: 100_000, failed: 10_000, connect: 10_000, command: 10_000 },
  );
  assert.equal(describeRedis(c.redis!), "rediss://redis.internal:6380/2");
  const options = redisOptions(c.redis!, "command", "vigil:command");
  assert.deepEqual([options.host, options.port, options.db, options.username, options.password], ["redis.internal", 6380, 2, "vigil", "pa55-word-from-the-env"]);
  assert.equal((options.tls as { servername: string }).servername, "redis.internal");
  assert.ok(!scrub("AUTH failed for pa55-word-from-the-env").includes("pa55-word"));
  // Commands fail fast; workers wait for Redis.
  assert.deepEqual([options.enableOfflineQueue, options.maxRetriesPerRequest], [false, 0]);
  assert.equal(redisOptions(c.redis!, "worker", "vigil:worker").maxRetriesPerRequest, null);
});

test("embedded mode ignores agent.cluster", async () => {
  const cfg = await load(`agent:\n  cluster:\n    redis: {url: "redis://127.0.0.1:6379"}\n`);
  assert.equal(cfg.raw.agent.mode, "embedded");
});

test("cluster mode refuses Shared Signals transmitters at signals.ssf.transmitters (the receiver keeps its streams locally)", async () => {
  const ssf = `signals:\n  ssf:\n    transmitters:\n      - name: idp\n        issuer: https://idp.example.com\n        manage: false\n        delivery: push\n        push: {authorization: "Bearer ${"p".repeat(32)}"}\n        audience: https://vigil.example.com\n`;
  const found = await issues(cluster(`{url: "redis://127.0.0.1:6379"}`) + ssf);
  assert.deepEqual(found.map(([p]) => p), ["signals.ssf.transmitters"]);
  assert.match(found[0]![1], /embedded mode only/);
  await load(ssf);
});
