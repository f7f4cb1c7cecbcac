/**
 * Opening a device source through the agent's shared resources: entries with the same connection
 * and scan settings get the same client and the same scans, so an inventory listing before a tick and
 * the check runs of that interval make one scan between them. The key is a hash of those settings
 * (secrets included, so two credentials never share), never the settings themselves.
 *
 * A plugin opens its sources synchronously when it is created (so a reload, which creates the new
 * plugins before it stops the old ones, hands an unchanged source over), while the clients' code is
 * loaded only then: the shared value is the client's promise.
 */
import { createHash } from "node:crypto";
import type { PluginContext } from "../../plugin/context.ts";
import { sharedOrOwn, type Lease } from "../../plugin/shared.ts";
import { canonicalJSON } from "../../util/canonical-json.ts";
import type { DeviceSource } from "./clients.ts";
import type { CrowdStrikeSource } from "./crowdstrike.ts";
import type { FleetSource } from "./fleet.ts";
import type { HostSource } from "./host/index.ts";
import type { IntuneSource } from "./intune.ts";
import type { JamfSource } from "./jamf.ts";
import { CONNECTION_KEYS, type AnyConnection, type CrowdStrikeConnection, type FleetConnection, type HostConnection, type IntuneConnection, type JamfConnection } from "./schema.ts";

export type { DeviceSource } from "./clients.ts";

/** The shared-resources key of a connection: its kind, type and a hash of what decides its scans. */
export function sourceKey(config: AnyConnection): string {
  const picked = Object.fromEntries(CONNECTION_KEYS[config.type].map((k) => [k, (config as unknown as Record<string, unknown>)[k]]));
  return `device-source:${config.type}:${createHash("sha256").update(canonicalJSON(picked)).digest("hex")}`;
}

export function openSource(config: IntuneConnection, ctx: PluginContext): Lease<Promise<IntuneSource>>;
export function openSource(config: FleetConnection, ctx: PluginContext): Lease<Promise<FleetSource>>;
export function openSource(config: JamfConnection, ctx: PluginContext): Lease<Promise<JamfSource>>;
export function openSource(config: CrowdStrikeConnection, ctx: PluginContext): Lease<Promise<CrowdStrikeSource>>;
export function openSource(config: HostConnection, ctx: PluginContext): Lease<Promise<HostSource>>;
export function openSource(config: AnyConnection, ctx: PluginContext): Lease<Promise<DeviceSource>>;
export function openSource(config: AnyConnection, ctx: PluginContext): Lease<Promise<DeviceSource>> {
  return sharedOrOwn(ctx.shared).acquire<Promise<DeviceSource>>(
    sourceKey(config),
    () => {
      const source = import("./clients.ts").then((m) => m.createSource(config, ctx));
      source.catch(() => undefined);
      return source;
    },
    (source) =>
      void source
        .then((s) => s.close())
        .catch((err: unknown) => ctx.logger.warn({ err, source: config.type }, "closing a device source failed")),
  );
}
