/**
 * DNS name syntax as certificates must write it (RFC 5280 §4.2.1.6 "preferred name syntax", CA/B
 * Forum BR 7.1.2.7.12), and the Public Suffix List for wildcards.
 */
import { createRequire } from "node:module";

// The list is large and only wildcards need it: loaded on the first wildcard, not at start.
let getPublicSuffix: typeof import("tldts").getPublicSuffix | undefined;
const load = () => (getPublicSuffix ??= (createRequire(import.meta.url)("tldts") as typeof import("tldts")).getPublicSuffix);

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
/** A whole name of LDH labels ending in a label that is not all digits: the common case, checked in one step. */
const HOST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** `name` is a public suffix (`com`, `co.uk`, any unlisted top-level label): no wildcard may sit on it. */
export function isPublicSuffix(name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  if (n === "" || !n.includes(".")) return true;
  // tldts applies the list's implicit "*" rule, so an unknown TLD is its own suffix too.
  return load()(n, { allowPrivateDomains: false }) === n;
}

export interface DnsSyntaxOptions {
  /** A leading `*.` label is allowed (SANs). */
  readonly wildcard?: boolean;
  /** The empty name is allowed (a dNSName constraint covering every name). */
  readonly empty?: boolean;
}

/** Why `name` is not a host name a certificate may carry, or undefined. */
export function dnsSyntaxProblem(name: string, options: DnsSyntaxOptions = {}): string | undefined {
  if (name.length <= 253 && HOST_NAME.test(name) && !/(?:^|\.)\d+$/.test(name)) return undefined;
  if (name === "") return options.empty ? undefined : "is empty";
  if (name.length > 253) return "is longer than 253 characters";
  if (name.startsWith(".")) return "starts with a dot";
  if (name.endsWith(".")) return "ends with a dot";
  const labels = name.split(".");
  if (labels.some((l) => l === "")) return "has an empty label";
  let first = 0;
  if (labels[0] === "*") {
    if (!options.wildcard) return "has a wildcard label";
    if (labels.length < 3) return "has a wildcard over fewer than two labels";
    const base = labels.slice(1).join(".");
    if (isPublicSuffix(base)) return `has a wildcard over the public suffix ${JSON.stringify(base)}`;
    first = 1;
  }
  for (let i = first; i < labels.length; i++) {
    const l = labels[i]!;
    if (l.includes("*")) return "has a wildcard that is not the whole left-most label";
    if (l.includes("_")) return `has an underscore in label ${JSON.stringify(l)}`;
    if (!LDH_LABEL.test(l)) return `has label ${JSON.stringify(l)} that is not letters, digits and inner hyphens of at most 63 characters`;
  }
  if (/^\d+$/.test(labels[labels.length - 1]!)) return "ends in an all-numeric label (an IP address is not a DNS name)";
  return undefined;
}
