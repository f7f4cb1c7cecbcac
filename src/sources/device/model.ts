/**
 * Devices as the sources report them, in one shape: who the device is (the ids it goes by), whose it
 * is (its users), what it runs, when the source last heard from it, and the source's own posture
 * fields for the check to judge. Records are kept for a whole scan of up to hundreds of thousands of
 * devices, so they hold only what an evaluation or an inventory reads.
 */

export const SOURCE_TYPES = ["intune", "fleet", "jamf", "crowdstrike", "host"] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** Intune's view: `complianceState` and the fields its compliance policies are about. */
export interface IntunePosture {
  readonly kind: "intune";
  /** `complianceState` as Intune spells it (`compliant`, `noncompliant`, `inGracePeriod`, `conflict`, `error`, `unknown`, `configManager`). */
  readonly compliance: string;
  /** `complianceGracePeriodExpirationDateTime`, epoch ms. */
  readonly graceUntil?: number;
  readonly encrypted?: boolean;
  /** `jailBroken`: `True`, `False` or `Unknown`. */
  readonly jailBroken?: string;
  /** `partnerReportedThreatState` (Mobile Threat Defense partner). */
  readonly threat?: string;
  /** `managementAgent` (`mdm`, `eas`, `configurationManagerClientMdm`, …). */
  readonly agent?: string;
  /** `managedDeviceOwnerType`: `company`, `personal`, `unknown`. */
  readonly owner?: string;
  /** `deviceCategoryDisplayName`. */
  readonly category?: string;
  /** `azureADDeviceId`: the device's id in Entra ID (what sign-in logs and Conditional Access name). */
  readonly entraDeviceId?: string;
}

/** Fleet's view: the host's policy results and check-ins. */
export interface FleetPosture {
  readonly kind: "fleet";
  /** Fleet's numeric host id. */
  readonly hostId: number;
  /** `issues.failing_policies_count`. */
  readonly failingPolicies?: number;
  /** `seen_time`, epoch ms: the last contact of the host. */
  readonly seenAt?: number;
  /** `status`: online, offline, mia, missing, new. */
  readonly status?: string;
  /** `mdm.enrollment_status` (e.g. `On (manual)`, `Off`), when Fleet manages the host's MDM. */
  readonly mdm?: string;
}

/** Jamf Pro's view of a computer. */
export interface JamfPosture {
  readonly kind: "jamf";
  /** `general.remoteManagement.managed`. */
  readonly managed?: boolean;
  readonly supervised?: boolean;
  /** `diskEncryption.bootPartitionEncryptionDetails.partitionFileVault2State`. */
  readonly fileVault?: string;
  /** `security.firewallEnabled`. */
  readonly firewall?: boolean;
  /** `general.reportDate`, epoch ms: the last full inventory (FileVault and OS come from it). */
  readonly reportAt?: number;
}

/** One ZTA signal that does not meet its criteria. */
export interface ZtaSignal {
  readonly group: "os" | "sensor";
  readonly id: string;
  readonly name: string;
  readonly criteria?: string;
  /** `meets_criteria` as reported (`no`, `unknown`, …). */
  readonly meets: string;
}

/** CrowdStrike Zero Trust Assessment scores (0–100, higher is more trusted). */
export interface ZtaPosture {
  readonly kind: "crowdstrike";
  readonly overall?: number;
  readonly os?: number;
  readonly sensorConfig?: number;
  /** Signals that do not meet their criteria. */
  readonly failing: readonly ZtaSignal[];
}

/** One control read on the host itself. */
export interface ControlResult {
  /** `disk_encryption`, `firewall`, `os_version`, `security_updates`, `secure_boot`, `lockdown`, `time_sync`, `service:<name>`, `file:<path>`, `command:<name>`, `query:<name>`. */
  readonly control: string;
  readonly status: "ok" | "failed" | "unknown";
  /** The reason code a failed control gives (`DEVICE_UNENCRYPTED`, …). */
  readonly code: string;
  /** What was found, for humans: "/ is on /dev/vda, not encrypted". */
  readonly detail: string;
  /** How it was read: `sysfs`, `nft`, `osquery`, … */
  readonly via?: string;
}

export interface HostPosture {
  readonly kind: "host";
  readonly controls: readonly ControlResult[];
}

export type Posture = IntunePosture | FleetPosture | JamfPosture | ZtaPosture | HostPosture;

export interface DeviceRecord {
  readonly type: SourceType;
  /** The source's own id (Intune device id, Fleet host id, Jamf computer id, CrowdStrike aid, hostname). */
  readonly id: string;
  readonly name?: string;
  readonly serial?: string;
  /** Network hostname, where the source has one (Fleet, the host itself). */
  readonly hostname?: string;
  /**
   * Other ids the device is known by, lower case: globally unique ids (GUIDs, aid, serial) and
   * hostnames where the source has them. `<type>:<id>` always finds the record too.
   */
  readonly keys: readonly string[];
  /** Users the source associates with the device (user principal names, emails), lower case. */
  readonly users: readonly string[];
  /** Platform family, lower case: `windows`, `macos`, `ios`, `android`, `linux`, or a Linux distribution id (`ubuntu`, …). */
  readonly platform?: string;
  readonly osVersion?: string;
  /** Whether a device-management system manages the device, where the source says. */
  readonly managed?: boolean;
  /** When the source last heard from the device (its freshness clock), epoch ms; undefined when never. */
  readonly observedAt?: number;
  /** Groups or teams the source files the device under (Jamf computer groups, Fleet team). */
  readonly groups?: readonly string[];
  /** ISO 3166-1 alpha-2 country, where the source knows it. */
  readonly country?: string;
  readonly posture: Posture;
}

/** Serial numbers vendors ship when there is none; matching on them would join unrelated devices. */
const PLACEHOLDER_SERIALS = new Set(["", "0", "none", "null", "unknown", "n/a", "na", "default string", "to be filled by o.e.m.", "system serial number", "not specified", "not applicable", "0123456789", "123456789"]);

/** A serial worth matching on, or undefined. */
export function usableSerial(serial: string | undefined): string | undefined {
  if (serial === undefined) return undefined;
  const s = serial.trim();
  return s.length < 4 || PLACEHOLDER_SERIALS.has(s.toLowerCase()) || /^0+$/.test(s) ? undefined : s;
}

const NONE: readonly string[] = Object.freeze([]);

/** Lower case without a new string when there is nothing to change (most ids already are). */
export function lower(s: string): string {
  return /[A-Z]/.test(s) ? s.toLowerCase() : s;
}

/** The other ids of a record (`keys`), lower-cased and de-duplicated. */
export function keysOf(values: readonly (string | undefined)[]): readonly string[] {
  const out: string[] = [];
  for (const k of values) {
    if (k === undefined) continue;
    const v = lower(k.trim());
    if (v !== "" && !out.includes(v)) out.push(v);
  }
  // A copy of exactly its length: a pushed-to array keeps spare capacity, per record.
  return out.length ? [...out] : NONE;
}

/** Users as lookup values: trimmed, lower case, e-mail-like or UPN-like only. */
export function usersOf(values: readonly (string | undefined | null)[]): readonly string[] {
  const out: string[] = [];
  for (const v of values) {
    if (typeof v !== "string" || !v.includes("@") || v.length > 320) continue;
    const u = lower(v.trim());
    if (!out.includes(u)) out.push(u);
  }
  return out.length ? [...out] : NONE;
}

export { intern } from "../common/intern.ts";

/** A platform family from the names sources use (`Windows`, `macOS`, `darwin`, `iPadOS`, `AndroidForWork`, `ubuntu` …). */
export function platformFamily(name: string | undefined): string | undefined {
  if (!name) return undefined;
  const n = name.trim().toLowerCase();
  if (n.startsWith("windows")) return "windows";
  if (n === "macos" || n === "mac os x" || n === "darwin" || n === "mac" || n === "macmdm") return "macos";
  if (n === "ios" || n === "ipados" || n === "iphone" || n === "ipad") return "ios";
  if (n.startsWith("android")) return "android";
  return n.replace(/[^a-z0-9._-]+/g, "_");
}

/**
 * Every record of a scan by each key and each user, built once per scan on first use (an inventory
 * that only lists never pays for it).
 */
export class DeviceIndex {
  /** By `<type>:<id>` without the prefix (one source type per index), so no id string is built per record. */
  readonly #byId = new Map<string, DeviceRecord | DeviceRecord[]>();
  readonly #byKey = new Map<string, DeviceRecord | DeviceRecord[]>();
  readonly #byUser = new Map<string, DeviceRecord | DeviceRecord[]>();
  readonly #prefix: string | undefined;

  constructor(records: readonly DeviceRecord[]) {
    this.#prefix = records[0] ? `${records[0].type}:` : undefined;
    for (const r of records) {
      add(this.#byId, lower(r.id), r);
      for (const k of r.keys) add(this.#byKey, k, r);
      for (const u of r.users) add(this.#byUser, u, r);
    }
  }

  /**
   * Records known by any of `values` (lower case, as `match` renders them), each once: `<type>:<id>`
   * (the subject ids of vigil's device inventories) or any of a record's other ids.
   */
  byKeys(values: readonly string[]): DeviceRecord[] {
    const out: DeviceRecord[] = [];
    const prefix = this.#prefix;
    for (const v of values) {
      if (prefix !== undefined && v.startsWith(prefix)) collect(this.#byId, v.slice(prefix.length), out);
      collect(this.#byKey, v, out);
    }
    return out;
  }

  /** Records associated with any of the user values. */
  byUsers(values: readonly string[]): DeviceRecord[] {
    const out: DeviceRecord[] = [];
    for (const v of values) collect(this.#byUser, v, out);
    return out;
  }
}

// Most keys name one device: a bare record instead of a one-element array keeps large indexes small.
function add(map: Map<string, DeviceRecord | DeviceRecord[]>, key: string, r: DeviceRecord): void {
  const had = map.get(key);
  if (had === undefined) map.set(key, r);
  else if (Array.isArray(had)) {
    if (!had.includes(r)) had.push(r);
  } else if (had !== r) map.set(key, [had, r]);
}

function collect(map: Map<string, DeviceRecord | DeviceRecord[]>, value: string, out: DeviceRecord[]): void {
  const hit = map.get(value);
  if (hit === undefined) return;
  if (!Array.isArray(hit)) {
    if (!out.includes(hit)) out.push(hit);
    return;
  }
  for (const r of hit) if (!out.includes(r)) out.push(r);
}

/** The devices of one scan, with an index built on first lookup. */
export class DeviceSet {
  readonly records: readonly DeviceRecord[];
  /** Requests the scan made (pages, retries included), for benchmarks and tests. */
  readonly calls: number;
  #index: DeviceIndex | undefined;

  constructor(records: readonly DeviceRecord[], calls: number) {
    this.records = records;
    this.calls = calls;
  }

  get index(): DeviceIndex {
    return (this.#index ??= new DeviceIndex(this.records));
  }
}

/** The most precise dotted version in a string: `"macOS 14.1.2"` → `14.1.2`, `"Ubuntu 22.04.3 LTS"` → `22.04.3`. */
export function versionIn(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let best: string | undefined;
  for (const m of text.matchAll(/\d+(?:\.\d+)+|\d+/g)) {
    const v = m[0];
    if (best === undefined || v.split(".").length > best.split(".").length) best = v;
  }
  return best;
}

/** Compares dotted numeric versions: negative when `a` is older than `b`. Missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((p) => parseInt(p, 10) || 0);
  const pb = b.split(".").map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
