/**
 * The `entra` provider: one Microsoft Graph client per `providers.<name>` entry, authenticated with
 * a cached client-credentials token (one token request serves every action until shortly before it
 * expires). Graph throttles with 429 (and sometimes 503) plus `Retry-After`; the shared HTTP client
 * turns those into transient errors carrying the hint, and the durable queue waits that long.
 */
import { ApiClient } from "../../plugin/api-client.ts";
import { ClientCredentials } from "../../net/oauth.ts";
import { clientAuth } from "../../sources/graph/config.ts";
import type { ActionContext } from "../../plugin/action.ts";
import type { ProviderContext, ProviderFactory } from "../../plugin/provider.ts";
import { registerSecret } from "../../util/redact.ts";
import { entraConfigSchema, scopeFor, tokenUrlFor, type EntraConfig } from "./config.ts";
import { VigilError } from "../../errors.ts";

export const ENTRA = "entra";

export class EntraClient extends ApiClient {
  /** Graph base URL, version included, without a trailing slash. */
  readonly graphUrl: string;
  readonly tokenUrl: string;
  readonly credentials: ClientCredentials;

  constructor(config: EntraConfig, ctx: ProviderContext) {
    const tokenUrl = tokenUrlFor(config.login_url, config.tenant_id);
    const credentials = new ClientCredentials({
      tokenUrl,
      clientId: config.client_id,
      auth: clientAuth(config.auth),
      scope: scopeFor(config.graph_url),
      http: ctx.http,
      clock: ctx.clock,
      timeoutMs: config.timeout,
    });
    super({ ctx, type: ENTRA, auth: credentials, timeoutMs: config.timeout, circuit: config.circuit });
    this.graphUrl = config.graph_url;
    this.tokenUrl = tokenUrl;
    this.credentials = credentials;
  }
}

export const entraProvider: ProviderFactory<EntraConfig, EntraClient> = {
  type: ENTRA,
  description: "Microsoft Entra ID through Microsoft Graph v1.0, as an app registration with application permissions (client secret or certificate).",
  configSchema: entraConfigSchema,
  example: {
    tenant_id: "11111111-2222-3333-4444-555555555555",
    client_id: "66666666-7777-8888-9999-000000000000",
    auth: { client_secret: "${file:/run/credentials/vigil.service/entra-client-secret}" },
    timeout: "10s",
    circuit: { failures: 5, open_for: "30s" },
  },
  create(config, ctx) {
    // The loader registers the secrets it expands; a programmatic config gets the same protection here.
    if (config.auth.client_secret !== undefined) registerSecret(config.auth.client_secret);
    if (config.auth.private_key !== undefined) registerSecret(config.auth.private_key);
    return new EntraClient(config, ctx);
  },
};

/** The action's Graph client, or a clear error when the engine gave it none or another provider's. */
export function entraClient(ctx: ActionContext, action: string): EntraClient {
  const provider = ctx.provider;
  if (!provider) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `${action} needs an entra provider (providers.entra), and none was given`);
  if (!(provider instanceof EntraClient)) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `${action} needs an entra provider, but providers.${provider.name} is of type ${provider.type}`);
  return provider;
}
