/**
 * node-cron, loaded only when a configuration writes an interval as a cron expression: an interval
 * written as a duration needs none of it, and its scheduler creates an `Intl.DateTimeFormat`, which
 * pages in ICU data that an idle agent would otherwise never touch.
 */
import { parseDuration } from "./duration.ts";

export type NodeCron = typeof import("node-cron").default;

let loaded: NodeCron | undefined;

/** Loads node-cron (once). Awaited by whoever reads a configuration before anything calls `cron()`. */
export async function loadCron(): Promise<NodeCron> {
  loaded ??= (await import("node-cron")).default;
  return loaded;
}

/** node-cron, already loaded by `loadCron()`. */
export function cron(): NodeCron {
  if (!loaded) throw new Error("node-cron is not loaded: await loadCron() after reading a configuration with a cron expression");
  return loaded;
}

/** Whether an interval as written is a cron expression (anything that is not a duration). */
export function isCronInterval(text: string): boolean {
  return parseDuration(text) === undefined;
}
