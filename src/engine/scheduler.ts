/**
 * One timer per policy, armed to its next due time, fires the policy's tick; the tick enqueues
 * evaluation jobs for the policy's subjects, spread over the interval by a stable per-subject offset
 * so a large inventory does not hit the checks' backends all at once, and each subject is
 * re-verified at the same point of every interval.
 *
 * An interval written as a duration (`5m`) is due at each multiple of it in local time, as the cron
 * expression it compiles to reads; that is computed here, so an idle agent wakes only when a tick
 * is due (node-cron's scheduler wakes every second) and node-cron is never loaded. A configured cron
 * expression is read by node-cron, loaded (`util/cron.ts`) only when the configuration has one.
 */
import type { PolicySpec, Schedule } from "../config/compile.ts";
import { parseDuration } from "../util/duration.ts";
import { cron, type NodeCron } from "../util/cron.ts";
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

/**
 * Largest number of subjects one evaluation job carries. Each job costs a claim, a completion, the
 * reads of its subjects' states and results and one commit whatever its size: jobs of 200 instead
 * of 100 evaluated 100,000 subjects 0.17 s (5 %) sooner, and 400 no sooner again (BENCHMARKS.md
 * section 23). Its checks still run on at most `CHECK_RUN_MAX` subjects at a time (evaluator.ts).
 */
export const MAX_BATCH = 200;
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

/**
 * The first due time of `schedule` strictly after `after` (epoch ms). A duration that divides a
 * minute, an hour or a day (the only ones that compile) restarts at each local minute, hour or day,
 * like `*\/30 * * * * *`, `0 *\/5 * * * *` and `0 0 *\/6 * * *` do.
 */
export function nextDue(schedule: Schedule, after: number): number {
  const every = parseDuration(schedule.text);
  if (every === undefined) return cronNext(schedule.cron, after);
  const d = new Date(after);
  const y = d.getFullYear();
  const mo = d.getMonth();
  const day = d.getDate();
  if (every < 60_000) {
    const start = new Date(y, mo, day, d.getHours(), d.getMinutes()).getTime();
    return start + (Math.floor((after - start) / every) + 1) * every;
  }
  if (every < 3_600_000) {
    const start = new Date(y, mo, day, d.getHours()).getTime();
    return start + (Math.floor((after - start) / every) + 1) * every;
  }
  // Hours: by local wall-clock hour, so a day with a DST change still ticks at 00:00, 06:00, …
  const hours = every / 3_600_000;
  for (let h = 0; ; h += hours) {
    const at = new Date(y, mo, day, h).getTime();
    if (at > after) return at;
  }
}

function cronNext(expression: string, after: number): number {
  const task = cron().createTask(expression, () => undefined);
  try {
    // node-cron answers from the current time; `after` is that or a due time just passed.
    const next = task.getNextRun()?.getTime();
    return next !== undefined && next > after ? next : cronAfter(task, after);
  } finally {
    void task.destroy();
  }
}

function cronAfter(task: ReturnType<NodeCron["createTask"]>, after: number): number {
  for (const run of task.getNextRuns(3)) if (run.getTime() > after) return run.getTime();
  return after + 60_000;
}

/**
 * Longest single wait: a longer one is split, so a wall clock that jumped (suspend, NTP step) is
 * noticed within the hour, and no delay exceeds what a Node.js timer accepts.
 */
const MAX_WAIT_MS = 3_600_000;

export class Scheduler {
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #generation: object | undefined;
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

  /**
   * (Re)arms one timer per policy. Due times follow the wall clock (`Date.now()`, as cron does),
   * not the injected clock, which tests may hold still. The next timer is armed when a tick has
   * finished, so ticks of one policy never overlap: a due time passed meanwhile is skipped.
   */
  schedule(runtime: Runtime): void {
    this.stop();
    // Ticks of an earlier schedule that finish after this one took over arm nothing.
    const generation = {};
    this.#generation = generation;
    for (const policy of runtime.policies) {
      const spread = cronSpread(policy);
      const arm = (due: number): void => {
        const wait = due - Date.now();
        const timer = setTimeout(() => void fire(due), Math.max(1, Math.min(wait, MAX_WAIT_MS)));
        // The API server and the queue keep the process alive; a pending tick alone does not.
        timer.unref();
        this.#timers.set(policy.name, timer);
      };
      const fire = async (due: number): Promise<void> => {
        if (this.#generation !== generation) return;
        if (Date.now() < due) return arm(due);
        try {
          await this.tick(runtime, policy, "schedule", spread);
        } catch (err) {
          this.#logger.error({ err, policy: policy.name }, `scheduling ${policy.name} failed: ${errorMessage(err)}`);
        }
        if (this.#generation === generation) arm(nextDue(policy.schedule, Math.max(due, Date.now())));
      };
      arm(nextDue(policy.schedule, Date.now()));
    }
  }

  /**
   * Enqueues an evaluation of every subject the policy covers, after listing the inventories again
   * (unless `listed`: the caller has just done so, as start and reload do before their pass over
   * every policy). `at` names the tick in the job ids (default now): a tick run again for the same
   * instant (a retried scheduled job) enqueues nothing new.
   */
  async tick(runtime: Runtime, policy: PolicySpec, trigger: EvaluateJob["trigger"], spread: number, options: { at?: number; listed?: boolean } = {}): Promise<number> {
    const tickAt = options.at ?? this.#now();
    if (!options.listed) await this.#index.refresh();
    const ids: string[] = [];
    for (const s of this.#index.all()) if (runtime.covers(policy, s)) ids.push(s.id);
    const jobs = planTick(policy, ids, tickAt, trigger, spread);
    const created = await this.#queue.enqueueMany(EVALUATE_JOB, jobs);
    this.#logger.debug({ policy: policy.name, subjects: ids.length, jobs: jobs.length, created, trigger, at: tickAt }, "tick");
    return ids.length;
  }

  stop(): void {
    this.#generation = undefined;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}

/** The spread of a tick: the interval itself (a duration's, or measured from the cron expression). */
export function cronSpread(policy: PolicySpec): number {
  if (parseDuration(policy.schedule.text) !== undefined) return policy.schedule.spread;
  const task = cron().createTask(policy.schedule.cron, () => undefined);
  try {
    const [a, b] = task.getNextRuns(2);
    return a && b ? Math.max(0, b.getTime() - a.getTime()) : policy.schedule.spread;
  } finally {
    void task.destroy();
  }
}
