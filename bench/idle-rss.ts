/**
 * Idle memory and CPU: `vigil run` on config/vigil.yaml (copied with data_dir and the demo PKI in a
 * temp dir and both listeners on port 0) with the runtime settings as shipped (lib.ts `shippedRuntimeEnv`), RSS 5 s
 * after "vigil started" (it logs that in the step that makes /readyz answer 200). Five runs, fresh
 * data_dir each. With BENCH_IDLE_STEADY_MS (e.g. 180000 for the 3-minute goal) each run also stays
 * that long: RSS at the end, and CPU ticks (utime + stime, all threads) per minute from the 60 s mark
 * to the end (idle between evaluations: before that the start-up's garbage collection and WAL
 * checkpoint still run; the first-minute rate is printed beside it). The default config evaluates
 * every 5 minutes on the wall clock's 5-minute marks, so a run's window may hold a scheduled
 * evaluation: the goal is for idle CPU between evaluations, so it is judged on the windows without
 * one (vigil_evaluations_total unchanged across the window), and the median of all runs is printed too. Floors: a bare `node` process, and one that has imported vigil's modules without
 * starting anything, same idle time.
 *
 * Goals (issue "Footprint"): RSS at most 75 MiB at 5 s and at steady state; idle CPU at most
 * 2 ticks per minute.
 *
 * Env: BENCH_IDLE_RUNS (default 5), BENCH_IDLE_MS (default 5000), BENCH_IDLE_STEADY_MS (default 0: off),
 * BENCH_FLAGS=none (without the shipped runtime settings).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, ROOT, cleanup, defaultConfig, memory, metricSum, r2, report, shippedRuntimeEnv, sleep, tempDir, writeConfig } from "./lib.ts";

const RUNS = Number(process.env.BENCH_IDLE_RUNS ?? 5);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 5_000);
const STEADY_MS = Number(process.env.BENCH_IDLE_STEADY_MS ?? 0);
/** Where idle CPU starts being counted: the start-up's tail (GC, the first WAL checkpoint) is over by then. */
const SETTLE_MS = 60_000;
const GOAL_MIB = 75;
const GOAL_TICKS_PER_MIN = 2;

/** CPU time of every thread of `pid`, in clock ticks (utime + stime). */
function ticks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
}
const steady: { rss: number; ticks_per_min: number; first_minute_ticks_per_min: number; evaluations: number }[] = [];
/** Subjects evaluated so far (a scrape is made outside the windows whose CPU is counted). */
async function evaluations(agent: Agent): Promise<number> {
  return metricSum(await (await fetch(`${agent.metrics}/metrics`)).text(), "vigil_evaluations_total");
}

const runs: ReturnType<typeof memory>[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = tempDir("idle");
  const yaml = defaultConfig(dir);
  const agent = new Agent(writeConfig(dir, yaml), shippedRuntimeEnv());
  try {
    await agent.started();
    await sleep(IDLE_MS);
    runs.push(memory(agent.pid));
    if (STEADY_MS > SETTLE_MS) {
      const t0 = ticks(agent.pid);
      await sleep(SETTLE_MS - IDLE_MS);
      const e1 = await evaluations(agent);
      const t1 = ticks(agent.pid);
      await sleep(STEADY_MS - SETTLE_MS);
      const t2 = ticks(agent.pid);
      const rss = memory(agent.pid).rss;
      steady.push({
        rss,
        ticks_per_min: ((t2 - t1) * 60_000) / (STEADY_MS - SETTLE_MS),
        first_minute_ticks_per_min: ((t1 - t0) * 60_000) / (SETTLE_MS - IDLE_MS),
        evaluations: (await evaluations(agent)) - e1,
      });
    }
  } finally {
    await agent.stop();
    cleanup(dir);
  }
}
// Floors, same idle time: a bare node process, and node with vigil's modules imported but nothing started.
async function floor(code: string): Promise<ReturnType<typeof memory>> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { cwd: ROOT, stdio: "ignore" });
  try {
    await sleep(IDLE_MS);
    return memory(child.pid!);
  } finally {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  }
}
const bare = await floor("setInterval(() => {}, 1000)");
const imported = await floor('await import("./dist/cli/run.js"); await import("./dist/engine/agent.js"); setInterval(() => {}, 1000)');

const rss = runs.map((r) => r.rss).sort((a, b) => a - b);
const median = rss[Math.floor(rss.length / 2)]!;
const max = rss[rss.length - 1]!;
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const steadyRows =
  steady.length === 0
    ? [{ metric: "steady state (set BENCH_IDLE_STEADY_MS=180000 for the 3-minute goal)", value: "not run" }]
    : [
        { metric: `RSS after ${STEADY_MS / 1000} s idle, median (MiB)`, value: r2(med(steady.map((s) => s.rss))).toString(), goal: `≤ ${GOAL_MIB} MiB`, met: med(steady.map((s) => s.rss)) <= GOAL_MIB },
        (() => {
          const quiet = steady.filter((s) => s.evaluations === 0).map((s) => s.ticks_per_min);
          return quiet.length === 0
            ? { metric: `idle CPU between evaluations, ${SETTLE_MS / 1000} s → ${STEADY_MS / 1000} s`, value: "every run's window held a scheduled evaluation", goal: `≤ ${GOAL_TICKS_PER_MIN}` }
            : { metric: `idle CPU between evaluations, ticks per minute (all threads), ${SETTLE_MS / 1000} s → ${STEADY_MS / 1000} s, median of the ${quiet.length} of ${steady.length} runs without one`, value: r2(med(quiet)).toString(), goal: `≤ ${GOAL_TICKS_PER_MIN}`, met: med(quiet) <= GOAL_TICKS_PER_MIN };
        })(),
        { metric: `the same, every run (${steady.filter((s) => s.evaluations > 0).length} with a scheduled evaluation in the window), median`, value: r2(med(steady.map((s) => s.ticks_per_min))).toString() },
        { metric: `the same, ${IDLE_MS / 1000} s → ${SETTLE_MS / 1000} s (start-up's tail), median`, value: r2(med(steady.map((s) => s.first_minute_ticks_per_min))).toString() },
      ];
const flags = shippedRuntimeEnv();
report(
  "idle-rss",
  [
    { metric: "runtime settings", value: Object.entries(flags).map(([k, v]) => `${k}=${v}`).join(" ") || "none" },
    { metric: `RSS after ${IDLE_MS / 1000} s idle, median of ${RUNS} (MiB)`, value: r2(median).toString(), goal: `≤ ${GOAL_MIB} MiB`, met: median <= GOAL_MIB },
    { metric: `RSS after ${IDLE_MS / 1000} s idle, max (MiB)`, value: r2(max).toString() },
    ...steadyRows,
    { metric: "peak RSS, VmHWM, max (MiB)", value: r2(Math.max(...runs.map((r) => r.hwm))).toString() },
    { metric: "of the median run: anonymous / file-backed (MiB)", value: (({ anon, file }) => `${r2(anon)} / ${r2(file)}`)(runs.find((r) => r.rss === median)!) },
    { metric: "floor: bare node, RSS (anon / file) (MiB)", value: `${r2(bare.rss)} (${r2(bare.anon)} / ${r2(bare.file)})` },
    { metric: "floor: node + vigil modules imported, not started (MiB)", value: `${r2(imported.rss)} (${r2(imported.anon)} / ${r2(imported.file)})` },
  ],
  { runs, idle_ms: IDLE_MS, median_rss_mib: median, max_rss_mib: max, steady_ms: STEADY_MS, steady, runtime: flags, floor_bare: bare, floor_imported: imported },
);
