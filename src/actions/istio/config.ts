/** Config of `istio:authorization_policy`. */
import { z } from "zod";
import { templateString } from "../common/input.ts";
import { isLabelKey } from "../common/kubernetes/names.ts";
import { destinationTemplate, namePrefixSchema, readOnlyFallbackSchema } from "../common/mesh/mesh.ts";

const selectorSchema = z
  .record(z.string().refine(isLabelKey, { error: "not a Kubernetes label key" }), destinationTemplate())
  .refine((r) => Object.keys(r).length > 0, { error: "needs at least one label" });

const targetRefSchema = z
  .object({
    /** API group of the target; `""` for the core group (a Service). Default `""`. */
    group: z
      .string()
      .regex(/^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, { error: "not an API group" })
      .default(""),
    /** Kind of the target, e.g. `Service` or `Gateway`. Required. */
    kind: z.string().regex(/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, { error: "not a kind" }).max(63),
    /** Name of the target in `namespace`, a template rendered for the destination. Required. */
    name: destinationTemplate(),
  })
  .strict();

export const istioConfigSchema = z
  .object({
    /**
     * Namespace of the destination workload, where the policies are written. A template rendered for
     * the destination: `{{id}}` is the edge's destination. Required.
     */
    namespace: destinationTemplate(),
    /**
     * `matchLabels` selecting the destination workload (label → template rendered for the destination).
     * Default `{app.kubernetes.io/name: "{{id}}"}` unless `target_ref` is set.
     */
    selector: selectorSchema.optional(),
    /** The destination as a reference (ambient mode: a Service or Gateway), instead of `selector`. */
    target_ref: targetRefSchema.optional(),
    /**
     * The workload port the rules cover (after Service targetPort translation, as Istio matches it).
     * Default: the policy edge's port; with neither, the rules cover every port.
     */
    port: z.number().int().min(1).max(65535).optional(),
    /**
     * The source's principal (`<trust domain>/ns/<ns>/sa/<sa>`), a template. Default: the source
     * subject's SPIFFE identity without `spiffe://`.
     */
    source_principal: templateString().optional(),
    /**
     * `STRICT` also writes a PeerAuthentication requiring mutual TLS for the destination workload, so
     * the principal rules see every caller's identity; `none` writes none (and removes one vigil
     * wrote earlier). Default `none`. `STRICT` does not go with `target_ref`.
     */
    peer_authentication: z.enum(["STRICT", "none"]).default("none"),
    /** What `read_only` enforces on `tcp`, `tls` and `grpc` edges, which carry no HTTP method to match. Default `deny`. */
    read_only_fallback: readOnlyFallbackSchema,
    /** First word of every object name (`<prefix>-<policy>-allow`). Default `vigil`. */
    name_prefix: namePrefixSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.selector !== undefined && c.target_ref !== undefined) {
      ctx.addIssue({ code: "custom", path: ["target_ref"], message: "set either selector or target_ref, not both" });
    }
    if (c.peer_authentication === "STRICT" && c.target_ref !== undefined) {
      ctx.addIssue({ code: "custom", path: ["peer_authentication"], message: "STRICT needs a selector (a PeerAuthentication selects workloads by label, not by target_ref)" });
    }
  });

/** The destination selector when the config names none. */
export const DEFAULT_SELECTOR: Readonly<Record<string, string>> = { "app.kubernetes.io/name": "{{id}}" };

/** The validated config of `istio:authorization_policy`. */
export type IstioConfig = z.output<typeof istioConfigSchema>;
