/** Istio: `istio:authorization_policy`, written through the `kubernetes` provider. */
import type { ActionFactory } from "../contract.ts";
import type { ProviderFactory } from "../provider.ts";
import { authorizationPolicyAction } from "./authorization-policy.ts";

export const provider: ProviderFactory<any, any> | undefined = undefined;
export const actions: readonly ActionFactory<any>[] = [authorizationPolicyAction];
