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
import type { AgentApi, AgentStatus, EnforcementStatus, SignalInput, SubjectDetail, SubjectSummary } from "../http/agent-api.ts";
import type { PublicDocument } from "../plugin/provider.ts";
import type { AuditEntry, AuditEvent, AuditQuery, StateStore } from "../store/contract.ts";
import type { QueueDepth, WorkQueue } from "../queue/contract.ts";
import type { Clock } from "../util/clock.ts";
import { VIGIL_VERSION } from "../util/version.ts";
import { VigilError } from "../errors.ts";
import type { Runtime } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { ENGINE_REASONS, type Evaluator } from "./evaluator.ts";
import type { Enforcer } from "./enforcer.ts";
import { EVALUATE_JOB, EVALUATE_RETRY, type EvaluateJob } from "./scheduler.ts";

/** What became of one signal of `acceptSignals`: recorded, or refused with the error `acceptSignal` would throw. */
export type SignalOutcome = { readonly id: string; readonly policies: readonly string[] } | { readonly error: VigilError };

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
    if (s.ready) return { ready: true, reasons: [] };
    return { ready: false, reasons: [s.stopping ? "stopping" : "starting"] };
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
      const d = defaultDecision(id, runtime.config.default_security_rule, this.#deps.clock.now());
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
    if (covering.length === 0) return [defaultDecision(id, runtime.config.default_security_rule, this.#deps.clock.now())];
    const out: Decision[] = [];
    for (const p of covering) {
      const evaluated = await evaluator.evaluate(p.name, [id], { pull: "always", trigger: "api" }, (ev) => enforcer.enforce(ev.map((e) => e.state)));
      out.push(...evaluated.map((e) => e.state.decision));
    }
    return out;
  }

  async acceptSignal(signal: SignalInput): Promise<{ id: string; policies: readonly string[] }> {
    const [outcome] = await this.acceptSignals([signal]);
    if (outcome === undefined || "error" in outcome) throw outcome?.error;
    return outcome;
  }

  /**
   * Records several signals together: each is checked like `acceptSignal` (a refused one gets its
   * error and does not hold back the others), then the results, the audit lines and the evaluation
   * jobs of all accepted ones are written in one step each, with one job per policy for all its
   * subjects. Everything is durable when it resolves; a write failure rejects the whole call.
   */
  async acceptSignals(signals: readonly SignalInput[]): Promise<SignalOutcome[]> {
    const { index, runtime, store, queue } = this.#running();
    const now = this.#deps.clock.now();
    const outcomes: SignalOutcome[] = [];
    const results: CheckResult[] = [];
    const audit: AuditEvent[] = [];
    const jobs = new Map<string, string[]>();
    let first: string | undefined;
    for (const signal of signals) {
      const subject = index.get(signal.subject);
      if (!subject) {
        outcomes.push({ error: new VigilError("VIGIL_ERR_UNKNOWN_SUBJECT", `no inventory knows subject "${signal.subject}"`) });
        continue;
      }
      const covering = runtime.policiesFor(subject);
      const policies = covering.filter((p) => p.checks.includes(signal.check));
      if (policies.length === 0) {
        const known = [...new Set(covering.flatMap((p) => p.checks))];
        outcomes.push({
          error: new VigilError(
            "VIGIL_ERR_BAD_REQUEST",
            `check "${signal.check}" is not verified by any policy covering subject "${signal.subject}"` + (known.length ? `; those policies check: ${known.join(", ")}` : "; no policy covers it"),
          ),
        });
        continue;
      }
      const id = randomUUID();
      first ??= id;
      const result: CheckResult = {
        check: signal.check,
        subject: subject.id,
        status: signal.status,
        ...(signal.risk ? { risk: signal.risk } : {}),
        reasons: [{ code: ENGINE_REASONS.SIGNAL, message: signal.reason ?? `signal from ${signal.source ?? "api"}` }],
        evidence: { ...signal.evidence, signal_id: id, source: signal.source ?? "api" },
        observed_at: now,
        expires_at: now + (signal.ttl_ms ?? runtime.ttl(signal.check)),
        source: "push",
        ...(signal.stream ? { stream: signal.stream } : {}),
      };
      results.push(result);
      audit.push({ type: "signal", id, subject: subject.id, check: signal.check, status: signal.status, risk: signal.risk ?? null, ttl_ms: result.expires_at - now, source: signal.source ?? "api", stream: signal.stream ?? null, reason: signal.reason ?? null, ...(signal.evidence ? { evidence: signal.evidence } : {}) });
      for (const p of policies) {
        const subjects = jobs.get(p.name);
        if (subjects === undefined) jobs.set(p.name, [subject.id]);
        else if (!subjects.includes(subject.id)) subjects.push(subject.id);
      }
      outcomes.push({ id, policies: policies.map((p) => p.name) });
    }
    if (first === undefined) return outcomes;
    // Durable before we answer 202: the results, the audit lines and the evaluation jobs.
    await store.putResults(results);
    await store.appendAudit(audit);
    await queue.enqueueMany<EvaluateJob>(
      EVALUATE_JOB,
      [...jobs].map(([policy, subjects]) => ({ payload: { policy, subjects, trigger: "signal", pull: "stale", signal_at: now }, options: { id: `signal:${first}:${policy}`, ...EVALUATE_RETRY } })),
    );
    return outcomes;
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

  #running(): EngineParts {
    const parts = this.#deps.parts();
    if (!parts) throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
    return parts;
  }
}

function mostRestrictive(levels: readonly AccessLevel[]): AccessLevel {
  return levels.reduce<AccessLevel>((a, b) => (accessRank(b) > accessRank(a) ? b : a), "full_access");
}
