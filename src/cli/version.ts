import { arch, platform } from "node:process";
import { parse, out, EXIT_OK, UsageError, type Command } from "./args.ts";
import { outputFormat, serialize } from "./format.ts";
import { VIGIL_VERSION } from "../util/version.ts";

/** The options `version` accepts (its help lists each). */
export const options = { output: { type: "string", short: "o" } } as const;

export const help = `Usage: vigil version [-o table|json|yaml]

Prints vigil's version and the Node.js it runs on; "vigil --version" prints
the version alone, and "vigil status" the version of the running agent.

  -o, --output table|json|yaml   output format (default: table)`;

export const version: Command = async (argv) => {
  const { values, positionals } = parse(argv, options, true);
  if (positionals.length > 0) throw new UsageError("version takes no arguments");
  const format = outputFormat(values.output);
  const info = { version: VIGIL_VERSION, node: process.version, platform: `${platform}/${arch}` };
  out(format === "table" ? `vigil ${info.version} (node ${info.node}, ${info.platform})` : serialize(format, info));
  return EXIT_OK;
};
