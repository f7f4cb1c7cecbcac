import { z } from "zod";
import { subjectSchema } from "../../plugin/schema.ts";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import type { Subject } from "../../policy/model.ts";

const configSchema = z.object({ subjects: z.array(subjectSchema).default([]) }).strict();

/** Subjects written in the config itself. */
export const staticInventory: InventoryFactory<z.infer<typeof configSchema>> = {
  type: "static",
  description: "Subjects listed in the config file.",
  configSchema,
  create(config) {
    const subjects: Subject[] = config.subjects;
    return { list: async () => subjects };
  },
};
