/**
 * What every command needs before its own work — exit codes, argument parsing, usage errors,
 * error reports, output — kept apart from common.ts so that main.ts and commands that load no
 * config (cert) start without loading the config and plugin registries.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, VigilError, errorMessage } from "../errors.ts";
import { scrub } from "../util/redact.ts";

export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

/** A command's outcome: the process exit code. Only main.ts calls process.exit. */
export type Command = (argv: string[]) => Promise<number>;

/** A line of the command table (commands.ts): what `vigil --help` says, and the module, loaded when the command runs. */
export interface CommandEntry {
  readonly summary: string;
  /** The command, its help, and every option it accepts (over its subcommands; `--help` aside): the help lists each one. */
  load(): Promise<{ command: Command; help: string; options: NonNullable<ParseArgsConfig["options"]> }>;
}

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

export function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}
