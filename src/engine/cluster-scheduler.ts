/**
 * Scheduling in cluster mode: each policy's tick is a job that the shared queue produces on the
 * policy's cron, once per due time for the whole cluster, and that any replica runs. The leader
 * alone keeps those schedules in step with the config (concurrent upserts from every replica are
 * where BullMQ's schedulers have been known to lose or double runs), and only while its fencing
 * token is the newest: a leader that lost its lease without knowing it cannot undo a newer
 * leader's schedules.
 *
 * A tick names its evaluation jobs after the instant it was due, so a tick run twice (its replica
 * died mid-way and another took it over) enqueues nothing new the second time.
 */
import type { JobHandler, WorkQueue } from "../queue/contract.ts";
import type { QueueSchedule } from "../queue/bullmq.ts";
import type { Logger } from "../telemetry/log.ts";
import { errorMessage } from "../errors.ts";
import type { Runtime } from "./runtime.ts";
import type { SubjectIndex } from "./subjects.ts";
import { EVALUATE_RETRY, Scheduler, cronSpread } from "./scheduler.ts";

export const TICK_JOB = "tick";

export interface TickJob {
  readonly policy: string;
}

/** What the cluster scheduler needs of the queue beyond the WorkQueue contract. */
export interface ScheduleQueue extends WorkQueue {
  reconcileSchedules(kind: string, schedules: readonly QueueSchedule[]): Promise<{ upserted: number; removed: number }>;
}

export class ClusterScheduler extends Scheduler {
  readonly #queue: ScheduleQueue;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** The leader's fencing token, 0 when this replica does not lead. */
  readonly #token: () => number;
  /** True when the token is still the newest leadership (and records it). */
  readonly #fence: (token: number) => Promise<boolean>;
  #runtime: Runtime | undefined;
  #reconciling: Promise<void> = Promise.resolve();

  constructor(deps: { queue: ScheduleQueue; index: SubjectIndex; logger: Logger; now: () => number; token: () => number; fence: (token: number) => Promise<boolean> }) {
    super(deps);
    this.#queue = deps.queue;
    this.#logger = deps.logger;
    this.#now = deps.now;
    this.#token = deps.token;
    this.#fence = deps.fence;
  }

  /** Takes the runtime's policies as the schedules; the leader applies them now, a later leader when it takes over. */
  override schedule(runtime: Runtime): void {
    this.#runtime = runtime;
    void this.reconcile();
  }

  /** On the leader: makes the queue's tick schedules match the policies. One at a time; never throws. */
  reconcile(): Promise<void> {
    this.#reconciling = this.#reconciling.then(() => this.#reconcileOnce());
    return this.#reconciling;
  }

  async #reconcileOnce(): Promise<void> {
    const runtime = this.#runtime;
    const token = this.#token();
    if (!runtime || token === 0) return;
    try {
      if (!(await this.#fence(token))) {
        this.#logger.warn({ token }, "cluster: a newer leader exists; not touching the schedules");
        return;
      }
      const schedules: QueueSchedule[] = runtime.policies.map((p) => ({ id: p.name, cron: p.schedule.cron, payload: { policy: p.name } satisfies TickJob, ...EVALUATE_RETRY }));
      const { upserted, removed } = await this.#queue.reconcileSchedules(TICK_JOB, schedules);
      if (upserted + removed > 0) this.#logger.info({ upserted, removed, policies: schedules.length }, "cluster: schedules updated");
    } catch (err) {
      // The next reconcile (each housekeeping pass on the leader) tries again.
      this.#logger.warn({ err }, `cluster: cannot update the schedules: ${errorMessage(err)}`);
    }
  }

  /** The tick job's handler: the policy's tick, named after the instant it was due. */
  tickHandler(): JobHandler<TickJob> {
    return async (job) => {
      const runtime = this.#runtime;
      const policy = runtime?.policy(job.payload.policy);
      // A policy removed by a reload: its schedule goes at the leader's next reconcile.
      if (!runtime || !policy) return;
      await this.tick(runtime, policy, "schedule", cronSpread(policy), { at: job.scheduled_at ?? this.#now() });
    };
  }

  override stop(): void {
    // Nothing runs here: the schedules live in the queue.
  }
}
