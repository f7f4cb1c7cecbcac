/**
 * The reason codes of device posture, stable strings the check returns and the host controls and
 * user-defined checks report. Documented one by one in docs/checks.md (device_compliance).
 */
export const DEVICE_REASONS = {
  /** The source judges the device noncompliant (Intune `noncompliant`, a Fleet policy failing, a grace period that ended). */
  DEVICE_NONCOMPLIANT: "DEVICE_NONCOMPLIANT",
  /** The disk (or FileVault, BitLocker, LUKS) is not encrypted. */
  DEVICE_UNENCRYPTED: "DEVICE_UNENCRYPTED",
  /** No firewall with a default-deny input policy. */
  DEVICE_FIREWALL_OFF: "DEVICE_FIREWALL_OFF",
  /** The OS is older than `min_os_version`, or security updates are older than allowed. */
  DEVICE_OS_OUTDATED: "DEVICE_OS_OUTDATED",
  /** The device is jailbroken or rooted. */
  DEVICE_JAILBROKEN: "DEVICE_JAILBROKEN",
  /** A Mobile Threat Defense partner reports a threat level vigil is told to block. */
  DEVICE_THREAT_REPORTED: "DEVICE_THREAT_REPORTED",
  /** A CrowdStrike Zero Trust Assessment score is below its threshold. */
  DEVICE_ZTA_BELOW_THRESHOLD: "DEVICE_ZTA_BELOW_THRESHOLD",
  /** A ZTA signal of a device below threshold does not meet its criteria (one reason per signal). */
  DEVICE_ZTA_SIGNAL_FAILED: "DEVICE_ZTA_SIGNAL_FAILED",
  /** The device is not managed (Jamf `managed: false`, Intune Exchange-only). */
  DEVICE_UNMANAGED: "DEVICE_UNMANAGED",
  /** The device is not supervised while `require_supervised` asks for it. */
  DEVICE_NOT_SUPERVISED: "DEVICE_NOT_SUPERVISED",
  /** Secure boot is off (or the machine did not boot through UEFI). */
  DEVICE_SECURE_BOOT_OFF: "DEVICE_SECURE_BOOT_OFF",
  /** Kernel lockdown is below the level asked for. */
  DEVICE_LOCKDOWN_OFF: "DEVICE_LOCKDOWN_OFF",
  /** The clock is not synchronised. */
  DEVICE_TIME_UNSYNCED: "DEVICE_TIME_UNSYNCED",
  /** A required service is not running. */
  DEVICE_SERVICE_DOWN: "DEVICE_SERVICE_DOWN",
  /** A user-defined file, command or osquery check failed. */
  DEVICE_CUSTOM_CHECK_FAILED: "DEVICE_CUSTOM_CHECK_FAILED",
  /** The source's data about the device is older than `max_age` (fail; `unknown` with `on_stale: unknown`). */
  DEVICE_STALE: "DEVICE_STALE",
  /** The data will be older than `max_age` soon (past `warn_age`): warn. */
  DEVICE_STALE_SOON: "DEVICE_STALE_SOON",
  /** Intune reports the device in its compliance grace period: warn until the deadline, then fail. */
  DEVICE_GRACE_PERIOD: "DEVICE_GRACE_PERIOD",
  /** No source (or a `required` source) knows the device, or the user has no device. */
  DEVICE_NOT_FOUND: "DEVICE_NOT_FOUND",
  /** The source does not know the device's compliance (`unknown`, `error`, `conflict`, `configManager`, an unknown state). */
  DEVICE_COMPLIANCE_UNKNOWN: "DEVICE_COMPLIANCE_UNKNOWN",
  /** Intune says compliant, but the tenant marks devices without a compliance policy as compliant, so it proves nothing. */
  DEVICE_NO_COMPLIANCE_POLICY: "DEVICE_NO_COMPLIANCE_POLICY",
  /** A host control could not be read (a tool is missing, the read needs root, the read timed out). */
  DEVICE_CONTROL_UNKNOWN: "DEVICE_CONTROL_UNKNOWN",
  /** The source could not be read after retries within the run's deadline (down, throttling, 5xx). */
  DEVICE_SOURCE_UNAVAILABLE: "DEVICE_SOURCE_UNAVAILABLE",
  /** The source refused vigil (credentials, permissions) or answered malformed or oversized data; retrying will not help. */
  DEVICE_SOURCE_ERROR: "DEVICE_SOURCE_ERROR",
} as const;

export type DeviceReason = (typeof DEVICE_REASONS)[keyof typeof DEVICE_REASONS];

/** Codes a user-defined host check or a Fleet policy may report when it fails. */
export const CONTROL_CODES = [
  "DEVICE_CUSTOM_CHECK_FAILED",
  "DEVICE_NONCOMPLIANT",
  "DEVICE_UNENCRYPTED",
  "DEVICE_FIREWALL_OFF",
  "DEVICE_OS_OUTDATED",
  "DEVICE_JAILBROKEN",
  "DEVICE_THREAT_REPORTED",
  "DEVICE_UNMANAGED",
  "DEVICE_SECURE_BOOT_OFF",
  "DEVICE_LOCKDOWN_OFF",
  "DEVICE_TIME_UNSYNCED",
  "DEVICE_SERVICE_DOWN",
] as const satisfies readonly DeviceReason[];
