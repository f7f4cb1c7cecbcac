import { Worker } from "node:worker_threads";
import { statSync } from "node:fs";
import { VigilError } from "../errors.ts";

/** What one checkpoint did (SQLite's `wal_checkpoint` counters, in frames). */
export interface CheckpointResult {
  /** The checkpoint could not finish because a reader or writer was busy. */
  readonly busy: boolean;
  readonly log: number;
  readonly checkpointed: number;
  /** The WAL file was cut to zero bytes. */
  readonly truncated: boolean;
}

/**
 * Runs in the worker thread: its own connection to the database. A PASSIVE checkpoint copies the
 * WAL into the database and fsyncs it without taking the write lock, so the agent's writers never
 * wait on that fsync. Only when it caught up completely (and the WAL file is over its size limit)
 * does a TRUNCATE follow: with nothing left to copy it only resets and cuts the file, holding the
 * write lock for that moment; with `busy_timeout = 0` it gives up at once rather than wait.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
const db = new DatabaseSync(workerData.file);
db.exec("PRAGMA busy_timeout = 0");
parentPort.on("message", (msg) => {
  if (msg.close) {
    try { db.close(); } catch {}
    parentPort.close();
    return;
  }
  try {
    const p = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
    let truncated = false;
    if (msg.truncate && p.busy === 0 && p.log === p.checkpointed) {
      const t = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
      truncated = t.busy === 0 && t.log === 0;
    }
    parentPort.postMessage({ id: msg.id, ok: true, busy: p.busy !== 0, log: p.log, checkpointed: p.checkpointed, truncated });
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String((e && e.message) || e) });
  }
});
`;

/** How long the worker waits for the next checkpoint after one that caught up (housekeeping asks every 5 s while the agent works). */
const WORKER_IDLE_MS = 15_000;

/**
 * Checkpoints the WAL from a worker thread, so the checkpoint's fsync (which put ~100 ms outliers on
 * the event loop when it ran on the agent's own connection) happens off the loop. One checkpoint at
 * a time; a request while one runs shares it.
 */
export class Checkpointer {
  readonly #file: string;
  readonly #walLimit: number;
  #worker: Worker | undefined;
  #seq = 0;
  #running: Promise<CheckpointResult> | undefined;
  /** The WAL's size and mtime right after a checkpoint that left nothing to copy. */
  #settled: string | undefined;
  readonly #waiting = new Map<number, { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }>();
  readonly #idleMs: number;
  #idleTimer: NodeJS.Timeout | undefined;

  /**
   * `walLimit`: a WAL file larger than this (bytes) is truncated once a checkpoint has caught up.
   * `idleMs`: how long the worker stays after a checkpoint that caught up, waiting for the next.
   */
  constructor(file: string, walLimit: number, options: { idleMs?: number } = {}) {
    this.#file = file;
    this.#walLimit = walLimit;
    this.#idleMs = options.idleMs ?? WORKER_IDLE_MS;
  }

  /**
   * Checkpoints when the WAL was written since the last complete checkpoint. The worker (a thread
   * with its own V8 heap, ~10 MiB resident) stays while checkpoints follow each other (a busy
   * agent's every 5 s; starting one costs ~30 ms of CPU) and goes `idleMs` after one that caught up
   * when no other was asked for: an idle agent, whose housekeeping backs off to minutes, does not
   * carry it.
   */
  checkpoint(): Promise<CheckpointResult> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<CheckpointResult> {
    const before = walState(this.#file);
    if (before.size === 0 || (this.#settled !== undefined && this.#settled === before.stamp)) {
      await this.#stopWorker();
      return { busy: false, log: 0, checkpointed: 0, truncated: false };
    }
    const worker = this.#start();
    const id = ++this.#seq;
    const result = await new Promise<CheckpointResult>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, truncate: before.size > this.#walLimit });
    });
    // Nothing written meanwhile and everything copied: the next round can skip until the WAL changes.
    const after = walState(this.#file);
    this.#settled = !result.busy && result.log === result.checkpointed && (after.stamp === before.stamp || result.truncated) ? after.stamp : undefined;
    // Caught up, and nothing was written meanwhile: unless another checkpoint is asked for soon,
    // the worker goes, rather than at the next round an idle agent's housekeeping runs minutes later.
    if (this.#settled !== undefined) {
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        if (!this.#running) void this.#stopWorker();
      }, this.#idleMs);
      this.#idleTimer.unref();
    }
    return result;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.#file } });
    worker.unref();
    worker.on("message", (msg: { id: number; ok: boolean; error?: string } & CheckpointResult) => {
      const waiter = this.#waiting.get(msg.id);
      if (!waiter) return;
      this.#waiting.delete(msg.id);
      if (msg.ok) waiter.resolve({ busy: msg.busy, log: msg.log, checkpointed: msg.checkpointed, truncated: msg.truncated });
      else waiter.reject(new VigilError("VIGIL_ERR_STORE", `checkpoint of ${this.#file} failed: ${msg.error ?? "unknown error"}`));
    });
    const fail = (err: Error) => {
      // A worker let go on purpose exits with nothing waiting; a replacement may already run.
      if (this.#worker !== worker) return;
      for (const w of this.#waiting.values()) w.reject(new VigilError("VIGIL_ERR_STORE", `checkpoint worker stopped: ${err.message}`, { cause: err }));
      this.#waiting.clear();
      this.#worker = undefined;
    };
    worker.on("error", fail);
    worker.on("exit", () => fail(new Error("exited")));
    this.#worker = worker;
    return worker;
  }

  /** The worker thread's id while one runs. */
  get workerThreadId(): number | undefined {
    return this.#worker?.threadId;
  }

  /** Waits for a running checkpoint, then closes the worker's connection and ends the thread. */
  async close(): Promise<void> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    await this.#running?.catch(() => undefined);
    await this.#stopWorker();
  }

  async #stopWorker(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.postMessage({ close: true });
    await exited;
  }
}

function walState(file: string): { size: number; stamp: string } {
  try {
    const st = statSync(`${file}-wal`);
    return { size: st.size, stamp: `${st.size}:${st.mtimeMs}` };
  } catch {
    // No WAL file (yet): nothing to checkpoint.
    return { size: 0, stamp: "none" };
  }
}
