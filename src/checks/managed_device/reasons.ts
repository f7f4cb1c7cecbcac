/** Reason codes of the `managed_device` check. */
export const MANAGED_DEVICE_REASONS = {
  /** The device (or the device behind a user or session) is not managed. */
  DEVICE_UNMANAGED: "DEVICE_UNMANAGED",
  /** Nothing says whether the device is managed. */
  DEVICE_MANAGEMENT_UNKNOWN: "DEVICE_MANAGEMENT_UNKNOWN",
} as const;
