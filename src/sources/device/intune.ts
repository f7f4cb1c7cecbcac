/**
 * Microsoft Intune through Graph: `GET /deviceManagement/managedDevices` with `$select` and `$top`,
 * every page through `@odata.nextLink` (one request per page, however many devices), and, for the
 * check, the tenant's "Mark devices with no compliance policy assigned as" setting
 * (`deviceManagement.settings.secureByDefault`), one request per scan.
 */
import type { PluginContext } from "../../plugin/context.ts";
import { SharedScan } from "../common/scan.ts";
import { Reader } from "../common/read.ts";
import { GraphClient } from "../graph/client.ts";
import { DeviceSet, intern, keysOf, lower, platformFamily, usableSerial, usersOf, type DeviceRecord } from "./model.ts";
import type { IntuneConnection } from "./schema.ts";

/** What vigil reads of each managed device; nothing else is fetched. */
export const INTUNE_SELECT = [
  "id",
  "deviceName",
  "userPrincipalName",
  "emailAddress",
  "azureADDeviceId",
  "serialNumber",
  "operatingSystem",
  "osVersion",
  "complianceState",
  "complianceGracePeriodExpirationDateTime",
  "lastSyncDateTime",
  "isEncrypted",
  "jailBroken",
  "partnerReportedThreatState",
  "managementAgent",
  "managedDeviceOwnerType",
  "deviceCategoryDisplayName",
] as const;

/** Application permission of the device list (least privileged). */
export const INTUNE_DEVICES_PERMISSION = "DeviceManagementManagedDevices.Read.All";
/** Application permission of the tenant's compliance settings. */
export const INTUNE_SETTINGS_PERMISSION = "DeviceManagementConfiguration.Read.All";
/** Application permissions of device-group memberships (inventory `groups` filter). */
export const INTUNE_GROUPS_PERMISSION = "GroupMember.Read.All and Device.Read.All";

/** Entra's id for "no Entra device". */
const NO_DEVICE_ID = "00000000-0000-0000-0000-000000000000";

/** One managedDevice as a record; refuses a device whose fields have the wrong types. */
export function intuneRecord(raw: unknown, r: Reader, path: string): DeviceRecord {
  const o = r.object(raw, path);
  const id = r.string(o, "id", path);
  const rawEntraId = r.optString(o, "azureADDeviceId", path);
  const entraId = rawEntraId === undefined || rawEntraId === NO_DEVICE_ID ? undefined : lower(rawEntraId);
  const serial = usableSerial(r.optString(o, "serialNumber", path));
  const agent = intern(r.optString(o, "managementAgent", path));
  const observedAt = r.optTime(o, "lastSyncDateTime", path);
  const compliance = intern(r.string(o, "complianceState", path));
  // Graph reports a far-future deadline for devices not in a grace period: kept only where it means something.
  const graceUntil = r.optTime(o, "complianceGracePeriodExpirationDateTime", path);
  // Every record has every field (undefined when absent): one object shape for a hundred thousand records.
  return {
    type: "intune",
    id,
    name: r.optString(o, "deviceName", path),
    serial,
    hostname: undefined,
    keys: keysOf([id, entraId, serial]),
    users: usersOf([r.optString(o, "userPrincipalName", path), r.optString(o, "emailAddress", path)]),
    platform: intern(platformFamily(r.optString(o, "operatingSystem", path))),
    osVersion: intern(r.optString(o, "osVersion", path)),
    // Exchange ActiveSync alone is mail access, not device management.
    managed: agent === undefined || (agent !== "eas" && agent !== "unknown"),
    observedAt,
    groups: undefined,
    country: undefined,
    posture: {
      kind: "intune",
      compliance,
      graceUntil: compliance === "inGracePeriod" ? graceUntil : undefined,
      encrypted: r.optBoolean(o, "isEncrypted", path),
      jailBroken: intern(r.optString(o, "jailBroken", path)),
      threat: intern(r.optString(o, "partnerReportedThreatState", path)),
      agent,
      owner: intern(r.optString(o, "managedDeviceOwnerType", path)),
      category: intern(r.optString(o, "deviceCategoryDisplayName", path)),
      entraDeviceId: entraId,
    },
  };
}

/** The tenant-wide compliance settings the check needs. */
export interface IntuneSettings {
  /** `secureByDefault`: true when devices without a compliance policy are marked noncompliant. */
  readonly secureByDefault?: boolean;
}

export class IntuneSource {
  readonly type = "intune";
  readonly graph: GraphClient;
  readonly devices: SharedScan<DeviceSet>;
  readonly settings: SharedScan<IntuneSettings>;
  readonly #config: IntuneConnection;
  readonly #ctx: PluginContext;
  readonly #groups = new Map<string, SharedScan<ReadonlySet<string>>>();

  constructor(config: IntuneConnection, ctx: PluginContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.graph = new GraphClient({ app: config, ctx, name: `intune:${config.tenant_id}`, timeoutMs: config.timeout, maxResponseBytes: config.max_response_bytes });
    const scan = { clock: ctx.clock, scanTimeoutMs: config.scan_timeout };
    this.devices = new SharedScan((signal, deadline) => this.#listDevices(signal, deadline), scan);
    this.settings = new SharedScan((signal, deadline) => this.#readSettings(signal, deadline), scan);
  }

  async #listDevices(signal: AbortSignal, deadline: number): Promise<DeviceSet> {
    const before = this.graph.calls;
    const records: DeviceRecord[] = [];
    const pages = this.graph.pages(
      "/deviceManagement/managedDevices",
      { select: INTUNE_SELECT, top: this.#config.page_size },
      { signal, deadline, permission: INTUNE_DEVICES_PERMISSION, maxItems: this.#config.max_devices },
    );
    let page = 0;
    for await (const value of pages) {
      const r = new Reader(`GET ${this.#config.graph_url}/deviceManagement/managedDevices (page ${++page})`);
      for (let i = 0; i < value.length; i++) records.push(intuneRecord(value[i], r, `$.value[${i}]`));
    }
    return new DeviceSet(records, this.graph.calls - before);
  }

  async #readSettings(signal: AbortSignal, deadline: number): Promise<IntuneSettings> {
    const url = this.graph.url("/deviceManagement", { select: ["settings"] });
    const body = await this.graph.get(url, { signal, deadline, permission: INTUNE_SETTINGS_PERMISSION });
    const r = new Reader(`GET ${url}`);
    if (body.settings === undefined || body.settings === null) return {};
    const s = r.object(body.settings, "$.settings");
    const secureByDefault = r.optBoolean(s, "secureByDefault", "$.settings");
    return secureByDefault !== undefined ? { secureByDefault } : {};
  }

  /**
   * The Entra device ids (`azureADDeviceId`) of the transitive device members of these groups, one
   * paged walk per group and scan. Held per group list, so an inventory's filter is fetched once.
   */
  groupMembers(groupIds: readonly string[]): SharedScan<ReadonlySet<string>> {
    const key = [...groupIds].sort().join(",");
    let scan = this.#groups.get(key);
    if (!scan) {
      scan = new SharedScan(async (signal, deadline) => {
        const ids = new Set<string>();
        for (const group of groupIds) {
          const pages = this.graph.pages(
            `/groups/${encodeURIComponent(group)}/transitiveMembers/microsoft.graph.device`,
            { select: ["id", "deviceId"], top: 999 },
            { signal, deadline, permission: INTUNE_GROUPS_PERMISSION, maxItems: this.#config.max_devices },
          );
          for await (const value of pages) {
            const r = new Reader(`GET ${this.#config.graph_url}/groups/${group}/transitiveMembers/microsoft.graph.device`);
            value.forEach((raw, i) => {
              const deviceId = r.optString(r.object(raw, `$.value[${i}]`), "deviceId", `$.value[${i}]`);
              if (deviceId !== undefined) ids.add(deviceId.toLowerCase());
            });
          }
        }
        return ids;
      }, { clock: this.#ctx.clock, scanTimeoutMs: this.#config.scan_timeout });
      this.#groups.set(key, scan);
    }
    return scan;
  }

  async close(): Promise<void> {
    await this.graph.close();
  }
}
