/**
 * `providers.kubernetes`: one API server connection shared by the `kubernetes:*`, `istio:*` and
 * `linkerd:*` actions.
 */
import { z } from "zod";
import { circuitSchema } from "../../plugin/circuit.ts";
import type { ProviderContext, ProviderFactory } from "../../plugin/provider.ts";
import { KubeClient } from "./client.ts";
import type { CredentialEnv } from "./credentials.ts";
import { callTimeout } from "../../plugin/schema.ts";


export const kubernetesProviderSchema = z
  .object({
    /**
     * Use the pod's service account (token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`,
     * server from `KUBERNETES_SERVICE_HOST`/`_PORT`). Default: in-cluster when `KUBERNETES_SERVICE_HOST`
     * is set and no `kubeconfig` is given, otherwise the kubeconfig.
     */
    in_cluster: z.boolean().optional(),
    /** kubeconfig file (token, tokenFile or client certificate users). Default `$KUBECONFIG`'s first entry, then `~/.kube/config`. Relative paths resolve against the config file's directory. */
    kubeconfig: z.string().min(1).optional(),
    /** kubeconfig context. Default the kubeconfig's `current-context`. */
    context: z.string().min(1).optional(),
    /** API server base URL, overriding the in-cluster address or the kubeconfig's server. Default none. */
    api_server: z
      .url({ protocol: /^https?$/, error: "expected an http or https URL" })
      .refine((u) => !/[?#]/.test(u) && !/\/\/[^/]*@/.test(u), { error: "must not carry credentials, a query or a fragment" })
      .optional(),
    /** Field manager of every server-side apply. Default `vigil`. */
    field_manager: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x21-\x7e][\x20-\x7e]*$/, { error: "printable ASCII only" })
      .default("vigil"),
    circuit: circuitSchema,
    /** Deadline per API call, as a duration, at most 5m. Default `10s`. */
    timeout: callTimeout(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.in_cluster === true && c.kubeconfig !== undefined) ctx.addIssue({ code: "custom", path: ["kubeconfig"], message: "in_cluster: true uses the service account; drop kubeconfig or set in_cluster: false" });
    if (c.in_cluster === true && c.context !== undefined) ctx.addIssue({ code: "custom", path: ["context"], message: "context applies to a kubeconfig, not to in_cluster: true" });
  });

/** `providers.kubernetes` after validation; `timeout` in ms. */
export type KubernetesProviderConfig = z.output<typeof kubernetesProviderSchema>;

/** Creates the client; `env` replaces the process environment and service account directory (tests). */
export function createKubernetesClient(config: KubernetesProviderConfig, ctx: ProviderContext, env: CredentialEnv = {}): KubeClient {
  return new KubeClient(config, ctx, env);
}

export const kubernetesProvider: ProviderFactory<KubernetesProviderConfig, KubeClient> = {
  type: "kubernetes",
  description: "A Kubernetes API server (in-cluster service account or kubeconfig): server-side apply of vigil-owned objects, deletes only of objects labelled app.kubernetes.io/managed-by=vigil.",
  configSchema: kubernetesProviderSchema,
  example: { in_cluster: true, field_manager: "vigil", timeout: "10s" },
  create: (config, ctx) => createKubernetesClient(config, ctx),
};
