/**
 * `entra:group_downgrade`: moves the user from a full-access group to a read-only group (apply) and
 * back (revert). Apps and Conditional Access policies that grant by group membership pick the change
 * up at the user's next token: existing tokens keep their group claims until they expire.
 *
 * Adding first, then removing, means a failure between the two leaves the user in both groups (never
 * in neither), and the queue's retry completes the move.
 *
 * Graph's answers tell whether each membership was there (400 "already exist" on the add, 404 on the
 * remove), so apply records them as it goes (`prior: {read_only_member, full_member}`, direct
 * membership). Revert undoes only vigil's own change: back into the full group only if vigil took the
 * user out, out of the read-only group only if vigil put them in. A key the apply never recorded (its
 * answer was lost) is unknown, and that step is reverted as before.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import type { ApiCall } from "../../net/api-call.ts";
import type { HttpResponse } from "../../net/http.ts";
import { jsonCall } from "../../plugin/api-client.ts";
import { ENTRA, entraClient, type EntraClient } from "./client.ts";
import { DEFAULT_USER, graphError, groupIdField, jsonOrUndefined, targetUser, unexpected, userField, userUrl } from "./graph.ts";

export const TYPE = "entra:group_downgrade";

/** Graph's answer to adding a member who is already one (400 Request_BadRequest). */
const ALREADY_MEMBER = /added object references already exist/i;

export const groupDowngradeConfigSchema = z
  .object({
    /** The user's object id (a GUID; member references take object ids), as a template. Default `{{attributes.entra_id}}`. */
    user: userField(),
    /** Object id of the group that grants full access; the user leaves it on apply. Required. */
    full_group: groupIdField(),
    /** Object id of the group that grants read-only access; the user joins it on apply. Required. */
    read_only_group: groupIdField(),
  })
  .strict()
  .refine((c) => c.full_group.toLowerCase() !== c.read_only_group.toLowerCase(), { error: "full_group and read_only_group must be different groups", path: ["read_only_group"] });

export type GroupDowngradeConfig = z.output<typeof groupDowngradeConfigSchema>;

interface Calls {
  readonly user: string;
  readonly join: string;
  readonly leave: string;
  readonly add: ApiCall;
  readonly remove: ApiCall;
  readonly check: ApiCall;
}

function buildCalls(client: EntraClient, config: GroupDowngradeConfig, req: ActionRequest, operation: ActionRequest["operation"]): Calls {
  const user = targetUser(config.user, req, TYPE, true);
  const [join, leave] = operation === "apply" ? [config.read_only_group, config.full_group] : [config.full_group, config.read_only_group];
  const groups = client.graphUrl + "/groups";
  return {
    user,
    join,
    leave,
    add: jsonCall("POST", `${groups}/${join}/members/$ref`, { "@odata.id": `${client.graphUrl}/directoryObjects/${user}` }, { accept: [400], summary: `add ${user} to group ${join}` }),
    remove: { method: "DELETE", url: `${groups}/${leave}/members/${user}/$ref`, accept: [404], summary: `remove ${user} from group ${leave}` },
    // Transitive, like the access the groups grant: membership through a nested group still counts.
    check: jsonCall("POST", `${userUrl(client.graphUrl, user)}/checkMemberGroups`, { groupIds: [join, leave] }, { summary: `read back ${user}'s membership of ${join} and ${leave}` }),
  };
}

/** Accepts exactly Graph's "already a member" 400; any other 400 is the permanent error it is. */
function added(call: ApiCall, res: HttpResponse): boolean {
  if (res.status < 300) return true;
  if (res.status === 400 && ALREADY_MEMBER.test(graphError(res).message ?? "")) return false;
  throw unexpected(call, res);
}

/**
 * Accepts Graph's 404 Request_ResourceNotFound: the user is not a member (or the group is gone),
 * either way not in it. A 404 without Graph's error body (a wrong graph_url) is not accepted.
 */
function removed(call: ApiCall, res: HttpResponse): boolean {
  if (res.status < 300) return true;
  if (res.status === 404 && graphError(res).code === "Request_ResourceNotFound") return false;
  throw unexpected(call, res);
}

export const groupDowngradeAction: ActionFactory<GroupDowngradeConfig> = {
  type: TYPE,
  description: "Move the user from a full-access Entra group to a read-only group through Microsoft Graph; revert moves them back.",
  // Member references need GroupMember.ReadWrite.All; checkMemberGroups needs User.Read.All and GroupMember.Read.All.
  requiredPermissions: ["GroupMember.ReadWrite.All", "GroupMember.Read.All", "User.Read.All"],
  example: { type: TYPE, user: DEFAULT_USER, full_group: "aaaaaaaa-1111-2222-3333-444444444444", read_only_group: "bbbbbbbb-1111-2222-3333-444444444444" },
  configSchema: groupDowngradeConfigSchema,
  revertible: true,
  provider: ENTRA,
  create(config, ctx): Action {
    const client = entraClient(ctx, TYPE);
    const verify = async (c: Calls, req: ActionRequest) => {
      const value = jsonOrUndefined<{ value?: unknown }>(await client.send(c.check, req.signal))?.value;
      const member = Array.isArray(value) ? value.filter((v): v is string => typeof v === "string").map((v) => v.toLowerCase()) : undefined;
      return { member, inJoin: member?.includes(c.join.toLowerCase()), inLeave: member?.includes(c.leave.toLowerCase()) };
    };
    const apply = async (req: ActionRequest): Promise<ActionOutcome> => {
      const c = buildCalls(client, config, req, "apply");
      // Keys recorded by an earlier attempt win: its answers came before vigil's own change.
      const prior: Record<string, unknown> = { ...(req.prior ?? {}) };
      const note = async (key: "read_only_member" | "full_member", value: boolean) => {
        if (typeof prior[key] === "boolean") return;
        prior[key] = value;
        await req.recordPrior?.({ [key]: value });
      };
      const joined = added(c.add, await client.send(c.add, req.signal));
      await note("read_only_member", !joined);
      const left = removed(c.remove, await client.send(c.remove, req.signal));
      await note("full_member", left);
      const { member, inJoin, inLeave } = await verify(c, req);
      return {
        verified: inJoin === true && inLeave === false,
        detail: {
          user: c.user,
          joined: c.join,
          left: c.leave,
          // false: the membership already was as wanted.
          added: joined,
          removed: left,
          ...(member ? { member_of_joined: inJoin, member_of_left: inLeave } : {}),
        },
        prior,
      };
    };
    const revert = async (req: ActionRequest): Promise<ActionOutcome> => {
      const c = buildCalls(client, config, req, "revert");
      const steps = revertSteps(req);
      const joined = steps.join ? added(c.add, await client.send(c.add, req.signal)) : false;
      const left = steps.leave ? removed(c.remove, await client.send(c.remove, req.signal)) : false;
      const { member, inJoin, inLeave } = await verify(c, req);
      const untouched = [...(steps.join ? [] : [`not added back to ${c.join}: vigil did not remove the user from it`]), ...(steps.leave ? [] : [`left in ${c.leave}: the user was a member before vigil's apply`])];
      return {
        // What vigil changed is undone; a membership it never touched is not its to check.
        verified: (!steps.join || inJoin === true) && (!steps.leave || inLeave === false),
        detail: {
          user: c.user,
          joined: c.join,
          left: c.leave,
          added: joined,
          removed: left,
          ...(member ? { member_of_joined: inJoin, member_of_left: inLeave } : {}),
          ...(untouched.length > 0 ? { left_as_it_was: untouched } : {}),
        },
      };
    };
    return {
      plan(req) {
        const c = buildCalls(client, config, req, req.operation);
        const steps = req.operation === "apply" ? { join: true, leave: true } : revertSteps(req);
        return [...(steps.join ? [c.add] : []), ...(steps.leave ? [c.remove] : []), c.check].map((x) => client.describe(x));
      },
      apply,
      revert,
    };
  },
};

/** Revert: join the full group unless the record shows vigil never took the user out; leave the read-only group unless they were in it before. */
function revertSteps(req: ActionRequest): { join: boolean; leave: boolean } {
  return { join: req.prior?.full_member !== false, leave: req.prior?.read_only_member !== true };
}
