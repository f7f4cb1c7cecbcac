/**
 * The Shared Signals receiver: every configured transmitter, the RFC 8935 push answers, the `jti`
 * memory and its pruning, the metrics, and what readiness reports. The agent owns its lifecycle
 * (`start` after the API listens, `stop` before it closes, `reload` with the new config).
 */
import type { DatabaseSync } from "node:sqlite";
import type { Meter } from "@opentelemetry/api";
import type { HttpClient } from "../../net/http.ts";
import type { Logger } from "../../telemetry/log.ts";
import type { Clock } from "../../util/clock.ts";
import { errorMessage } from "../../errors.ts";
import type { SsfConfig } from "./config.ts";
import { SOLE_INSTANCE, type SsfHost, type StreamCoordinator } from "./host.ts";
import { createSsfMetrics, NOOP_SSF_METRICS, type SsfMetrics } from "./metrics.ts";
import type { SetErrorCode } from "./set.ts";
import { SsfStore } from "./store.ts";
import { Transmitter, type TransmitterHealth } from "./transmitter.ts";

/** The RFC 8935 media type of a pushed SET. */
export const SET_MEDIA_TYPE = "application/secevent+jwt";
/** How often forgotten-by-age `jti`s are pruned. */
const PRUNE_INTERVAL_MS = 60_000;
/** A transmitter that left the config keeps its `jti`s this long, in case it comes back. */
const FALLBACK_AGE_S = 7 * 86_400;
/** Seconds a transmitter is asked to wait when vigil cannot judge a SET yet. */
const RETRY_AFTER_S = 30;

export type PushAnswer =
  | { readonly status: 202 }
  | { readonly status: 400; readonly err: SetErrorCode; readonly description: string }
  | { readonly status: 503; readonly description: string; readonly retryAfterSeconds: number };

export interface PushRequest {
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  /** Reads the body with a cap; `too_large` when it holds more. */
  readBody(maxBytes: number): Promise<Buffer | "too_large">;
}

export interface SsfReceiverOptions {
  readonly config: SsfConfig;
  readonly db: DatabaseSync;
  readonly http: HttpClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Without one no metrics are recorded (tests, one-shot commands). */
  readonly meter?: Meter;
  readonly host: SsfHost;
  readonly coordinator?: StreamCoordinator;
}

export class SsfReceiver {
  readonly #o: SsfReceiverOptions;
  readonly #store: SsfStore;
  readonly #metrics: SsfMetrics;
  #config: SsfConfig;
  #transmitters = new Map<string, Transmitter>();
  #prune: NodeJS.Timeout | undefined;
  #started = false;

  constructor(options: SsfReceiverOptions) {
    this.#o = options;
    this.#config = options.config;
    this.#store = new SsfStore(options.db);
    this.#metrics = options.meter
      ? createSsfMetrics(options.meter, () =>
          [...this.#transmitters.values()].map((t) => {
            const h = t.health();
            return { transmitter: t.name, degraded: h.degraded, overdue: h.verification_overdue, verifiedAt: h.verified_at };
          }),
        )
      : NOOP_SSF_METRICS;
    for (const t of options.config.transmitters) this.#transmitters.set(t.name, this.#create(t));
  }

  /** Starts every transmitter's bring-up in the background and the pruning of old `jti`s. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const t of this.#transmitters.values()) t.start();
    this.#prune = setInterval(() => this.#pruneNow(), PRUNE_INTERVAL_MS);
    this.#prune.unref();
    this.#pruneNow();
  }

  /** Ends background work; pushes are still answered until the API closes. */
  async stop(): Promise<void> {
    this.#started = false;
    if (this.#prune) clearInterval(this.#prune);
    await Promise.all([...this.#transmitters.values()].map((t) => t.stop()));
  }

  /**
   * Applies a new `signals.ssf`: a transmitter whose config is unchanged keeps running, a changed one
   * is started again (adopting its stream and updating it), a removed one is stopped and its
   * managed stream deleted at the transmitter.
   */
  async reload(config: SsfConfig): Promise<void> {
    const before = this.#transmitters;
    const next = new Map<string, Transmitter>();
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const baseChanged = !same(this.#config.public_url, config.public_url);
    for (const t of config.transmitters) {
      const old = before.get(t.name);
      if (old && same(old.config, t) && !baseChanged) next.set(t.name, old);
      else {
        if (old) await old.stop();
        next.set(t.name, this.#create(t, config));
      }
    }
    for (const [name, old] of before) {
      if (!next.has(name)) await old.remove();
    }
    this.#config = config;
    this.#transmitters = next;
    if (this.#started) for (const t of next.values()) t.start();
  }

  /** Answers one RFC 8935 push. Throws only for the agent's own failures (answered 5xx). */
  async push(name: string, req: PushRequest): Promise<PushAnswer> {
    const t = this.#transmitters.get(name);
    if (t === undefined || t.delivery !== "push" || !t.authorizes(req.authorization)) {
      // One answer for an unknown name and a wrong credential: the push URL tells nothing about what is configured.
      this.#metrics.set(t === undefined ? "unknown" : t.name, "authentication_failed");
      return { status: 400, err: "authentication_failed", description: "the Authorization header is missing or not the one this stream requires" };
    }
    if (t.refused) {
      this.#metrics.set(t.name, "access_denied");
      return { status: 400, err: "access_denied", description: "vigil refused this stream (its iss is not the transmitter's issuer); nothing is accepted on it until the configuration is reloaded" };
    }
    const type = req.contentType?.split(";")[0]?.trim().toLowerCase();
    if (type !== SET_MEDIA_TYPE) {
      this.#metrics.set(t.name, "invalid_request");
      return { status: 400, err: "invalid_request", description: `the body must be ${SET_MEDIA_TYPE}` };
    }
    const body = await req.readBody(t.config.max_set_bytes);
    if (body === "too_large") {
      this.#metrics.set(t.name, "invalid_request");
      return { status: 400, err: "invalid_request", description: `the SET is larger than ${t.config.max_set_bytes} bytes` };
    }
    const outcome = await t.deliver(body.toString("latin1"));
    if (outcome.kind === "ok") return { status: 202 };
    if (outcome.kind === "refused") return { status: 400, err: outcome.error.err, description: outcome.error.message };
    return { status: 503, description: outcome.description, retryAfterSeconds: RETRY_AFTER_S };
  }

  health(): TransmitterHealth[] {
    return [...this.#transmitters.values()].map((t) => t.health());
  }

  /** One line per degraded stream, for `/readyz`: detail only, never a reason to be unready. */
  degraded(): string[] {
    return this.health()
      .filter((h) => h.degraded)
      .map((h) => `ssf ${h.transmitter}: ${h.problems.join("; ")}`);
  }

  /** A configured transmitter (tests). */
  transmitter(name: string): Transmitter | undefined {
    return this.#transmitters.get(name);
  }

  /** `jti`s remembered (tests, the bench). */
  remembered(): number {
    return this.#store.count();
  }

  #create(t: SsfConfig["transmitters"][number], config = this.#config): Transmitter {
    return new Transmitter({
      config: t,
      ssf: config,
      http: this.#o.http,
      clock: this.#o.clock,
      logger: this.#o.logger,
      store: this.#store,
      host: this.#o.host,
      metrics: this.#metrics,
      coordinator: this.#o.coordinator ?? SOLE_INSTANCE,
    });
  }

  #pruneNow(): void {
    try {
      const ages = new Map([...this.#transmitters.values()].map((t) => [t.name, Math.ceil(t.config.max_set_age / 1000) + Math.ceil(t.config.clock_skew / 1000)] as const));
      this.#store.prune(Math.floor(this.#o.clock.now() / 1000), ages, FALLBACK_AGE_S, this.#config.max_remembered);
    } catch (err) {
      this.#o.logger.warn({ err }, `ssf: pruning remembered jtis failed: ${errorMessage(err)}`);
    }
  }
}
