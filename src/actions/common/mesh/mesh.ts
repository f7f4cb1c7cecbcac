/**
 * What the mesh reconcilers (`istio:authorization_policy`, `linkerd:authorization`) share: the
 * source identity taken from the subject, object names, the level actually enforced on an edge,
 * and the ordered steps a reconciliation is made of. Pure functions only; `reconcile.ts` runs the
 * steps against the Kubernetes API.
 */
import { z } from "zod";
import type { AccessLevel, Subject } from "../../../policy/model.ts";
import { inputError, templateString } from "../input.ts";
import { dnsLabelFrom, isDnsSubdomain } from "../kubernetes/names.ts";
import type { Step } from "../kubernetes/reconcile.ts";

/** Methods a read-only source keeps: they do not change state on a well-behaved HTTP server. */
export const SAFE_METHODS = ["GET", "HEAD", "OPTIONS"] as const;

/** Edge protocols whose requests carry an HTTP method the mesh can match. */
const METHOD_PROTOCOLS = new Set(["http", "https"]);

/**
 * True when read-only can be enforced by HTTP method on this edge. `https` counts: inside the mesh
 * the sidecar terminates mutual TLS and sees HTTP. gRPC does not: every call is a POST, so a
 * method-based read-only would block it entirely. `tcp` and `tls` carry no method at all.
 */
export function methodAware(protocol: string | undefined): boolean {
  return protocol !== undefined && METHOD_PROTOCOLS.has(protocol.toLowerCase());
}

/** What `read_only` becomes on an edge without HTTP methods. */
export type ReadOnlyFallback = "deny" | "full_access";

/** `read_only_fallback` in both actions' config. */
export const readOnlyFallbackSchema = z.enum(["deny", "full_access"]).default("deny");

/** `name_prefix` in both actions' config: the first word of every object name. */
export const namePrefixSchema = z
  .string()
  .regex(/^[a-z0-9](?:[-a-z0-9]{0,18}[a-z0-9])?$/, { error: "expected at most 20 lower-case letters, digits and -, alphanumeric at both ends" })
  .default("vigil");

/** The level enforced for a decided level on an edge, and why it differs when it does. */
export function enforcedLevel(level: AccessLevel, protocol: string | undefined, fallback: ReadOnlyFallback): { level: AccessLevel; note?: string } {
  if (level !== "read_only" || methodAware(protocol)) return { level };
  return {
    level: fallback,
    note: `read_only cannot be enforced by HTTP method on a ${protocol ?? "non-HTTP"} edge; enforcing ${fallback} (read_only_fallback)`,
  };
}

/**
 * `<prefix>-<policy>-<suffix>`, a DNS-1123 label of at most 63 characters. The policy part is
 * sanitised (and hashed when that changed it or had to shorten it), so every policy name gives a
 * valid, distinct, stable name.
 */
export function objectName(prefix: string, policy: string, suffix: string): string {
  const room = 63 - prefix.length - suffix.length - 2;
  return `${prefix}-${dnsLabelFrom(policy, room)}-${suffix}`;
}

/** The parts of a SPIFFE ID. `namespace`/`serviceAccount` only for the Kubernetes form `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export interface SpiffeId {
  readonly trustDomain: string;
  readonly path: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
}

const SPIFFE_RE = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$/;
const K8S_PATH_RE = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** Parses `spiffe://<trust domain>/<path>`; undefined when `id` is not a SPIFFE ID. */
export function parseSpiffe(id: string): SpiffeId | undefined {
  const m = SPIFFE_RE.exec(id);
  if (!m) return undefined;
  const path = m[2]!;
  if (path.split("/").slice(1).some((seg) => seg === "" || seg === "." || seg === "..")) return undefined;
  const k8s = K8S_PATH_RE.exec(path);
  return { trustDomain: m[1]!, path, ...(k8s ? { namespace: k8s[1]!, serviceAccount: k8s[2]! } : {}) };
}

/** The subject's SPIFFE ID, or `VIGIL_ERR_ACTION_INPUT` saying what is missing and which setting replaces it. */
export function requireSpiffe(identity: string | undefined, subjectId: string, action: string, setting: string): SpiffeId {
  if (identity === undefined || identity === "") throw inputError(`${action}: subject ${subjectId} has no identity; give it a SPIFFE ID or set ${setting}`);
  const id = parseSpiffe(identity);
  if (!id) throw inputError(`${action}: identity ${JSON.stringify(identity)} of subject ${subjectId} is not a SPIFFE ID (spiffe://<trust domain>/ns/<ns>/sa/<sa>); set ${setting}`);
  return id;
}

/**
 * A rendered identity string used in an allow or deny list. A wildcard would widen the rule to
 * identities the subject does not hold, so `*` is refused wherever it comes from.
 */
export function checkIdentity(value: string, setting: string): string {
  if (value === "" || /[*\s]/.test(value) || value.length > 512) {
    throw inputError(`${setting}: ${JSON.stringify(value)} is not a single identity (no wildcards or spaces, at most 512 characters)`);
  }
  return value;
}

/** A service account name (RFC 1123 subdomain) taken from an identity or a template. */
export function checkServiceAccount(value: string, setting: string): string {
  if (!isDnsSubdomain(value)) throw inputError(`${setting}: ${JSON.stringify(value)} is not a service account name`);
  return value;
}

/**
 * The subject destination-side templates (namespace, selector, target names) are rendered with:
 * `{{id}}` is the edge's destination as the policy names it. The request's subject is the source.
 */
export function destinationSubject(destination: string): Subject {
  return { id: destination, kind: "workload", attributes: {}, labels: {} };
}

/**
 * A config template rendered for the destination, which is known only by its name on the edge:
 * `{{id}}` is the one placeholder it can fill, so others are refused when the config loads.
 */
export const destinationTemplate = () =>
  templateString().refine((s) => [...s.matchAll(/\{\{([^}]*)\}\}/g)].every((m) => m[1]!.trim() === "id"), {
    error: "a destination template can use only {{id}} (the edge's destination)",
  });

/** One step of a reconciliation, run in order (the shared Kubernetes step runner's). */
export type { Step } from "../kubernetes/reconcile.ts";

/** The target state for one decided level, as ordered steps. */
export interface Reconciliation {
  /** The decided level. */
  readonly level: AccessLevel;
  /** The level the steps enforce (differs when read_only falls back on a non-HTTP edge). */
  readonly enforced: AccessLevel;
  readonly steps: readonly Step[];
  readonly note?: string;
}
