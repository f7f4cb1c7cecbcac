import type { z } from "zod";
import type { Subject } from "../policy/model.ts";
import type { PluginContext } from "./context.ts";

export interface Inventory {
  /** Current subjects. Called on start, on every reload and before each scheduled tick. */
  list(signal: AbortSignal): Promise<Subject[]>;
}

export interface InventoryFactory<C = unknown> {
  readonly type: string;
  readonly description: string;
  readonly configSchema: z.ZodType<C>;
  create(config: C, ctx: PluginContext): Inventory;
}
