/**
 * Retries for reads made inside a check run or an inventory listing: transient failures (timeouts,
 * resets, 429, 5xx) are tried again with exponential backoff and jitter, a server's Retry-After (or
 * rate-limit reset) is a floor, and nothing waits past the caller's deadline. A wait that would end
 * after it gives up at once with the last error, so the caller learns the truth while it can still
 * act on it. Permanent failures are never retried.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { UpstreamError, isTransient } from "../../errors.ts";
import { backoffDelay } from "../../util/backoff.ts";

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** First wait in ms when the server gave no hint. */
  readonly delay: number;
  /** Longest wait in ms. */
  readonly max_delay: number;
}

/** Graph asks for exponential backoff when Retry-After is absent; the same suits the other APIs. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, delay: 500, max_delay: 15_000 };

export interface RetryOptions {
  readonly signal: AbortSignal;
  /** Epoch ms after which no new try starts and no wait may end. */
  readonly deadline: number;
  readonly policy?: RetryPolicy;
  /** Told before each wait (for logs and tests). */
  readonly onRetry?: (err: UpstreamError | Error, waitMs: number, attempt: number) => void;
  /** For tests: the wall clock the deadline is measured on. Default Date.now. */
  readonly now?: () => number;
  readonly random?: () => number;
}

/** Runs `call` until it succeeds, fails permanently, runs out of tries, or the next wait would pass the deadline. */
export async function withRetries<T>(call: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY;
  const now = options.now ?? Date.now;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (err) {
      if (!isTransient(err) || attempt >= policy.attempts || options.signal.aborted) throw err;
      const hint = err instanceof UpstreamError ? (err.retryAfterMs ?? 0) : 0;
      const wait = backoffDelay(attempt, { delay: policy.delay, max_delay: policy.max_delay }, hint, options.random);
      if (now() + wait >= options.deadline) throw err;
      options.onRetry?.(err as Error, wait, attempt);
      try {
        await sleep(wait, undefined, { signal: options.signal });
      } catch {
        throw err;
      }
    }
  }
}
