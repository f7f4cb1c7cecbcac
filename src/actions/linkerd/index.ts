/** Linkerd: `linkerd:authorization`, written through the `kubernetes` provider. */
import type { ActionFactory } from "../../plugin/action.ts";
import type { ProviderFactory } from "../../plugin/provider.ts";
import { authorizationAction } from "./authorization.ts";

export const provider: ProviderFactory<any, any> | undefined = undefined;
export const actions: readonly ActionFactory<any>[] = [authorizationAction];
