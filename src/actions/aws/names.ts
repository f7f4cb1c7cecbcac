/** IAM principal names from subject values, and the limits of IAM tags vigil keeps its records in. */
import { createHash } from "node:crypto";
import { inputError } from "../common/input.ts";

export type PrincipalKind = "role" | "user";

const NAME_RE = /^[\w+=,.@-]{1,64}$/;
/** `arn:<partition>:iam::<account>:role|user/<path/>name` or an STS assumed-role session ARN. */
const IAM_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/(?:[^\s]*\/)?([^/\s]+)$/;
const SESSION_ARN_RE = /^arn:aws[a-z-]*:sts::\d{12}:assumed-role\/([^/\s]+)\/[^\s]+$/;

/**
 * The IAM name of a role or user from a rendered template: a bare name, the principal's ARN (the
 * path is dropped), or for roles an STS assumed-role session ARN. Anything else is a permanent
 * `VIGIL_ERR_ACTION_INPUT`.
 */
export function principalName(kind: PrincipalKind, value: string, action: string): string {
  const v = value.trim();
  let name = v;
  const arn = IAM_ARN_RE.exec(v);
  const session = SESSION_ARN_RE.exec(v);
  if (arn) {
    if (arn[1] !== kind) throw inputError(`${action}: ${JSON.stringify(v)} is an IAM ${arn[1]}, not a ${kind}`);
    name = arn[2]!;
  } else if (session) {
    if (kind !== "role") throw inputError(`${action}: ${JSON.stringify(v)} is a role session, not a ${kind}`);
    name = session[1]!;
  } else if (v.startsWith("arn:")) {
    throw inputError(`${action}: ${JSON.stringify(v)} is not an IAM ${kind} ARN`);
  }
  if (!NAME_RE.test(name)) throw inputError(`${action}: ${JSON.stringify(v)} is not a valid IAM ${kind} name (1-64 of letters, digits and _+=,.@-)`);
  return name;
}

/** Characters IAM allows in tag keys and values. */
const TAG_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
export const MAX_TAG_VALUE = 256;

export function fitsTagValue(value: string): boolean {
  return value.length <= MAX_TAG_VALUE && TAG_RE.test(value);
}

/** A short, stable tag-key suffix for a longer value (tag keys stop at 128 characters). */
export function shortHash(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 12);
}

/** Form parameters of a tag list (`Tags.member.N.Key`, `Tags.member.N.Value`). */
export function tagParams(tags: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  Object.entries(tags).forEach(([k, v], i) => {
    out[`Tags.member.${i + 1}.Key`] = k;
    out[`Tags.member.${i + 1}.Value`] = v;
  });
  return out;
}

/** Form parameters of a tag-key list (`TagKeys.member.N`). */
export function tagKeyParams(keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k, i) => [`TagKeys.member.${i + 1}`, k]));
}
