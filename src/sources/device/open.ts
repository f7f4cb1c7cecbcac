/**
 * Opening a device source through the agent's shared resources: entries with the same connection
 * and scan settings get the same client and the same scans, so an inventory listing before a tick and
 * the check runs of that interval make one scan between them. The key is a hash of those settings
 * (secrets included, so two credentials never share), never the settings themselves.
 */
import { createHash } from "node:crypto";
import type { PluginContext } from "../../plugin/context.ts";
import { sharedOrOwn, type Lease } from "../../plugin/shared.ts";
import { canonicalJSON } from "../../util/canonical-json.ts";
import { CrowdStrikeSource } from "./crowdstrike.ts";
import { FleetSource } from "./fleet.ts";
import { HostSource } from "./host/index.ts";
import { IntuneSource } from "./intune.ts";
import { JamfSource } from "./jamf.ts";
import { CONNECTION_KEYS, type AnyConnection, type CrowdStrikeConnection, type FleetConnection, type HostConnection, type IntuneConnection, type JamfConnection } from "./schema.ts";

export type DeviceSource = IntuneSource | FleetSource | JamfSource | CrowdStrikeSource | HostSource;

/** The shared-resources key of a connection: its kind, type and a hash of what decides its scans. */
export function sourceKey(config: AnyConnection): string {
  const picked = Object.fromEntries(CONNECTION_KEYS[config.type].map((k) => [k, (config as unknown as Record<string, unknown>)[k]]));
  return `device-source:${config.type}:${createHash("sha256").update(canonicalJSON(picked)).digest("hex")}`;
}

export function openSource(config: IntuneConnection, ctx: PluginContext): Lease<IntuneSource>;
export function openSource(config: FleetConnection, ctx: PluginContext): Lease<FleetSource>;
export function openSource(config: JamfConnection, ctx: PluginContext): Lease<JamfSource>;
export function openSource(config: CrowdStrikeConnection, ctx: PluginContext): Lease<CrowdStrikeSource>;
export function openSource(config: HostConnection, ctx: PluginContext): Lease<HostSource>;
export function openSource(config: AnyConnection, ctx: PluginContext): Lease<DeviceSource>;
export function openSource(config: AnyConnection, ctx: PluginContext): Lease<DeviceSource> {
  const close = (s: DeviceSource) => void s.close().catch((err: unknown) => ctx.logger.warn({ err, source: s.type }, "closing a device source failed"));
  return sharedOrOwn(ctx.shared).acquire<DeviceSource>(sourceKey(config), () => create(config, ctx), close);
}

function create(config: AnyConnection, ctx: PluginContext): DeviceSource {
  switch (config.type) {
    case "intune":
      return new IntuneSource(config, ctx);
    case "fleet":
      return new FleetSource(config, ctx);
    case "jamf":
      return new JamfSource(config, ctx);
    case "crowdstrike":
      return new CrowdStrikeSource(config, ctx);
    case "host":
      return new HostSource(config, ctx);
  }
}
