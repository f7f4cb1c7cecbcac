/**
 * AWS Signature Version 4 for one request, with the Smithy signer the AWS SDK itself uses. The
 * signer and its hash are imported on first use so an agent without AWS actions never loads them.
 */
import type { AwsCredentials } from "./credentials.ts";

interface Signer {
  sign(
    request: { method: string; protocol: string; hostname: string; port?: number; path: string; query: Record<string, string | string[]>; headers: Record<string, string>; body: string },
    options: { signingDate: Date },
  ): Promise<{ headers: Record<string, string> }>;
}
type SignerFactory = (credentials: AwsCredentials, region: string, service: string) => Signer;

let factory: Promise<SignerFactory> | undefined;
const loadFactory = (): Promise<SignerFactory> =>
  (factory ??= Promise.all([import("@smithy/signature-v4"), import("@smithy/hash-node")]).then(([{ SignatureV4 }, { Hash }]) => {
    const sha256 = Hash.bind(null, "sha256");
    return (credentials, region, service) =>
      // The payload hash goes into the canonical request either way; IAM does not need it as a header.
      new SignatureV4({ credentials, region, service, sha256, applyChecksum: false }) as unknown as Signer;
  })).catch((err: unknown) => {
    factory = undefined;
    throw err;
  });

export interface SignInput {
  readonly method: string;
  readonly url: string;
  /** Headers to sign besides `host` and the ones SigV4 adds. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly credentials: AwsCredentials;
  readonly region: string;
  readonly service: string;
  readonly date: Date;
}

/**
 * The headers to send: the given ones plus `host`, `x-amz-date`, `x-amz-security-token` (temporary
 * credentials) and `authorization`. `host` is signed, so the HTTP client must send exactly it.
 */
export async function sign(input: SignInput): Promise<Record<string, string>> {
  const make = await loadFactory();
  const u = new URL(input.url);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of u.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const headers: Record<string, string> = { host: u.host };
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  const signed = await make(input.credentials, input.region, input.service).sign(
    {
      method: input.method.toUpperCase(),
      protocol: u.protocol,
      hostname: u.hostname,
      ...(u.port ? { port: Number(u.port) } : {}),
      path: u.pathname || "/",
      query,
      headers,
      body: input.body,
    },
    { signingDate: input.date },
  );
  return { ...signed.headers };
}

/** `YYYYMMDDTHHMMSSZ`, the `X-Amz-Date` form of an instant. */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}
