import { z } from "zod";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import { openSource } from "../../sources/device/open.ts";
import { intuneConnectionShape } from "../../sources/device/schema.ts";
import { GUID_RE } from "../../sources/graph/config.ts";
import { deviceSubject, inventoryShape, passesPlatform, SubjectsOfScan } from "../common/device.ts";

// `type` is the inventory entry's own key, taken off before its config is validated.
const { type: _type, ...connection } = intuneConnectionShape;

const configSchema = z
  .object({
    ...connection,
    ...inventoryShape,
    /** Only devices that are (transitive) members of these Entra device groups, by object id. Needs `GroupMember.Read.All` and `Device.Read.All`. */
    groups: z.array(z.string().regex(GUID_RE, { error: "expected a group's object id, a GUID" })).min(1).optional(),
    /** Only devices of these ownerships (`company`, `personal`). Default all. */
    ownership: z.array(z.enum(["company", "personal", "unknown"])).min(1).optional(),
  })
  .strict();

/** Intune managed devices (Microsoft Graph) as device subjects. */
export const intuneInventory: InventoryFactory<z.output<typeof configSchema>> = {
  type: "intune",
  description: "Devices managed by Microsoft Intune (Graph managedDevices), filtered by platform, ownership or Entra device group.",
  configSchema,
  create(config, ctx) {
    const lease = openSource({ ...config, type: "intune" }, ctx);
    const made = new SubjectsOfScan<object>();
    return {
      async list(signal) {
        const src = await lease.value;
        const scan = await src.devices.get(config.refresh, signal);
        const members = config.groups ? (await src.groupMembers(config.groups).get(config.refresh, signal)).value : undefined;
        return made.get(scan.value, members, () =>
          scan.value.records
            .filter((r) => passesPlatform(r, config))
            .filter((r) => r.posture.kind !== "intune" || !config.ownership || config.ownership.includes((r.posture.owner ?? "unknown") as "unknown"))
            .filter((r) => !members || r.keys.some((k) => members.has(k)))
            .map((r) => {
              const p = r.posture.kind === "intune" ? r.posture : undefined;
              return deviceSubject(r, {
                labels: { ...(p?.owner ? { owner: p.owner } : {}), ...(p?.category ? { category: p.category } : {}) },
                attributes: { intune_device_id: r.id, azure_ad_device_id: p?.entraDeviceId, compliance_state: p?.compliance },
              });
            }),
        );
      },
      stop: async () => lease.release(),
    };
  },
};
