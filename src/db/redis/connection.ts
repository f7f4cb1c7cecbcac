/**
 * Connections to the Redis that cluster mode's replicas share. Two kinds:
 *
 * - `command`: the store, the locks, the lease and the queue's producer. Fails fast: no offline
 *   queue, no resend of a command whose reply was lost, a timeout on every command. A caller learns
 *   at once that Redis is out of reach (the API answers 503) instead of waiting, and nothing is sent
 *   twice behind its back (a lost reply is retried by the caller's own rules, at least once).
 * - `worker`: BullMQ's workers. Waits: commands queue up while Redis is away and run when it is
 *   back (`maxRetriesPerRequest: null`, which BullMQ requires), so workers resume by themselves.
 *
 * Both reconnect for ever (every 2 s at most), reconnect and resend on `READONLY` (a failover made
 * the node a replica) and `LOADING` (a restarted Redis still reading its data), neither of which
 * ran the command, and drop a socket that stays silent while commands wait, so a master that
 * vanished without closing its connections is noticed.
 *
 * Credentials never reach a message: `describeRedis` names host, port and db only, and every error
 * is scrubbed of registered secrets.
 */
import { readFileSync } from "node:fs";
import { Redis, type RedisOptions } from "ioredis";
import { VigilError, errorMessage } from "../../errors.ts";
import { registerSecret, scrub } from "../../util/redact.ts";

/** `agent.cluster.redis` after validation (durations in ms). */
export interface RedisSettings {
  readonly url?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly db?: number | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly tls?: boolean | { readonly ca?: string | undefined; readonly server_name?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined } | undefined;
  readonly connect_timeout: number;
  readonly command_timeout: number;
}

export type RedisRole = "command" | "worker";

/** Where Redis is, without credentials: `redis://host:port/db` or `rediss://…`. */
export function describeRedis(s: RedisSettings): string {
  const { host, port, db, tls } = endpoint(s);
  return `${tls ? "rediss" : "redis"}://${host.includes(":") ? `[${host}]` : host}:${port}/${db}`;
}

function endpoint(s: RedisSettings): { host: string; port: number; db: number; tls: boolean } {
  if (s.url !== undefined) {
    const u = new URL(s.url);
    const db = u.pathname.replace(/^\//, "").replace(/\/$/, "");
    return {
      host: u.hostname.replace(/^\[|\]$/g, ""),
      port: u.port === "" ? 6379 : Number(u.port),
      db: db === "" ? 0 : Number(db),
      tls: u.protocol === "rediss:" || (s.tls !== undefined && s.tls !== false),
    };
  }
  return { host: s.host ?? "127.0.0.1", port: s.port ?? 6379, db: s.db ?? 0, tls: s.tls !== undefined && s.tls !== false };
}

/** Longest wait between two reconnect attempts. */
const MAX_RECONNECT_DELAY_MS = 2_000;

/** ioredis options for one role. */
export function redisOptions(s: RedisSettings, role: RedisRole, name: string): RedisOptions {
  const { host, port, db, tls } = endpoint(s);
  if (s.password) registerSecret(s.password);
  const tlsOptions = tls ? tlsOf(s, host) : undefined;
  return {
    host,
    port,
    db,
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
    ...(tlsOptions ? { tls: tlsOptions } : {}),
    connectionName: name,
    // RESP2: the reply shapes BullMQ's scripts were written against.
    protocol: 2,
    connectTimeout: s.connect_timeout,
    keepAlive: 10_000,
    retryStrategy: (times: number) => Math.min(MAX_RECONNECT_DELAY_MS, 100 * 2 ** Math.min(times, 5)) + Math.floor(Math.random() * 100),
    reconnectOnError: (err: Error) => (/^(READONLY|LOADING)\b/.test(err.message) ? 2 : false),
    enableReadyCheck: true,
    ...(role === "command"
      ? {
          enableOfflineQueue: false,
          autoResendUnfulfilledCommands: false,
          maxRetriesPerRequest: 0,
          commandTimeout: s.command_timeout,
          socketTimeout: 3 * s.command_timeout,
        }
      : {
          // A blocked BZPOPMIN waits up to 10 s for a job: the silence limit must be longer.
          maxRetriesPerRequest: null,
          socketTimeout: Math.max(3 * s.command_timeout, 30_000),
        }),
  };
}

function tlsOf(s: RedisSettings, host: string): { ca?: string; servername: string; cert?: string; key?: string; rejectUnauthorized: true } {
  const t = typeof s.tls === "object" ? s.tls : {};
  if (t.key) registerSecret(t.key);
  return {
    servername: t.server_name ?? host,
    rejectUnauthorized: true,
    ...(t.ca ? { ca: pem(t.ca) } : {}),
    ...(t.cert ? { cert: pem(t.cert) } : {}),
    ...(t.key ? { key: pem(t.key) } : {}),
  };
}

/** PEM text as given (normally through `${file:…}`), or a path to a PEM file. */
function pem(value: string): string {
  if (value.includes("-----BEGIN")) return value;
  try {
    return readFileSync(value, "utf8");
  } catch (err) {
    throw new VigilError("VIGIL_ERR_CONFIG_READ", `cannot read the Redis TLS file ${value}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/**
 * Tracks one connection's state for `/readyz` and the metrics: up once `ready`, down (with the last
 * error, scrubbed) from a close until the next `ready`. Also keeps the connection's `error` events
 * from crashing the process; `onError` sees each (the caller rate-limits its logging).
 */
export class RedisHealth {
  #up = false;
  #lastError: string | undefined;
  #since = Date.now();
  readonly #where: string;

  constructor(client: Redis, where: string, onChange?: (up: boolean, reason: string | undefined) => void) {
    this.#where = where;
    client.on("ready", () => {
      const was = this.#up;
      this.#up = true;
      this.#lastError = undefined;
      this.#since = Date.now();
      if (!was) onChange?.(true, undefined);
    });
    client.on("error", (err: Error) => {
      this.#lastError = scrub(errorMessage(err));
    });
    const down = () => {
      const was = this.#up;
      this.#up = false;
      if (was) {
        this.#since = Date.now();
        onChange?.(false, this.reason);
      }
    };
    client.on("close", down);
    client.on("end", down);
  }

  get up(): boolean {
    return this.#up;
  }

  /** Why it is down, for `/readyz`; undefined while up. */
  get reason(): string | undefined {
    if (this.#up) return undefined;
    return `redis ${this.#where}: not connected${this.#lastError ? ` (${this.#lastError})` : ""}`;
  }

  /** When the state last changed (epoch ms). */
  get since(): number {
    return this.#since;
  }
}

/** Opens a connection; it connects, and reconnects, in the background (see `waitReady`). */
export function openRedis(s: RedisSettings, role: RedisRole, name: string): Redis {
  return new Redis(redisOptions(s, role, name));
}

/**
 * Resolves once the connection is ready. While it is not, `onWait` is told why every few seconds;
 * rejects with `VIGIL_ERR_SHUTDOWN` when `signal` aborts (the agent was asked to stop meanwhile).
 */
export function waitReady(client: Redis, options: { signal?: AbortSignal; onWait?: (reason: string) => void; everyMs?: number } = {}): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    let last = "connecting";
    const onError = (err: Error) => {
      last = scrub(errorMessage(err));
    };
    const timer = setInterval(() => options.onWait?.(last), options.everyMs ?? 5_000);
    const done = () => {
      clearInterval(timer);
      client.off("ready", onReady);
      client.off("error", onError);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const onReady = () => {
      done();
      resolve();
    };
    const onAbort = () => {
      done();
      reject(new VigilError("VIGIL_ERR_SHUTDOWN", "stopped while waiting for Redis"));
    };
    client.on("ready", onReady);
    client.on("error", onError);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    options.onWait?.(last);
  });
}

/** Closes a connection without waiting on a Redis that may be gone. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === "end") return;
  try {
    if (client.status === "ready") {
      await Promise.race([client.quit(), new Promise((r) => setTimeout(r, 1_000).unref())]);
    }
  } catch {
    // Closing anyway.
  }
  client.disconnect();
}

/**
 * What a failed Redis call becomes: `VIGIL_ERR_UNAVAILABLE` (retried, 503 at the API) when Redis
 * could not be reached or did not answer in time, `VIGIL_ERR_STORE` for an error Redis itself
 * answered (out of memory, a script error). Scrubbed of secrets.
 */
export function redisError(what: string, err: unknown): VigilError {
  if (err instanceof VigilError) return err;
  const message = scrub(errorMessage(err));
  const code = isConnectionError(err) ? "VIGIL_ERR_UNAVAILABLE" : "VIGIL_ERR_STORE";
  return new VigilError(code, `cannot ${what}: ${message}`, { cause: err });
}

/** Redis could not be reached or did not answer (as opposed to answering with an error). */
export function isConnectionError(err: unknown): boolean {
  const message = errorMessage(err);
  const name = (err as { name?: unknown } | null)?.name;
  if (name === "MaxRetriesPerRequestError") return true;
  return /Connection is closed|enableOfflineQueue|Stream isn't writeable|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|socket|closed|^LOADING|^READONLY|^MASTERDOWN|^TRYAGAIN/i.test(message);
}
