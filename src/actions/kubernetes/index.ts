/** The `kubernetes` provider (shared by the Istio and Linkerd actions) and `kubernetes:network_policy`. */
import { networkPolicyAction } from "./network-policy.ts";
import { kubernetesProvider } from "./provider.ts";

export const provider = kubernetesProvider;
export const actions = [networkPolicyAction] as const;

export { KubeClient, UID_PLACEHOLDER } from "./client.ts";
export { planApply, planDeleteOwned, planGet } from "../common/kubernetes/reconcile.ts";
export { createKubernetesClient, kubernetesProvider, kubernetesProviderSchema, type KubernetesProviderConfig } from "./provider.ts";
export { appliedHolds, kubernetesClientFrom } from "../common/kubernetes/verify.ts";
export * from "../common/kubernetes/names.ts";
export { objectPath, pluralOf, PLURALS, refOf, describeRef } from "../common/kubernetes/paths.ts";
