/**
 * Fleet (fleetdm): `GET /api/v1/fleet/hosts` page by page (`page`, `per_page`, `device_mapping` for
 * the users), and for the check the hosts failing each policy it names
 * (`policy_id` + `policy_response=failing`), plus the policy list for names and the critical flag.
 * Every call carries the API token as a bearer; 429 answers carry `retry-after`.
 */
import type { PluginContext } from "../../plugin/context.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import { staticHeader } from "../../net/api-call.ts";
import { registerSecret } from "../../util/redact.ts";
import { SharedScan } from "../common/scan.ts";
import type { Reader } from "../common/read.ts";
import { DeviceSet, intern, keysOf, platformFamily, usableSerial, usersOf, versionIn, type DeviceRecord } from "./model.ts";
import { getJson } from "./http.ts";
import type { FleetConnection } from "./schema.ts";

const MDM_PLATFORMS = new Set(["macos", "windows", "ios"]);

/** One host of the list as a record. */
export function fleetRecord(raw: unknown, r: Reader, path: string): DeviceRecord {
  const o = r.object(raw, path);
  const hostId = r.optNumber(o, "id", path);
  if (hostId === undefined || !Number.isSafeInteger(hostId) || hostId < 0) r.fail(`${path}.id`, "expected the host's numeric id");
  const hostname = r.optString(o, "hostname", path);
  const serial = usableSerial(r.optString(o, "hardware_serial", path));
  const platform = intern(platformFamily(r.optString(o, "platform", path)));
  const issues = o.issues === undefined || o.issues === null ? undefined : r.object(o.issues, `${path}.issues`);
  const mdmObj = o.mdm === undefined || o.mdm === null ? undefined : r.object(o.mdm, `${path}.mdm`);
  const mdm = mdmObj ? intern(r.optString(mdmObj, "enrollment_status", `${path}.mdm`)) : undefined;
  const geo = o.geolocation === undefined || o.geolocation === null ? undefined : r.object(o.geolocation, `${path}.geolocation`);
  const country = geo ? r.optString(geo, "country_iso", `${path}.geolocation`) : undefined;
  const mapping = o.device_mapping === undefined || o.device_mapping === null ? [] : r.array(o.device_mapping, `${path}.device_mapping`);
  const emails = mapping.map((m, i) => r.optString(r.object(m, `${path}.device_mapping[${i}]`), "email", `${path}.device_mapping[${i}]`));
  const team = intern(r.optString(o, "team_name", path));
  // An MDM platform whose enrollment is off (or pending) is not managed; other hosts run Fleet's agent, which is their management.
  const managed = platform !== undefined && MDM_PLATFORMS.has(platform) && mdm !== undefined ? mdm.toLowerCase().startsWith("on") : true;
  return {
    type: "fleet",
    id: String(hostId),
    name: r.optString(o, "display_name", path) ?? r.optString(o, "computer_name", path) ?? hostname,
    serial,
    hostname,
    keys: keysOf([r.optString(o, "uuid", path), serial, hostname]),
    users: usersOf(emails),
    platform,
    osVersion: intern(versionIn(r.optString(o, "os_version", path))),
    managed,
    observedAt: r.optTime(o, "policy_updated_at", path),
    groups: team !== undefined ? [team] : undefined,
    country: country !== undefined && /^[A-Za-z]{2}$/.test(country) ? country.toUpperCase() : undefined,
    posture: {
      kind: "fleet",
      hostId,
      failingPolicies: issues ? r.optNumber(issues, "failing_policies_count", `${path}.issues`) : undefined,
      seenAt: r.optTime(o, "seen_time", path),
      status: intern(r.optString(o, "status", path)),
      mdm,
    },
  };
}

/** A Fleet policy as the check names it. */
export interface FleetPolicy {
  readonly id: number;
  readonly name: string;
  readonly critical: boolean;
}

/** The policies a check asks about and, per policy id, the hosts failing it. */
export interface FleetPolicyResults {
  readonly policies: ReadonlyMap<number, FleetPolicy>;
  readonly failing: ReadonlyMap<number, ReadonlySet<number>>;
}

export class FleetSource {
  readonly type = "fleet";
  readonly api: ApiClient;
  readonly hosts: SharedScan<DeviceSet>;
  readonly #config: FleetConnection;
  readonly #ctx: PluginContext;
  readonly #policyScans = new Map<string, SharedScan<FleetPolicyResults>>();
  calls = 0;

  constructor(config: FleetConnection, ctx: PluginContext) {
    registerSecret(config.token);
    this.#config = config;
    this.#ctx = ctx;
    this.api = new ApiClient({ ctx: { ...ctx, name: `fleet:${config.url}` }, type: "fleet", auth: staticHeader("Authorization", `Bearer ${config.token}`), timeoutMs: config.timeout });
    this.hosts = new SharedScan((signal, deadline) => this.#listHosts(signal, deadline), { clock: ctx.clock, scanTimeoutMs: config.scan_timeout });
  }

  #get(url: string, signal: AbortSignal, deadline: number) {
    return getJson(this.api, url, {
      signal,
      deadline,
      maxResponseBytes: this.#config.max_response_bytes,
      refused: "Fleet refused the API token (check `token`; an API-only user with the observer role can read hosts and policies)",
      logger: this.#ctx.logger,
      count: () => this.calls++,
    });
  }

  /** Pages of `/api/v1/fleet/hosts` with `query`; a page shorter than `per_page` is the last. */
  async #hostPages(query: string, signal: AbortSignal, deadline: number, each: (host: unknown, r: Reader, path: string) => void): Promise<number> {
    const per = this.#config.per_page;
    let total = 0;
    for (let page = 0; ; page++) {
      const url = `${this.#config.url}/api/v1/fleet/hosts?page=${page}&per_page=${per}&order_key=id&order_direction=asc${query}`;
      const { body, reader } = await this.#get(url, signal, deadline);
      const hosts = reader.array(body.hosts, "$.hosts");
      total += hosts.length;
      if (total > this.#config.max_devices) reader.fail("$.hosts", `more than ${this.#config.max_devices} hosts (raise max_devices if that is right)`);
      hosts.forEach((h, i) => each(h, reader, `$.hosts[${i}]`));
      if (hosts.length < per) return total;
    }
  }

  async #listHosts(signal: AbortSignal, deadline: number): Promise<DeviceSet> {
    const before = this.calls;
    const records: DeviceRecord[] = [];
    await this.#hostPages("&device_mapping=true", signal, deadline, (h, r, path) => records.push(fleetRecord(h, r, path)));
    return new DeviceSet(records, this.calls - before);
  }

  /**
   * Failing hosts of the named policies (`ids`), or of every critical global policy (`"critical"`):
   * one paged list per policy, plus the policy list for names. Held per selection.
   */
  policyResults(selection: readonly number[] | "critical"): SharedScan<FleetPolicyResults> {
    const key = selection === "critical" ? "critical" : [...selection].sort((a, b) => a - b).join(",");
    let scan = this.#policyScans.get(key);
    if (!scan) {
      scan = new SharedScan(async (signal, deadline) => {
        const { body, reader } = await this.#get(`${this.#config.url}/api/v1/fleet/global/policies`, signal, deadline);
        const known = new Map<number, FleetPolicy>();
        reader.array(body.policies, "$.policies").forEach((p, i) => {
          const path = `$.policies[${i}]`;
          const o = reader.object(p, path);
          const id = reader.optNumber(o, "id", path);
          if (id === undefined || !Number.isSafeInteger(id)) return reader.fail(`${path}.id`, "expected the policy's numeric id");
          known.set(id, { id, name: reader.optString(o, "name", path) ?? `policy ${id}`, critical: reader.optBoolean(o, "critical", path) ?? false });
        });
        // Named policies may be team policies, which the global list does not hold: they keep a plain name.
        const ids = selection === "critical" ? [...known.values()].filter((p) => p.critical).map((p) => p.id) : selection;
        const policies = new Map(ids.map((id) => [id, known.get(id) ?? { id, name: `policy ${id}`, critical: false }]));
        const failing = new Map<number, Set<number>>();
        for (const id of ids) {
          const hosts = new Set<number>();
          await this.#hostPages(`&policy_id=${id}&policy_response=failing`, signal, deadline, (h, r, path) => {
            const hostId = r.optNumber(r.object(h, path), "id", path);
            if (hostId === undefined) return r.fail(`${path}.id`, "expected the host's numeric id");
            hosts.add(hostId);
          });
          failing.set(id, hosts);
        }
        return { policies, failing };
      }, { clock: this.#ctx.clock, scanTimeoutMs: this.#config.scan_timeout });
      this.#policyScans.set(key, scan);
    }
    return scan;
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}
