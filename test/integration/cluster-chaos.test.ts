/**
 * Chaos in cluster mode: three real `vigil run` replicas on one real redis-server (AOF, fsync on
 * every write), a local webhook receiver, 1,000 subjects whose signals cause enforcement (a denial
 * for each, then a restore for half of them). Every 2.5 s a random replica is SIGKILLed and
 * restarted, 20 times; half-way through, redis-server itself is SIGKILLed and restarted.
 *
 * Then: every decision change reached the receiver (0 lost), every duplicate delivery carried the
 * idempotency key of the one it repeats, each scheduled tick was produced once per interval, and
 * the audit chain verifies. The counts go to the test's diagnostics.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { AgentProcess, runCli } from "../helpers/agent-process.ts";
import { WebhookReceiver, type Delivery } from "../helpers/webhook-receiver.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";
import { HOOK_SECRET, clusterConfig, subjectId } from "../helpers/cluster.ts";
import { until } from "../helpers/wait.ts";

const SUBJECTS = 1_000;
const RESTORED = 500;
const REPLICAS = 3;
const ROUNDS = 20;
const ROUND_MS = 2_500;
const INTERVAL_MS = 5_000;
const POLICY = "identity-perimeter";

interface Decision {
  readonly subject: string;
  readonly generation: number;
  readonly access: string;
  readonly previous_access: string | null;
}

test("chaos: replicas SIGKILLed 20 times and Redis once lose no decision, duplicate only by key, tick once per interval", { skip: REDIS_MISSING ?? false, timeout: 180_000 }, async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const receiver = new WebhookReceiver(HOOK_SECRET);
  const hook = await receiver.start();
  t.after(() => receiver.stop());
  const config = clusterConfig({
    redisUrl: redis.url,
    hook,
    subjects: SUBJECTS,
    interval: "5s",
    lockDuration: "2s",
    lease: "2s",
    logLevel: "debug",
    enforcement: "  limits: {max_actions: 100000}\n  retry: {attempts: 8, delay: 100ms, max_delay: 1s}\n  redrive: {delay: 1s, max_delay: 2s}\n",
  }).file;

  /** Every process ever started, killed ones included: their log lines are the record of what they did. */
  const processes: AgentProcess[] = [];
  const slots: (AgentProcess | undefined)[] = [];
  const start = async (slot: number) => {
    const p = await AgentProcess.start(config, {}, { timeoutMs: 30_000 });
    processes.push(p);
    slots[slot] = p;
  };
  t.after(async () => {
    for (const p of processes) await p.stop().catch(() => undefined);
  });
  const t0 = Date.now();
  for (let i = 0; i < REPLICAS; i++) await start(i);
  await slots[0]!.idle(60_000);
  const began = Date.now();

  // A sender that keeps at it: a refused request (a replica dead, Redis away) is sent again elsewhere.
  const live = () => slots.filter((p): p is AgentProcess => p !== undefined && p.child.exitCode === null && p.child.signalCode === null);
  let sent = 0;
  let refused = 0;
  const send = async (subjects: readonly string[], status: "fail" | "pass") => {
    let rest = [...subjects];
    while (rest.length > 0) {
      const targets = live();
      const to = targets[Math.floor(Math.random() * targets.length)];
      if (!to) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const body = rest.map((subject) => ({ subject, check: "mfa", status, ttl: "1h", reason: "chaos" }));
      try {
        const res = await to.request("POST", "/v1/signals", body);
        if (res.status === 202) {
          const results = res.json as { accepted: boolean }[];
          rest = rest.filter((_, i) => !results[i]?.accepted);
        }
        if (rest.length > 0) refused++;
      } catch {
        refused++;
      }
      if (rest.length > 0) await new Promise((r) => setTimeout(r, 100));
    }
    sent += subjects.length;
  };
  const delivered = (subject: string, operation: string) => receiver.deliveries.some((d) => d.reply === 200 && d.body.subject === subject && d.body.operation === operation);

  // Denials paced over the first half of the chaos, restores (each after its denial arrived) over the second.
  const BATCH = 50;
  const traffic = (async () => {
    for (let i = 0; i < SUBJECTS; i += BATCH) {
      await send(Array.from({ length: BATCH }, (_, k) => subjectId(i + k)), "fail");
      await new Promise((r) => setTimeout(r, 700));
    }
    for (let i = 0; i < RESTORED; i += BATCH) {
      const batch = Array.from({ length: BATCH }, (_, k) => subjectId(i + k));
      await until(() => batch.every((s) => delivered(s, "apply")), 60_000);
      await send(batch, "pass");
      await new Promise((r) => setTimeout(r, 1_500));
    }
  })();

  let kills = 0;
  let redisDownAt = 0;
  let redisUpAt = 0;
  const restarts: Promise<void>[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await new Promise((r) => setTimeout(r, ROUND_MS));
    // A replica that is up (one still starting is left alone), restarted while the rounds go on.
    const up = [...slots.keys()].filter((i) => live().includes(slots[i]!));
    const slot = up[Math.floor(Math.random() * up.length)]!;
    slots[slot]!.child.kill("SIGKILL");
    slots[slot] = undefined;
    kills++;
    if (round === ROUNDS / 2) {
      redisDownAt = Date.now();
      await redis.kill();
      await new Promise((r) => setTimeout(r, 1_000));
      await redis.restart();
      redisUpAt = Date.now();
    }
    restarts.push(start(slot));
  }
  const roundsEnded = Date.now();
  await Promise.all(restarts);
  await traffic;
  const chaosEnded = Date.now();

  // Let the cluster finish: every denial and every restore delivered, and nothing left to run.
  const subjects = Array.from({ length: SUBJECTS }, (_, i) => subjectId(i));
  await until(() => subjects.every((s) => delivered(s, "apply")) && subjects.slice(0, RESTORED).every((s) => delivered(s, "revert")), 60_000);
  await live()[0]!.idle(60_000);
  const settled = Date.now();

  // Decision changes, from the audit log (paged through on a live replica).
  const decisions: Decision[] = [];
  for (let after = 0; ; ) {
    const page = (await live()[0]!.request("GET", `/v1/audit?type=decision&after=${after}&limit=1000`)).json as { entries: (Decision & { seq: number })[] };
    if (page.entries.length === 0) break;
    decisions.push(...page.entries);
    after = page.entries.at(-1)!.seq;
  }
  // A replica killed between a decision's audit line and its state leaves the line without the
  // decision; the evaluation that runs again records the same (subject, generation) again.
  const changeLines = decisions.filter((d) => d.previous_access !== null && d.previous_access !== d.access);
  const changes = [...new Map(changeLines.map((d) => [`${d.subject}/${d.generation}`, d])).values()];
  const key = (subject: unknown, generation: unknown, operation: unknown) => `${String(subject)}/${String(generation)}/${String(operation)}`;
  const byChange = new Map<string, Delivery[]>();
  for (const d of receiver.deliveries) {
    const k = key(d.body.subject, d.body.generation, d.body.operation);
    byChange.set(k, [...(byChange.get(k) ?? []), d]);
  }
  const lost = changes.filter((c) => !(byChange.get(key(c.subject, c.generation, c.access === "deny" ? "apply" : "revert")) ?? []).some((d) => d.reply === 200));
  const duplicates = [...byChange.values()].reduce((n, ds) => n + ds.length - 1, 0);
  const keysOf = [...byChange.values()].map((ds) => new Set(ds.map((d) => d.idempotencyKey)));
  const allKeys = [...byChange.values()].map((ds) => ds[0]!.idempotencyKey);

  // Ticks: each due time produced its evaluation jobs once, wherever it ran; read from the kept jobs.
  const look = new Redis({ host: "127.0.0.1", port: redis.port });
  look.on("error", () => undefined);
  const jobKeys: string[] = [];
  try {
    let cursor = "0";
    do {
      const [next, found] = await look.scan(cursor, "MATCH", `vigil:queue:evaluate:jschedule%3A${POLICY}%3A*`, "COUNT", 1_000);
      cursor = next;
      jobKeys.push(...found.filter((k) => !/:(logs|lock|dependencies|processed|failed|unsuccessful)$/.test(k)));
    } while (cursor !== "0");
  } finally {
    look.disconnect();
  }
  const dueTimes = [...new Set(jobKeys.map((k) => Number(/%3A(\d+)%3A\d+%3A\d+$/.exec(k)?.[1])))].filter(Number.isFinite).sort((a, b) => a - b);
  const producing = new Map<number, number>();
  for (const p of processes) for (const l of p.lines) if (l.msg === "tick" && l.trigger === "schedule" && Number(l.created) > 0) producing.set(Number(l.at), (producing.get(Number(l.at)) ?? 0) + 1);
  const producedTwice = [...producing].filter(([, n]) => n > 1);
  const inRun = dueTimes.filter((d) => d >= began && d <= chaosEnded);
  const gaps = inRun.slice(1).map((d, i) => d - inRun[i]!).filter((g) => g !== INTERVAL_MS);

  const verify = await runCli(["audit", "verify", "-c", config]);
  const counts = {
    subjects: SUBJECTS,
    replica_kills: kills,
    redis_kills: 1,
    redis_down_ms: redisUpAt - redisDownAt,
    signals_sent: sent,
    requests_refused_and_resent: refused,
    decision_changes: changes.length,
    decision_lines_recorded_twice: changeLines.length - changes.length,
    deliveries: receiver.deliveries.length,
    lost: lost.length,
    duplicate_deliveries: duplicates,
    ticks_in_run: inRun.length,
    interval_gaps: gaps,
    ticks_produced_twice: producedTwice.length,
    audit_verify: verify.stdout.split("\n")[0],
    ms: { start: began - t0, rounds: roundsEnded - began, traffic: chaosEnded - began, settle: settled - chaosEnded, checks: Date.now() - settled },
  };
  t.diagnostic(JSON.stringify(counts));

  assert.equal(changes.length, SUBJECTS + RESTORED, "each subject denied once, half of them restored once");
  assert.deepEqual(lost, [], "every decision change was delivered");
  assert.ok(
    keysOf.every((keys) => keys.size === 1),
    "a repeated delivery carries the idempotency key of the one it repeats",
  );
  assert.equal(new Set(allKeys).size, allKeys.length, "different decisions never share a key");
  assert.deepEqual(producedTwice, [], "no due time produced its evaluations twice");
  // One tick per interval, except across the Redis outage (a due time that passed while Redis was down is not made up).
  assert.ok(inRun.length >= Math.floor((chaosEnded - began) / INTERVAL_MS) - 2, `${inRun.length} ticks in ${chaosEnded - began} ms`);
  assert.ok(gaps.every((g) => g % INTERVAL_MS === 0 && g <= 2 * INTERVAL_MS), `ticks ${INTERVAL_MS} ms apart: ${gaps.join(", ")}`);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /chain intact/);
});
