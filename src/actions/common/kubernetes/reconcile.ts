/**
 * Runs a reconciliation of vigil-owned objects against the Kubernetes API, and shows it as a plan of
 * exactly the calls it makes. The network-policy, Istio and Linkerd actions all go through here, so
 * every one of them keeps the same ownership and read-back rules. Each step reads its effect back:
 * - apply: GET (an object of that name that vigil does not own is never overwritten), server-side
 *   apply, GET (the applied spec holds and the owner labels are there);
 * - delete: GET, DELETE with a uid precondition only when the object is vigil's, GET (it is gone);
 * - expect: GET (the object an operator owns is there).
 * A step's DELETE is planned with the uid as a placeholder and is not sent when the GET finds the
 * object absent or not vigil's.
 */
import type { PlannedCall } from "../../../net/api-call.ts";
import { inputError } from "../input.ts";
import { isOwned } from "./names.ts";
import { describeRef, refOf } from "./paths.ts";
import type { DeleteOutcome, KubeObject, KubernetesClient, ObjectRef } from "./types.ts";
import { appliedHolds } from "./verify.ts";

/** Plan of `client.apply(obj)`. */
export function planApply(client: KubernetesClient, obj: KubeObject): PlannedCall[] {
  return [client.describe(client.applyCall(obj))];
}

/** Plan of `client.get(ref)`. */
export function planGet(client: KubernetesClient, ref: ObjectRef): PlannedCall[] {
  return [client.describe(client.getCall(ref))];
}

/** Plan of `client.deleteOwned(ref)`: the GET, then the DELETE it leads to when the object is vigil's (the uid shown as the client's placeholder). */
export function planDeleteOwned(client: KubernetesClient, ref: ObjectRef): PlannedCall[] {
  return [client.describe(client.getCall(ref)), client.describe(client.deleteCall(ref))];
}

/** One step of a reconciliation, run in order. */
export type Step =
  /** Server-side apply of an object vigil owns. */
  | { readonly op: "apply"; readonly object: KubeObject }
  /** Delete the object if it exists and carries vigil's owner label. */
  | { readonly op: "delete"; readonly ref: ObjectRef }
  /** An object vigil relies on but does not write (an operator's Linkerd Server): only read back. */
  | { readonly op: "expect"; readonly ref: ObjectRef };

/** What a step did: `applied`, one of the delete outcomes, or for `expect` whether the object is there. */
export type StepResult = "applied" | DeleteOutcome | "present";

export interface StepsRun {
  readonly results: readonly { readonly ref: ObjectRef; readonly result: StepResult; readonly verified: boolean }[];
  /** True when every step read back as wanted. */
  readonly verified: boolean;
}

export interface RunOptions {
  /** The action type, for messages. */
  readonly action: string;
  /** How to get out of a name clash with an object vigil does not own, for the error message. */
  readonly clashHint: string;
  /** A further read-back check of an applied object (e.g. no rule left that the apply dropped). */
  readonly verifyApplied?: (applied: KubeObject, actual: KubeObject) => boolean;
  readonly signal?: AbortSignal;
}

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

/** The calls `runSteps` makes, in order. */
export function planSteps(client: KubernetesClient, steps: readonly Step[]): PlannedCall[] {
  return steps.flatMap((s) => planStep(client, s));
}

async function runStep(client: KubernetesClient, step: Step, opts: RunOptions): Promise<{ ref: ObjectRef; result: StepResult; verified: boolean }> {
  const { signal } = opts;
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
    throw inputError(`${opts.action}: ${describeRef(ref)} exists and is not labelled app.kubernetes.io/managed-by=vigil; vigil does not overwrite it (${opts.clashHint})`);
  }
  await client.apply(step.object, signal);
  const after = await client.get(ref, signal);
  const verified =
    after !== undefined &&
    appliedHolds(step.object.metadata.labels ?? {}, after.metadata.labels ?? {}) &&
    appliedHolds(step.object.spec, after.spec) &&
    (opts.verifyApplied?.(step.object, after) ?? true);
  return { ref, result: "applied", verified };
}

/** Runs the steps in order; the first failure stops the run (the queue retries the whole job, which is idempotent). */
export async function runSteps(client: KubernetesClient, steps: readonly Step[], opts: RunOptions): Promise<StepsRun> {
  const results: { ref: ObjectRef; result: StepResult; verified: boolean }[] = [];
  for (const step of steps) results.push(await runStep(client, step, opts));
  return { results, verified: results.every((r) => r.verified) };
}
