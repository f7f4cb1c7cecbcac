/**
 * `istio:authorization_policy`: reconciles vigil-owned Istio AuthorizationPolicies (and optionally a
 * STRICT PeerAuthentication) in the destination's namespace so the source principal of a
 * communication policy gets the decided level on the edge's port. See render.ts for the objects.
 */
import type { ActionRequest, ActionFactory } from "../../plugin/action.ts";
import { fromSubject, inputError, requireEdge } from "../common/input.ts";
import { checkNamespace, checkSelector, isDnsSubdomain } from "../common/kubernetes/names.ts";
import { DEFAULT_SELECTOR, istioConfigSchema, type IstioConfig } from "./config.ts";
import { checkIdentity, destinationSubject, parseSpiffe, requireSpiffe } from "../common/mesh/mesh.ts";
import { meshAction } from "../common/mesh/reconcile.ts";
import { renderIstio, type IstioTarget } from "./render.ts";

const TYPE = "istio:authorization_policy";

/** The principal of a rendered value: SPIFFE IDs lose their `spiffe://`, as Istio's `principals` want. */
function principalOf(value: string, setting: string): string {
  const spiffe = parseSpiffe(value);
  return checkIdentity(spiffe ? `${spiffe.trustDomain}${spiffe.path}` : value, setting);
}

/** Resolves the config's templates for a request; a missing or invalid value is `VIGIL_ERR_ACTION_INPUT`. */
export function istioTarget(config: IstioConfig, req: ActionRequest): IstioTarget {
  const edge = requireEdge(req, TYPE);
  const dest = destinationSubject(edge.destination);
  const namespace = checkNamespace(fromSubject(config.namespace, dest), "namespace");
  let principal: string;
  if (config.source_principal !== undefined) {
    principal = principalOf(fromSubject(config.source_principal, req.subject), "source_principal");
  } else {
    const id = requireSpiffe(req.subject.identity, req.subject.id, TYPE, "source_principal");
    principal = checkIdentity(`${id.trustDomain}${id.path}`, "identity");
  }
  let targeting: Pick<IstioTarget, "selector" | "targetRef">;
  if (config.target_ref) {
    const name = fromSubject(config.target_ref.name, dest);
    if (!isDnsSubdomain(name)) throw inputError(`target_ref.name: ${JSON.stringify(name)} is not a Kubernetes name`);
    targeting = { targetRef: { group: config.target_ref.group, kind: config.target_ref.kind, name } };
  } else {
    const labels = Object.fromEntries(Object.entries(config.selector ?? DEFAULT_SELECTOR).map(([k, v]) => [k, fromSubject(v, dest)]));
    targeting = { selector: checkSelector(labels, "selector") };
  }
  const port = config.port ?? edge.port;
  return {
    policy: req.decision.policy,
    namespace,
    ...targeting,
    principal,
    ...(port === undefined ? {} : { port }),
    ...(edge.protocol === undefined ? {} : { protocol: edge.protocol }),
    peerAuthentication: config.peer_authentication,
    readOnlyFallback: config.read_only_fallback,
    namePrefix: config.name_prefix,
  };
}

export const authorizationPolicyAction: ActionFactory<IstioConfig> = {
  type: TYPE,
  description:
    "Reconcile vigil-owned Istio AuthorizationPolicies for a communication policy's edge: an ALLOW for the source principal (full_access), narrowed to GET/HEAD/OPTIONS with a DENY of other methods (read_only), or a DENY applied before the ALLOW is emptied to match nothing (deny: the workload stays deny-by-default); optionally a STRICT PeerAuthentication.",
  requiredPermissions: [
    "get authorizationpolicies.security.istio.io",
    "create authorizationpolicies.security.istio.io",
    "patch authorizationpolicies.security.istio.io",
    "delete authorizationpolicies.security.istio.io",
    "get peerauthentications.security.istio.io",
    "create peerauthentications.security.istio.io",
    "patch peerauthentications.security.istio.io",
    "delete peerauthentications.security.istio.io",
  ],
  example: { type: TYPE, namespace: "api", selector: { app: "{{id}}" }, peer_authentication: "STRICT", read_only_fallback: "deny" },
  configSchema: istioConfigSchema,
  revertible: false,
  provider: "kubernetes",
  reconciles: true,
  create: (config, ctx) => meshAction(ctx, TYPE, (req) => renderIstio(istioTarget(config, req), req.decision.access)),
};
