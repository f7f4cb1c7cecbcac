/**
 * What the HTTP API asks of the running agent (`AgentApi`): queries over subjects and decisions,
 * pushed signals, on-demand evaluation, the audit log, the blast-radius guard and the documents
 * providers publish. It owns nothing: it reads the agent's parts on every call, because a reload
 * swaps the runtime underneath it.
 */
import { randomUUID } from "node:crypto";
import type { AccessLevel, CheckResult, Decision } from "../policy/model.ts";
import { accessRank } from "../policy/model.ts";
import { defaultDecision } from "../policy/decide.ts";
import type { AgentApi, AgentStatus, EnforcementStatus, FailedEnforcement, RetryEnforcementResult, SignalInput, SubjectDetail, SubjectSummary } from "../http/agent-api.ts";
import type { PublicDocument } from "../plugin/provider.ts";
import type { AuditEntry, AuditQuery, StateStore } from "../store/contract.ts";
import type { QueueDepth, WorkQueue } from "../queue/contract.ts";
import type { Clock } from "../util/clock.ts";
import { VIGIL_VERSION } from "../util/version.ts";
import { VigilError } from "../errors.ts";
import type { Runtime } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { ENGINE_REASONS, type Evaluator } from "./evaluator.ts";
import type { Enforcer } from "./enforcer.ts";
import { EVALUATE_JOB, EVALUATE_RETRY, type EvaluateJob } from "./scheduler.ts";

/** The parts of a started agent the service works with. */
export interface EngineParts {
  readonly index: SubjectIndex;
  readonly store: StateStore;
  /** Replaced on each reload. */
  readonly runtime: Runtime;
  readonly evaluator: Evaluator;
  readonly enforcer: Enforcer;
  readonly queue: WorkQueue;
}

/** Where the agent is in its lifecycle, for the probes. */
export interface LifecycleState {
  /** `start()` has been called. */
  readonly started: boolean;
  /** `stop()` has been called. */
  readonly stopping: boolean;
  /** Start finished and stop has not begun. */
  readonly ready: boolean;
  /** Start-up enforcement (decisions left pending by the previous run) has been worked out. */
  readonly caughtUp: boolean;
  /** Inventories that have never listed successfully (`<index>:<type>`): not ready until each has. */
  readonly unloaded?: readonly string[];
  /** Why the shared backend cannot serve (cluster mode: Redis out of reach, or still being waited for at start). */
  readonly unavailable?: readonly string[];
}

export interface ServiceDeps {
  readonly clock: Clock;
  /** `agent.mode` at start. */
  readonly mode: AgentStatus["mode"];
  /** The agent's parts; undefined until start has built them. */
  parts(): EngineParts | undefined;
  lifecycle(): LifecycleState;
}

export class AgentService implements AgentApi {
  readonly #deps: ServiceDeps;

  constructor(deps: ServiceDeps) {
    this.#deps = deps;
  }

  health(): { ok: boolean } {
    const s = this.#deps.lifecycle();
    return { ok: s.started && !s.stopping };
  }

  ready(): { ready: boolean; reasons: readonly string[] } {
    const s = this.#deps.lifecycle();
    const unloaded = s.unloaded ?? [];
    const unavailable = s.unavailable ?? [];
    if (s.ready && unloaded.length === 0 && unavailable.length === 0) return { ready: true, reasons: [] };
    if (!s.ready) return { ready: false, reasons: s.stopping ? ["stopping"] : ["starting", ...unavailable] };
    // A subject list that is not there yet would read as "no such subject" to every caller.
    return { ready: false, reasons: [...unavailable, ...unloaded.map((label) => `inventory ${label} has not loaded yet`)] };
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
      const pending = covering.filter((p) => !decisions.some((d) => d.policy === p.name)).map((p) => p.name);
      const fallback = defaultDecision(subject.id, runtime.config.default_security_rule, 0).access;
      const access = covering.length === 0 ? fallback : mostRestrictive([...decisions.map((d) => d.access), ...(pending.length > 0 ? [fallback] : [])]);
      if (q.access && access !== q.access) continue;
      all.push({
        id: subject.id,
        kind: subject.kind,
        ...(subject.identity ? { identity: subject.identity } : {}),
        access,
        status: pending.length > 0 ? "pending" : "evaluated",
        pending,
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
      const d = defaultDecision(id, runtime.config.default_security_rule, this.#deps.clock.now());
      return { subject, access: d.access, status: "evaluated", pending: [], decisions: [d], results: [] };
    }
    const states = await store.listStates({ subject: id });
    const decisions = states.filter((s) => covering.some((p) => p.name === s.decision.policy)).map((s) => s.decision);
    const pending = covering.filter((p) => !decisions.some((d) => d.policy === p.name)).map((p) => p.name);
    const fallback = defaultDecision(id, runtime.config.default_security_rule, 0).access;
    const checks = [...new Set(covering.flatMap((p) => p.checks))];
    const results: CheckResult[] = await store.getResults([id], checks);
    const access = mostRestrictive([...decisions.map((d) => d.access), ...(pending.length > 0 ? [fallback] : [])]);
    return { subject, access, status: pending.length > 0 ? "pending" : "evaluated", pending, decisions, results };
  }

  async evaluate(id: string): Promise<Decision[] | undefined> {
    const { index, runtime, evaluator, enforcer } = this.#running();
    const subject = index.get(id);
    if (!subject) return undefined;
    const covering = runtime.policiesFor(subject);
    if (covering.length === 0) return [defaultDecision(id, runtime.config.default_security_rule, this.#deps.clock.now())];
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
    const now = this.#deps.clock.now();
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

  async status(): Promise<AgentStatus> {
    const { queue } = this.#running();
    const total: { -readonly [K in keyof QueueDepth]: number } = { waiting: 0, delayed: 0, active: 0, failed: 0 };
    for (const d of Object.values(await queue.depth())) {
      total.waiting += d.waiting;
      total.delayed += d.delayed;
      total.active += d.active;
      total.failed += d.failed;
    }
    const s = this.#deps.lifecycle();
    // The same rule as WorkQueue.idle(): `waiting` counts only jobs whose run time is due.
    return { ready: s.ready, version: VIGIL_VERSION, mode: this.#deps.mode, queue: total, idle: s.caughtUp && total.waiting === 0 && total.active === 0 };
  }

  enforcement(): EnforcementStatus[] {
    return this.#running().enforcer.status();
  }

  publicDocument(path: string): PublicDocument | undefined {
    return this.#deps.parts()?.runtime.publicDocument(path);
  }

  async resumeEnforcement(policy?: string): Promise<{ resumed: readonly string[] }> {
    return { resumed: await this.#running().enforcer.resume(policy) };
  }

  failedEnforcement(query: { policy?: string; limit: number; offset: number }): Promise<{ items: FailedEnforcement[]; total: number }> {
    return this.#running().enforcer.failed(query);
  }

  retryEnforcement(request: { ids: readonly string[] } | { all: true; policy?: string }): Promise<RetryEnforcementResult> {
    const { enforcer } = this.#running();
    return "ids" in request ? enforcer.retry({ ids: request.ids }) : enforcer.retry(request.policy === undefined ? {} : { policy: request.policy });
  }

  #running(): EngineParts {
    const parts = this.#deps.parts();
    if (!parts) {
      const s = this.#deps.lifecycle();
      // Cluster mode answers while it waits for Redis at start: not a stop, a retry-later.
      if (s.started && !s.stopping) throw new VigilError("VIGIL_ERR_UNAVAILABLE", `the agent is starting${s.unavailable?.length ? `: ${s.unavailable.join("; ")}` : ""}`);
      throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
    }
    return parts;
  }
}

function mostRestrictive(levels: readonly AccessLevel[]): AccessLevel {
  return levels.reduce<AccessLevel>((a, b) => (accessRank(b) > accessRank(a) ? b : a), "full_access");
}
