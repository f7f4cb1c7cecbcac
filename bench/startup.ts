/**
 * Start-up time: spawn of `vigil run` (config/vigil.yaml with a fresh temp data_dir and demo PKI,
 * API on a port chosen beforehand, metrics on port 0) to the first 200 from GET /readyz, polled
 * every 5 ms. 10 runs, with the runtime settings as shipped (lib.ts `shippedRuntimeEnv`) and
 * bin/vigil's compile cache warm (every start after the first); then 10 cold (no compile cache).
 * Floor: a bare `node` process that serves /readyz from node:http, timed the same way.
 *
 * Goal (issue "Footprint"): spawn → /readyz at most 200 ms (median).
 *
 * Env: BENCH_STARTUP_RUNS (default 10). BENCH_STARTUP_COMPARE=<another checkout's bin/vigil>
 * starts that build in turn with this one (start by start, each with its own warm compile cache and
 * this tree's runtime settings) and prints its median beside this one's: two medians taken minutes
 * apart on a shared host differ by more than most start-up changes.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { once } from "node:events";
import { Agent, ROOT, cleanup, defaultConfig, freePort, nowMs, percentile, r3, report, shippedRuntimeEnv, sleep, tempDir, writeConfig } from "./lib.ts";

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 10);
const GOAL_MS = 200;
const POLL_MS = 5;

async function untilReady(url: string, alive: () => boolean): Promise<number> {
  for (;;) {
    if (!alive()) throw new Error("process exited before ready");
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return nowMs();
    } catch {
      // not listening yet
    }
    await sleep(POLL_MS);
  }
}

const configFor = (dir: string, port: number): string => defaultConfig(dir, { api: port });
// As shipped: bin/vigil keeps Node's compile cache under $XDG_CACHE_HOME/vigil (src/cli/compile-cache.ts),
// here a temp dir of the bench's own, warmed by one uncounted run first, as any start after the first.
const cacheHome = tempDir("cache-home");
const OTHER = process.env.BENCH_STARTUP_COMPARE ? resolve(process.env.BENCH_STARTUP_COMPARE) : undefined;
const otherCacheHome = tempDir("cache-home-other");
const ready: number[] = [];
const started: number[] = [];
const otherReady: number[] = [];
/** One warm start of `bin`: ms to /readyz 200 and to "vigil started". */
async function warmStart(bin: string | undefined, home: string): Promise<{ ready: number; started: number }> {
  const dir = tempDir("startup");
  const port = await freePort();
  const agent = new Agent(writeConfig(dir, configFor(dir, port)), { ...shippedRuntimeEnv(), XDG_CACHE_HOME: home, NODE_COMPILE_CACHE: "" }, bin);
  try {
    const t = await untilReady(`http://127.0.0.1:${port}/readyz`, () => agent.child.exitCode === null);
    const s = await agent.started();
    return { ready: t - agent.spawnedAt, started: s.at - agent.spawnedAt };
  } finally {
    await agent.stop();
    cleanup(dir);
  }
}
for (let i = 0; i <= RUNS; i++) {
  // Which build goes first alternates, so neither always starts right after the other.
  const otherFirst = OTHER !== undefined && i % 2 === 1;
  const o1 = otherFirst ? await warmStart(OTHER, otherCacheHome) : undefined;
  const r = await warmStart(undefined, cacheHome);
  const o = o1 ?? (OTHER ? await warmStart(OTHER, otherCacheHome) : undefined);
  if (i > 0) {
    ready.push(r.ready);
    started.push(r.started);
    if (o) otherReady.push(o.ready);
  }
}
cleanup(cacheHome);
cleanup(otherCacheHome);

// The first start on a machine (or after an upgrade): nothing cached, every chunk compiled.
const cold: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = tempDir("startup");
  const port = await freePort();
  const agent = new Agent(writeConfig(dir, configFor(dir, port)), { ...shippedRuntimeEnv(), NODE_DISABLE_COMPILE_CACHE: "1" });
  try {
    cold.push((await untilReady(`http://127.0.0.1:${port}/readyz`, () => agent.child.exitCode === null)) - agent.spawnedAt);
  } finally {
    await agent.stop();
    cleanup(dir);
  }
}

// Floor: node itself, with an HTTP server answering /readyz.
const floor: number[] = [];
const FLOOR_SRC = `require("node:http").createServer((q, s) => s.end("ok")).listen(Number(process.argv[1]), "127.0.0.1")`;
for (let i = 0; i < RUNS; i++) {
  const port = await freePort();
  const t0 = nowMs();
  const child = spawn(process.execPath, ["-e", FLOOR_SRC, String(port)], { stdio: "ignore" });
  try {
    floor.push((await untilReady(`http://127.0.0.1:${port}/readyz`, () => child.exitCode === null)) - t0);
  } finally {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  }
}

const med = percentile(ready, 50);
const max = Math.max(...ready);
report(
  "startup",
  [
    { metric: `spawn → /readyz 200, median of ${RUNS} (ms)`, value: r3(med).toString(), goal: `≤ ${GOAL_MS} ms`, met: med <= GOAL_MS },
    { metric: `spawn → /readyz 200, max (ms)`, value: r3(max).toString() },
    { metric: `spawn → "vigil started" read by the bench, median (ms)`, value: r3(percentile(started, 50)).toString() },
    { metric: "cold: no compile cache (a first start), median / max (ms)", value: `${r3(percentile(cold, 50))} / ${r3(Math.max(...cold))}` },
    { metric: "floor: bare node http server, median / max (ms)", value: `${r3(percentile(floor, 50))} / ${r3(Math.max(...floor))}` },
    ...(OTHER ? [{ metric: `${OTHER}, started in turn with this build, median (ms)`, value: r3(percentile(otherReady, 50)).toString() }] : []),
  ],
  { runs: RUNS, poll_ms: POLL_MS, ready_ms: ready, started_ms: started, cold_ms: cold, floor_ms: floor, ...(OTHER ? { compare: OTHER, compare_ready_ms: otherReady } : {}) },
);
