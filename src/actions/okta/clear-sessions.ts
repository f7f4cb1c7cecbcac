/**
 * `okta:clear_sessions`: ends the user's Okta sessions (and, by default, revokes the OAuth/OIDC
 * tokens Okta issued to them), optionally followed by Universal Logout. Nothing to undo, so not
 * revertible. Okta cannot list a user's sessions through the API, so the outcome is not verified.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import { sendAll } from "../../plugin/api-client.ts";
import { templateString } from "../common/input.ts";
import { clearSessions, DEFAULT_USER_TEMPLATE, globalTokenRevocation, userId } from "./api.ts";
import { oktaClient } from "./client.ts";

const TYPE = "okta:clear_sessions";

export const clearSessionsSchema = z
  .object({
    /** The Okta user id, as a template over the subject. Default `{{attributes.okta_id}}`. */
    user: templateString().default(DEFAULT_USER_TEMPLATE),
    /** Also revoke the OIDC/OAuth access and refresh tokens Okta issued to the user (`oauthTokens=true`). Default true. */
    oauth_tokens: z.boolean().default(true),
    /** Then call Universal Logout (`POST /oauth2/v1/global-token-revocation`), which needs OAuth scope `okta.universalLogout.manage`. Default false. */
    universal_logout: z.boolean().default(false),
  })
  .strict();

export type ClearSessionsConfig = z.output<typeof clearSessionsSchema>;

export const clearSessionsAction: ActionFactory<ClearSessionsConfig> = {
  type: TYPE,
  description: "End a user's Okta sessions and revoke the OAuth tokens issued to them; optionally trigger Universal Logout (apply only).",
  requiredPermissions: [
    "okta.users.manage (OAuth scope)",
    "okta.users.lifecycle.clearSessions (admin role permission; e.g. Help Desk Administrator)",
    "okta.universalLogout.manage (OAuth scope; only with universal_logout: true)",
  ],
  example: { type: TYPE, user: DEFAULT_USER_TEMPLATE, oauth_tokens: true },
  configSchema: clearSessionsSchema,
  revertible: false,
  provider: "okta",
  create(config, ctx): Action {
    const client = oktaClient(ctx, TYPE);
    const calls = (req: ActionRequest) => {
      const id = userId(config.user, req, TYPE);
      const out = [clearSessions(client, id, config.oauth_tokens, `end the Okta sessions of user ${id}${config.oauth_tokens ? " and revoke its OAuth tokens" : ""}`)];
      if (config.universal_logout) out.push(globalTokenRevocation(client, id, `Universal Logout of user ${id} at every app that supports it`));
      return { id, calls: out };
    };
    return {
      plan: (req) => calls(req).calls.map((c) => client.describe(c)),
      apply: async (req) => {
        const { id, calls: list } = calls(req);
        await sendAll(client, list, req.signal);
        // No read-back: Okta offers no call that lists a user's sessions.
        return { detail: { user: id, oauth_tokens: config.oauth_tokens, universal_logout: config.universal_logout } };
      },
    };
  },
};
