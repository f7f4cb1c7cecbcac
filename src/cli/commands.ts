/**
 * The command table: each command's name, one-line summary and module, loaded only when the command
 * runs. main.ts dispatches on it; `vigil completion` generates the shell completions from it (the
 * options come from each command's help), so a new command is completed once it is listed here.
 */
import type { CommandEntry } from "./args.ts";

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  run: { summary: "run the agent", load: async () => { const m = await import("./run.ts"); return { options: m.options, command: m.run, help: m.help }; } },
  status: { summary: "the running agent at a glance", load: async () => { const m = await import("./status.ts"); return { options: m.options, command: m.status, help: m.help }; } },
  subjects: { summary: "the running agent's subjects and their access (--watch follows)", load: async () => { const m = await import("./subjects.ts"); return { options: m.options, command: m.subjects, help: m.help }; } },
  subject: { summary: "one subject: decisions, reasons, evidence, recent audit", load: async () => { const m = await import("./subject.ts"); return { options: m.options, command: m.subject, help: m.help }; } },
  signal: { summary: "push a check result to the running agent", load: async () => { const m = await import("./signal.ts"); return { options: m.options, command: m.signal, help: m.help }; } },
  enforcement: { summary: "paused and failed enforcement: status, resume, failed, retry", load: async () => { const m = await import("./enforcement.ts"); return { options: m.options, command: m.enforcement, help: m.help }; } },
  audit: { summary: "tail the audit log; verify its keyed chain; move unexplained lines aside", load: async () => { const m = await import("./audit.ts"); return { options: m.options, command: m.audit, help: m.help }; } },
  validate: { summary: "validate a config file", load: async () => { const m = await import("./validate.ts"); return { options: m.options, command: m.validate, help: m.help }; } },
  check: { summary: "one evaluation pass; exit 1 when any subject is downgraded", load: async () => { const m = await import("./check.ts"); return { options: m.options, command: m.check, help: m.help }; } },
  explain: { summary: "why a subject has the access it has", load: async () => { const m = await import("./explain.ts"); return { options: m.options, command: m.explain, help: m.help }; } },
  plan: { summary: "the exact calls an access change would make", load: async () => { const m = await import("./plan.ts"); return { options: m.options, command: m.plan, help: m.help }; } },
  actions: { summary: "list action types with their permissions and examples", load: async () => { const m = await import("./actions.ts"); return { options: m.options, command: m.actions, help: m.help }; } },
  cert: { summary: "inspect and verify certificates", load: async () => { const m = await import("./cert.ts"); return { options: m.options, command: m.cert, help: m.help }; } },
  anomaly: { summary: "score a metric CSV with a built-in anomaly detector", load: async () => { const m = await import("./anomaly.ts"); return { options: m.options, command: m.anomaly, help: m.help }; } },
  version: { summary: "print vigil's version", load: async () => { const m = await import("./version.ts"); return { options: m.options, command: m.version, help: m.help }; } },
  // Handed the table rather than importing it: completion.ts stays free of an import cycle.
  completion: { summary: "print a shell completion script: bash, zsh or fish", load: async () => { const m = await import("./completion.ts"); return { command: (argv) => m.completion(argv, COMMANDS), help: m.help, options: {} }; } },
};
