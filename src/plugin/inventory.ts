import type { z } from "zod";
import type { Subject } from "../policy/model.ts";
import type { PluginContext } from "./context.ts";
import { configure, type Configured } from "./configured.ts";

export interface Inventory {
  /** Current subjects. Called on start, on every reload and before each scheduled tick. */
  list(signal: AbortSignal): Promise<Subject[]>;
  /** Lets go of what the inventory holds (shared caches); called when its configuration is replaced or the agent stops. */
  stop?(): Promise<void>;
}

export interface InventoryFactory<C = unknown> {
  readonly type: string;
  readonly description: string;
  readonly configSchema: z.ZodType<C>;
  // A property, not a method, so C is checked both ways: a factory of one config type is not one of another.
  readonly create: (config: C, ctx: PluginContext) => Inventory;
}

/** An inventory factory with its config type hidden, as the registry holds it (see `defineInventory`). */
export interface AnyInventoryFactory {
  readonly type: string;
  readonly description: string;
  /** Validates an `inventories[]` entry (without `type`) with the factory's own schema and binds create() to the result. */
  configure(raw: unknown): Configured<PluginContext, Inventory>;
}

/** Hides an inventory factory's config type for the registry; its create() still receives only what its schema produced. */
export function defineInventory<C>(f: InventoryFactory<C>): AnyInventoryFactory {
  return { type: f.type, description: f.description, configure: (raw) => configure(f.configSchema, (config, ctx) => f.create(config, ctx), raw) };
}
