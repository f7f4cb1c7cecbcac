/**
 * The CLI entry: the only place that ends the process (`finish`). Exit codes: 0 ok, 1 failure (or a
 * downgrade for `check`, a broken chain for `audit verify`), 2 bad config or usage.
 */
import { report, EXIT_USAGE } from "./args.ts";
import { COMMANDS } from "./commands.ts";
import { VIGIL_VERSION } from "../util/version.ts";

const USAGE = `vigil — continuous verification for zero-trust infrastructure

Usage: vigil <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, e]) => `  ${name.padEnd(12)} ${e.summary}`)
  .join("\n")}

Options:
  -h, --help     this help ("vigil <command> --help" for a command's options)
  -v, --version  print vigil's version

The commands that talk to the running agent (status, subjects, subject, signal,
enforcement, audit tail) find it through the config (-c, default
config/vigil.yaml or $VIGIL_CONFIG: agent.api.listen and agent.api.token or the
generated <data_dir>/api-token), or --addr/$VIGIL_ADDR and --token-file/$VIGIL_TOKEN.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(USAGE + "\n");
    return name ? 0 : EXIT_USAGE;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${VIGIL_VERSION}\n`);
    return 0;
  }
  // Own properties only: `vigil constructor` is an unknown command, not Object.
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`vigil: unknown command "${name}"\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { command, help } = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(help + "\n");
    return 0;
  }
  try {
    return await command(rest);
  } catch (err) {
    return report(err);
  }
}

/**
 * Ends the process with `code`. A natural exit first: Node then disposes of V8's isolate before it
 * stops its platform threads, which releases a background compile job waiting for a collection.
 * process.exit stops the platform threads first, and such a job then deadlocks the exit for good
 * (nodejs/node#54918; seen after reading a 10 MB certificate). A command that leaves a handle open
 * still ends, through process.exit, a moment later.
 */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 1_000).unref();
}

main(process.argv.slice(2)).then(finish, (err: unknown) => {
  process.stderr.write(`vigil: ${String(err)}\n`);
  finish(1);
});
