/**
 * The `consul` provider: one HTTP API client per `providers.<name>` entry, authenticated with
 * `X-Consul-Token`. Enterprise scoping (`ns`, `partition`) and the datacenter (`dc`) are query
 * parameters, added only when configured: Consul CE refuses `ns` and `partition` outright.
 */
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { caClient } from "../common/ca-file.ts";
import { registerSecret } from "../../util/redact.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import { NO_AUTH, staticHeader } from "../../net/api-call.ts";
import { circuitSchema } from "../../plugin/circuit.ts";
import type { ProviderContext, ProviderFactory } from "../../plugin/provider.ts";
import { callTimeout, httpUrl } from "../../plugin/schema.ts";
import { TokenFile } from "../../net/token-file.ts";

const CONSUL_TOKEN_HEADER = "X-Consul-Token";


/** Namespace, partition and datacenter names as Consul accepts them. */
const scopeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { error: "letters, digits, _ . - only (at most 64 characters)" });

export const consulProviderSchema = z
  .object({
    /** HTTP(S) address of a Consul agent or server. Default `http://127.0.0.1:8500` (the local agent). */
    address: httpUrl().default("http://127.0.0.1:8500"),
    /** ACL token sent as `X-Consul-Token`. Use `${file:…}` or `${env:…}`. At most one of `token` and `token_file`; with neither, the agent's default token applies. */
    token: z.string().min(1).optional(),
    /** File holding the ACL token (e.g. rendered by a Vault Agent template), re-read whenever it changes. Relative to the config file. */
    token_file: z.string().min(1).optional(),
    /** Enterprise namespace (`ns` query parameter). Default none: the token's namespace, else `default`. */
    namespace: scopeName.optional(),
    /** Enterprise admin partition (`partition` query parameter). Default none: the token's partition, else `default`. */
    partition: scopeName.optional(),
    /** Datacenter (`dc` query parameter). Default none: the agent's own datacenter. */
    datacenter: scopeName.optional(),
    /** PEM file of the CA that signed Consul's HTTPS certificate; relative to the config file. Default: the system trust store. */
    ca_file: z.string().min(1).optional(),
    /** Circuit breaker for this Consul. Default 5 failures, open 30s, at most 5m. */
    circuit: circuitSchema,
    /** Deadline for one API call, as a duration, at most 5m. Default `10s`. */
    timeout: callTimeout(),
  })
  .strict()
  .refine((c) => c.token === undefined || c.token_file === undefined, { error: "set at most one of token and token_file", path: ["token"] });

/** A validated `providers.<name>` entry of type `consul`; `timeout` in ms, circuit durations in ms. */
export type ConsulProviderConfig = z.output<typeof consulProviderSchema>;

/** The Consul client every `consul:*` action of one provider entry shares. */
export class ConsulClient extends ApiClient {
  readonly config: ConsulProviderConfig;
  readonly #base: string;

  constructor(config: ConsulProviderConfig, ctx: ProviderContext) {
    if (config.token) registerSecret(config.token);
    const fromConfigDir = (path: string) => (isAbsolute(path) ? path : resolve(ctx.configDir, path));
    const caFile = config.ca_file === undefined ? undefined : fromConfigDir(config.ca_file);
    super({
      ctx,
      type: "consul",
      auth: config.token ? staticHeader(CONSUL_TOKEN_HEADER, config.token) : config.token_file ? new TokenFile(fromConfigDir(config.token_file), { header: CONSUL_TOKEN_HEADER }) : NO_AUTH,
      timeoutMs: config.timeout,
      circuit: config.circuit,
      ...(caFile ? caClient(ctx, caFile, "providers.consul") : {}),
    });
    this.config = config;
    this.#base = config.address.replace(/\/+$/, "");
  }

  /**
   * Absolute URL of an API path with its query, then the configured `ns`, `partition` and `dc`.
   * Values are percent-encoded the way plans print them, so a plan's URL is the URL sent.
   */
  url(path: string, query: Readonly<Record<string, string>> = {}): string {
    const params: [string, string][] = Object.entries(query);
    if (this.config.namespace) params.push(["ns", this.config.namespace]);
    if (this.config.partition) params.push(["partition", this.config.partition]);
    if (this.config.datacenter) params.push(["dc", this.config.datacenter]);
    const q = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
    return `${this.#base}${path}${q ? `?${q}` : ""}`;
  }
}

export const consulProvider: ProviderFactory<ConsulProviderConfig, ConsulClient> = {
  type: "consul",
  description: "HashiCorp Consul HTTP API (service mesh intentions), authenticated with an ACL token.",
  configSchema: consulProviderSchema,
  example: { address: "https://consul.service.consul:8501", token_file: "/run/vault-agent/consul-token", ca_file: "/etc/vigil/consul-ca.pem", timeout: "10s" },
  create: (config, ctx) => new ConsulClient(config, ctx),
};
