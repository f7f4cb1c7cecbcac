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
import type { AccessCounts, AgentApi, AgentStatus, EnforcementStatus, FailedEnforcement, ObservationInput, ObservationsReceipt, RetryEnforcementResult, SignalInput, SubjectDetail, SubjectSummary } from "../http/agent-api.ts";
import type { Observation } from "../plugin/check.ts";
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

  /**
   * Pushed points → the checks that watch their series (`Check.observe`). A subject whose result
   * they change has the fresh result stored and is evaluated at once, like a signal; the points
   * themselves are learned in memory and written with the detectors' state.
   */
  async acceptObservations(batch: readonly ObservationInput[]): Promise<ObservationsReceipt> {
    const { index, runtime, store, queue } = this.#running();
    const rejected: { index: number; code: string; message: string }[] = [];
    const perCheck = new Map<string, { observations: Observation[]; at: number[] }>();
    const sinks = [...runtime.checks].filter(([, c]) => c.observe !== undefined && c.takesSeries !== undefined);
    batch.forEach((o, i) => {
      const subject = index.get(o.subject);
      if (!subject) return rejected.push({ index: i, code: "VIGIL_ERR_UNKNOWN_SUBJECT", message: `no inventory knows subject "${o.subject}"` });
      const takers = sinks.filter(([name, c]) => (o.check === undefined || o.check === name) && c.takesSeries!(o.series));
      if (takers.length === 0) return rejected.push({ index: i, code: "VIGIL_ERR_BAD_REQUEST", message: `no check${o.check ? ` named "${o.check}"` : ""} watches pushed series "${o.series}"` });
      const covering = runtime.policiesFor(subject);
      const verified = takers.filter(([name]) => covering.some((p) => p.checks.includes(name)));
      if (verified.length === 0) return rejected.push({ index: i, code: "VIGIL_ERR_BAD_REQUEST", message: `no policy covering subject "${o.subject}" verifies ${takers.map(([n]) => n).join(", ")}` });
      for (const [name] of verified) {
        let entry = perCheck.get(name);
        if (!entry) perCheck.set(name, (entry = { observations: [], at: [] }));
        entry.observations.push({ subject, series: o.series, timestamp: o.timestamp, value: o.value });
        entry.at.push(i);
      }
    });
    const outcome = new Map<number, string>();
    const results: CheckResult[] = [];
    for (const [name, entry] of perCheck) {
      const check = runtime.checks.get(name)!;
      const r = await check.observe!(entry.observations, { check: name, ttlMs: runtime.ttl(name) });
      // A point two checks watch counts once, by the better of what they made of it.
      r.outcomes.forEach((o, k) => {
        const i = entry.at[k]!;
        if (outcome.get(i) !== "accepted") outcome.set(i, o);
      });
      results.push(...r.results);
    }
    const evaluating = [...new Set(results.map((r) => r.subject))];
    if (results.length > 0) {
      await store.putResults(results);
      const jobs = new Map<string, Set<string>>();
      for (const r of results) {
        const subject = index.get(r.subject);
        if (!subject) continue;
        for (const p of runtime.policiesFor(subject)) if (p.checks.includes(r.check)) jobs.set(p.name, (jobs.get(p.name) ?? new Set()).add(r.subject));
      }
      const id = randomUUID();
      await queue.enqueueMany<EvaluateJob>(
        EVALUATE_JOB,
        [...jobs].flatMap(([policy, subjects]) => {
          const ids = [...subjects];
          const out = [];
          for (let k = 0; k < ids.length; k += 100) {
            out.push({ payload: { policy, subjects: ids.slice(k, k + 100), trigger: "observation" as const, pull: "stale" as const }, options: { id: `observation:${id}:${policy}:${k}`, ...EVALUATE_RETRY } });
          }
          return out;
        }),
      );
    }
    const skipped = { non_finite: 0, out_of_order: 0, dropped: 0, not_watched: 0 };
    let accepted = 0;
    for (const o of outcome.values()) {
      if (o === "accepted") accepted++;
      else if (o in skipped) skipped[o as keyof typeof skipped]++;
    }
    return { accepted, skipped, rejected, evaluating };
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
    const { ready, reasons } = this.ready();
    const { runtime, enforcer } = this.#running();
    const { policies, subjects } = await this.#subjectCounts(runtime.policies.map((p) => p.name));
    const paused = enforcer.paused();
    const unreconciled = enforcer.unreconciled();
    const unreconciledTotal = Object.values(unreconciled.counts).reduce((n, byAction) => n + Object.values(byAction).reduce((a, b) => a + b, 0), 0);
    return {
      ready,
      reasons,
      version: VIGIL_VERSION,
      mode: this.#deps.mode,
      dry_run: runtime.config.raw.agent.dry_run,
      policies: policies.map((p) => ({ ...p, paused: paused[p.name] ?? false })),
      subjects,
      paused: Object.keys(paused).filter((name) => paused[name]),
      unreconciled: {
        total: unreconciledTotal,
        oldest_failed_at: unreconciledTotal === 0 ? null : new Date(this.#deps.clock.now() - unreconciled.oldest_seconds * 1000).toISOString(),
      },
      queue: total,
      // The same rule as WorkQueue.idle(): `waiting` counts only jobs whose run time is due.
      idle: s.caughtUp && total.waiting === 0 && total.active === 0,
    };
  }

  /** Subjects by access, overall and per policy, from the same summaries `GET /v1/subjects` lists. */
  async #subjectCounts(names: readonly string[]): Promise<{ policies: { name: string; subjects: AccessCounts }[]; subjects: AccessCounts }> {
    const zero = () => ({ total: 0, full_access: 0, read_only: 0, deny: 0, pending: 0 });
    const overall = zero();
    const byPolicy = new Map(names.map((n) => [n, zero()]));
    const { subjects } = await this.listSubjects({ limit: Number.MAX_SAFE_INTEGER, offset: 0 });
    for (const s of subjects) {
      overall.total++;
      overall[s.status === "pending" ? "pending" : s.access]++;
      for (const d of s.policies) {
        const c = byPolicy.get(d.policy);
        if (!c) continue;
        c.total++;
        c[d.access]++;
      }
      for (const name of s.pending) {
        const c = byPolicy.get(name);
        if (!c) continue;
        c.total++;
        c.pending++;
      }
    }
    return { policies: names.map((name) => ({ name, subjects: byPolicy.get(name)! })), subjects: overall };
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
