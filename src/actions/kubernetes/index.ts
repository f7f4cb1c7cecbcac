/** The `kubernetes` provider (shared by the Istio and Linkerd actions) and `kubernetes:network_policy`. */
import { networkPolicyAction } from "./network-policy.ts";
import { kubernetesProvider } from "./provider.ts";

export const provider = kubernetesProvider;
export const actions = [networkPolicyAction] as const;

export { KubeClient, planApply, planDeleteOwned, planGet, UID_PLACEHOLDER } from "./client.ts";
export { createKubernetesClient, kubernetesProvider, kubernetesProviderSchema, type KubernetesProviderConfig } from "./provider.ts";
export { appliedHolds, kubernetesClientFrom } from "./verify.ts";
export * from "./names.ts";
export { objectPath, pluralOf, PLURALS, refOf, describeRef } from "./paths.ts";
