/**
 * Authentication to an Okta org: an SSWS API token is a fixed header; an OAuth 2.0 service app
 * gets a client-credentials token with a `private_key_jwt` assertion, cached until shortly before
 * it expires and fetched again after a 401. Plans show either masked.
 */
import { staticHeader, type Authenticator } from "../../net/api-call.ts";
import type { HttpClient } from "../../net/http.ts";
import { ClientCredentials } from "../../net/oauth.ts";
import type { Clock } from "../../util/clock.ts";
import { MASK, registerSecret } from "../../util/redact.ts";
import type { OktaAuth } from "./config.ts";

export interface OktaAuthenticator {
  readonly auth: Authenticator;
  /** The token cache when `auth.type` is `oauth`. */
  readonly tokens: ClientCredentials | undefined;
}

export function oktaAuthenticator(auth: OktaAuth, orgUrl: string, deps: { readonly http: HttpClient; readonly clock: Clock }, timeoutMs: number): OktaAuthenticator {
  if (auth.type === "ssws") {
    registerSecret(auth.token);
    return { auth: staticHeader("Authorization", `SSWS ${auth.token}`, `SSWS ${MASK}`), tokens: undefined };
  }
  registerSecret(auth.private_key);
  const tokens = new ClientCredentials({
    tokenUrl: auth.token_url ?? `${orgUrl}/oauth2/v1/token`,
    clientId: auth.client_id,
    auth: { method: "private_key_jwt", private_key: auth.private_key, ...(auth.key_id ? { key_id: auth.key_id } : {}) },
    scope: auth.scopes.join(" "),
    http: deps.http,
    clock: deps.clock,
    timeoutMs,
  });
  return { auth: tokens, tokens };
}
