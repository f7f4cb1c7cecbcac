/**
 * `entra:disable_account`: `PATCH /users/{id}` with `{"accountEnabled": false}` blocks new sign-ins;
 * revert sets it back to true. Disabling does not end sessions or tokens the user already holds, so
 * pair it with `entra:revoke_sessions` under the same level.
 *
 * Apply first reads `accountEnabled` and records it (`prior: {accountEnabled}`); revert enables the
 * account only if vigil disabled it (`prior.accountEnabled` true): an account an administrator had
 * disabled stays disabled. A prior without the key means the apply never got as far as its change.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import type { ApiCall } from "../../net/api-call.ts";
import type { HttpResponse } from "../../net/http.ts";
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
    const calls = (req: ActionRequest, operation: ActionRequest["operation"]): { user: string; enabled: boolean; change: ApiCall; read: ApiCall; before: ApiCall } => {
      const user = targetUser(config.user, req, TYPE, false);
      const enabled = operation === "revert";
      const url = userUrl(client.graphUrl, user);
      // accountEnabled is not among the properties Graph returns by default. `%24` is `$`, written
      // encoded because that is how plans print query keys.
      const select = `${url}?%24select=accountEnabled`;
      return {
        user,
        enabled,
        before: { method: "GET", url: select, headers: { Accept: "application/json" }, summary: `read accountEnabled of ${user} before changing it, to record it` },
        change: jsonCall("PATCH", url, { accountEnabled: enabled }, { summary: `${enabled ? "enable" : "disable"} the account of ${user}${enabled ? " (only when vigil disabled it)" : ""}` }),
        read: { method: "GET", url: select, headers: { Accept: "application/json" }, summary: `read back accountEnabled of ${user}` },
      };
    };
    const accountEnabled = (res: HttpResponse): boolean | null => {
      const value = jsonOrUndefined<{ accountEnabled?: unknown }>(res)?.accountEnabled;
      return typeof value === "boolean" ? value : null;
    };
    const apply = async (req: ActionRequest): Promise<ActionOutcome> => {
      const c = calls(req, "apply");
      const read = accountEnabled(await client.send(c.before, req.signal));
      // A retry (or an apply never reverted) keeps the state from before vigil's own change.
      const recorded = typeof req.prior?.accountEnabled === "boolean";
      const prior = recorded ? { accountEnabled: req.prior!.accountEnabled } : read === null ? undefined : { accountEnabled: read };
      if (!recorded && prior) await req.recordPrior?.(prior);
      const changed = await client.send(c.change, req.signal);
      const after = accountEnabled(await client.send(c.read, req.signal));
      return { verified: after === false, detail: { user: c.user, status: changed.status, accountEnabled: after }, ...(prior ? { prior } : {}) };
    };
    const revert = async (req: ActionRequest): Promise<ActionOutcome> => {
      const c = calls(req, "revert");
      if (!ours(req)) {
        const now = accountEnabled(await client.send(c.read, req.signal));
        const why = typeof req.prior?.accountEnabled === "boolean" ? "the account was already disabled before vigil's apply" : "vigil's change was never sent";
        return { verified: true, detail: { user: c.user, accountEnabled: now, changed: false, reason: `${why}; left as it is` } };
      }
      const changed = await client.send(c.change, req.signal);
      const after = accountEnabled(await client.send(c.read, req.signal));
      return { verified: after === true, detail: { user: c.user, status: changed.status, accountEnabled: after } };
    };
    return {
      plan(req) {
        const c = calls(req, req.operation);
        if (req.operation === "apply") return [c.before, c.change, c.read].map((x) => client.describe(x));
        return (ours(req) ? [c.change, c.read] : [c.read]).map((x) => client.describe(x));
      },
      apply,
      revert,
    };
  },
};

/** Revert: whether vigil disabled the account (or holds no record, and reverts as before). */
function ours(req: ActionRequest): boolean {
  return req.prior === undefined || req.prior.accountEnabled === true;
}
