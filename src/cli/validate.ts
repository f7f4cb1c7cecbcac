import { formatIssue } from "../errors.ts";
import { scrub } from "../util/redact.ts";
import { loadOrExplain, parse, out, placeholderLines, EXIT_OK, type Command } from "./common.ts";

/** The options `validate` accepts (its help lists each). */
export const options = { config: { type: "string", short: "c" }, json: { type: "boolean" }, offline: { type: "boolean" } } as const;

export const help = `Usage: vigil validate [-c FILE] [--json]

Validates a configuration without starting anything. Every problem is listed with
its key path and line. Exit 0 when valid, 2 otherwise. Warnings (problems that do
not stop the config from loading) go to stderr and do not change the exit code.

With --offline (on a workstation, in CI), a \${file:…} that cannot be read here and
an \${env:…} that is not set are placeholders, listed as such, instead of problems:
the secret files and variables of the host the agent runs on need not be present.
Everything else is validated as the agent would.

  -c, --config FILE   config file (default: config/vigil.yaml, or $VIGIL_CONFIG)
      --offline       secrets not available here are placeholders, not problems
      --json          print a JSON summary`;

export const validate: Command = async (argv) => {
  const { values } = parse(argv, options);
  const config = await loadOrExplain(values.config, { offline: values.offline === true });
  const pushOnly = Object.values(config.checks).filter((c) => !c.pull).map((c) => c.name);
  const summary = {
    valid: true,
    file: config.file,
    policies: config.policies.map((p) => ({ name: p.name, kind: p.kind, interval: p.schedule.text, checks: p.checks })),
    push_only_checks: pushOnly,
    inventories: config.inventories.map((i) => i.type),
    warnings: config.warnings,
    placeholders: config.placeholders,
  };
  if (values.json) out(JSON.stringify(summary, null, 2));
  else {
    const n = config.placeholders.length;
    out(`${config.file}: valid${n > 0 ? ` (offline: ${n} placeholder${n === 1 ? "" : "s"} for secrets not available here)` : ""}`);
    for (const p of summary.policies) out(`  policy ${p.name} (${p.kind}) every ${p.interval}: ${p.checks.join(", ") || "no checks"}`);
    if (pushOnly.length) out(`  push-only checks (results arrive as signals): ${pushOnly.join(", ")}`);
    for (const line of placeholderLines(config)) out(line);
  }
  if (config.warnings.length > 0) {
    process.stderr.write(scrub(`${config.file}: ${config.warnings.length} warning${config.warnings.length === 1 ? "" : "s"}\n${config.warnings.map(formatIssue).join("\n")}\n`));
  }
  return EXIT_OK;
};
