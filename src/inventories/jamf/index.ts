import { z } from "zod";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import { openSource } from "../../sources/device/open.ts";
import { jamfConnectionShape } from "../../sources/device/schema.ts";
import { deviceSubject, inventoryShape, passesPlatform, SubjectsOfScan } from "../common/device.ts";

// `type` is the inventory entry's own key, taken off before its config is validated.
const { type: _type, ...connection } = jamfConnectionShape;

const configSchema = z
  .object({
    ...connection,
    ...inventoryShape,
    /** Only computers in these Jamf Pro computer groups (smart or static), by name. Default all. */
    groups: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

/** Jamf Pro computers as device subjects. */
export const jamfInventory: InventoryFactory<z.output<typeof configSchema>> = {
  type: "jamf",
  description: "Computers in Jamf Pro (computers-inventory), filtered by computer group.",
  configSchema,
  create(config, ctx) {
    const lease = openSource({ ...config, type: "jamf" }, ctx);
    const made = new SubjectsOfScan<object>();
    return {
      async list(signal) {
        const scan = await (await lease.value).computers.get(config.refresh, signal);
        return made.get(scan.value, undefined, () =>
          scan.value.records
            .filter((r) => passesPlatform(r, config))
            .filter((r) => !config.groups || (r.groups ?? []).some((g) => config.groups!.includes(g)))
            .map((r) => deviceSubject(r, { attributes: { jamf_id: r.id } })),
        );
      },
      stop: async () => lease.release(),
    };
  },
};
