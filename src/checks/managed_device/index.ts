import { z } from "zod";
import type { CheckFactory } from "../../plugin/check.ts";
import { attribute, attributeCheck, PASS, verdict, type Verdict } from "../common/attribute.ts";
import type { Subject } from "../../policy/model.ts";

/** Reason codes of the `managed_device` check. */
export const MANAGED_DEVICE_REASONS = {
  /** The device (or the device behind a user or session) is not managed. */
  DEVICE_UNMANAGED: "DEVICE_UNMANAGED",
  /** Nothing says whether the device is managed. */
  DEVICE_MANAGEMENT_UNKNOWN: "DEVICE_MANAGEMENT_UNKNOWN",
} as const;

const configSchema = z
  .object({
    /** Attribute holding a boolean. Default `managed` on devices, `device_managed` on users and sessions. */
    attribute: z.string().optional(),
  })
  .strict();

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
  create: (config) => attributeCheck("managed_device", (s) => evaluateManagedDevice(s, config.attribute)),
};
