/**
 * `providers.entra`: the app registration vigil signs in as (OAuth 2.0 client credentials against
 * the Microsoft identity platform) and where Microsoft Graph lives. National clouds change both URLs.
 * The app registration keys are shared with the Graph sources (`src/sources/graph/config.ts`).
 */
import { z } from "zod";
import { circuitSchema } from "../../plugin/circuit.ts";
import { callTimeout } from "../../plugin/schema.ts";
import { graphAppShape } from "../../sources/graph/config.ts";

export { DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, GUID_RE, entraAuthSchema, scopeFor, tokenUrlFor } from "../../sources/graph/config.ts";

export const entraConfigSchema = z
  .object({
    ...graphAppShape,
    /** Deadline per call (token requests included), as a duration up to 5m. Default `10s`. */
    timeout: callTimeout(),
    /** Circuit breaker for this tenant's Graph API. Default `{failures: 5, open_for: 30s, max_open_for: 5m}`. */
    circuit: circuitSchema,
  })
  .strict();

/** A validated `providers.entra` entry; `timeout` and the circuit durations in milliseconds. */
export type EntraConfig = z.output<typeof entraConfigSchema>;
