/**
 * RFC 8936 poll delivery: long polls (`returnImmediately: false`) for at most `max_events` SETs; each
 * SET is validated and, once its signals are durable, acknowledged in the next request (`ack`); a
 * refused SET is reported there too (`setErrs`, with its RFC 8935 code). A SET that could not be
 * handled for a reason of vigil's own (the store, the keys) is neither: the transmitter delivers it
 * again. Failed polls back off exponentially; on stop the acknowledgements still owed are sent.
 */
import { backoffDelay } from "../../util/backoff.ts";
import { UpstreamError, errorMessage } from "../../errors.ts";
import type { Logger } from "../../telemetry/log.ts";
import type { PollAnswer } from "./client.ts";
import type { SetErrorCode } from "./set.ts";

/** What became of one polled SET. */
export type PolledOutcome = { readonly kind: "ack" } | { readonly kind: "error"; readonly err: SetErrorCode; readonly description: string } | { readonly kind: "retry" };

export interface PollerOptions {
  readonly transmitter: string;
  readonly maxEvents: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** One poll request. */
  poll(body: { maxEvents: number; returnImmediately: boolean; ack: readonly string[]; setErrs: Readonly<Record<string, { err: string; description: string }>> }, timeoutMs: number, signal: AbortSignal): Promise<PollAnswer>;
  /** Handles one SET; never throws. */
  handle(jws: string): Promise<PolledOutcome>;
  /** Polls are failing (message) or work again (undefined). */
  onHealth(problem: string | undefined): void;
}

const BACKOFF = { delay: 1_000, max_delay: 300_000 };
/** Longest wait for the last acknowledgements at stop. */
const FLUSH_TIMEOUT_MS = 5_000;

export class Poller {
  readonly #o: PollerOptions;
  readonly #abort = new AbortController();
  #ack: string[] = [];
  #errs: Record<string, { err: string; description: string }> = {};
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** Polls answered, for tests. */
  polls = 0;

  constructor(options: PollerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Ends the loop (aborting a long poll), then sends the acknowledgements still owed. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#wake?.();
    await this.#loop;
    if (this.#ack.length === 0 && Object.keys(this.#errs).length === 0) return;
    try {
      await this.#o.poll({ maxEvents: 0, returnImmediately: true, ack: this.#ack, setErrs: this.#errs }, FLUSH_TIMEOUT_MS, AbortSignal.timeout(FLUSH_TIMEOUT_MS));
      this.#ack = [];
      this.#errs = {};
    } catch (err) {
      // The transmitter delivers them again after the restart; vigil recognises their jtis.
      this.#o.logger.warn({ transmitter: this.#o.transmitter, err }, `ssf ${this.#o.transmitter}: could not send the last acknowledgements: ${errorMessage(err)}`);
    }
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    let retrying = 0;
    while (!signal.aborted) {
      const ack = this.#ack;
      const setErrs = this.#errs;
      let answer: PollAnswer;
      try {
        answer = await this.#o.poll({ maxEvents: this.#o.maxEvents, returnImmediately: false, ack, setErrs }, this.#o.timeoutMs, signal);
      } catch (err) {
        if (signal.aborted) return;
        // A long poll the transmitter held past our deadline is not a failure; anything else backs off.
        const timedOut = err instanceof UpstreamError && /timed out/.test(err.message);
        if (timedOut) continue;
        failures++;
        const delay = backoffDelay(failures, BACKOFF, err instanceof UpstreamError ? (err.retryAfterMs ?? 0) : 0);
        this.#o.onHealth(`polls failing: ${errorMessage(err).slice(0, 300)}`);
        this.#o.logger.warn({ transmitter: this.#o.transmitter, err, retry_in_ms: delay }, `ssf ${this.#o.transmitter}: poll failed: ${errorMessage(err)}`);
        await this.#sleep(delay);
        continue;
      }
      this.polls++;
      if (failures > 0) this.#o.onHealth(undefined);
      failures = 0;
      // The transmitter has these now; what the answer brings is owed in the next request.
      if (this.#ack === ack) this.#ack = [];
      if (this.#errs === setErrs) this.#errs = {};
      let retried = 0;
      for (const [jti, jws] of Object.entries(answer.sets)) {
        const outcome = await this.#o.handle(jws);
        if (outcome.kind === "ack") this.#ack.push(jti);
        else if (outcome.kind === "error") this.#errs[jti] = { err: outcome.err, description: outcome.description };
        else retried++;
      }
      const received = Object.keys(answer.sets).length;
      if (received > 0 && retried === received) {
        // Nothing could be handled (no keys yet, the store failing): the transmitter will offer the
        // same SETs again, so wait as after a failed poll instead of fetching them at once.
        retrying++;
        await this.#sleep(backoffDelay(retrying, BACKOFF));
        continue;
      }
      retrying = 0;
      if (!answer.moreAvailable && received === 0 && this.#ack.length === 0) {
        // An empty answer to a long poll: the transmitter did not hold it. Do not spin.
        await this.#sleep(1_000);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
