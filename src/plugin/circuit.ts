/**
 * A circuit breaker per provider: after `failures` transient failures in a row the API is left
 * alone for `open_for` (doubling while it keeps failing, up to `max_open_for`); then one trial
 * call goes through (half-open). A success closes the circuit. Permanent errors (400, 403, 404)
 * mean the API is up and answering, so they do not count.
 *
 * While open, calls fail at once with a transient `UpstreamError` whose `retryAfterMs` is the time
 * left, so the durable queue waits instead of hammering the API and nothing is dropped.
 */
import { z } from "zod";
import { UpstreamError } from "../errors.ts";
import type { Clock } from "../util/clock.ts";
import { isTransient } from "../errors.ts";
import { boundedDuration } from "./schema.ts";

export type CircuitState = "closed" | "open" | "half_open";

export interface CircuitOptions {
  /** Transient failures in a row that open the circuit. Default 5. */
  readonly failures: number;
  /** First open period in ms. Default 30000. */
  readonly open_for: number;
  /** Longest open period in ms. Default 300000. */
  readonly max_open_for: number;
}

export const DEFAULT_CIRCUIT: CircuitOptions = { failures: 5, open_for: 30_000, max_open_for: 300_000 };

const duration = (fallback: string) => boundedDuration({ min: 1, fallback, message: 'expected a duration like "30s"' });

/** `circuit:` in a provider entry. */
export const circuitSchema = z
  .object({
    /** Transient failures in a row that open the circuit. Default 5. */
    failures: z.number().int().min(1).max(1000).default(5),
    /** How long the API is left alone after the circuit opens; doubles while trials fail. Default 30s. */
    open_for: duration("30s"),
    /** Longest open period. Default 5m. */
    max_open_for: duration("5m"),
  })
  .strict()
  .prefault({});

export interface CircuitListener {
  (state: CircuitState, provider: string): void;
}

export class CircuitBreaker {
  readonly provider: string;
  readonly #options: CircuitOptions;
  readonly #clock: Clock;
  readonly #onChange: CircuitListener | undefined;
  #state: CircuitState = "closed";
  #consecutive = 0;
  #openedAt = 0;
  #openFor: number;
  #trial = false;

  constructor(provider: string, clock: Clock, options: Partial<CircuitOptions> = {}, onChange?: CircuitListener) {
    this.provider = provider;
    this.#clock = clock;
    this.#options = { ...DEFAULT_CIRCUIT, ...options };
    this.#openFor = this.#options.open_for;
    this.#onChange = onChange;
  }

  get state(): CircuitState {
    if (this.#state === "open" && this.#clock.now() >= this.#openedAt + this.#openFor) return "half_open";
    return this.#state;
  }

  /** Runs `fn` unless the circuit is open; counts its outcome. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // Whether this very call is the half-open trial: a call admitted earlier, while closed, may still
    // be in flight and must not be taken for it.
    const trial = this.#admit();
    try {
      const value = await fn();
      this.#success(trial);
      return value;
    } catch (err) {
      this.#failure(err, trial);
      throw err;
    }
  }

  /** Throws while open; true when the call is admitted as the half-open trial. */
  #admit(): boolean {
    const state = this.state;
    if (state === "closed") return false;
    if (state === "half_open" && !this.#trial) {
      this.#trial = true;
      if (this.#state !== "half_open") this.#set("half_open");
      return true;
    }
    const left = Math.max(1, this.#openedAt + this.#openFor - this.#clock.now());
    throw new UpstreamError(true, `${this.provider}: circuit open after ${this.#consecutive} failures in a row; next try in ${Math.ceil(left / 1000)} s`, {
      retryAfterMs: state === "half_open" ? 1_000 : left,
      details: { provider: this.provider, circuit: state },
    });
  }

  #success(trial: boolean): void {
    this.#consecutive = 0;
    if (trial) this.#trial = false;
    this.#openFor = this.#options.open_for;
    if (this.#state !== "closed") this.#set("closed");
  }

  #failure(err: unknown, trial: boolean): void {
    if (trial) this.#trial = false;
    if (!isTransient(err)) {
      // The API answered; a permanent error says nothing about its health.
      if (trial) this.#success(true);
      return;
    }
    this.#consecutive++;
    if (trial) {
      this.#openFor = Math.min(this.#openFor * 2, this.#options.max_open_for);
      this.#open();
    } else if (this.#state === "closed" && this.#consecutive >= this.#options.failures) {
      this.#open();
    }
  }

  #open(): void {
    this.#openedAt = this.#clock.now();
    this.#set("open");
  }

  #set(state: CircuitState): void {
    this.#state = state;
    this.#onChange?.(state, this.provider);
  }
}
