/**
 * The agent: starts its parts in dependency order (telemetry → store → queue → plugins → API →
 * scheduler), stops them in reverse, reloads config on demand, and answers the HTTP API.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { LoadedConfig } from "../config/load.ts";
import type { PluginContext } from "../plugin/context.ts";
import type { AccessLevel, CheckResult, Decision } from "../policy/model.ts";
import { accessRank } from "../policy/model.ts";
import { defaultDecision } from "../policy/decide.ts";
import type { AgentApi, EnforcementStatus, SignalInput, SubjectDetail, SubjectSummary } from "../http/agent-api.ts";
import type { PublicDocument } from "../plugin/provider.ts";
import type { AuditEntry, AuditQuery, StateStore } from "../store/contract.ts";
import type { WorkQueue, JobRecord } from "../queue/contract.ts";
import { checkpoint, openDatabase } from "../db/sqlite.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import { EmbeddedQueue } from "../queue/embedded.ts";
import { createHttpClient, type HttpClient } from "../net/http.ts";
import { ApiServer } from "../http/server.ts";
import { Telemetry } from "../telemetry/metrics.ts";
import type { Logger } from "../telemetry/log.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { registerSecret } from "../util/redact.ts";
import { DEFAULT_USER_AGENT } from "../util/version.ts";
import { errorMessage, VigilError } from "../errors.ts";
import { Runtime } from "./runtime.ts";
import { SubjectIndex } from "./subjects.ts";
import { Evaluator, ENGINE_REASONS } from "./evaluator.ts";
import { KeyedLock } from "./keyed-lock.ts";
import { Enforcer, ACTION_JOB, type ActionJob } from "./enforcer.ts";
import { Scheduler, EVALUATE_JOB, EVALUATE_RETRY, type EvaluateJob } from "./scheduler.ts";

const FLUSH_INTERVAL_MS = 5_000;

export interface AgentOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
}

export class Agent implements AgentApi {
  #config: LoadedConfig;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #started = false;
  #stopping: Promise<void> | undefined;
  #ready = false;
  #db: DatabaseSync | undefined;
  #store: StateStore | undefined;
  #queue: WorkQueue | undefined;
  #telemetry: Telemetry | undefined;
  #http: HttpClient | undefined;
  #api: ApiServer | undefined;
  #runtime: Runtime | undefined;
  #index: SubjectIndex | undefined;
  #evaluator: Evaluator | undefined;
  #enforcer: Enforcer | undefined;
  #scheduler: Scheduler | undefined;
  #ctx: PluginContext | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #queueDepth: Record<string, { waiting: number; delayed: number; active: number; failed: number }> = {};
  #subjectCounts: Record<string, Record<string, number>> = {};

  constructor(config: LoadedConfig, options: AgentOptions) {
    this.#config = config;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
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
    this.#evaluator = new Evaluator({ store, index, metrics, ctx: this.#ctx, runtime, lock });
    const enforcer = new Enforcer({ store, queue, index, metrics, clock: this.#clock, logger: this.#logger, runtime, lock });
    this.#enforcer = enforcer;
    this.#scheduler = new Scheduler({ queue, index, logger: this.#logger, now: () => this.#clock.now() });

    queue.process<EvaluateJob>(EVALUATE_JOB, (job) => this.#runEvaluation(job), { concurrency: cfg.agent.concurrency.evaluations });
    queue.process<ActionJob>(ACTION_JOB, (job) => enforcer.run(job), { concurrency: cfg.agent.concurrency.actions });
    queue.onFailed((failure) => {
      const p = failure.job.payload as Partial<ActionJob>;
      this.#logger.error({ job: failure.job.id, kind: failure.job.kind, code: failure.code }, `job failed for good after ${failure.job.attempt} attempt(s): ${failure.error}`);
      void store
        .appendAudit([
          failure.job.kind === ACTION_JOB
            ? { type: "action_failed", policy: p.policy, subject: p.subject, generation: p.generation, action: p.action, action_type: p.type, operation: p.operation, idempotency_key: p.idempotency_key, attempts: failure.job.attempt, error: failure.error, code: failure.code ?? null }
            : { type: "job_failed", kind: failure.job.kind, job: failure.job.id, attempts: failure.job.attempt, error: failure.error, code: failure.code ?? null },
        ])
        .catch((err: unknown) => this.#logger.error({ err }, "could not record a failed job in the audit log"));
    });
    await store.start();
    await queue.start();

    metrics.setObservers({
      queueDepth: () => this.#queueDepth,
      subjects: () => this.#subjectCounts,
      paused: () => enforcer.paused(),
      circuits: () => this.#runtime?.circuits() ?? {},
    });

    const token = cfg.agent.api.token ?? this.#generatedToken(dataDir);
    const am = cfg.signals.alertmanager;
    this.#api = new ApiServer({
      listen: cfg.agent.api.listen,
      token,
      maxBodyBytes: cfg.agent.api.max_body_bytes,
      api: this,
      logger: this.#logger,
      metrics,
      alertmanager: { subject_label: am.subject_label, check_label: am.check_label, default_check: am.default_check, severity_label: am.severity_label, severities: am.severities, ttl_ms: am.ttl },
    });
    await this.#api.start();

    await enforcer.loadGuards();
    this.#scheduler.schedule(runtime);
    await this.#initialPass(runtime, "start");
    void enforcer.flush().then(() => enforcer.reconcile()).catch((err: unknown) => this.#logger.error({ err }, `start-up enforcement failed: ${errorMessage(err)}`));
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
    if (!this.#ctx || !this.#index || !this.#evaluator || !this.#enforcer || !this.#scheduler) throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
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
    const runtime = new Runtime(next, this.#ctx);
    const old = this.#runtime;
    this.#config = next;
    this.#runtime = runtime;
    this.#evaluator.runtime = runtime;
    this.#enforcer.runtime = runtime;
    await this.#enforcer.loadGuards();
    this.#index.replace(runtime.inventories, JSON.stringify(old?.config.raw.inventories) === JSON.stringify(next.raw.inventories));
    await this.#index.refresh();
    this.#scheduler.schedule(runtime);
    await old?.stop();
    await this.#store!.appendAudit([{ type: "config_reloaded", file: next.file, policies: runtime.policies.map((p) => p.name) }]);
    await this.#initialPass(runtime, "reload");
    await this.#enforcer.reconcile();
    this.#logger.info({ policies: runtime.policies.length, subjects: this.#index.size }, "configuration reloaded");
  }

  /** Counts a SIGHUP reload attempt. */
  configReloaded(outcome: "success" | "failure"): void {
    this.#telemetry?.metrics.configReload(outcome);
  }

  // ---- AgentApi ----

  health(): { ok: boolean } {
    return { ok: this.#started && !this.#stopping };
  }

  ready(): { ready: boolean; reasons: readonly string[] } {
    if (this.#ready) return { ready: true, reasons: [] };
    return { ready: false, reasons: [this.#stopping ? "stopping" : "starting"] };
  }

  async listSubjects(q: { policy?: string; access?: AccessLevel; kind?: string; limit: number; offset: number }): Promise<{ subjects: SubjectSummary[]; total: number }> {
    const { index, store, runtime } = this.#running();
    const states = await store.listStates(q.policy ? { policy: q.policy } : {});
    const bySubject = new Map<string, Decision[]>();
    for (const s of states) {
      const list = bySubject.get(s.decision.subject);
      if (list) list.push(s.decision);
      else bySubject.set(s.decision.subject, [s.decision]);
    }
    const all: SubjectSummary[] = [];
    for (const subject of index.all()) {
      if (q.kind && subject.kind !== q.kind) continue;
      const covering = runtime.policiesFor(subject);
      if (q.policy && !covering.some((p) => p.name === q.policy)) continue;
      const decisions = (bySubject.get(subject.id) ?? []).filter((d) => covering.some((p) => p.name === d.policy));
      const access = covering.length === 0 ? defaultDecision(subject.id, runtime.config.default_security_rule, 0).access : mostRestrictive(decisions.map((d) => d.access));
      if (q.access && access !== q.access) continue;
      all.push({
        id: subject.id,
        kind: subject.kind,
        ...(subject.identity ? { identity: subject.identity } : {}),
        access,
        policies: decisions.map((d) => ({ policy: d.policy, access: d.access, risk: d.risk, generation: d.generation, decided_at: new Date(d.decided_at).toISOString() })),
      });
    }
    return { subjects: all.slice(q.offset, q.offset + q.limit), total: all.length };
  }

  async getSubject(id: string): Promise<SubjectDetail | undefined> {
    const { index, store, runtime } = this.#running();
    const subject = index.get(id);
    if (!subject) return undefined;
    const covering = runtime.policiesFor(subject);
    if (covering.length === 0) {
      const d = defaultDecision(id, runtime.config.default_security_rule, this.#clock.now());
      return { subject, access: d.access, decisions: [d], results: [] };
    }
    const states = await store.listStates({ subject: id });
    const decisions = states.filter((s) => covering.some((p) => p.name === s.decision.policy)).map((s) => s.decision);
    const checks = [...new Set(covering.flatMap((p) => p.checks))];
    const results: CheckResult[] = await store.getResults([id], checks);
    return { subject, access: mostRestrictive(decisions.map((d) => d.access)), decisions, results };
  }

  async evaluate(id: string): Promise<Decision[] | undefined> {
    const { index, runtime, evaluator, enforcer } = this.#running();
    const subject = index.get(id);
    if (!subject) return undefined;
    const covering = runtime.policiesFor(subject);
    if (covering.length === 0) return [defaultDecision(id, runtime.config.default_security_rule, this.#clock.now())];
    const out: Decision[] = [];
    for (const p of covering) {
      const evaluated = await evaluator.evaluate(p.name, [id], { pull: "always", trigger: "api" }, (ev) => enforcer.enforce(ev.map((e) => e.state)));
      out.push(...evaluated.map((e) => e.state.decision));
    }
    return out;
  }

  async acceptSignal(signal: SignalInput): Promise<{ id: string; policies: readonly string[] }> {
    const { index, runtime, store, queue } = this.#running();
    const subject = index.get(signal.subject);
    if (!subject) throw new VigilError("VIGIL_ERR_UNKNOWN_SUBJECT", `no inventory knows subject "${signal.subject}"`);
    const covering = runtime.policiesFor(subject);
    const policies = covering.filter((p) => p.checks.includes(signal.check));
    if (policies.length === 0) {
      const known = [...new Set(covering.flatMap((p) => p.checks))];
      throw new VigilError(
        "VIGIL_ERR_BAD_REQUEST",
        `check "${signal.check}" is not verified by any policy covering subject "${signal.subject}"` + (known.length ? `; those policies check: ${known.join(", ")}` : "; no policy covers it"),
      );
    }
    const now = this.#clock.now();
    const id = randomUUID();
    const result: CheckResult = {
      check: signal.check,
      subject: subject.id,
      status: signal.status,
      ...(signal.risk ? { risk: signal.risk } : {}),
      reasons: [{ code: ENGINE_REASONS.SIGNAL, message: signal.reason ?? `signal from ${signal.source ?? "api"}` }],
      evidence: { signal_id: id, source: signal.source ?? "api" },
      observed_at: now,
      expires_at: now + (signal.ttl_ms ?? runtime.ttl(signal.check)),
      source: "push",
      ...(signal.stream ? { stream: signal.stream } : {}),
    };
    // Durable before we answer 202: the result, the audit line and the evaluation jobs.
    await store.putResults([result]);
    await store.appendAudit([{ type: "signal", id, subject: subject.id, check: signal.check, status: signal.status, risk: signal.risk ?? null, ttl_ms: result.expires_at - now, source: signal.source ?? "api", stream: signal.stream ?? null, reason: signal.reason ?? null }]);
    await queue.enqueueMany<EvaluateJob>(
      EVALUATE_JOB,
      policies.map((p) => ({ payload: { policy: p.name, subjects: [subject.id], trigger: "signal", pull: "stale", signal_at: now }, options: { id: `signal:${id}:${p.name}`, ...EVALUATE_RETRY } })),
    );
    return { id, policies: policies.map((p) => p.name) };
  }

  readAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.#running().store.readAudit(query);
  }

  enforcement(): EnforcementStatus[] {
    return this.#running().enforcer.status();
  }

  publicDocument(path: string): PublicDocument | undefined {
    return this.#runtime?.publicDocument(path);
  }

  async resumeEnforcement(policy?: string): Promise<{ resumed: readonly string[] }> {
    return { resumed: await this.#running().enforcer.resume(policy) };
  }

  // ---- internals ----

  async #runEvaluation(job: JobRecord<EvaluateJob>): Promise<void> {
    const { evaluator, enforcer, queue } = this.#running();
    const p = job.payload;
    const evaluated = await evaluator.evaluate(p.policy, p.subjects, { pull: p.pull, trigger: p.trigger }, (ev) =>
      enforcer.enforce(
        ev.map((e) => e.state),
        p.signal_at === undefined ? {} : { signalAt: p.signal_at },
      ),
    );
    const rechecks = evaluated.filter((e) => e.recheck_at !== undefined);
    if (rechecks.length > 0) {
      const now = this.#clock.now();
      await queue.enqueueMany<EvaluateJob>(
        EVALUATE_JOB,
        rechecks.map((e) => ({
          payload: { policy: p.policy, subjects: [e.subject.id], trigger: "recheck", pull: "always" },
          options: { id: `recheck:${p.policy}:${e.subject.id}:${e.recheck_at}`, delay: Math.max(0, e.recheck_at! - now), ...EVALUATE_RETRY },
        })),
      );
    }
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

  #generatedToken(dataDir: string): string {
    const file = join(dataDir, "api-token");
    let token: string;
    try {
      token = readFileSync(file, "utf8").trim();
    } catch {
      token = randomBytes(32).toString("base64url");
      writeFileSync(file, token + "\n", { mode: 0o600 });
    }
    registerSecret(token);
    this.#logger.info({ token_file: file }, "agent.api.token is not set; using the token in token_file");
    return token;
  }

  #running() {
    if (!this.#index || !this.#store || !this.#runtime || !this.#evaluator || !this.#enforcer || !this.#queue) {
      throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
    }
    return { index: this.#index, store: this.#store, runtime: this.#runtime, evaluator: this.#evaluator, enforcer: this.#enforcer, queue: this.#queue };
  }
}

function mostRestrictive(levels: readonly AccessLevel[]): AccessLevel {
  return levels.reduce<AccessLevel>((a, b) => (accessRank(b) > accessRank(a) ? b : a), "full_access");
}
