/**
 * Starts the real `bin/vigil run` as a child process on loopback with ports chosen by the OS,
 * and reads its structured log lines. Needs `npm run build` (the test script builds first).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { until } from "./wait.ts";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = join(ROOT, "bin/vigil");
export const TOKEN = "test-token-0123456789abcdef";

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export class AgentProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  api!: string;
  metrics!: string | undefined;
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    let buf = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
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
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => this.stderr.push(chunk));
  }

  /**
   * Spawns `vigil run` and waits for "vigil started" (or, with `until: "listening"`, for a cluster
   * replica's API to listen, before it has reached Redis).
   */
  static async start(configFile: string, env: NodeJS.ProcessEnv = {}, options: { until?: "started" | "listening"; timeoutMs?: number; bin?: string } = {}): Promise<AgentProcess> {
    const child = spawn(process.execPath, [options.bin ?? BIN, "run", "-c", configFile], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const p = new AgentProcess(child);
    const exited = once(child, "exit").then(([code]) => {
      throw new Error(`vigil exited early with ${code}: ${p.stderr.join("")}${JSON.stringify(p.lines.slice(-5))}`);
    });
    const msg = options.until === "listening" ? "API listening; connecting to Redis" : "vigil started";
    const started = await Promise.race([p.waitFor((l) => l.msg === msg, options.timeoutMs ?? 15_000), exited]);
    const api = started.api as { host: string; port: number };
    const metrics = started.metrics as { host: string; port: number } | null;
    p.api = `http://${api.host}:${api.port}`;
    p.metrics = metrics ? `http://${metrics.host}:${metrics.port}` : undefined;
    exited.catch(() => undefined);
    return p;
  }

  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const hit = this.lines.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; last lines: ${JSON.stringify(this.lines.slice(-5))}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (l) => (clearTimeout(timer), resolveLine(l)) });
    });
  }

  async request(method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; json: any; headers: Headers }> {
    const res = await fetch(this.api + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json, headers: res.headers };
  }

  /**
   * Waits until `GET /v1/status` says the agent is idle: nothing ready or running (jobs delayed into
   * the future do not count). After a 202, that is once the signal's evaluation and the actions it
   * caused have run.
   */
  async idle(timeoutMs = 10_000): Promise<void> {
    await until(async () => {
      const res = await this.request("GET", "/v1/status");
      if (res.status !== 200) throw new Error(`GET /v1/status answered ${res.status}: ${JSON.stringify(res.json)}`);
      return res.json.idle === true;
    }, timeoutMs);
  }

  /** SIGTERM and wait; returns the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = once(this.child, "exit");
    this.child.kill(signal);
    const [code] = (await exited) as [number | null];
    return code;
  }
}

/** A temp dir with a config written into it; `data_dir` inside it. */
export function tempConfig(yaml: (dir: string) => string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "vigil-it-"));
  const file = join(dir, "vigil.yaml");
  writeFileSync(file, yaml(dir));
  return { dir, file };
}

/**
 * Runs the CLI to completion. One still running after `timeoutMs` (a `run` expected to refuse that
 * started instead) is killed and reported with a null code, rather than left behind to hold the
 * test until its own timeout and the test process after it.
 */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  if (killed) stderr += `\n[runCli: vigil ${args.join(" ")} was still running after ${timeoutMs} ms and was killed]\n`;
  return { code, stdout, stderr };
}
