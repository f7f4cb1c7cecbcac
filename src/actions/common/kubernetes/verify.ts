/** What the Kubernetes-backed actions share when reading their effect back, and when picking up their client. */
import { VigilError } from "../../../errors.ts";
import type { ActionContext } from "../../../plugin/action.ts";
import type { KubernetesClient } from "./types.ts";

/**
 * True when every field of `applied` holds in `actual`: objects may carry more keys (fields the API
 * server defaults, or other managers own), arrays must have the same length with each item holding,
 * scalars must be equal. This is "the spec is what was applied" without tripping over defaulting.
 */
export function appliedHolds(applied: unknown, actual: unknown): boolean {
  if (Array.isArray(applied)) {
    return Array.isArray(actual) && actual.length === applied.length && applied.every((v, i) => appliedHolds(v, actual[i]));
  }
  if (applied !== null && typeof applied === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
    return Object.entries(applied).every(([k, v]) => v === undefined || appliedHolds(v, (actual as Record<string, unknown>)[k]));
  }
  return Object.is(applied, actual);
}

/** The `kubernetes` provider client from an action's context, or a clear error when the engine gave none. */
export function kubernetesClientFrom(ctx: ActionContext, action: string): KubernetesClient {
  const client = ctx.provider as Partial<KubernetesClient> | undefined;
  if (!client || client.type !== "kubernetes" || typeof client.applyCall !== "function" || typeof client.deleteOwned !== "function") {
    // The config compiler names the provider each action needs, so this is a configuration the loader let through.
    throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `${action} needs a provider of type kubernetes (providers.kubernetes); none was given`);
  }
  return client as KubernetesClient;
}
