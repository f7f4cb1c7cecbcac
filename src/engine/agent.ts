/**
 * The agent's lifecycle: starts its parts in dependency order (telemetry → store → queue → plugins →
 * API → scheduler), stops them in reverse, and reloads config on demand. The job handlers live in
 * `jobs.ts`, what the HTTP API asks of the agent in `service.ts`.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { LoadedConfig } from "../config/load.ts";
import type { PluginContext } from "../plugin/context.ts";
import { SharedResources } from "../plugin/shared.ts";
import type { StateStore } from "../store/contract.ts";
import type { IdleOptions, WorkQueue } from "../queue/contract.ts";
import { DATABASE_FILE, openDatabase, quickCheck } from "../db/sqlite.ts";
import { DataDirLock } from "../db/lock.ts";
import { Checkpointer } from "../db/checkpointer.ts";
import { AUDIT_FILE, EmbeddedStore } from "../store/embedded.ts";
import { resolveAuditKey } from "../store/audit-key.ts";
import { EmbeddedQueue } from "../queue/embedded.ts";
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
import { KeyedLock } from "./keyed-lock.ts";
import { Enforcer, ACTION_JOB, type ActionJob } from "./enforcer.ts";
import { Scheduler, EVALUATE_JOB, type EvaluateJob } from "./scheduler.ts";
import { evaluationHandler, failedJobRecorder } from "./jobs.ts";
import { AgentService, type EngineParts } from "./service.ts";
import { CheckpointSink } from "./checkpoint-sink.ts";
import { generatedApiToken } from "./api-token.ts";
import type { SsfReceiver } from "../signals/ssf/receiver.ts";
import type { SsfConfig } from "../signals/ssf/config.ts";
import { ssfHost } from "./ssf.ts";

/** Housekeeping runs this long after work (a job ran) or while an inventory has not listed yet… */
const HOUSEKEEPING_BUSY_MS = 5_000;
/**
 * …and this long after a pass that followed no work: nothing it refreshes (gauges, WAL, flush) has
 * changed then, so an idle agent wakes about once a minute for it instead of every 5 s. Re-drives
 * and delayed jobs keep their own timers, armed to their due times.
 */
const HOUSEKEEPING_IDLE_MS = 60_000;
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
  #db: DatabaseSync | undefined;
  #dataDirLock: DataDirLock | undefined;
  #checkpointer: Checkpointer | undefined;
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
  /** A job ran since the last housekeeping pass began. */
  #worked = false;
  /** Start-up enforcement, which runs beside the queue; settles (never rejects) when done. */
  #startup: Promise<void> | undefined;
  #caughtUp = false;
  /** Shared by evaluator, enforcer and removals: one subject's decision is worked out by one of them at a time. */
  readonly #subjectLock = new KeyedLock();
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
    this.#dataDirLock = DataDirLock.acquire(dataDir);
    this.#db = openStateDatabase(dataDir, cfg.agent.store.wal_size_limit);
    this.#checkpointer = new Checkpointer(join(dataDir, DATABASE_FILE), cfg.agent.store.wal_size_limit);
    const auditKey = resolveAuditKey({ configured: cfg.agent.audit.key, dataDir, create: true })!;
    if (auditKey.generated) {
      this.#logger.warn(
        { key_file: auditKey.source, key_id: auditKey.key.id },
        `agent.audit.key is not set: generated the audit log's key into ${auditKey.source} (mode 0600). Back it up: \`vigil audit verify\` needs it. Set agent.audit.key to use a key of your own`,
      );
    }
    const store = new EmbeddedStore(this.#db, dataDir, {
      clock: this.#clock,
      key: auditKey.key,
      maxStreams: cfg.agent.store.max_streams_per_check,
      onStreamsDropped: (check, n) => metrics.streamsDropped(check, n),
    });
    const queue = new EmbeddedQueue(this.#db, { clock: this.#clock, logger: this.#logger, drainTimeoutMs: cfg.agent.shutdown_timeout, pollIntervalMs: QUEUE_POLL_MS });
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
    const lock = this.#subjectLock;
    const evaluator = new Evaluator({ store, index, metrics, ctx: this.#ctx, runtime, lock });
    this.#evaluator = evaluator;
    const enforcer = new Enforcer({ store, queue, index, metrics, clock: this.#clock, logger: this.#logger, runtime, lock });
    this.#enforcer = enforcer;
    this.#scheduler = new Scheduler({ queue, index, logger: this.#logger, now: () => this.#clock.now() });

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
      streams: { maxStreams: cfg.agent.api.max_streams },
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
    await this.#checkBaseline();
    await this.#initialPass(runtime, "start");
    this.#startup = enforcer
      .flush()
      .then(() => enforcer.reconcile())
      .then(() => enforcer.redrive())
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
        head: () => store.auditHead,
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
      { api: this.#api.address, metrics: this.#telemetry.address ?? null, data_dir: dataDir, policies: runtime.policies.length, subjects: index.size, dry_run: cfg.agent.dry_run },
      "vigil started",
    );
  }

  /** Stops in reverse order; in-flight jobs get the shutdown timeout to finish. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#ready = false;
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
      await this.#checkpointer?.close().catch((err: unknown) => this.#logger.warn({ err }, "checkpoint worker stop failed"));
      if (this.#db?.isOpen) this.#db.close();
      this.#dataDirLock?.release();
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
    index.replace(runtime.inventories, JSON.stringify(old.config.raw.inventories) === JSON.stringify(next.raw.inventories), { labels, lists });
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
        this.#armHousekeeping(this.#worked || !this.#index?.allLoaded ? HOUSEKEEPING_BUSY_MS : HOUSEKEEPING_IDLE_MS);
      });
    }, ms);
    this.#housekeepingTimer.unref();
  }

  /** A job ran: housekeeping comes within the busy interval, to flush and refresh the gauges. */
  #workedNow(): void {
    this.#worked = true;
    if (this.#housekeepingAt - Date.now() > HOUSEKEEPING_BUSY_MS) this.#armHousekeeping(HOUSEKEEPING_BUSY_MS);
  }

  async #housekeeping(): Promise<void> {
    this.#worked = false;
    try {
      await this.#enforcer?.flush();
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
      await this.#pruneResults();
      // Level-triggered: work the queue gave up on is driven again once its backoff has passed.
      await this.#enforcer?.redrive();
      await this.#refreshGauges();
      if (this.#db?.isOpen) await this.#checkpointer?.checkpoint();
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
    this.#baselineChecked = true;
    const gone = (await store.stateSubjects()).filter((id) => !index.get(id));
    if (gone.length > 0) this.#subjectsRemoved(gone);
    await this.#removals;
  }

  /** Queues the handling of subjects that left every inventory (see `#removeSubjects`). */
  #subjectsRemoved(ids: readonly string[]): void {
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
        await this.#subjectLock.run(
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

/**
 * Opens `vigil.db` and refuses to start on one that is damaged, or missing while the audit log
 * shows an earlier run: either way the agent would start with every subject at full access and
 * nothing to revert, silently forgetting what it had enforced.
 */
function openStateDatabase(dataDir: string, walSizeLimit: number): DatabaseSync {
  const file = join(dataDir, DATABASE_FILE);
  const audit = join(dataDir, AUDIT_FILE);
  const restore = `Stop here and restore ${file} from a backup. To start afresh on purpose, move the whole data_dir aside (keep it for investigation) and start again`;
  if (!existsSync(file) && sizeOf(audit) > 0) {
    throw new VigilError("VIGIL_ERR_STORE", `${file} is missing, but the audit log ${audit} records earlier decisions: starting without it would put every subject back to full access with no reverts. ${restore}`, {
      details: { file, audit },
    });
  }
  let db: DatabaseSync;
  try {
    db = openDatabase(dataDir, { manualCheckpoint: true, walSizeLimit });
  } catch (err) {
    throw new VigilError("VIGIL_ERR_STORE", `${errorMessage(err)}. ${restore}`, { cause: err, details: { file } });
  }
  const problems = quickCheck(db);
  if (problems.length > 0) {
    db.close();
    throw new VigilError("VIGIL_ERR_STORE", `${file} is damaged (PRAGMA quick_check: ${problems.slice(0, 3).join("; ")}). ${restore}`, { details: { file, problems: problems.slice(0, 20) } });
  }
  return db;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** `<index>:<type>` of each configured inventory, for logs, metrics and readiness. */
function inventoryLabels(config: LoadedConfig): string[] {
  return config.inventories.map((inv, i) => `${i}:${inv.type}`);
}
