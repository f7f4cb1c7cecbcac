/**
 * Starts the real Prometheus server (Debian package `prometheus`) on loopback, scraping the given
 * targets every second and evaluating the given rule files every second, so that dashboards and
 * alert rules can be checked against what a running agent actually exports.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "./wait.ts";

/** Why a test that needs the Prometheus server cannot run here, or false when it can. */
export const PROMETHEUS_MISSING: string | false =
  spawnSync("prometheus", ["--version"], { stdio: "ignore" }).status === 0
    ? false
    : "the prometheus server is not on PATH: install the Debian package `prometheus` (scripts/install-test-deps does)";

/** The answer of `/api/v1/query`. */
export interface QueryAnswer {
  status: "success" | "error";
  errorType?: string;
  error?: string;
  warnings?: string[];
  data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string] }[] };
}

/** One rule as `/api/v1/rules` reports it. */
export interface RuleState {
  name: string;
  query: string;
  health: "ok" | "err" | "unknown";
  lastError?: string;
  lastEvaluation: string;
  type: "alerting" | "recording";
}

/** A free TCP port on 127.0.0.1 (Prometheus cannot report the port it picked for `:0`). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export class PrometheusServer {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #output: string[] = [];

  private constructor(url: string, child: ChildProcess, dir: string) {
    this.url = url;
    this.#child = child;
    this.#dir = dir;
    child.stderr?.setEncoding("utf8").on("data", (c: string) => this.#output.push(c));
    child.stdout?.setEncoding("utf8").on("data", (c: string) => this.#output.push(c));
  }

  /**
   * Scrapes each `host:port` target under job `vigil` (the job name the alert rules expect) every
   * second, and evaluates `ruleFiles` (absolute paths) every second.
   */
  static async start(targets: string[], ruleFiles: string[] = []): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), "vigil-prometheus-"));
    const config = join(dir, "prometheus.yml");
    writeFileSync(
      config,
      JSON.stringify({
        global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" },
        rule_files: ruleFiles,
        scrape_configs: [{ job_name: "vigil", metrics_path: "/metrics", static_configs: [{ targets }] }],
      }),
    );
    // Another process may take the port between freePort() and the bind: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const child = spawn(
        "prometheus",
        [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn", "--storage.tsdb.retention.time=1h"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      const server = new PrometheusServer(`http://127.0.0.1:${port}`, child, dir);
      const gone = () => child.exitCode !== null || child.signalCode !== null;
      // A port taken meanwhile makes Prometheus exit at once: stop waiting then too.
      try {
        await until(async () => gone() || (await fetch(`${server.url}/-/ready`).catch(() => undefined))?.status === 200, 20_000);
      } catch (err) {
        await server.stop();
        throw new Error(`prometheus did not become ready:\n${server.output}`, { cause: err });
      }
      if (!gone()) return server;
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`prometheus did not start:\n${server.output}`);
      }
    }
  }

  get output(): string {
    return this.#output.join("");
  }

  /** An instant query, answered as Prometheus answers it (HTTP 400/422 carry `status: error`). */
  async query(expr: string): Promise<QueryAnswer> {
    const res = await fetch(`${this.url}/api/v1/query`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ query: expr }) });
    return (await res.json()) as QueryAnswer;
  }

  /** The number of series `expr` returns now; throws when the query fails. */
  async count(expr: string): Promise<number> {
    const answer = await this.query(expr);
    if (answer.status !== "success") throw new Error(`${expr}: ${answer.error}`);
    return answer.data?.result.length ?? 0;
  }

  /** Every rule of every loaded group. */
  async rules(): Promise<RuleState[]> {
    const res = await fetch(`${this.url}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { rules: RuleState[] }[] } };
    return body.data.groups.flatMap((g) => g.rules);
  }

  /** Waits until each target has been scraped successfully at least `scrapes` times. */
  async scraped(targets: number, scrapes: number, timeoutMs = 30_000): Promise<void> {
    await until(async () => {
      const answer = await this.query('count_over_time(up{job="vigil"}[5m]) and up{job="vigil"} == 1');
      const ok = answer.data?.result.filter((r) => Number(r.value?.[1]) >= scrapes) ?? [];
      return ok.length >= targets;
    }, timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = once(this.#child, "exit");
      this.#child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
