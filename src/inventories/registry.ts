import { defineInventory, type AnyInventoryFactory } from "../plugin/inventory.ts";
import { staticInventory } from "./static/index.ts";
import { fileInventory } from "./file/index.ts";

/** Built-in inventories. Add a folder and one line here. */
export const builtinInventories: readonly AnyInventoryFactory[] = [defineInventory(staticInventory), defineInventory(fileInventory)];
