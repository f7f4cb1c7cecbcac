/**
 * One scan of a source serves everyone who asks while it is young enough: an inventory listing
 * before a tick and the check runs spread over the interval read the same scan, and callers asking
 * while a scan runs join it. A failed scan is remembered for a while (at least `failureHoldMs`, longer
 * when the server asked for it) and handed to the callers of that while without a new request: a
 * thousand evaluation jobs of one tick make one attempt against a struggling API, not a thousand.
 *
 * The scan itself is bounded by `scanTimeoutMs`, not by any one caller: a caller whose own deadline
 * ends stops waiting, the scan goes on for the others and its result is kept for the next caller.
 */
import { UpstreamError, isTransient } from "../../errors.ts";
import type { Clock } from "../../util/clock.ts";
import { raceAbort } from "../../util/abort.ts";

export interface ScanResult<T> {
  readonly value: T;
  /** Clock time the scan finished. */
  readonly at: number;
}

export interface SharedScanOptions {
  readonly clock: Clock;
  /** Bound of one scan, retries included. */
  readonly scanTimeoutMs: number;
  /** Shortest time a failure is handed out before the next attempt. Default 30 s. */
  readonly failureHoldMs?: number;
  /** How long a permanent failure (credentials, permissions, malformed answers) is handed out. Default 5 min. */
  readonly permanentHoldMs?: number;
}

export class SharedScan<T> {
  readonly #scan: (signal: AbortSignal, deadline: number) => Promise<T>;
  readonly #o: SharedScanOptions;
  #last: ScanResult<T> | undefined;
  #failure: { error: unknown; until: number } | undefined;
  #running: Promise<ScanResult<T>> | undefined;
  /** Scans started, for tests and benchmarks. */
  scans = 0;

  /** `scan` gets the scan's own signal and its deadline (epoch ms, wall clock). */
  constructor(scan: (signal: AbortSignal, deadline: number) => Promise<T>, options: SharedScanOptions) {
    this.#scan = scan;
    this.#o = options;
  }

  /** The last successful scan, whatever its age. */
  get last(): ScanResult<T> | undefined {
    return this.#last;
  }

  /**
   * A scan finished at most `maxAgeMs` ago, the one running, or a new one. Rejects with the last
   * failure while it is held, and with a transient error when `signal` ends the wait.
   */
  get(maxAgeMs: number, signal: AbortSignal): Promise<ScanResult<T>> {
    const now = this.#o.clock.now();
    if (this.#last && now - this.#last.at <= maxAgeMs) return Promise.resolve(this.#last);
    if (!this.#running && this.#failure && now < this.#failure.until) return Promise.reject(this.#failure.error);
    this.#running ??= this.#start();
    // The scan, or a transient error when `signal` ends first.
    return raceAbort(this.#running, signal, () => aborted(signal));
  }

  #start(): Promise<ScanResult<T>> {
    this.scans++;
    const signal = AbortSignal.timeout(this.#o.scanTimeoutMs);
    const run = this.#scan(signal, Date.now() + this.#o.scanTimeoutMs).then(
      (value) => {
        this.#last = { value, at: this.#o.clock.now() };
        this.#failure = undefined;
        return this.#last;
      },
      (err: unknown) => {
        const error = signal.aborted && !(err instanceof UpstreamError) ? new UpstreamError(true, `scan did not finish within ${this.#o.scanTimeoutMs} ms`, { cause: err }) : err;
        const transient = isTransient(error);
        const hint = error instanceof UpstreamError ? (error.retryAfterMs ?? 0) : 0;
        const hold = transient ? Math.max(this.#o.failureHoldMs ?? 30_000, hint) : (this.#o.permanentHoldMs ?? 300_000);
        this.#failure = { error, until: this.#o.clock.now() + hold };
        throw error;
      },
    );
    const settled = run.finally(() => {
      if (this.#running === settled) this.#running = undefined;
    });
    // Nobody may be waiting when the scan fails (every caller gave up); the failure is kept above.
    settled.catch(() => undefined);
    return settled;
  }
}

function aborted(signal: AbortSignal): UpstreamError {
  return new UpstreamError(true, "gave up waiting for the source scan (the run's deadline passed; the scan goes on for the next run)", { cause: signal.reason });
}
