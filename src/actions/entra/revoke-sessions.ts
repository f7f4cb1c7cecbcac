/**
 * `entra:revoke_sessions`: `POST /users/{id}/revokeSignInSessions` resets the user's
 * signInSessionsValidFromDateTime, so refresh tokens and browser session cookies stop working.
 * Microsoft notes a delay of a few minutes; access tokens already issued stay valid until they
 * expire unless the app enforces Continuous Access Evaluation (near real time, up to 15 minutes).
 * There is nothing to undo: the user simply signs in again.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { ENTRA, entraClient } from "./client.ts";
import { DEFAULT_USER, jsonOrUndefined, targetUser, userField, userUrl } from "./graph.ts";

export const TYPE = "entra:revoke_sessions";

export const revokeSessionsConfigSchema = z
  .object({
    /** The user: object id or user principal name, as a template. Default `{{attributes.entra_id}}`. */
    user: userField(),
  })
  .strict();

export type RevokeSessionsConfig = z.output<typeof revokeSessionsConfigSchema>;

export const revokeSessionsAction: ActionFactory<RevokeSessionsConfig> = {
  type: TYPE,
  description: "Revoke the user's Entra sign-in sessions (refresh tokens and session cookies) through Microsoft Graph.",
  requiredPermissions: ["User.RevokeSessions.All"],
  example: { type: TYPE, user: DEFAULT_USER },
  configSchema: revokeSessionsConfigSchema,
  revertible: false,
  provider: ENTRA,
  create(config, ctx): Action {
    const client = entraClient(ctx, TYPE);
    const call = (req: ActionRequest): { user: string; call: ApiCall } => {
      const user = targetUser(config.user, req, TYPE, false);
      // Graph documents no request body for this action.
      return { user, call: { method: "POST", url: `${userUrl(client.graphUrl, user)}/revokeSignInSessions`, headers: { Accept: "application/json" }, summary: `revoke every sign-in session of ${user}` } };
    };
    return {
      plan: (req) => [client.describe(call(req).call)],
      async apply(req) {
        const c = call(req);
        const res = await client.send(c.call, req.signal);
        // The answer is `{value: true}` once the revocation is recorded; the effect itself is not readable.
        const value = jsonOrUndefined<{ value?: unknown }>(res)?.value;
        return { verified: value === true, detail: { user: c.user, status: res.status, value: value ?? null } };
      },
    };
  },
};
