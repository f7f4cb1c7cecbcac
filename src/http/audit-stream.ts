/**
 * `GET /v1/audit/stream`: the audit log as server-sent events, for clients that follow what the
 * agent does (`vigil audit tail --follow`, `vigil subjects --watch`) without polling the API.
 *
 * Each entry is one event whose `id` is its `seq`, so a client that lost the connection resumes
 * exactly where it was with `Last-Event-ID`; nothing is skipped or sent twice. The stream reads the
 * log through the same `readAudit` cursor as `GET /v1/audit?after=` (an index lookup in `vigil.db`),
 * a batch at a time, so a slow reader holds back only its own stream, and a comment line every
 * `heartbeatMs` keeps idle connections (and proxies between) from timing out. The number of open
 * streams is capped: each holds a connection and polls the store.
 */
import type { ServerResponse } from "node:http";
import type { AuditEntry, AuditQuery } from "../store/contract.ts";
import { VigilError, errorMessage } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";

/** Default cap on open streams (`agent.api.max_streams`). */
export const DEFAULT_MAX_STREAMS = 16;
/** How often an idle stream sends a comment line. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
/** How often an idle stream looks for new entries. */
export const DEFAULT_POLL_MS = 250;
/** How long a client should wait before reconnecting (the `retry:` field). */
const RETRY_MS = 2_000;
/** Entries read per batch. */
const BATCH = 200;

export interface AuditStreamOptions {
  readonly maxStreams: number;
  readonly heartbeatMs: number;
  readonly pollMs: number;
}

/** Where a stream starts and what it passes on. */
export interface AuditStreamQuery {
  /** Entries after this seq; undefined: only entries appended from now on. */
  readonly after?: number;
  readonly subject?: string;
  readonly type?: string;
}

export class AuditStreams {
  readonly #read: (query: AuditQuery) => Promise<AuditEntry[]>;
  readonly #opts: AuditStreamOptions;
  readonly #logger: Logger;
  /** Each open stream's way to end itself. */
  readonly #open = new Set<() => void>();
  #closed = false;

  constructor(read: (query: AuditQuery) => Promise<AuditEntry[]>, opts: AuditStreamOptions, logger: Logger) {
    this.#read = read;
    this.#opts = opts;
    this.#logger = logger;
  }

  /** Streams open now. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Serves one stream until the client goes away or `closeAll()` ends it. Rejects before anything is
   * sent with VIGIL_ERR_TOO_MANY_STREAMS at the cap, VIGIL_ERR_SHUTDOWN once closed, or the store's
   * error while finding the head; the caller answers those as JSON errors.
   */
  async serve(res: ServerResponse, query: AuditStreamQuery, head: boolean): Promise<void> {
    if (this.#closed) throw new VigilError("VIGIL_ERR_SHUTDOWN", "the API server is stopping");
    if (this.#open.size >= this.#opts.maxStreams) {
      throw new VigilError("VIGIL_ERR_TOO_MANY_STREAMS", `${this.#opts.maxStreams} event streams are open already (agent.api.max_streams); close one or retry later`);
    }
    const stop = new AbortController();
    const end = () => stop.abort();
    // Taken before the first await, so concurrent requests cannot overshoot the cap.
    this.#open.add(end);
    res.on("close", end);
    try {
      let cursor = query.after ?? (await this.#read({ limit: 1 }))[0]?.seq ?? 0;
      if (stop.signal.aborted) return;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        // Proxies that buffer responses (nginx) would hold the events back.
        "x-accel-buffering": "no",
      });
      if (head) {
        res.end();
        return;
      }
      let lastWrite = performance.now();
      const write = async (chunk: string): Promise<void> => {
        lastWrite = performance.now();
        if (!res.write(chunk)) await drained(res, stop.signal);
      };
      await write(`retry: ${RETRY_MS}\n: audit entries after seq ${cursor}\n\n`);
      while (!stop.signal.aborted) {
        let entries: AuditEntry[];
        try {
          entries = await this.#read({ after: cursor, ...(query.subject === undefined ? {} : { subject: query.subject }), ...(query.type === undefined ? {} : { type: query.type }), limit: BATCH });
        } catch (err) {
          if (stop.signal.aborted) return;
          // The status line is sent; the client learns of the failure from an event and reconnects later.
          this.#logger.warn({ err }, `audit stream: reading the log failed: ${errorMessage(err)}`);
          const code = err instanceof VigilError && err.code === "VIGIL_ERR_SHUTDOWN" ? "VIGIL_ERR_SHUTDOWN" : "VIGIL_ERR_INTERNAL";
          res.end(`event: error\ndata: ${JSON.stringify({ code, message: code === "VIGIL_ERR_SHUTDOWN" ? "the agent is stopping" : "internal error" })}\n\n`);
          return;
        }
        for (const entry of entries) {
          if (stop.signal.aborted) return;
          await write(`id: ${entry.seq}\nevent: audit\ndata: ${JSON.stringify(entry)}\n\n`);
          cursor = entry.seq;
        }
        if (entries.length === BATCH) continue;
        const quiet = performance.now() - lastWrite;
        if (quiet >= this.#opts.heartbeatMs) await write(": keep-alive\n\n");
        await sleep(Math.min(this.#opts.pollMs, Math.max(1, this.#opts.heartbeatMs - (performance.now() - lastWrite))), stop.signal);
      }
    } finally {
      this.#open.delete(end);
      res.off("close", end);
      if (!res.writableEnded && res.headersSent) res.end();
    }
  }

  /** Ends every open stream and refuses new ones (the server is stopping). */
  closeAll(): void {
    this.#closed = true;
    for (const end of [...this.#open]) end();
  }
}

/** Resolves when the response can take more, or the stream ends. */
function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
