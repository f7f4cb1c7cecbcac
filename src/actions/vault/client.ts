/**
 * The `vault` provider: one client per `providers.<name>` entry for a Vault server's HTTP API,
 * authenticated with `X-Vault-Token` (a fixed token, or a `token_file` a Vault Agent sink keeps
 * fresh) and scoped with `X-Vault-Namespace` when a namespace is set (Vault Enterprise / HCP).
 */
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { caClient } from "../common/ca-file.ts";
import { registerSecret } from "../../util/redact.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import { staticHeader } from "../../net/api-call.ts";
import { circuitSchema } from "../../plugin/circuit.ts";
import type { ProviderContext, ProviderFactory } from "../../plugin/provider.ts";
import { TokenFile, VAULT_TOKEN_HEADER } from "../../net/token-file.ts";
import { callTimeout, httpUrl } from "../../plugin/schema.ts";

/** One path segment; `.` and `..` are refused because URL normalization would resolve them to another mount. */
const PATH_SEGMENT = "(?!\\.{1,2}(?:/|$))[A-Za-z0-9_.-]+";

export const vaultProviderSchema = z
  .object({
    /** Vault's address, e.g. `https://vault.example.org:8200`. Required. */
    address: httpUrl(),
    /** Vault token, sent as `X-Vault-Token`. Set exactly one of `token` and `token_file`. Use `${file:…}` or `${env:…}`. */
    token: z.string().min(1).optional(),
    /**
     * File holding the token (a Vault Agent auto-auth sink); re-read whenever it changes. Relative
     * to the config file. Set exactly one of `token` and `token_file`.
     */
    token_file: z.string().min(1).optional(),
    /** Namespace sent as `X-Vault-Namespace` (Vault Enterprise, HCP Vault: e.g. `admin/team-a`). Default none (root namespace). */
    namespace: z
      .string()
      .transform((s) => s.replace(/^\/+|\/+$/g, ""))
      .pipe(z.string().regex(new RegExp(`^${PATH_SEGMENT}(?:/${PATH_SEGMENT})*$`), { error: "expected a namespace path like admin/team-a" }))
      .optional(),
    /** Path the PKI secrets engine is mounted at. Default `pki`. */
    mount: z
      .string()
      .transform((s) => s.replace(/^\/+|\/+$/g, ""))
      .pipe(z.string().regex(new RegExp(`^${PATH_SEGMENT}(?:/${PATH_SEGMENT})*$`), { error: "expected a mount path like pki or pki/intermediate" }))
      .default("pki"),
    /** PEM file of the CA that signed Vault's HTTPS certificate; relative to the config file. Default: the system trust store. */
    ca_file: z.string().min(1).optional(),
    /** Circuit breaker for this Vault. Default 5 failures, open 30s, at most 5m. */
    circuit: circuitSchema,
    /** Deadline for one API call, as a duration, at most 5m. Default `10s`. */
    timeout: callTimeout(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.token === undefined) === (c.token_file === undefined)) {
      ctx.addIssue({ code: "custom", path: ["token"], message: "set exactly one of token and token_file" });
    }
  });

/** A validated `providers.<name>` entry of type `vault`; `timeout` in ms. */
export type VaultProviderConfig = z.output<typeof vaultProviderSchema>;

function fromConfigDir(ctx: ProviderContext, path: string): string {
  return isAbsolute(path) ? path : resolve(ctx.configDir, path);
}

/** The Vault client every `vault:*` action of one provider entry shares. */
export class VaultClient extends ApiClient {
  readonly config: VaultProviderConfig;
  readonly #base: string;

  constructor(config: VaultProviderConfig, ctx: ProviderContext) {
    if (config.token) registerSecret(config.token);
    super({
      ctx,
      type: "vault",
      auth: config.token ? staticHeader(VAULT_TOKEN_HEADER, config.token) : new TokenFile(fromConfigDir(ctx, config.token_file!)),
      timeoutMs: config.timeout,
      circuit: config.circuit,
      ...(config.ca_file ? caClient(ctx, fromConfigDir(ctx, config.ca_file), "providers.vault") : {}),
    });
    this.config = config;
    this.#base = config.address.replace(/\/+$/, "");
  }

  /** Absolute URL of `/v1/<mount>/<rest>`. */
  mountUrl(rest: string): string {
    return `${this.#base}/v1/${this.config.mount}/${rest}`;
  }

  /** Headers every call carries besides the token: the namespace is not a secret, so plans show it. */
  callHeaders(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    return { Accept: "application/json", ...(this.config.namespace ? { "X-Vault-Namespace": this.config.namespace } : {}), ...extra };
  }
}

export const vaultProvider: ProviderFactory<VaultProviderConfig, VaultClient> = {
  type: "vault",
  description: "HashiCorp Vault HTTP API (PKI secrets engine), authenticated with X-Vault-Token.",
  configSchema: vaultProviderSchema,
  example: { address: "https://vault.example.org:8200", token_file: "/run/vault-agent/token", namespace: "admin/platform", mount: "pki_int", timeout: "10s" },
  create: (config, ctx) => new VaultClient(config, ctx),
};
