/**
 * `okta:suspend`: suspends an ACTIVE user (they cannot sign in; groups and app assignments are kept);
 * revert unsuspends. Okta moves only ACTIVE users to SUSPENDED and only SUSPENDED users back, so the
 * status is read first: a user already in the wanted state needs no call, and apply on any other
 * status is a permanent error naming it.
 *
 * Apply records the status it read, before suspending (`prior: {status}`), and revert unsuspends only
 * a user vigil suspended (`prior.status` ACTIVE): a user an administrator had suspended stays
 * suspended. A prior without a status means the apply never got as far as its suspend call.
 */
import { z } from "zod";
import { UpstreamError } from "../../errors.ts";
import type { Action, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import { templateString } from "../common/input.ts";
import { DEFAULT_USER_TEMPLATE, getUser, lifecycle, userId, userStatus } from "./api.ts";
import { oktaClient } from "./client.ts";

const TYPE = "okta:suspend";

export const suspendSchema = z
  .object({
    /** The Okta user id, as a template over the subject. Default `{{attributes.okta_id}}`. */
    user: templateString().default(DEFAULT_USER_TEMPLATE),
  })
  .strict();

export type SuspendConfig = z.output<typeof suspendSchema>;

const STEP = {
  apply: { from: "ACTIVE", to: "SUSPENDED", op: "suspend" },
  revert: { from: "SUSPENDED", to: "ACTIVE", op: "unsuspend" },
} as const;

/** The status recorded before vigil's suspend, if any. */
function priorStatus(prior: ActionRequest["prior"]): string | undefined {
  return typeof prior?.status === "string" ? prior.status : undefined;
}

/** Revert only: why there is nothing of vigil's to undo, when the record says so. */
function notOurs(req: ActionRequest): string | undefined {
  if (req.operation !== "revert" || req.prior === undefined) return undefined;
  const before = priorStatus(req.prior);
  if (before === undefined) return "vigil's suspend was never sent";
  return before === STEP.apply.from ? undefined : `the user was already ${before} before vigil's apply`;
}

export const suspendAction: ActionFactory<SuspendConfig> = {
  type: TYPE,
  description: "Suspend an ACTIVE Okta user (revert: unsuspend); verified by reading the user's status back.",
  requiredPermissions: [
    "okta.users.manage (OAuth scope)",
    "okta.users.read (admin role permission)",
    "okta.users.lifecycle.suspend (admin role permission)",
    "okta.users.lifecycle.unsuspend (admin role permission)",
  ],
  example: { type: TYPE, user: DEFAULT_USER_TEMPLATE },
  configSchema: suspendSchema,
  revertible: true,
  provider: "okta",
  create(config, ctx): Action {
    const client = oktaClient(ctx, TYPE);
    const calls = (req: ActionRequest) => {
      const id = userId(config.user, req, TYPE);
      const s = STEP[req.operation];
      const by = req.operation === "revert" ? " and vigil suspended it" : "";
      return {
        id,
        read: getUser(client, id, `read the status of user ${id}; the next call is sent only if it is ${s.from}${by}`),
        change: lifecycle(client, id, s.op, `${s.op} user ${id}: sent only when its status is ${s.from}${by}`),
        verify: getUser(client, id, `read user ${id} back to verify status ${s.to}`),
      };
    };
    const run = async (req: ActionRequest): Promise<ActionOutcome> => {
      const { id, read, change, verify } = calls(req);
      const s = STEP[req.operation];
      const before = userStatus(await client.send(read, req.signal), read);
      const reason = notOurs(req);
      if (reason !== undefined) return { verified: true, detail: { user: id, status: before, changed: false, reason: `${reason}; left as it is` } };
      // A retry (or an apply never reverted) keeps the status from before vigil's own suspend.
      const prior = req.operation === "apply" ? { status: priorStatus(req.prior) ?? before } : undefined;
      if (prior && priorStatus(req.prior) === undefined) await req.recordPrior?.(prior);
      const withPrior = (o: ActionOutcome): ActionOutcome => (prior ? { ...o, prior } : o);
      if (before === s.to) return withPrior({ verified: true, detail: { user: id, status: before, changed: false } });
      if (before !== s.from) {
        if (req.operation === "apply") {
          throw new UpstreamError(false, `${TYPE}: user ${id} has status ${before}; Okta suspends only ACTIVE users`, { details: { user: id, status: before } });
        }
        // Not suspended (deactivated, locked out, …): nothing of ours to undo, and unsuspend would be refused.
        return { verified: false, detail: { user: id, status: before, changed: false, reason: `status ${before} is not SUSPENDED; left as it is` } };
      }
      await client.send(change, req.signal);
      const after = userStatus(await client.send(verify, req.signal), verify);
      return withPrior({ verified: after === s.to, detail: { user: id, status_before: before, status: after, changed: true } });
    };
    return {
      plan: (req) => {
        const { read, change, verify } = calls(req);
        // A revert of something vigil never suspended only reads the status.
        return (notOurs(req) === undefined ? [read, change, verify] : [read]).map((c) => client.describe(c));
      },
      apply: run,
      revert: run,
    };
  },
};
