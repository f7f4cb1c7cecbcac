/**
 * The Istio objects for one decided level, as ordered steps. Pure: the same target and level give
 * the same objects byte for byte, so plans, retries and verification agree.
 *
 * - full_access: an ALLOW for the source principal on the port; no DENY of vigil's.
 * - read_only: the ALLOW narrowed to GET, HEAD and OPTIONS, and a DENY of every other method for the
 *   principal. The DENY is what makes read-only hold when another ALLOW (say namespace-wide) also
 *   matches the source: Istio evaluates DENY before ALLOW.
 * - deny: a DENY of the principal on the port, then vigil's ALLOW emptied (no rules: it matches
 *   nothing). Not deleted: once no ALLOW policy selects a workload Istio allows every request no DENY
 *   refuses, so deleting vigil's only ALLOW would open the destination to every other caller, and to
 *   the denied source itself on every port the DENY does not name. A decision about one source must
 *   not change what the others get.
 *
 * Order: a change towards less access applies the restricting object before it removes the
 * permitting one, a change towards more access applies the permitting object before it relaxes the
 * DENY, so no moment is more open than either end.
 */
import type { AccessLevel } from "../../policy/model.ts";
import { ownerLabels } from "../common/kubernetes/names.ts";
import type { KubeObject, ObjectRef } from "../common/kubernetes/types.ts";
import { enforcedLevel, objectName, SAFE_METHODS, type ReadOnlyFallback, type Reconciliation, type Step } from "../common/mesh/mesh.ts";

export const ISTIO_SECURITY_VERSION = "security.istio.io/v1";

/** Everything the objects depend on, resolved from the config and the request. */
export interface IstioTarget {
  /** The vigil policy (names and labels). */
  readonly policy: string;
  readonly namespace: string;
  /** `matchLabels` of the destination workload; exactly one of `selector` and `targetRef`. */
  readonly selector?: Readonly<Record<string, string>>;
  readonly targetRef?: { readonly group: string; readonly kind: string; readonly name: string };
  /** Principal of the source, `<trust domain>/ns/<ns>/sa/<sa>`. */
  readonly principal: string;
  readonly port?: number;
  /** Edge protocol (`http`, `https`, `grpc`, `tcp`, `tls`). */
  readonly protocol?: string;
  readonly peerAuthentication: "STRICT" | "none";
  readonly readOnlyFallback: ReadOnlyFallback;
  readonly namePrefix: string;
}

/** Names of the three objects vigil may own for a policy. */
export function istioNames(t: Pick<IstioTarget, "namePrefix" | "policy">): { allow: string; deny: string; mtls: string } {
  return { allow: objectName(t.namePrefix, t.policy, "allow"), deny: objectName(t.namePrefix, t.policy, "deny"), mtls: objectName(t.namePrefix, t.policy, "mtls") };
}

function ref(t: IstioTarget, kind: string, name: string): ObjectRef {
  return { apiVersion: ISTIO_SECURITY_VERSION, kind, namespace: t.namespace, name };
}

function metadata(t: IstioTarget, name: string): KubeObject["metadata"] {
  return { name, namespace: t.namespace, labels: ownerLabels(t.policy) };
}

function targeting(t: IstioTarget): Record<string, unknown> {
  if (t.selector) return { selector: { matchLabels: { ...t.selector } } };
  const r = t.targetRef!;
  return { targetRef: { group: r.group, kind: r.kind, name: r.name } };
}

/** `operation` of a rule: the port, and a method condition when given. */
function operation(t: IstioTarget, methods?: { methods?: readonly string[]; notMethods?: readonly string[] }): Record<string, unknown> | undefined {
  const op: Record<string, unknown> = {};
  if (t.port !== undefined) op.ports = [String(t.port)];
  if (methods?.methods) op.methods = [...methods.methods];
  if (methods?.notMethods) op.notMethods = [...methods.notMethods];
  return Object.keys(op).length === 0 ? undefined : op;
}

function authorizationPolicy(t: IstioTarget, name: string, action: "ALLOW" | "DENY", op: Record<string, unknown> | undefined): KubeObject {
  const rule: Record<string, unknown> = { from: [{ source: { principals: [t.principal] } }] };
  if (op) rule.to = [{ operation: op }];
  return {
    apiVersion: ISTIO_SECURITY_VERSION,
    kind: "AuthorizationPolicy",
    metadata: metadata(t, name),
    spec: { ...targeting(t), action, rules: [rule] },
  };
}

/** The ALLOW for the source: every method, or only the safe ones. */
export function allowPolicy(t: IstioTarget, readOnly: boolean): KubeObject {
  return authorizationPolicy(t, istioNames(t).allow, "ALLOW", operation(t, readOnly ? { methods: SAFE_METHODS } : undefined));
}

/**
 * vigil's ALLOW at deny: no rules, so it matches no request, but it keeps the workload under ALLOW
 * policies (deny-by-default), as it is at the other levels.
 */
export function allowNothingPolicy(t: IstioTarget): KubeObject {
  return {
    apiVersion: ISTIO_SECURITY_VERSION,
    kind: "AuthorizationPolicy",
    metadata: metadata(t, istioNames(t).allow),
    spec: { ...targeting(t), action: "ALLOW", rules: [] },
  };
}

/** The DENY for the source: everything on the port, or every method but the safe ones. */
export function denyPolicy(t: IstioTarget, writesOnly: boolean): KubeObject {
  return authorizationPolicy(t, istioNames(t).deny, "DENY", operation(t, writesOnly ? { notMethods: SAFE_METHODS } : undefined));
}

/** Mutual TLS required for the destination workload, so `principals` match every request. */
export function strictPeerAuthentication(t: IstioTarget): KubeObject {
  return {
    apiVersion: ISTIO_SECURITY_VERSION,
    kind: "PeerAuthentication",
    metadata: metadata(t, istioNames(t).mtls),
    spec: { selector: { matchLabels: { ...(t.selector ?? {}) } }, mtls: { mode: "STRICT" } },
  };
}

/** The steps that bring the destination's Istio policies to `level` for the source. */
export function renderIstio(t: IstioTarget, level: AccessLevel): Reconciliation {
  const names = istioNames(t);
  const { level: enforced, note } = enforcedLevel(level, t.protocol, t.readOnlyFallback);
  const steps: Step[] = [];
  // mTLS first: the principal rules below only match traffic that carries a peer identity.
  if (t.peerAuthentication === "STRICT") steps.push({ op: "apply", object: strictPeerAuthentication(t) });
  else steps.push({ op: "delete", ref: ref(t, "PeerAuthentication", names.mtls) });
  switch (enforced) {
    case "full_access":
      steps.push({ op: "apply", object: allowPolicy(t, false) }, { op: "delete", ref: ref(t, "AuthorizationPolicy", names.deny) });
      break;
    case "read_only":
      steps.push({ op: "apply", object: allowPolicy(t, true) }, { op: "apply", object: denyPolicy(t, true) });
      break;
    case "deny":
      steps.push({ op: "apply", object: denyPolicy(t, false) }, { op: "apply", object: allowNothingPolicy(t) });
      break;
  }
  return { level, enforced, steps, ...(note ? { note } : {}) };
}
