/** Istio: `istio:authorization_policy`, written through the `kubernetes` provider. */
import { authorizationPolicyAction } from "./authorization-policy.ts";

export const provider = undefined;
export const actions = [authorizationPolicyAction] as const;
