import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { metrics, trace } from "@opentelemetry/api";
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { ConfigError, VigilError, errorMessage } from "../errors.ts";
import type { PluginContext } from "../plugin/context.ts";
import { SharedResources } from "../plugin/shared.ts";
import { createHttpClient } from "../net/http.ts";
import { silentLogger, type Logger } from "../telemetry/log.ts";
import { systemClock } from "../util/clock.ts";
import { scrub } from "../util/redact.ts";

export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

export const DEFAULT_CONFIG = "config/vigil.yaml";

/** A command's outcome: the process exit code. Only main.ts calls process.exit. */
export type Command = (argv: string[]) => Promise<number>;

export class UsageError extends VigilError {
  constructor(message: string) {
    super("VIGIL_ERR_USAGE", message);
  }
}

/** parseArgs with strict options; `--help` handled by the caller. */
export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

/** Loads the config named by -c (default config/vigil.yaml), printing every problem on failure. */
export async function loadOrExplain(file: string | undefined): Promise<LoadedConfig> {
  return loadConfig(file ?? process.env.VIGIL_CONFIG ?? DEFAULT_CONFIG);
}

/** Turns errors into messages and exit codes: 2 for config and usage problems, 1 otherwise. */
export function report(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(scrub(err.message) + "\n");
    return EXIT_USAGE;
  }
  if (err instanceof VigilError && (err.code === "VIGIL_ERR_USAGE" || err.code === "VIGIL_ERR_CONFIG_READ")) {
    process.stderr.write(`vigil: ${scrub(err.message)}\n`);
    return EXIT_USAGE;
  }
  process.stderr.write(`vigil: ${scrub(errorMessage(err))}\n`);
  return EXIT_FAIL;
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

export function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}
