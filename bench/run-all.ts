/**
 * Runs every benchmark, one after the other, each in its own process (`npm run bench`, which builds
 * first). Prints each bench's tables, then a summary with the machine and the load average before
 * each bench (other work on the host skews the figures). `BENCH_ONLY=startup,idle-rss` runs a subset.
 */
import { spawn } from "node:child_process";
import { cpus, freemem, loadavg, totalmem, type as osType, release } from "node:os";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, nowMs } from "./lib.ts";

const ALL = ["signal-latency", "evaluate-100k", "idle-rss", "startup", "queue", "cert-verify", "enforce-latency", "enforce-burst", "anomaly-detectors", "anomaly-live", "device-compliance", "identity-100k", "ssf-push", "cluster"];
const only = process.env.BENCH_ONLY?.split(",").filter(Boolean);
const benches = only ? ALL.filter((b) => only.includes(b)) : ALL;

const osName = /^PRETTY_NAME="?(.*?)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? osType();
const machine = {
  cpus: cpus().length,
  cpu_model: /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model,
  memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  free_gib: Math.round((freemem() / 2 ** 30) * 10) / 10,
  node: process.version,
  os: `${osName}, Linux ${release()}`,
};
console.log(`machine: ${JSON.stringify(machine)}`);

const results: Record<string, unknown>[] = [];
const t0 = nowMs();
for (const name of benches) {
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  console.log(`\n### ${name} (load average before: ${load.join(" ")})`);
  const started = nowMs();
  const child = spawn(process.execPath, [join(ROOT, "bench", `${name}.ts`)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    out += c;
    process.stdout.write(c);
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  results.push({ bench: name, exit: code, seconds: Math.round((nowMs() - started) / 100) / 10, load_before: load, result: line ? JSON.parse(line.slice(11)) : null });
  if (code !== 0) console.log(`!! ${name} exited with ${code}`);
}
console.log(`\nall benches: ${Math.round((nowMs() - t0) / 1000)} s`);
console.log("BENCH_ALL " + JSON.stringify({ machine, results }));
if (results.some((r) => r.exit !== 0)) process.exitCode = 1;
