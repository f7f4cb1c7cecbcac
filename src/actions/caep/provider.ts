/** The `caep` provider: an OpenID Shared Signals (SSF 1.0) transmitter of CAEP 1.0 events. */
import type { ProviderFactory } from "../../plugin/provider.ts";
import { CaepClient } from "./client.ts";
import { caepProviderSchema, type CaepProviderConfig } from "./config.ts";
import { caepPublicDocuments } from "./discovery.ts";

export const caepProvider: ProviderFactory<CaepProviderConfig, CaepClient> = {
  type: "caep",
  description:
    "OpenID Shared Signals (SSF 1.0) transmitter: signs CAEP 1.0 Security Event Tokens, pushes them to statically configured receivers (RFC 8935) and publishes its JWKS and SSF configuration under /.well-known/.",
  configSchema: caepProviderSchema,
  example: {
    issuer: "https://vigil.example.com",
    keys: [{ kid: "vigil-2026-01", alg: "ES256", private_key: "${file:/run/secrets/vigil-caep-es256.pem}" }],
    receivers: [
      { name: "idp", endpoint: "https://idp.example.com/ssf/events", subject: { format: "email" } },
      { name: "saas", endpoint: "https://saas.example.net/caep/receiver", audience: "https://saas.example.net", authorization: "${file:/run/secrets/saas-ssf-token}", subject: { format: "opaque", from: "{{attributes.saas_id}}" } },
    ],
    timeout: "10s",
  },
  create: (config, ctx) => new CaepClient(config, ctx),
  publicDocuments: (client) => caepPublicDocuments(client.issuer, () => client.keys),
};
