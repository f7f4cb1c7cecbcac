/**
 * One evaluation of a policy for a batch of subjects: gather (run pull checks, read stored and pushed
 * results) → decide (pure) → record (states, results, audit, metrics). Enforcement is handed on.
 */
import { SpanStatusCode } from "@opentelemetry/api";
import type { CheckResult, Subject } from "../policy/model.ts";
import { decide, type DecideOutput } from "../policy/decide.ts";
import type { PolicySpec } from "../config/compile.ts";
import type { StateStore, StoredState, AuditEvent } from "../store/contract.ts";
import type { PluginContext } from "../plugin/context.ts";
import type { VigilMetrics } from "../telemetry/metrics.ts";
import type { Runtime } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { KeyedLock, type Lock } from "./keyed-lock.ts";
import { errorMessage } from "../errors.ts";

/** Reason codes the engine adds to results. */
export const ENGINE_REASONS = {
  /** The check failed to run (error or timeout); the result is unknown. */
  CHECK_ERROR: "CHECK_ERROR",
  /** The check ran but returned nothing for this subject. */
  CHECK_NO_RESULT: "CHECK_NO_RESULT",
  /** A result pushed through the signals API. */
  SIGNAL: "SIGNAL",
} as const;

const SPAN_EVALUATE = "vigil.evaluate";

/**
 * Most subjects one `run` of a check is given. A job of more runs its checks over it in parts, one
 * after the other, each with the check's timeout: a check that calls a source for each subject
 * (TLS handshakes, per-device reads) gets no more to do within its timeout than with jobs of this
 * size, and no more calls at once.
 */
export const CHECK_RUN_MAX = 100;

export type PullMode = "always" | "stale";

export interface EvaluateOptions {
  /** `always` re-runs every pull check; `stale` only those without a current stored result (signals). */
  readonly pull: PullMode;
  readonly trigger: string;
}

export interface Evaluated {
  readonly subject: Subject;
  readonly outcome: DecideOutput;
  readonly state: StoredState;
  /** A check asked to be run again at this instant (e.g. a certificate's warning point). */
  readonly recheck_at?: number;
}

export class Evaluator {
  readonly #lock: Lock;
  readonly #store: StateStore;
  readonly #index: SubjectIndex;
  readonly #metrics: VigilMetrics;
  readonly #ctx: PluginContext;
  #runtime: Runtime;

  /** `lock` is shared with the enforcer, so a subject is never evaluated while its enforcement is worked out. */
  constructor(deps: { store: StateStore; index: SubjectIndex; metrics: VigilMetrics; ctx: PluginContext; runtime: Runtime; lock?: Lock }) {
    this.#lock = deps.lock ?? new KeyedLock();
    this.#store = deps.store;
    this.#index = deps.index;
    this.#metrics = deps.metrics;
    this.#ctx = deps.ctx;
    this.#runtime = deps.runtime;
  }

  set runtime(r: Runtime) {
    this.#runtime = r;
  }

  /**
   * Evaluates the subjects (by id) that still exist and that the policy still covers. `then` runs
   * with the subjects still locked (enforcement), so no other evaluation reads their state between
   * the decision and the bookkeeping of its enforcement.
   */
  async evaluate(policyName: string, ids: readonly string[], opts: EvaluateOptions, then?: (evaluated: Evaluated[]) => Promise<void>): Promise<Evaluated[]> {
    const runtime = this.#runtime;
    const policy = runtime.policy(policyName);
    if (!policy) return [];
    const subjects = ids.map((id) => this.#index.get(id)).filter((s): s is Subject => !!s && runtime.covers(policy, s));
    if (subjects.length === 0) return [];
    const keys = subjects.map((s) => `${policy.name}\u0000${s.id}`);
    return this.#lock.run(keys, () =>
      this.#ctx.tracer.startActiveSpan(SPAN_EVALUATE, { attributes: { "vigil.policy": policy.name, "vigil.subjects": subjects.length, "vigil.trigger": opts.trigger } }, async (span) => {
        try {
          const evaluated = await this.#evaluateLocked(runtime, policy, subjects, opts);
          if (then) await then(evaluated);
          return evaluated;
        } catch (err) {
          span.recordException(err as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
          throw err;
        } finally {
          span.end();
        }
      }),
    );
  }

  async #evaluateLocked(runtime: Runtime, policy: PolicySpec, subjects: Subject[], opts: EvaluateOptions): Promise<Evaluated[]> {
    const started = performance.now();
    const ids = subjects.map((s) => s.id);
    const [prev, stored] = await Promise.all([this.#store.getStates(policy.name, ids), this.#store.getResults(ids, policy.checks)]);
    const now = this.#ctx.clock.now();

    const bySubject = new Map<string, CheckResult[]>();
    for (const r of stored) {
      const list = bySubject.get(r.subject);
      if (list) list.push(r);
      else bySubject.set(r.subject, [r]);
    }

    const fresh = await this.#pull(runtime, policy, subjects, bySubject, opts.pull, now);
    for (const r of fresh) {
      // A fresh known result replaces the stored pull result; a fresh `unknown` joins it, so
      // `hold` can still keep the last known one through a failed run.
      const stored = bySubject.get(r.subject) ?? [];
      const list = r.status === "unknown" ? stored : stored.filter((x) => !(x.check === r.check && (x.source ?? "pull") === "pull"));
      list.push(r);
      bySubject.set(r.subject, list);
    }
    // Unknown results are not stored: the last known one must stay available for `hold`.
    const keep = fresh.filter((r) => r.status !== "unknown");
    const decidedAt = this.#ctx.clock.now();
    const out: Evaluated[] = [];
    const audit: AuditEvent[] = [];
    const hasReconcilers = runtime.reconcilers(policy).length > 0;
    // Metrics are tallied per batch and added once per access level: one series lookup per level
    // instead of one per subject.
    const changes = new Map<string, number>();
    for (const subject of subjects) {
      const results = bySubject.get(subject.id) ?? [];
      const before = prev.get(subject.id);
      const exempt = runtime.isExempt(policy, subject);
      const outcome = decide({
        policy: policy.name,
        subject: subject.id,
        rules: policy.rules,
        checks: policy.checks.map((c) => runtime.checkInput(policy, c, results.filter((r) => r.check === c))),
        prev: before,
        exempt,
        now: decidedAt,
      });
      const enforcedAccess = before?.enforced_access ?? "full_access";
      const gen = outcome.state.decision.generation;
      // Nothing to carry out when access already matches what was enforced, or the subject is exempt;
      // except a first decision under a policy with reconcilers: the declared allow must be put in place.
      const firstReconcile = before === undefined && hasReconcilers;
      const settled = (outcome.state.decision.access === enforcedAccess && !firstReconcile) || exempt;
      const state: StoredState = {
        ...outcome.state,
        enforced_generation: settled ? gen : (before?.enforced_generation ?? 0),
        enforced_access: enforcedAccess,
      };
      const recheck = results.reduce<number | undefined>((m, r) => (r.next_run_at !== undefined && r.next_run_at > decidedAt && (m === undefined || r.next_run_at < m) ? r.next_run_at : m), undefined);
      out.push({ subject, outcome, state, ...(recheck === undefined ? {} : { recheck_at: recheck }) });
      if (outcome.changed) {
        const d = outcome.state.decision;
        changes.set(d.access, (changes.get(d.access) ?? 0) + 1);
        audit.push({
          type: "decision",
          policy: policy.name,
          subject: subject.id,
          access: d.access,
          previous_access: before?.decision.access ?? null,
          risk: d.risk,
          generation: d.generation,
          reasons: d.reasons,
          exempt,
          trigger: opts.trigger,
        });
        if (exempt && d.access !== enforcedAccess) {
          audit.push({ type: "enforcement_skipped", policy: policy.name, subject: subject.id, generation: d.generation, reason: "subject is exempt (break-glass)" });
        }
      }
    }
    // The decision's line before the decision: a process that dies between the two leaves the
    // decision unmade, and the evaluation that runs again records it again. The other way round, a
    // decision would stand without its line, as the state it left makes the re-run see no change.
    await this.#store.recordEvaluation({ results: keep, audit, states: out.map((e) => e.state) });
    for (const [access, n] of changes) this.#metrics.decisionChange(policy.name, access, n);
    this.#metrics.evaluation(policy.name, (performance.now() - started) / 1000, subjects.length);
    return out;
  }

  /** Runs the policy's pull checks; a failing or silent check yields `unknown` results, never an exception. */
  async #pull(runtime: Runtime, policy: PolicySpec, subjects: Subject[], stored: Map<string, CheckResult[]>, mode: PullMode, now: number): Promise<CheckResult[]> {
    const runs = policy.checks.map(async (name) => {
      const check = runtime.checks.get(name);
      const spec = runtime.checkSpec(name);
      if (!check || !spec) return [];
      const targets =
        mode === "always"
          ? subjects
          : subjects.filter((s) => !(stored.get(s.id) ?? []).some((r) => r.check === name && (r.source ?? "pull") === "pull" && r.expires_at > now));
      if (targets.length === 0) return [];
      const ttl = runtime.ttl(name);
      const out: CheckResult[] = [];
      const statuses = new Map<string, number>();
      for (let i = 0; i < targets.length; i += CHECK_RUN_MAX) {
        const part = targets.length <= CHECK_RUN_MAX ? targets : targets.slice(i, i + CHECK_RUN_MAX);
        let results: CheckResult[];
        try {
          const signal = AbortSignal.timeout(spec.timeout);
          results = await check.run(part, { ...this.#ctx, signal, timeoutMs: spec.timeout, ttlMs: ttl, check: name });
        } catch (err) {
          this.#metrics.checkError(name, "error");
          this.#ctx.logger.warn({ err, check: name, policy: policy.name }, `check ${name} failed: ${errorMessage(err)}`);
          const t = this.#ctx.clock.now();
          for (const s of part) out.push(unknownResult(name, s.id, ENGINE_REASONS.CHECK_ERROR, `check failed: ${errorMessage(err)}`, t));
          continue;
        }
        const got = new Map(results.filter((r) => r.check === name).map((r) => [r.subject, r]));
        const t = this.#ctx.clock.now();
        for (const s of part) {
          const r = got.get(s.id) ?? unknownResult(name, s.id, ENGINE_REASONS.CHECK_NO_RESULT, "the check returned no result for this subject", t);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          // Marked as pulled whatever the plugin said; one that says so already is kept as it is (no copy per result).
          out.push(r.source === "pull" ? r : { ...r, source: "pull" as const });
        }
      }
      for (const [status, n] of statuses) this.#metrics.checkResult(name, status, n);
      return out;
    });
    return (await Promise.all(runs)).flat();
  }
}

function unknownResult(check: string, subject: string, code: string, message: string, now: number): CheckResult {
  return { check, subject, status: "unknown", reasons: [{ code, message }], observed_at: now, expires_at: now, source: "pull" };
}

