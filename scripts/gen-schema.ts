// Writes config/schema.json from the zod schema (npm run schema). A test keeps them equal.
import { writeFileSync } from "node:fs";
import { configJsonSchema } from "../src/config/json-schema.ts";

writeFileSync(new URL("../config/schema.json", import.meta.url), JSON.stringify(configJsonSchema(), null, 2) + "\n");
