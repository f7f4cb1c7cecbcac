/**
 * Built-in inventories, each imported only when a configuration lists one of its type (or when every
 * one is asked for: an unknown type's error lists them all), so an agent reading a static list does
 * not carry the device-management or identity-provider clients.
 */
import { defineInventory, type AnyInventoryFactory } from "../plugin/inventory.ts";

/** Built-in inventory types and how to load each. Add a folder and one line here. */
const FOLDERS: Readonly<Record<string, () => Promise<AnyInventoryFactory>>> = {
  static: () => import("./static/index.ts").then((m) => defineInventory(m.staticInventory)),
  file: () => import("./file/index.ts").then((m) => defineInventory(m.fileInventory)),
  intune: () => import("./intune/index.ts").then((m) => defineInventory(m.intuneInventory)),
  fleet: () => import("./fleet/index.ts").then((m) => defineInventory(m.fleetInventory)),
  jamf: () => import("./jamf/index.ts").then((m) => defineInventory(m.jamfInventory)),
  entra: () => import("./entra/index.ts").then((m) => defineInventory(m.entraInventory)),
  okta: () => import("./okta/index.ts").then((m) => defineInventory(m.oktaInventory)),
};

/** The built-in inventory types. */
export const BUILTIN_INVENTORY_TYPES: readonly string[] = Object.keys(FOLDERS);

/** Loads the built-in inventories of the given types (unknown ones are skipped), or all of them. */
export async function loadInventories(types?: Iterable<string>): Promise<AnyInventoryFactory[]> {
  const wanted = types === undefined ? BUILTIN_INVENTORY_TYPES : BUILTIN_INVENTORY_TYPES.filter((t) => new Set(types).has(t));
  return Promise.all(wanted.map((t) => FOLDERS[t]!()));
}
