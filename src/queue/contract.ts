import type { Lifecycle } from "../util/lifecycle.ts";
import type { Backoff } from "../util/backoff.ts";

export interface EnqueueOptions {
  /** Job id; a job id enqueued twice runs once (while the first is kept). Default: random. */
  readonly id?: string;
  /** Run no earlier than this many ms from now. Default 0. */
  readonly delay?: number;
  /** Total attempts including the first. Default 1. */
  readonly attempts?: number;
  readonly backoff?: Backoff;
}

export interface JobRecord<T = unknown> {
  readonly id: string;
  readonly kind: string;
  readonly payload: T;
  /** 1 on the first run. */
  readonly attempt: number;
  readonly max_attempts: number;
  readonly enqueued_at: number;
  /** For a job a schedule produced (cluster mode's ticks): when it was due (epoch ms), the same on every retry. */
  readonly scheduled_at?: number;
}

/** A handler throws to fail the attempt. Errors that are not transient (see `isTransient`; an error without a
 * vigil code is not) end the job at once; an error carrying `retryAfterMs` delays the next attempt at least that long. */
export type JobHandler<T> = (job: JobRecord<T>) => Promise<void>;

export interface FailedJob {
  readonly job: JobRecord;
  readonly error: string;
  readonly code?: string;
}

export interface IdleOptions {
  /** Give up after this many ms, rejecting with a `TimeoutError` (the error `AbortSignal.timeout` gives). Default: no limit. */
  readonly timeoutMs?: number;
}

export interface QueueDepth {
  readonly waiting: number;
  readonly delayed: number;
  readonly active: number;
  readonly failed: number;
}

/**
 * The one queue abstraction: embedded (durable on local disk) or BullMQ on Redis.
 * At-least-once delivery; jobs survive a crash of the process that accepted them.
 */
export interface WorkQueue extends Lifecycle {
  /** Returns whether a new job was created (false when the id already existed). */
  enqueue<T>(kind: string, payload: T, options?: EnqueueOptions): Promise<boolean>;
  /** Enqueues many jobs in one durable write. */
  enqueueMany<T>(kind: string, jobs: readonly { payload: T; options?: EnqueueOptions }[]): Promise<number>;
  /** Registers the handler for a kind; jobs run once `start()` has been called. */
  process<T>(kind: string, handler: JobHandler<T>, options?: { concurrency?: number }): void;
  /** Called once when a job has used all its attempts or failed permanently; the job is kept as failed. */
  onFailed(listener: (failure: FailedJob) => void): void;
  depth(): Promise<Record<string, QueueDepth>>;
  /**
   * Resolves once no job is active and none is waiting with its run time due: everything the queue
   * could run by now has run, including the jobs those jobs enqueued. Jobs whose run time is still in
   * the future (a `delay`, a retry waiting out its backoff) do not count, so the queue can be idle
   * while such jobs wait, and busy again when one comes due. Jobs of every kind count.
   *
   * Rejects with `VIGIL_ERR_SHUTDOWN` when the queue is not running, or stops, with work left that it
   * will not do; with a `TimeoutError` once `timeoutMs` has passed.
   */
  idle(options?: IdleOptions): Promise<void>;
}
