/**
 * Start-up time: spawn of `vigil run` (config/vigil.yaml with a fresh temp data_dir, API on a port
 * chosen beforehand, metrics on port 0) to the first 200 from GET /readyz, polled every 5 ms.
 * 10 runs, with the runtime settings as shipped (lib.ts `shippedRuntimeEnv`). Floor: a bare `node`
 * process that serves /readyz from node:http, timed the same way.
 *
 * Goal (issue "Footprint"): spawn → /readyz at most 200 ms (median).
 *
 * Env: BENCH_STARTUP_RUNS (default 10).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { Agent, ROOT, cleanup, freePort, nowMs, percentile, r3, report, shippedRuntimeEnv, sleep, tempDir, writeConfig } from "./lib.ts";

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

const base = readFileSync(join(ROOT, "config/vigil.yaml"), "utf8");
function configFor(dir: string, port: number): string {
  const yaml = base
    .replace(/^(\s*data_dir:).*$/m, `$1 ${join(dir, "var")}`)
    .replace(/^(\s*api:\s*\n\s*listen:\s*)"127\.0\.0\.1:\d+"/m, `$1"127.0.0.1:${port}"`)
    .replace(/^(\s*metrics:\s*\n\s*listen:\s*)"127\.0\.0\.1:\d+"/m, '$1"127.0.0.1:0"');
  if (!yaml.includes(`127.0.0.1:${port}`) || yaml.includes("9464")) throw new Error("could not rewrite config/vigil.yaml");
  return yaml;
}
const ready: number[] = [];
const started: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = tempDir("startup");
  const port = await freePort();
  const agent = new Agent(writeConfig(dir, configFor(dir, port)), shippedRuntimeEnv());
  try {
    const t = await untilReady(`http://127.0.0.1:${port}/readyz`, () => agent.child.exitCode === null);
    ready.push(t - agent.spawnedAt);
    const s = await agent.started();
    started.push(s.at - agent.spawnedAt);
  } finally {
    await agent.stop();
    cleanup(dir);
  }
}

// The same with Node's on-disk compile cache (NODE_COMPILE_CACHE, warmed by one uncounted run first):
// how much of the start-up is compiling JavaScript. Not vigil's default; shown for comparison.
const cacheDir = tempDir("compile-cache");
const cached: number[] = [];
for (let i = 0; i <= RUNS; i++) {
  const dir = tempDir("startup");
  const port = await freePort();
  const agent = new Agent(writeConfig(dir, configFor(dir, port)), { ...shippedRuntimeEnv(), NODE_COMPILE_CACHE: cacheDir });
  try {
    const t = await untilReady(`http://127.0.0.1:${port}/readyz`, () => agent.child.exitCode === null);
    if (i > 0) cached.push(t - agent.spawnedAt);
  } finally {
    await agent.stop();
    cleanup(dir);
  }
}
cleanup(cacheDir);

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
    { metric: "with NODE_COMPILE_CACHE (warm), median / max (ms)", value: `${r3(percentile(cached, 50))} / ${r3(Math.max(...cached))}` },
    { metric: "floor: bare node http server, median / max (ms)", value: `${r3(percentile(floor, 50))} / ${r3(Math.max(...floor))}` },
  ],
  { runs: RUNS, poll_ms: POLL_MS, ready_ms: ready, started_ms: started, compile_cache_ms: cached, floor_ms: floor },
);
