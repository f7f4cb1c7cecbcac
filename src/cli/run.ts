import { loadOrExplain, parse, EXIT_OK, EXIT_FAIL, type Command } from "./common.ts";
import { loadConfig } from "../config/load.ts";
import { Agent } from "../engine/agent.ts";
import { createLogger } from "../telemetry/log.ts";
import { errorMessage, ConfigError } from "../errors.ts";

export const help = `Usage: vigil run [-c FILE]

Runs the agent: evaluates every policy on its interval and on signals, and
enforces access changes. Stops cleanly on SIGTERM or SIGINT (in-flight work
drains), reloads its config on SIGHUP (validated first; on error the running
config stays).

  -c, --config FILE   config file (default: config/vigil.yaml, or $VIGIL_CONFIG)`;

/** Hard limit on shutdown, past the drain timeout, so a stuck call cannot block exit. */
const STOP_LIMIT_MS = 10_000;

export const run: Command = async (argv) => {
  const { values } = parse(argv, { config: { type: "string", short: "c" } });
  const config = await loadOrExplain(values.config);
  const logger = createLogger({ level: config.raw.agent.log_level });
  const agent = new Agent(config, { logger });
  try {
    await agent.start();
  } catch (err) {
    logger.fatal({ err }, `vigil could not start: ${errorMessage(err)}`);
    await agent.stop().catch(() => undefined);
    return EXIT_FAIL;
  }

  process.on("unhandledRejection", (err) => logger.error({ err }, `unhandled rejection: ${errorMessage(err)}`));

  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    reloading = reloading.then(async () => {
      try {
        const next = await loadConfig(config.file);
        await agent.reload(next);
        agentMetrics(agent, "success");
      } catch (err) {
        agentMetrics(agent, "failure");
        const issues = err instanceof ConfigError ? err.issues : undefined;
        logger.error({ err, issues }, `config reload failed; keeping the running config: ${errorMessage(err)}`);
      }
    });
  });

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "stopping");
      const hard = setTimeout(() => {
        logger.error("shutdown took too long; exiting");
        resolveExit(EXIT_FAIL);
      }, STOP_LIMIT_MS);
      hard.unref();
      agent
        .stop()
        .then(() => resolveExit(EXIT_OK))
        .catch((err: unknown) => {
          logger.error({ err }, `shutdown failed: ${errorMessage(err)}`);
          resolveExit(EXIT_FAIL);
        })
        .finally(() => clearTimeout(hard));
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
};

function agentMetrics(agent: Agent, outcome: "success" | "failure"): void {
  agent.configReloaded(outcome);
}
