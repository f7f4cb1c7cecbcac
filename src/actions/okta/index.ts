/** Okta: the `okta` provider and the actions that use it. */
import type { ActionFactory } from "../../plugin/action.ts";
import type { ProviderFactory } from "../../plugin/provider.ts";
import type { OktaClient } from "./client.ts";
import type { OktaProviderConfig } from "./config.ts";
import { clearSessionsAction } from "./clear-sessions.ts";
import { groupDowngradeAction } from "./group-downgrade.ts";
import { oktaProvider } from "./provider.ts";
import { suspendAction } from "./suspend.ts";

export const provider: ProviderFactory<OktaProviderConfig, OktaClient> | undefined = oktaProvider;
export const actions: readonly ActionFactory<any>[] = [clearSessionsAction, suspendAction, groupDowngradeAction];
