/**
 * The agent's lifecycle: starts its parts in dependency order (telemetry → store → queue → plugins →
 * API → scheduler), stops them in reverse, and reloads config on demand. The job handlers live in
 * `jobs.ts`, what the HTTP API asks of the agent in `service.ts`.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import type { PluginContext } from "../plugin/context.ts";
import { SharedResources } from "../plugin/shared.ts";
import type { StateStore } from "../store/contract.ts";
import type { IdleOptions, WorkQueue } from "../queue/contract.ts";
import { resolveAuditKey } from "../store/audit-key.ts";
import { createHttpClient, type HttpClient } from "../net/http.ts";
import { ApiServer } from "../http/server.ts";
import { Telemetry } from "../telemetry/metrics.ts";
import type { Logger } from "../telemetry/log.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { DEFAULT_USER_AGENT } from "../util/version.ts";
import { errorMessage, VigilError } from "../errors.ts";
import { Runtime } from "./runtime.ts";
import { SubjectIndex, listAll } from "./subjects.ts";
import type { Subject } from "../policy/model.ts";
import type { StoredState } from "../store/contract.ts";
import { Evaluator } from "./evaluator.ts";
import { Enforcer, ACTION_JOB, type ActionJob } from "./enforcer.ts";
import { Scheduler, EVALUATE_JOB, type EvaluateJob } from "./scheduler.ts";
import { evaluationHandler, failedJobRecorder } from "./jobs.ts";
import { AgentService, type EngineParts } from "./service.ts";
import { CheckpointSink } from "./checkpoint-sink.ts";
import { generatedApiToken } from "./api-token.ts";
import type { SsfReceiver } from "../signals/ssf/receiver.ts";
import type { SsfConfig } from "../signals/ssf/config.ts";
import { ssfHost } from "./ssf.ts";
import { openEmbedded, type Backend } from "./backend.ts";
import type { ClusterBackend } from "./cluster.ts";
import { ClusterScheduler, TICK_JOB, type TickJob } from "./cluster-scheduler.ts";

/** Housekeeping runs this long after work (a job ran) or while an inventory has not listed yet… */
const HOUSEKEEPING_BUSY_MS = 5_000;
/**
 * …and this long after a pass that followed no work: nothing it refreshes (gauges, WAL, flush) has
 * changed then, so an idle agent wakes about once a minute for it instead of every 5 s. Re-drives
 * and delayed jobs keep their own timers, armed to their due times. Each further pass without work
 * doubles the wait, up to HOUSEKEEPING_IDLE_MAX_MS: what is left for them (pruning expired results)
 * can wait minutes, and each pass is CPU an idle sidecar would otherwise spend every minute.
 */
const HOUSEKEEPING_IDLE_MS = 60_000;
const HOUSEKEEPING_IDLE_MAX_MS = 300_000;
/** The queue's safety-net scan for due jobs (delayed jobs arm their own timer; no other process writes it). */
const QUEUE_POLL_MS = 60_000;

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
  #backend: Backend | undefined;
  /** Cluster mode: aborts the wait for Redis when a stop is asked for during start. */
  readonly #startAbort = new AbortController();
  /** Cluster mode: why start is still waiting (Redis out of reach), for `/readyz`. */
  #waiting: string | undefined;
  #checkpointSink: CheckpointSink | undefined;
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
  #housekeepingTimer: NodeJS.Timeout | undefined;
  /** When the armed housekeeping pass is due (epoch ms, wall clock). */
  #housekeepingAt = Infinity;
  /** Housekeeping passes in a row that followed no work. */
  #idlePasses = 0;
  /** A job ran since the last housekeeping pass began. */
  #worked = false;
  /** Start-up enforcement, which runs beside the queue; settles (never rejects) when done. */
  #startup: Promise<void> | undefined;
  #caughtUp = false;
  #queueDepth: Record<string, { waiting: number; delayed: number; active: number; failed: number }> = {};
  #subjectCounts: Record<string, Record<string, number>> = {};
  /** Removals are handled one batch at a time, in order. */
  #removals: Promise<void> = Promise.resolve();
  /** Subjects that left while the agent was down are looked for once, after the first complete listing. */
  #baselineChecked = false;
  #coveredCache: { runtime: Runtime; version: string; counts: Record<string, number> } | undefined;

  constructor(config: LoadedConfig, options: AgentOptions) {
    this.#config = config;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.service = new AgentService({
      clock: this.#clock,
      mode: config.raw.agent.mode,
      parts: () => this.#parts(),
      lifecycle: () => ({
        started: this.#started,
        stopping: this.#stopping !== undefined,
        ready: this.#ready,
        caughtUp: this.#caughtUp,
        unloaded: (this.#index?.status() ?? []).filter((s) => !s.loaded).map((s) => s.label),
        unavailable: this.#backend ? this.#backend.unavailable() : this.#waiting ? [this.#waiting] : [],
      }),
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
    const cluster = cfg.agent.mode === "cluster";
    const dataDir = resolve(cfg.agent.data_dir);
    // Cluster mode keeps nothing on local disk.
    if (!cluster) mkdirSync(dataDir, { recursive: true, mode: 0o700 });

    this.#telemetry = await Telemetry.start(
      {
        listen: cfg.agent.metrics.listen === false ? undefined : cfg.agent.metrics.listen,
        ...(cfg.agent.metrics.otlp ? { otlp: { endpoint: cfg.agent.metrics.otlp.endpoint, headers: cfg.agent.metrics.otlp.headers, interval_ms: cfg.agent.metrics.otlp.interval } } : {}),
      },
      this.#logger,
    );
    const metrics = this.#telemetry.metrics;
    const auditKey = resolveAuditKey({ configured: cfg.agent.audit.key, dataDir, create: true })!;
    if (auditKey.generated) {
      this.#logger.warn(
        { key_file: auditKey.source, key_id: auditKey.key.id },
        `agent.audit.key is not set: generated the audit log's key into ${auditKey.source} (mode 0600). Back it up: \`vigil audit verify\` needs it. Set agent.audit.key to use a key of your own`,
      );
    }
    // A cluster replica answers /healthz and /readyz (not ready, with the reason) while it waits for Redis.
    if (cluster) await this.#startApi(dataDir);
    const backend = cluster ? await this.#openCluster(auditKey.key) : this.#openEmbedded(dataDir, auditKey.key);
    this.#backend = backend;
    const { store, queue } = backend;
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
      // One per agent, kept across reloads, so a source unchanged by a reload keeps its cached data.
      shared: new SharedResources(),
      state: store,
    };
    const runtime = new Runtime(this.#config, this.#ctx);
    this.#runtime = runtime;
    const index = new SubjectIndex(runtime.inventories, this.#logger, {
      labels: inventoryLabels(this.#config),
      hooks: {
        inventoryFailed: (label, error, kept, first) => {
          metrics.inventoryError(label);
          if (first) this.#audit([{ type: "inventory_failed", inventory: label, error, kept_subjects: kept }]);
        },
        inventoryRecovered: (label) => this.#audit([{ type: "inventory_recovered", inventory: label }]),
        removed: (subjects) => this.#subjectsRemoved(subjects.map((s) => s.id)),
      },
    });
    this.#index = index;
    await index.refresh();
    // Shared by evaluator, enforcer and removals: one subject's decision is worked out by one of them at a time.
    const lock = backend.subjectLock;
    const evaluator = new Evaluator({ store, index, metrics, ctx: this.#ctx, runtime, lock });
    this.#evaluator = evaluator;
    const enforcer = new Enforcer({ store, queue, index, metrics, clock: this.#clock, logger: this.#logger, runtime, lock, jobLock: backend.jobLock });
    this.#enforcer = enforcer;
    const now = () => this.#clock.now();
    if (backend.mode === "cluster") {
      const c = backend as ClusterBackend;
      const scheduler = new ClusterScheduler({ queue: c.queue, index, logger: this.#logger, now, token: () => c.token(), fence: (t) => c.fence(t) });
      queue.process<TickJob>(TICK_JOB, scheduler.tickHandler(), { concurrency: 1 });
      this.#scheduler = scheduler;
    } else {
      this.#scheduler = new Scheduler({ queue, index, logger: this.#logger, now });
    }

    const evaluate = evaluationHandler({ evaluator, enforcer, queue, clock: this.#clock });
    queue.process<EvaluateJob>(
      EVALUATE_JOB,
      (job) => {
        this.#workedNow();
        return evaluate(job);
      },
      { concurrency: cfg.agent.concurrency.evaluations },
    );
    queue.process<ActionJob>(
      ACTION_JOB,
      (job) => {
        this.#workedNow();
        return enforcer.run(job);
      },
      { concurrency: cfg.agent.concurrency.actions },
    );
    queue.onFailed(failedJobRecorder({ store, logger: this.#logger }));
    await store.start();
    await queue.start();

    metrics.setObservers({
      queueDepth: () => this.#queueDepth,
      subjects: () => this.#subjectCounts,
      paused: () => enforcer.paused(),
      circuits: () => this.#runtime?.circuits() ?? {},
      inventories: () => Object.fromEntries((this.#index?.status() ?? []).map((s) => [s.label, !s.loaded || s.failing])),
      unreconciled: () => enforcer.unreconciled(),
      ...(backend.mode === "cluster"
        ? { cluster: () => ({ redis_up: (backend as ClusterBackend).redisUp(), leader: backend.leader(), running: (backend as ClusterBackend).queue.running() }) }
        : {}),
    });

    // Shared Signals receiver: loaded only when transmitters are configured (an agent without them
    // never pays for its modules), built before the API serves its push route, started once the API
    // listens (a transmitter may push the verification event as soon as the stream exists). It keeps
    // its streams and seen jtis in the embedded database; cluster mode refuses transmitters at load.
    const db = backend.db;
    const http = this.#http;
    const meter = this.#telemetry.meter;
    this.#createSsf = async (config) => {
      if (!db) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", "signals.ssf: the Shared Signals receiver needs agent.mode embedded");
      const { SsfReceiver } = await import("../signals/ssf/receiver.ts");
      return new SsfReceiver({ config, db, http, clock: this.#clock, logger: this.#logger, meter, host: ssfHost({ service: this.service, index, store, metrics }) });
    };
    if (cfg.signals.ssf.transmitters.length > 0) this.#ssf = await this.#createSsf(cfg.signals.ssf);

    if (!cluster) await this.#startApi(dataDir);
    this.#ssf?.start();

    await enforcer.loadGuards();
    this.#scheduler.schedule(runtime);
    if (backend.mode === "cluster") await (backend as ClusterBackend).elect();
    await this.#checkBaseline();
    await this.#initialPass(runtime, "start");
    // Start-up enforcement picks up what the previous run left (in cluster mode the leader's, for the cluster).
    this.#startup = (backend.leader() ? enforcer.flush().then(() => enforcer.reconcile()).then(() => enforcer.redrive()) : Promise.resolve())
      .catch((err: unknown) => this.#logger.error({ err }, `start-up enforcement failed: ${errorMessage(err)}`))
      .finally(() => {
        this.#caughtUp = true;
      });
    const cp = cfg.agent.audit.checkpoint;
    if (cp) {
      this.#checkpointSink = new CheckpointSink({
        syslog: cp.syslog,
        url: cp.url,
        intervalMs: cp.interval,
        key: auditKey.key,
        dataDir,
        head: () => backend.auditHead(),
        http: this.#http,
        logger: this.#logger,
        metrics,
        clock: this.#clock,
      });
      this.#checkpointSink.start();
    }
    this.#armHousekeeping(HOUSEKEEPING_BUSY_MS);
    await this.#refreshGauges();
    this.#ready = true;
    this.#logger.info(
      {
        api: this.#api!.address,
        metrics: this.#telemetry.address ?? null,
        mode: backend.mode,
        ...(cluster ? { leader: backend.leader() } : { data_dir: dataDir }),
        policies: runtime.policies.length,
        subjects: index.size,
        dry_run: cfg.agent.dry_run,
      },
      "vigil started",
    );
  }

  /** Cluster mode, during start: stops waiting for Redis (a stop was asked for); start then rejects with `VIGIL_ERR_SHUTDOWN`. */
  abortStart(): void {
    this.#startAbort.abort();
  }

  #openEmbedded(dataDir: string, key: import("../store/audit.ts").AuditKey): Backend {
    const cfg = this.#config.raw.agent;
    const metrics = this.#telemetry!.metrics;
    return openEmbedded({
      dataDir,
      walSizeLimit: cfg.store.wal_size_limit,
      key,
      clock: this.#clock,
      logger: this.#logger,
      drainTimeoutMs: cfg.shutdown_timeout,
      maxStreams: cfg.store.max_streams_per_check,
      onStreamsDropped: (check, n) => metrics.streamsDropped(check, n),
      queuePollMs: QUEUE_POLL_MS,
    });
  }

  async #openCluster(key: import("../store/audit.ts").AuditKey): Promise<ClusterBackend> {
    const cfg = this.#config.raw.agent;
    const metrics = this.#telemetry!.metrics;
    const c = cfg.cluster;
    const { openCluster } = await import("./cluster.ts");
    return openCluster({
      redis: c.redis!,
      prefix: c.prefix,
      lockDurationMs: c.lock_duration,
      leaseMs: c.lease,
      keepCompleted: c.keep_completed,
      keepFailed: c.keep_failed,
      concurrency: { [EVALUATE_JOB]: c.concurrency.evaluations, [ACTION_JOB]: c.concurrency.actions },
      key,
      clock: this.#clock,
      logger: this.#logger,
      drainTimeoutMs: cfg.shutdown_timeout,
      maxStreams: cfg.store.max_streams_per_check,
      onStreamsDropped: (check, n) => metrics.streamsDropped(check, n),
      signal: this.#startAbort.signal,
      onWait: (reason) => {
        this.#waiting = reason;
      },
      onLeadership: (leader) => {
        if (leader) void this.#tookOverLeadership();
      },
      onRedis: (up, reason) => {
        // Closing the connections on stop is not losing Redis.
        if (this.#stopping) return;
        if (!up) this.#logger.error({ reason }, `lost the connection to Redis: ${reason ?? "closed"}; not ready until it is back (signals get 503, work resumes by itself)`);
        else if (this.#ready) this.#logger.info("the connection to Redis is back");
      },
    });
  }

  async #startApi(dataDir: string): Promise<void> {
    const cfg = this.#config.raw;
    const token = cfg.agent.api.token ?? generatedApiToken(dataDir, this.#logger);
    const am = cfg.signals.alertmanager;
    this.#api = new ApiServer({
      listen: cfg.agent.api.listen,
      token,
      maxBodyBytes: cfg.agent.api.max_body_bytes,
      maxConnections: cfg.agent.api.max_connections,
      streams: { maxStreams: cfg.agent.api.max_streams },
      api: this.service,
      logger: this.#logger,
      metrics: this.#telemetry!.metrics,
      alertmanager: { subject_label: am.subject_label, check_label: am.check_label, default_check: am.default_check, severity_label: am.severity_label, severities: am.severities, ttl_ms: am.ttl },
      ssf: () => this.#ssf,
    });
    await this.#api.start();
    if (cfg.agent.mode === "cluster") this.#logger.info({ api: this.#api.address }, "API listening; connecting to Redis");
  }

  /** A replica that became the leader takes up the leader's work at once rather than at the next housekeeping pass. */
  async #tookOverLeadership(): Promise<void> {
    try {
      const scheduler = this.#scheduler;
      if (scheduler instanceof ClusterScheduler) await scheduler.reconcile();
      if (this.#ready) {
        await this.#checkBaseline();
        await this.#enforcer?.flush();
        await this.#enforcer?.reconcile();
        await this.#enforcer?.redrive();
      }
    } catch (err) {
      this.#logger.warn({ err }, `taking over as leader: ${errorMessage(err)}`);
    }
  }

  /** Stops in reverse order; in-flight jobs get the shutdown timeout to finish. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ready = false;
      this.#startAbort.abort();
      clearTimeout(this.#housekeepingTimer);
      this.#housekeepingAt = -Infinity;
      this.#scheduler?.stop();
      // Stream upkeep and polls end first (the last acknowledgements need the store); pushes are answered until the API closes.
      await this.#ssf?.stop().catch((err: unknown) => this.#logger.warn({ err }, "SSF receiver stop failed"));
      await this.#enforcer?.stop();
      // The API's in-flight requests and the queue's in-flight jobs drain side by side, so the
      // whole stop stays within the larger of the two bounds (5 s, shutdown_timeout).
      await Promise.all([this.#api?.stop().catch((err: unknown) => this.#logger.warn({ err }, "API stop failed")), this.#queue?.stop()]);
      await this.#runtime?.stop();
      await this.#checkpointSink?.stop().catch((err: unknown) => this.#logger.warn({ err }, "last audit checkpoint failed"));
      await this.#store?.stop();
      await this.#http?.close();
      await this.#telemetry?.stop();
      await this.#backend?.close().catch((err: unknown) => this.#logger.warn({ err }, `closing the ${this.#backend?.mode} backend failed`));
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
    const labels = inventoryLabels(next);
    // Read the new inventories before anything is swapped: a config whose inventory cannot be read
    // is refused whole, and the running config (with its subjects) stays.
    let lists: Subject[][];
    try {
      lists = await listAll(runtime.inventories, labels);
    } catch (err) {
      await runtime.stop();
      throw new VigilError("VIGIL_ERR_INVENTORY", `reload refused, the running config stays: ${errorMessage(err)}`, { cause: err });
    }
    const old = parts.runtime;
    this.#config = next;
    this.#runtime = runtime;
    evaluator.runtime = runtime;
    enforcer.runtime = runtime;
    await enforcer.loadGuards();
    // The lists just read are the index's listing: not read a second time.
    index.replace(runtime.inventories, JSON.stringify(old.config.raw.inventories) === JSON.stringify(next.raw.inventories), { labels, lists });
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

  /**
   * Evaluates everything now (start, reload); in cluster mode the leader does it for the cluster.
   * Start and reload have just listed the inventories: the pass uses that listing (one listing, not
   * one more per policy).
   */
  async #initialPass(runtime: Runtime, trigger: "start" | "reload"): Promise<void> {
    if (!this.#backend?.leader()) return;
    for (const policy of runtime.policies) await this.#scheduler!.tick(runtime, policy, trigger, 0, { listed: true });
  }

  /** Arms the next housekeeping pass `ms` from now, unless one is due sooner (or the agent stops). */
  #armHousekeeping(ms: number): void {
    const at = Date.now() + ms;
    if (this.#stopping || at >= this.#housekeepingAt) return;
    clearTimeout(this.#housekeepingTimer);
    this.#housekeepingAt = at;
    this.#housekeepingTimer = setTimeout(() => {
      this.#housekeepingTimer = undefined;
      this.#housekeepingAt = Infinity;
      void this.#housekeeping().finally(() => {
        // A cluster replica keeps the busy pace: other replicas' work changes what it sweeps and reports.
        const idle = !this.#worked && this.#index?.allLoaded === true && this.#backend?.mode === "embedded";
        this.#idlePasses = idle ? this.#idlePasses + 1 : 0;
        this.#armHousekeeping(idle ? Math.min(HOUSEKEEPING_IDLE_MAX_MS, HOUSEKEEPING_IDLE_MS * 2 ** (this.#idlePasses - 1)) : HOUSEKEEPING_BUSY_MS);
      });
    }, ms);
    this.#housekeepingTimer.unref();
  }

  /** A job ran: housekeeping comes within the busy interval, to flush and refresh the gauges. */
  #workedNow(): void {
    this.#worked = true;
    if (this.#housekeepingAt - Date.now() > HOUSEKEEPING_BUSY_MS) this.#armHousekeeping(HOUSEKEEPING_BUSY_MS);
  }

  /**
   * The sweeps over the whole state (flush, prune, re-drive) run on the leader only: in cluster
   * mode one replica does them for all, and embedded the one process always leads.
   */
  async #housekeeping(): Promise<void> {
    this.#worked = false;
    const backend = this.#backend;
    try {
      const leader = backend?.leader() ?? false;
      if (leader) await this.#enforcer?.flush();
      const index = this.#index;
      const runtime = this.#runtime;
      if (index && runtime && !index.allLoaded) {
        // Not ready until every inventory has listed once: keep trying, and evaluate its subjects
        // as soon as it does rather than at the next tick.
        await index.refresh();
        if (index.allLoaded) {
          await this.#checkBaseline();
          await this.#initialPass(runtime, "start");
        }
      }
      if (leader) {
        await this.#pruneResults();
        // Level-triggered: work the queue gave up on is driven again once its backoff has passed.
        await this.#enforcer?.redrive();
        // A leader also keeps the schedules in step (one that lost a reconcile to a Redis outage retries here).
        if (this.#scheduler instanceof ClusterScheduler) await this.#scheduler.reconcile();
      }
      // Other replicas change the guards too: /v1/enforcement and the gauges show the shared state.
      if (backend?.mode === "cluster") await this.#enforcer?.loadGuards();
      await this.#refreshGauges();
      await backend?.housekeeping();
    } catch (err) {
      this.#logger.warn({ err }, `housekeeping failed: ${errorMessage(err)}`);
    }
  }

  /**
   * Gauges are read from caches refreshed here, so a scrape never waits on the store. A covered
   * subject without a decision yet counts as `pending`, never as full access.
   */
  async #refreshGauges(): Promise<void> {
    if (!this.#queue || !this.#store) return;
    this.#queueDepth = await this.#queue.depth();
    const counts = await this.#store.countByAccess();
    const covered = this.#coveredCounts();
    for (const [policy, n] of Object.entries(covered)) {
      const byAccess = (counts[policy] ??= {});
      const decided = Object.values(byAccess).reduce((a, b) => a + b, 0);
      byAccess["pending"] = Math.max(0, n - decided);
    }
    this.#subjectCounts = counts;
  }

  /** Subjects each policy covers, recounted only when the runtime or the subject list changed. */
  #coveredCounts(): Record<string, number> {
    const runtime = this.#runtime;
    const index = this.#index;
    if (!runtime || !index) return {};
    const version = `${index.version}`;
    if (this.#coveredCache?.runtime === runtime && this.#coveredCache.version === version) return this.#coveredCache.counts;
    const counts: Record<string, number> = {};
    for (const p of runtime.policies) counts[p.name] = 0;
    for (const s of index.all()) for (const p of runtime.policies) if (runtime.covers(p, s)) counts[p.name] = (counts[p.name] ?? 0) + 1;
    this.#coveredCache = { runtime, version, counts };
    return counts;
  }

  /** Removes results that expired longer ago than `agent.store.keep_expired` (and any check's hold_grace). */
  async #pruneResults(): Promise<void> {
    const store = this.#store;
    const runtime = this.#runtime;
    if (!store || !runtime) return;
    const cfg = runtime.config;
    const grace = Math.max(cfg.raw.agent.store.keep_expired, cfg.raw.decision.hold_grace, ...Object.values(cfg.checks).map((c) => c.hold_grace ?? 0), ...cfg.policies.map((p) => p.hold_grace));
    const n = await store.pruneResults(this.#clock.now() - grace);
    this.#telemetry?.metrics.resultsPruned(n);
    // Records of subjects that left every inventory, once their last enforcement is done.
    await store.pruneEnforcement();
  }

  /** Appends to the audit log from a hook that cannot wait; a failure is logged. */
  #audit(events: Parameters<StateStore["appendAudit"]>[0]): void {
    const store = this.#store;
    if (!store) return;
    store.appendAudit(events).catch((err: unknown) => this.#logger.error({ err }, `could not record ${events[0]?.type ?? "an event"} in the audit log: ${errorMessage(err)}`));
  }

  /**
   * Subjects that left while the agent was down: once every inventory has listed, states of subjects
   * no inventory lists any more are handled like a removal seen live.
   */
  async #checkBaseline(): Promise<void> {
    const index = this.#index;
    const store = this.#store;
    if (this.#baselineChecked || !index || !store || !index.allLoaded || index.status().some((s) => s.failing)) return;
    // In cluster mode the leader looks, once it leads.
    if (!this.#backend?.leader()) return;
    this.#baselineChecked = true;
    const gone = (await store.stateSubjects()).filter((id) => !index.get(id));
    if (gone.length > 0) this.#subjectsRemoved(gone);
    await this.#removals;
  }

  /** Queues the handling of subjects that left every inventory (see `#removeSubjects`); in cluster mode, on the leader. */
  #subjectsRemoved(ids: readonly string[]): void {
    if (this.#backend && !this.#backend.leader()) return;
    this.#removals = this.#removals
      .then(() => this.#removeSubjects(ids))
      .catch((err: unknown) => this.#logger.error({ err }, `handling removed subjects failed: ${errorMessage(err)}`));
  }

  /**
   * A subject gone from every inventory: recorded in the audit log; with `removed_subjects: restore`
   * brought back to full access by a decision carried out through the enforcer like any other (so
   * the reverts of the levels it was at are sent); then its state and results are pruned.
   */
  async #removeSubjects(ids: readonly string[]): Promise<void> {
    const parts = this.#parts();
    if (!parts || this.#stopping) return;
    const { store, enforcer, runtime } = parts;
    const mode = runtime.config.raw.enforcement.removed_subjects;
    const now = this.#clock.now();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const byPolicy = new Map<string, StoredState[]>();
      const audit: Parameters<StateStore["appendAudit"]>[0][number][] = [];
      for (const id of chunk) {
        const states = await store.listStates({ subject: id });
        audit.push({
          type: "subject_removed",
          subject: id,
          removed_subjects: mode,
          policies: states.map((s) => ({ policy: s.decision.policy, access: s.decision.access, enforced_access: s.enforced_access })),
        });
        if (mode !== "restore") continue;
        for (const s of states) {
          if (s.decision.access === "full_access" && s.enforced_access === "full_access") continue;
          const restored: StoredState = {
            ...s,
            decision: {
              ...s.decision,
              access: "full_access",
              reasons: [{ code: "SUBJECT_REMOVED", message: "the subject left every inventory; access restored (enforcement.removed_subjects: restore)" }],
              generation: s.decision.generation + 1,
              decided_at: now,
            },
            candidate: "full_access",
            streak: 0,
            changed_at: now,
          };
          const list = byPolicy.get(s.decision.policy);
          if (list) list.push(restored);
          else byPolicy.set(s.decision.policy, [restored]);
        }
      }
      await store.appendAudit(audit);
      for (const [policy, states] of byPolicy) {
        await this.#backend!.subjectLock.run(
          states.map((s) => `${policy}\u0000${s.decision.subject}`),
          async () => {
            await store.putStates(states);
            await enforcer.enforce(states);
          },
        );
      }
      await store.forgetSubjects(chunk);
    }
    this.#coveredCache = undefined;
    await this.#refreshGauges();
  }

  /** Every part, once start has built them all. */
  #parts(): EngineParts | undefined {
    if (!this.#index || !this.#store || !this.#runtime || !this.#evaluator || !this.#enforcer || !this.#queue) return undefined;
    return { index: this.#index, store: this.#store, runtime: this.#runtime, evaluator: this.#evaluator, enforcer: this.#enforcer, queue: this.#queue };
  }
}

/** `<index>:<type>` of each configured inventory, for logs, metrics and readiness. */
function inventoryLabels(config: LoadedConfig): string[] {
  return config.inventories.map((inv, i) => `${i}:${inv.type}`);
}
