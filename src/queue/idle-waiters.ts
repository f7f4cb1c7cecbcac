/**
 * The callers awaiting a queue's `idle()`, for every WorkQueue implementation: each queue knows when
 * it is idle, this keeps who waits, their timeouts, and what a stop tells them.
 */
import { VigilError } from "../errors.ts";
import type { IdleOptions } from "./contract.ts";

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  timer?: NodeJS.Timeout;
}

export class IdleWaiters {
  readonly #waiters = new Set<Waiter>();

  /** The options' problem, as the rejection `idle()` answers with; undefined when they are valid. */
  static invalid(options: IdleOptions): Promise<never> | undefined {
    const { timeoutMs } = options;
    if (timeoutMs === undefined || (Number.isFinite(timeoutMs) && timeoutMs >= 0)) return undefined;
    return Promise.reject(new VigilError("VIGIL_ERR_USAGE", `idle timeoutMs must be a non-negative number of ms, got ${timeoutMs}`));
  }

  get size(): number {
    return this.#waiters.size;
  }

  /** Resolved by `resolveAll`, settled by `settleAll`, or rejected with a TimeoutError after `timeoutMs`. */
  wait(timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(new DOMException(`the queue was not idle within ${timeoutMs} ms`, "TimeoutError"));
        }, timeoutMs);
      }
      this.#waiters.add(waiter);
    });
  }

  /** The queue became idle: every waiter hears so. */
  resolveAll(): void {
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.#waiters.clear();
  }

  /** After a stop: each waiter gets `outcome()` (whether the work was all done; a stopped queue does no more). */
  settleAll(outcome: () => Promise<void>): void {
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      outcome().then(waiter.resolve, waiter.reject);
    }
    this.#waiters.clear();
  }
}
