/** The host vigil runs on (or the node it watches as a sidecar) as a source of one device. */
import type { PluginContext } from "../../../plugin/context.ts";
import { SharedScan } from "../../common/scan.ts";
import { DeviceSet } from "../model.ts";
import type { HostConnection } from "../schema.ts";
import { HostReader } from "./collect.ts";

export class HostSource {
  readonly type = "host";
  readonly scan: SharedScan<DeviceSet>;
  readonly reader: HostReader;

  constructor(config: HostConnection, ctx: PluginContext) {
    this.reader = new HostReader(config, () => ctx.clock.now());
    // Every control has its own deadline; the scan's bound covers them all running side by side.
    this.scan = new SharedScan(async () => new DeviceSet([await this.reader.collect()], 0), { clock: ctx.clock, scanTimeoutMs: Math.max(30_000, 4 * config.control_timeout), failureHoldMs: 5_000 });
  }

  async close(): Promise<void> {}
}
