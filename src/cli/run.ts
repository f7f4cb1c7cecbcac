import { loadOrExplain, parse, EXIT_OK, EXIT_FAIL, EXIT_USAGE, type Command } from "./common.ts";
import { loadConfig } from "../config/load.ts";
import { Agent } from "../engine/agent.ts";
import { createLogger, type LogFormat, type Logger } from "../telemetry/log.ts";
import { errorMessage, formatIssue, ConfigError, VigilError, type ErrorCode } from "../errors.ts";
import { scrub } from "../util/redact.ts";
import { resumeOptimizingCompilers, settleAfterStart, turnOffPretenuring } from "./footprint.ts";
import type { LoadedConfig } from "../config/load.ts";

/** The options `run` accepts (its help lists each). */
export const options = { config: { type: "string", short: "c" } } as const;

export const help = `Usage: vigil run [-c FILE]

Runs the agent: evaluates every policy on its interval and on signals, and
enforces access changes. Stops cleanly on SIGTERM or SIGINT (in-flight work
drains), reloads its config on SIGHUP (validated first; on error the running
config stays).

  -c, --config FILE   config file (default: config/vigil.yaml, or $VIGIL_CONFIG)`;

/** Start failures that are configuration or usage problems (another agent holds data_dir), which exit 2 like a config that fails validation. */
const START_CONFIG_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["VIGIL_ERR_CONFIG_INVALID", "VIGIL_ERR_CONFIG_READ", "VIGIL_ERR_USAGE", "VIGIL_ERR_DATA_DIR_LOCKED"]);

/** Hard limit on shutdown, past the drain timeout, so a stuck call cannot block exit. */
const STOP_LIMIT_MS = 10_000;

export const run: Command = async (argv) => {
  turnOffPretenuring();
  const { values } = parse(argv, options);
  const config = await loadOrExplain(values.config);
  const logger = createLogger({ level: config.raw.agent.log_level, ...logFormat(config.raw.agent.log_format) });
  logWarnings(logger, config);
  const agent = new Agent(config, { logger });

  // Signal handlers go in before start: a signal arriving during start-up must not kill the
  // process with the default action. Reloads wait for start; a stop request waits for it too.
  let started: Promise<void> = Promise.resolve();
  let reloading = Promise.resolve();
  process.on("unhandledRejection", (err) => logger.error({ err }, `unhandled rejection: ${errorMessage(err)}`));
  process.on("SIGHUP", () => {
    reloading = reloading.then(async () => {
      await started.catch(() => undefined);
      try {
        const next = await loadConfig(config.file);
        logWarnings(logger, next);
        await agent.reload(next);
        agent.configReloaded("success");
      } catch (err) {
        agent.configReloaded("failure");
        const issues = err instanceof ConfigError ? err.issues : undefined;
        logger.error({ err, issues }, `config reload failed; keeping the running config: ${errorMessage(err)}`);
      }
    });
  });

  let stopRequested: ((signal: string) => void) | undefined;
  const stopSignal = new Promise<string>((r) => (stopRequested = r));
  process.on("SIGTERM", () => stopRequested!("SIGTERM"));
  process.on("SIGINT", () => stopRequested!("SIGINT"));

  // Until start-up is over: the optimising compilers stay off (unless start-up is real work), and
  // its garbage goes at the first quiet second. Inventories read from files or APIs can hold any
  // number of subjects, and reading them is long synchronous work no timer can interrupt: with one
  // of those the compilers come back before the start (a static inventory holds at most 1,000).
  const listed = config.raw.inventories.find((inventory) => inventory.type !== "static");
  if (listed && resumeOptimizingCompilers()) logger.debug({ inventory: listed.type }, "optimising compilers on for the start: an inventory of any size");
  const endSettling = settleAfterStart(({ collected, ms }) =>
    collected ? logger.debug({ ms: Math.round(ms) }, "start-up garbage collected") : logger.debug("start-up garbage left to V8: no gc() could be had"),
  );
  started = agent.start();
  // Cluster mode waits for Redis as long as it takes: a stop asked for meanwhile ends the wait.
  let stopDuringStart = false;
  void stopSignal.then(() => {
    stopDuringStart = true;
    agent.abortStart();
  });
  try {
    await started;
  } catch (err) {
    endSettling();
    if (stopDuringStart && err instanceof VigilError && err.code === "VIGIL_ERR_SHUTDOWN") {
      logger.info("stopped before start-up finished");
      await agent.stop().catch(() => undefined);
      return EXIT_OK;
    }
    logger.fatal({ err }, `vigil could not start: ${errorMessage(err)}`);
    process.stderr.write(`vigil: could not start: ${scrub(errorMessage(err))}\n`);
    await agent.stop().catch(() => undefined);
    // A configuration problem found only at start (a provider's unusable key, a bad API token file) is still one: exit 2.
    return err instanceof VigilError && START_CONFIG_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAIL;
  }

  const signal = await stopSignal;
  endSettling();
  logger.info({ signal }, "stopping");
  const hard = new Promise<number>((r) => {
    const t = setTimeout(() => {
      logger.error("shutdown took too long; exiting");
      r(EXIT_FAIL);
    }, STOP_LIMIT_MS);
    t.unref();
  });
  const clean = agent.stop().then(
    () => EXIT_OK,
    (err: unknown) => {
      logger.error({ err }, `shutdown failed: ${errorMessage(err)}`);
      return EXIT_FAIL;
    },
  );
  return Promise.race([clean, hard]);
};

/**
 * `auto` is text when the log goes to a terminal. The log is written to stdout, so that is the
 * stream asked: a terminal session whose stdout is redirected to a file still gets JSON there.
 * Colours only on a terminal, and never with NO_COLOR set.
 */
function logFormat(setting: "json" | "text" | "auto"): { format: LogFormat; color: boolean } {
  const tty = process.stdout.isTTY === true;
  const format = setting === "auto" ? (tty ? "text" : "json") : setting;
  return { format, color: format === "text" && tty && !process.env["NO_COLOR"] };
}

function logWarnings(logger: Logger, config: LoadedConfig): void {
  for (const w of config.warnings) logger.warn({ path: w.path, line: w.line }, `config ${config.file}: ${formatIssue(w).trim()}`);
}
