/**
 * `kubernetes:network_policy`: L3/L4 isolation of a communication policy's edge where there is no
 * mesh, as an allow-list of vigil-owned NetworkPolicies.
 *
 * full_access and read_only: a policy on the source pods allowing egress to the destination pods on
 * the edge's port, and (with `ingress: true`) one on the destination pods allowing ingress from the
 * source pods. A NetworkPolicy cannot tell reads from writes, so read_only keeps the L4 allow.
 * deny: the same two objects stay, emptied: they still select the pods (so the pods stay isolated, as
 * at the other levels) but allow nothing. Deleting them would end the isolation they brought, and pods
 * no policy isolates may send and receive anything: deny would open the source's egress and the
 * destination's ingress to everyone. With `default_deny: true` vigil also keeps its own default-deny
 * objects on the source pods' egress (DNS to kube-system left open) and the destination pods' ingress.
 */
import { z } from "zod";
import type { Subject } from "../../policy/model.ts";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import { fromSubject, inputError, requireEdge, templateString } from "../common/input.ts";
import { checkNamespace, checkSelector, defaultObjectName, isDnsLabel, isLabelKey, ownerLabels } from "../common/kubernetes/names.ts";
import type { KubeObject, ObjectRef } from "../common/kubernetes/types.ts";
import { kubernetesClientFrom } from "../common/kubernetes/verify.ts";
import { planSteps, runSteps, type Step, type StepResult } from "../common/kubernetes/reconcile.ts";

const TYPE = "kubernetes:network_policy";
const API_VERSION = "networking.k8s.io/v1";
const KIND = "NetworkPolicy";
/** Label the API server sets on every namespace (Kubernetes 1.22+): selects a namespace by name. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";
/** Suffixes of the four objects; the longest bounds the base name. */
const SUFFIX = { egress: "-egress", ingress: "-ingress", denyEgress: "-deny-egress", denyIngress: "-deny-ingress" } as const;
const MAX_BASE = 63 - SUFFIX.denyIngress.length;

const selectorSchema = z.record(
  z.string().refine(isLabelKey, { error: "not a label key (optional DNS prefix and /, then at most 63 of A-Z a-z 0-9 _ . -)" }),
  templateString(),
);

const endpointSchema = z
  .object({
    /** Namespace of the pods, a template. Default: source `{{attributes.namespace}}`; destination: the source's namespace. */
    namespace: templateString().optional(),
    /** Labels selecting the pods (`matchLabels`), values are templates. Default `{app.kubernetes.io/name: "{{id}}"}`. */
    pod_selector: selectorSchema.optional(),
  })
  .strict();

export const networkPolicyConfigSchema = z
  .object({
    /** The source workload's pods; templates see the subject (the source). */
    source: endpointSchema.prefault({}),
    /** The destination workload's pods; in its templates `{{id}}` is the edge's destination as the policy names it. */
    destination: endpointSchema.prefault({}),
    /** Base name of the objects (a template), suffixed `-egress`, `-ingress`, `-deny-egress`, `-deny-ingress`. Default `vigil-<policy name>` made DNS-1123 safe. */
    name: templateString().optional(),
    /** Also allow ingress on the destination pods (needed when they are isolated for ingress). Default true. */
    ingress: z.boolean().default(true),
    /** Keep vigil-owned default-deny policies on the source pods' egress (DNS open) and the destination pods' ingress. Default false. */
    default_deny: z.boolean().default(false),
  })
  .strict();

export type NetworkPolicyConfig = z.output<typeof networkPolicyConfigSchema>;

const DEFAULT_SELECTOR = { "app.kubernetes.io/name": "{{id}}" } as const;
const DEFAULT_SOURCE_NAMESPACE = "{{attributes.namespace}}";

/** One step of a reconcile: make an object exist as given, or make it absent. */

interface Endpoint {
  readonly namespace: string;
  readonly selector: Record<string, string>;
}

function labelSelector(labels: Record<string, string>): Record<string, unknown> {
  // An empty matchLabels comes back from the API server as `{}`; write it that way so the read-back compares equal.
  return Object.keys(labels).length === 0 ? {} : { matchLabels: labels };
}

function peer(ep: Endpoint): Record<string, unknown> {
  return { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ep.namespace } }, podSelector: labelSelector(ep.selector) };
}

function l4Protocol(protocol: string | undefined): "TCP" | "UDP" | "SCTP" {
  const p = (protocol ?? "").toLowerCase();
  return p === "udp" ? "UDP" : p === "sctp" ? "SCTP" : "TCP";
}

function render(config: NetworkPolicyConfig, req: ActionRequest): { base: string; source: Endpoint; destination: Endpoint; edge: NonNullable<ActionRequest["edge"]> } {
  const edge = requireEdge(req, TYPE);
  const destSubject: Subject = { id: edge.destination, kind: "workload", attributes: {}, labels: {} };
  const renderMap = (m: Readonly<Record<string, string>>, subject: Subject): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, fromSubject(v, subject)]));

  const srcNs = checkNamespace(fromSubject(config.source.namespace ?? DEFAULT_SOURCE_NAMESPACE, req.subject), "source.namespace");
  const source: Endpoint = { namespace: srcNs, selector: checkSelector(renderMap(config.source.pod_selector ?? DEFAULT_SELECTOR, req.subject), "source.pod_selector") };
  const dstNs = config.destination.namespace === undefined ? srcNs : checkNamespace(fromSubject(config.destination.namespace, destSubject), "destination.namespace");
  const destination: Endpoint = { namespace: dstNs, selector: checkSelector(renderMap(config.destination.pod_selector ?? DEFAULT_SELECTOR, destSubject), "destination.pod_selector") };

  let base: string;
  if (config.name === undefined) {
    base = defaultObjectName(req.decision.policy, SUFFIX.denyIngress.length);
  } else {
    base = fromSubject(config.name, req.subject);
    if (!isDnsLabel(base) || base.length > MAX_BASE) throw inputError(`name: ${JSON.stringify(base)} must be a DNS-1123 label of at most ${MAX_BASE} characters (room for the ${SUFFIX.denyIngress} suffix)`);
  }
  return { base, source, destination, edge };
}

/** The steps that bring the cluster to `req.decision.access`, in the order they run. */
export function networkPolicySteps(config: NetworkPolicyConfig, req: ActionRequest): Step[] {
  const { base, source, destination, edge } = render(config, req);
  const labels = ownerLabels(req.decision.policy);
  const object = (name: string, namespace: string, spec: Record<string, unknown>): KubeObject => ({ apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace, labels }, spec });
  const ref = (name: string, namespace: string): ObjectRef => ({ apiVersion: API_VERSION, kind: KIND, name, namespace });

  const egressRef = ref(`${base}${SUFFIX.egress}`, source.namespace);
  const ingressRef = ref(`${base}${SUFFIX.ingress}`, destination.namespace);
  const denyEgressRef = ref(`${base}${SUFFIX.denyEgress}`, source.namespace);
  const denyIngressRef = ref(`${base}${SUFFIX.denyIngress}`, destination.namespace);

  const denySteps = (): Step[] =>
    config.default_deny
      ? [
          {
            op: "apply",
            object: object(denyEgressRef.name, source.namespace, {
              podSelector: labelSelector(source.selector),
              policyTypes: ["Egress"],
              // Name resolution keeps working for the isolated pods.
              egress: [{ to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: "kube-system" } } }], ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }] }],
            }),
          },
          { op: "apply", object: object(denyIngressRef.name, destination.namespace, { podSelector: labelSelector(destination.selector), policyTypes: ["Ingress"] }) },
        ]
      : [
          { op: "delete", ref: denyEgressRef },
          { op: "delete", ref: denyIngressRef },
        ];

  if (req.decision.access === "deny") {
    // The default-deny first, then the allows emptied (not deleted: see the top of this file).
    return [
      ...denySteps(),
      { op: "apply", object: object(egressRef.name, source.namespace, { podSelector: labelSelector(source.selector), policyTypes: ["Egress"] }) },
      config.ingress
        ? { op: "apply", object: object(ingressRef.name, destination.namespace, { podSelector: labelSelector(destination.selector), policyTypes: ["Ingress"] }) }
        : { op: "delete", ref: ingressRef },
    ];
  }
  if (edge.port === undefined) throw inputError(`${TYPE}: policy ${req.decision.policy} has no port on its edge; a NetworkPolicy allow needs one`);
  const ports = [{ protocol: l4Protocol(edge.protocol), port: edge.port }];
  const allow: Step[] = [
    {
      op: "apply",
      object: object(egressRef.name, source.namespace, { podSelector: labelSelector(source.selector), policyTypes: ["Egress"], egress: [{ to: [peer(destination)], ports }] }),
    },
    config.ingress
      ? { op: "apply", object: object(ingressRef.name, destination.namespace, { podSelector: labelSelector(destination.selector), policyTypes: ["Ingress"], ingress: [{ from: [peer(source)], ports }] }) }
      : { op: "delete", ref: ingressRef },
  ];
  // The allows first, so a newly isolated pod does not lose the edge in between.
  return [...allow, ...denySteps()];
}

/** An object written without `ingress`/`egress` rules (it allows nothing) must not read back with some. */
function noExtraRules(appliedObject: KubeObject, actualObject: KubeObject): boolean {
  const a = (appliedObject.spec ?? {}) as Record<string, unknown>;
  const b = (actualObject.spec ?? {}) as Record<string, unknown>;
  return (["ingress", "egress"] as const).every((k) => a[k] !== undefined || b[k] === undefined || (Array.isArray(b[k]) && b[k].length === 0));
}

export const networkPolicyAction: ActionFactory<NetworkPolicyConfig> = {
  type: TYPE,
  description:
    "Reconcile vigil-owned NetworkPolicies for a communication policy's edge: allow egress (and ingress) on the edge's port for full_access and read_only, empty them for deny so the pods stay isolated and the edge is closed (optionally keeping vigil's own default-deny).",
  requiredPermissions: [
    "get networkpolicies.networking.k8s.io",
    "create networkpolicies.networking.k8s.io",
    "patch networkpolicies.networking.k8s.io",
    "delete networkpolicies.networking.k8s.io",
  ],
  example: {
    type: TYPE,
    source: { namespace: "{{attributes.namespace}}", pod_selector: { "app.kubernetes.io/name": "{{id}}" } },
    destination: { namespace: "api", pod_selector: { "app.kubernetes.io/name": "{{id}}" } },
    ingress: true,
    default_deny: true,
  },
  configSchema: networkPolicyConfigSchema,
  revertible: false,
  provider: "kubernetes",
  reconciles: true,
  create(config, ctx): Action {
    const client = kubernetesClientFrom(ctx, TYPE);
    return {
      plan: (req) => planSteps(client, networkPolicySteps(config, req)),
      apply: async (req) => {
        const run = await runSteps(client, networkPolicySteps(config, req), {
          action: TYPE,
          clashHint: "rename one of them with the action's name setting",
          verifyApplied: noExtraRules,
          ...(req.signal ? { signal: req.signal } : {}),
        });
        const objects: Record<string, StepResult> = {};
        for (const r of run.results) objects[`${r.ref.namespace}/${r.ref.name}`] = r.result;
        return { verified: run.verified, detail: { access: req.decision.access, objects } };
      },
    };
  },
};
