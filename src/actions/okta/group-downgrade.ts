/**
 * `okta:group_downgrade`: moves a user from a full-access group to a read-only group (revert: back).
 * The new membership is added before the old one is removed, so the user is never in neither.
 * Okta documents 204 as the only success answer of both calls and no error for a membership that
 * already holds (PUT of a member, DELETE of a non-member); a 404 E0000007 on the DELETE (user or
 * group gone) also means "not a member" and is accepted, so a repeated run never fails on a
 * membership already gone. The result is read back from the user's group list.
 *
 * Since Okta's answers do not tell whether a membership was there, apply reads the user's groups
 * first and records both memberships (`prior: {full_member, read_only_member}`). Revert undoes only
 * vigil's own change: it adds the user back to the full group only if vigil removed them, and takes
 * them out of the read-only group only if vigil put them in. A prior without these keys means the
 * apply never got as far as changing a membership.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import { templateString } from "../common/input.ts";
import { addToGroup, DEFAULT_USER_TEMPLATE, isOktaId, listUserGroups, removedFromGroup, removeFromGroup, userGroupIds, userId } from "./api.ts";
import { oktaClient } from "./client.ts";

const TYPE = "okta:group_downgrade";

const groupId = () => z.string().refine(isOktaId, { error: "expected an Okta group id like 00g1abcdEFGH2ijk3l4" });

export const groupDowngradeSchema = z
  .object({
    /** The Okta user id, as a template over the subject. Default `{{attributes.okta_id}}`. */
    user: templateString().default(DEFAULT_USER_TEMPLATE),
    /** Id of the group granting full access (an `OKTA_GROUP`). Required. */
    full_group: groupId(),
    /** Id of the group granting read-only access (an `OKTA_GROUP`). Required. */
    read_only_group: groupId(),
  })
  .strict()
  .refine((c) => c.full_group !== c.read_only_group, { error: "full_group and read_only_group must be different groups", path: ["read_only_group"] });

export type GroupDowngradeConfig = z.output<typeof groupDowngradeSchema>;

export const groupDowngradeAction: ActionFactory<GroupDowngradeConfig> = {
  type: TYPE,
  description: "Move an Okta user from a full-access group to a read-only group (revert: move back); verified from the user's groups.",
  requiredPermissions: [
    "okta.groups.manage (OAuth scope)",
    "okta.users.read (OAuth scope, to read the user's groups; okta.users.manage includes it)",
    "okta.groups.members.manage (admin role permission, on both groups)",
    "okta.users.groupMembership.manage (admin role permission)",
    "okta.users.read (admin role permission)",
  ],
  example: { type: TYPE, user: DEFAULT_USER_TEMPLATE, full_group: "00g1fullAccess0000x7", read_only_group: "00g1readOnly000000x7" },
  configSchema: groupDowngradeSchema,
  revertible: true,
  provider: "okta",
  create(config, ctx): Action {
    const client = oktaClient(ctx, TYPE);
    const calls = (req: ActionRequest) => {
      const id = userId(config.user, req, TYPE);
      const [into, outOf] = req.operation === "apply" ? [config.read_only_group, config.full_group] : [config.full_group, config.read_only_group];
      // Revert: each step only where the record shows vigil's apply made the change it undoes.
      const steps = req.operation === "apply" || req.prior === undefined ? { add: true, remove: true } : { add: req.prior.full_member === true, remove: req.prior.read_only_member === false };
      const only = req.operation === "revert" ? " (only as vigil's apply changed it)" : "";
      return {
        id,
        into,
        outOf,
        steps,
        before: listUserGroups(client, id, `read the groups of user ${id} before changing them, to record its memberships (further pages follow Okta's Link header)`),
        add: addToGroup(client, into, id, `add user ${id} to group ${into}${only}`),
        remove: removeFromGroup(client, outOf, id, `remove user ${id} from group ${outOf}${only}`),
        verify: listUserGroups(client, id, `read the groups of user ${id} back to verify (further pages follow Okta's Link header)`),
      };
    };
    const apply = async (req: ActionRequest): Promise<ActionOutcome> => {
      const { id, before, add, remove, verify } = calls(req);
      const groups = await userGroupIds(client, before, req.signal);
      // A retry (or an apply never reverted) keeps the memberships from before vigil's own change.
      const recorded = typeof req.prior?.full_member === "boolean" && typeof req.prior.read_only_member === "boolean";
      const prior = recorded ? { full_member: req.prior!.full_member, read_only_member: req.prior!.read_only_member } : { full_member: groups.has(config.full_group), read_only_member: groups.has(config.read_only_group) };
      if (!recorded) await req.recordPrior?.(prior);
      await client.send(add, req.signal);
      const removed = await removedFromGroup(client, remove, req.signal);
      const after = await userGroupIds(client, verify, req.signal);
      return {
        verified: after.has(config.read_only_group) && !after.has(config.full_group),
        detail: { user: id, member_of: config.read_only_group, removed_from: config.full_group, ...(removed === "not_found" ? { remove_answer: "not_found" } : {}) },
        prior,
      };
    };
    const revert = async (req: ActionRequest): Promise<ActionOutcome> => {
      const { id, into, outOf, steps, add, remove, verify } = calls(req);
      if (steps.add) await client.send(add, req.signal);
      const removed = steps.remove ? await removedFromGroup(client, remove, req.signal) : undefined;
      const groups = await userGroupIds(client, verify, req.signal);
      // Verified: what vigil changed is undone (a membership it never touched is not its to check).
      const verified = (!steps.add || groups.has(into)) && (!steps.remove || !groups.has(outOf));
      const untouched = [...(steps.add ? [] : [`not added back to ${into}: vigil did not remove the user from it`]), ...(steps.remove ? [] : [`left in ${outOf}: the user was a member before vigil's apply`])];
      return {
        verified,
        detail: {
          user: id,
          ...(steps.add ? { member_of: into } : {}),
          ...(steps.remove ? { removed_from: outOf } : {}),
          ...(removed === "not_found" ? { remove_answer: "not_found" } : {}),
          ...(untouched.length > 0 ? { changed: steps.add || steps.remove, left_as_it_was: untouched } : {}),
        },
      };
    };
    return {
      plan: (req) => {
        const { steps, before, add, remove, verify } = calls(req);
        const sent = req.operation === "apply" ? [before, add, remove, verify] : [...(steps.add ? [add] : []), ...(steps.remove ? [remove] : []), verify];
        return sent.map((c) => client.describe(c));
      },
      apply,
      revert,
    };
  },
};
