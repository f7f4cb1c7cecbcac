/**
 * Carries decisions out. For every state whose generation has not been enforced it works out the
 * transition (revert the actions of the level being left, apply those of the level entered), asks the
 * blast-radius guard, enqueues one durable action job per call with its idempotency key as job id,
 * then marks the generation enforced. A crash between the two steps re-enqueues the same ids, which
 * the queue runs once.
 */
import { createHash } from "node:crypto";
import { ACCESS_LEVELS, accessRank, type AccessLevel, type Subject } from "../policy/model.ts";
import { admit, resumeGuard, type GuardState } from "../policy/decide.ts";
import type { PolicySpec } from "../config/compile.ts";
import type { StateStore, StoredState, AuditEvent } from "../store/contract.ts";
import type { JobRecord, WorkQueue } from "../queue/contract.ts";
import type { ActionRequest } from "../plugin/action.ts";
import type { PlannedCall } from "../net/api-call.ts";
import type { VigilMetrics } from "../telemetry/metrics.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../telemetry/log.ts";
import type { EnforcementStatus } from "../http/agent-api.ts";
import type { Runtime, BoundAction } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { KeyedLock } from "./keyed-lock.ts";
import { errorMessage, isTransient, VigilError } from "../errors.ts";
import { redact } from "../util/redact.ts";

export const ACTION_JOB = "action";

/** Payload of an action job: everything needed to run it after a restart. */
export interface ActionJob {
  readonly policy: string;
  readonly subject: string;
  readonly generation: number;
  readonly action: string;
  readonly type: string;
  readonly operation: "apply" | "revert";
  readonly access: AccessLevel;
  readonly previous_access: AccessLevel;
  readonly idempotency_key: string;
  readonly decided_at: number;
  /** Decided when the job was enqueued: plan only, send nothing. */
  readonly dry_run?: boolean;
  /** When the signal that led here was accepted (epoch ms), for the latency histogram. */
  readonly signal_at?: number;
}

/** policy + subject + generation + action + operation → a stable key, the same on every retry and replica. */
export function idempotencyKey(policy: string, subject: string, generation: number, action: string, operation: string): string {
  return createHash("sha256").update(`${policy}\u0000${subject}\u0000${generation}\u0000${action}\u0000${operation}`).digest("hex").slice(0, 40);
}

/**
 * The calls one transition needs, then every reconciler once (it brings its target to the new level
 * whatever list names it). A subject's first enforcement runs the reconcilers even at full access:
 * the mesh must carry the declared allow.
 *
 * Tightening (read_only → deny) applies the entered level's actions and reverts nothing: what the
 * left level put in place only restricts, and reverting it first (putting a user back into the full
 * group, say) would open a window of more access while the stricter actions are still on their way.
 * Loosening reverts the actions of every level stricter than the one entered, up to the one left
 * (deny → full_access reverts deny's and read_only's), then applies the entered level's. Reverts are
 * idempotent, so reverting a level that was skipped on the way down changes nothing.
 */
export function transition(runtime: Runtime, policy: PolicySpec, from: AccessLevel, to: AccessLevel, firstEnforcement: boolean): { bound: BoundAction; operation: "apply" | "revert" }[] {
  const reconcile = runtime.reconcilers(policy).map((bound) => ({ bound, operation: "apply" as const }));
  if (from === to) return firstEnforcement ? reconcile : [];
  const loosening = accessRank(to) < accessRank(from);
  const undone = firstEnforcement || !loosening ? [] : ACCESS_LEVELS.filter((l) => accessRank(l) > accessRank(to) && accessRank(l) <= accessRank(from)).reverse();
  const reverts = undone.flatMap((level) => runtime.actionsAt(policy, level).filter((b) => b.revertible).map((bound) => ({ bound, operation: "revert" as const })));
  const applies = runtime.actionsAt(policy, to).filter((b) => !b.reconciles).map((bound) => ({ bound, operation: "apply" as const }));
  return [...reverts, ...applies, ...reconcile];
}

export class Enforcer {
  readonly #store: StateStore;
  readonly #queue: WorkQueue;
  readonly #index: SubjectIndex;
  readonly #metrics: VigilMetrics;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #guards = new Map<string, GuardState>();
  readonly #lock: KeyedLock;
  /** One job per (policy, subject, action) at a time: see `run`. */
  readonly #jobLock = new KeyedLock();
  #runtime: Runtime;
  #flushChain: Promise<void> = Promise.resolve();
  #pendingFlush: Promise<void> | undefined;

  constructor(deps: { store: StateStore; queue: WorkQueue; index: SubjectIndex; metrics: VigilMetrics; clock: Clock; logger: Logger; runtime: Runtime; lock?: KeyedLock }) {
    this.#lock = deps.lock ?? new KeyedLock();
    this.#store = deps.store;
    this.#queue = deps.queue;
    this.#index = deps.index;
    this.#metrics = deps.metrics;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#runtime = deps.runtime;
  }

  set runtime(r: Runtime) {
    this.#runtime = r;
  }

  /**
   * Enqueues the actions of the given states (those not yet enforced). Callers hold the subjects'
   * lock. `released` names policies whose held-back decisions an operator has just released: they
   * pass the guard this once. `reconcile` also takes states whose generation was handled but whose
   * access was never carried out (planned in dry-run, or exempt at the time).
   */
  async enforce(states: readonly StoredState[], opts: { signalAt?: number; released?: ReadonlySet<string>; reconcile?: boolean } = {}): Promise<void> {
    const runtime = this.#runtime;
    const audit: AuditEvent[] = [];
    const jobs: { payload: ActionJob; options: { id: string; attempts: number; backoff: { delay: number; max_delay: number } } }[] = [];
    const done: { state: StoredState; access: AccessLevel }[] = [];
    const touched = new Set<string>();
    for (const state of states) {
      const d = state.decision;
      const pending = opts.reconcile ? d.access !== state.enforced_access : state.enforced_generation < d.generation;
      if (!pending) continue;
      const policy = runtime.policy(d.policy);
      if (!policy) continue;
      const subject = this.#index.get(d.subject);
      if (opts.reconcile && (!subject || runtime.isExempt(policy, subject))) continue;
      const calls = transition(runtime, policy, state.enforced_access, d.access, state.enforced_generation === 0);
      const dryRun = (b: BoundAction) => b.spec.dry_run ?? policy.dry_run;
      const real = calls.filter((c) => !dryRun(c.bound));
      if (opts.reconcile && real.length === 0) continue;
      const downgrade = accessRank(d.access) > accessRank(state.enforced_access);
      if (downgrade && real.length > 0 && !opts.released?.has(policy.name)) {
        const g = admit(this.#guards.get(policy.name) ?? resumeGuard(), real.length, this.#clock.now(), policy.limits);
        this.#guards.set(policy.name, g.state);
        touched.add(policy.name);
        if (g.resumed_now) audit.push({ type: "enforcement_resumed", policy: policy.name, by: "window" });
        if (g.paused_now) {
          this.#metrics.enforcementPaused(policy.name);
          this.#logger.warn({ policy: policy.name, limits: policy.limits }, "blast-radius guard: enforcement paused");
          audit.push({ type: "enforcement_paused", policy: policy.name, max_actions: policy.limits.max_actions, window_ms: policy.limits.window, held_subject: d.subject });
        }
        if (!g.admitted) continue;
      }
      for (const { bound, operation } of opts.reconcile ? real : calls) {
        const key = idempotencyKey(policy.name, d.subject, d.generation, bound.spec.name, operation);
        const dry = dryRun(bound);
        jobs.push({
          payload: {
            policy: policy.name,
            subject: d.subject,
            generation: d.generation,
            action: bound.spec.name,
            type: bound.spec.type,
            operation,
            access: d.access,
            previous_access: state.enforced_access,
            idempotency_key: key,
            decided_at: d.decided_at,
            dry_run: dry,
            ...(opts.signalAt === undefined ? {} : { signal_at: opts.signalAt }),
          },
          // A plan has its own job id: turning dry-run off later must not find the real call "already done".
          options: { id: dry ? `plan:${key}` : key, attempts: policy.retry.attempts, backoff: { delay: policy.retry.delay, max_delay: policy.retry.max_delay } },
        });
      }
      // What the target systems now carry: unchanged when every call was only planned.
      done.push({ state, access: calls.length > 0 && real.length === 0 ? state.enforced_access : d.access });
    }
    // The guard's window and pause outlive a restart: a crash loop must not reset the budget.
    for (const name of touched) await this.#store.putMeta(`guard:${name}`, this.#guards.get(name));
    if (audit.length > 0) await this.#store.appendAudit(audit);
    if (jobs.length > 0) await this.#queue.enqueueMany(ACTION_JOB, jobs);
    for (const { state, access } of done) await this.#store.markEnforced(state.decision.policy, state.decision.subject, state.decision.generation, access);
  }

  /** Loads the persisted guard state of every policy not yet in memory (start, reload). */
  async loadGuards(): Promise<void> {
    for (const p of this.#runtime.policies) {
      if (this.#guards.has(p.name)) continue;
      const stored = (await this.#store.getMeta(`guard:${p.name}`)) as GuardState | undefined;
      if (stored && Array.isArray(stored.recent) && typeof stored.paused === "boolean") this.#guards.set(p.name, stored);
    }
  }

  /**
   * Carries out access that was decided but never enforced: after dry-run is switched off, or an
   * exemption lifted (runs at start and after each reload).
   */
  async reconcile(): Promise<void> {
    const states = (await this.#store.listStates()).filter((s) => s.decision.access !== s.enforced_access);
    await this.#locked(states, { reconcile: true });
  }

  /** Enforces states under their locks, re-reading each first: the copy in hand may be stale by then. */
  async #locked(states: readonly StoredState[], opts: { released?: ReadonlySet<string>; reconcile?: boolean }): Promise<void> {
    const byPolicy = new Map<string, string[]>();
    for (const s of states) {
      const list = byPolicy.get(s.decision.policy);
      if (list) list.push(s.decision.subject);
      else byPolicy.set(s.decision.policy, [s.decision.subject]);
    }
    for (const [policy, subjects] of byPolicy) {
      for (let i = 0; i < subjects.length; i += 500) {
        const chunk = subjects.slice(i, i + 500);
        await this.#lock.run(
          chunk.map((s) => `${policy}\u0000${s}`),
          async () => this.enforce([...(await this.#store.getStates(policy, chunk)).values()], opts),
        );
      }
    }
  }

  /**
   * Enforces everything pending (start-up recovery, after a pause lifts). Flushes run one at a
   * time; a plain flush asked for while another is pending joins it.
   */
  flush(released: ReadonlySet<string> = new Set()): Promise<void> {
    if (released.size === 0 && this.#pendingFlush) return this.#pendingFlush;
    const run = this.#flushChain.then(() => this.#flushOnce(released));
    this.#flushChain = run;
    if (released.size === 0) {
      this.#pendingFlush = run;
      void run.finally(() => {
        if (this.#pendingFlush === run) this.#pendingFlush = undefined;
      });
    }
    return run;
  }

  async #flushOnce(released: ReadonlySet<string>): Promise<void> {
    try {
      const pending = await this.#store.unenforced();
      if (pending.length > 0) await this.#locked(pending, { released });
    } catch (err) {
      this.#logger.error({ err }, `enforcement flush failed: ${errorMessage(err)}`);
    }
  }

  /** Operator resume: clears the guard for one policy or all and releases every decision it held back. */
  async resume(policy?: string): Promise<string[]> {
    const names = policy ? [policy] : this.#runtime.policies.map((p) => p.name);
    if (policy && !this.#runtime.policy(policy)) throw new VigilError("VIGIL_ERR_BAD_REQUEST", `unknown policy "${policy}"`);
    const resumed = names.filter((n) => this.#guards.get(n)?.paused);
    for (const n of names) {
      this.#guards.set(n, resumeGuard());
      await this.#store.putMeta(`guard:${n}`, resumeGuard());
    }
    if (resumed.length > 0) await this.#store.appendAudit(resumed.map((p) => ({ type: "enforcement_resumed", policy: p, by: "operator" })));
    await this.flush(new Set(names));
    return resumed;
  }

  status(): EnforcementStatus[] {
    const now = this.#clock.now();
    return this.#runtime.policies.map((p) => {
      const g = this.#guards.get(p.name);
      return {
        policy: p.name,
        paused: g?.paused ?? false,
        ...(g?.paused_at ? { paused_at: new Date(g.paused_at).toISOString() } : {}),
        recent_actions: (g?.recent ?? []).filter((t) => t > now - p.limits.window).length,
        max_actions: p.limits.max_actions,
        window_ms: p.limits.window,
      };
    });
  }

  paused(): Record<string, boolean> {
    return Object.fromEntries(this.#runtime.policies.map((p) => [p.name, this.#guards.get(p.name)?.paused ?? false]));
  }

  /** The request an action job carries out. */
  request(job: ActionJob, subject: Subject, decision: StoredState["decision"]): ActionRequest {
    const policy = this.#runtime.policy(job.policy);
    return {
      decision: { ...decision, access: job.access, generation: job.generation, decided_at: job.decided_at },
      subject,
      previous_access: job.previous_access,
      operation: job.operation,
      idempotency_key: job.idempotency_key,
      ...(policy?.edge ? { edge: policy.edge } : {}),
    };
  }

  /**
   * The action job handler: skip if superseded, plan in dry-run, otherwise apply or revert and record.
   * Jobs of one action for one subject run one at a time, and each decides whether it is still wanted
   * only once the previous one has finished: a reconciler's steps (apply this, delete that) from two
   * quick changes must not interleave, or the target ends in neither state (an Istio DENY deleted by
   * the older job after the newer one wrote it, say).
   */
  run(record: JobRecord<ActionJob>): Promise<void> {
    const job = record.payload;
    return this.#jobLock.run([`${job.policy}\u0000${job.subject}\u0000${job.action}`], () => {
      // Tracked from here on, so a reload closes the old runtime's provider clients only after this job.
      const runtime = this.#runtime;
      return runtime.track((signal) => this.#runJob(record, runtime, signal));
    });
  }

  async #runJob(record: JobRecord<ActionJob>, runtime: Runtime, signal: AbortSignal): Promise<void> {
    const job = record.payload;
    const bound = runtime.action(job.policy, job.action);
    const policy = runtime.policy(job.policy);
    if (!bound || !policy) {
      throw new VigilError("VIGIL_ERR_PLUGIN", `action ${job.action} of policy ${job.policy} is no longer configured`);
    }
    const state = await this.#store.getState(job.policy, job.subject);
    const base = { policy: job.policy, subject: job.subject, generation: job.generation, action: job.action, action_type: job.type, operation: job.operation, access: job.access, idempotency_key: job.idempotency_key };
    // Level-triggered: run only what the current decision still wants, so jobs of several quick
    // changes give the right end state in any order. An apply is wanted while access is still its
    // level; a revert while access has not come back to the level it undoes.
    const current = state?.decision.access ?? job.access;
    const wanted = job.operation === "apply" ? current === job.access : current !== job.previous_access;
    if (!wanted) {
      this.#metrics.action(job.type, "superseded");
      await this.#store.appendAudit([{ type: "action_superseded", ...base, current_access: current, current_generation: state?.decision.generation ?? null }]);
      return;
    }
    // A subject that has just left every inventory still has its reverts to run (removed_subjects: restore).
    const known = this.#index.get(job.subject) ?? this.#index.departed(job.subject);
    if (known && runtime.isExempt(policy, known)) {
      // Exempted after the job was enqueued: break-glass wins over pending work.
      this.#metrics.action(job.type, "skipped");
      await this.#store.appendAudit([{ type: "enforcement_skipped", ...base, reason: "subject is exempt (break-glass)" }]);
      return;
    }
    const subject = known ?? { id: job.subject, kind: "workload" as const, attributes: {}, labels: {} };
    const req = this.request(job, subject, state?.decision ?? placeholderDecision(job));
    const dryRun = job.dry_run ?? bound.spec.dry_run ?? policy.dry_run;
    if (dryRun) {
      const plan: PlannedCall[] = bound.action.plan(req);
      this.#metrics.action(job.type, "dry_run");
      await this.#store.appendAudit([{ type: "action_planned", ...base, dry_run: true, plan: redact(plan) }]);
      return;
    }
    try {
      const outcome = job.operation === "apply" ? await bound.action.apply({ ...req, signal }) : await bound.action.revert!({ ...req, signal });
      this.#metrics.action(job.type, "success");
      if (job.signal_at !== undefined) this.#metrics.signalToEnforcement(Math.max(0, this.#clock.now() - job.signal_at) / 1000);
      await this.#store.appendAudit([{ type: "action", ...base, outcome: "success", attempt: record.attempt, verified: outcome.verified ?? null, detail: redact(outcome.detail ?? {}) }]);
    } catch (caught) {
      // Cut short by a reload or stop: whatever the action threw (a plugin may reject with its own
      // AbortError), the job is not done and must run again on the new runtime or after the restart.
      const err = signal.aborted && !isTransient(caught) ? new VigilError("VIGIL_ERR_SHUTDOWN", `${errorMessage(caught)} (the configuration was replaced or the agent is stopping)`, { cause: caught }) : caught;
      const final = !isTransient(err) || record.attempt >= record.max_attempts;
      this.#metrics.action(job.type, final ? "failed" : "retried");
      this.#logger.warn({ err, ...base, attempt: record.attempt, max_attempts: record.max_attempts }, `action ${job.action} ${job.operation} failed${final ? "" : "; will retry"}: ${errorMessage(err)}`);
      throw err;
    }
  }
}

function placeholderDecision(job: ActionJob): StoredState["decision"] {
  return { policy: job.policy, subject: job.subject, access: job.access, risk: "high", reasons: [], generation: job.generation, decided_at: job.decided_at, evidence: {}, exempt: false };
}
