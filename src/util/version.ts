/**
 * vigil's version, read once from package.json (the one place it is written). `src/util/` and
 * `dist/util/` both sit two levels below package.json.
 */
import { readFileSync } from "node:fs";

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export const VIGIL_VERSION: string = readVersion();

/** `User-Agent` of every outbound call unless a request sets its own. */
export const DEFAULT_USER_AGENT = `vigil/${VIGIL_VERSION}`;
