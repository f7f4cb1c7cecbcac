/**
 * node-cron fires each policy's tick; the tick enqueues evaluation jobs for the policy's subjects,
 * spread over the interval by a stable per-subject offset so a large inventory does not hit the
 * checks' backends all at once, and each subject is re-verified at the same point of every interval.
 */
import cron, { type ScheduledTask } from "node-cron";
import type { PolicySpec } from "../config/compile.ts";
import type { WorkQueue, EnqueueOptions } from "../queue/contract.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Runtime } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { errorMessage } from "../errors.ts";

export const EVALUATE_JOB = "evaluate";

export interface EvaluateJob {
  readonly policy: string;
  readonly subjects: readonly string[];
  readonly trigger: "schedule" | "start" | "signal" | "recheck" | "reload" | "observation";
  /** Re-run every pull check (`always`) or only stale ones (`stale`). */
  readonly pull: "always" | "stale";
  readonly signal_at?: number;
}

/**
 * Evaluation jobs retry a failed store write or enqueue (`VIGIL_ERR_STORE`) or a stop cutting them
 * short a few times before they are recorded as failed. A crashing check does not fail the job (its
 * subjects get an `unknown` result, which the decision handles); any other failure is a bug that
 * would fail the same way again, so it is not retried.
 */
export const EVALUATE_RETRY = { attempts: 5, backoff: { delay: 500, max_delay: 30_000 } } as const;

/** Largest number of subjects one evaluation job carries. */
export const MAX_BATCH = 100;
/** Subjects whose offsets fall in the same slot share a job. */
const SLOT_MS = 1_000;

/** A subject's stable offset into its policy's interval: FNV-1a of policy and id. */
export function jitterOffset(policy: string, subject: string, spread: number): number {
  let h = 0x811c9dc5;
  const s = `${policy}\u0000${subject}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return spread <= 0 ? 0 : h % spread;
}

/** Groups subjects into jobs by their jitter slot; `spread` 0 means "all now". */
export function planTick(policy: PolicySpec, subjects: readonly string[], tickAt: number, trigger: EvaluateJob["trigger"], spread: number): { payload: EvaluateJob; options: EnqueueOptions }[] {
  const slots = new Map<number, string[]>();
  for (const id of subjects) {
    const slot = Math.floor(jitterOffset(policy.name, id, spread) / SLOT_MS);
    const list = slots.get(slot);
    if (list) list.push(id);
    else slots.set(slot, [id]);
  }
  const jobs: { payload: EvaluateJob; options: EnqueueOptions }[] = [];
  for (const [slot, ids] of slots) {
    for (let i = 0; i < ids.length; i += MAX_BATCH) {
      jobs.push({
        payload: { policy: policy.name, subjects: ids.slice(i, i + MAX_BATCH), trigger, pull: "always" },
        options: { id: `${trigger}:${policy.name}:${tickAt}:${slot}:${i / MAX_BATCH}`, delay: slot * SLOT_MS, ...EVALUATE_RETRY },
      });
    }
  }
  return jobs;
}

export class Scheduler {
  readonly #tasks: ScheduledTask[] = [];
  readonly #queue: WorkQueue;
  readonly #index: SubjectIndex;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(deps: { queue: WorkQueue; index: SubjectIndex; logger: Logger; now: () => number }) {
    this.#queue = deps.queue;
    this.#index = deps.index;
    this.#logger = deps.logger;
    this.#now = deps.now;
  }

  /** (Re)creates one cron task per policy. */
  schedule(runtime: Runtime): void {
    this.stop();
    for (const policy of runtime.policies) {
      const spread = cronSpread(policy);
      const task = cron.schedule(
        policy.schedule.cron,
        async () => {
          try {
            await this.tick(runtime, policy, "schedule", spread);
          } catch (err) {
            this.#logger.error({ err, policy: policy.name }, `scheduling ${policy.name} failed: ${errorMessage(err)}`);
          }
        },
        { name: `vigil:${policy.name}`, noOverlap: true },
      );
      this.#tasks.push(task);
    }
  }

  /**
   * Enqueues an evaluation of every subject the policy covers. `tickAt` names the tick in the job
   * ids (default now): a tick run again for the same instant (a retried scheduled job) enqueues
   * nothing new.
   */
  async tick(runtime: Runtime, policy: PolicySpec, trigger: EvaluateJob["trigger"], spread: number, tickAt = this.#now()): Promise<number> {
    await this.#index.refresh();
    const ids: string[] = [];
    for (const s of this.#index.all()) if (runtime.covers(policy, s)) ids.push(s.id);
    const jobs = planTick(policy, ids, tickAt, trigger, spread);
    const created = await this.#queue.enqueueMany(EVALUATE_JOB, jobs);
    this.#logger.debug({ policy: policy.name, subjects: ids.length, jobs: jobs.length, created, trigger, at: tickAt }, "tick");
    return ids.length;
  }

  stop(): void {
    for (const t of this.#tasks.splice(0)) void t.destroy();
  }
}

/** The spread of a tick: the interval itself, measured from the cron expression. */
export function cronSpread(policy: PolicySpec): number {
  const task = cron.createTask(policy.schedule.cron, () => undefined);
  try {
    const [a, b] = task.getNextRuns(2);
    return a && b ? Math.max(0, b.getTime() - a.getTime()) : policy.schedule.spread;
  } finally {
    void task.destroy();
  }
}
