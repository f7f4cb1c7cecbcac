/**
 * Runs a mesh reconciliation against the Kubernetes API, and shows it as a plan of exactly the
 * calls it makes. Each step reads its effect back:
 * - apply: GET (an object of that name that vigil does not own is never overwritten), server-side
 *   apply, GET (the applied spec holds and the owner labels are there);
 * - delete: GET, DELETE with a uid precondition only when the object is vigil's, GET (it is gone);
 * - expect: GET (the object an operator owns is there).
 * A step's DELETE is planned with the uid as a placeholder and is not sent when the GET finds the
 * object absent or not vigil's.
 */
import type { Logger } from "../../telemetry/log.ts";
import type { ActionOutcome, PlannedCall } from "../contract.ts";
import { inputError } from "../common/input.ts";
import { planApply, planDeleteOwned, planGet } from "../kubernetes/client.ts";
import { isOwned } from "../kubernetes/names.ts";
import { describeRef, refOf } from "../kubernetes/paths.ts";
import type { DeleteOutcome, KubeObject, KubernetesClient, ObjectRef } from "../kubernetes/types.ts";
import { appliedHolds } from "../kubernetes/verify.ts";
import type { Reconciliation, Step } from "./mesh.ts";

/** What a step did: `applied`, one of the delete outcomes, or for `expect` whether the object is there. */
export type StepResult = "applied" | DeleteOutcome | "present";

function planStep(client: KubernetesClient, step: Step): PlannedCall[] {
  if (step.op === "expect") return [{ ...planGet(client, step.ref)[0]!, summary: `read ${describeRef(step.ref)}: it must exist (vigil does not write it)` }];
  if (step.op === "delete") return [...planDeleteOwned(client, step.ref), { ...planGet(client, step.ref)[0]!, summary: `read ${describeRef(step.ref)} back: verify it is gone` }];
  const ref = refOf(step.object);
  return [
    { ...planGet(client, ref)[0]!, summary: `read ${describeRef(ref)}: refuse to overwrite an object vigil does not own` },
    ...planApply(client, step.object),
    { ...planGet(client, ref)[0]!, summary: `read ${describeRef(ref)} back: verify the applied spec holds` },
  ];
}

/** The calls `runReconciliation` makes, in order. */
export function planReconciliation(client: KubernetesClient, r: Reconciliation): PlannedCall[] {
  const calls = r.steps.flatMap((s) => planStep(client, s));
  if (r.note && calls.length > 0) calls[0] = { ...calls[0]!, summary: `${calls[0]!.summary ?? ""} [${r.note}]` };
  return calls;
}

function labelsHold(obj: KubeObject, wanted: KubeObject): boolean {
  return appliedHolds(wanted.metadata.labels ?? {}, obj.metadata.labels ?? {});
}

async function runStep(client: KubernetesClient, step: Step, action: string, signal?: AbortSignal): Promise<{ ref: ObjectRef; result: StepResult; verified: boolean }> {
  if (step.op === "expect") {
    const found = await client.get(step.ref, signal);
    return { ref: step.ref, result: found === undefined ? "absent" : "present", verified: found !== undefined };
  }
  if (step.op === "delete") {
    const result = await client.deleteOwned(step.ref, signal);
    const after = await client.get(step.ref, signal);
    // An object still finalizing carries a deletionTimestamp; it no longer counts for policy.
    const gone = after === undefined || typeof after.metadata.deletionTimestamp === "string";
    return { ref: step.ref, result, verified: gone };
  }
  const ref = refOf(step.object);
  const existing = await client.get(ref, signal);
  if (existing !== undefined && !isOwned(existing)) {
    throw inputError(`${action}: ${describeRef(ref)} exists and is not labelled app.kubernetes.io/managed-by=vigil; vigil does not overwrite it (change name_prefix, or remove that object)`);
  }
  await client.apply(step.object, signal);
  const after = await client.get(ref, signal);
  const verified = after !== undefined && labelsHold(after, step.object) && appliedHolds(step.object.spec, after.spec);
  return { ref, result: "applied", verified };
}

/** Runs the steps in order; the first failure stops the run (the queue retries the whole job, which is idempotent). */
export async function runReconciliation(client: KubernetesClient, r: Reconciliation, opts: { action: string; policy: string; logger: Logger; signal?: AbortSignal }): Promise<ActionOutcome> {
  if (r.note) opts.logger.warn({ action: opts.action, policy: opts.policy, access: r.level, enforced: r.enforced }, r.note);
  const objects: Record<string, StepResult> = {};
  const unverified: string[] = [];
  for (const step of r.steps) {
    const s = await runStep(client, step, opts.action, opts.signal);
    const key = describeRef(s.ref);
    objects[key] = s.result;
    if (!s.verified) unverified.push(key);
  }
  return {
    verified: unverified.length === 0,
    detail: { access: r.level, enforced: r.enforced, objects, ...(unverified.length ? { unverified } : {}), ...(r.note ? { note: r.note } : {}) },
  };
}

