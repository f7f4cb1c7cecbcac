import type { ActionFactory } from "./contract.ts";
import { logAction } from "./log/index.ts";
import { webhookAction } from "./webhook/index.ts";

/** Built-in action plugins. Add a folder and one line here. */
export const builtinActions: readonly ActionFactory<never>[] = [logAction, webhookAction] as unknown as readonly ActionFactory<never>[];
