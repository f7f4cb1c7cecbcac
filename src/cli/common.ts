import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { metrics, trace } from "@opentelemetry/api";
import { loadConfig, type LoadedConfig, type LoadOptions } from "../config/load.ts";
import type { PluginContext } from "../plugin/context.ts";
import { SharedResources } from "../plugin/shared.ts";
import { createHttpClient } from "../net/http.ts";
import { silentLogger, type Logger } from "../telemetry/log.ts";
import { systemClock } from "../util/clock.ts";

export { EXIT_OK, EXIT_FAIL, EXIT_USAGE, UsageError, parse, report, out, type Command } from "./args.ts";

export const DEFAULT_CONFIG = "config/vigil.yaml";

/** Loads the config named by -c (default config/vigil.yaml), printing every problem on failure. */
export async function loadOrExplain(file: string | undefined, options: LoadOptions = {}): Promise<LoadedConfig> {
  return loadConfig(file ?? process.env.VIGIL_CONFIG ?? DEFAULT_CONFIG, options);
}

/** The placeholders an offline load stood in for secrets, one line each, for people. */
export function placeholderLines(config: LoadedConfig): string[] {
  return config.placeholders.map((p) => `  placeholder: ${p.path}${p.line === undefined ? "" : ` (line ${p.line})`} ← ${p.reference}: ${p.reason}`);
}

/** Plugin context for one-shot commands: no metrics endpoint, no tracing, quiet logs. */
export function cliContext(config: LoadedConfig, logger: Logger = silentLogger()): PluginContext {
  return {
    clock: systemClock,
    logger,
    meter: metrics.getMeter("vigil-cli"),
    tracer: trace.getTracer("vigil-cli"),
    http: createHttpClient({ userAgent: "vigil-cli" }),
    dataDir: resolve(config.raw.agent.data_dir),
    configDir: config.dir,
    shared: new SharedResources(),
  };
}

export function dbPath(config: LoadedConfig): string | undefined {
  const p = join(resolve(config.raw.agent.data_dir), "vigil.db");
  return existsSync(p) ? p : undefined;
}
