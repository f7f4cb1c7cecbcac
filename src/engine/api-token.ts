/**
 * The API's bearer token when `agent.api.token` is not configured: generated once into
 * `<data_dir>/api-token` (mode 0600) and read back on every later start, so clients on the host
 * keep working across restarts.
 *
 * The file is held to what a configured token must be: at least 16 characters, one line, and
 * readable by this user only. A missing or empty file (a crash between create and write, a
 * truncating editor) gets a fresh token; anything else that is wrong stops the start with
 * VIGIL_ERR_CONFIG_INVALID (exit 2) rather than being repaired silently: a token others could read
 * may already be known, and a token an operator wrote must not be replaced behind their back.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VigilError } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import { registerSecret } from "../util/redact.ts";

/** File name of the generated token inside `data_dir`. */
export const API_TOKEN_FILE = "api-token";
/** As for `agent.api.token`. */
export const MIN_API_TOKEN_LENGTH = 16;
/** A token file larger than this is not a token. */
const MAX_TOKEN_FILE_BYTES = 4096;

/**
 * The token in `<dataDir>/api-token`: created (32 random bytes, base64url) when the file is missing
 * or empty, validated otherwise. Registered as a secret. Throws VIGIL_ERR_CONFIG_INVALID when the
 * file is readable or writable by group or others, holds a token shorter than 16 characters or
 * more than one line, or is not a regular file.
 */
export function generatedApiToken(dataDir: string, logger: Logger): string {
  const file = join(dataDir, API_TOKEN_FILE);
  const existing = readTokenFile(file);
  let token: string;
  if (existing === undefined || existing.text.trim() === "") {
    token = randomBytes(32).toString("base64url");
    writeToken(file, token);
    if (existing !== undefined) logger.warn({ token_file: file }, "the API token file was empty; generated a new token");
  } else {
    if ((existing.mode & 0o077) !== 0) {
      throw refuse(
        `${file} is accessible to group or others (mode ${(existing.mode & 0o777).toString(8).padStart(4, "0")}), so the API token may already be known beyond this user; ` +
          `run chmod 600 ${file} if it is not, or delete the file to have a new token generated`,
      );
    }
    token = existing.text.trim();
    if (/[\s\p{Cc}]/u.test(token)) throw refuse(`${file} must hold the token on one line, without spaces or control characters; delete it to have a new token generated`);
    if (token.length < MIN_API_TOKEN_LENGTH) {
      throw refuse(`${file} holds a token of ${token.length} characters; at least ${MIN_API_TOKEN_LENGTH} are required (as for agent.api.token); delete it to have a new token generated`);
    }
  }
  registerSecret(token);
  logger.info({ token_file: file }, "agent.api.token is not set; using the token in token_file");
  return token;
}

function refuse(message: string): VigilError {
  return new VigilError("VIGIL_ERR_CONFIG_INVALID", message);
}

/** The file's text and mode, or undefined when it does not exist. O_NOFOLLOW: a planted symlink is not followed. */
function readTokenFile(file: string): { text: string; mode: number } | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw refuse(`cannot read the API token file ${file}: ${code === "ELOOP" ? "it is a symbolic link" : (code ?? String(err))}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(`the API token file ${file} is not a regular file`);
    if (st.size > MAX_TOKEN_FILE_BYTES) throw refuse(`the API token file ${file} is larger than ${MAX_TOKEN_FILE_BYTES} bytes; it does not hold a token`);
    return { text: readFileSync(fd, "utf8"), mode: st.mode };
  } finally {
    closeSync(fd);
  }
}

/** Writes a new token with mode 0600 from the start, replacing the file in one step. */
function writeToken(file: string, token: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, token + "\n", { mode: 0o600, flag: "wx" });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new VigilError("VIGIL_ERR_STORE", `cannot write the API token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
