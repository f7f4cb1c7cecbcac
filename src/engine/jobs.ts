/**
 * The agent's job handlers: the evaluation job (evaluate, enforce, schedule the rechecks checks ask
 * for) and the recorder of jobs that failed for good (the audit log keeps what the queue gave up on).
 */
import type { StateStore } from "../store/contract.ts";
import type { FailedJob, JobHandler, WorkQueue } from "../queue/contract.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Clock } from "../util/clock.ts";
import type { Evaluator } from "./evaluator.ts";
import { ACTION_JOB, type ActionJob, type Enforcer } from "./enforcer.ts";
import { EVALUATE_JOB, EVALUATE_RETRY, type EvaluateJob } from "./scheduler.ts";

/**
 * Handles an evaluation job: evaluates the batch, enforces what changed while the subjects are still
 * locked, and enqueues a delayed re-evaluation for each subject whose check named a `recheck_at`.
 * Each recheck's job id carries its instant, so asking twice for the same instant runs it once.
 */
export function evaluationHandler(deps: { evaluator: Evaluator; enforcer: Enforcer; queue: WorkQueue; clock: Clock }): JobHandler<EvaluateJob> {
  const { evaluator, enforcer, queue, clock } = deps;
  return async (job) => {
    const p = job.payload;
    const evaluated = await evaluator.evaluate(p.policy, p.subjects, { pull: p.pull, trigger: p.trigger }, (ev) =>
      enforcer.enforce(
        ev.map((e) => e.state),
        p.signal_at === undefined ? {} : { signalAt: p.signal_at },
      ),
    );
    const rechecks = evaluated.filter((e) => e.recheck_at !== undefined);
    if (rechecks.length > 0) {
      const now = clock.now();
      await queue.enqueueMany<EvaluateJob>(
        EVALUATE_JOB,
        rechecks.map((e) => ({
          payload: { policy: p.policy, subjects: [e.subject.id], trigger: "recheck", pull: "always" },
          options: { id: `recheck:${p.policy}:${e.subject.id}:${e.recheck_at}`, delay: Math.max(0, e.recheck_at! - now), ...EVALUATE_RETRY },
        })),
      );
    }
  };
}

/**
 * Records a job that used all its attempts (or failed permanently) in the audit log: an action job with
 * what it was to do, any other job by kind and id. A failure to record is logged; it never throws.
 */
export function failedJobRecorder(deps: { store: StateStore; logger: Logger }): (failure: FailedJob) => void {
  const { store, logger } = deps;
  return (failure) => {
    const p = failure.job.payload as Partial<ActionJob>;
    logger.error({ job: failure.job.id, kind: failure.job.kind, code: failure.code }, `job failed for good after ${failure.job.attempt} attempt(s): ${failure.error}`);
    void store
      .appendAudit([
        failure.job.kind === ACTION_JOB
          ? { type: "action_failed", policy: p.policy, subject: p.subject, generation: p.generation, action: p.action, action_type: p.type, operation: p.operation, idempotency_key: p.idempotency_key, attempts: failure.job.attempt, error: failure.error, code: failure.code ?? null }
          : { type: "job_failed", kind: failure.job.kind, job: failure.job.id, attempts: failure.job.attempt, error: failure.error, code: failure.code ?? null },
      ])
      .catch((err: unknown) => logger.error({ err }, "could not record a failed job in the audit log"));
  };
}
