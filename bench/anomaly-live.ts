/**
 * The live anomaly_detection check with 10,000 series, one point each per tick: one PromQL query
 * for all subjects (`match` on a label), a Prometheus query API in a process of its own
 * (bench/prometheus-fake.ts), the check's default detector settings, and learned state written to
 * a real embedded store. Subjects are run in batches of 100, as the engine's evaluation jobs carry
 * them, on a fake clock one step (1m) apart.
 *
 * Reports: the first tick (every series seen for the first time: a day of history read with
 * range queries and fed), then per tick the time for all 10,000 subjects (the first batch
 * fetches and feeds the 10,000 points, the others read what the detectors hold), the process's
 * memory, the state written per tick and at the stop, and how many subjects a tick left warn or
 * fail (the series are normal: these are false alarms).
 *
 * Env: BENCH_ANOMALY_SERIES (default 10,000), BENCH_ANOMALY_TICKS (default 30), BENCH_ANOMALY_LOOKBACK
 * (default: the check's, a day; shorter for profiling the ticks).
 */
import { spawn } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { join } from "node:path";
import { metrics, trace } from "@opentelemetry/api";
import { anomalyDetectionCheck } from "../src/checks/anomaly_detection/index.ts";
import { anomalyConfigSchema, lookbackOf } from "../src/checks/anomaly_detection/config.ts";
import { DATABASE_FILE, openDatabase } from "../src/db/sqlite.ts";
import { Checkpointer } from "../src/db/checkpointer.ts";
import { EmbeddedStore } from "../src/store/embedded.ts";
import { createHttpClient } from "../src/net/http.ts";
import { SharedResources } from "../src/plugin/shared.ts";
import type { KeyValueStore } from "../src/plugin/state.ts";
import type { PluginContext } from "../src/plugin/context.ts";
import type { Subject } from "../src/policy/model.ts";
import { silentLogger } from "../src/telemetry/log.ts";
import { FakeClock } from "../src/util/clock.ts";
import { cleanup, memory, nowMs, r2, report, ROOT, summary, tempDir, type Row } from "./lib.ts";

const SERIES = Number(process.env.BENCH_ANOMALY_SERIES ?? 10_000);
const TICKS = Number(process.env.BENCH_ANOMALY_TICKS ?? 30);
const BATCH = 100;
const STEP = 60_000;
const MIB = 2 ** 20;

const fake = spawn(process.execPath, [join(ROOT, "bench", "prometheus-fake.ts")], { env: { ...process.env, BENCH_ANOMALY_SERIES: String(SERIES) }, stdio: ["ignore", "pipe", "inherit"] });
const port = await new Promise<number>((resolve, reject) => {
  fake.stdout!.setEncoding("utf8").on("data", (c: string) => {
    const m = /listening (\d+)/.exec(c);
    if (m) resolve(Number(m[1]));
  });
  fake.on("exit", (code) => reject(new Error(`the fake Prometheus exited with ${code}`)));
});

const dir = tempDir("anomaly");
// As the agent opens it: WAL checkpoints in a worker thread, never on the writer's commit.
const db = openDatabase(dir, { manualCheckpoint: true });
const checkpointer = new Checkpointer(join(dir, DATABASE_FILE), 64 * MIB);
const store = new EmbeddedStore(db, dir);
await store.start();
let written = 0;
let writes = 0;
const state: KeyValueStore = {
  getValues: (space, keys) => store.getValues(space, keys),
  listKeys: (space, prefixes, limit) => store.listKeys(space, prefixes, limit),
  pruneValues: (space, before, limit) => store.pruneValues(space, before, limit),
  putValues: (space, entries, at) => {
    for (const e of entries) written += e.value?.length ?? 0;
    writes += entries.length;
    return store.putValues(space, entries, at);
  },
};
const clock = new FakeClock(Math.floor(Date.parse("2026-12-01T00:00:00Z") / STEP) * STEP);
const http = createHttpClient();
const ctx: PluginContext = { clock, logger: silentLogger(), meter: metrics.getMeter("bench"), tracer: trace.getTracer("bench"), http, dataDir: dir, configDir: dir, shared: new SharedResources(), state };
const config = anomalyConfigSchema.parse({
  prometheus: { url: `http://127.0.0.1:${port}`, timeout: "5m" },
  max_series: 1_000_000,
  ...(process.env.BENCH_ANOMALY_LOOKBACK ? { lookback: process.env.BENCH_ANOMALY_LOOKBACK } : {}),
  series: [{ name: "requests", query: "app_requests", match: { app: "{{labels.app}}" } }],
});
const check = anomalyDetectionCheck.create(config, ctx);
/** Points of history per series at first sight: the default lookback at the default step. */
const HISTORY = Math.floor(lookbackOf(config, config.series![0]!) / STEP) + 1;
const subjects: Subject[] = Array.from({ length: SERIES }, (_, i) => ({ id: `s${i}`, kind: "workload", labels: { app: `s${i}` }, attributes: {} }));

async function tick(): Promise<{ total: number; cpu: number; first: number; statuses: Record<string, number> }> {
  const statuses: Record<string, number> = {};
  const started = nowMs();
  const cpu0 = process.cpuUsage();
  let first = 0;
  for (let b = 0; b < subjects.length; b += BATCH) {
    const t = nowMs();
    const results = await check.run(subjects.slice(b, b + BATCH), { ...ctx, signal: AbortSignal.timeout(600_000), timeoutMs: 600_000, ttlMs: 2 * STEP, check: "anomaly_detection" });
    if (b === 0) first = nowMs() - t;
    // Jobs of the engine's queue are separate tasks: let timers and I/O in between, as it does.
    await new Promise<void>((r) => setImmediate(r));
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  }
  const cpu = process.cpuUsage(cpu0);
  return { total: nowMs() - started, cpu: (cpu.user + cpu.system) / 1000, first, statuses };
}

globalThis.gc?.();
const before = memory(process.pid);
// How long the event loop is blocked at a stretch: what a signal arriving meanwhile would wait.
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const warm = await tick();
const warmBlock = loop.max / 1e6;
await checkpointer.checkpoint();
loop.reset();
const afterWarm = memory(process.pid);
const totals: number[] = [];
const cpus: number[] = [];
const firsts: number[] = [];
const alarms: number[] = [];
const writtenBefore = written;
const writesBefore = writes;
let last = warm;
for (let k = 0; k < TICKS; k++) {
  clock.advance(STEP);
  last = await tick();
  await checkpointer.checkpoint();
  totals.push(last.total);
  cpus.push(last.cpu);
  firsts.push(last.first);
  alarms.push((last.statuses.warn ?? 0) + (last.statuses.fail ?? 0));
}
const steady = memory(process.pid);
const tickBlock = { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
loop.disable();
const heap = process.memoryUsage();
const perTickBytes = (written - writtenBefore) / TICKS;
const perTickWrites = (writes - writesBefore) / TICKS;
const stopStarted = nowMs();
await check.stop?.();
const stopMs = nowMs() - stopStarted;
const stored = db.prepare("SELECT count(*) AS n, sum(length(data)) AS bytes FROM plugin_values").get() as { n: number; bytes: number };
await store.stop();
await checkpointer.close();
db.close();
await http.close();
fake.kill();
cleanup(dir);

const t = summary(totals);
const c = summary(cpus);
const f = summary(firsts);
const rows: Row[] = [
  { metric: `first tick: ${SERIES.toLocaleString("en")} series seen, a day of history read and fed (${HISTORY.toLocaleString("en")} points each): wall / CPU`, value: `${r2(warm.total / 1000)} / ${r2(warm.cpu / 1000)} s` },
  { metric: `tick, all ${SERIES.toLocaleString("en")} subjects in batches of ${BATCH}: p50 / p90 / max (${TICKS} ticks)`, value: `${r2(t.p50)} / ${r2(t.p90)} / ${r2(t.max)} ms` },
  { metric: `  of which the first batch (one instant query, ${SERIES.toLocaleString("en")} points parsed and fed, the save round started): p50`, value: `${r2(f.p50)} ms` },
  { metric: "  CPU time (user + system) per tick: p50 / max; per series", value: `${r2(c.p50)} / ${r2(c.max)} ms; ${r2((c.p50 * 1000) / SERIES)} µs` },
  { metric: "longest event-loop block: first tick / ticks (p99 of the delay samples during ticks)", value: `${r2(warmBlock)} / ${r2(tickBlock.max)} ms (${r2(tickBlock.p99)})` },
  { metric: "RSS before / after the first tick / after the ticks (peak)", value: `${r2(before.rss)} / ${r2(afterWarm.rss)} / ${r2(steady.rss)} MiB (${r2(steady.hwm)})` },
  { metric: "  JS heap used / array buffers after the ticks", value: `${r2(heap.heapUsed / MIB)} / ${r2(heap.arrayBuffers / MIB)} MiB` },
  { metric: "  per series ((RSS after the ticks − before) / series)", value: `${r2(((steady.rss - before.rss) * 1024) / SERIES)} KiB` },
  { metric: "state written per tick (save_every 30m, 1m step)", value: `${r2(perTickWrites)} series, ${r2(perTickBytes / 1024)} KiB` },
  { metric: "stop (pushed series written all, query series only when due)", value: `${r2(stopMs / 1000)} s` },
  { metric: "state stored: series, total, per series", value: `${stored.n.toLocaleString("en")}, ${r2(stored.bytes / MIB)} MiB, ${r2(stored.bytes / stored.n / 1024)} KiB` },
  { metric: "subjects warn or fail per tick on normal series (false alarms): mean / max", value: `${r2(alarms.reduce((a, b) => a + b, 0) / alarms.length)} / ${Math.max(...alarms)}` },
];
report("anomaly live check", rows, {
  series: SERIES,
  ticks: TICKS,
  first_tick_s: r2(warm.total / 1000),
  first_tick_cpu_s: r2(warm.cpu / 1000),
  tick_cpu_ms: { p50: r2(c.p50), max: r2(c.max) },
  tick_ms: { p50: r2(t.p50), p90: r2(t.p90), max: r2(t.max) },
  first_batch_ms_p50: r2(f.p50),
  event_loop_block_ms: { first_tick: r2(warmBlock), ticks_max: r2(tickBlock.max), ticks_p99: r2(tickBlock.p99) },
  rss_mib: { before: r2(before.rss), after_first_tick: r2(afterWarm.rss), after_ticks: r2(steady.rss), peak: r2(steady.hwm) },
  heap_mib: r2(heap.heapUsed / MIB),
  written_per_tick_kib: r2(perTickBytes / 1024),
  stop_s: r2(stopMs / 1000),
  stored_mib: r2(stored.bytes / MIB),
  stored_kib_per_series: r2(stored.bytes / stored.n / 1024),
  false_alarms_per_tick: { mean: r2(alarms.reduce((a, b) => a + b, 0) / alarms.length), max: Math.max(...alarms) },
});
