import { randomBytes } from "node:crypto";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { VigilError, errorCodeOf, errorMessage, isTransient, retryAfterOf } from "../errors.ts";
import { BatchInsert, ensureSchema, storeError, transaction } from "../db/sqlite.ts";
import { DEFAULT_BACKOFF, backoffDelay } from "../util/backoff.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import type { Backoff } from "../util/backoff.ts";
import type { EnqueueOptions, FailedJob, IdleOptions, JobHandler, JobRecord, QueueDepth, WorkQueue } from "./contract.ts";
import { IdleWaiters } from "./idle-waiters.ts";

/** The subset of a logger the queue uses. */
export interface QueueLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface EmbeddedQueueOptions {
  readonly clock?: Clock;
  readonly logger?: QueueLogger;
  /** Safety-net scan for due jobs (delayed jobs normally wake a timer). Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** How long completed jobs are kept so that their id still de-duplicates. Default 24 h. */
  readonly retentionMs?: number;
  /** How long `stop()` waits for running handlers. Default 8000 ms. */
  readonly drainTimeoutMs?: number;
}

const SCHEMA_VERSION = 1;

/**
 * One row per job. `state` is waiting | active | completed | failed; a waiting job whose `run_at` is in the
 * future counts as delayed. `attempt` counts the attempts started so far. `lease` identifies the claim of an
 * active job so that a stale worker (its job was recovered and re-run elsewhere) cannot overwrite the outcome.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  state TEXT NOT NULL,
  run_at INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  backoff_delay INTEGER,
  backoff_max INTEGER,
  enqueued_at INTEGER NOT NULL,
  finished_at INTEGER,
  lease TEXT,
  error TEXT,
  error_code TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, kind, run_at);
CREATE INDEX IF NOT EXISTS jobs_completed ON jobs (finished_at) WHERE state = 'completed';
`;

/** Most rows one prune pass deletes, so a pass never blocks the loop for long. */
const PRUNE_BATCH = 5_000;
/** Longest timer Node accepts. */
const MAX_TIMER_MS = 2_147_483_647;

interface JobRow {
  id: string;
  kind: string;
  payload: string;
  run_at: number;
  attempt: number;
  max_attempts: number;
  backoff_delay: number | null;
  backoff_max: number | null;
  enqueued_at: number;
  seq: number;
}

interface Worker {
  readonly kind: string;
  readonly handler: JobHandler<unknown>;
  readonly concurrency: number;
  active: number;
}

const noopLogger: QueueLogger = { warn() {}, error() {}, debug() {} };

/**
 * The embedded work queue: durable jobs in the local SQLite database, at-least-once delivery.
 *
 * Latency: an enqueue schedules a worker pass on the microtask queue, so a due job on an idle queue starts
 * right after its insert commits. Delayed jobs wake a timer set to the earliest `run_at`; a periodic poll is
 * only a safety net (and prunes old completed jobs).
 *
 * `idle()` is answered by the queue's own state changes: each handler that settles, and each pass that
 * claims jobs, looks again while anyone waits; the safety-net poll also notices changes made by another
 * process on the same database file.
 */
export class EmbeddedQueue implements WorkQueue {
  readonly #db: DatabaseSync;
  readonly #clock: Clock;
  readonly #log: QueueLogger;
  readonly #pollIntervalMs: number;
  readonly #retentionMs: number;
  readonly #drainTimeoutMs: number;
  /** Random per instance: prefixes leases and default job ids (ids then grow in order, which keeps inserts local). */
  readonly #instance = randomBytes(9).toString("base64url");
  #idCounter = 0;
  readonly #workers = new Map<string, Worker>();
  readonly #failedListeners: ((failure: FailedJob) => void)[] = [];
  readonly #inflight = new Set<Promise<void>>();
  /** Claimed jobs waiting for their turn to start (`#launchInTurns`); not empty while a lane starts them. */
  readonly #toLaunch: { worker: Worker; row: JobRow; lease: string }[] = [];
  readonly #idleWaiters = new IdleWaiters();
  #leaseCounter = 0;
  #running = false;
  #stopping: Promise<void> | undefined;
  #pumpScheduled = false;
  #pumpAll = false;
  #pumpKinds = new Set<string>();
  #pollTimer: NodeJS.Timeout | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;

  readonly #insert: BatchInsert;
  readonly #claim: StatementSync;
  readonly #nextRunAt: StatementSync;
  readonly #complete: StatementSync;
  readonly #retry: StatementSync;
  readonly #fail: StatementSync;
  readonly #recover: StatementSync;
  readonly #prune: StatementSync;
  readonly #pruneFailed: StatementSync;
  readonly #depth: StatementSync;
  readonly #delayed: StatementSync;
  readonly #busy: StatementSync;

  constructor(db: DatabaseSync, options: EmbeddedQueueOptions = {}) {
    this.#db = db;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? noopLogger;
    this.#pollIntervalMs = positive(options.pollIntervalMs, 1_000);
    this.#retentionMs = positive(options.retentionMs, 24 * 3_600_000);
    this.#drainTimeoutMs = positive(options.drainTimeoutMs, 8_000);
    ensureSchema(db, "queue", SCHEMA_VERSION, DDL);
    try {
      // A completed job past its retention no longer de-duplicates, even before the pruner has removed it.
      this.#insert = new BatchInsert(db, {
        head: "INSERT INTO jobs (id, kind, payload, state, run_at, attempt, max_attempts, backoff_delay, backoff_max, enqueued_at)",
        row: "(?, ?, ?, 'waiting', ?, 0, ?, ?, ?, ?)",
        tail: `ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, payload = excluded.payload, state = 'waiting', run_at = excluded.run_at,
           attempt = 0, max_attempts = excluded.max_attempts, backoff_delay = excluded.backoff_delay, backoff_max = excluded.backoff_max,
           enqueued_at = excluded.enqueued_at, finished_at = NULL, lease = NULL, error = NULL, error_code = NULL
         WHERE jobs.state = 'completed' AND jobs.finished_at < ?`,
      });
      this.#claim = db.prepare(
        `UPDATE jobs SET state = 'active', attempt = attempt + 1, lease = ?
         WHERE rowid IN (SELECT rowid FROM jobs WHERE state = 'waiting' AND kind = ? AND run_at <= ? ORDER BY run_at, rowid LIMIT ?)
         RETURNING id, kind, payload, run_at, attempt, max_attempts, backoff_delay, backoff_max, enqueued_at, rowid AS seq`,
      );
      this.#nextRunAt = db.prepare(`SELECT min(run_at) AS at FROM jobs WHERE state = 'waiting' AND kind = ? AND run_at > ?`);
      this.#complete = db.prepare(`UPDATE jobs SET state = 'completed', finished_at = ?, lease = NULL WHERE id = ? AND lease = ? AND state = 'active'`);
      this.#retry = db.prepare(
        `UPDATE jobs SET state = 'waiting', run_at = ?, lease = NULL, error = ?, error_code = ? WHERE id = ? AND lease = ? AND state = 'active'`,
      );
      this.#fail = db.prepare(
        `UPDATE jobs SET state = 'failed', finished_at = ?, lease = NULL, error = ?, error_code = ? WHERE id = ? AND lease = ? AND state = 'active'`,
      );
      // The interrupted attempt is given back: the job runs again as the same attempt.
      this.#recover = db.prepare(`UPDATE jobs SET state = 'waiting', attempt = max(attempt - 1, 0), lease = NULL WHERE state = 'active'`);
      // Failed jobs are the dead letters: kept 30 times the retention (30 days by default) for
      // inspection; each was recorded in the audit log when it failed, so nothing is lost.
      this.#pruneFailed = db.prepare(
        `DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE state = 'failed' AND finished_at < ? LIMIT ${PRUNE_BATCH})`,
      );
      this.#prune = db.prepare(
        `DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY jobs_completed WHERE state = 'completed' AND finished_at < ? LIMIT ${PRUNE_BATCH})`,
      );
      // Both walk the (state, kind, run_at) index in order: no temporary sort, completed jobs skipped.
      this.#depth = db.prepare(`SELECT state, kind, count(*) AS n FROM jobs WHERE state IN ('waiting', 'active', 'failed') GROUP BY state, kind`);
      this.#delayed = db.prepare(`SELECT count(*) AS n FROM jobs WHERE state = 'waiting' AND kind = ? AND run_at > ?`);
      // Also on the (state, kind, run_at) index: completed and failed jobs are never read.
      this.#busy = db.prepare(
        `SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'active') OR EXISTS (SELECT 1 FROM jobs WHERE state = 'waiting' AND run_at <= ?) AS busy`,
      );
    } catch (err) {
      throw storeError("cannot prepare the queue statements", err);
    }
  }

  async enqueue<T>(kind: string, payload: T, options: EnqueueOptions = {}): Promise<boolean> {
    const now = this.#clock.now();
    const row = this.#row(kind, payload, options, now);
    let created: boolean;
    try {
      created = this.#insert.run([row], [now - this.#retentionMs]) > 0;
    } catch (err) {
      throw storeError(`cannot enqueue a ${kind} job`, err);
    }
    if (created) this.#schedulePump(kind);
    return created;
  }

  async enqueueMany<T>(kind: string, jobs: readonly { payload: T; options?: EnqueueOptions }[]): Promise<number> {
    if (jobs.length === 0) return 0;
    const now = this.#clock.now();
    const rows = jobs.map((job) => this.#row(kind, job.payload, job.options ?? {}, now));
    let created: number;
    try {
      // Duplicate ids, also within the batch, change no row, so the change count is the number created.
      created = transaction(this.#db, () => this.#insert.run(rows, [now - this.#retentionMs]));
    } catch (err) {
      throw storeError(`cannot enqueue ${jobs.length} ${kind} jobs`, err);
    }
    if (created > 0) this.#schedulePump(kind);
    return created;
  }

  process<T>(kind: string, handler: JobHandler<T>, options: { concurrency?: number } = {}): void {
    if (this.#workers.has(kind)) throw new VigilError("VIGIL_ERR_USAGE", `a handler for ${kind} jobs is already registered`);
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new VigilError("VIGIL_ERR_USAGE", `concurrency for ${kind} jobs must be a positive integer, got ${concurrency}`);
    }
    this.#workers.set(kind, { kind, handler: handler as JobHandler<unknown>, concurrency, active: 0 });
    this.#schedulePump();
  }

  onFailed(listener: (failure: FailedJob) => void): void {
    this.#failedListeners.push(listener);
  }

  async depth(): Promise<Record<string, QueueDepth>> {
    const out: Record<string, { waiting: number; delayed: number; active: number; failed: number }> = {};
    try {
      const now = this.#clock.now();
      for (const row of this.#depth.all() as { state: string; kind: string; n: number }[]) {
        const d = (out[row.kind] ??= { waiting: 0, delayed: 0, active: 0, failed: 0 });
        if (row.state === "waiting") {
          const delayed = (this.#delayed.get(row.kind, now) as { n: number }).n;
          d.delayed = delayed;
          d.waiting = row.n - delayed;
        } else if (row.state === "active") d.active = row.n;
        else if (row.state === "failed") d.failed = row.n;
      }
    } catch (err) {
      throw storeError("cannot read the queue depth", err);
    }
    return out;
  }

  idle(options: IdleOptions = {}): Promise<void> {
    const invalid = IdleWaiters.invalid(options);
    if (invalid) return invalid;
    // While stopping, the answer is known once the running handlers have drained.
    if (!this.#running) return (this.#stopping ?? Promise.resolve()).then(() => this.#idleWhenStopped());
    let idle: boolean;
    try {
      idle = this.#isIdle();
    } catch (err) {
      return Promise.reject(storeError("cannot read whether the queue is idle", err));
    }
    if (idle) return Promise.resolve();
    return this.#idleWaiters.wait(options.timeoutMs);
  }

  /** Recovers jobs a previous process left active, then starts taking jobs. */
  async start(): Promise<void> {
    if (this.#running) return;
    if (this.#stopping) await this.#stopping;
    if (this.#running) return;
    try {
      const recovered = Number(this.#recover.run().changes);
      if (recovered > 0) this.#log.warn({ recovered }, "queue: jobs interrupted by a previous stop or crash will run again");
    } catch (err) {
      throw storeError("cannot recover interrupted jobs", err);
    }
    this.#running = true;
    this.#stopping = undefined;
    this.#pollTimer = setInterval(() => this.#poll(), this.#pollIntervalMs);
    this.#pollTimer.unref();
    this.#prunePass();
    this.#schedulePump();
  }

  /** Stops taking jobs and waits up to `drainTimeoutMs` for running handlers; still-active jobs are recovered on the next start. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (!this.#running) return Promise.resolve();
    this.#running = false;
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#clearWake();
    this.#stopping = this.#drain().then(() => this.#idleWaiters.settleAll(() => this.#idleWhenStopped()));
    return this.#stopping;
  }

  /** No handler of this queue running and, by the database, no job active or due. */
  #isIdle(): boolean {
    if (this.#inflight.size > 0) return false;
    return (this.#busy.get(this.#clock.now()) as { busy: number }).busy === 0;
  }

  /** Resolves the `idle()` waiters if the queue has become idle; a cheap no-op when nobody waits. */
  #checkIdle(): void {
    if (this.#idleWaiters.size === 0) return;
    try {
      if (!this.#isIdle()) return;
    } catch (err) {
      // The next settle or poll looks again.
      this.#log.warn({ err }, "queue: cannot read whether the queue is idle");
      return;
    }
    this.#idleWaiters.resolveAll();
  }

  async #idleWhenStopped(): Promise<void> {
    let idle: boolean;
    try {
      idle = this.#isIdle();
    } catch (err) {
      throw storeError("cannot read whether the queue is idle", err);
    }
    if (!idle) throw new VigilError("VIGIL_ERR_SHUTDOWN", "the queue is not running and has jobs ready or running");
  }

  async #drain(): Promise<void> {
    if (this.#inflight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#drainTimeoutMs);
    });
    const drained = Promise.allSettled([...this.#inflight]).then(() => false);
    const late = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (late) {
      this.#log.warn({ active: this.#inflight.size, drainTimeoutMs: this.#drainTimeoutMs }, "queue: stopped with handlers still running; their jobs run again on the next start");
    }
  }

  #row<T>(kind: string, payload: T, options: EnqueueOptions, now: number): (string | number | null)[] {
    const id = options.id ?? `${this.#instance}-${(++this.#idCounter).toString(36).padStart(8, "0")}`;
    const delay = Math.max(0, Number.isFinite(options.delay) ? (options.delay as number) : 0);
    const attempts = Math.max(1, Math.floor(Number.isFinite(options.attempts) ? (options.attempts as number) : 1));
    const json = JSON.stringify(payload);
    return [
      id,
      kind,
      json === undefined ? "null" : json,
      Math.round(now + delay),
      attempts,
      options.backoff?.delay ?? null,
      options.backoff?.max_delay ?? null,
      now,
    ];
  }

  /**
   * Pumps soon, for one kind or (no kind) all. setImmediate, not a microtask: with a backlog the
   * loop then yields to I/O, timers and the GC between jobs, so the API keeps answering while a
   * large pass runs. Only kinds with new work are claimed for, which keeps empty claims off the
   * hot path.
   */
  #schedulePump(kind?: string): void {
    if (kind === undefined) this.#pumpAll = true;
    else this.#pumpKinds.add(kind);
    if (this.#pumpScheduled || !this.#running) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      const kinds = this.#pumpAll ? undefined : this.#pumpKinds;
      this.#pumpAll = false;
      this.#pumpKinds = new Set();
      this.#pump(kinds);
    });
  }

  /** Claims due jobs for the given kinds (default all) with free slots, starts their handlers and re-arms the delayed-job timer. */
  #pump(kinds?: ReadonlySet<string>): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    // A partial pump must not push back a wake-up armed for another kind.
    let next = kinds ? this.#wakeAt : Infinity;
    try {
      for (const worker of this.#workers.values()) {
        if (kinds && !kinds.has(worker.kind)) continue;
        const free = worker.concurrency - worker.active;
        if (free > 0) {
          const lease = `${this.#instance}:${++this.#leaseCounter}`;
          const rows = this.#claim.all(lease, worker.kind, now, free) as unknown as JobRow[];
          if (rows.length > 1) rows.sort((a, b) => a.run_at - b.run_at || a.seq - b.seq);
          this.#launchInTurns(worker, rows, lease);
        }
        const at = (this.#nextRunAt.get(worker.kind, now) as { at: number | null } | undefined)?.at;
        if (at != null && at < next) next = at;
      }
    } catch (err) {
      // The poll retries; a database that stays broken shows in the logs and in depth().
      this.#log.error({ err }, "queue: cannot claim jobs");
    }
    this.#armWake(next, now);
    this.#checkIdle();
  }

  #armWake(at: number, now: number): void {
    if (at === this.#wakeAt && this.#wakeTimer) return;
    this.#clearWake();
    if (at === Infinity) return;
    this.#wakeAt = at;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#wakeAt = Infinity;
      this.#pump();
    }, Math.min(MAX_TIMER_MS, Math.max(1, at - now)));
  }

  #clearWake(): void {
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wakeAt = Infinity;
  }

  #poll(): void {
    this.#prunePass();
    this.#pump();
  }

  #prunePass(): void {
    try {
      const pruned = Number(this.#prune.run(this.#clock.now() - this.#retentionMs).changes) + Number(this.#pruneFailed.run(this.#clock.now() - 30 * this.#retentionMs).changes);
      if (pruned > 0) this.#log.debug({ pruned }, "queue: pruned completed jobs past retention");
    } catch (err) {
      this.#log.warn({ err }, "queue: cannot prune completed jobs");
    }
  }

  /**
   * Starts claimed jobs one per turn of the event loop, in the order they were claimed: the first
   * at once when none waits, the others each in a later turn. A handler whose work resolves at once
   * (an evaluation of attribute checks) runs to its end in the turn it starts in; started together,
   * a pump's jobs would hold the loop for all of theirs, and finishing together they would be
   * claimed together again, pass after pass. Their slots are taken from the claim on. A stop in
   * between leaves the rest active, to be recovered at the next start as after a crash.
   */
  #launchInTurns(worker: Worker, rows: readonly JobRow[], lease: string): void {
    // Jobs already waiting: their lane starts these too, behind them.
    const laneRunning = this.#toLaunch.length > 0;
    for (const row of rows) {
      worker.active++;
      this.#toLaunch.push({ worker, row, lease });
    }
    if (laneRunning || this.#toLaunch.length === 0) return;
    const lane = new Promise<void>((resolve) => {
      const step = (): void => {
        // Taken off the list only once started: the list is not empty while its lane runs.
        const next = this.#toLaunch[0]!;
        next.worker.active--;
        if (this.#running) this.#launch(next.worker, next.row, next.lease);
        this.#toLaunch.shift();
        if (this.#toLaunch.length > 0) setImmediate(step);
        else resolve();
      };
      step();
    });
    this.#inflight.add(lane);
    void lane.finally(() => this.#inflight.delete(lane));
  }

  #launch(worker: Worker, row: JobRow, lease: string): void {
    let payload: unknown;
    try {
      payload = JSON.parse(row.payload);
    } catch (err) {
      const job: JobRecord = { id: row.id, kind: row.kind, payload: row.payload, attempt: row.attempt, max_attempts: row.max_attempts, enqueued_at: row.enqueued_at };
      this.#settleFailure(job, row, lease, new VigilError("VIGIL_ERR_STORE", `stored payload is not valid JSON: ${errorMessage(err)}`), false);
      return;
    }
    const job: JobRecord = { id: row.id, kind: row.kind, payload, attempt: row.attempt, max_attempts: row.max_attempts, enqueued_at: row.enqueued_at };
    worker.active++;
    let result: Promise<void>;
    try {
      result = Promise.resolve(worker.handler(job));
    } catch (err) {
      result = Promise.reject(err);
    }
    const done = result
      .then(
        () => this.#settleSuccess(job, lease),
        (err: unknown) => this.#settleFailure(job, row, lease, err, true),
      )
      .catch((err: unknown) => this.#log.error({ err, job: job.id, kind: job.kind }, "queue: cannot settle a job"));
    const tracked = done.finally(() => {
      worker.active--;
      this.#inflight.delete(tracked);
      this.#schedulePump(job.kind);
      this.#checkIdle();
    });
    this.#inflight.add(tracked);
  }

  #settleSuccess(job: JobRecord, lease: string): void {
    try {
      const changed = Number(this.#complete.run(this.#clock.now(), job.id, lease).changes);
      if (changed === 0) this.#log.debug({ job: job.id, kind: job.kind }, "queue: job was recovered and re-run elsewhere; outcome dropped");
    } catch (err) {
      this.#log.error({ err, job: job.id, kind: job.kind }, "queue: cannot record a completed job; it will run again after a restart");
    }
  }

  #settleFailure(job: JobRecord, row: JobRow, lease: string, err: unknown, retryable: boolean): void {
    const now = this.#clock.now();
    const message = errorMessage(err);
    const code = errorCodeOf(err);
    try {
      if (retryable && isTransient(err) && job.attempt < job.max_attempts) {
        const backoff: Backoff = { delay: row.backoff_delay ?? DEFAULT_BACKOFF.delay, max_delay: row.backoff_max ?? DEFAULT_BACKOFF.max_delay };
        const delay = backoffDelay(job.attempt, backoff, retryAfterOf(err));
        const changed = Number(this.#retry.run(now + delay, message, code ?? null, job.id, lease).changes);
        if (changed > 0) {
          this.#log.debug({ job: job.id, kind: job.kind, attempt: job.attempt, delay, err: message }, "queue: job failed; retrying");
          this.#schedulePump(job.kind);
        }
        return;
      }
      const changed = Number(this.#fail.run(now, message, code ?? null, job.id, lease).changes);
      if (changed === 0) {
        this.#log.debug({ job: job.id, kind: job.kind }, "queue: job was recovered and re-run elsewhere; outcome dropped");
        return;
      }
    } catch (dbErr) {
      this.#log.error({ err: dbErr, job: job.id, kind: job.kind, jobError: message }, "queue: cannot record a failed attempt; the job will run again after a restart");
      return;
    }
    this.#log.warn({ job: job.id, kind: job.kind, attempt: job.attempt, code, err: message }, "queue: job failed");
    const failure: FailedJob = code === undefined ? { job, error: message } : { job, error: message, code };
    for (const listener of this.#failedListeners) {
      try {
        listener(failure);
      } catch (listenerErr) {
        this.#log.error({ err: listenerErr, job: job.id }, "queue: onFailed listener threw");
      }
    }
  }
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
