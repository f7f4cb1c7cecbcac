/** Okta: the `okta` provider and the actions that use it. */
import { clearSessionsAction } from "./clear-sessions.ts";
import { groupDowngradeAction } from "./group-downgrade.ts";
import { oktaProvider } from "./provider.ts";
import { suspendAction } from "./suspend.ts";

export const provider = oktaProvider;
export const actions = [clearSessionsAction, suspendAction, groupDowngradeAction] as const;
