/** Config of `linkerd:authorization`. */
import { z } from "zod";
import { templateString } from "../common/input.ts";
import { isLabelKey } from "../common/kubernetes/names.ts";
import { destinationTemplate, namePrefixSchema, readOnlyFallbackSchema } from "../common/mesh/mesh.ts";

/** Values of a Server's `accessPolicy` (what traffic matching no authorization gets). */
export const ACCESS_POLICIES = ["deny", "audit", "all-authenticated", "all-unauthenticated", "cluster-authenticated", "cluster-unauthenticated"] as const;

/** Values of a Server's `proxyProtocol`. */
export const PROXY_PROTOCOLS = ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"] as const;

const PORT_NAME_RE = /^[a-z0-9](?:[-a-z0-9]{0,13}[a-z0-9])?$/;

export const linkerdConfigSchema = z
  .object({
    /** Namespace of the destination workload, where every object is written; a template rendered for the destination (`{{id}}`). Required. */
    namespace: destinationTemplate(),
    /** `podSelector.matchLabels` of the destination pods (label → template rendered for the destination, `{{id}}`). Required. */
    selector: z
      .record(z.string().refine(isLabelKey, { error: "not a Kubernetes label key" }), destinationTemplate())
      .refine((r) => Object.keys(r).length > 0, { error: "needs at least one label" }),
    /**
     * The container port the Server selects: a number or a port name. Default: the policy edge's
     * port (the Server needs one, so an edge without a port then fails with VIGIL_ERR_ACTION_INPUT).
     */
    port: z.union([z.number().int().min(1).max(65535), z.string().regex(PORT_NAME_RE, { error: "not a port name" })]).optional(),
    /**
     * Name of an existing Server (a template) to attach the authorizations to. vigil then never writes
     * or deletes it, only reads it back. Default: vigil writes and owns `<prefix>-<policy>-server`.
     * Set it when the port already has a Server: Linkerd does not allow two Servers on one pod port.
     */
    server: destinationTemplate().optional(),
    /** `accessPolicy` of the Server vigil owns: what callers without an authorization get. Default `deny`. */
    access_policy: z.enum(ACCESS_POLICIES).default("deny"),
    /** `proxyProtocol` of the Server vigil owns. Default: not set (Linkerd detects the protocol). */
    proxy_protocol: z.enum(PROXY_PROTOCOLS).optional(),
    /** Service account of the source, a template. Default: the `sa` of the source's SPIFFE ID. */
    source_service_account: templateString().optional(),
    /** Namespace of the source's service account, a template. Default: the `ns` of the source's SPIFFE ID. */
    source_namespace: templateString().optional(),
    /**
     * The source's Linkerd identity as a string (`<sa>.<ns>.serviceaccount.identity.linkerd.<trust domain>`),
     * a template. When set, the MeshTLSAuthentication lists this identity instead of referring to the
     * service account. Default: not set.
     */
    source_identity: templateString().optional(),
    /** What `read_only` enforces on `tcp`, `tls` and `grpc` edges, which carry no HTTP method to match. Default `deny`. */
    read_only_fallback: readOnlyFallbackSchema,
    /** First word of every object name (`<prefix>-<policy>-full`). Default `vigil`. */
    name_prefix: namePrefixSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.source_identity !== undefined && (c.source_service_account !== undefined || c.source_namespace !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["source_identity"], message: "set either source_identity or source_service_account/source_namespace, not both" });
    }
    if (c.server !== undefined && (c.proxy_protocol !== undefined || c.access_policy !== "deny")) {
      ctx.addIssue({ code: "custom", path: ["server"], message: "access_policy and proxy_protocol configure the Server vigil owns; with server set, configure your Server yourself" });
    }
  });

/** The validated config of `linkerd:authorization`. */
export type LinkerdConfig = z.output<typeof linkerdConfigSchema>;
