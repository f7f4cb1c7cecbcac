/**
 * REST paths of the kinds vigil writes. The plural resource name cannot be derived reliably from a
 * kind (the API server's discovery document is the only authority), so the kinds vigil writes are
 * listed; another kind is a programming error, reported at once.
 */
import { inputError } from "../input.ts";
import { isDnsLabel, isDnsSubdomain } from "./names.ts";
import type { ObjectRef } from "./types.ts";

/** `<group>/<Kind>` → plural resource, for every version of the group. */
export const PLURALS: Readonly<Record<string, string>> = {
  "networking.k8s.io/NetworkPolicy": "networkpolicies",
  "security.istio.io/AuthorizationPolicy": "authorizationpolicies",
  "security.istio.io/PeerAuthentication": "peerauthentications",
  "policy.linkerd.io/Server": "servers",
  "policy.linkerd.io/AuthorizationPolicy": "authorizationpolicies",
  "policy.linkerd.io/MeshTLSAuthentication": "meshtlsauthentications",
  "policy.linkerd.io/HTTPRoute": "httproutes",
  "gateway.networking.k8s.io/HTTPRoute": "httproutes",
};

/** `group` and `version` of an apiVersion; the core group is `""` (`v1`). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The plural resource of a kind, e.g. `networkpolicies`; throws for a kind vigil does not write. */
export function pluralOf(apiVersion: string, kind: string): string {
  const { group } = splitApiVersion(apiVersion);
  const plural = PLURALS[`${group}/${kind}`];
  // Only a rendering bug gets here; no retry can help, so it fails the action for good.
  if (plural === undefined) throw inputError(`kubernetes: no API path known for kind ${kind} of ${apiVersion}; known: ${Object.keys(PLURALS).join(", ")}`);
  return plural;
}

/**
 * `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>` (or `/api/v1/...` for the core group;
 * no `namespaces/<ns>` for cluster-scoped objects). A name or namespace that is not a valid
 * Kubernetes name is `VIGIL_ERR_ACTION_INPUT`: it usually came from a subject value.
 */
export function objectPath(ref: ObjectRef): string {
  const { group, version } = splitApiVersion(ref.apiVersion);
  const plural = pluralOf(ref.apiVersion, ref.kind);
  if (!isDnsSubdomain(ref.name)) throw inputError(`${ref.kind} name ${JSON.stringify(ref.name)} is not a valid Kubernetes name (RFC 1123 subdomain)`);
  if (ref.namespace !== undefined && !isDnsLabel(ref.namespace)) throw inputError(`namespace ${JSON.stringify(ref.namespace)} of ${ref.kind} ${ref.name} is not a valid namespace name`);
  const root = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
  const ns = ref.namespace === undefined ? "" : `/namespaces/${ref.namespace}`;
  return `${root}${ns}/${plural}/${ref.name}`;
}

/** `NetworkPolicy shop/vigil-x`, for summaries and logs. */
export function describeRef(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace === undefined ? "" : `${ref.namespace}/`}${ref.name}`;
}

/** The reference of an object. */
export function refOf(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): ObjectRef {
  return { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, ...(obj.metadata.namespace === undefined ? {} : { namespace: obj.metadata.namespace }) };
}
