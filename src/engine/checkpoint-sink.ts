/**
 * Ships a signed checkpoint of the audit chain's head off the host (`agent.audit.checkpoint`):
 * syslog over UDP and/or an HTTP POST. Whoever can rewrite `data_dir` (the log and the head in the
 * database alike) cannot reach the copies there, and `vigil audit verify --checkpoints` compares
 * them with the log.
 */
import { createRequire } from "node:module";
import { hostname } from "node:os";
import { isIPv6 } from "node:net";
import type { HttpClient } from "../net/http.ts";
import type { Logger } from "../telemetry/log.ts";
import type { VigilMetrics } from "../telemetry/metrics.ts";
import type { Clock } from "../util/clock.ts";
import { signCheckpoint, type AuditHead, type AuditKey, type AuditCheckpoint } from "../store/audit.ts";
import { errorMessage } from "../errors.ts";

const SEND_TIMEOUT_MS = 10_000;
/** syslog facility 13 (log audit), severity 6 (informational). */
const SYSLOG_PRI = 13 * 8 + 6;

export interface CheckpointSinkOptions {
  readonly syslog?: string | undefined;
  readonly url?: string | undefined;
  readonly intervalMs: number;
  readonly key: AuditKey;
  readonly dataDir: string;
  readonly head: () => AuditHead;
  readonly http: HttpClient;
  readonly logger: Logger;
  readonly metrics: VigilMetrics;
  readonly clock: Clock;
}

export class CheckpointSink {
  readonly #o: CheckpointSinkOptions;
  #timer: NodeJS.Timeout | undefined;
  #lastSeq = -1;
  #sending: Promise<void> | undefined;

  constructor(options: CheckpointSinkOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), Math.max(1_000, this.#o.intervalMs));
    this.#timer.unref();
    void this.flush();
  }

  /** Sends a checkpoint when the head moved since the last one that went out. */
  flush(): Promise<void> {
    this.#sending ??= this.#send().finally(() => {
      this.#sending = undefined;
    });
    return this.#sending;
  }

  /** Stops the timer after a last checkpoint of the final head. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sending;
    await this.flush();
  }

  async #send(): Promise<void> {
    const head = this.#o.head();
    if (head.seq === this.#lastSeq || head.seq === 0) return;
    const checkpoint = signCheckpoint(this.#o.key, head, { ts: new Date(this.#o.clock.now()).toISOString(), host: hostname(), data_dir: this.#o.dataDir });
    const sends: Promise<void>[] = [];
    if (this.#o.syslog) sends.push(sendSyslog(this.#o.syslog, checkpoint));
    if (this.#o.url) sends.push(this.#post(this.#o.url, checkpoint));
    const results = await Promise.allSettled(sends);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    for (const f of failed) this.#o.logger.warn({ err: f.reason, seq: head.seq }, `audit checkpoint not delivered: ${errorMessage(f.reason)}`);
    this.#o.metrics.auditCheckpoint(failed.length === 0 ? "success" : "failure");
    // A failed delivery is tried again at the next interval, with the head as it is then.
    if (failed.length === 0) this.#lastSeq = head.seq;
  }

  async #post(url: string, checkpoint: AuditCheckpoint): Promise<void> {
    await this.#o.http.request({ method: "POST", url, json: checkpoint, timeoutMs: SEND_TIMEOUT_MS, signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  }
}

/** One RFC 5424 message over UDP; the JSON checkpoint is the message. */
function sendSyslog(target: string, checkpoint: AuditCheckpoint): Promise<void> {
  const at = target.lastIndexOf(":");
  const host = target.slice(0, at).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(at + 1));
  const message = Buffer.from(`<${SYSLOG_PRI}>1 ${checkpoint.ts} ${hostname()} vigil ${process.pid} audit_checkpoint - ${JSON.stringify(checkpoint)}`, "utf8");
  return new Promise((resolve, reject) => {
    // node:dgram only when a syslog target is configured.
    const { createSocket } = createRequire(import.meta.url)("node:dgram") as typeof import("node:dgram");
    const socket = createSocket(isIPv6(host) ? "udp6" : "udp4");
    socket.once("error", (err) => {
      socket.close();
      reject(err);
    });
    socket.send(message, port, host, (err) => {
      socket.close();
      if (err) reject(err);
      else resolve();
    });
  });
}
