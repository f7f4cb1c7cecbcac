import { z } from "zod";
import type { CheckFactory } from "../../plugin/check.ts";
import { attribute, attributeCheck, PASS, verdict, type Verdict } from "../common/attribute.ts";
import { uniqueSourceNames } from "../common/device.ts";
import { matchSchema, userModeSchema } from "../../sources/device/match.ts";
import type { Subject } from "../../policy/model.ts";
import { MANAGED_DEVICE_REASONS } from "./reasons.ts";
import { managedSourceSchema } from "./schema.ts";
import { openSource } from "../../sources/device/open.ts";

export { MANAGED_DEVICE_REASONS } from "./reasons.ts";

const configSchema = z
  .object({
    /** Attribute holding a boolean. Default `managed` on devices, `device_managed` on users and sessions. */
    attribute: z.string().optional(),
    /** Follow these device sources instead of an attribute: a device is managed when Intune, Fleet, Jamf or the host says so. */
    sources: z.array(managedSourceSchema).min(1).optional(),
    /** With `sources`: which of a user's devices must be managed: `all` (default), `any`, or `session`. */
    users: userModeSchema.optional(),
    /** With `sources`: how subjects name their devices and users (as in device_compliance; its defaults). */
    match: matchSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.sources && c.attribute !== undefined) ctx.addIssue({ code: "custom", path: ["attribute"], message: "set attribute or sources, not both" });
    if (!c.sources && (c.users !== undefined || c.match !== undefined)) ctx.addIssue({ code: "custom", path: [c.users !== undefined ? "users" : "match"], message: "applies only with sources" });
    uniqueSourceNames(c.sources, ctx);
  });

/** Pure evaluation; workloads are not devices and pass. */
export function evaluateManagedDevice(subject: Subject, attr?: string): Verdict {
  if (subject.kind === "workload") return PASS;
  const key = attr ?? (subject.kind === "device" ? "managed" : "device_managed");
  const value = attribute(subject, key);
  if (value === true) return PASS;
  if (value === false) return verdict("fail", MANAGED_DEVICE_REASONS.DEVICE_UNMANAGED, "the device is not managed");
  return verdict("unknown", MANAGED_DEVICE_REASONS.DEVICE_MANAGEMENT_UNKNOWN, `attribute ${key} is missing`);
}

export const managedDeviceCheck: CheckFactory<z.infer<typeof configSchema>> = {
  type: "managed_device",
  description: "Perimeter: access comes from a managed device (identity_perimeter.require_managed_device).",
  configSchema,
  reasons: [
    { code: MANAGED_DEVICE_REASONS.DEVICE_UNMANAGED, doc: "The device is not managed." },
    { code: MANAGED_DEVICE_REASONS.DEVICE_MANAGEMENT_UNKNOWN, doc: "No attribute says whether the device is managed." },
  ],
  create: (config, ctx) => {
    const sources = config.sources;
    if (!sources) return attributeCheck("managed_device", (s) => evaluateManagedDevice(s, config.attribute));
    // Opened as the check is created, so a reload hands unchanged sources over (see device_compliance).
    const leases = sources.map((cfg) => openSource(cfg, ctx));
    const impl = import("./sources.ts").then((m) => m.createManagedDeviceSourcesCheck({ sources, users: config.users ?? "all", match: config.match ?? matchSchema.parse({}) }, leases));
    impl.catch(() => undefined);
    return {
      run: async (subjects, run) => (await impl).run(subjects, run),
      stop: async () => {
        for (const l of leases) l.release();
      },
    };
  },
};
