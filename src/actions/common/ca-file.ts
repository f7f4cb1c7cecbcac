/** The CA bundle a provider pins its TLS connections to (`ca_file`), shared by the Vault and Consul providers. */
import { readFileSync } from "node:fs";
import { createHttpClient, type HttpClient } from "../../net/http.ts";
import type { PluginContext } from "../../plugin/context.ts";

/**
 * An HTTP client that trusts the CA in `file`, read once when the provider is made, so a missing CA
 * fails the agent's start rather than the first enforcement. When only planning (`ctx.planOnly`), a
 * CA that cannot be read here is skipped with a warning: a plan sends nothing.
 */
export function caClient(ctx: PluginContext, file: string, label: string): { http?: HttpClient } {
  let ca: Buffer;
  try {
    ca = readFileSync(file);
  } catch (err) {
    if (!ctx.planOnly) throw err;
    ctx.logger.warn({ file }, `${label}: ca_file ${file} cannot be read here (${(err as NodeJS.ErrnoException).code ?? String(err)}); plans do not need it`);
    return {};
  }
  return { http: createHttpClient({ ca }) };
}
