/**
 * The API's bearer token when `agent.api.token` is not configured: generated once into
 * `<data_dir>/api-token` (mode 0600) and read back on every later start, so clients on the host
 * keep working across restarts.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../telemetry/log.ts";
import { registerSecret } from "../util/redact.ts";

/** File name of the generated token inside `data_dir`. */
export const API_TOKEN_FILE = "api-token";

/** The token in `<dataDir>/api-token`, created (32 random bytes, base64url) when the file cannot be read. Registered as a secret. */
export function generatedApiToken(dataDir: string, logger: Logger): string {
  const file = join(dataDir, API_TOKEN_FILE);
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch {
    token = randomBytes(32).toString("base64url");
    writeFileSync(file, token + "\n", { mode: 0o600 });
  }
  registerSecret(token);
  logger.info({ token_file: file }, "agent.api.token is not set; using the token in token_file");
  return token;
}
