/**
 * `entra:confirm_compromised`: tells Entra ID Protection (Entra ID P2) the user is compromised, which
 * sets their user risk to high so risk-based Conditional Access policies act on it; revert dismisses
 * the user's risk. Both actions take object ids only. Identity Protection updates the risky user
 * asynchronously, so the read-back may still show the old state (`isProcessing`).
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { jsonCall } from "../../plugin/api-client.ts";
import { ENTRA, entraClient } from "./client.ts";
import { DEFAULT_USER, graphError, jsonOrUndefined, targetUser, userField } from "./graph.ts";

export const TYPE = "entra:confirm_compromised";

/** riskState values after which the user carries no risk. */
const NOT_AT_RISK = ["dismissed", "none", "remediated", "confirmedSafe"];

export const confirmCompromisedConfigSchema = z
  .object({
    /** The user's object id (a GUID; Identity Protection does not take user principal names), as a template. Default `{{attributes.entra_id}}`. */
    user: userField(),
  })
  .strict();

export type ConfirmCompromisedConfig = z.output<typeof confirmCompromisedConfigSchema>;

interface RiskyUser {
  riskState?: unknown;
  riskLevel?: unknown;
  isProcessing?: unknown;
}

export const confirmCompromisedAction: ActionFactory<ConfirmCompromisedConfig> = {
  type: TYPE,
  description: "Confirm the user compromised in Entra ID Protection (user risk high; needs Entra ID P2); revert dismisses the user's risk.",
  requiredPermissions: ["IdentityRiskyUser.ReadWrite.All"],
  example: { type: TYPE, user: DEFAULT_USER },
  configSchema: confirmCompromisedConfigSchema,
  revertible: true,
  provider: ENTRA,
  create(config, ctx): Action {
    const client = entraClient(ctx, TYPE);
    const base = `${client.graphUrl}/identityProtection/riskyUsers`;
    const calls = (req: ActionRequest, operation: ActionRequest["operation"]): { user: string; change: ApiCall; read: ApiCall } => {
      const user = targetUser(config.user, req, TYPE, true);
      const verb = operation === "apply" ? "confirmCompromised" : "dismiss";
      return {
        user,
        change: jsonCall("POST", `${base}/${verb}`, { userIds: [user] }, { summary: operation === "apply" ? `confirm ${user} compromised` : `dismiss the risk of ${user}` }),
        // A user Identity Protection never flagged has no riskyUser: 404, which a revert counts as risk-free.
        read: { method: "GET", url: `${base}/${user}`, headers: { Accept: "application/json" }, accept: [404], summary: `read back the risk state of ${user}` },
      };
    };
    const run = async (req: ActionRequest, operation: ActionRequest["operation"]) => {
      const c = calls(req, operation);
      const changed = await client.send(c.change, req.signal);
      const read = await client.send(c.read, req.signal);
      // Only Graph's own not-found counts as "no risk record"; any other 404 (a wrong graph_url) proves nothing.
      const noRecord = read.status === 404 && /notfound/i.test(graphError(read).code ?? "");
      const risky = read.status === 404 ? undefined : jsonOrUndefined<RiskyUser>(read);
      const riskState = typeof risky?.riskState === "string" ? risky.riskState : noRecord ? "none" : undefined;
      const processing = risky?.isProcessing === true;
      const inPlace = operation === "apply" ? riskState === "confirmedCompromised" : riskState !== undefined && NOT_AT_RISK.includes(riskState);
      return {
        // While Identity Protection is still processing, a state that does not match yet says nothing.
        ...(inPlace || !processing ? { verified: inPlace } : {}),
        detail: {
          user: c.user,
          status: changed.status,
          riskState: riskState ?? null,
          riskLevel: typeof risky?.riskLevel === "string" ? risky.riskLevel : null,
          ...(processing ? { isProcessing: true } : {}),
        },
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
