/** `providers.okta`: one client per entry, shared by every Okta action, so one token and one breaker serve them all. */
import type { ProviderFactory } from "../../plugin/provider.ts";
import { OktaClient } from "./client.ts";
import { oktaProviderSchema, type OktaProviderConfig } from "./config.ts";

export const oktaProvider: ProviderFactory<OktaProviderConfig, OktaClient> = {
  type: "okta",
  description: "An Okta org, reached with an SSWS API token or an OAuth 2.0 service app (private_key_jwt).",
  configSchema: oktaProviderSchema,
  example: { org_url: "https://example.okta.com", auth: { type: "ssws", token: "${file:/run/secrets/okta-token}" }, timeout: "10s" },
  create: (config, ctx) => new OktaClient(config, ctx),
};
