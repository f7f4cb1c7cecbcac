/**
 * The config schema of a certificate source entry (`checks.certificate_validity.source`): a
 * discriminated union on `type`, strict snake_case objects. Kept apart from the sources so that
 * validating a config does not load the TLS, Kubernetes or file code. See index.ts for examples.
 */
import { z } from "zod";
import { timerDuration } from "../../../plugin/schema.ts";

/** A string that may hold `{{…}}` placeholders. */
const templated = () => z.string().min(1).max(4096);

/** Certificates read from files (PEM or DER). */
export const fileSourceSchema = z
  .object({
    type: z.literal("file"),
    /**
     * Files or globs (templated). The first certificate of the first file is the leaf (a glob's matches
     * are taken in name order); all others are candidate intermediates. Each file ≤ 1 MiB, ≤ 64 per glob.
     */
    paths: z.array(templated()).min(1).max(16),
    /** Deadline for reading all files. Default `5s`. */
    timeout: timerDuration().prefault("5s"),
  })
  .strict();

/** The chain a TLS endpoint presents (collected without verification; vigil validates it). */
export const tlsSourceSchema = z
  .object({
    type: z.literal("tls"),
    /** `host:port`, `[v6]:port`, or a host alone for port 443 (templated), e.g. `{{attributes.host}}:443`. */
    address: templated(),
    /** SNI (templated). Default: the address's host; never sent for an IP literal. */
    servername: templated().optional(),
    /** Client certificate (PEM) for servers that demand one (templated path). Needs client_key_file. */
    client_cert_file: templated().optional(),
    /** Its private key (PEM) (templated path). */
    client_key_file: templated().optional(),
    /** Connect + handshake deadline. Default `5s`. */
    timeout: timerDuration().prefault("5s"),
  })
  .strict()
  .refine((s) => (s.client_cert_file === undefined) === (s.client_key_file === undefined), {
    message: "client_cert_file and client_key_file go together",
    path: ["client_key_file"],
  });

/** A `kubernetes.io/tls` Secret read from the Kubernetes API (needs RBAC `get secrets` in the namespace). */
export const kubernetesSecretSourceSchema = z
  .object({
    type: z.literal("kubernetes_secret"),
    /** Namespace of the Secret (templated). */
    namespace: templated(),
    /** Name of the Secret (templated). */
    name: templated(),
    /** Data key with the PEM chain (templated). Default `tls.crt`. */
    key: templated().default("tls.crt"),
    /** API server URL; default: from the kubeconfig or the in-cluster environment. */
    api_server: z.string().min(1).optional(),
    /** kubeconfig file. Default: in-cluster when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config. */
    kubeconfig: z.string().min(1).optional(),
    /** kubeconfig context. Default: its current-context. */
    context: z.string().min(1).optional(),
    /** Force (true) or forbid (false) the pod's service account. Default: detected. */
    in_cluster: z.boolean().optional(),
    /** Request deadline. Default `10s`. */
    timeout: timerDuration().prefault("10s"),
  })
  .strict()
  .refine((s) => !(s.in_cluster === true && s.kubeconfig !== undefined), { message: "in_cluster and kubeconfig exclude each other", path: ["in_cluster"] });

/** An X.509-SVID written to disk by the SPIFFE helper or agent. */
export const spiffeSourceSchema = z
  .object({
    type: z.literal("spiffe"),
    /** The SVID chain, leaf first (templated path), e.g. `/run/spiffe/svid.pem`. */
    svid_path: templated(),
    /** The trust bundle (templated path); returned for use as trust anchors. Default: none. */
    bundle_path: templated().optional(),
    /** The SVID key (templated path); when given it must match the leaf. Default: not checked. */
    key_path: templated().optional(),
    /** Deadline for reading the files. Default `5s`. */
    timeout: timerDuration().prefault("5s"),
  })
  .strict();

/** One certificate source entry as it appears in config. */
export const certificateSourceSchema = z.discriminatedUnion("type", [fileSourceSchema, tlsSourceSchema, kubernetesSecretSourceSchema, spiffeSourceSchema]);
export type CertificateSourceConfig = z.input<typeof certificateSourceSchema>;
export type CertificateSource = z.output<typeof certificateSourceSchema>;
/** The name the check's config schema uses. */
export const sourceSchema = certificateSourceSchema;
