/**
 * `aws:revoke_role_sessions`: what the IAM console's "Revoke active sessions" does. An inline role
 * policy `AWSRevokeOlderSessions` denies everything to sessions issued before an instant; sessions
 * issued after it are unaffected. The instant is the decision's `decided_at`, so every retry and the
 * plan carry the same document.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { fromSubject, templateString } from "../common/input.ts";
import type { AwsClient } from "./client.ts";
import { principalName } from "./names.ts";
import { awsClient } from "./provider.ts";
import { text } from "./xml.ts";

export const REVOKE_POLICY_NAME = "AWSRevokeOlderSessions";
const TYPE = "aws:revoke_role_sessions";

export const revokeRoleSessionsSchema = z
  .object({
    /** The IAM role: a name, a role ARN or an assumed-role session ARN. Default `{{attributes.aws_role}}`. */
    role: templateString().default("{{attributes.aws_role}}"),
  })
  .strict();

export type RevokeRoleSessionsConfig = z.output<typeof revokeRoleSessionsSchema>;

/** The policy the console writes: deny everything to sessions whose token was issued before `at`. */
export function revokePolicy(at: number): Record<string, unknown> {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Deny",
        Action: ["*"],
        Resource: ["*"],
        Condition: { DateLessThan: { "aws:TokenIssueTime": new Date(at).toISOString() } },
      },
    ],
  };
}

/** The exact `PolicyDocument` text sent: the same bytes for the plan, every attempt and the comparison. */
export function revokePolicyDocument(at: number): string {
  return JSON.stringify(revokePolicy(at));
}

function calls(client: AwsClient, config: RevokeRoleSessionsConfig, req: ActionRequest): { role: string; put: ApiCall; del: ApiCall; get: ApiCall; at: string } {
  const role = principalName("role", fromSubject(config.role, req.subject), TYPE);
  const at = new Date(req.decision.decided_at).toISOString();
  const base = { RoleName: role, PolicyName: REVOKE_POLICY_NAME };
  return {
    role,
    at,
    put: client.call("PutRolePolicy", { ...base, PolicyDocument: revokePolicyDocument(req.decision.decided_at) }, { summary: `deny IAM role ${role} to sessions issued before ${at}` }),
    del: client.call("DeleteRolePolicy", base, { accept: [404], summary: `remove the session revocation from IAM role ${role}` }),
    get: client.call("GetRolePolicy", base, { accept: [404], summary: `read ${REVOKE_POLICY_NAME} of IAM role ${role} back` }),
  };
}

/** The document of a GetRolePolicy answer: IAM returns it URL-encoded (RFC 3986). */
function decodeDocument(encoded: string | undefined): unknown {
  if (encoded === undefined) return undefined;
  try {
    return JSON.parse(decodeURIComponent(encoded));
  } catch {
    return undefined;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export const revokeRoleSessionsAction: ActionFactory<RevokeRoleSessionsConfig> = {
  type: TYPE,
  description:
    "Revoke an IAM role's active sessions: put the inline policy AWSRevokeOlderSessions denying everything to sessions issued before the decision (apply); delete it (revert).",
  requiredPermissions: ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
  example: { type: TYPE, role: "{{attributes.aws_role}}" },
  configSchema: revokeRoleSessionsSchema,
  revertible: true,
  provider: "aws",
  create(config, ctx): Action {
    const client = awsClient(ctx.provider, TYPE);
    const plan = (req: ActionRequest): PlannedCall[] => {
      const c = calls(client, config, req);
      return (req.operation === "revert" ? [c.del, c.get] : [c.put, c.get]).map((call) => client.describe(call));
    };
    const apply = async (req: ActionRequest) => {
      const c = calls(client, config, req);
      await client.query(c.put, req.signal);
      const got = await client.query(c.get, req.signal);
      // IAM is eventually consistent: a read right after the write may not see it yet.
      const verified = got.status === 200 && sameJson(decodeDocument(text(got.result, "PolicyDocument")), revokePolicy(req.decision.decided_at));
      return { verified, detail: { role: c.role, policy: REVOKE_POLICY_NAME, token_issued_before: c.at } };
    };
    const revert = async (req: ActionRequest) => {
      const c = calls(client, config, req);
      const del = await client.query(c.del, req.signal);
      const got = await client.query(c.get, req.signal);
      return { verified: got.status === 404, detail: { role: c.role, policy: REVOKE_POLICY_NAME, deleted: del.status === 200 } };
    };
    return { plan, apply, revert };
  },
};
