/** The `aws` provider: one signed IAM client per `providers.<name>` entry, shared by every `aws:*` action. */
import type { ProviderFactory } from "../../plugin/provider.ts";
import { AwsClient } from "./client.ts";
import { awsProviderSchema, type AwsProviderConfig } from "./config.ts";
import { VigilError } from "../../errors.ts";

export const awsProvider: ProviderFactory<AwsProviderConfig, AwsClient> = {
  type: "aws",
  description: "AWS IAM through the Query API, SigV4-signed with static credentials or the SDK's standard credential chain.",
  configSchema: awsProviderSchema,
  example: { region: "eu-central-1", timeout: "10s", circuit: { failures: 5, open_for: "30s" } },
  create(config, ctx) {
    return new AwsClient({ ctx, config });
  },
};

/** The provider's client from an action context, or a clear error when the entry is missing or of another type. */
export function awsClient(provider: unknown, action: string): AwsClient {
  // By shape rather than instanceof: a plugin build may carry its own copy of the class.
  if (provider instanceof AwsClient || (provider !== null && typeof provider === "object" && (provider as { type?: unknown }).type === "aws" && typeof (provider as { query?: unknown }).query === "function")) {
    return provider as AwsClient;
  }
  throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `${action} needs an aws provider (providers.aws, or the entry named by provider:), and none was given`);
}
