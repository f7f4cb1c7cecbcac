/**
 * Jamf Pro: an API client's OAuth client credentials (`POST /api/oauth/token`; tokens live about ten
 * minutes and are renewed a minute before they expire, or at once when Jamf refuses one), then
 * `GET /api/v1/computers-inventory` page by page with only the sections vigil reads. The FileVault
 * recovery-key endpoints are never called.
 */
import type { PluginContext } from "../../plugin/context.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import { ClientCredentials } from "../../net/oauth.ts";
import { SharedScan } from "../common/scan.ts";
import type { Reader } from "../common/read.ts";
import { DeviceSet, intern, keysOf, usableSerial, usersOf, versionIn, type DeviceRecord } from "./model.ts";
import { getJson } from "./http.ts";
import type { JamfConnection } from "./schema.ts";

/** Inventory sections read: identity and check-in (GENERAL), FileVault, serial, OS, user, firewall, groups. */
export const JAMF_SECTIONS = ["GENERAL", "DISK_ENCRYPTION", "HARDWARE", "OPERATING_SYSTEM", "USER_AND_LOCATION", "SECURITY", "GROUP_MEMBERSHIPS"] as const;

function section(r: Reader, o: Record<string, unknown>, key: string, path: string): Record<string, unknown> | undefined {
  const v = o[key];
  return v === undefined || v === null ? undefined : r.object(v, `${path}.${key}`);
}

/** One computer of the inventory as a record. */
export function jamfRecord(raw: unknown, r: Reader, path: string): DeviceRecord {
  const o = r.object(raw, path);
  const id = r.id(o, "id", path);
  const general = section(r, o, "general", path);
  const gp = `${path}.general`;
  const remote = general ? section(r, general, "remoteManagement", gp) : undefined;
  const hardware = section(r, o, "hardware", path);
  const os = section(r, o, "operatingSystem", path);
  const user = section(r, o, "userAndLocation", path);
  const security = section(r, o, "security", path);
  const disk = section(r, o, "diskEncryption", path);
  const boot = disk ? section(r, disk, "bootPartitionEncryptionDetails", `${path}.diskEncryption`) : undefined;
  const groups = o.groupMemberships === undefined || o.groupMemberships === null ? [] : r.array(o.groupMemberships, `${path}.groupMemberships`);
  const groupNames = groups.map((g, i) => r.optString(r.object(g, `${path}.groupMemberships[${i}]`), "groupName", `${path}.groupMemberships[${i}]`)).filter((g): g is string => g !== undefined);
  const serial = usableSerial(hardware ? r.optString(hardware, "serialNumber", `${path}.hardware`) : undefined);
  const name = general ? r.optString(general, "name", gp) : undefined;
  const osVersion = os ? versionIn(r.optString(os, "version", `${path}.operatingSystem`)) : undefined;
  const managed = remote ? r.optBoolean(remote, "managed", `${gp}.remoteManagement`) : undefined;
  const supervised = general ? r.optBoolean(general, "supervised", gp) : undefined;
  const observedAt = general ? r.optTime(general, "lastContactTime", gp) : undefined;
  const reportAt = general ? r.optTime(general, "reportDate", gp) : undefined;
  const fileVault = boot ? r.optString(boot, "partitionFileVault2State", `${path}.diskEncryption.bootPartitionEncryptionDetails`) : undefined;
  const firewall = security ? r.optBoolean(security, "firewallEnabled", `${path}.security`) : undefined;
  const email = user ? r.optString(user, "email", `${path}.userAndLocation`) : undefined;
  const username = user ? r.optString(user, "username", `${path}.userAndLocation`) : undefined;
  return {
    type: "jamf",
    id,
    name,
    serial,
    hostname: undefined,
    keys: keysOf([r.optString(o, "udid", path), serial]),
    users: usersOf([email, username]),
    platform: "macos",
    osVersion: intern(osVersion),
    managed,
    observedAt,
    groups: groupNames.length > 0 ? groupNames.map(intern) : undefined,
    country: undefined,
    posture: { kind: "jamf", managed, supervised, fileVault: intern(fileVault), firewall, reportAt },
  };
}

export class JamfSource {
  readonly type = "jamf";
  readonly api: ApiClient;
  readonly credentials: ClientCredentials;
  readonly computers: SharedScan<DeviceSet>;
  readonly #config: JamfConnection;
  readonly #ctx: PluginContext;
  calls = 0;

  constructor(config: JamfConnection, ctx: PluginContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.credentials = new ClientCredentials({
      tokenUrl: `${config.url}/api/oauth/token`,
      clientId: config.client_id,
      auth: { method: "client_secret_post", client_secret: config.client_secret },
      scope: "",
      http: ctx.http,
      clock: ctx.clock,
      timeoutMs: config.timeout,
    });
    this.api = new ApiClient({ ctx: { ...ctx, name: `jamf:${config.url}` }, type: "jamf", auth: this.credentials, timeoutMs: config.timeout });
    this.computers = new SharedScan((signal, deadline) => this.#list(signal, deadline), { clock: ctx.clock, scanTimeoutMs: config.scan_timeout });
  }

  async #list(signal: AbortSignal, deadline: number): Promise<DeviceSet> {
    const before = this.calls;
    const records: DeviceRecord[] = [];
    const size = this.#config.page_size;
    const sections = JAMF_SECTIONS.map((s) => `section=${s}`).join("&");
    for (let page = 0; ; page++) {
      const url = `${this.#config.url}/api/v1/computers-inventory?${sections}&page=${page}&page-size=${size}&sort=id%3Aasc`;
      const { body, reader } = await getJson(this.api, url, {
        signal,
        deadline,
        maxResponseBytes: this.#config.max_response_bytes,
        refused: "Jamf Pro refused the API client (check client_id and client_secret, and that its API role grants Read Computers)",
        logger: this.#ctx.logger,
        count: () => this.calls++,
      });
      const total = reader.optNumber(body, "totalCount", "$");
      const results = reader.array(body.results, "$.results");
      if (records.length + results.length > this.#config.max_devices) reader.fail("$.results", `more than ${this.#config.max_devices} computers (raise max_devices if that is right)`);
      results.forEach((c, i) => records.push(jamfRecord(c, reader, `$.results[${i}]`)));
      if (results.length < size || (total !== undefined && records.length >= total)) break;
    }
    return new DeviceSet(records, this.calls - before);
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}
