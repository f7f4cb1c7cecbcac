/**
 * IAM tags on the principal are where the AWS actions keep what they changed (keys they deactivated,
 * the boundary they replaced), so a revert works after a restart and from any replica.
 */
import type { ApiCall } from "../../net/api-call.ts";
import type { AwsClient, IamAnswer } from "./client.ts";
import type { PrincipalKind } from "./names.ts";
import { tagKeyParams, tagParams } from "./names.ts";
import { members, text } from "./xml.ts";

const Cap = { role: "Role", user: "User" } as const;

/** `RoleName` or `UserName`. */
export function nameParam(kind: PrincipalKind): string {
  return `${Cap[kind]}Name`;
}

/**
 * A principal has at most 50 tags, so one page of 100 holds them all. `gone` accepts 404: on revert,
 * a principal that no longer exists has nothing left to restore.
 */
export function listTagsCall(client: AwsClient, kind: PrincipalKind, name: string, gone = false): ApiCall {
  return client.call(`List${Cap[kind]}Tags`, { [nameParam(kind)]: name, MaxItems: "100" }, { summary: `read the tags of IAM ${kind} ${name}`, ...(gone ? { accept: [404] } : {}) });
}

/** `Role` or `User`, as in action names. */
export function capital(kind: PrincipalKind): "Role" | "User" {
  return Cap[kind];
}

export function tagCall(client: AwsClient, kind: PrincipalKind, name: string, tags: Readonly<Record<string, string>>, summary: string): ApiCall {
  return client.call(`Tag${Cap[kind]}`, { [nameParam(kind)]: name, ...tagParams(tags) }, { summary });
}

/** Removing a tag that is not there succeeds; a principal that is gone is accepted too. */
export function untagCall(client: AwsClient, kind: PrincipalKind, name: string, keys: readonly string[], summary: string): ApiCall {
  return client.call(`Untag${Cap[kind]}`, { [nameParam(kind)]: name, ...tagKeyParams(keys) }, { accept: [404], summary });
}

/** The tags of a List…Tags answer. */
export function readTags(answer: IamAnswer): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of members(answer.result, "Tags")) {
    const key = text(m, "Key");
    if (key !== undefined) out.set(key, text(m, "Value") ?? "");
  }
  return out;
}
