/** Linkerd: `linkerd:authorization`, written through the `kubernetes` provider. */
import { authorizationAction } from "./authorization.ts";

export const provider = undefined;
export const actions = [authorizationAction] as const;
