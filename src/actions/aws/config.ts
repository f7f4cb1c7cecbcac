/**
 * `providers.aws`: where IAM is reached, which region signs the requests, and where credentials
 * come from. IAM is a global service with one endpoint per partition, so the configured `region`
 * only picks the partition (and the STS endpoint the credential chain uses); requests are signed
 * for the partition's IAM region.
 */
import { z } from "zod";
import { circuitSchema } from "../../plugin/circuit.ts";
import { callTimeout, httpUrl } from "../../plugin/schema.ts";

const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** An AWS partition and where its IAM lives. */
export interface Partition {
  /** `aws`, `aws-cn` or `aws-us-gov`: the second field of every ARN. */
  readonly id: string;
  readonly iamEndpoint: string;
  /** IAM is global within a partition; SigV4 scopes every IAM request to this one region. */
  readonly iamRegion: string;
}

const PARTITIONS: readonly (Partition & { readonly prefix: string })[] = [
  { prefix: "cn-", id: "aws-cn", iamEndpoint: "https://iam.cn-north-1.amazonaws.com.cn", iamRegion: "cn-north-1" },
  { prefix: "us-gov-", id: "aws-us-gov", iamEndpoint: "https://iam.us-gov.amazonaws.com", iamRegion: "us-gov-west-1" },
];
const COMMERCIAL: Partition = { id: "aws", iamEndpoint: "https://iam.amazonaws.com", iamRegion: "us-east-1" };

/** The partition a region belongs to; regions of other partitions need `endpoint` and `signing_region`. */
export function partitionOf(region: string): Partition {
  const p = PARTITIONS.find((x) => region.startsWith(x.prefix));
  return p ? { id: p.id, iamEndpoint: p.iamEndpoint, iamRegion: p.iamRegion } : COMMERCIAL;
}

/** The region when the config names none: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`. */
export function defaultRegion(env: NodeJS.ProcessEnv = process.env): string {
  return env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || "us-east-1";
}

const endpointUrl = httpUrl();

export const awsProviderSchema = z
  .object({
    /**
     * Region of the agent's AWS environment, e.g. `eu-central-1`. It selects the partition (and so
     * IAM's endpoint and signing region) and the regional STS endpoint the credential chain uses.
     * Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`.
     */
    region: z.string().regex(REGION_RE, { error: 'expected an AWS region like "eu-central-1"' }).optional(),
    /** IAM Query API endpoint (a VPC endpoint, a proxy). Default: the partition's, `https://iam.amazonaws.com` for `aws`. */
    endpoint: endpointUrl.optional(),
    /** Region in the SigV4 credential scope. Default: the partition's IAM region (`us-east-1`, `cn-north-1`, `us-gov-west-1`). */
    signing_region: z.string().regex(REGION_RE, { error: 'expected an AWS region like "us-east-1"' }).optional(),
    /** STS endpoint for credentials that assume a role (web identity / EKS IRSA, `role_arn` profiles). Default: the SDK's regional STS endpoint (or `AWS_ENDPOINT_URL_STS`). */
    sts_endpoint: endpointUrl.optional(),
    /** Shared config/credentials profile (`~/.aws/config`), including SSO profiles. Default: `AWS_PROFILE`, else the chain's default order. */
    profile: z.string().min(1).optional(),
    /**
     * Static credentials. Default: none, and the standard chain is used (environment, SSO and shared
     * config profiles, web identity / EKS IRSA, ECS task role, EC2 instance role over IMDSv2).
     * Prefer the chain; if set, use `${file:…}` or `${env:…}` for the secret parts.
     */
    credentials: z
      .object({
        /** Access key id (`AKIA…` or, with `session_token`, `ASIA…`). Required. */
        access_key_id: z.string().regex(/^[A-Z0-9]{16,128}$/, { error: "expected an access key id like AKIA…" }),
        /** Secret access key. Required. */
        secret_access_key: z.string().min(1),
        /** Session token of temporary credentials. Default: none. */
        session_token: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /** Whole-call deadline per IAM request, as a duration (`5s`), at most 5m. Default `10s`. */
    timeout: callTimeout(),
    /** Circuit breaker over the IAM API. Default: opens after 5 transient failures in a row, for 30s doubling to 5m. */
    circuit: circuitSchema,
  })
  .strict();

/** `providers.aws` as validated; `timeout` and circuit durations are in milliseconds. */
export type AwsProviderConfig = z.output<typeof awsProviderSchema>;

/** Where and how the client signs, after defaults. */
export interface ResolvedTarget {
  readonly region: string;
  readonly partition: Partition;
  readonly endpoint: string;
  readonly signingRegion: string;
}

export function resolveTarget(config: AwsProviderConfig, env: NodeJS.ProcessEnv = process.env): ResolvedTarget {
  const region = config.region ?? defaultRegion(env);
  const partition = partitionOf(region);
  return { region, partition, endpoint: config.endpoint ?? partition.iamEndpoint, signingRegion: config.signing_region ?? partition.iamRegion };
}
