export const DEFAULT_BACKOFF: Required<Backoff> = { delay: 1_000, max_delay: 300_000 };

/**
 * Delay before retry number `attempt` (1 = first retry): exponential, capped, with "full jitter"
 * (uniform in [base/2, base]) so that many failing jobs do not retry in lockstep.
 * A server's Retry-After hint is a floor.
 */
export function backoffDelay(attempt: number, backoff: Backoff = DEFAULT_BACKOFF, retryAfterMs = 0, random: () => number = Math.random): number {
  const cap = backoff.max_delay ?? DEFAULT_BACKOFF.max_delay;
  const base = Math.min(cap, backoff.delay * 2 ** Math.max(0, attempt - 1));
  const jittered = base / 2 + random() * (base / 2);
  return Math.max(Math.round(jittered), Math.min(retryAfterMs, cap * 4));
}

/** Retry schedule of a job: exponential backoff with full jitter, capped. */
export interface Backoff {
  /** First retry delay in ms. Default 1000. */
  readonly delay: number;
  /** Largest delay in ms. Default 300000 (5 min). */
  readonly max_delay?: number;
}
