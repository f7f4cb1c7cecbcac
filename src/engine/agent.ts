/**
 * The agent's lifecycle: starts its parts in dependency order (telemetry → store → queue → plugins →
 * API → scheduler), stops them in reverse, and reloads config on demand. The job handlers live in
 * `jobs.ts`, what the HTTP API asks of the agent in `service.ts`.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { LoadedConfig } from "../config/load.ts";
import type { PluginContext } from "../plugin/context.ts";
import type { StateStore } from "../store/contract.ts";
import type { IdleOptions, WorkQueue } from "../queue/contract.ts";
import { checkpoint, openDatabase } from "../db/sqlite.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import { EmbeddedQueue } from "../queue/embedded.ts";
import { createHttpClient, type HttpClient } from "../net/http.ts";
import { ApiServer } from "../http/server.ts";
import { Telemetry } from "../telemetry/metrics.ts";
import type { Logger } from "../telemetry/log.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { DEFAULT_USER_AGENT } from "../util/version.ts";
import { errorMessage, VigilError } from "../errors.ts";
import { Runtime } from "./runtime.ts";
import { SubjectIndex } from "./subjects.ts";
import { Evaluator } from "./evaluator.ts";
import { KeyedLock } from "./keyed-lock.ts";
import { Enforcer, ACTION_JOB, type ActionJob } from "./enforcer.ts";
import { Scheduler, EVALUATE_JOB, type EvaluateJob } from "./scheduler.ts";
import { evaluationHandler, failedJobRecorder } from "./jobs.ts";
import { AgentService, type EngineParts } from "./service.ts";
import { generatedApiToken } from "./api-token.ts";
import type { SsfReceiver } from "../signals/ssf/receiver.ts";
import type { SsfConfig } from "../signals/ssf/config.ts";
import { ssfHost } from "./ssf.ts";

const FLUSH_INTERVAL_MS = 5_000;

export interface AgentOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
}

export class Agent {
  /** What the HTTP API calls; usable in process too (tests, embedding). */
  readonly service: AgentService;
  #config: LoadedConfig;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #started = false;
  #stopping: Promise<void> | undefined;
  #ready = false;
  #db: DatabaseSync | undefined;
  #store: StateStore | undefined;
  #queue: WorkQueue | undefined;
  #runtime: Runtime | undefined;
  #index: SubjectIndex | undefined;
  #evaluator: Evaluator | undefined;
  #enforcer: Enforcer | undefined;
  #telemetry: Telemetry | undefined;
  #http: HttpClient | undefined;
  #api: ApiServer | undefined;
  #scheduler: Scheduler | undefined;
  #ssf: SsfReceiver | undefined;
  /** Builds the Shared Signals receiver (set once start has the store, queue and telemetry). */
  #createSsf: ((config: SsfConfig) => Promise<SsfReceiver>) | undefined;
  #ctx: PluginContext | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  /** Start-up enforcement, which runs beside the queue; settles (never rejects) when done. */
  #startup: Promise<void> | undefined;
  #caughtUp = false;
  #queueDepth: Record<string, { waiting: number; delayed: number; active: number; failed: number }> = {};
  #subjectCounts: Record<string, Record<string, number>> = {};

  constructor(config: LoadedConfig, options: AgentOptions) {
    this.#config = config;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.service = new AgentService({
      clock: this.#clock,
      mode: config.raw.agent.mode,
      parts: () => this.#parts(),
      lifecycle: () => ({ started: this.#started, stopping: this.#stopping !== undefined, ready: this.#ready, caughtUp: this.#caughtUp }),
    });
  }

  get config(): LoadedConfig {
    return this.#config;
  }

  get apiAddress(): { host: string; port: number } | undefined {
    return this.#api?.address;
  }

  get metricsAddress(): { host: string; port: number } | undefined {
    return this.#telemetry?.address;
  }

  /** The Shared Signals receiver, once started (its streams' health, for tests and embedding). */
  get ssf(): SsfReceiver | undefined {
    return this.#ssf;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const cfg = this.#config.raw;
    const dataDir = resolve(cfg.agent.data_dir);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });

    this.#telemetry = await Telemetry.start(
      {
        listen: cfg.agent.metrics.listen === false ? undefined : cfg.agent.metrics.listen,
        ...(cfg.agent.metrics.otlp ? { otlp: { endpoint: cfg.agent.metrics.otlp.endpoint, headers: cfg.agent.metrics.otlp.headers, interval_ms: cfg.agent.metrics.otlp.interval } } : {}),
      },
      this.#logger,
    );
    const metrics = this.#telemetry.metrics;
    this.#db = openDatabase(dataDir, { manualCheckpoint: true });
    const store = new EmbeddedStore(this.#db, dataDir, { clock: this.#clock });
    const queue = new EmbeddedQueue(this.#db, { clock: this.#clock, logger: this.#logger, drainTimeoutMs: cfg.agent.shutdown_timeout });
    this.#store = store;
    this.#queue = queue;
    this.#http = createHttpClient({ userAgent: DEFAULT_USER_AGENT });
    this.#ctx = {
      clock: this.#clock,
      logger: this.#logger,
      meter: this.#telemetry.meter,
      tracer: this.#telemetry.tracer,
      http: this.#http,
      dataDir,
      configDir: this.#config.dir,
    };
    const runtime = new Runtime(this.#config, this.#ctx);
    this.#runtime = runtime;
    const index = new SubjectIndex(runtime.inventories, this.#logger);
    this.#index = index;
    await index.refresh();
    const lock = new KeyedLock();
    const evaluator = new Evaluator({ store, index, metrics, ctx: this.#ctx, runtime, lock });
    this.#evaluator = evaluator;
    const enforcer = new Enforcer({ store, queue, index, metrics, clock: this.#clock, logger: this.#logger, runtime, lock });
    this.#enforcer = enforcer;
    this.#scheduler = new Scheduler({ queue, index, logger: this.#logger, now: () => this.#clock.now() });

    queue.process<EvaluateJob>(EVALUATE_JOB, evaluationHandler({ evaluator, enforcer, queue, clock: this.#clock }), { concurrency: cfg.agent.concurrency.evaluations });
    queue.process<ActionJob>(ACTION_JOB, (job) => enforcer.run(job), { concurrency: cfg.agent.concurrency.actions });
    queue.onFailed(failedJobRecorder({ store, logger: this.#logger }));
    await store.start();
    await queue.start();

    metrics.setObservers({
      queueDepth: () => this.#queueDepth,
      subjects: () => this.#subjectCounts,
      paused: () => enforcer.paused(),
      circuits: () => this.#runtime?.circuits() ?? {},
    });

    // Shared Signals receiver: loaded only when transmitters are configured (an agent without them
    // never pays for its modules), built before the API serves its push route, started once the API
    // listens (a transmitter may push the verification event as soon as the stream exists).
    const db = this.#db;
    const http = this.#http;
    const meter = this.#telemetry.meter;
    this.#createSsf = async (config) => {
      const { SsfReceiver } = await import("../signals/ssf/receiver.ts");
      return new SsfReceiver({ config, db, http, clock: this.#clock, logger: this.#logger, meter, host: ssfHost({ service: this.service, index, store, metrics }) });
    };
    if (cfg.signals.ssf.transmitters.length > 0) this.#ssf = await this.#createSsf(cfg.signals.ssf);

    const token = cfg.agent.api.token ?? generatedApiToken(dataDir, this.#logger);
    const am = cfg.signals.alertmanager;
    this.#api = new ApiServer({
      listen: cfg.agent.api.listen,
      token,
      maxBodyBytes: cfg.agent.api.max_body_bytes,
      maxConnections: cfg.agent.api.max_connections,
      api: this.service,
      logger: this.#logger,
      metrics,
      alertmanager: { subject_label: am.subject_label, check_label: am.check_label, default_check: am.default_check, severity_label: am.severity_label, severities: am.severities, ttl_ms: am.ttl },
      ssf: () => this.#ssf,
    });
    await this.#api.start();
    this.#ssf?.start();

    await enforcer.loadGuards();
    this.#scheduler.schedule(runtime);
    await this.#initialPass(runtime, "start");
    this.#startup = enforcer
      .flush()
      .then(() => enforcer.reconcile())
      .catch((err: unknown) => this.#logger.error({ err }, `start-up enforcement failed: ${errorMessage(err)}`))
      .finally(() => {
        this.#caughtUp = true;
      });
    this.#flushTimer = setInterval(() => void this.#housekeeping(), FLUSH_INTERVAL_MS);
    this.#flushTimer.unref();
    await this.#refreshGauges();
    this.#ready = true;
    this.#logger.info(
      { api: this.#api.address, metrics: this.#telemetry.address ?? null, data_dir: dataDir, policies: runtime.policies.length, subjects: index.size, dry_run: cfg.agent.dry_run },
      "vigil started",
    );
  }

  /** Stops in reverse order; in-flight jobs get the shutdown timeout to finish. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ready = false;
      if (this.#flushTimer) clearInterval(this.#flushTimer);
      this.#scheduler?.stop();
      // Stream upkeep and polls end first (the last acknowledgements need the store); pushes are answered until the API closes.
      await this.#ssf?.stop().catch((err: unknown) => this.#logger.warn({ err }, "SSF receiver stop failed"));
      // The API's in-flight requests and the queue's in-flight jobs drain side by side, so the
      // whole stop stays within the larger of the two bounds (5 s, shutdown_timeout).
      await Promise.all([this.#api?.stop().catch((err: unknown) => this.#logger.warn({ err }, "API stop failed")), this.#queue?.stop()]);
      await this.#runtime?.stop();
      await this.#store?.stop();
      await this.#http?.close();
      await this.#telemetry?.stop();
      this.#db?.close();
      this.#logger.info("vigil stopped");
    })();
    return this.#stopping;
  }

  /** Swaps in a new, already validated config. Listener addresses and data_dir need a restart. */
  async reload(next: LoadedConfig): Promise<void> {
    const parts = this.#parts();
    if (!this.#ctx || !parts || !this.#scheduler) throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
    const before = this.#config.raw.agent;
    const after = next.raw.agent;
    for (const [key, a, b] of [
      ["agent.api.listen", before.api.listen, after.api.listen],
      ["agent.metrics.listen", before.metrics.listen, after.metrics.listen],
      ["agent.data_dir", before.data_dir, after.data_dir],
      ["agent.mode", before.mode, after.mode],
    ] as const) {
      if (a !== b) this.#logger.warn({ key }, `${key} changed; it takes effect at the next restart`);
    }
    const { index, evaluator, enforcer, store } = parts;
    const runtime = new Runtime(next, this.#ctx);
    const old = parts.runtime;
    this.#config = next;
    this.#runtime = runtime;
    evaluator.runtime = runtime;
    enforcer.runtime = runtime;
    await enforcer.loadGuards();
    index.replace(runtime.inventories, JSON.stringify(old.config.raw.inventories) === JSON.stringify(next.raw.inventories));
    await index.refresh();
    if (this.#ssf) await this.#ssf.reload(next.raw.signals.ssf);
    else if (next.raw.signals.ssf.transmitters.length > 0 && this.#createSsf) {
      this.#ssf = await this.#createSsf(next.raw.signals.ssf);
      this.#ssf.start();
    }
    this.#scheduler.schedule(runtime);
    await old.stop();
    await store.appendAudit([{ type: "config_reloaded", file: next.file, policies: runtime.policies.map((p) => p.name) }]);
    await this.#initialPass(runtime, "reload");
    await enforcer.reconcile();
    this.#logger.info({ policies: runtime.policies.length, subjects: index.size }, "configuration reloaded");
  }

  /**
   * Resolves once the work known so far is done: start-up enforcement has run and the queue is idle
   * (`WorkQueue.idle()`: no job active or due; jobs delayed into the future do not count). Rejects
   * with `VIGIL_ERR_SHUTDOWN` before start or when a stop leaves work undone, and with a
   * `TimeoutError` after `timeoutMs`.
   */
  async idle(options: IdleOptions = {}): Promise<void> {
    const queue = this.#queue;
    if (!queue || !this.#startup) throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
    const { timeoutMs } = options;
    if (timeoutMs === undefined) {
      await this.#startup;
      return queue.idle();
    }
    const began = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DOMException(`the agent was not idle within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
    });
    try {
      await Promise.race([this.#startup, late]);
    } finally {
      clearTimeout(timer);
    }
    await queue.idle({ timeoutMs: Math.max(0, timeoutMs - (Date.now() - began)) });
  }

  /** Counts a SIGHUP reload attempt. */
  configReloaded(outcome: "success" | "failure"): void {
    this.#telemetry?.metrics.configReload(outcome);
  }

  async #initialPass(runtime: Runtime, trigger: "start" | "reload"): Promise<void> {
    for (const policy of runtime.policies) await this.#scheduler!.tick(runtime, policy, trigger, 0);
  }

  async #housekeeping(): Promise<void> {
    try {
      await this.#enforcer?.flush();
      await this.#refreshGauges();
      if (this.#db?.isOpen) checkpoint(this.#db);
    } catch (err) {
      this.#logger.warn({ err }, `housekeeping failed: ${errorMessage(err)}`);
    }
  }

  /** Gauges are read from caches refreshed here, so a scrape never waits on the store. */
  async #refreshGauges(): Promise<void> {
    if (!this.#queue || !this.#store) return;
    this.#queueDepth = await this.#queue.depth();
    this.#subjectCounts = await this.#store.countByAccess();
  }

  /** Every part, once start has built them all. */
  #parts(): EngineParts | undefined {
    if (!this.#index || !this.#store || !this.#runtime || !this.#evaluator || !this.#enforcer || !this.#queue) return undefined;
    return { index: this.#index, store: this.#store, runtime: this.#runtime, evaluator: this.#evaluator, enforcer: this.#enforcer, queue: this.#queue };
  }
}
