/**
 * The CLI entry: the only place that calls process.exit. Exit codes: 0 ok, 1 failure (or a
 * downgrade for `check`, a broken chain for `audit verify`), 2 bad config or usage.
 */
import { report, EXIT_USAGE, type Command } from "./args.ts";
import { VIGIL_VERSION } from "../util/version.ts";

interface Entry {
  readonly summary: string;
  load(): Promise<{ command: Command; help: string }>;
}

const COMMANDS: Record<string, Entry> = {
  run: { summary: "run the agent", load: async () => { const m = await import("./run.ts"); return { command: m.run, help: m.help }; } },
  validate: { summary: "validate a config file", load: async () => { const m = await import("./validate.ts"); return { command: m.validate, help: m.help }; } },
  check: { summary: "one evaluation pass; exit 1 when any subject is downgraded", load: async () => { const m = await import("./check.ts"); return { command: m.check, help: m.help }; } },
  explain: { summary: "why a subject has the access it has", load: async () => { const m = await import("./explain.ts"); return { command: m.explain, help: m.help }; } },
  plan: { summary: "the exact calls an access change would make", load: async () => { const m = await import("./plan.ts"); return { command: m.plan, help: m.help }; } },
  actions: { summary: "list action types with their permissions and examples", load: async () => { const m = await import("./actions.ts"); return { command: m.actions, help: m.help }; } },
  cert: { summary: "inspect and verify certificates", load: async () => { const m = await import("./cert.ts"); return { command: m.cert, help: m.help }; } },
  anomaly: { summary: "score a metric CSV with a built-in anomaly detector", load: async () => { const m = await import("./anomaly.ts"); return { command: m.anomaly, help: m.help }; } },
  audit: { summary: "verify the audit log's keyed chain; move unexplained lines aside", load: async () => { const m = await import("./audit.ts"); return { command: m.audit, help: m.help }; } },
};

const USAGE = `vigil — continuous verification for zero-trust infrastructure

Usage: vigil <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, e]) => `  ${name.padEnd(10)} ${e.summary}`)
  .join("\n")}

Run "vigil <command> --help" for a command's options.`;

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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`vigil: ${String(err)}\n`);
    process.exit(1);
  },
);
