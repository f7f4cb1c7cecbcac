/**
 * Where the signing credentials come from: the static ones from the config, or the AWS SDK's
 * standard chain (environment, SSO and shared config profiles, web identity / EKS IRSA, ECS task
 * role, EC2 instance role over IMDSv2). The chain module is large, so it is imported on the first
 * signed call only; the SDK caches what it finds and refreshes it five minutes before it expires.
 */
import { errorMessage, UpstreamError } from "../../errors.ts";
import { registerSecret, scrub } from "../../util/redact.ts";
import { raceAbort } from "../../util/abort.ts";

/** One set of AWS credentials. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

export interface CredentialSource {
  /** Current credentials; `refresh` skips the cache (after AWS said the token expired). */
  get(options?: { refresh?: boolean; signal?: AbortSignal }): Promise<AwsCredentials>;
  /** Whether a session token is known to be sent, for plans (unknown before the chain's first answer). */
  readonly hasSessionToken: boolean;
  /** `static` or `chain`, for messages. */
  readonly kind: "static" | "chain";
}

export function staticCredentials(c: { access_key_id: string; secret_access_key: string; session_token?: string | undefined }): CredentialSource {
  registerSecret(c.secret_access_key);
  if (c.session_token) registerSecret(c.session_token);
  const creds: AwsCredentials = { accessKeyId: c.access_key_id, secretAccessKey: c.secret_access_key, ...(c.session_token ? { sessionToken: c.session_token } : {}) };
  return { kind: "static", hasSessionToken: c.session_token !== undefined, get: async () => creds };
}

export interface ChainOptions {
  readonly profile?: string | undefined;
  /** Region of the STS client the chain uses to assume roles. */
  readonly region: string;
  readonly stsEndpoint?: string | undefined;
}

type ChainProvider = (options?: { forceRefresh?: boolean }) => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>;

/**
 * The SDK's default chain. Its credentials rotate (every hour or so for instance and task roles), so
 * they are not added to the scrub list, which would then grow for as long as the agent runs; they
 * only ever go into the signature and the security-token header, never into a message or a plan.
 */
export function chainCredentials(options: ChainOptions): CredentialSource {
  let provider: Promise<ChainProvider> | undefined;
  let sessionToken = false;
  const load = (): Promise<ChainProvider> =>
    (provider ??= import("@aws-sdk/credential-provider-node").then(({ defaultProvider }) =>
      defaultProvider({
        ...(options.profile ? { profile: options.profile } : {}),
        clientConfig: { region: options.region, ...(options.stsEndpoint ? { endpoint: options.stsEndpoint } : {}) },
      }) as ChainProvider,
    )).catch((err: unknown) => {
      provider = undefined;
      throw err;
    });
  return {
    kind: "chain",
    get hasSessionToken() {
      return sessionToken;
    },
    async get(opts = {}) {
      try {
        const chain = await load();
        const c = await raceAbort(chain(opts.refresh ? { forceRefresh: true } : undefined), opts.signal);
        sessionToken = Boolean(c.sessionToken);
        return c;
      } catch (err) {
        if (opts.signal?.aborted) {
          // The SDK's container and IMDS requests only warn when a server never answers, and its cache
          // waits on that fetch: start a fresh chain next time instead of waiting behind it forever.
          provider = undefined;
          throw new UpstreamError(true, "aws: loading credentials from the default chain was aborted or timed out", { cause: opts.signal.reason, details: { provider: "aws", source: "chain" } });
        }
        // Missing or unreachable credentials may come back (an IMDS hiccup, a token file being rotated): worth retrying.
        throw new UpstreamError(true, scrub(`aws: no credentials from the default chain: ${errorMessage(err)}`), { details: { provider: "aws", source: "chain" } });
      }
    },
  };
}

