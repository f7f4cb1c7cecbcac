/**
 * A real Prometheus (the Debian package's `prometheus`) for tests: a temporary config scraping a
 * small exporter the test runs, optionally history written beforehand with
 * `promtool tsdb create-blocks-from openmetrics` (so range queries have a past at once), and
 * optionally a web config (TLS, basic auth).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as netServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const has = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
/** Why the Prometheus tests cannot run here, or undefined when they can. */
export const PROMETHEUS_MISSING =
  has("prometheus") && has("promtool") ? undefined : "prometheus is not installed (Debian package prometheus; scripts/install-test-deps installs it)";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** An exporter serving gauges whose values the test sets (a number, or a function read at each scrape). */
export class Exporter {
  readonly values = new Map<string, number | (() => number)>();
  #server: Server | undefined;
  /** `host:port`, once started. */
  target = "";
  scrapes = 0;

  async start(): Promise<string> {
    this.#server = createServer((_req, res) => {
      this.scrapes++;
      const names = new Set([...this.values.keys()].map((k) => k.replace(/\{.*$/, "")));
      let body = "";
      for (const name of names) {
        body += `# TYPE ${name} gauge\n`;
        for (const [series, v] of this.values) if (series.replace(/\{.*$/, "") === name) body += `${series} ${typeof v === "function" ? v() : v}\n`;
      }
      res.setHeader("content-type", "text/plain; version=0.0.4");
      res.end(body);
    });
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    this.target = `127.0.0.1:${(this.#server.address() as { port: number }).port}`;
    return this.target;
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server!.close(() => r()));
  }
}

export interface PrometheusOptions {
  /** Scrape targets (`host:port`), job `test`. */
  readonly targets: readonly string[];
  readonly scrapeInterval?: string;
  /** OpenMetrics samples (`name{labels} value unix_seconds` lines) written as history before start. */
  readonly history?: readonly string[];
  /** Contents of `--web.config.file` (TLS, basic auth). */
  readonly webConfig?: string;
  /** Serve over https (with webConfig holding tls_server_config). */
  readonly https?: boolean;
}

export class PrometheusServer {
  readonly dir: string;
  readonly port: number;
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #log: string[] = [];

  private constructor(dir: string, port: number, child: ChildProcess, https: boolean) {
    this.dir = dir;
    this.port = port;
    this.url = `${https ? "https" : "http"}://127.0.0.1:${port}`;
    this.#child = child;
    child.stderr?.setEncoding("utf8").on("data", (c: string) => this.#log.push(c));
  }

  static async start(o: PrometheusOptions): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), "vigil-prom-"));
    const data = join(dir, "data");
    if (o.history && o.history.length > 0) {
      const names = new Set(o.history.map((l) => l.replace(/[{ ].*$/, "")));
      const om = [...names].map((n) => `# TYPE ${n} gauge\n${o.history!.filter((l) => l.startsWith(`${n}{`) || l.startsWith(`${n} `)).join("\n")}\n`).join("") + "# EOF\n";
      writeFileSync(join(dir, "history.om"), om);
      const made = spawnSync("promtool", ["tsdb", "create-blocks-from", "openmetrics", join(dir, "history.om"), data], { encoding: "utf8" });
      if (made.status !== 0) throw new Error(`promtool could not write the history: ${made.stderr}`);
    }
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global: {scrape_interval: ${o.scrapeInterval ?? "1s"}, evaluation_interval: 1s}
scrape_configs:
  - job_name: test
    static_configs: [{targets: [${o.targets.map((t) => JSON.stringify(t)).join(", ")}]}]
`,
    );
    const args = [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${data}`, "--web.enable-lifecycle"];
    if (o.webConfig) {
      writeFileSync(join(dir, "web.yml"), o.webConfig);
      args.push(`--web.config.file=${join(dir, "web.yml")}`);
    }
    const port = await freePort();
    args.push(`--web.listen-address=127.0.0.1:${port}`);
    const child = spawn("prometheus", args, { stdio: ["ignore", "ignore", "pipe"] });
    const server = new PrometheusServer(dir, port, child, o.https === true);
    return server;
  }

  /** Waits for `/-/ready`; `fetchReady` may add credentials or a TLS agent. */
  async ready(fetchReady: () => Promise<boolean> = () => fetch(`${this.url}/-/ready`).then((r) => r.ok, () => false), timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await fetchReady())) {
      if (this.#child.exitCode !== null) throw new Error(`prometheus exited with ${this.#child.exitCode}: ${this.#log.join("").slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`prometheus was not ready within ${timeoutMs} ms: ${this.#log.join("").slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Waits until the exporter has been scraped: Prometheus applies new scrape targets only every
   * five seconds, so the first scrape comes some seconds after it is ready.
   */
  async scraped(exporter: Exporter, times = 2, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const from = exporter.scrapes;
    while (exporter.scrapes < from + times) {
      if (Date.now() > deadline) throw new Error(`prometheus did not scrape the exporter within ${timeoutMs} ms: ${this.#log.join("").slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops Prometheus (SIGSTOP) without closing its port: queries then hang, as on an overloaded server. */
  pause(): void {
    this.#child.kill("SIGSTOP");
  }

  resume(): void {
    this.#child.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGCONT");
      const exited = once(this.#child, "exit");
      this.#child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  get log(): string {
    return this.#log.join("");
  }
}
