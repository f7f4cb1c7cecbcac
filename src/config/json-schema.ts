import { z } from "zod";
import { configSchema } from "./schema.ts";

/** The JSON Schema of the config file (input form: durations as strings), for editors. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Record<string, unknown>;
  return {
    ...schema,
    $id: "https://vigil.dev/schema/vigil.schema.json",
    title: "vigil configuration",
    description: "Configuration of the vigil continuous verification agent. Plugin sections (checks.<name>, enforcement actions, inventories) are validated further by each plugin at load time.",
  };
}
