/** AWS IAM: the `aws` provider and its actions. */
import type { ActionFactory } from "../../plugin/action.ts";
import type { ProviderFactory } from "../../plugin/provider.ts";
import { deactivateAccessKeysAction } from "./deactivate-access-keys.ts";
import { downgradeAction } from "./downgrade.ts";
import { awsProvider } from "./provider.ts";
import { revokeRoleSessionsAction } from "./revoke-role-sessions.ts";

export const provider: ProviderFactory<any, any> | undefined = awsProvider;
export const actions: readonly ActionFactory<any>[] = [revokeRoleSessionsAction, deactivateAccessKeysAction, downgradeAction];
