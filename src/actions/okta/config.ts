/**
 * `providers.okta`: the org, its credentials (an SSWS API token or an OAuth 2.0 service app signing
 * `private_key_jwt` assertions), the circuit breaker and the per-call deadline.
 */
import { z } from "zod";
import { circuitSchema } from "../../plugin/circuit.ts";
import { callTimeout } from "../../plugin/schema.ts";
import { oktaAuthSchema, oktaOrgUrl } from "../../sources/okta/config.ts";

/** Scopes requested when `auth.scopes` is not set: what `okta:clear_sessions`, `okta:suspend` and `okta:group_downgrade` need. */
export const DEFAULT_SCOPES: readonly string[] = ["okta.users.manage", "okta.groups.manage"];

export const oktaProviderSchema = z
  .object({
    /** The org's URL, e.g. `https://example.okta.com`: https, no path. Required. */
    org_url: oktaOrgUrl(),
    /**
     * `{type: ssws, token}` or `{type: oauth, client_id, private_key, key_id?, scopes?, token_url?}`. Required.
     * OAuth scopes default to `[okta.users.manage, okta.groups.manage]`; add `okta.universalLogout.manage` for `universal_logout`.
     */
    auth: oktaAuthSchema(DEFAULT_SCOPES),
    circuit: circuitSchema,
    /** Deadline per call (and per token request), as a duration, at most 5m. Default `10s`. */
    timeout: callTimeout(),
  })
  .strict();

/** The validated `providers.okta` entry; `timeout` and circuit durations are in milliseconds. */
export type OktaProviderConfig = z.output<typeof oktaProviderSchema>;
