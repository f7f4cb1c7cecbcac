import { createRequire } from "node:module";
import type { Worker } from "node:worker_threads";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { endianness } from "node:os";
import { VigilError } from "../errors.ts";

/** What one checkpoint did (SQLite's `wal_checkpoint` counters, in frames). */
export interface CheckpointResult {
  /** The checkpoint could not finish because a reader or writer was busy. */
  readonly busy: boolean;
  readonly log: number;
  readonly checkpointed: number;
  /** The WAL file was cut to zero bytes. */
  readonly truncated: boolean;
  /** Left for a later round: too little in the WAL to be worth a checkpoint yet (`log` frames wait). */
  readonly deferred?: boolean;
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
/** Frames the WAL holds beyond the last checkpoint before one is worth a worker (the number SQLite's automatic checkpoint uses). */
const MIN_FRAMES = 1_000;
/** Frames left waiting at most this long: the database file then has them too. */
const MAX_DELAY_MS = 5 * 60_000;

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
  readonly #minFrames: number;
  readonly #maxDelayMs: number;
  readonly #now: () => number;
  /** When frames were first seen waiting since the last checkpoint (ms, `now`). */
  #waitingSince: number | undefined;
  /** Checkpoints frames that have waited `maxDelayMs`, when no housekeeping round comes by then. */
  #dueTimer: NodeJS.Timeout | undefined;

  /**
   * `walLimit`: a WAL file larger than this (bytes) is truncated once a checkpoint has caught up.
   * `idleMs`: how long the worker stays after a checkpoint that caught up, waiting for the next.
   * `minFrames`, `maxDelayMs`: a checkpoint waits until the WAL holds at least `minFrames` frames
   * beyond the last one, or until frames have waited `maxDelayMs`.
   */
  constructor(file: string, walLimit: number, options: { idleMs?: number; minFrames?: number; maxDelayMs?: number; now?: () => number } = {}) {
    this.#file = file;
    this.#walLimit = walLimit;
    this.#idleMs = options.idleMs ?? WORKER_IDLE_MS;
    this.#minFrames = options.minFrames ?? MIN_FRAMES;
    this.#maxDelayMs = options.maxDelayMs ?? MAX_DELAY_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Checkpoints when the WAL was written since the last complete checkpoint, and holds enough to be
   * worth it: at least `minFrames` frames beyond the last checkpoint, or frames that have waited
   * `maxDelayMs` (a timer checkpoints them then if no round comes first). Smaller amounts wait: each
   * commit is already in the WAL, so a crash of the process loses nothing, and reads find the frames
   * in the WAL index. What waiting costs is the window in which a power loss can roll the last
   * commits back (`synchronous = NORMAL`, src/db/sqlite.ts): up to `maxDelayMs` (plus the
   * housekeeping round that first saw them, 5 s after work) instead of that round alone.
   *
   * The worker (a thread with its own V8 heap, ~10 MiB resident) stays while checkpoints follow
   * each other (a busy agent's every 5 s; starting one costs ~30 ms of CPU) and goes `idleMs` after
   * one that caught up when no other was asked for: an idle agent, whose housekeeping backs off to
   * minutes and whose few writes wait, does not carry it.
   */
  checkpoint(): Promise<CheckpointResult> {
    this.#clearIdle();
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
    // A WAL file over its size limit is checkpointed (and cut back) whatever it holds.
    const pending = before.size > this.#walLimit ? undefined : pendingFrames(this.#file);
    if (pending !== undefined && pending < this.#minFrames) {
      const now = this.#now();
      if (pending === 0) this.#waitingSince = undefined;
      else this.#waitingSince ??= now;
      if (this.#waitingSince === undefined || now - this.#waitingSince < this.#maxDelayMs) {
        // A worker still here from a checkpoint a moment ago waits its usual while for the next.
        if (this.#worker) this.#armIdle();
        if (this.#waitingSince === undefined) this.#clearDue();
        else this.#armDue(this.#waitingSince + this.#maxDelayMs - now);
        return { busy: false, log: pending, checkpointed: 0, truncated: false, deferred: true };
      }
    }
    this.#waitingSince = undefined;
    this.#clearDue();
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
    if (this.#settled !== undefined) this.#armIdle();
    return result;
  }

  /**
   * Checkpoints in `ms` unless one runs before. A failure here is left to the next housekeeping
   * round, which finds the frames still waiting (and past their delay), checkpoints them and logs
   * a failure.
   */
  #armDue(ms: number): void {
    if (this.#dueTimer) return;
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      this.checkpoint().catch(() => undefined);
    }, Math.max(0, ms));
    this.#dueTimer.unref();
  }

  #clearDue(): void {
    clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
  }

  /** Lets the worker go `idleMs` from now unless another checkpoint is asked for meanwhile. */
  #armIdle(): void {
    this.#clearIdle();
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (!this.#running) void this.#stopWorker();
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  #clearIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    // Loaded on the first checkpoint: an idle agent may never need the thread (worker_threads costs ~2 ms at start).
    const { Worker } = createRequire(import.meta.url)("node:worker_threads") as typeof import("node:worker_threads");
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
    this.#clearDue();
    this.#clearIdle();
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

/** The WAL index is in the writer's native byte order. */
const LITTLE_ENDIAN = endianness() === "LE";

/**
 * Frames in the WAL that no checkpoint has copied yet, from the WAL index in `<db>-shm` (its layout
 * is SQLite's documented wal-index format, https://www.sqlite.org/walformat.html: the header's
 * `mxFrame` at byte 16, in the writer's native byte order, a second copy of the header at 48, and
 * `nBackfill` of the checkpoint information at 96). The index is shared memory every connection
 * maps, so a plain read sees what the writers left. Undefined when it cannot be read (no index yet,
 * a short file): the caller then checkpoints as if there were enough.
 */
export function pendingFrames(file: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(`${file}-shm`, "r");
    const head = Buffer.alloc(136);
    if (readSync(fd, head, 0, head.length, 0) < head.length) return undefined;
    const u32 = (at: number) => (LITTLE_ENDIAN ? head.readUInt32LE(at) : head.readUInt32BE(at));
    // The two header copies can differ for a moment while a writer updates them: the larger counts.
    const mxFrame = Math.max(u32(16), u32(48 + 16));
    return Math.max(0, mxFrame - u32(96));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
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
