/**
 * `checks.device_compliance`: the sources that hold device posture (several may be combined, e.g.
 * Intune for laptops and the host itself for servers), how subjects map to devices, and what each
 * source's data must show. Without `sources` the check stays push-only: its results arrive as signals,
 * as before the plugin existed.
 */
import { z } from "zod";
import { duration } from "../../plugin/schema.ts";
import { matchSchema, userModeSchema } from "../../sources/device/match.ts";
import { sourceCommonShape, uniqueSourceNames } from "../common/device.ts";
import { CONTROL_CODES } from "../../sources/device/reasons.ts";
import {
  crowdstrikeConnectionShape,
  fleetConnectionShape,
  hostConnectionShape,
  intuneConnectionShape,
  jamfConnectionShape,
  minOsVersion,
} from "../../sources/device/schema.ts";
import type { SourceType } from "../../sources/device/model.ts";

/** How long each source's data stays usable when `max_age` is not set: about three of its update cycles. */
export const DEFAULT_MAX_AGE: Readonly<Record<SourceType, number>> = {
  // Intune devices check in about every 8 hours.
  intune: 24 * 3_600_000,
  // Fleet refreshes policy results every hour by default.
  fleet: 3 * 3_600_000,
  // Jamf computers check in every 15 minutes by default.
  jamf: 3_600_000,
  // ZTA scores change when the host's settings do; CrowdStrike publishes no refresh cadence.
  crowdstrike: 7 * 24 * 3_600_000,
  // The host is read by vigil itself on every refresh.
  host: 3_600_000,
};

/** Keys every source entry of the check takes besides its connection. */
const evaluationShape = {
  ...sourceCommonShape,
  /** The source's data about a device older than this is stale (never a pass). Default per type: intune 24h, fleet 3h, jamf 1h, crowdstrike 7d, host 1h. */
  max_age: duration().optional(),
  /** Data older than this, but not yet `max_age`, warns (`DEVICE_STALE_SOON`). Default three quarters of `max_age`. */
  warn_age: duration().optional(),
};

const policyRef = z.union([
  z.number().int().min(0),
  z
    .object({
      id: z.number().int().min(0),
      /** Reason code when the policy fails. Default `DEVICE_NONCOMPLIANT`. */
      code: z.enum(CONTROL_CODES).default("DEVICE_NONCOMPLIANT"),
    })
    .strict(),
]);

const intuneSource = z
  .object({
    ...intuneConnectionShape,
    ...evaluationShape,
    /**
     * Read the tenant's "Mark devices with no compliance policy assigned as" setting every scan: while it
     * is Compliant, Intune's `compliant` cannot be told from "no policy", and compliant devices are
     * `unknown` (`DEVICE_NO_COMPLIANCE_POLICY`). Needs `DeviceManagementConfiguration.Read.All`. Default true.
     */
    no_policy_check: z.boolean().default(true),
    /** `isEncrypted: false` fails (`DEVICE_UNENCRYPTED`), whatever the compliance policies say. Default false. */
    require_encryption: z.boolean().default(false),
    /** `jailBroken: True` fails (`DEVICE_JAILBROKEN`). Default true. */
    block_jailbroken: z.boolean().default(true),
    /** `partnerReportedThreatState` values that fail (`DEVICE_THREAT_REPORTED`). Default `[mediumSeverity, highSeverity, compromised]`. */
    threat_states: z.array(z.string().min(1)).default(["mediumSeverity", "highSeverity", "compromised"]),
    /** Lowest OS version per platform (`windows`, `macos`, `ios`, `android`), e.g. `{windows: "10.0.19045"}`. */
    min_os_version: minOsVersion,
  })
  .strict();

const fleetSource = z
  .object({
    ...fleetConnectionShape,
    ...evaluationShape,
    /**
     * What compliant means: `all` (default: no policy failing, from each host's failing-policies count),
     * `critical` (no critical global policy failing), or a list of policy ids (`[12, {id: 15, code: DEVICE_UNENCRYPTED}]`).
     */
    policies: z.union([z.enum(["all", "critical"]), z.array(policyRef).min(1)]).default("all"),
    /** Lowest OS version per platform (`macos`, `windows`, `ubuntu`, …). */
    min_os_version: minOsVersion,
  })
  .strict();

const jamfSource = z
  .object({
    ...jamfConnectionShape,
    ...evaluationShape,
    /** The computer must be managed (`DEVICE_UNMANAGED`). Default true. */
    require_managed: z.boolean().default(true),
    /** The computer must be supervised (`DEVICE_NOT_SUPERVISED`). Default false. */
    require_supervised: z.boolean().default(false),
    /** The boot volume's FileVault state must be `ENCRYPTED` (`DEVICE_UNENCRYPTED`). Default true. */
    require_filevault: z.boolean().default(true),
    /** The macOS firewall must be on (`DEVICE_FIREWALL_OFF`). Default false. */
    require_firewall: z.boolean().default(false),
    /** The last full inventory (`reportDate`, the source of FileVault and OS) older than this is stale. Default `8d` (a weekly inventory plus a day). */
    inventory_max_age: duration().prefault("8d"),
    /** Lowest macOS version, e.g. `{macos: "14.5"}`. */
    min_os_version: minOsVersion,
  })
  .strict();

const crowdstrikeSource = z
  .object({
    ...crowdstrikeConnectionShape,
    ...evaluationShape,
    /** Lowest acceptable scores (0–100). Default `{overall: 60}`; `os` and `sensor_config` are checked when set. */
    thresholds: z
      .object({
        overall: z.number().int().min(0).max(100).default(60),
        os: z.number().int().min(0).max(100).optional(),
        sensor_config: z.number().int().min(0).max(100).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const hostSource = z
  .object({
    ...hostConnectionShape,
    ...evaluationShape,
  })
  .strict();

export const deviceSourceSchema = z.discriminatedUnion("type", [intuneSource, fleetSource, jamfSource, crowdstrikeSource, hostSource]);

export type DeviceSourceConfig = z.output<typeof deviceSourceSchema>;
export type IntuneSourceConfig = z.output<typeof intuneSource>;
export type FleetSourceConfig = z.output<typeof fleetSource>;
export type JamfSourceConfig = z.output<typeof jamfSource>;
export type CrowdStrikeSourceConfig = z.output<typeof crowdstrikeSource>;
export type HostSourceConfig = z.output<typeof hostSource>;

export const deviceComplianceConfigSchema = z
  .object({
    /** Where device posture comes from. Without it the check is push-only (results arrive as signals). */
    sources: z.array(deviceSourceSchema).min(1).optional(),
    /** Which of a user's devices must comply: `all` (default), `any`, or `session` (a session subject's own device when it names one). */
    users: userModeSchema.default("all"),
    /** How subjects name their devices and users. */
    match: matchSchema.prefault({}),
    /** What stale data gives: `fail` (default) or `unknown` (the fail mode decides). Never a pass. */
    on_stale: z.enum(["fail", "unknown"]).default("fail"),
  })
  .strict()
  .superRefine((c, ctx) => uniqueSourceNames(c.sources, ctx));

export type DeviceComplianceConfig = z.output<typeof deviceComplianceConfigSchema>;
