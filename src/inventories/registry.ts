import { defineInventory, type AnyInventoryFactory } from "../plugin/inventory.ts";
import { staticInventory } from "./static/index.ts";
import { fileInventory } from "./file/index.ts";
import { intuneInventory } from "./intune/index.ts";
import { fleetInventory } from "./fleet/index.ts";
import { jamfInventory } from "./jamf/index.ts";
import { entraInventory } from "./entra/index.ts";
import { oktaInventory } from "./okta/index.ts";

/** Built-in inventories. Add a folder and one line here. */
export const builtinInventories: readonly AnyInventoryFactory[] = [
  defineInventory(staticInventory),
  defineInventory(fileInventory),
  defineInventory(intuneInventory),
  defineInventory(fleetInventory),
  defineInventory(jamfInventory),
  defineInventory(entraInventory),
  defineInventory(oktaInventory),
];
