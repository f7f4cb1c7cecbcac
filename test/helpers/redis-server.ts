/**
 * A real `redis-server` for the tests: on loopback, a free port below the kernel's local port range
 * (stable-port.ts), its data in a temporary directory, with the append-only file fsynced on every
 * write (the persistence cluster mode asks for), so a SIGKILL and a restart keep every acknowledged
 * write. `kill()` and `restart()` let a test take it away and bring it back on the same port with
 * the same data.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { stablePort } from "./stable-port.ts";
import type { TestContext } from "node:test";
import { closeRedis, openRedis, waitReady } from "../../src/db/redis/connection.ts";

/** Why Redis tests cannot run here, or undefined when they can: a `skip` message naming the missing binary. */
export const REDIS_MISSING: string | undefined =
  spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0 ? undefined : "redis-server is not installed (scripts/install-test-deps installs the Debian package)";

export interface RedisServerOptions {
  /** Append-only file (default true); false: no persistence at all. */
  readonly aof?: boolean;
  /**
   * `always` (default): each write on disk before it is acknowledged, what cluster mode asks for.
   * `everysec`: acknowledged writes still survive a SIGKILL of the server (they are written to the
   * file first), at a fraction of the fsync cost, for tests that do not crash the host.
   */
  readonly fsync?: "always" | "everysec";
  /** Extra `--name value` arguments. */
  readonly args?: readonly string[];
}

export class RedisServer {
  readonly dir: string;
  readonly port: number;
  readonly #options: RedisServerOptions;
  #child: ChildProcess | undefined;
  #clients: Redis[] = [];

  private constructor(dir: string, port: number, options: RedisServerOptions) {
    this.dir = dir;
    this.port = port;
    this.#options = options;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), "vigil-redis-"));
    // A port that stays free while the server is down (`kill`, `restart`).
    const server = new RedisServer(dir, await stablePort(), options);
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** A client for the test's own reads (closed by `stop()`). */
  client(): Redis {
    const c = new Redis({ host: "127.0.0.1", port: this.port, maxRetriesPerRequest: null, retryStrategy: () => 100, lazyConnect: false });
    c.on("error", () => undefined);
    this.#clients.push(c);
    return c;
  }

  /**
   * A connection as vigil opens one (`openRedis`, its timeouts and error handling), ready, and closed
   * when the test ends: what a store, queue or lock under test is handed.
   */
  async connection(t: TestContext, name: string): Promise<Redis> {
    const r = openRedis({ url: this.url, connect_timeout: 2_000, command_timeout: 5_000 }, "command", name);
    r.on("error", () => undefined);
    await waitReady(r);
    t.after(() => closeRedis(r));
    return r;
  }

  /** Kills the server (SIGKILL by default: no chance to write anything more) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
    this.#child = undefined;
  }

  /** Starts it again on the same port and data directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  async stop(): Promise<void> {
    for (const c of this.#clients.splice(0)) c.disconnect();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #spawn(): Promise<void> {
    const aof = this.#options.aof ?? true;
    const args = [
      "--port", String(this.port),
      "--bind", "127.0.0.1",
      "--dir", this.dir,
      "--save", "",
      "--appendonly", aof ? "yes" : "no",
      "--appendfsync", this.#options.fsync ?? "always",
      "--maxmemory-policy", "noeviction",
      "--daemonize", "no",
      "--loglevel", "warning",
      ...(this.#options.args ?? []),
    ];
    const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Accepting connections is not yet serving: wait until it has loaded its data.
    const probe = new Redis({ host: "127.0.0.1", port: this.port, lazyConnect: true, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      while (Date.now() < deadline) {
        const info = await probe.info("persistence");
        if (/^loading:0/m.test(info)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      probe.disconnect();
    }
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
