/**
 * Names and labels of the objects vigil writes. Kubernetes rejects a name or label that breaks its
 * syntax with 422, so names built from policy and subject values are made valid here, and values
 * taken as given (selectors, namespaces) are checked before any call is planned.
 */
import { createHash } from "node:crypto";
import { inputError } from "../input.ts";
import { OWNER_LABEL, OWNER_VALUE, POLICY_LABEL, type KubeObject } from "./types.ts";

/** RFC 1123 label: namespaces and most object names. At most 63 characters. */
export const DNS_LABEL_RE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: object names of most kinds. At most 253 characters. */
export const DNS_SUBDOMAIN_RE = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME_RE = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function isDnsLabel(s: string): boolean {
  return DNS_LABEL_RE.test(s);
}

export function isDnsSubdomain(s: string): boolean {
  return DNS_SUBDOMAIN_RE.test(s);
}

/** A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  if (slash < 0) return LABEL_NAME_RE.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && DNS_SUBDOMAIN_RE.test(prefix) && LABEL_NAME_RE.test(key.slice(slash + 1));
}

/** A label value: empty, or at most 63 characters of `[A-Za-z0-9_.-]` starting and ending alphanumeric. */
export function isLabelValue(value: string): boolean {
  return LABEL_VALUE_RE.test(value);
}

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 8);
}

/**
 * A DNS-1123 label made from any text: lower-cased, runs of other characters turned into `-`.
 * When that changes or shortens the text, an 8-character hash of the original keeps distinct inputs
 * distinct (`Team A` and `team-a` do not collide).
 */
export function dnsLabelFrom(text: string, max = 63): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (cleaned === text && cleaned.length <= max && cleaned !== "") return cleaned;
  const hash = shortHash(text);
  const room = max - hash.length - 1;
  const head = cleaned.slice(0, room).replace(/-+$/, "");
  return head === "" ? hash : `${head}-${hash}`;
}

/** `vigil-<policy>` as a DNS-1123 label with room for `reserve` more characters (a suffix such as `-egress`). */
export function defaultObjectName(policy: string, reserve = 0): string {
  return `vigil-${dnsLabelFrom(policy, 63 - "vigil-".length - reserve)}`;
}

/** The `vigil.dev/policy` label value of a policy: the name itself when it is a valid label value, else a sanitised form with a hash. */
export function policyLabelValue(policy: string): string {
  if (policy !== "" && isLabelValue(policy)) return policy;
  const hash = shortHash(policy);
  const cleaned = policy
    .replace(/[^A-Za-z0-9_.-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "")
    .slice(0, 63 - hash.length - 1)
    .replace(/[^A-Za-z0-9]+$/, "");
  return cleaned === "" ? hash : `${cleaned}-${hash}`;
}

/** The labels every object vigil writes carries. */
export function ownerLabels(policy: string): Record<string, string> {
  return { [OWNER_LABEL]: OWNER_VALUE, [POLICY_LABEL]: policyLabelValue(policy) };
}

/** True when the object carries `app.kubernetes.io/managed-by: vigil`. */
export function isOwned(obj: Pick<KubeObject, "metadata">): boolean {
  return obj.metadata.labels?.[OWNER_LABEL] === OWNER_VALUE;
}

/** A rendered namespace, or `VIGIL_ERR_ACTION_INPUT` naming the setting it came from. */
export function checkNamespace(value: string, setting: string): string {
  if (!isDnsLabel(value)) throw inputError(`${setting}: ${JSON.stringify(value)} is not a namespace name (RFC 1123 label: lower-case letters, digits and -, at most 63)`);
  return value;
}

/** A rendered label selector (`matchLabels`), or `VIGIL_ERR_ACTION_INPUT` naming the bad key or value. */
export function checkSelector(labels: Readonly<Record<string, string>>, setting: string): Record<string, string> {
  for (const [k, v] of Object.entries(labels)) {
    if (!isLabelKey(k)) throw inputError(`${setting}: ${JSON.stringify(k)} is not a label key`);
    if (!isLabelValue(v)) throw inputError(`${setting}.${k}: ${JSON.stringify(v)} is not a label value (at most 63 of A-Z a-z 0-9 _ . -, alphanumeric at both ends)`);
  }
  return { ...labels };
}
