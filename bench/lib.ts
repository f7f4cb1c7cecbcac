/**
 * Shared helpers for the benchmarks: start the real `bin/vigil run` as a child process, read its
 * JSON log lines, read /proc for memory, percentiles, and the table + JSON line every bench prints.
 * Loopback only. Needs `npm run build` and `npm run bundle` first (the `bench` npm script runs both).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { once } from "node:events";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/**
 * What the benches start: bin/vigil (the bundle), or the script BENCH_VIGIL names relative to the
 * project (`BENCH_VIGIL=dist/cli/main.js` for the unbundled build, to compare the two).
 */
export const BIN = process.env.BENCH_VIGIL ? resolve(ROOT, process.env.BENCH_VIGIL) : join(ROOT, "bin/vigil");
export const TOKEN = "bench-token-0123456789abcdef";

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

/** Milliseconds on CLOCK_MONOTONIC (process.hrtime), comparable between processes on the same host. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A free loopback TCP port (bind to 0, read it, close). For when the port must be known before spawn. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `vigil-bench-${prefix}-`));
}

export function writeConfig(dir: string, yaml: string): string {
  const file = join(dir, "vigil.yaml");
  writeFileSync(file, yaml);
  return file;
}

/**
 * config/vigil.yaml as `npm start` runs it, for a run in `dir`: state in dir/var, both listeners on
 * `ports` (0: any), and the demo PKI its certificate check reads generated afresh into
 * dir/demo-pki by scripts/demo-pki.ts (as `npm start` does), so the check parses and verifies real
 * certificates and a CRL rather than reporting missing files.
 */
export function defaultConfig(dir: string, ports: { api?: number; metrics?: number } = {}): string {
  const pki = join(dir, "demo-pki");
  const made = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts"), pki], { cwd: ROOT, encoding: "utf8" });
  if (made.status !== 0) throw new Error(`scripts/demo-pki.ts failed: ${made.stderr}`);
  const yaml = readFileSync(join(ROOT, "config/vigil.yaml"), "utf8")
    .replace(/^(\s*data_dir:).*$/m, `$1 ${join(dir, "var")}`)
    .replace(/^(\s*api:\s*\n\s*listen:\s*)"127\.0\.0\.1:\d+"/m, `$1"127.0.0.1:${ports.api ?? 0}"`)
    .replace(/^(\s*metrics:\s*\n\s*listen:\s*)"127\.0\.0\.1:\d+"/m, `$1"127.0.0.1:${ports.metrics ?? 0}"`)
    .replaceAll("../var/demo-pki", pki);
  if (!yaml.includes(join(dir, "var")) || yaml.includes("../var/demo-pki") || yaml.includes(":7070") || yaml.includes(":9464")) throw new Error("could not rewrite config/vigil.yaml");
  return yaml;
}

/**
 * The runtime settings the systemd unit ships (its NODE_OPTIONS, UV_THREADPOOL_SIZE and
 * MALLOC_ARENA_MAX lines; the Dockerfile and Helm chart ship the same), for benches whose goals hold
 * "with the runtime flags as shipped". BENCH_FLAGS=none runs without them.
 */
export function shippedRuntimeEnv(): NodeJS.ProcessEnv {
  if (process.env.BENCH_FLAGS === "none") return {};
  const unit = readFileSync(join(ROOT, "deploy/systemd/vigil.service"), "utf8");
  const env: NodeJS.ProcessEnv = {};
  for (const m of unit.matchAll(/^Environment=(NODE_OPTIONS|UV_THREADPOOL_SIZE|MALLOC_ARENA_MAX)=(.*)$/gm)) env[m[1]!] = m[2]!.replace(/^"|"$/g, "");
  return env;
}

/** Removes a temp dir; BENCH_KEEP=1 keeps it (and prints it) for inspection. */
export function cleanup(dir: string): void {
  if (process.env.BENCH_KEEP) return void console.error(`kept ${dir}`);
  rmSync(dir, { recursive: true, force: true });
}

/** The real agent as a child process, with its log lines. */
export class Agent {
  readonly child: ChildProcess;
  /** nowMs() just before spawn(). */
  readonly spawnedAt: number;
  readonly lines: { at: number; line: LogLine }[] = [];
  readonly stderr: string[] = [];
  api = "";
  metrics: string | undefined;
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: { at: number; line: LogLine }) => void }[] = [];

  /** `bin`: the executable to run (default this tree's, or BENCH_VIGIL). */
  constructor(configFile: string, env: NodeJS.ProcessEnv = {}, bin: string = BIN) {
    this.spawnedAt = nowMs();
    // BENCH_AGENT_ARGS: extra Node flags for the agent (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") when diagnosing.
    const extra = (process.env.BENCH_AGENT_ARGS ?? "").split(" ").filter(Boolean);
    this.child = spawn(process.execPath, [...extra, bin, "run", "-c", configFile], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      const at = nowMs();
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let line: LogLine;
        try {
          line = JSON.parse(raw) as LogLine;
        } catch {
          line = { level: "raw", msg: raw };
        }
        const entry = { at, line };
        this.lines.push(entry);
        this.#waiters = this.#waiters.filter((w) => (w.pred(line) ? (w.resolve(entry), false) : true));
      }
    });
    this.child.stderr!.setEncoding("utf8").on("data", (c: string) => this.stderr.push(c));
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<{ at: number; line: LogLine }> {
    const hit = this.lines.find((e) => pred(e.line));
    if (hit) return Promise.resolve(hit);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`timed out waiting for a log line; stderr: ${this.stderr.join("")} last: ${JSON.stringify(this.lines.slice(-3))}`)), timeoutMs);
      const exit = () => rej(new Error(`vigil exited (${this.child.exitCode}): ${this.stderr.join("")} ${JSON.stringify(this.lines.slice(-5))}`));
      this.child.once("exit", exit);
      this.#waiters.push({ pred, resolve: (l) => (clearTimeout(t), this.child.off("exit", exit), res(l)) });
    });
  }

  /** Waits for "vigil started" and takes the API and metrics addresses from it (needs log_level info or lower). */
  async started(timeoutMs = 20_000): Promise<{ at: number; line: LogLine }> {
    const s = await this.waitFor((l) => l.msg === "vigil started", timeoutMs);
    const api = s.line.api as { host: string; port: number };
    const m = s.line.metrics as { host: string; port: number } | null;
    this.api = `http://${api.host}:${api.port}`;
    this.metrics = m ? `http://${m.host}:${m.port}` : undefined;
    return s;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    const [code] = (await exited) as [number | null];
    clearTimeout(t);
    return code;
  }
}

/** VmRSS / VmHWM of a process, and VmRSS split into anonymous and file-backed pages, in MiB. */
export function memory(pid: number): { rss: number; hwm: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024, anon: kib("RssAnon") / 1024, file: kib("RssFile") / 1024 };
}

/**
 * A process's memory over a run: `sample()` reads /proc once (undefined once the process is gone),
 * keeping the peak (VmHWM) and a (wall ms, RSS MiB) timeline; `every(ms)` samples on a timer until `stop()`.
 */
export class MemorySampler {
  peak = 0;
  readonly timeline: [number, number][] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #pid: () => number;

  constructor(pid: () => number) {
    this.#pid = pid;
  }

  sample(): ReturnType<typeof memory> | undefined {
    try {
      const m = memory(this.#pid());
      this.peak = Math.max(this.peak, m.hwm);
      this.timeline.push([Date.now(), m.rss]);
      return m;
    } catch {
      return undefined;
    }
  }

  every(ms: number): this {
    this.#timer = setInterval(() => this.sample(), ms);
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Sum of every sample of a metric family in a Prometheus text exposition. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summary(values: readonly number[]): { n: number; p50: number; p90: number; p99: number; max: number; mean: number } {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

export const r2 = (n: number): number => Math.round(n * 100) / 100;
export const r3 = (n: number): number => Math.round(n * 1000) / 1000;

export interface Row {
  metric: string;
  value: string;
  goal?: string;
  met?: boolean;
}

/** Prints a table of figures, then one `BENCH_JSON {...}` line for machines (run-all collects these). */
export function report(name: string, rows: readonly Row[], json: Record<string, unknown>): void {
  const cells = rows.map((r) => [r.metric, r.value, r.goal ?? "", r.met === undefined ? "" : r.met ? "met" : "MISSED"]);
  const head = ["metric", "value", "goal", ""];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const fmt = (c: string[]) => "| " + c.map((x, i) => x.padEnd(widths[i]!)).join(" | ") + " |";
  console.log(`\n## ${name}`);
  console.log(fmt(head));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const c of cells) console.log(fmt(c));
  console.log("BENCH_JSON " + JSON.stringify({ bench: name, ...json }));
}
