/**
 * vigil's version, read once from package.json (the one place it is written). `src/util/` and
 * `dist/util/` both sit two levels below package.json; the bundle (scripts/bundle.ts) has it
 * written in at build time instead, so that it runs without package.json beside it.
 */
import { readFileSync } from "node:fs";

/** Set by the bundler; not defined in the unbundled build. */
declare const VIGIL_BUILD_VERSION: string | undefined;

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export const VIGIL_VERSION: string = typeof VIGIL_BUILD_VERSION === "string" ? VIGIL_BUILD_VERSION : readVersion();

/** `User-Agent` of every outbound call unless a request sets its own. */
export const DEFAULT_USER_AGENT = `vigil/${VIGIL_VERSION}`;
