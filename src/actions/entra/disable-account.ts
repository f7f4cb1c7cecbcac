/**
 * `entra:disable_account`: `PATCH /users/{id}` with `{"accountEnabled": false}` blocks new sign-ins;
 * revert sets it back to true. Disabling does not end sessions or tokens the user already holds, so
 * pair it with `entra:revoke_sessions` under the same level.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { jsonCall } from "../../plugin/api-client.ts";
import { ENTRA, entraClient } from "./client.ts";
import { DEFAULT_USER, jsonOrUndefined, targetUser, userField, userUrl } from "./graph.ts";

export const TYPE = "entra:disable_account";

export const disableAccountConfigSchema = z
  .object({
    /** The user: object id or user principal name, as a template. Default `{{attributes.entra_id}}`. */
    user: userField(),
  })
  .strict();

export type DisableAccountConfig = z.output<typeof disableAccountConfigSchema>;

export const disableAccountAction: ActionFactory<DisableAccountConfig> = {
  type: TYPE,
  description: "Disable the user's Entra account (accountEnabled false) through Microsoft Graph; revert enables it again.",
  // accountEnabled alone needs these two; the read-back needs User.Read.All as well.
  requiredPermissions: ["User.EnableDisableAccount.All", "User.Read.All"],
  example: { type: TYPE, user: DEFAULT_USER },
  configSchema: disableAccountConfigSchema,
  revertible: true,
  provider: ENTRA,
  create(config, ctx): Action {
    const client = entraClient(ctx, TYPE);
    const calls = (req: ActionRequest, operation: ActionRequest["operation"]): { user: string; enabled: boolean; change: ApiCall; read: ApiCall } => {
      const user = targetUser(config.user, req, TYPE, false);
      const enabled = operation === "revert";
      const url = userUrl(client.graphUrl, user);
      return {
        user,
        enabled,
        change: jsonCall("PATCH", url, { accountEnabled: enabled }, { summary: `${enabled ? "enable" : "disable"} the account of ${user}` }),
        // accountEnabled is not among the properties Graph returns by default. `%24` is `$`, written
        // encoded because that is how plans print query keys.
        read: { method: "GET", url: `${url}?%24select=accountEnabled`, headers: { Accept: "application/json" }, summary: `read back accountEnabled of ${user}` },
      };
    };
    const run = async (req: ActionRequest, operation: ActionRequest["operation"]) => {
      const c = calls(req, operation);
      const changed = await client.send(c.change, req.signal);
      const read = await client.send(c.read, req.signal);
      const accountEnabled = jsonOrUndefined<{ accountEnabled?: unknown }>(read)?.accountEnabled;
      return {
        verified: accountEnabled === c.enabled,
        detail: { user: c.user, status: changed.status, accountEnabled: typeof accountEnabled === "boolean" ? accountEnabled : null },
      };
    };
    return {
      plan(req) {
        const c = calls(req, req.operation);
        return [client.describe(c.change), client.describe(c.read)];
      },
      apply: (req) => run(req, "apply"),
      revert: (req) => run(req, "revert"),
    };
  },
};
