/**
 * A mesh reconciliation (Istio, Linkerd) on the shared Kubernetes step runner: the plan with the
 * read-only fallback noted, and the outcome detail with the decided and the enforced level.
 */
import type { Logger } from "../../../telemetry/log.ts";
import type { Action, ActionContext, ActionOutcome, ActionRequest } from "../../../plugin/action.ts";
import type { PlannedCall } from "../../../net/api-call.ts";
import { planSteps, runSteps, type StepResult } from "../kubernetes/reconcile.ts";
import { describeRef } from "../kubernetes/paths.ts";
import type { KubernetesClient } from "../kubernetes/types.ts";
import { kubernetesClientFrom } from "../kubernetes/verify.ts";
import type { Reconciliation } from "./mesh.ts";

/** The calls `runReconciliation` makes, in order. */
export function planReconciliation(client: KubernetesClient, r: Reconciliation): PlannedCall[] {
  const calls = planSteps(client, r.steps);
  if (r.note && calls.length > 0) calls[0] = { ...calls[0]!, summary: `${calls[0]!.summary ?? ""} [${r.note}]` };
  return calls;
}

/** Runs the reconciliation; the first failure stops the run (the queue retries the whole job, which is idempotent). */
export async function runReconciliation(client: KubernetesClient, r: Reconciliation, opts: { action: string; policy: string; logger: Logger; signal?: AbortSignal }): Promise<ActionOutcome> {
  if (r.note) opts.logger.warn({ action: opts.action, policy: opts.policy, access: r.level, enforced: r.enforced }, r.note);
  const run = await runSteps(client, r.steps, { action: opts.action, clashHint: "change name_prefix, or remove that object", ...(opts.signal ? { signal: opts.signal } : {}) });
  const objects: Record<string, StepResult> = {};
  for (const s of run.results) objects[describeRef(s.ref)] = s.result;
  const unverified = run.results.filter((s) => !s.verified).map((s) => describeRef(s.ref));
  return {
    verified: run.verified,
    detail: { access: r.level, enforced: r.enforced, objects, ...(unverified.length ? { unverified } : {}), ...(r.note ? { note: r.note } : {}) },
  };
}

/**
 * A mesh action on the `kubernetes` provider's client: `plan` and `apply` both run `reconcile(req)`,
 * so the plan lists exactly the calls the apply makes.
 */
export function meshAction(ctx: ActionContext, type: string, reconcile: (req: ActionRequest) => Reconciliation): Action {
  const client = kubernetesClientFrom(ctx, type);
  return {
    plan: (req) => planReconciliation(client, reconcile(req)),
    apply: (req) =>
      runReconciliation(client, reconcile(req), {
        action: type,
        policy: req.decision.policy,
        logger: ctx.logger,
        ...(req.signal ? { signal: req.signal } : {}),
      }),
  };
}
