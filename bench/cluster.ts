/**
 * Cluster mode against embedded mode, on one host, in one run:
 *
 * 1. Signal → webhook latency: the signal-latency bench's scenario (one subject, alternating fail /
 *    pass, sequential, receiver in its own process) against an embedded agent, then against one
 *    cluster replica on a local redis-server with the persistence cluster mode asks for (AOF,
 *    `appendfsync always`), then the same with `appendfsync everysec` to show what the fsyncs cost.
 *    Goal: cluster p99 ≤ 3 × embedded p99.
 * 2. 100,000 subjects evaluated by 1 and by 3 replicas on one Redis (fresh each time): all replicas
 *    spawned at once; "done" is the moment Redis holds a decision for every subject and the queues
 *    are empty. Also Redis's memory (INFO used_memory) and the commands it processed
 *    (total_commands_processed) for the pass.
 *
 * On a 2-core host three replicas and Redis share two cores: the 3-replica figure shows the cost of
 * coordination and that the work spreads, not how a cluster on separate hosts scales.
 *
 * Env: BENCH_SIGNALS (default 500), BENCH_WARMUP (default 50), BENCH_SUBJECTS (default 100000).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Agent as Dispatcher, request } from "undici";
import { RedisServer } from "../test/helpers/redis-server.ts";
import { Agent, TOKEN, ROOT, cleanup, freePort, memory, metricSum, nowMs, r2, r3, report, sleep, summary, tempDir, writeConfig, type Row } from "./lib.ts";
import type { Delivery } from "./receiver.ts";

const N = Number(process.env.BENCH_SIGNALS ?? 500);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 50);
const SUBJECTS = Number(process.env.BENCH_SUBJECTS ?? 100_000);
const SECRET = "whsec-bench-0123456789abcdef";
const AUDIT_KEY = "bench-audit-key-0123456789abcdef-0123456789";
const DEADLINE_MS = 300_000;
/** How long an idle replica's own Redis traffic is counted for. */
const IDLE_WINDOW_MS = 3_000;

function cluster(redisUrl: string, prefix: string): string {
  return `
  mode: cluster
  audit: {key: "${AUDIT_KEY}"}
  cluster:
    redis: {url: "${redisUrl}"}
    prefix: ${prefix}`;
}

function latencyConfig(dir: string, hookUrl: string, clusterYaml = ""): string {
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  log_level: info${clusterYaml}
inventories:
  - type: static
    subjects:
      - {id: frontend, kind: workload, identity: "spiffe://example.org/ns/web/sa/frontend"}
      - {id: api, kind: workload, identity: "spiffe://example.org/ns/api/sa/api"}
checks:
  anomaly_detection: {on_unknown: ignore}
communication_policies:
  - name: frontend-to-api
    source: frontend
    destination: api
    port: 443
    continuous_verification: {interval: 1h, checks: [anomaly_detection]}
enforcement:
  deny:
    - {type: webhook, name: notify, url: "${hookUrl}", secret: "${SECRET}"}
  limits: {max_actions: 1000000, window: 10m}
  retry: {attempts: 3, delay: 100ms, max_delay: 1s}
`;
}

interface Receiver {
  url: string;
  next(timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const pending: Delivery[] = [];
  let waiter: ((d: Delivery) => void) | undefined;
  const child: ChildProcess = fork(join(ROOT, "bench/receiver.ts"), [SECRET], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const url = await new Promise<string>((res) => {
    child.on("message", (m: { type: string; url?: string } & Delivery) => {
      if (m.type === "listening") res(m.url!);
      else if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(m);
      } else pending.push(m);
    });
  });
  return {
    url,
    next(timeoutMs = 10_000) {
      const d = pending.shift();
      if (d) return Promise.resolve(d);
      return new Promise((res, rej) => {
        const t = setTimeout(() => ((waiter = undefined), rej(new Error(`no webhook within ${timeoutMs} ms`))), timeoutMs);
        waiter = (x) => (clearTimeout(t), res(x));
      });
    },
    close: async () => {
      const exited = once(child, "exit");
      child.disconnect();
      await exited;
    },
  };
}

/** Sequential signals, alternating fail / pass; latency from the request to the webhook's arrival. */
async function latency(label: string, clusterYaml: (dir: string) => string, redis?: RedisServer): Promise<ReturnType<typeof summary> & { label: string; accepted: ReturnType<typeof summary>; redis_commands_per_signal?: number; redis_commands_per_signal_less_idle?: number; redis_idle_commands_per_s?: number }> {
  const rcv = await receiver();
  const dir = tempDir("cluster-lat");
  const agent = new Agent(writeConfig(dir, latencyConfig(dir, rcv.url, clusterYaml(dir))));
  const dispatcher = new Dispatcher({ keepAliveTimeout: 60_000, connections: 1 });
  try {
    await agent.started(30_000);
    const look = redis?.client();
    // A replica talks to Redis when idle too (lease, lock renewals, workers' blocking waits): measure
    // that rate once its start-up work is done, and take it off the count of the signals.
    let idlePerMs = 0;
    if (look) {
      await idle(agent, dispatcher);
      const c0 = await redisInfo(look, "stats", "total_commands_processed");
      const t = nowMs();
      await sleep(IDLE_WINDOW_MS);
      idlePerMs = ((await redisInfo(look, "stats", "total_commands_processed")) - c0) / (nowMs() - t);
    }
    const commandsBefore = look ? await redisInfo(look, "stats", "total_commands_processed") : 0;
    const signalsFrom = nowMs();
    const times: number[] = [];
    const accepted: number[] = [];
    for (let i = 0; i < WARMUP + N; i++) {
      const status = i % 2 === 0 ? "fail" : "pass";
      const delivery = rcv.next();
      const t0 = nowMs();
      const res = await request(agent.api + "/v1/signals", {
        method: "POST",
        dispatcher,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ subject: "frontend", check: "anomaly_detection", status, reason: "bench" }),
      });
      const t202 = nowMs();
      await res.body.text();
      if (res.statusCode !== 202) throw new Error(`${label}: signal ${i}: HTTP ${res.statusCode}`);
      const d = await delivery;
      if (d.operation !== (status === "fail" ? "apply" : "revert")) throw new Error(`${label}: signal ${i}: webhook was ${d.operation}`);
      if (i >= WARMUP) {
        times.push(d.t - t0);
        accepted.push(t202 - t0);
      }
    }
    let redisFigures = {};
    if (look) {
      const all = (await redisInfo(look, "stats", "total_commands_processed")) - commandsBefore;
      const background = idlePerMs * (nowMs() - signalsFrom);
      redisFigures = { redis_commands_per_signal: r2(all / (WARMUP + N)), redis_commands_per_signal_less_idle: r2((all - background) / (WARMUP + N)), redis_idle_commands_per_s: r2(idlePerMs * 1000) };
    }
    return { label, ...summary(times), accepted: summary(accepted), ...redisFigures };
  } finally {
    await dispatcher.close();
    await agent.stop();
    await rcv.close();
    cleanup(dir);
  }
}

/** Polls GET /v1/status until the agent reports nothing ready or running. */
async function idle(agent: Agent, dispatcher: Dispatcher): Promise<void> {
  const until = nowMs() + 30_000;
  while (nowMs() < until) {
    const res = await request(agent.api + "/v1/status", { dispatcher, headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.body.json()) as { idle?: boolean };
    if (res.statusCode === 200 && body.idle === true) return;
    await sleep(20);
  }
  throw new Error("the agent did not become idle within 30 s");
}

async function redisInfo(client: Redis, section: string, field: string): Promise<number> {
  return Number(new RegExp(`^${field}:([\\d.]+)`, "m").exec(await client.info(section))?.[1]);
}

/** User + system CPU seconds a live process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name; in clock ticks (100/s on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Redis memory by key group (the first three `:` segments), largest first, in MiB; MEMORY USAGE samples big hashes. */
async function memoryByGroup(client: Redis): Promise<Record<string, number>> {
  const groups = new Map<string, number>();
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "COUNT", 1000);
    cursor = next;
    const p = client.pipeline();
    for (const k of keys) p.memory("USAGE", k);
    const sizes = (await p.exec()) ?? [];
    keys.forEach((k, i) => {
      const group = k.split(":").slice(0, 3).join(":");
      groups.set(group, (groups.get(group) ?? 0) + Number(sizes[i]?.[1] ?? 0));
    });
  } while (cursor !== "0");
  return Object.fromEntries([...groups].sort((a, b) => b[1] - a[1]).map(([g, b]) => [g, r2(b / 2 ** 20)]));
}

interface Pass {
  replicas: number;
  seconds: number;
  rate: number;
  redis_used_mib: number;
  redis_commands: number;
  commands_per_subject: number;
  replica_peak_rss_mib: number[];
  evaluations_by_replica: number[];
  redis_cpu_s: number;
  replica_cpu_s: number[];
  redis_memory_by_group_mib: Record<string, number>;
}

/** `replicas` replicas on a fresh Redis evaluate `SUBJECTS` subjects from nothing. */
async function pass(replicas: number): Promise<Pass> {
  const redis = await RedisServer.start();
  const look = new Redis({ host: "127.0.0.1", port: redis.port });
  look.on("error", () => undefined);
  const dir = tempDir(`cluster-pass-${replicas}`);
  const users = Array.from({ length: SUBJECTS }, (_, i) => ({
    id: `user-${String(i).padStart(6, "0")}`,
    kind: "user",
    identity: `user-${i}@example.org`,
    attributes: { mfa: true, device_managed: true, country: "DE" },
  }));
  writeFileSync(join(dir, "users.json"), JSON.stringify(users));
  const agents: Agent[] = [];
  const metricsUrls: string[] = [];
  try {
    const info = (section: string, field: string) => redisInfo(look, section, field);
    const cpu = async () => (await info("cpu", "used_cpu_sys")) + (await info("cpu", "used_cpu_user"));
    const cpuBefore = await cpu();
    const commandsBefore = await info("stats", "total_commands_processed");
    const t0 = nowMs();
    for (let r = 0; r < replicas; r++) {
      const metricsPort = await freePort();
      metricsUrls.push(`http://127.0.0.1:${metricsPort}/metrics`);
      const own = join(dir, `replica-${r}`);
      mkdirSync(own);
      const file = writeConfig(
        own,
        `
agent:
  data_dir: ${join(dir, `var${r}`)}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:${metricsPort}"}
  log_level: warn${cluster(redis.url, "bench")}
inventories:
  - {type: file, path: ../users.json}
identity_perimeter:
  require_mfa: true
  require_managed_device: true
  require_location_check: true
  allowed_locations: [DE, FR, NL]
  continuous_verification: {interval: 1h}
`,
      );
      agents.push(new Agent(file));
    }
    const peak = agents.map(() => 0);
    let done = NaN;
    while (nowMs() - t0 < DEADLINE_MS) {
      agents.forEach((a, i) => {
        try {
          peak[i] = Math.max(peak[i]!, memory(a.pid).hwm);
        } catch {
          // exited
        }
      });
      const states = await look.hlen("bench:store:states:identity-perimeter").catch(() => 0);
      if (states >= SUBJECTS) {
        const queued = await Promise.all(["wait", "active", "prioritized"].map((s) => (s === "prioritized" ? look.zcard(`bench:queue:evaluate:${s}`) : look.llen(`bench:queue:evaluate:${s}`))));
        if (queued.every((n) => n === 0)) {
          done = nowMs();
          break;
        }
      }
      await sleep(50);
    }
    if (Number.isNaN(done)) throw new Error(`${replicas} replica(s): not done within ${DEADLINE_MS} ms`);
    const seconds = (done - t0) / 1000;
    const replicaCpu = agents.map((a) => r2(cpuSeconds(a.pid)));
    const redisCpu = (await cpu()) - cpuBefore;
    const used = await info("memory", "used_memory");
    const byGroup = await memoryByGroup(look);
    const commands = (await info("stats", "total_commands_processed")) - commandsBefore;
    const evaluations: number[] = [];
    for (const url of metricsUrls) {
      const text = await (await fetch(url)).text();
      evaluations.push(metricSum(text, "vigil_evaluations_total"));
    }
    return {
      replicas,
      seconds: r2(seconds),
      rate: Math.round(SUBJECTS / seconds),
      redis_used_mib: r2(used / 2 ** 20),
      redis_commands: commands,
      commands_per_subject: r2(commands / SUBJECTS),
      replica_peak_rss_mib: peak.map(r2),
      evaluations_by_replica: evaluations,
      redis_cpu_s: r2(redisCpu),
      replica_cpu_s: replicaCpu,
      redis_memory_by_group_mib: byGroup,
    };
  } finally {
    for (const a of agents) await a.stop();
    look.disconnect();
    await redis.stop();
    cleanup(dir);
  }
}

// ---- run ---------------------------------------------------------------------------------------

const embedded = await latency("embedded", () => "");
const redisAlways = await RedisServer.start();
let always: Awaited<ReturnType<typeof latency>>;
try {
  always = await latency("cluster, appendfsync always", () => cluster(redisAlways.url, "lat"), redisAlways);
} finally {
  await redisAlways.stop();
}
const redisEverysec = await RedisServer.start({ fsync: "everysec" });
let everysec: Awaited<ReturnType<typeof latency>>;
try {
  everysec = await latency("cluster, appendfsync everysec", () => cluster(redisEverysec.url, "lat"), redisEverysec);
} finally {
  await redisEverysec.stop();
}
const one = await pass(1);
const three = await pass(3);

const ratio = always.p99 / embedded.p99;
const rows: Row[] = [];
for (const l of [embedded, always, everysec]) {
  rows.push({ metric: `[${l.label}] signal→webhook p50 / p90 (ms)`, value: `${r3(l.p50)} / ${r3(l.p90)}` });
  rows.push({ metric: `[${l.label}] signal→webhook p99 / max (ms)`, value: `${r3(l.p99)} / ${r3(l.max)}` });
  rows.push({ metric: `[${l.label}] 202 accepted p50 / p99 (ms)`, value: `${r3(l.accepted.p50)} / ${r3(l.accepted.p99)}` });
  if (l.redis_commands_per_signal !== undefined)
    rows.push({ metric: `[${l.label}] Redis commands per signal: all / less idle traffic (idle /s)`, value: `${l.redis_commands_per_signal} / ${l.redis_commands_per_signal_less_idle} (${l.redis_idle_commands_per_s})` });
}
rows.push({ metric: "cluster (always) p99 / embedded p99", value: r2(ratio).toString(), goal: "≤ 3", met: ratio <= 3 });
rows.push({ metric: "cluster (everysec) p99 / embedded p99", value: r2(everysec.p99 / embedded.p99).toString() });
for (const p of [one, three]) {
  const m = `[${p.replicas} replica${p.replicas > 1 ? "s" : ""}]`;
  rows.push({ metric: `${m} ${SUBJECTS} subjects evaluated, from spawn (s)`, value: p.seconds.toString() });
  rows.push({ metric: `${m} evaluations / s`, value: p.rate.toString() });
  rows.push({ metric: `${m} evaluations per replica`, value: p.evaluations_by_replica.join(" / ") });
  rows.push({ metric: `${m} Redis used_memory after (MiB)`, value: p.redis_used_mib.toString() });
  rows.push({ metric: `${m} Redis commands (per subject)`, value: `${p.redis_commands} (${p.commands_per_subject})` });
  rows.push({ metric: `${m} replica peak RSS (MiB)`, value: p.replica_peak_rss_mib.join(" / ") });
  rows.push({ metric: `${m} CPU (s): Redis; each replica`, value: `${p.redis_cpu_s}; ${p.replica_cpu_s.join(" / ")}` });
  const top = Object.entries(p.redis_memory_by_group_mib).slice(0, 3);
  rows.push({ metric: `${m} Redis memory, largest key groups (MiB)`, value: top.map(([g, v]) => `${g.replace(/^bench:/, "")} ${v}`).join(", ") });
}
rows.push({ metric: "3 replicas vs 1: time ratio", value: r2(three.seconds / one.seconds).toString() });
report("cluster", rows, { signals: N, warmup: WARMUP, subjects: SUBJECTS, latency: { embedded, cluster_always: always, cluster_everysec: everysec, p99_ratio: ratio }, passes: [one, three] });
