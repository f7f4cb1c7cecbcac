/**
 * `aws:downgrade`: caps an IAM role or user, and on revert removes exactly what it added.
 *
 * - `managed_policy`: attaches a managed policy. One attached before vigil stays attached on revert:
 *   apply tags the principal `vigil:attached-policy:<hash of the ARN>` only when it attaches the
 *   policy itself, and revert detaches only when that tag is there.
 * - `permissions_boundary`: sets the principal's permissions boundary (the effective permissions
 *   become the intersection of its policies and the boundary). The boundary it replaced is recorded
 *   in the tag `vigil:previous-permissions-boundary` (`none` when there was none) and put back on revert.
 *
 * Records live on the principal, so a revert works after a restart and from any replica.
 */
import { z } from "zod";
import type { Action, ActionContext, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { fromSubject, inputError, templateString } from "../common/input.ts";
import type { AwsClient } from "./client.ts";
import { fitsTagValue, principalName, shortHash, type PrincipalKind } from "./names.ts";
import { awsClient } from "./provider.ts";
import { capital, listTagsCall, nameParam, readTags, tagCall, untagCall } from "./tags.ts";
import { child, members, text, type XmlNode } from "./xml.ts";

const TYPE = "aws:downgrade";
/** Tag recording the boundary that apply replaced: its ARN, or `none`. */
export const PREVIOUS_BOUNDARY_TAG = "vigil:previous-permissions-boundary";
const NO_BOUNDARY = "none";
const ATTACHED_TAG_PREFIX = "vigil:attached-policy:";
/** A role has at most 20 managed policies; pages beyond this many mean something is wrong. */
const MAX_PAGES = 10;

/** Plan placeholders: values only the earlier answers tell. */
export const PLACEHOLDER = {
  currentBoundary: `<the current boundary ARN from the Get call, or ${NO_BOUNDARY}>`,
  previousBoundary: `<the boundary ARN recorded in ${PREVIOUS_BOUNDARY_TAG}>`,
} as const;

/** The tag key marking that vigil attached `policyArn` (tag keys stop at 128 characters, ARNs do not). */
export function attachedTag(policyArn: string): string {
  return `${ATTACHED_TAG_PREFIX}${shortHash(policyArn)}`;
}

/** The AWS managed ReadOnlyAccess policy of a partition. */
export function readOnlyAccessArn(partition: string): string {
  return `arn:${partition}:iam::aws:policy/ReadOnlyAccess`;
}

const POLICY_ARN_RE = /^arn:aws[a-z-]*:iam::(aws|\d{12}):policy\/[\p{L}\p{N}_.:/=+\-@]+$/u;

export const downgradeSchema = z
  .object({
    /** Whether `principal_name` is an IAM role or user. Default `role`. */
    principal: z.enum(["role", "user"]).default("role"),
    /**
     * The principal: a name or an ARN (for roles also an assumed-role session ARN). Default
     * `{{attributes.aws_role}}` for roles, `{{attributes.aws_user}}` for users. Not `name`: every
     * action entry's `name` is the action's own (idempotency keys, the audit log).
     */
    principal_name: templateString().optional(),
    /** `managed_policy` attaches `policy_arn`; `permissions_boundary` makes it the principal's permissions boundary. Default `managed_policy`. */
    mode: z.enum(["managed_policy", "permissions_boundary"]).default("managed_policy"),
    /**
     * The managed policy. Default: the partition's `arn:aws:iam::aws:policy/ReadOnlyAccess`. It is
     * recorded in an IAM tag, so only letters, digits and `_ . : / = + - @` are accepted, up to 256 characters.
     */
    policy_arn: z
      .string()
      .max(256)
      .regex(POLICY_ARN_RE, { error: "expected a managed policy ARN like arn:aws:iam::aws:policy/ReadOnlyAccess (letters, digits and _ . : / = + - @ only)" })
      .optional(),
  })
  .strict();

export type DowngradeConfig = z.output<typeof downgradeSchema>;

interface Target {
  readonly kind: PrincipalKind;
  readonly name: string;
}

function managedCalls(client: AwsClient, t: Target, policy: string) {
  const who = `IAM ${t.kind} ${t.name}`;
  const C = capital(t.kind);
  const base = { [nameParam(t.kind)]: t.name };
  return {
    list: (verify = false, marker?: string): ApiCall =>
      client.call(`ListAttached${C}Policies`, { ...base, MaxItems: "1000", ...(marker ? { Marker: marker } : {}) }, { summary: verify ? `read the managed policies of ${who} back` : `list the managed policies attached to ${who}` }),
    record: (): ApiCall => tagCall(client, t.kind, t.name, { [attachedTag(policy)]: policy }, `record on ${who} that vigil attaches ${policy} (only when it is not attached yet)`),
    attach: (): ApiCall => client.call(`Attach${C}Policy`, { ...base, PolicyArn: policy }, { summary: `attach ${policy} to ${who} (only when it is not attached yet)` }),
    tags: (): ApiCall => listTagsCall(client, t.kind, t.name, true),
    detach: (): ApiCall => client.call(`Detach${C}Policy`, { ...base, PolicyArn: policy }, { accept: [404], summary: `detach ${policy} from ${who} (only when vigil attached it)` }),
    untag: (): ApiCall => untagCall(client, t.kind, t.name, [attachedTag(policy)], `drop vigil's record of ${policy} from ${who}`),
  };
}

function boundaryCalls(client: AwsClient, t: Target) {
  const who = `IAM ${t.kind} ${t.name}`;
  const C = capital(t.kind);
  const base = { [nameParam(t.kind)]: t.name };
  return {
    get: (verify = false): ApiCall => client.call(`Get${C}`, base, { summary: verify ? `read the permissions boundary of ${who} back` : `read the permissions boundary of ${who}` }),
    tags: (gone = false): ApiCall => listTagsCall(client, t.kind, t.name, gone),
    record: (previous: string): ApiCall => tagCall(client, t.kind, t.name, { [PREVIOUS_BOUNDARY_TAG]: previous }, `record the boundary of ${who} before vigil's (only when none is recorded yet)`),
    put: (arn: string, restore = false): ApiCall =>
      client.call(`Put${C}PermissionsBoundary`, { ...base, PermissionsBoundary: arn }, { summary: restore ? `restore the previous permissions boundary of ${who} (when one was recorded)` : `set the permissions boundary of ${who} to ${arn}` }),
    remove: (): ApiCall => client.call(`Delete${C}PermissionsBoundary`, base, { accept: [404], summary: `remove the permissions boundary of ${who} (when the record says there was ${NO_BOUNDARY})` }),
    untag: (): ApiCall => untagCall(client, t.kind, t.name, [PREVIOUS_BOUNDARY_TAG], `drop the ${PREVIOUS_BOUNDARY_TAG} record from ${who}`),
  };
}

async function attachedPolicies(client: AwsClient, calls: ReturnType<typeof managedCalls>, verify: boolean, signal?: AbortSignal): Promise<Set<string>> {
  const out = new Set<string>();
  let marker: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await client.query(calls.list(verify, marker), signal);
    for (const m of members(r.result, "AttachedPolicies")) {
      const arn = text(m, "PolicyArn");
      if (arn) out.add(arn);
    }
    marker = text(r.result, "IsTruncated") === "true" ? text(r.result, "Marker") : undefined;
    if (!marker) break;
  }
  return out;
}

function boundaryOf(kind: PrincipalKind, result: XmlNode | undefined): string | undefined {
  return text(child(child(result, capital(kind)), "PermissionsBoundary"), "PermissionsBoundaryArn");
}

export const downgradeAction: ActionFactory<DowngradeConfig> = {
  type: TYPE,
  description:
    "Cap an IAM role or user: attach a managed policy or set a permissions boundary (apply); remove exactly what was added, restoring a boundary that was there before (revert).",
  requiredPermissions: [
    "iam:ListAttachedRolePolicies",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetRole",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:ListRoleTags",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListAttachedUserPolicies",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:GetUser",
    "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:ListUserTags",
    "iam:TagUser",
    "iam:UntagUser",
  ],
  example: { type: TYPE, principal: "role", principal_name: "{{attributes.aws_role}}", mode: "permissions_boundary", policy_arn: "arn:aws:iam::aws:policy/ReadOnlyAccess" },
  configSchema: downgradeSchema,
  revertible: true,
  provider: "aws",
  create(config, ctx: ActionContext): Action {
    const client = awsClient(ctx.provider, TYPE);
    const policy = config.policy_arn ?? readOnlyAccessArn(client.partition);
    const template = config.principal_name ?? (config.principal === "role" ? "{{attributes.aws_role}}" : "{{attributes.aws_user}}");
    if (config.mode === "managed_policy" && /:iam::aws:policy\/ReadOnlyAccess$/.test(policy)) {
      // Policies add up: attaching ReadOnlyAccess grants reads and takes nothing away.
      ctx.logger.warn(
        { action: TYPE, policy_arn: policy },
        "aws:downgrade: attaching ReadOnlyAccess does not remove any permission; use mode: permissions_boundary to cap the principal at read-only, or a policy that denies writes",
      );
    }
    const target = (req: ActionRequest): Target => ({ kind: config.principal, name: principalName(config.principal, fromSubject(template, req.subject), TYPE) });

    const plan = (req: ActionRequest): PlannedCall[] => {
      const t = target(req);
      let calls: ApiCall[];
      if (config.mode === "managed_policy") {
        const m = managedCalls(client, t, policy);
        calls = req.operation === "revert" ? [m.tags(), m.detach(), m.untag(), m.list(true)] : [m.list(), m.record(), m.attach(), m.list(true)];
      } else {
        const b = boundaryCalls(client, t);
        calls = req.operation === "revert" ? [b.tags(true), b.put(PLACEHOLDER.previousBoundary, true), b.remove(), b.untag(), b.get(true)] : [b.get(), b.tags(), b.record(PLACEHOLDER.currentBoundary), b.put(policy), b.get(true)];
      }
      return calls.map((c) => client.describe(c));
    };

    const applyManaged = async (req: ActionRequest, t: Target) => {
      const m = managedCalls(client, t, policy);
      const before = await attachedPolicies(client, m, false, req.signal);
      const attaching = !before.has(policy);
      if (attaching) {
        // The record goes first: a crash between the two leaves a record of an attachment about to happen, never an unrecorded one.
        await client.query(m.record(), req.signal);
        await client.query(m.attach(), req.signal);
      }
      const after = await attachedPolicies(client, m, true, req.signal);
      return { verified: after.has(policy), detail: { principal: t.kind, name: t.name, mode: config.mode, policy_arn: policy, attached: attaching } };
    };

    const revertManaged = async (req: ActionRequest, t: Target) => {
      const m = managedCalls(client, t, policy);
      const listed = await client.query(m.tags(), req.signal);
      if (listed.status === 404) return { verified: true, detail: { principal: t.kind, name: t.name, mode: config.mode, detached: false, principal_gone: true } };
      if (!readTags(listed).has(attachedTag(policy))) {
        // Attached before vigil, or never attached: not vigil's to remove.
        return { verified: true, detail: { principal: t.kind, name: t.name, mode: config.mode, policy_arn: policy, detached: false } };
      }
      await client.query(m.detach(), req.signal);
      await client.query(m.untag(), req.signal);
      const after = await attachedPolicies(client, m, true, req.signal);
      return { verified: !after.has(policy), detail: { principal: t.kind, name: t.name, mode: config.mode, policy_arn: policy, detached: true } };
    };

    const applyBoundary = async (req: ActionRequest, t: Target) => {
      const b = boundaryCalls(client, t);
      const current = boundaryOf(t.kind, (await client.query(b.get(), req.signal)).result);
      const tags = readTags(await client.query(b.tags(), req.signal));
      if (!tags.has(PREVIOUS_BOUNDARY_TAG)) {
        // An existing record means vigil's boundary is (or was about to be) in place: keep the original.
        const previous = current ?? NO_BOUNDARY;
        if (!fitsTagValue(previous)) throw inputError(`${TYPE}: the current permissions boundary of IAM ${t.kind} ${t.name} cannot be recorded in an IAM tag (characters or length); not replacing it`);
        await client.query(b.record(previous), req.signal);
      }
      await client.query(b.put(policy), req.signal);
      const after = boundaryOf(t.kind, (await client.query(b.get(true), req.signal)).result);
      return { verified: after === policy, detail: { principal: t.kind, name: t.name, mode: config.mode, policy_arn: policy, previous_boundary: tags.get(PREVIOUS_BOUNDARY_TAG) ?? current ?? NO_BOUNDARY } };
    };

    const revertBoundary = async (req: ActionRequest, t: Target) => {
      const b = boundaryCalls(client, t);
      const listed = await client.query(b.tags(true), req.signal);
      if (listed.status === 404) return { verified: true, detail: { principal: t.kind, name: t.name, mode: config.mode, restored: false, principal_gone: true } };
      const previous = readTags(listed).get(PREVIOUS_BOUNDARY_TAG);
      if (previous === undefined) return { verified: true, detail: { principal: t.kind, name: t.name, mode: config.mode, restored: false } };
      if (previous === NO_BOUNDARY || previous === "") await client.query(b.remove(), req.signal);
      else await client.query(b.put(previous, true), req.signal);
      await client.query(b.untag(), req.signal);
      const after = boundaryOf(t.kind, (await client.query(b.get(true), req.signal)).result);
      const wanted = previous === NO_BOUNDARY || previous === "" ? undefined : previous;
      return { verified: after === wanted, detail: { principal: t.kind, name: t.name, mode: config.mode, restored: true, boundary: wanted ?? NO_BOUNDARY } };
    };

    return {
      plan,
      apply: (req) => (config.mode === "managed_policy" ? applyManaged(req, target(req)) : applyBoundary(req, target(req))),
      revert: (req) => (config.mode === "managed_policy" ? revertManaged(req, target(req)) : revertBoundary(req, target(req))),
    };
  },
};
