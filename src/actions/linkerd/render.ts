/**
 * The Linkerd policy objects for one decided level, as ordered steps. Pure: the same target and
 * level give the same objects byte for byte.
 *
 * Linkerd is allow-list only: a Server makes its port deny by default, and AuthorizationPolicies
 * open it to the identities of a MeshTLSAuthentication.
 * - full_access: Server, MeshTLSAuthentication (the source), AuthorizationPolicy on the Server.
 * - read_only: Server, MeshTLSAuthentication, an HTTPRoute on the Server matching GET/HEAD/OPTIONS,
 *   an AuthorizationPolicy on that route; the Server-wide AuthorizationPolicy removed.
 * - deny: Server kept; every AuthorizationPolicy, the HTTPRoute and the MeshTLSAuthentication
 *   removed, so the Server's default (deny) refuses the source.
 * Permitting objects are applied before the ones they replace are removed, and authorizations are
 * removed before what they refer to, so no moment is more open than either end.
 */
import type { AccessLevel } from "../../policy/model.ts";
import { ownerLabels } from "../common/kubernetes/names.ts";
import type { KubeObject, ObjectRef } from "../common/kubernetes/types.ts";
import { enforcedLevel, objectName, SAFE_METHODS, type ReadOnlyFallback, type Reconciliation, type Step } from "../common/mesh/mesh.ts";
import type { ACCESS_POLICIES, PROXY_PROTOCOLS } from "./config.ts";

export const LINKERD_GROUP = "policy.linkerd.io";
export const SERVER_VERSION = `${LINKERD_GROUP}/v1beta3`;
export const HTTPROUTE_VERSION = `${LINKERD_GROUP}/v1beta3`;
export const AUTHZ_VERSION = `${LINKERD_GROUP}/v1alpha1`;
export const AUTHN_VERSION = `${LINKERD_GROUP}/v1alpha1`;

/** Who the source is: a ServiceAccount reference, or a literal Linkerd identity. */
export type LinkerdSource = { readonly serviceAccount: string; readonly namespace: string } | { readonly identity: string };

/** Everything the objects depend on, resolved from the config and the request. */
export interface LinkerdTarget {
  readonly policy: string;
  readonly namespace: string;
  /** `podSelector.matchLabels` of the destination. */
  readonly selector: Readonly<Record<string, string>>;
  readonly port: number | string;
  readonly protocol?: string;
  readonly source: LinkerdSource;
  /** An operator's Server to use instead of one vigil owns. */
  readonly existingServer?: string;
  readonly accessPolicy: (typeof ACCESS_POLICIES)[number];
  readonly proxyProtocol?: (typeof PROXY_PROTOCOLS)[number];
  readonly readOnlyFallback: ReadOnlyFallback;
  readonly namePrefix: string;
}

/** Names of the objects vigil may own for a policy (`server` is the one used, owned or not). */
export function linkerdNames(t: Pick<LinkerdTarget, "namePrefix" | "policy" | "existingServer">): { server: string; authn: string; full: string; route: string; readOnly: string } {
  const n = (suffix: string) => objectName(t.namePrefix, t.policy, suffix);
  return { server: t.existingServer ?? n("server"), authn: n("client"), full: n("full"), route: n("safe-methods"), readOnly: n("read-only") };
}

function metadata(t: LinkerdTarget, name: string): KubeObject["metadata"] {
  return { name, namespace: t.namespace, labels: ownerLabels(t.policy) };
}

function ref(t: LinkerdTarget, apiVersion: string, kind: string, name: string): ObjectRef {
  return { apiVersion, kind, namespace: t.namespace, name };
}

export function server(t: LinkerdTarget): KubeObject {
  return {
    apiVersion: SERVER_VERSION,
    kind: "Server",
    metadata: metadata(t, linkerdNames(t).server),
    spec: {
      podSelector: { matchLabels: { ...t.selector } },
      port: t.port,
      accessPolicy: t.accessPolicy,
      ...(t.proxyProtocol ? { proxyProtocol: t.proxyProtocol } : {}),
    },
  };
}

export function meshTlsAuthentication(t: LinkerdTarget): KubeObject {
  const spec =
    "identity" in t.source
      ? { identities: [t.source.identity] }
      : { identityRefs: [{ kind: "ServiceAccount", name: t.source.serviceAccount, namespace: t.source.namespace }] };
  return { apiVersion: AUTHN_VERSION, kind: "MeshTLSAuthentication", metadata: metadata(t, linkerdNames(t).authn), spec };
}

function authorizationPolicy(t: LinkerdTarget, name: string, target: { kind: string; name: string }): KubeObject {
  return {
    apiVersion: AUTHZ_VERSION,
    kind: "AuthorizationPolicy",
    metadata: metadata(t, name),
    spec: {
      targetRef: { group: LINKERD_GROUP, kind: target.kind, name: target.name },
      requiredAuthenticationRefs: [{ group: LINKERD_GROUP, kind: "MeshTLSAuthentication", name: linkerdNames(t).authn }],
    },
  };
}

/** The source authorized on the whole Server. */
export function fullAuthorization(t: LinkerdTarget): KubeObject {
  const names = linkerdNames(t);
  return authorizationPolicy(t, names.full, { kind: "Server", name: names.server });
}

/** The route of the safe methods, attached to the Server. */
export function safeMethodsRoute(t: LinkerdTarget): KubeObject {
  const names = linkerdNames(t);
  return {
    apiVersion: HTTPROUTE_VERSION,
    kind: "HTTPRoute",
    metadata: metadata(t, names.route),
    spec: {
      parentRefs: [{ group: LINKERD_GROUP, kind: "Server", name: names.server }],
      rules: [{ matches: SAFE_METHODS.map((method) => ({ path: { type: "PathPrefix", value: "/" }, method })) }],
    },
  };
}

/** The source authorized on the safe-methods route only. */
export function readOnlyAuthorization(t: LinkerdTarget): KubeObject {
  const names = linkerdNames(t);
  return authorizationPolicy(t, names.readOnly, { kind: "HTTPRoute", name: names.route });
}

/** The steps that bring the destination's Linkerd policy to `level` for the source. */
export function renderLinkerd(t: LinkerdTarget, level: AccessLevel): Reconciliation {
  const names = linkerdNames(t);
  const { level: enforced, note } = enforcedLevel(level, t.protocol, t.readOnlyFallback);
  const del = (apiVersion: string, kind: string, name: string): Step => ({ op: "delete", ref: ref(t, apiVersion, kind, name) });
  // The Server stays at every level: it is what makes the port deny by default.
  const steps: Step[] = [t.existingServer ? { op: "expect", ref: ref(t, SERVER_VERSION, "Server", names.server) } : { op: "apply", object: server(t) }];
  switch (enforced) {
    case "full_access":
      steps.push(
        { op: "apply", object: meshTlsAuthentication(t) },
        { op: "apply", object: fullAuthorization(t) },
        del(AUTHZ_VERSION, "AuthorizationPolicy", names.readOnly),
        del(HTTPROUTE_VERSION, "HTTPRoute", names.route),
      );
      break;
    case "read_only":
      steps.push(
        { op: "apply", object: meshTlsAuthentication(t) },
        { op: "apply", object: safeMethodsRoute(t) },
        { op: "apply", object: readOnlyAuthorization(t) },
        del(AUTHZ_VERSION, "AuthorizationPolicy", names.full),
      );
      break;
    case "deny":
      steps.push(
        del(AUTHZ_VERSION, "AuthorizationPolicy", names.full),
        del(AUTHZ_VERSION, "AuthorizationPolicy", names.readOnly),
        del(HTTPROUTE_VERSION, "HTTPRoute", names.route),
        del(AUTHN_VERSION, "MeshTLSAuthentication", names.authn),
      );
      break;
  }
  return { level, enforced, steps, ...(note ? { note } : {}) };
}
