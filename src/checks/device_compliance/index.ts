/**
 * device_compliance: does the device a subject uses (or every device of a user, or any, or the
 * session's own) comply, according to the systems that hold device posture — Microsoft Intune, Fleet,
 * Jamf Pro, CrowdStrike Zero Trust Assessment and the host itself?
 *
 * gather (`src/sources/device/`: shared scans, one per source and interval) → match subjects to
 * devices → evaluate (`evaluate.ts`: pure). Without `sources` the check stays push-only.
 */
import type { Check, CheckFactory } from "../../plugin/check.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { DEVICE_REASONS } from "../../sources/device/reasons.ts";
import { openSource } from "../../sources/device/open.ts";
import { deviceComplianceConfigSchema, type DeviceComplianceConfig } from "./config.ts";

export { DEVICE_REASONS } from "../../sources/device/reasons.ts";
export { deviceComplianceConfigSchema, type DeviceComplianceConfig } from "./config.ts";

export const deviceComplianceCheck: CheckFactory<DeviceComplianceConfig> = {
  type: "device_compliance",
  description: "Device posture from Intune, Fleet, Jamf Pro, CrowdStrike ZTA and the host itself, per device or per user's devices; push-only without sources.",
  configSchema: deviceComplianceConfigSchema,
  reasons: Object.values(DEVICE_REASONS).map((code) => ({ code, doc: `see docs/checks.md (device_compliance: ${code})` })),
  pulls: (config) => config.sources !== undefined,
  create(config: DeviceComplianceConfig, ctx: PluginContext): Check {
    // The sources are opened (and shared) as the check is created, so a reload that keeps a
    // source's settings hands its scan to the new check; the running half loads alongside.
    const leases = (config.sources ?? []).map((cfg) => openSource(cfg, ctx));
    const impl = import("./check.ts").then((m) => m.createDeviceComplianceCheck(config, ctx, leases));
    impl.catch(() => undefined);
    return {
      run: async (subjects, run) => (await impl).run(subjects, run),
      stop: async () => {
        for (const l of leases) l.release();
      },
    };
  },
};
