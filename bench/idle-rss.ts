/**
 * Idle memory: `vigil run` on config/vigil.yaml (copied with data_dir in a temp dir and both
 * listeners on port 0), RSS 5 s after "vigil started". Three runs, fresh data_dir each. Floors: a bare
 * `node` process, and one that has imported vigil's modules without starting anything, same idle time.
 *
 * Env: BENCH_IDLE_RUNS (default 3), BENCH_IDLE_MS (default 5000).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, ROOT, cleanup, memory, r2, report, sleep, tempDir, writeConfig } from "./lib.ts";

const RUNS = Number(process.env.BENCH_IDLE_RUNS ?? 3);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 5_000);
const GOAL_MIB = 90;

const base = readFileSync(join(ROOT, "config/vigil.yaml"), "utf8");
const runs: ReturnType<typeof memory>[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = tempDir("idle");
  const yaml = base
    .replace(/^(\s*data_dir:).*$/m, `$1 ${join(dir, "var")}`)
    .replace(/^(\s*listen:\s*)"127\.0\.0\.1:\d+"/gm, '$1"127.0.0.1:0"');
  if (!yaml.includes(join(dir, "var")) || /127\.0\.0\.1:[1-9]/.test(yaml)) throw new Error("could not rewrite config/vigil.yaml");
  const agent = new Agent(writeConfig(dir, yaml));
  try {
    await agent.started();
    await sleep(IDLE_MS);
    runs.push(memory(agent.pid));
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
report(
  "idle-rss",
  [
    { metric: `RSS after ${IDLE_MS / 1000} s idle, median of ${RUNS} (MiB)`, value: r2(median).toString(), goal: `< ${GOAL_MIB} MiB`, met: median < GOAL_MIB },
    { metric: `RSS after ${IDLE_MS / 1000} s idle, max (MiB)`, value: r2(max).toString(), goal: `< ${GOAL_MIB} MiB`, met: max < GOAL_MIB },
    { metric: "peak RSS, VmHWM, max (MiB)", value: r2(Math.max(...runs.map((r) => r.hwm))).toString() },
    { metric: "of the median run: anonymous / file-backed (MiB)", value: (({ anon, file }) => `${r2(anon)} / ${r2(file)}`)(runs.find((r) => r.rss === median)!) },
    { metric: "floor: bare node, RSS (anon / file) (MiB)", value: `${r2(bare.rss)} (${r2(bare.anon)} / ${r2(bare.file)})` },
    { metric: "floor: node + vigil modules imported, not started (MiB)", value: `${r2(imported.rss)} (${r2(imported.anon)} / ${r2(imported.file)})` },
  ],
  { runs, idle_ms: IDLE_MS, median_rss_mib: median, max_rss_mib: max, floor_bare: bare, floor_imported: imported },
);
