/**
 * `token_file` authentication for providers whose token another process keeps fresh (a Vault Agent
 * sink, a Consul token a template renders). The sink replaces the file on every renewal, so for a
 * moment it may be missing or empty: a failure to read it is transient, and the job runs again and
 * finds the new token instead of failing for good.
 */
import { UpstreamError, VigilError, errorMessage } from "../../errors.ts";
import type { Authenticator } from "../../net/api-call.ts";
import { TokenFile } from "../../net/token-file.ts";

export function rotatingTokenFile(path: string, header?: string): Authenticator {
  const file = new TokenFile(path, header);
  return {
    async headers() {
      try {
        return await file.headers();
      } catch (err) {
        if (err instanceof VigilError) throw err;
        throw new UpstreamError(true, errorMessage(err), { cause: err, details: { token_file: path } });
      }
    },
    planned: () => file.planned(),
    invalidate: () => file.invalidate(),
  };
}
