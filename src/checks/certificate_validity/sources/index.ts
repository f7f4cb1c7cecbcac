/**
 * Certificate sources as configured: one entry says where a subject's certificate comes from,
 * with `{{…}}` placeholders filled from the subject (see template.ts), e.g.
 *
 * ```yaml
 * source: { type: tls, address: "{{attributes.host}}:443" }
 * source: { type: file, paths: ["/etc/certs/{{labels.app}}/tls.crt", "/etc/certs/intermediates/*.pem"] }
 * source: { type: kubernetes_secret, namespace: "{{labels.namespace}}", name: "{{labels.app}}-tls" }
 * source: { type: spiffe, svid_path: /run/spiffe/svid.pem, bundle_path: /run/spiffe/bundle.pem }
 * ```
 *
 * Relative paths resolve against the config file's directory. `gather` throws SourceError when
 * the certificate cannot be obtained (the check reports CERT_SOURCE_UNAVAILABLE).
 */
import net from "node:net";
import path from "node:path";
import type { Subject } from "../../../policy/model.ts";
import type { GatheredCertificate } from "../types.ts";
import { Deadline, readFileCapped, SourceError } from "./common.ts";
import type { HttpClient } from "../../../net/http.ts";
import type { KubeConnectionOptions } from "../../../net/kubernetes.ts";
import { fromFiles } from "./files.ts";
import type { KubernetesSecretOptions, KubernetesSources } from "./kubernetes.ts";
import type { CertificateSource } from "./schema.ts";
import { renderPath, renderTemplate } from "./template.ts";

export { SourceError } from "./common.ts";
export { renderPath, renderTemplate } from "./template.ts";
export {
  certificateSourceSchema,
  fileSourceSchema,
  kubernetesSecretSourceSchema,
  sourceSchema,
  spiffeSourceSchema,
  tlsSourceSchema,
  type CertificateSource,
  type CertificateSourceConfig,
} from "./schema.ts";

/**
 * The check's Kubernetes connections (credentials and API server clients). Their module (and the
 * Kubernetes client under it) is loaded on the first `kubernetes_secret` read, as the `tls` and
 * `spiffe` sources' are on their first use: a check reading files never loads them.
 */
export class KubernetesConnections {
  readonly #shared: HttpClient;
  #sources: Promise<KubernetesSources> | undefined;

  constructor(shared: HttpClient) {
    this.#shared = shared;
  }

  async read(connection: KubeConnectionOptions, secret: Omit<KubernetesSecretOptions, "auth">, signal?: AbortSignal): Promise<GatheredCertificate> {
    this.#sources ??= import("./kubernetes.ts").then((m) => new m.KubernetesSources(this.#shared));
    return (await this.#sources).read(connection, secret, signal);
  }

  async close(): Promise<void> {
    const sources = this.#sources;
    this.#sources = undefined;
    if (sources) await (await sources).close();
  }
}

export interface GatherDeps {
  /** The check's Kubernetes connections (credentials and API server clients). */
  readonly kubernetes: Pick<KubernetesConnections, "read">;
  /** Relative paths resolve against it. */
  readonly configDir: string;
  readonly signal?: AbortSignal;
}

export interface Gathered {
  readonly gathered: GatheredCertificate;
  /** Trust bundle from a SPIFFE source. */
  readonly bundle?: Uint8Array[];
}

/** Splits `host:port`, `[v6]:port`, `[v6]`, a bare IPv6 literal or a host alone (port 443). */
export function parseAddress(address: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(address);
  let host: string;
  let port: string | undefined;
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2];
  } else if (net.isIPv6(address)) {
    host = address;
  } else {
    const colon = address.lastIndexOf(":");
    host = colon < 0 ? address : address.slice(0, colon);
    port = colon < 0 ? undefined : address.slice(colon + 1);
  }
  const n = port === undefined ? 443 : /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (host === "" || !(n >= 1 && n <= 65535)) throw new SourceError(`invalid address ${JSON.stringify(address)}: expected host:port`);
  return { host, port: n };
}

const SMALL_PEM = 64 * 1024;

/** Obtains the subject's certificate from the configured source, placeholders filled in. */
export async function gather(source: CertificateSource, subject: Subject, deps: GatherDeps): Promise<Gathered> {
  const file = (template: string) => path.resolve(deps.configDir, renderPath(template, subject));
  switch (source.type) {
    case "file":
      return { gathered: await fromFiles({ paths: source.paths.map((p) => renderPath(p, subject)), baseDir: deps.configDir, timeoutMs: source.timeout }, deps.signal) };
    case "tls": {
      const { host, port } = parseAddress(renderTemplate(source.address, subject));
      const servername = source.servername === undefined ? undefined : renderTemplate(source.servername, subject);
      let clientCert: string | undefined;
      let clientKey: string | undefined;
      if (source.client_cert_file !== undefined && source.client_key_file !== undefined) {
        const deadline = new Deadline(deps.signal, source.timeout, `reading the client certificate for ${host}:${port}`);
        clientCert = (await readFileCapped(file(source.client_cert_file), SMALL_PEM, deadline, "client certificate file")).toString("utf8");
        clientKey = (await readFileCapped(file(source.client_key_file), SMALL_PEM, deadline, "client key file")).toString("utf8");
      }
      const { fromTls } = await import("./tls.ts");
      return { gathered: await fromTls({ host, port, servername, clientCert, clientKey, timeoutMs: source.timeout }, deps.signal) };
    }
    case "kubernetes_secret": {
      const connection = {
        ...(source.kubeconfig === undefined ? {} : { kubeconfig: path.resolve(deps.configDir, source.kubeconfig) }),
        ...(source.context === undefined ? {} : { context: source.context }),
        ...(source.in_cluster === undefined ? {} : { inCluster: source.in_cluster }),
        ...(source.api_server === undefined ? {} : { apiServer: source.api_server }),
      };
      const secret = {
        namespace: renderTemplate(source.namespace, subject),
        name: renderTemplate(source.name, subject),
        key: renderTemplate(source.key, subject),
        timeoutMs: source.timeout,
      };
      return { gathered: await deps.kubernetes.read(connection, secret, deps.signal) };
    }
    case "spiffe": {
      const { fromSpiffeSvid } = await import("./spiffe.ts");
      const { gathered, bundle } = await fromSpiffeSvid(
        {
          svidPath: file(source.svid_path),
          bundlePath: source.bundle_path === undefined ? undefined : file(source.bundle_path),
          keyPath: source.key_path === undefined ? undefined : file(source.key_path),
          timeoutMs: source.timeout,
        },
        deps.signal,
      );
      return source.bundle_path === undefined ? { gathered } : { gathered, bundle };
    }
  }
}
