/** Linkerd: `linkerd:authorization`, written through the `kubernetes` provider. */
import type { ActionFactory } from "../contract.ts";
import type { ProviderFactory } from "../provider.ts";
import { authorizationAction } from "./authorization.ts";

export const provider: ProviderFactory<any, any> | undefined = undefined;
export const actions: readonly ActionFactory<any>[] = [authorizationAction];
