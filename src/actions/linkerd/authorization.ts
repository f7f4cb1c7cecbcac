/**
 * `linkerd:authorization`: reconciles vigil-owned Linkerd policy objects in the destination's
 * namespace (Server, MeshTLSAuthentication, AuthorizationPolicy, HTTPRoute) so the source of a
 * communication policy gets the decided level on the edge's port. See render.ts for the objects.
 */
import type { ActionFactory, ActionRequest } from "../../plugin/action.ts";
import { fromSubject, inputError, requireEdge } from "../common/input.ts";
import { checkNamespace, checkSelector, isDnsSubdomain } from "../common/kubernetes/names.ts";
import { checkIdentity, checkServiceAccount, destinationSubject, requireSpiffe } from "../common/mesh/mesh.ts";
import { meshAction } from "../common/mesh/reconcile.ts";
import { linkerdConfigSchema, type LinkerdConfig } from "./config.ts";
import { renderLinkerd, type LinkerdSource, type LinkerdTarget } from "./render.ts";

const TYPE = "linkerd:authorization";

function linkerdSource(config: LinkerdConfig, req: ActionRequest): LinkerdSource {
  if (config.source_identity !== undefined) return { identity: checkIdentity(fromSubject(config.source_identity, req.subject), "source_identity") };
  // The SPIFFE ID is only needed for what the config does not give.
  const spiffe = config.source_service_account !== undefined && config.source_namespace !== undefined ? undefined : requireSpiffe(req.subject.identity, req.subject.id, TYPE, "source_service_account and source_namespace");
  if (spiffe && (spiffe.serviceAccount === undefined || spiffe.namespace === undefined)) {
    throw inputError(`${TYPE}: identity ${JSON.stringify(req.subject.identity)} of subject ${req.subject.id} is not of the form spiffe://<trust domain>/ns/<ns>/sa/<sa>; set source_service_account and source_namespace, or source_identity`);
  }
  const serviceAccount = config.source_service_account !== undefined ? fromSubject(config.source_service_account, req.subject) : spiffe!.serviceAccount!;
  const namespace = config.source_namespace !== undefined ? fromSubject(config.source_namespace, req.subject) : spiffe!.namespace!;
  return { serviceAccount: checkServiceAccount(serviceAccount, "source_service_account"), namespace: checkNamespace(namespace, "source_namespace") };
}

/** Resolves the config's templates for a request; a missing or invalid value is `VIGIL_ERR_ACTION_INPUT`. */
export function linkerdTarget(config: LinkerdConfig, req: ActionRequest): LinkerdTarget {
  const edge = requireEdge(req, TYPE);
  const dest = destinationSubject(edge.destination);
  const namespace = checkNamespace(fromSubject(config.namespace, dest), "namespace");
  const selector = checkSelector(Object.fromEntries(Object.entries(config.selector).map(([k, v]) => [k, fromSubject(v, dest)])), "selector");
  const port = config.port ?? edge.port;
  if (port === undefined) throw inputError(`${TYPE}: policy ${req.decision.policy} has no port on its edge and the action sets none; a Linkerd Server needs one`);
  let existingServer: string | undefined;
  if (config.server !== undefined) {
    existingServer = fromSubject(config.server, dest);
    if (!isDnsSubdomain(existingServer)) throw inputError(`server: ${JSON.stringify(existingServer)} is not a Kubernetes name`);
  }
  return {
    policy: req.decision.policy,
    namespace,
    selector,
    port,
    ...(edge.protocol === undefined ? {} : { protocol: edge.protocol }),
    source: linkerdSource(config, req),
    ...(existingServer === undefined ? {} : { existingServer }),
    accessPolicy: config.access_policy,
    ...(config.proxy_protocol === undefined ? {} : { proxyProtocol: config.proxy_protocol }),
    readOnlyFallback: config.read_only_fallback,
    namePrefix: config.name_prefix,
  };
}

const RESOURCES = ["servers", "meshtlsauthentications", "authorizationpolicies", "httproutes"] as const;

export const authorizationAction: ActionFactory<LinkerdConfig> = {
  type: TYPE,
  description:
    "Reconcile vigil-owned Linkerd policy for a communication policy's edge: a Server on the destination port, a MeshTLSAuthentication for the source, and an AuthorizationPolicy on the Server (full_access) or on an HTTPRoute of GET/HEAD/OPTIONS (read_only); deny removes the authorizations and keeps the Server, whose default is deny.",
  requiredPermissions: RESOURCES.flatMap((r) => ["get", "create", "patch", "delete"].map((verb) => `${verb} ${r}.policy.linkerd.io`)),
  example: { type: TYPE, namespace: "api", selector: { app: "{{id}}" }, port: 8443, read_only_fallback: "deny" },
  configSchema: linkerdConfigSchema,
  revertible: false,
  provider: "kubernetes",
  reconciles: true,
  create: (config, ctx) => meshAction(ctx, TYPE, (req) => renderLinkerd(linkerdTarget(config, req), req.decision.access)),
};
