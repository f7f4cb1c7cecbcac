/**
 * What the device inventories (Intune, Fleet, Jamf) share: a device record as a subject, the filters
 * they all take, and a listing that reuses the scan the check of the same source makes.
 *
 * Subjects: id `<source>:<id>` (unique across sources), kind `device`, identity the device name;
 * labels `source`, `platform` and the source's grouping (Intune `owner`/`category`, Fleet `team`);
 * attributes the perimeter checks and device_compliance read: `device_id` (= the id), `managed`,
 * `country` where the source knows it, `serial_number`, `user` (first user), `os_version`, and the
 * source's own ids.
 */
import { z } from "zod";
import type { Subject } from "../../policy/model.ts";
import type { DeviceRecord } from "../../sources/device/model.ts";
import { boundedDuration } from "../../plugin/schema.ts";

/** Keys every device inventory takes besides its connection. */
export const inventoryShape = {
  /** Only devices of these platforms (`windows`, `macos`, `ios`, `android`, `linux`, a Linux distribution id). Default all. */
  platforms: z.array(z.string().min(1).transform((s) => s.toLowerCase())).optional(),
  /**
   * A scan younger than this is reused (the inventory is listed before every policy tick, so it
   * refreshes on the policy interval; this only joins ticks that come together). Default `30s`.
   */
  refresh: boundedDuration({ min: 1_000, fallback: "30s", message: 'expected a duration of at least 1s, like "30s"' }),
};

export interface InventoryFilter {
  readonly platforms?: readonly string[];
}

export function passesPlatform(r: DeviceRecord, f: InventoryFilter): boolean {
  return !f.platforms || (r.platform !== undefined && f.platforms.includes(r.platform));
}

/** A device record as a subject. `extra` adds the source's own labels and attributes. */
export function deviceSubject(r: DeviceRecord, extra: { labels?: Record<string, string>; attributes?: Record<string, unknown> } = {}): Subject {
  const id = `${r.type}:${r.id}`;
  const labels: Record<string, string> = r.platform ? { source: r.type, platform: r.platform, ...extra.labels } : { source: r.type, ...extra.labels };
  // One attribute shape for every device of a scan (absent values are undefined, which reads as missing).
  const attributes: Record<string, unknown> = {
    device_id: id,
    managed: r.managed,
    country: r.country,
    serial_number: r.serial,
    user: r.users[0],
    users: r.users.length > 1 ? r.users : undefined,
    os_version: r.osVersion,
    groups: r.groups,
    ...extra.attributes,
  };
  return { id, kind: "device", identity: r.name ?? r.id, labels, attributes };
}

/**
 * Subjects made once per scan: listing again before the next scan returns the same list, so a tick
 * does not rebuild a hundred thousand subjects it already has.
 */
export class SubjectsOfScan<S extends object> {
  #scan: S | undefined;
  #extra: unknown;
  #subjects: Subject[] = [];

  get(scan: S, extra: unknown, make: () => Subject[]): Subject[] {
    if (scan !== this.#scan || extra !== this.#extra) {
      this.#subjects = make();
      this.#scan = scan;
      this.#extra = extra;
    }
    return this.#subjects;
  }
}
