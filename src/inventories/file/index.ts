import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { parse } from "yaml";
import { subjectSchema } from "../../plugin/schema.ts";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import type { Subject } from "../../policy/model.ts";
import { VigilError } from "../../errors.ts";

const configSchema = z
  .object({
    /** JSON or YAML file holding a list of subjects (or `{subjects: [...]}`). Relative to the config file. */
    path: z.string().min(1),
    /** Largest file accepted. Default 64 MiB. */
    max_bytes: z.number().int().min(1).default(64 * 1024 * 1024),
  })
  .strict();

const fileSchema = z.union([z.array(subjectSchema), z.object({ subjects: z.array(subjectSchema) }).strict().transform((f) => f.subjects)]);

/** Subjects from a file that other tooling writes; re-read whenever its modification time changes. */
export const fileInventory: InventoryFactory<z.infer<typeof configSchema>> = {
  type: "file",
  description: "Subjects from a JSON or YAML file, re-read when it changes.",
  configSchema,
  create(config, ctx) {
    const path = resolve(ctx.configDir, config.path);
    let cached: { mtimeMs: number; size: number; subjects: Subject[] } | undefined;
    return {
      async list() {
        const st = await stat(path).catch((err: unknown) => {
          throw new VigilError("VIGIL_ERR_CONFIG_READ", `inventory file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
        });
        if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.subjects;
        if (st.size > config.max_bytes) throw new VigilError("VIGIL_ERR_CONFIG_READ", `inventory file ${path} is larger than max_bytes (${config.max_bytes})`);
        const text = await readFile(path, "utf8");
        const parsed = fileSchema.safeParse(path.endsWith(".json") ? JSON.parse(text) : parse(text));
        if (!parsed.success) {
          const first = parsed.error.issues[0];
          throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `inventory file ${path}: ${first?.path.join(".")}: ${first?.message}`);
        }
        cached = { mtimeMs: st.mtimeMs, size: st.size, subjects: parsed.data };
        return cached.subjects;
      },
    };
  },
};
