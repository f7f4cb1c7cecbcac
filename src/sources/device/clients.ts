/** The device source clients, loaded with the first plugin that opens a source (see `open.ts`). */
import type { PluginContext } from "../../plugin/context.ts";
import { CrowdStrikeSource } from "./crowdstrike.ts";
import { FleetSource } from "./fleet.ts";
import { HostSource } from "./host/index.ts";
import { IntuneSource } from "./intune.ts";
import { JamfSource } from "./jamf.ts";
import type { AnyConnection } from "./schema.ts";

export type DeviceSource = IntuneSource | FleetSource | JamfSource | CrowdStrikeSource | HostSource;

export function createSource(config: AnyConnection, ctx: PluginContext): DeviceSource {
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
