/** Istio: `istio:authorization_policy`, written through the `kubernetes` provider. */
import type { ActionFactory } from "../../plugin/action.ts";
import type { ProviderFactory } from "../../plugin/provider.ts";
import { authorizationPolicyAction } from "./authorization-policy.ts";

export const provider: ProviderFactory<any, any> | undefined = undefined;
export const actions: readonly ActionFactory<any>[] = [authorizationPolicyAction];
