/**
 * `aws:deactivate_access_keys`: sets an IAM user's active access keys to Inactive (reversible, unlike
 * deleting them) and reactivates on revert exactly the keys it deactivated. Which keys those were is
 * kept on the user itself, in the tag `vigil:deactivated-access-keys`, written before the first key
 * is touched: a revert after a restart, or from another replica, reads it there.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { fromSubject, inputError, templateString } from "../common/input.ts";
import type { AwsClient, IamAnswer } from "./client.ts";
import { fitsTagValue, principalName } from "./names.ts";
import { awsClient } from "./provider.ts";
import { listTagsCall, readTags, tagCall, untagCall } from "./tags.ts";
import { members, text } from "./xml.ts";

const TYPE = "aws:deactivate_access_keys";
/** The user tag holding the ids of the keys vigil deactivated, space-separated. */
export const DEACTIVATED_KEYS_TAG = "vigil:deactivated-access-keys";

/** Plan placeholders: values only the earlier answers tell. */
export const PLACEHOLDER = {
  activeKey: "<each Active access key id from ListAccessKeys>",
  record: "<the Active access key ids, with those already recorded, space-separated>",
  recordedKey: `<each access key id recorded in the ${DEACTIVATED_KEYS_TAG} tag>`,
} as const;

export const deactivateAccessKeysSchema = z
  .object({
    /** The IAM user: a name or a user ARN. Default `{{attributes.aws_user}}`. */
    user: templateString().default("{{attributes.aws_user}}"),
  })
  .strict();

export type DeactivateAccessKeysConfig = z.output<typeof deactivateAccessKeysSchema>;

interface Key {
  readonly id: string;
  readonly status: string;
}

function readKeys(answer: IamAnswer): Key[] {
  return members(answer.result, "AccessKeyMetadata").flatMap((m) => {
    const id = text(m, "AccessKeyId");
    return id ? [{ id, status: text(m, "Status") ?? "" }] : [];
  });
}

function readRecord(tags: Map<string, string>): string[] {
  return [...new Set((tags.get(DEACTIVATED_KEYS_TAG) ?? "").split(/\s+/).filter((s) => s !== ""))];
}

function builders(client: AwsClient, user: string) {
  return {
    // A user has at most two access keys: one page always holds them.
    list: (verify = false): ApiCall =>
      client.call("ListAccessKeys", { UserName: user, MaxItems: "100" }, { summary: verify ? `read the access keys of IAM user ${user} back` : `list the access keys of IAM user ${user}` }),
    tags: (gone = false): ApiCall => listTagsCall(client, "user", user, gone),
    record: (ids: string): ApiCall => tagCall(client, "user", user, { [DEACTIVATED_KEYS_TAG]: ids }, `record on IAM user ${user} which keys vigil deactivates (only when an Active key is not recorded yet)`),
    update: (id: string, status: "Active" | "Inactive"): ApiCall =>
      client.call(
        "UpdateAccessKey",
        { UserName: user, AccessKeyId: id, Status: status },
        status === "Inactive" ? { summary: `deactivate access key ${id} of IAM user ${user}` } : { accept: [404], summary: `reactivate access key ${id} of IAM user ${user} (a deleted key is skipped)` },
      ),
    untag: (): ApiCall => untagCall(client, "user", user, [DEACTIVATED_KEYS_TAG], `drop the ${DEACTIVATED_KEYS_TAG} record from IAM user ${user}`),
  };
}

export const deactivateAccessKeysAction: ActionFactory<DeactivateAccessKeysConfig> = {
  type: TYPE,
  description:
    "Deactivate an IAM user's Active access keys (apply), recording them in the user tag vigil:deactivated-access-keys; reactivate exactly those keys and drop the tag (revert).",
  requiredPermissions: ["iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:ListUserTags", "iam:TagUser", "iam:UntagUser"],
  example: { type: TYPE, user: "{{attributes.aws_user}}" },
  configSchema: deactivateAccessKeysSchema,
  revertible: true,
  provider: "aws",
  create(config, ctx): Action {
    const client = awsClient(ctx.provider, TYPE);
    const userOf = (req: ActionRequest) => principalName("user", fromSubject(config.user, req.subject), TYPE);

    const plan = (req: ActionRequest): PlannedCall[] => {
      const b = builders(client, userOf(req));
      const calls =
        req.operation === "revert"
          ? [b.tags(true), b.update(PLACEHOLDER.recordedKey, "Active"), b.untag(), b.list(true)]
          : [b.list(), b.tags(), b.record(PLACEHOLDER.record), b.update(PLACEHOLDER.activeKey, "Inactive"), b.list(true)];
      return calls.map((c) => client.describe(c));
    };

    const apply = async (req: ActionRequest) => {
      const user = userOf(req);
      const b = builders(client, user);
      const keys = readKeys(await client.query(b.list(), req.signal));
      const recorded = readRecord(readTags(await client.query(b.tags(), req.signal)));
      const active = keys.filter((k) => k.status === "Active").map((k) => k.id);
      if (active.some((id) => !recorded.includes(id))) {
        // Recorded before any key changes, so a crash between the two never loses a key vigil turned off.
        const existing = new Set(keys.map((k) => k.id));
        const value = [...new Set([...recorded.filter((id) => existing.has(id)), ...active])].join(" ");
        if (!fitsTagValue(value)) throw inputError(`${TYPE}: the access key ids of IAM user ${user} do not fit in one IAM tag value`);
        await client.query(b.record(value), req.signal);
      }
      for (const id of active) await client.query(b.update(id, "Inactive"), req.signal);
      const after = readKeys(await client.query(b.list(true), req.signal));
      return { verified: after.every((k) => k.status !== "Active"), detail: { user, deactivated: active, keys: after.length } };
    };

    const revert = async (req: ActionRequest) => {
      const user = userOf(req);
      const b = builders(client, user);
      const listed = await client.query(b.tags(true), req.signal);
      if (listed.status === 404) return { verified: true, detail: { user, reactivated: [], user_gone: true } };
      const tags = readTags(listed);
      const recorded = readRecord(tags);
      if (!tags.has(DEACTIVATED_KEYS_TAG)) return { verified: true, detail: { user, reactivated: [] } };
      const reactivated: string[] = [];
      for (const id of recorded) {
        const r = await client.query(b.update(id, "Active"), req.signal);
        if (r.status === 200) reactivated.push(id);
      }
      await client.query(b.untag(), req.signal);
      const after = readKeys(await client.query(b.list(true), req.signal));
      const verified = after.filter((k) => recorded.includes(k.id)).every((k) => k.status === "Active");
      return { verified, detail: { user, reactivated } };
    };

    return { plan, apply, revert };
  },
};
