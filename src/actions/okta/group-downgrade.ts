/**
 * `okta:group_downgrade`: moves a user from a full-access group to a read-only group (revert: back).
 * The new membership is added before the old one is removed, so the user is never in neither.
 * Okta documents 204 as the only success answer of both calls and no error for a membership that
 * already holds (PUT of a member, DELETE of a non-member); a 404 E0000007 on the DELETE (user or
 * group gone) also means "not a member" and is accepted, so a repeated run never fails on a
 * membership already gone. The result is read back from the user's group list.
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
      return {
        id,
        into,
        outOf,
        add: addToGroup(client, into, id, `add user ${id} to group ${into}`),
        remove: removeFromGroup(client, outOf, id, `remove user ${id} from group ${outOf}`),
        verify: listUserGroups(client, id, `read the groups of user ${id} back to verify (further pages follow Okta's Link header)`),
      };
    };
    const run = async (req: ActionRequest): Promise<ActionOutcome> => {
      const { id, into, outOf, add, remove, verify } = calls(req);
      await client.send(add, req.signal);
      const removed = await removedFromGroup(client, remove, req.signal);
      const groups = await userGroupIds(client, verify, req.signal);
      return {
        verified: groups.has(into) && !groups.has(outOf),
        detail: { user: id, member_of: into, removed_from: outOf, ...(removed === "not_found" ? { remove_answer: "not_found" } : {}) },
      };
    };
    return {
      plan: (req) => {
        const { add, remove, verify } = calls(req);
        return [add, remove, verify].map((c) => client.describe(c));
      },
      apply: run,
      revert: run,
    };
  },
};
