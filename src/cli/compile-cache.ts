import module from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";

/** When the cache is written for the next start although this process has not exited yet. */
const FLUSH_AFTER_MS = 15_000;

/**
 * Turns on Node's on-disk compile cache for the bundle: V8 keeps the code it compiled for each chunk,
 * and the next start reads it instead of compiling again (spawn → /readyz 30–40 ms sooner on the
 * default config, BENCHMARKS.md section 18). Node checks each entry against the chunk's content and
 * its own version, so an upgrade only costs one slower start.
 *
 * Where: NODE_COMPILE_CACHE when set (the systemd unit and the image set it; Node then has it on
 * already), else $XDG_CACHE_HOME/vigil/compile-cache, else ~/.cache/vigil/compile-cache.
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. A directory that cannot be created or written leaves
 * the cache off and vigil as it was, without a message.
 */
export function enableCompileCache(env: NodeJS.ProcessEnv = process.env): void {
  if (typeof module.enableCompileCache !== "function" || env["NODE_DISABLE_COMPILE_CACHE"]) return;
  if (!env["NODE_COMPILE_CACHE"]) {
    const base = env["XDG_CACHE_HOME"] || homeCache();
    if (!base) return;
    module.enableCompileCache(join(base, "vigil", "compile-cache"));
  }
  // Node writes the cache when the process exits; an agent runs for weeks, and one that is killed
  // rather than stopped would never write it.
  if (typeof module.flushCompileCache === "function") setTimeout(() => module.flushCompileCache(), FLUSH_AFTER_MS).unref();
}

function homeCache(): string | undefined {
  let home: string;
  try {
    home = homedir();
  } catch {
    return undefined;
  }
  return home && home !== "/" && home !== "/nonexistent" ? join(home, ".cache") : undefined;
}
