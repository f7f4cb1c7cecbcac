/**
 * Opening an identity source through the agent's shared resources: an inventory and a check whose
 * entries agree on the connection and sync keys get the same client and the same syncs, so the
 * inventory's listing before a tick and the check's runs of that interval make one directory sync,
 * one sign-in read and one System Log poll between them. The key is a hash of those settings
 * (secrets included, so two credentials never share), never the settings themselves.
 */
import { createHash } from "node:crypto";
import type { PluginContext } from "../../plugin/context.ts";
import { sharedOrOwn, type Lease } from "../../plugin/shared.ts";
import { canonicalJSON } from "../../util/canonical-json.ts";
import type { EntraIdentitySource } from "./entra.ts";
import type { IdentitySource } from "./clients.ts";
import type { OktaIdentitySource } from "./okta.ts";
import { IDENTITY_CONNECTION_KEYS, type EntraConnection, type IdentityConnection, type OktaConnection } from "./schema.ts";

export type { IdentitySource } from "./clients.ts";

/** The shared-resources key of a connection. */
export function identitySourceKey(config: IdentityConnection): string {
  const picked = Object.fromEntries(IDENTITY_CONNECTION_KEYS[config.type].map((k) => [k, (config as unknown as Record<string, unknown>)[k]]));
  return `identity-source:${config.type}:${createHash("sha256").update(canonicalJSON(picked)).digest("hex")}`;
}

export function openIdentitySource(config: EntraConnection, ctx: PluginContext): Lease<Promise<EntraIdentitySource>>;
export function openIdentitySource(config: OktaConnection, ctx: PluginContext): Lease<Promise<OktaIdentitySource>>;
export function openIdentitySource(config: IdentityConnection, ctx: PluginContext): Lease<Promise<IdentitySource>>;
export function openIdentitySource(config: IdentityConnection, ctx: PluginContext): Lease<Promise<IdentitySource>> {
  return sharedOrOwn(ctx.shared).acquire<Promise<IdentitySource>>(
    identitySourceKey(config),
    () => {
      const source = import("./clients.ts").then((m) => m.createIdentitySource(config, ctx));
      source.catch(() => undefined);
      return source;
    },
    (source) =>
      void source
        .then((s) => s.close())
        .catch((err: unknown) => ctx.logger.warn({ err, source: config.type }, "closing an identity source failed")),
  );
}
