/**
 * Carries decisions out. For every state whose generation has not been enforced it works out the
 * transition (revert the actions of the level being left, apply those of the level entered), asks the
 * blast-radius guard, records what the decision wants of each action (the enforcement records in the
 * store), enqueues one durable action job per call with its idempotency key as job id, then marks the
 * generation enforced. A crash between the steps re-enqueues the same ids, which the queue runs once.
 *
 * Level-triggered: a job that fails for good leaves its record unreconciled, and a sweep drives it
 * again (a fresh job with the same idempotency key) with capped backoff until it is achieved or a
 * later decision supersedes it.
 */
import { createHash } from "node:crypto";
import { ACCESS_LEVELS, accessRank, type AccessLevel, type Subject } from "../policy/model.ts";
import { admit, resumeGuard, type GuardState } from "../policy/decide.ts";
import type { PolicySpec } from "../config/compile.ts";
import type { StateStore, StoredState, AuditEvent, DecidedGeneration, DesiredEnforcement, EnforcementEvent, EnforcementKey, EnforcementRecord } from "../store/contract.ts";
import { isUnreconciled } from "../store/enforcement.ts";
import type { JobRecord, WorkQueue } from "../queue/contract.ts";
import type { ActionRequest } from "../plugin/action.ts";
import type { PlannedCall } from "../net/api-call.ts";
import type { VigilMetrics } from "../telemetry/metrics.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../telemetry/log.ts";
import type { EnforcementStatus, FailedEnforcement, RetryEnforcementResult } from "../http/agent-api.ts";
import type { Runtime, BoundAction } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { KeyedLock, type Lock } from "./keyed-lock.ts";
import { errorMessage, isTransient, VigilError } from "../errors.ts";
import { redact, scrub } from "../util/redact.ts";
import { backoffDelay } from "../util/backoff.ts";

export const ACTION_JOB = "action";

/** Longest error text kept on an enforcement record (scrubbed first, then cut). */
const MAX_ERROR_CHARS = 1_024;
/** Longest timer Node accepts. */
const MAX_TIMER_MS = 2_147_483_647;

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
 * (deny → full_access reverts deny's and read_only's), then applies the entered level's. The enforcer
 * then drops the reverts of actions vigil never applied (a level skipped on the way down): see
 * `Enforcer.enforce`.
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
  /** The guards as last read or written: the store's copy is the one that counts (see `#admit`). */
  readonly #guards = new Map<string, GuardState>();
  readonly #lock: Lock;
  /** One job per (policy, subject, action) at a time: see `run`. */
  readonly #jobLock: Lock;
  #runtime: Runtime;
  #flushChain: Promise<void> = Promise.resolve();
  #pendingFlush: Promise<void> | undefined;
  /** Sweeps run one after another (`#sweepOnce` never rejects). */
  #sweeps: Promise<void> = Promise.resolve();
  /** A plain sweep queued behind the running one, not started yet. */
  #nextSweep: Promise<void> | undefined;
  #redriveTimer: NodeJS.Timeout | undefined;
  #redriveAt = Infinity;
  #stopped = false;
  /** Unreconciled counts per policy and action and the oldest first failure, as of the last sweep. */
  #unreconciled: { counts: Record<string, Record<string, number>>; oldest: number } = { counts: {}, oldest: Infinity };

  /** `lock` locks (policy, subject) pairs (shared with the evaluator), `jobLock` action jobs; both in-process by default. */
  constructor(deps: { store: StateStore; queue: WorkQueue; index: SubjectIndex; metrics: VigilMetrics; clock: Clock; logger: Logger; runtime: Runtime; lock?: Lock; jobLock?: Lock }) {
    this.#lock = deps.lock ?? new KeyedLock();
    this.#jobLock = deps.jobLock ?? new KeyedLock();
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
    const desired: DesiredEnforcement[] = [];
    const decided: DecidedGeneration[] = [];
    const done: { state: StoredState; access: AccessLevel }[] = [];
    for (const state of states) {
      const d = state.decision;
      const pending = opts.reconcile ? d.access !== state.enforced_access : state.enforced_generation < d.generation;
      if (!pending) continue;
      const policy = runtime.policy(d.policy);
      if (!policy) continue;
      const subject = this.#index.get(d.subject);
      if (opts.reconcile && (!subject || runtime.isExempt(policy, subject))) continue;
      const dryRun = (b: BoundAction) => b.spec.dry_run ?? policy.dry_run;
      const all = transition(runtime, policy, state.enforced_access, d.access, state.enforced_generation === 0);
      const calls = await this.#withoutNeedlessReverts(state, all, dryRun);
      const real = calls.filter((c) => !dryRun(c.bound));
      if (opts.reconcile && !all.some((c) => !dryRun(c.bound))) continue;
      const downgrade = accessRank(d.access) > accessRank(state.enforced_access);
      if (downgrade && real.length > 0 && !opts.released?.has(policy.name)) {
        const g = await this.#admit(policy, real.length);
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
        const payload: ActionJob = {
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
        };
        // A plan has its own job id: turning dry-run off later must not find the real call "already done".
        jobs.push({ payload, options: { id: dry ? `plan:${key}` : key, ...retryOptions(policy) } });
        // Only what is sent is desired of the target: a plan changes nothing there.
        if (!dry) desired.push(desiredOf(payload));
      }
      if (state.enforced_generation > 0) decided.push({ policy: policy.name, subject: d.subject, generation: d.generation });
      // What the target systems now carry: unchanged when every call was only planned.
      done.push({ state, access: all.length > 0 && all.every((c) => dryRun(c.bound)) ? state.enforced_access : d.access });
    }
    if (audit.length > 0) await this.#store.appendAudit(audit);
    // Before the jobs: a job always finds its record (a crash in between re-enqueues the same ids).
    if (desired.length > 0 || decided.length > 0) await this.#store.desireEnforcement(desired, decided);
    if (jobs.length > 0) await this.#queue.enqueueMany(ACTION_JOB, jobs);
    for (const { state, access } of done) await this.#store.markEnforced(state.decision.policy, state.decision.subject, state.decision.generation, access);
  }

  /**
   * Drops the reverts of actions vigil never applied: a level skipped on the way down (full_access →
   * deny leaves read_only's actions unapplied), or an apply superseded before it ran. A revert stays
   * while its record says vigil's apply may be in effect, or while that apply may still be running
   * (the job itself checks again, after it). A subject without any record has a history from before
   * records were kept: its reverts are all sent, as they were then. Plans (dry-run) are not filtered.
   */
  async #withoutNeedlessReverts(
    state: StoredState,
    calls: { bound: BoundAction; operation: "apply" | "revert" }[],
    dryRun: (b: BoundAction) => boolean,
  ): Promise<{ bound: BoundAction; operation: "apply" | "revert" }[]> {
    if (!calls.some((c) => c.operation === "revert" && !dryRun(c.bound))) return calls;
    const records = new Map((await this.#store.getEnforcement(state.decision.policy, state.decision.subject)).map((r) => [r.action, r]));
    if (records.size === 0) return calls;
    return calls.filter((c) => {
      if (c.operation !== "revert" || dryRun(c.bound)) return true;
      const r = records.get(c.bound.spec.name);
      return r !== undefined && (r.in_effect || (r.operation === "apply" && (r.status === "pending" || r.status === "failed")));
    });
  }

  /**
   * Asks the blast-radius guard to admit `n` downgrade actions of `policy`. The guard lives in the
   * store and is read, changed and written in one atomic step: its window and pause outlive a
   * restart (a crash loop must not reset the budget), and replicas sharing a store share one budget
   * (the limit is per cluster, not per replica).
   */
  async #admit(policy: PolicySpec, n: number): Promise<ReturnType<typeof admit>> {
    const now = this.#clock.now();
    const g = await this.#store.updateMeta(`guard:${policy.name}`, (stored) => {
      const r = admit(guardOf(stored) ?? resumeGuard(), n, now, policy.limits);
      return { value: r.state, result: r };
    });
    this.#guards.set(policy.name, g.state);
    return g;
  }

  /** Reads every policy's guard from the store (start, reload, and each housekeeping pass: other replicas change it too). */
  async loadGuards(): Promise<void> {
    for (const p of this.#runtime.policies) {
      const stored = guardOf(await this.#store.getMeta(`guard:${p.name}`));
      if (stored) this.#guards.set(p.name, stored);
    }
  }

  /**
   * Carries out access that was decided but never enforced: after dry-run is switched off, or an
   * exemption lifted (runs at start and after each reload).
   */
  async reconcile(): Promise<void> {
    await this.#locked(await this.#store.unsettled(), { reconcile: true });
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

  /** The request an action job carries out; `prior` is what the enforcement record holds of the target before vigil's apply. */
  request(job: ActionJob, subject: Subject, decision: StoredState["decision"], prior?: Readonly<Record<string, unknown>>): ActionRequest {
    const policy = this.#runtime.policy(job.policy);
    return {
      decision: { ...decision, access: job.access, generation: job.generation, decided_at: job.decided_at },
      subject,
      previous_access: job.previous_access,
      operation: job.operation,
      idempotency_key: job.idempotency_key,
      action: { name: job.action, type: job.type },
      ...(prior === undefined ? {} : { prior }),
      ...(policy?.edge ? { edge: policy.edge } : {}),
    };
  }

  /**
   * The action job handler: skip if superseded, plan in dry-run, otherwise apply or revert and record.
   * Jobs of one action for one subject run one at a time, and each decides whether it is still wanted
   * only once the previous one has finished: a reconciler's steps (apply this, delete that) from two
   * quick changes must not interleave, or the target ends in neither state (an Istio DENY deleted by
   * the older job after the newer one wrote it, say). A job that fails for good leaves its record
   * unreconciled, with its next re-drive due, before the queue records the failure.
   */
  run(record: JobRecord<ActionJob>): Promise<void> {
    const job = record.payload;
    return this.#jobLock.run([`${job.policy}\u0000${job.subject}\u0000${job.action}`], async () => {
      // Tracked from here on, so a reload closes the old runtime's provider clients only after this job.
      const runtime = this.#runtime;
      try {
        await runtime.track((signal) => this.#runJob(record, runtime, signal));
      } catch (err) {
        if (!isTransient(err) || record.attempt >= record.max_attempts) await this.#failedForGood(record, err, runtime);
        throw err;
      }
    });
  }

  async #runJob(record: JobRecord<ActionJob>, runtime: Runtime, signal: AbortSignal): Promise<void> {
    const job = record.payload;
    const key: EnforcementKey = { policy: job.policy, subject: job.subject, action: job.action };
    const mine = { generation: job.generation, operation: job.operation };
    const bound = runtime.action(job.policy, job.action);
    const policy = runtime.policy(job.policy);
    if (!bound || !policy) {
      // Nothing can carry it out any more: not a failure to re-drive.
      await this.#store.updateEnforcement(key, { kind: "superseded", ...mine });
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
      await this.#store.updateEnforcement(key, { kind: "superseded", ...mine });
      await this.#store.appendAudit([{ type: "action_superseded", ...base, current_access: current, current_generation: state?.decision.generation ?? null }]);
      return;
    }
    // A subject that has just left every inventory still has its reverts to run (removed_subjects: restore).
    const known = this.#index.get(job.subject) ?? this.#index.departed(job.subject);
    if (known && runtime.isExempt(policy, known)) {
      // Exempted after the job was enqueued: break-glass wins over pending work.
      this.#metrics.action(job.type, "skipped");
      await this.#store.updateEnforcement(key, { kind: "superseded", ...mine });
      await this.#store.appendAudit([{ type: "enforcement_skipped", ...base, reason: "subject is exempt (break-glass)" }]);
      return;
    }
    const subject = known ?? { id: job.subject, kind: "workload" as const, attributes: {}, labels: {} };
    const decision = state?.decision ?? placeholderDecision(job);
    const dryRun = job.dry_run ?? bound.spec.dry_run ?? policy.dry_run;
    if (dryRun) {
      const plan: PlannedCall[] = bound.action.plan(this.request(job, subject, decision));
      this.#metrics.action(job.type, "dry_run");
      await this.#store.appendAudit([{ type: "action_planned", ...base, dry_run: true, plan: redact(plan) }]);
      return;
    }
    const rec = (await this.#store.getEnforcement(job.policy, job.subject)).find((r) => r.action === job.action);
    if (job.operation === "revert" && rec && !rec.in_effect) {
      // Checked here as well as when enqueued: the apply this would undo may have been superseded
      // before it ran. Nothing vigil did is in place, so nothing is sent.
      this.#metrics.action(job.type, "skipped");
      await this.#store.updateEnforcement(key, { kind: "achieved", ...mine });
      await this.#store.appendAudit([
        { type: "action", ...base, outcome: "success", attempt: record.attempt, verified: true, detail: { changed: false, reason: "vigil's apply of this action never took effect: nothing of vigil's to undo" } },
      ]);
      return;
    }
    // What vigil recorded of the target before its own change: for a revert, what to restore; for an
    // apply whose earlier change may still be in place, what to keep instead of reading it anew.
    // The apply's effect is recorded when its attempt ends (success or failure), or before its change
    // when it notes the prior: no extra write on the way to the target.
    const prior = rec?.in_effect ? rec.prior : undefined;
    const req = this.request(job, subject, decision, prior);
    try {
      const outcome =
        job.operation === "apply"
          ? await bound.action.apply({ ...req, signal, recordPrior: (p) => this.#store.updateEnforcement(key, { kind: "prior", prior: p }) })
          : await bound.action.revert!({ ...req, signal });
      this.#metrics.action(job.type, "success");
      if (job.signal_at !== undefined) this.#metrics.signalToEnforcement(Math.max(0, this.#clock.now() - job.signal_at) / 1000);
      const event: EnforcementEvent = { kind: "achieved", ...mine, ...(job.operation === "apply" && outcome.prior ? { prior: outcome.prior } : {}) };
      await this.#store.updateEnforcement(key, event);
      // Reconciled at last: the gauges drop it now.
      if (rec && isUnreconciled(rec)) void this.redrive();
      await this.#store.appendAudit([
        {
          type: "action",
          ...base,
          outcome: "success",
          attempt: record.attempt,
          verified: outcome.verified ?? null,
          detail: redact(outcome.detail ?? {}),
          ...(job.operation === "apply" && outcome.prior ? { prior: redact(outcome.prior) } : {}),
          ...(job.operation === "revert" && prior ? { prior: redact(prior) } : {}),
        },
      ]);
    } catch (caught) {
      // Cut short by a reload or stop: whatever the action threw (a plugin may reject with its own
      // AbortError), the job is not done and must run again on the new runtime or after the restart.
      const err = signal.aborted && !isTransient(caught) ? new VigilError("VIGIL_ERR_SHUTDOWN", `${errorMessage(caught)} (the configuration was replaced or the agent is stopping)`, { cause: caught }) : caught;
      const final = !isTransient(err) || record.attempt >= record.max_attempts;
      // Recorded before the job's lock is released, so a revert waiting for it knows the calls may have gone out.
      if (job.operation === "apply") await this.#attempted(job);
      this.#metrics.action(job.type, final ? "failed" : "retried");
      this.#logger.warn({ err, ...base, attempt: record.attempt, max_attempts: record.max_attempts }, `action ${job.action} ${job.operation} failed${final ? "; it stays unreconciled and will be re-driven" : "; will retry"}: ${errorMessage(err)}`);
      throw err;
    }
  }

  /** A failed apply attempt may still have reached the target: its record says so. Never throws. */
  async #attempted(job: ActionJob): Promise<void> {
    try {
      await this.#store.updateEnforcement({ policy: job.policy, subject: job.subject, action: job.action }, { kind: "attempted" });
    } catch (err) {
      this.#logger.error({ err, policy: job.policy, subject: job.subject, action: job.action }, `could not record an attempt of action ${job.action}: ${errorMessage(err)}`);
    }
  }

  /** Marks the job's record failed, with its next re-drive due after capped, doubling backoff. Never throws. */
  async #failedForGood(record: JobRecord<ActionJob>, err: unknown, runtime: Runtime): Promise<void> {
    const job = record.payload;
    const key: EnforcementKey = { policy: job.policy, subject: job.subject, action: job.action };
    try {
      const redrive = runtime.policy(job.policy)?.redrive;
      const rec = (await this.#store.getEnforcement(job.policy, job.subject)).find((r) => r.action === job.action);
      const at = this.#clock.now();
      const delay = redrive ? backoffDelay((rec?.redrives ?? 0) + 1, redrive) : 0;
      await this.#store.updateEnforcement(key, {
        kind: "failed",
        generation: job.generation,
        operation: job.operation,
        at,
        error: scrub(errorMessage(err)).slice(0, MAX_ERROR_CHARS),
        attempts: record.attempt,
        next_retry_at: at + delay,
      });
      if (redrive) this.#armRedrive(at + delay);
      // The gauges count it from now on, not from the next housekeeping pass.
      void this.redrive();
    } catch (storeErr) {
      this.#logger.error({ err: storeErr, ...key }, `could not record the failure of action ${job.action}: ${errorMessage(storeErr)}`);
    }
  }

  /**
   * The re-drive sweep: every unreconciled record whose re-drive is due gets a fresh job (the same
   * payload and idempotency key, a new job id), with the policy's `retry` attempts; records whose
   * policy or action is gone (or only planned now) are superseded. Also refreshes the gauges and arms
   * the timer for the next due re-drive. Runs from the agent's housekeeping, from that timer, and on
   * an operator's retry; sweeps do not overlap.
   */
  redrive(operator: ReadonlySet<string> = new Set()): Promise<void> {
    // A sweep that has not started yet covers any plain request made meanwhile (a burst of failures asks once).
    if (operator.size === 0 && this.#nextSweep) return this.#nextSweep;
    const run: Promise<void> = this.#sweeps.then(() => {
      if (this.#nextSweep === run) this.#nextSweep = undefined;
      return this.#sweepOnce(operator);
    });
    if (operator.size === 0) this.#nextSweep = run;
    this.#sweeps = run;
    return run;
  }

  async #sweepOnce(operator: ReadonlySet<string>): Promise<void> {
    if (this.#stopped) return;
    try {
      const runtime = this.#runtime;
      const now = this.#clock.now();
      const records = await this.#store.listEnforcement({ unreconciled: true });
      const counts: Record<string, Record<string, number>> = {};
      let oldest = Infinity;
      let next = Infinity;
      const due: { record: EnforcementRecord; policy: PolicySpec }[] = [];
      for (const r of records) {
        const key: EnforcementKey = { policy: r.policy, subject: r.subject, action: r.action };
        const policy = runtime.policy(r.policy);
        const bound = runtime.action(r.policy, r.action);
        if (!policy || !bound || bound.spec.type !== r.action_type || (bound.spec.dry_run ?? policy.dry_run)) {
          await this.#store.updateEnforcement(key, { kind: "superseded", generation: r.generation, operation: r.operation });
          continue;
        }
        (counts[r.policy] ??= {})[r.action] = (counts[r.policy]?.[r.action] ?? 0) + 1;
        oldest = Math.min(oldest, r.first_failed_at ?? now);
        if (r.status !== "failed") continue;
        const at = r.next_retry_at ?? now;
        if (at > now) next = Math.min(next, at);
        else due.push({ record: r, policy });
      }
      this.#unreconciled = { counts, oldest };
      if (due.length > 0) {
        await this.#queue.enqueueMany(
          ACTION_JOB,
          due.map(({ record: r, policy }) => ({ payload: payloadOf(r), options: { id: `${r.idempotency_key}:redrive:${r.redrives + 1}`, ...retryOptions(policy) } })),
        );
        for (const { record: r } of due) await this.#store.updateEnforcement(r, { kind: "redriven", generation: r.generation, operation: r.operation });
        await this.#store.appendAudit(
          due.map(({ record: r }) => ({
            type: "action_redriven",
            policy: r.policy,
            subject: r.subject,
            generation: r.generation,
            action: r.action,
            action_type: r.action_type,
            operation: r.operation,
            access: r.access,
            idempotency_key: r.idempotency_key,
            redrive: r.redrives + 1,
            attempts: r.attempts,
            by: operator.has(r.id) ? "operator" : "schedule",
          })),
        );
        this.#logger.info({ redriven: due.length }, `re-driving ${due.length} enforcement action(s) whose attempts ran out`);
      }
      this.#armRedrive(next);
    } catch (err) {
      this.#logger.warn({ err }, `enforcement re-drive sweep failed: ${errorMessage(err)}`);
    }
  }

  /** Wakes the sweep at `at` (epoch ms) unless it is already due to wake earlier. */
  #armRedrive(at: number): void {
    if (this.#stopped || at === Infinity) return;
    if (this.#redriveTimer && this.#redriveAt <= at) return;
    clearTimeout(this.#redriveTimer);
    this.#redriveAt = at;
    this.#redriveTimer = setTimeout(() => {
      this.#redriveTimer = undefined;
      this.#redriveAt = Infinity;
      void this.redrive();
    }, Math.min(MAX_TIMER_MS, Math.max(1, at - this.#clock.now())));
    this.#redriveTimer.unref();
  }

  /** Stops re-driving (agent stop); jobs already queued are the queue's. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#redriveTimer);
    this.#redriveTimer = undefined;
    await this.#sweeps;
  }

  /** For the gauges: unreconciled counts per policy and action, and the age of the oldest in seconds. */
  unreconciled(): { counts: Record<string, Record<string, number>>; oldest_seconds: number } {
    const { counts, oldest } = this.#unreconciled;
    return { counts, oldest_seconds: oldest === Infinity ? 0 : Math.max(0, this.#clock.now() - oldest) / 1000 };
  }

  /** `GET /v1/enforcement/failed`: unreconciled work, oldest failure first. */
  async failed(q: { policy?: string; limit: number; offset: number }): Promise<{ items: FailedEnforcement[]; total: number }> {
    const records = await this.#store.listEnforcement({ unreconciled: true, ...(q.policy === undefined ? {} : { policy: q.policy }) });
    return { items: records.slice(q.offset, q.offset + q.limit).map(failedItem), total: records.length };
  }

  /**
   * `POST /v1/enforcement/failed/retry`: re-drives the named unreconciled items (or all, optionally of
   * one policy) now, whatever their backoff. Items already being re-driven are left to finish.
   */
  async retry(req: { ids?: readonly string[]; policy?: string }): Promise<RetryEnforcementResult> {
    if (req.policy !== undefined && !this.#runtime.policy(req.policy)) throw new VigilError("VIGIL_ERR_BAD_REQUEST", `unknown policy "${req.policy}"`);
    const found = req.ids ? await this.#store.listEnforcement({ ids: req.ids }) : await this.#store.listEnforcement({ unreconciled: true });
    const items = found.filter((r) => isUnreconciled(r) && (req.policy === undefined || r.policy === req.policy));
    const now = this.#clock.now();
    const retried: string[] = [];
    const inProgress: string[] = [];
    for (const r of items) {
      if (r.status === "failed") {
        await this.#store.updateEnforcement(r, { kind: "due", at: now });
        retried.push(r.id);
      } else inProgress.push(r.id);
    }
    if (retried.length > 0) await this.redrive(new Set(retried));
    const listed = new Set(items.map((r) => r.id));
    return { retried, in_progress: inProgress, not_failed: (req.ids ?? []).filter((id) => !listed.has(id)) };
  }
}

/** Queue options of an action job: the policy's retry schedule. */
function retryOptions(policy: PolicySpec): { attempts: number; backoff: { delay: number; max_delay: number } } {
  return { attempts: policy.retry.attempts, backoff: { delay: policy.retry.delay, max_delay: policy.retry.max_delay } };
}

function desiredOf(p: ActionJob): DesiredEnforcement {
  return {
    policy: p.policy,
    subject: p.subject,
    action: p.action,
    action_type: p.type,
    operation: p.operation,
    access: p.access,
    previous_access: p.previous_access,
    generation: p.generation,
    decided_at: p.decided_at,
    idempotency_key: p.idempotency_key,
  };
}

/** A re-drive carries out exactly the job that failed: same decision, same idempotency key. */
function payloadOf(r: EnforcementRecord): ActionJob {
  return {
    policy: r.policy,
    subject: r.subject,
    generation: r.generation,
    action: r.action,
    type: r.action_type,
    operation: r.operation,
    access: r.access,
    previous_access: r.previous_access,
    idempotency_key: r.idempotency_key,
    decided_at: r.decided_at,
    dry_run: false,
  };
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function failedItem(r: EnforcementRecord): FailedEnforcement {
  return {
    id: r.id,
    policy: r.policy,
    subject: r.subject,
    action: r.action,
    action_type: r.action_type,
    operation: r.operation,
    access: r.access,
    generation: r.generation,
    status: r.status === "failed" ? "failed" : "retrying",
    attempts: r.attempts,
    redrives: r.redrives,
    last_error: r.last_error ?? null,
    first_failed_at: iso(r.first_failed_at)!,
    last_attempt_at: iso(r.last_attempt_at),
    next_retry_at: r.status === "failed" ? iso(r.next_retry_at) : null,
  };
}

/** A stored guard state, or undefined when the value is not one. */
function guardOf(stored: unknown): GuardState | undefined {
  const g = stored as GuardState | undefined;
  return g && Array.isArray(g.recent) && typeof g.paused === "boolean" ? g : undefined;
}

function placeholderDecision(job: ActionJob): StoredState["decision"] {
  return { policy: job.policy, subject: job.subject, access: job.access, risk: "high", reasons: [], generation: job.generation, decided_at: job.decided_at, evidence: {}, exempt: false };
}
