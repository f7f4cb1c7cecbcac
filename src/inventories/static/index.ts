import { z } from "zod";
import { subjectSchema } from "../../plugin/schema.ts";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import type { Subject } from "../../policy/model.ts";

/**
 * Most subjects one static inventory lists. Reading a subject from the config document costs far
 * more than from a file inventory (the YAML document model keeps every node with its position, so
 * 5,000 inline subjects took ~170 MiB to validate): past a few hundred, a file inventory is the way.
 */
export const MAX_INLINE_SUBJECTS = 1_000;

const configSchema = z
  .object({
    subjects: z
      .array(subjectSchema)
      .max(MAX_INLINE_SUBJECTS, {
        message: `at most ${MAX_INLINE_SUBJECTS} subjects can be listed inline: list them in a file inventory instead ({type: file, path: subjects.json}, JSON or YAML), which reads them without the config document's memory cost`,
      })
      .default([]),
  })
  .strict();

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
