/**
 * How vigil reaches each device source: the connection and scan settings an inventory and a check
 * both write under `type: intune|fleet|jamf|crowdstrike|host`. Everything here decides what a scan
 * fetches, so two entries with the same values (evaluation and filter keys aside) share one scan.
 */
import { z } from "zod";
import { boundedDuration, callTimeout } from "../../plugin/schema.ts";
import { baseUrl } from "../common/config.ts";
import { graphAppShape } from "../graph/config.ts";
import { CONTROL_CODES } from "./reasons.ts";

const MIB = 1024 * 1024;

/** Bounds of one scan, shared by the API sources. */
export const scanShape = {
  /** Deadline of one request (token requests included), up to 5m. Default `30s`. */
  timeout: callTimeout("30s"),
  /** Bound of a whole scan: every page, retries and their waits. Default `5m`. */
  scan_timeout: boundedDuration({ min: 1_000, max: 60 * 60_000, fallback: "5m", message: 'expected a duration between 1s and 1h, like "5m"' }),
  /** Largest answer accepted, in bytes; a larger one is refused. Default 16 MiB. */
  max_response_bytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(256 * MIB)
    .default(16 * MIB),
  /** Most devices one scan may return; more is refused rather than held in memory. Default 1,000,000. */
  max_devices: z.number().int().min(1).max(10_000_000).default(1_000_000),
};

const secret = () => z.string().min(1, { error: "must not be empty" });

export const intuneConnectionShape = {
  type: z.literal("intune"),
  ...graphAppShape,
  /** `$top` of each managedDevices page (Graph's limit is 1000). Default 1000. */
  page_size: z.number().int().min(1).max(1000).default(1000),
  ...scanShape,
};

export const fleetConnectionShape = {
  type: z.literal("fleet"),
  /** Fleet server URL, e.g. `https://fleet.example.com`. Required. */
  url: baseUrl(),
  /** API token (an API-only user's). Use `${file:…}`. Required. */
  token: secret(),
  /** Hosts per page. Default 500. */
  per_page: z.number().int().min(1).max(10_000).default(500),
  ...scanShape,
};

export const jamfConnectionShape = {
  type: z.literal("jamf"),
  /** Jamf Pro URL, e.g. `https://example.jamfcloud.com`. Required. */
  url: baseUrl(),
  /** API client id (Settings → API roles and clients). Required. */
  client_id: z.string().min(1),
  /** API client secret. Use `${file:…}`. Required. */
  client_secret: secret(),
  /** Computers per page. Default 200. */
  page_size: z.number().int().min(1).max(2000).default(200),
  ...scanShape,
};

export const crowdstrikeConnectionShape = {
  type: z.literal("crowdstrike"),
  /** Falcon API base URL of the cloud (`https://api.us-2.crowdstrike.com`, `https://api.eu-1.crowdstrike.com`, …). Default `https://api.crowdstrike.com`. */
  url: baseUrl().default("https://api.crowdstrike.com"),
  /** API client id with the "Zero Trust Assessment: Read" scope. Required. */
  client_id: z.string().min(1),
  /** API client secret. Use `${file:…}`. Required. */
  client_secret: secret(),
  /** Agent ids per assessments request (the API takes up to 1000). Default 100. */
  batch_size: z.number().int().min(1).max(1000).default(100),
  ...scanShape,
};

const control = z.enum(CONTROL_CODES);
const SERVICE_RE = /^[A-Za-z0-9@._:-]{1,128}$/;

/** A user-defined file check on the host. */
const fileCheck = z
  .object({
    /** Absolute path, read under `root`. */
    path: z.string().startsWith("/", { error: "expected an absolute path" }),
    /** The file must exist (true, default) or must not (false). */
    exists: z.boolean().default(true),
    /** Largest permission bits allowed, octal, e.g. `"0640"`: no bit beyond them may be set. */
    max_mode: z
      .string()
      .regex(/^0?[0-7]{3,4}$/, { error: 'expected octal permission bits like "0640"' })
      .transform((s) => parseInt(s, 8))
      .optional(),
    /** Owner uid the file must have. */
    owner_uid: z.number().int().min(0).optional(),
    /** A regular expression some line of the file must match. The first 1 MiB is read. */
    contains: z
      .string()
      .refine((s) => validRegex(s), { error: "not a valid regular expression" })
      .optional(),
    /** Reason code when the check fails. Default `DEVICE_CUSTOM_CHECK_FAILED`. */
    code: control.default("DEVICE_CUSTOM_CHECK_FAILED"),
  })
  .strict();

/** A user-defined command check: run without a shell, passes on the expected exit code (and output). */
const commandCheck = z
  .object({
    /** Names the check in results. Required. */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "expected a short name (letters, digits, _ . -)" }),
    /** Program and arguments, run without a shell as the agent's user. */
    run: z.array(z.string().min(1)).min(1),
    /** Exit code that passes. Default 0. */
    exit_code: z.number().int().min(0).max(255).default(0),
    /** A regular expression the standard output must match. */
    stdout: z
      .string()
      .refine((s) => validRegex(s), { error: "not a valid regular expression" })
      .optional(),
    /** Reason code when the check fails. Default `DEVICE_CUSTOM_CHECK_FAILED`. */
    code: control.default("DEVICE_CUSTOM_CHECK_FAILED"),
  })
  .strict();

/** An osquery SQL check, read the way Fleet reads a policy: one row or more passes. */
const queryCheck = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "expected a short name (letters, digits, _ . -)" }),
    /** The SQL, e.g. `SELECT 1 FROM disk_encryption WHERE encrypted = 1;`. */
    sql: z.string().min(1).max(10_000),
    /** Reason code when no row comes back. Default `DEVICE_CUSTOM_CHECK_FAILED`. */
    code: control.default("DEVICE_CUSTOM_CHECK_FAILED"),
  })
  .strict();

/** Dotted version strings compared numerically (`"22.04"`, `"10.0.19045"`, `"14"`). */
export const versionString = z.string().regex(/^\d+(\.\d+)*$/, { error: 'expected a version like "12" or "22.04"' });

/** `min_os_version`: platform family (or Linux distribution id) → lowest version allowed. */
export const minOsVersion = z.record(z.string().min(1), versionString).default({});

export const hostControlsSchema = z
  .object({
    /** Disk encryption (LUKS/dm-crypt) of the filesystems at these mount points, or false. Default `{mounts: ["/"]}`. */
    disk_encryption: z
      .union([z.literal(false), z.object({ mounts: z.array(z.string().startsWith("/")).min(1).default(["/"]) }).strict()])
      .prefault({}),
    /** An nftables or iptables input chain with a default-deny policy (reading it needs CAP_NET_ADMIN). Default true. */
    firewall: z.boolean().default(true),
    /** Age of the last package upgrade (apt history; unattended-upgrades runs count as security updates), or false. Default `{max_age: 30d}`. */
    security_updates: z
      .union([z.literal(false), z.object({ max_age: boundedDuration({ min: 3_600_000, fallback: "30d" }) }).strict()])
      .prefault({}),
    /** Secure boot enabled (UEFI variable, readable without root). Default true. */
    secure_boot: z.boolean().default(true),
    /** Kernel lockdown at least this level: `none` (not checked, default), `integrity` or `confidentiality`. */
    lockdown: z.enum(["none", "integrity", "confidentiality"]).default("none"),
    /** The clock is synchronised (timedatectl, chronyc, or systemd-timesyncd's marker). Default true. */
    time_sync: z.boolean().default(true),
    /** systemd units that must be active, e.g. `[auditd]`. Default none. */
    services: z.array(z.string().regex(SERVICE_RE, { error: "expected a unit name" })).default([]),
    /** User-defined file checks. */
    files: z.array(fileCheck).default([]),
    /** User-defined command checks. */
    commands: z.array(commandCheck).default([]),
  })
  .strict();

export const hostConnectionShape = {
  type: z.literal("host"),
  /** The name the host goes by in subjects (matched against ids, identities and `attributes.hostname`). Default the system's hostname. */
  hostname: z.string().min(1).max(253).optional(),
  /** Where the host's `/etc`, `/proc`, `/sys`, `/var` are mounted: `/` on the host, e.g. `/host` in a sidecar. Default `/`. */
  root: z.string().startsWith("/").default("/"),
  /** Controls to read. */
  controls: hostControlsSchema.prefault({}),
  /** `min_os_version` for the host's distribution (`/etc/os-release` ID), e.g. `{debian: "12", ubuntu: "22.04"}`. */
  min_os_version: minOsVersion,
  /** osquery SQL checks (need `osqueryi`). */
  queries: z.array(queryCheck).default([]),
  /** Read the built-in controls from osquery tables where `osqueryi` is installed (`auto`, default), never (`off`), or insist (`required`). */
  osquery: z.enum(["auto", "off", "required"]).default("auto"),
  /** The osqueryi program. Default `osqueryi` (looked up on PATH). */
  osqueryi: z.string().min(1).default("osqueryi"),
  /** Deadline of each read or command. Default `5s`. */
  control_timeout: boundedDuration({ min: 100, max: 120_000, fallback: "5s", message: 'expected a duration between 100ms and 2m, like "5s"' }),
};

function validRegex(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

const intuneConnection = z.object(intuneConnectionShape);
const fleetConnection = z.object(fleetConnectionShape);
const jamfConnection = z.object(jamfConnectionShape);
const crowdstrikeConnection = z.object(crowdstrikeConnectionShape);
const hostConnection = z.object(hostConnectionShape);

export type IntuneConnection = z.output<typeof intuneConnection>;
export type FleetConnection = z.output<typeof fleetConnection>;
export type JamfConnection = z.output<typeof jamfConnection>;
export type CrowdStrikeConnection = z.output<typeof crowdstrikeConnection>;
export type HostConnection = z.output<typeof hostConnection>;
export type AnyConnection = IntuneConnection | FleetConnection | JamfConnection | CrowdStrikeConnection | HostConnection;

/** The keys of each connection shape: what decides a scan, and so what two entries must agree on to share one. */
export const CONNECTION_KEYS: Readonly<Record<AnyConnection["type"], readonly string[]>> = {
  intune: Object.keys(intuneConnectionShape),
  fleet: Object.keys(fleetConnectionShape),
  jamf: Object.keys(jamfConnectionShape),
  crowdstrike: Object.keys(crowdstrikeConnectionShape),
  host: Object.keys(hostConnectionShape),
};
