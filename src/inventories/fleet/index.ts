import { z } from "zod";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import { openSource } from "../../sources/device/open.ts";
import { fleetConnectionShape } from "../../sources/device/schema.ts";
import { deviceSubject, inventoryShape, passesPlatform, SubjectsOfScan } from "../common/device.ts";

// `type` is the inventory entry's own key, taken off before its config is validated.
const { type: _type, ...connection } = fleetConnectionShape;

const configSchema = z
  .object({
    ...connection,
    ...inventoryShape,
    /** Only hosts of these Fleet teams, by name. Default all. */
    teams: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

/** Fleet hosts as device subjects. */
export const fleetInventory: InventoryFactory<z.output<typeof configSchema>> = {
  type: "fleet",
  description: "Hosts enrolled in Fleet (fleetdm), filtered by platform or team.",
  configSchema,
  create(config, ctx) {
    const lease = openSource({ ...config, type: "fleet" }, ctx);
    const made = new SubjectsOfScan<object>();
    return {
      async list(signal) {
        const scan = await (await lease.value).hosts.get(config.refresh, signal);
        return made.get(scan.value, undefined, () =>
          scan.value.records
            .filter((r) => passesPlatform(r, config))
            .filter((r) => !config.teams || (r.groups ?? []).some((t) => config.teams!.includes(t)))
            .map((r) =>
              deviceSubject(r, {
                labels: r.groups?.[0] ? { team: r.groups[0] } : {},
                attributes: { fleet_host_id: Number(r.id), hostname: r.hostname },
              }),
            ),
        );
      },
      stop: async () => lease.release(),
    };
  },
};
