/**
 * The Okta provider client: the shared `ApiClient` with Okta authentication. An SSWS API token is a
 * fixed header; an OAuth 2.0 service app gets a client-credentials token with a `private_key_jwt`
 * assertion, cached until shortly before it expires and fetched again after a 401.
 */
import type { ClientCredentials } from "../../net/oauth.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import type { ActionContext } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import type { ProviderContext } from "../../plugin/provider.ts";
import { scrub } from "../../util/redact.ts";
import { oktaAuthenticator } from "../../sources/okta/auth.ts";
import type { OktaProviderConfig } from "./config.ts";
import { VigilError } from "../../errors.ts";

export class OktaClient extends ApiClient {
  /** `https://<org>`, without a trailing slash. */
  readonly orgUrl: string;
  readonly authType: "ssws" | "oauth";
  /** The token cache when `auth.type` is `oauth`. */
  readonly tokens: ClientCredentials | undefined;

  constructor(config: OktaProviderConfig, ctx: ProviderContext) {
    const { auth, tokens } = oktaAuthenticator(config.auth, config.org_url, ctx, config.timeout);
    super({ ctx, type: "okta", auth, timeoutMs: config.timeout, circuit: config.circuit });
    this.orgUrl = config.org_url;
    this.authType = config.auth.type;
    this.tokens = tokens;
  }

  /** An absolute URL under the org; `path` segments must already be encoded. */
  url(path: string, query?: Readonly<Record<string, string>>): string {
    const qs = query ? new URLSearchParams(query).toString() : "";
    return `${this.orgUrl}${path}${qs ? `?${qs}` : ""}`;
  }

  /**
   * Okta URLs are the configured origin plus paths and flags vigil builds itself, so the URL is shown
   * as sent (registered secrets still scrubbed); generic masking would hide `oauthTokens=true` as a secret.
   */
  override describe(call: ApiCall): PlannedCall {
    return { ...super.describe(call), url: scrub(call.url) };
  }
}

/** The Okta client an action was given, or a clear error naming the missing `providers.okta` entry. */
export function oktaClient(ctx: ActionContext, action: string): OktaClient {
  const p = ctx.provider;
  if (!(p instanceof OktaClient)) {
    throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `${action} needs an okta provider: add providers.okta (org_url, auth) to the config, or name one with provider:`);
  }
  return p;
}
