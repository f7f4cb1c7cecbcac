/**
 * The embedded queue on node:sqlite (WAL, synchronous=NORMAL), in-process: what one durable
 * enqueue costs, enqueue → handler start on an idle queue, and bulk throughput. These are the
 * figures behind choosing SQLite over a hand-written journal for embedded mode.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../src/db/sqlite.ts";
import { EmbeddedQueue } from "../src/queue/embedded.ts";

const dir = mkdtempSync(join(tmpdir(), "vigil-bench-queue-"));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const quiet = { warn() {}, error() {}, debug() {} };

try {
  // As the agent opens it: WAL checkpoints happen off the hot path (housekeeping), not inside a commit.
  const db = openDatabase(dir, { manualCheckpoint: process.env.BENCH_AUTO_CHECKPOINT ? false : true });
  const queue = new EmbeddedQueue(db, { logger: quiet });
  const N = 2_000;
  let resolveRun: (() => void) | undefined;
  const starts: number[] = [];
  queue.process<{ t: number }>("lat", async (job) => {
    starts.push(performance.now() - job.payload.t);
    resolveRun?.();
  });
  queue.process("bulk", async () => {});
  await queue.start();

  // 1. enqueue → handler start, one job at a time on an idle queue (includes the durable commit).
  const enqueueMs: number[] = [];
  for (let i = 0; i < N; i++) {
    const ran = new Promise<void>((r) => (resolveRun = r));
    const t = performance.now();
    await queue.enqueue("lat", { t });
    enqueueMs.push(performance.now() - t);
    await ran;
  }

  // 2. 100,000 jobs in one durable write, then drained.
  await queue.stop();
  const q2 = new EmbeddedQueue(db, { logger: quiet });
  let done = 0;
  let allDone: () => void = () => {};
  const drained = new Promise<void>((r) => (allDone = r));
  q2.process("bulk", async () => {
    if (++done === 100_000) allDone();
  }, { concurrency: 16 });
  const jobs = Array.from({ length: 100_000 }, (_, i) => ({ payload: { i }, options: { id: `b${i}` } }));
  const t0 = performance.now();
  await q2.enqueueMany("bulk", jobs);
  const enqueueManyMs = performance.now() - t0;
  const t1 = performance.now();
  await q2.start();
  await drained;
  const drainS = (performance.now() - t1) / 1000;
  await q2.stop();
  db.close();

  const rows = [
    ["durable enqueue (commit) p50 / p99 (ms)", `${pct(enqueueMs, 50).toFixed(3)} / ${pct(enqueueMs, 99).toFixed(3)}`],
    ["enqueue → handler start p50 / p99 (ms)", `${pct(starts, 50).toFixed(3)} / ${pct(starts, 99).toFixed(3)}`],
    ["enqueueMany 100,000 jobs, one transaction (ms)", enqueueManyMs.toFixed(0)],
    ["drain 100,000 no-op jobs, concurrency 16 (jobs/s)", Math.round(100_000 / drainS).toString()],
  ];
  console.log("\n## queue (embedded, node:sqlite)\n| figure | value |\n| --- | --- |");
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  console.log("BENCH_JSON " + JSON.stringify({ bench: "queue", enqueue_p50_ms: pct(enqueueMs, 50), enqueue_p99_ms: pct(enqueueMs, 99), start_p50_ms: pct(starts, 50), start_p99_ms: pct(starts, 99), enqueue_many_100k_ms: enqueueManyMs, drain_jobs_per_s: 100_000 / drainS }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
