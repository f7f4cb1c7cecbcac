import type { InventoryFactory } from "../plugin/inventory.ts";
import { staticInventory } from "./static/index.ts";
import { fileInventory } from "./file/index.ts";

/** Built-in inventories. Add a folder and one line here. */
export const builtinInventories: readonly InventoryFactory<never>[] = [staticInventory, fileInventory] as unknown as readonly InventoryFactory<never>[];
