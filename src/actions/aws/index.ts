/** AWS IAM: the `aws` provider and its actions. */
import { deactivateAccessKeysAction } from "./deactivate-access-keys.ts";
import { downgradeAction } from "./downgrade.ts";
import { awsProvider } from "./provider.ts";
import { revokeRoleSessionsAction } from "./revoke-role-sessions.ts";

export const provider = awsProvider;
export const actions = [revokeRoleSessionsAction, deactivateAccessKeysAction, downgradeAction] as const;
