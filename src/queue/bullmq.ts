/**
 * The WorkQueue of cluster mode: BullMQ on the Redis the replicas share, one BullMQ queue per job
 * kind, the same contract as the embedded queue.
 *
 * - At-least-once: a job is taken under a lock its worker renews; when the worker dies the lock
 *   lapses and another replica runs the job again (as the same attempt, as the embedded queue does
 *   after a crash: `maxStalledCount` is set so high that a job is never failed for stalling).
 * - A job id enqueued again while the job is kept (completed: a day, at most `keepCompleted`;
 *   failed: 30 days, at most `keepFailed`) is ignored. Ids are escaped (BullMQ forbids `:` and
 *   all-digit ids) and unescaped in the `JobRecord`.
 * - Attempts and backoff as embedded: `isTransient` decides retry or fail, the backoff is the same
 *   function, and a `retryAfterMs` on the error delays the retry at least that long. That delay is
 *   the job's own, not BullMQ's queue-wide rate limiter: the action queue carries every provider's
 *   actions, and one provider answering 429 must not hold back enforcement through the others.
 * - Failed jobs are kept with their error message and code (the code in the job's data, `c`).
 * - `stop()` stops taking jobs and lets running ones finish for up to `drainTimeoutMs`; one still
 *   running after that keeps its lock until it lapses, and another replica runs it again.
 * - `depth()` and `idle()` are the cluster's: every replica sees the same queue.
 *
 * Producers use the fail-fast connection (an enqueue while Redis is away fails at once with
 * `VIGIL_ERR_UNAVAILABLE`); workers use the waiting one, so they resume by themselves.
 */
import { randomBytes } from "node:crypto";
import { DelayedError, Queue, UnrecoverableError, Worker, type Job, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import { VigilError, errorCodeOf, errorMessage, isTransient, retryAfterOf } from "../errors.ts";
import { redisError } from "../db/redis/connection.ts";
import { DEFAULT_BACKOFF, backoffDelay } from "../util/backoff.ts";
import { raceAbort } from "../util/abort.ts";
import type { EnqueueOptions, FailedJob, IdleOptions, JobHandler, JobRecord, QueueDepth, WorkQueue } from "./contract.ts";
import { IdleWaiters } from "./idle-waiters.ts";
import type { QueueLogger } from "./embedded.ts";

export interface BullQueueOptions {
  /** `agent.cluster.prefix`: BullMQ's keys are `<prefix>:queue:<kind>:…`. */
  readonly prefix: string;
  /** Fail-fast connection: enqueues and reads. */
  readonly connection: Redis;
  /** Waiting connection the workers share (each also opens its own blocking one). */
  readonly workerConnection: Redis;
  readonly logger?: QueueLogger;
  /** A job's lock; a dead worker's jobs run again about this long later. Default 30000. */
  readonly lockDurationMs?: number;
  /** How long `stop()` waits for running handlers. Default 8000. */
  readonly drainTimeoutMs?: number;
  /** Completed jobs kept per kind (de-duplicating their ids), each at most a day. Default 100000. */
  readonly keepCompleted?: number;
  /** Failed jobs kept per kind, each at most 30 days. Default 10000. */
  readonly keepFailed?: number;
  /** Cluster-wide caps on running jobs per kind (BullMQ global concurrency). */
  readonly globalConcurrency?: Readonly<Record<string, number | undefined>>;
  /** How often `idle()` looks at the queues. Default 25 ms. */
  readonly idlePollMs?: number;
}

/** A job a schedule produces, once per due time for the whole cluster. */
export interface QueueSchedule {
  /** Stable id of the schedule. */
  readonly id: string;
  /** Cron expression (5 fields, or 6 with seconds first). */
  readonly cron: string;
  readonly payload: unknown;
  readonly attempts?: number;
  readonly backoff?: { readonly delay: number; readonly max_delay?: number };
}

/** What a job carries in Redis: the payload, when it was enqueued, its backoff, and (once failed) its error code. */
interface Envelope {
  readonly p: unknown;
  readonly t?: number;
  readonly b?: readonly [number, number];
  readonly c?: string | null;
}

const DAY_S = 86_400;
const noopLogger: QueueLogger = { warn() {}, error() {}, debug() {} };

interface Registered {
  readonly handler: JobHandler<unknown>;
  readonly concurrency: number;
}

export class BullQueue implements WorkQueue {
  readonly #o: BullQueueOptions;
  readonly #log: QueueLogger;
  readonly #bullPrefix: string;
  readonly #lockMs: number;
  readonly #drainMs: number;
  readonly #instance = randomBytes(9).toString("base64url");
  #idCounter = 0;
  readonly #queues = new Map<string, Queue>();
  readonly #handlers = new Map<string, Registered>();
  readonly #workers = new Map<string, Worker>();
  readonly #failedListeners: ((failure: FailedJob) => void)[] = [];
  readonly #idleWaiters = new IdleWaiters();
  /** Handlers running in this process, by kind. */
  readonly #running = new Map<string, number>();
  #inflight = 0;
  #started = false;
  #stopping: Promise<void> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #idleChecking = false;
  #lastWorkerError = 0;

  constructor(options: BullQueueOptions) {
    this.#o = options;
    this.#log = options.logger ?? noopLogger;
    this.#bullPrefix = `${options.prefix}:queue`;
    this.#lockMs = options.lockDurationMs ?? 30_000;
    this.#drainMs = options.drainTimeoutMs ?? 8_000;
  }

  async enqueue<T>(kind: string, payload: T, options: EnqueueOptions = {}): Promise<boolean> {
    return (await this.enqueueMany(kind, [{ payload, options }])) === 1;
  }

  /**
   * One `addBulk` (a MULTI: all or none). Whether each job was created or its id was taken is told
   * by the job's name, a nonce drawn for this call: a job that already existed kept its own.
   */
  async enqueueMany<T>(kind: string, jobs: readonly { payload: T; options?: EnqueueOptions }[]): Promise<number> {
    if (jobs.length === 0) return 0;
    const queue = this.#queue(kind);
    const now = Date.now();
    const nonce = randomBytes(9).toString("base64url");
    // Within one call a repeated id is one job, as in the embedded queue.
    const byId = new Map<string, { name: string; data: Envelope; opts: JobsOptions }>();
    for (const job of jobs) {
      const o = job.options ?? {};
      const id = encodeId(o.id ?? `${this.#instance}-${(++this.#idCounter).toString(36).padStart(8, "0")}`);
      if (byId.has(id)) continue;
      const delay = Math.max(0, Number.isFinite(o.delay) ? Math.round(o.delay as number) : 0);
      const attempts = Math.max(1, Math.floor(Number.isFinite(o.attempts) ? (o.attempts as number) : 1));
      const backoff = o.backoff ?? DEFAULT_BACKOFF;
      byId.set(id, {
        name: nonce,
        data: { p: job.payload === undefined ? null : job.payload, t: now, b: [backoff.delay, backoff.max_delay ?? DEFAULT_BACKOFF.max_delay] },
        opts: { jobId: id, delay, attempts, ...this.#jobOptions(backoff.delay) },
      });
    }
    const ids = [...byId.keys()];
    try {
      await queue.addBulk([...byId.values()]);
      const p = this.#o.connection.pipeline();
      for (const id of ids) p.hget(`${this.#bullPrefix}:${kind}:${id}`, "name");
      const names = (await p.exec()) ?? [];
      return names.filter(([err, name]) => !err && name === nonce).length;
    } catch (err) {
      throw redisError(`enqueue ${ids.length} ${kind} job(s)`, err);
    }
  }

  process<T>(kind: string, handler: JobHandler<T>, options: { concurrency?: number } = {}): void {
    if (this.#handlers.has(kind)) throw new VigilError("VIGIL_ERR_USAGE", `a handler for ${kind} jobs is already registered`);
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new VigilError("VIGIL_ERR_USAGE", `concurrency for ${kind} jobs must be a positive integer, got ${concurrency}`);
    }
    validKind(kind);
    this.#handlers.set(kind, { handler: handler as JobHandler<unknown>, concurrency });
    if (this.#started && !this.#stopping) this.#startWorker(kind);
  }

  onFailed(listener: (failure: FailedJob) => void): void {
    this.#failedListeners.push(listener);
  }

  /** The cluster's jobs per kind; kinds with none are left out, as in the embedded queue. */
  async depth(): Promise<Record<string, QueueDepth>> {
    const kinds = [...new Set([...this.#handlers.keys(), ...this.#queues.keys()])].sort();
    const now = Date.now();
    const p = this.#o.connection.pipeline();
    for (const kind of kinds) {
      const k = `${this.#bullPrefix}:${kind}`;
      p.llen(`${k}:wait`).llen(`${k}:paused`).zcard(`${k}:prioritized`).llen(`${k}:active`).zcard(`${k}:delayed`);
      // Delayed scores are the due time × 4096 plus a counter: those due by now are waiting in effect.
      p.zcount(`${k}:delayed`, 0, (now + 1) * 0x1000 - 1).zcard(`${k}:failed`);
    }
    let replies: [Error | null, unknown][];
    try {
      replies = (await p.exec()) ?? [];
    } catch (err) {
      throw redisError("read the queue depth", err);
    }
    const out: Record<string, QueueDepth> = {};
    kinds.forEach((kind, i) => {
      const v = replies.slice(i * 7, i * 7 + 7).map(([err, n]) => {
        if (err) throw redisError("read the queue depth", err);
        return Number(n);
      });
      const [wait, paused, prioritized, active, delayed, due, failed] = v as [number, number, number, number, number, number, number];
      const d: QueueDepth = { waiting: wait + paused + prioritized + due, delayed: delayed - due, active, failed };
      if (d.waiting + d.delayed + d.active + d.failed > 0) out[kind] = d;
    });
    return out;
  }

  idle(options: IdleOptions = {}): Promise<void> {
    const invalid = IdleWaiters.invalid(options);
    if (invalid) return invalid;
    if (!this.#started) return (this.#stopping ?? Promise.resolve()).then(() => this.#idleWhenStopped());
    const waiting = this.#idleWaiters.wait(options.timeoutMs);
    this.#armIdle(0);
    return waiting;
  }

  /** Starts a worker per registered kind and applies the cluster-wide caps. */
  async start(): Promise<void> {
    if (this.#started) return;
    if (this.#stopping) await this.#stopping;
    this.#stopping = undefined;
    this.#started = true;
    for (const [kind, cap] of Object.entries(this.#o.globalConcurrency ?? {})) {
      const queue = this.#queue(kind);
      try {
        if (cap !== undefined) await queue.setGlobalConcurrency(cap);
        else await queue.removeGlobalConcurrency();
      } catch (err) {
        throw redisError(`set the cluster-wide concurrency of ${kind} jobs`, err);
      }
    }
    for (const kind of this.#handlers.keys()) this.#startWorker(kind);
  }

  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (!this.#started) return Promise.resolve();
    this.#started = false;
    this.#stopping = this.#drain().then(() => this.#idleWaiters.settleAll(() => this.#idleWhenStopped()));
    return this.#stopping;
  }

  /**
   * Makes the queue produce a `kind` job on each schedule's cron, once per due time for the whole
   * cluster, and removes the `kind` schedules not listed. A schedule that is already as wanted is
   * left alone: an upsert restarts a schedule, and upserts in quick succession are where BullMQ's
   * schedulers have been known to lose or double a run. Call it from one replica (the leader).
   */
  async reconcileSchedules(kind: string, schedules: readonly QueueSchedule[]): Promise<{ upserted: number; removed: number }> {
    const queue = this.#queue(kind);
    let upserted = 0;
    let removed = 0;
    try {
      const existing = new Map((await queue.getJobSchedulers(0, -1)).map((s) => [s.key, s]));
      const wanted = new Set<string>();
      for (const s of schedules) {
        const id = scheduleId(s.id);
        wanted.add(id);
        const backoff = s.backoff ?? DEFAULT_BACKOFF;
        const data: Envelope = { p: s.payload, b: [backoff.delay, backoff.max_delay ?? DEFAULT_BACKOFF.max_delay] };
        const have = existing.get(id);
        if (have && have.pattern === s.cron && JSON.stringify(have.template?.data) === JSON.stringify(data) && (have.template?.opts?.attempts ?? 1) === (s.attempts ?? 1)) continue;
        await queue.upsertJobScheduler(id, { pattern: s.cron }, { name: "schedule", data, opts: { attempts: s.attempts ?? 1, ...this.#jobOptions(backoff.delay) } });
        upserted++;
      }
      for (const id of existing.keys()) {
        if (wanted.has(id)) continue;
        await queue.removeJobScheduler(id);
        removed++;
      }
    } catch (err) {
      throw redisError(`reconcile the ${kind} schedules`, err);
    }
    return { upserted, removed };
  }

  #jobOptions(backoffDelay: number): Pick<JobsOptions, "backoff" | "removeOnComplete" | "removeOnFail"> {
    return {
      backoff: { type: "vigil", delay: backoffDelay },
      removeOnComplete: { age: DAY_S, count: this.#o.keepCompleted ?? 100_000 },
      removeOnFail: { age: 30 * DAY_S, count: this.#o.keepFailed ?? 10_000 },
    };
  }

  #queue(kind: string): Queue {
    let q = this.#queues.get(kind);
    if (!q) {
      validKind(kind);
      // A BullMQ queue made while Redis is away would wait for it (its set-up reads the server's
      // version): fail fast instead, as every call on the connection does.
      if (this.#o.connection.status !== "ready") throw new VigilError("VIGIL_ERR_UNAVAILABLE", `cannot use the ${kind} queue: Redis is not connected (${this.#o.connection.status})`);
      q = new Queue(kind, { connection: this.#o.connection, prefix: this.#bullPrefix });
      q.on("error", (err) => this.#workerError(kind, err));
      this.#queues.set(kind, q);
    }
    return q;
  }

  #startWorker(kind: string): void {
    if (this.#workers.has(kind)) return;
    const reg = this.#handlers.get(kind)!;
    const worker = new Worker(kind, (job: Job, _token?: string, signal?: AbortSignal) => this.#process(kind, reg.handler, job, signal), {
      connection: this.#o.workerConnection,
      prefix: this.#bullPrefix,
      concurrency: reg.concurrency,
      lockDuration: this.#lockMs,
      stalledInterval: this.#lockMs,
      // Never fail a job for having been interrupted: like the embedded queue's recovery, it runs again.
      maxStalledCount: 1_000_000,
      settings: { backoffStrategy: (attemptsMade, _type, err, job) => this.#backoff(attemptsMade, err, job as Job | undefined) },
    });
    worker.on("error", (err) => this.#workerError(kind, err));
    worker.on("failed", (job, err) => {
      if (job && job.finishedOn !== undefined) this.#failed(kind, job, err);
    });
    worker.on("stalled", (jobId) => this.#log.warn({ job: decodeId(jobId), kind }, "queue: a job's worker stopped renewing its lock (a replica died or stalled); it runs again"));
    this.#workers.set(kind, worker);
  }

  async #process(kind: string, handler: JobHandler<unknown>, job: Job, signal: AbortSignal | undefined): Promise<void> {
    const record = toRecord(kind, job);
    this.#inflight++;
    this.#running.set(kind, (this.#running.get(kind) ?? 0) + 1);
    try {
      // The handler's outcome, or ABANDONED as soon as `signal` aborts (the handler runs on, unheard).
      await raceAbort(handler(record), signal, () => ABANDONED);
    } catch (err) {
      if (err === ABANDONED) {
        // Left to BullMQ as it is: the job stays active without its lock renewed, and runs again
        // (as the same attempt) once the lock lapses, like a job of a replica that died.
        throw new DelayedError("the replica stopped before the job finished");
      }
      const message = errorMessage(err);
      const code = errorCodeOf(err);
      const final = !isTransient(err) || record.attempt >= record.max_attempts;
      if (final) {
        // Kept with the failed job, so what failed it can be looked up later.
        await job.updateData({ ...(job.data as Envelope), c: code ?? null }).catch(() => undefined);
        (job as { vigilCode?: string | undefined }).vigilCode = code;
        throw new UnrecoverableError(message);
      }
      this.#log.debug({ job: record.id, kind, attempt: record.attempt, err: message }, "queue: job failed; retrying");
      throw Object.assign(new Error(message), { retryAfterMs: retryAfterOf(err) });
    } finally {
      this.#inflight--;
      this.#running.set(kind, (this.#running.get(kind) ?? 1) - 1);
      if (this.#idleWaiters.size > 0) this.#armIdle(0);
    }
  }

  /** The embedded queue's backoff for the attempt that just failed, at least the error's `retryAfterMs`. */
  #backoff(attemptsMade: number, err: Error | undefined, job: Job | undefined): number {
    const b = (job?.data as Envelope | undefined)?.b;
    const backoff = b ? { delay: b[0], max_delay: b[1] } : DEFAULT_BACKOFF;
    return backoffDelay(attemptsMade, backoff, retryAfterOf(err));
  }

  #failed(kind: string, job: Job, err: Error): void {
    // Counted after the failure: the attempts made are the attempts the job had.
    const record = { ...toRecord(kind, job), attempt: Math.max(1, job.attemptsMade) };
    const code = (job as { vigilCode?: string }).vigilCode ?? (job.data as Envelope).c ?? undefined;
    this.#log.warn({ job: record.id, kind, attempt: record.attempt, code, err: err.message }, "queue: job failed");
    const failure: FailedJob = code === undefined || code === null ? { job: record, error: err.message } : { job: record, error: err.message, code };
    for (const listener of this.#failedListeners) {
      try {
        listener(failure);
      } catch (listenerErr) {
        this.#log.error({ err: listenerErr, job: record.id }, "queue: onFailed listener threw");
      }
    }
  }

  /** Redis errors repeat while it is away: the first is logged, then at most one a minute. */
  #workerError(kind: string, err: unknown): void {
    const now = Date.now();
    if (now - this.#lastWorkerError < 60_000) return;
    this.#lastWorkerError = now;
    this.#log.warn({ kind, err: redisError("run the queue", err).message }, "queue: Redis error (workers retry by themselves)");
  }

  async #drain(): Promise<void> {
    clearTimeout(this.#idleTimer);
    const workers = [...this.#workers.values()];
    this.#workers.clear();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#drainMs);
    });
    const closed = Promise.allSettled(workers.map((w) => w.close())).then(() => false);
    const timedOut = await Promise.race([closed, late]);
    clearTimeout(timer);
    if (timedOut) {
      this.#log.warn({ active: this.#inflight, drainTimeoutMs: this.#drainMs }, "queue: stopped with handlers still running; their jobs run again on another replica once their locks lapse");
      // The workers stop waiting for those handlers and renewing their locks, and close.
      for (const w of workers) w.cancelAllJobs("the replica is stopping");
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000).unref())]);
    }
    await Promise.allSettled([...this.#queues.values()].map((q) => q.close()));
    this.#queues.clear();
  }

  #armIdle(delay: number): void {
    if (this.#idleTimer || this.#idleChecking) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      void this.#checkIdle();
    }, delay);
  }

  async #checkIdle(): Promise<void> {
    if (this.#idleWaiters.size === 0 || !this.#started) return;
    this.#idleChecking = true;
    let idle = false;
    try {
      idle = await this.#isIdle();
    } catch (err) {
      // Looked at again at the next poll.
      this.#log.debug({ err: errorMessage(err) }, "queue: cannot read whether the queue is idle");
    } finally {
      this.#idleChecking = false;
    }
    if (idle) this.#idleWaiters.resolveAll();
    else if (this.#idleWaiters.size > 0 && this.#started) this.#armIdle(this.#o.idlePollMs ?? 25);
  }

  /** No handler running here, and no job active or due anywhere in the cluster. */
  async #isIdle(): Promise<boolean> {
    if (this.#inflight > 0) return false;
    const depth = await this.depth();
    return Object.values(depth).every((d) => d.waiting === 0 && d.active === 0);
  }

  async #idleWhenStopped(): Promise<void> {
    if (!(await this.#isIdle())) throw new VigilError("VIGIL_ERR_SHUTDOWN", "the queue is not running and has jobs ready or running");
  }

  /** Handlers of each kind running in this replica now (for the per-replica gauge). */
  running(): Record<string, number> {
    return Object.fromEntries(this.#running);
  }
}

const ABANDONED = Symbol("abandoned");

function toRecord(kind: string, job: Job): JobRecord {
  const env = (job.data ?? {}) as Envelope;
  const id = String(job.id);
  const scheduled = job.repeatJobKey ? scheduledAt(job) : undefined;
  return {
    id: decodeId(id),
    kind,
    payload: env.p,
    attempt: job.attemptsMade + 1,
    max_attempts: Math.max(1, job.opts.attempts ?? 1),
    enqueued_at: env.t ?? job.timestamp,
    ...(scheduled === undefined ? {} : { scheduled_at: scheduled }),
  };
}

/** When a schedule's job was due: BullMQ names it `repeat:<schedule>:<due ms>`. */
function scheduledAt(job: Job): number | undefined {
  const prev = (job.opts as { prevMillis?: unknown }).prevMillis;
  if (typeof prev === "number" && Number.isFinite(prev)) return prev;
  const at = Number(String(job.id).split(":").at(-1));
  return Number.isFinite(at) ? at : undefined;
}

/** BullMQ job ids may not contain `:` nor be all digits: escape, and mark, every id. */
export function encodeId(id: string): string {
  return `j${id.replace(/%/g, "%25").replace(/:/g, "%3A")}`;
}

export function decodeId(id: string): string {
  if (!id.startsWith("j")) return id;
  return id.slice(1).replace(/%3A/g, ":").replace(/%25/g, "%");
}

function scheduleId(id: string): string {
  return id.replace(/%/g, "%25").replace(/:/g, "%3A");
}

function validKind(kind: string): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(kind)) throw new VigilError("VIGIL_ERR_USAGE", `job kind "${kind}": letters, digits, _ . - only`);
}
