/** The identity source clients, loaded with the first plugin that opens a source (see `open.ts`). */
import type { PluginContext } from "../../plugin/context.ts";
import { EntraIdentitySource } from "./entra.ts";
import { OktaIdentitySource } from "./okta.ts";
import type { IdentityConnection } from "./schema.ts";

export type IdentitySource = EntraIdentitySource | OktaIdentitySource;

export function createIdentitySource(config: IdentityConnection, ctx: PluginContext): IdentitySource {
  return config.type === "entra" ? new EntraIdentitySource(config, ctx) : new OktaIdentitySource(config, ctx);
}
