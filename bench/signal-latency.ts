/**
 * Signal → enforcement latency through the real agent: POST /v1/signals, and time until the deny
 * (or revert) webhook reaches a local receiver. Sequential: the next signal goes out only after the
 * previous webhook arrived.
 *
 * One subject, alternating fail / pass: every signal changes the decision (full_access → deny applies
 * the webhook action, deny → full_access reverts it), so every signal yields exactly one webhook, the
 * state table stays the same size all run long, and both apply and revert paths are measured.
 *
 * Receiver modes (BENCH_RECEIVER=child|inproc|both, default both):
 *   child  – the receiver is its own process (no shared event loop with the sender); it timestamps with
 *            CLOCK_MONOTONIC (process.hrtime), the same clock the sender uses, and reports over IPC.
 *   inproc – sender and receiver share the bench process and its event loop.
 * Floor: the same receiver taking N direct POSTs from the bench (undici, keep-alive), same timing.
 *
 * Env: BENCH_SIGNALS (default 1000), BENCH_WARMUP (default 50, not counted).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { Agent as Dispatcher, request } from "undici";
import { Agent, TOKEN, ROOT, cleanup, metricSum, nowMs, r2, r3, report, summary, tempDir, writeConfig, type Row } from "./lib.ts";
import { startReceiver, type Delivery } from "./receiver.ts";

const N = Number(process.env.BENCH_SIGNALS ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 50);
const MODES = (process.env.BENCH_RECEIVER ?? "both") === "both" ? ["child", "inproc"] : [process.env.BENCH_RECEIVER!];
const SECRET = "whsec-bench-0123456789abcdef";
const GOAL_P99_MS = 10;

function config(dir: string, hookUrl: string): string {
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  log_level: info
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
    - type: webhook
      name: notify
      url: "${hookUrl}"
      secret: "${SECRET}"
  limits: {max_actions: 1000000, window: 10m}
  retry: {attempts: 3, delay: 100ms, max_delay: 1s}
`;
}

interface Receiver {
  url: string;
  next(timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

function queueOf(): { push(d: Delivery): void; next(timeoutMs?: number): Promise<Delivery> } {
  const pending: Delivery[] = [];
  let waiter: ((d: Delivery) => void) | undefined;
  return {
    push(d) {
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(d);
      } else pending.push(d);
    },
    next(timeoutMs = 5_000) {
      const d = pending.shift();
      if (d) return Promise.resolve(d);
      return new Promise((res, rej) => {
        const t = setTimeout(() => ((waiter = undefined), rej(new Error(`no webhook within ${timeoutMs} ms`))), timeoutMs);
        waiter = (x) => (clearTimeout(t), res(x));
      });
    },
  };
}

async function receiver(mode: string): Promise<Receiver> {
  const q = queueOf();
  if (mode === "inproc") {
    const { url, server } = await startReceiver(SECRET, (d) => q.push(d));
    return { url, next: q.next, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
  }
  const child: ChildProcess = fork(join(ROOT, "bench/receiver.ts"), [SECRET], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const url = await new Promise<string>((res) => {
    child.on("message", (m: { type: string; url?: string } & Delivery) => {
      if (m.type === "listening") res(m.url!);
      else q.push(m);
    });
  });
  return {
    url,
    next: q.next,
    close: async () => {
      const exited = once(child, "exit");
      child.disconnect();
      await exited;
    },
  };
}

async function runMode(mode: string): Promise<Record<string, unknown>> {
  const rcv = await receiver(mode);
  const dir = tempDir("signal");
  const agent = new Agent(writeConfig(dir, config(dir, rcv.url)));
  const dispatcher = new Dispatcher({ keepAliveTimeout: 60_000, connections: 1 });
  try {
    await agent.started();
    const latency: number[] = [];
    const accepted: number[] = [];
    const byOp: Record<string, number[]> = { apply: [], revert: [] };
    let invalid = 0;
    for (let i = 0; i < WARMUP + N; i++) {
      const status = i % 2 === 0 ? "fail" : "pass";
      const expected = status === "fail" ? "apply" : "revert";
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
      if (res.statusCode !== 202) throw new Error(`signal ${i}: HTTP ${res.statusCode}`);
      const d = await delivery;
      if (d.operation !== expected) throw new Error(`signal ${i}: expected ${expected}, webhook was ${d.operation}`);
      if (!d.valid) invalid++;
      if (i >= WARMUP) {
        latency.push(d.t - t0);
        accepted.push(t202 - t0);
        byOp[expected]!.push(d.t - t0);
      }
    }
    // Agent-side view: signal accepted → action succeeded (wall clock, ms resolution).
    const text = await (await fetch(agent.metrics + "/metrics")).text();
    const aSum = metricSum(text, "vigil_signal_to_enforcement_seconds_sum");
    const aCount = metricSum(text, "vigil_signal_to_enforcement_seconds_count");

    // Floor: the same receiver, N direct POSTs of a webhook-sized body.
    const floor: number[] = [];
    const body = JSON.stringify({ subject: "frontend", policy: "frontend-to-api", access: "deny", previous_access: "full_access", generation: 2, risk: "high", reasons: [{ code: "SIGNAL", message: "bench" }], decided_at: new Date().toISOString(), idempotency_key: "x".repeat(40), operation: "apply" });
    for (let i = 0; i < WARMUP + N; i++) {
      const delivery = rcv.next();
      const t0 = nowMs();
      const res = await request(rcv.url, { method: "POST", dispatcher, headers: { "content-type": "application/json" }, body });
      await res.body.text();
      const d = await delivery;
      if (i >= WARMUP) floor.push(d.t - t0);
    }
    // p50 / p99 by quarter of the run, to show drift (the jobs table keeps completed jobs for 24 h).
    const q = Math.ceil(latency.length / 4);
    const quarters = [0, 1, 2, 3].map((k) => latency.slice(k * q, (k + 1) * q)).map((part) => ({ p50: r3(summary(part).p50), p99: r3(summary(part).p99) }));
    return { mode, quarters, latency: summary(latency), apply: summary(byOp.apply!), revert: summary(byOp.revert!), accepted: summary(accepted), floor: summary(floor), agent_metric_mean_ms: aCount ? (aSum / aCount) * 1000 : null, agent_metric_count: aCount, invalid_signatures: invalid };
  } finally {
    await dispatcher.close();
    await agent.stop();
    await rcv.close();
    cleanup(dir);
  }
}

const results: Record<string, unknown>[] = [];
for (const mode of MODES) results.push(await runMode(mode));

const rows: Row[] = [];
for (const r of results as ({ mode: string; agent_metric_mean_ms: number | null; invalid_signatures: number } & Record<"latency" | "apply" | "revert" | "accepted" | "floor", ReturnType<typeof summary>>)[]) {
  const m = `[${r.mode} receiver]`;
  rows.push({ metric: `${m} signal→webhook p50 / p90 (ms)`, value: `${r3(r.latency.p50)} / ${r3(r.latency.p90)}` });
  rows.push({ metric: `${m} signal→webhook p99 (ms)`, value: `${r3(r.latency.p99)}`, goal: `< ${GOAL_P99_MS} ms`, met: r.latency.p99 < GOAL_P99_MS });
  rows.push({ metric: `${m} signal→webhook max (ms)`, value: `${r3(r.latency.max)}` });
  rows.push({ metric: `${m} apply (deny) p50 / p99 (ms)`, value: `${r3(r.apply.p50)} / ${r3(r.apply.p99)}` });
  rows.push({ metric: `${m} revert p50 / p99 (ms)`, value: `${r3(r.revert.p50)} / ${r3(r.revert.p99)}` });
  rows.push({ metric: `${m} 202 accepted p50 / p99 (ms)`, value: `${r3(r.accepted.p50)} / ${r3(r.accepted.p99)}` });
  rows.push({ metric: `${m} floor: direct POST p50 / p99 (ms)`, value: `${r3(r.floor.p50)} / ${r3(r.floor.p99)}` });
  rows.push({ metric: `${m} agent metric mean (ms)`, value: r.agent_metric_mean_ms === null ? "n/a" : `${r2(r.agent_metric_mean_ms)}` });
  if (r.invalid_signatures) rows.push({ metric: `${m} invalid signatures`, value: String(r.invalid_signatures) });
}
report("signal-latency", rows, { signals: N, warmup: WARMUP, results });
