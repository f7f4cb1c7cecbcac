/** Microsoft Entra ID through Microsoft Graph v1.0: the `entra` provider and its actions. */
import type { ActionFactory } from "../../plugin/action.ts";
import type { ProviderFactory } from "../../plugin/provider.ts";
import { entraProvider } from "./client.ts";
import { confirmCompromisedAction } from "./confirm-compromised.ts";
import { disableAccountAction } from "./disable-account.ts";
import { groupDowngradeAction } from "./group-downgrade.ts";
import { revokeSessionsAction } from "./revoke-sessions.ts";

export const provider: ProviderFactory<any, any> | undefined = entraProvider;
export const actions: readonly ActionFactory<any>[] = [revokeSessionsAction, confirmCompromisedAction, disableAccountAction, groupDowngradeAction];
