/** Microsoft Entra ID through Microsoft Graph v1.0: the `entra` provider and its actions. */
import { entraProvider } from "./client.ts";
import { confirmCompromisedAction } from "./confirm-compromised.ts";
import { disableAccountAction } from "./disable-account.ts";
import { groupDowngradeAction } from "./group-downgrade.ts";
import { revokeSessionsAction } from "./revoke-sessions.ts";

export const provider = entraProvider;
export const actions = [revokeSessionsAction, confirmCompromisedAction, disableAccountAction, groupDowngradeAction] as const;
