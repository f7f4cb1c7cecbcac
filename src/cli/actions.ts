import { stringify } from "yaml";
import { loadOrExplain, parse, out, EXIT_OK, UsageError, type Command } from "./common.ts";
import { loadBuiltins } from "../actions/registry.ts";
import type { AnyActionFactory } from "../plugin/action.ts";
import type { AnyProviderFactory } from "../plugin/provider.ts";

/** The options `actions` accepts (its help lists each). */
export const options = { config: { type: "string", short: "c" }, type: { type: "string" }, json: { type: "boolean" } } as const;

export const help = `Usage: vigil actions list [-c FILE] [--type TYPE] [--json]

Prints every action type: what it does, whether it is reverted on restore (or
reconciles the target to each level), the provider it needs, the permissions its
credentials need at the target, and a config example. Then every provider type
with an example of its providers.<name> entry.

  -c, --config FILE  also list the action and provider types of FILE's plugin modules
  --type TYPE        only this action type (or every action of provider TYPE)
  --json             machine-readable output`;

interface Listed {
  readonly type: string;
  readonly description: string;
  readonly provider: string | null;
  readonly restore: "revert" | "reconcile" | "none";
  readonly required_permissions: readonly string[];
  readonly example: unknown;
}

function describeAction(f: AnyActionFactory): Listed {
  return {
    type: f.type,
    description: f.description,
    provider: f.provider ?? null,
    restore: f.reconciles ? "reconcile" : f.revertible ? "revert" : "none",
    required_permissions: f.requiredPermissions,
    example: f.example,
  };
}

const RESTORE_TEXT = { revert: "reverted when access is restored", reconcile: "reconciles the target to every level", none: "not reverted" } as const;

export const actions: Command = async (argv) => {
  const { values, positionals } = parse(argv, options, true);
  if (positionals[0] !== "list" || positionals.length > 1) throw new UsageError('actions takes one subcommand: "list"');
  const builtins = await loadBuiltins();
  let actionFactories: readonly AnyActionFactory[] = builtins.actions;
  let providerFactories: readonly AnyProviderFactory[] = builtins.providers;
  if (values.config !== undefined) {
    // A config's registry holds only the provider folders it uses, plus its plugins': add the rest.
    const config = await loadOrExplain(values.config);
    const types = new Set(actionFactories.map((f) => f.type));
    actionFactories = [...actionFactories, ...[...config.registry.actions.values()].filter((f) => !types.has(f.type))];
    const ptypes = new Set(providerFactories.map((f) => f.type));
    providerFactories = [...providerFactories, ...[...config.registry.providers.values()].filter((f) => !ptypes.has(f.type))];
  }
  const want = values.type;
  // A provider type (`kubernetes`) or a folder prefix (`istio`, whose actions use the kubernetes provider).
  const listed = actionFactories.map(describeAction).filter((a) => want === undefined || a.type === want || a.provider === want || a.type.startsWith(`${want}:`));
  if (want !== undefined && listed.length === 0) throw new UsageError(`no action type or provider "${want}"; known: ${actionFactories.map((f) => f.type).join(", ")}`);
  const providers = providerFactories
    .filter((p) => want === undefined || listed.some((a) => a.provider === p.type))
    .map((p) => ({ type: p.type, description: p.description, example: p.example }));
  if (values.json) {
    out(JSON.stringify({ actions: listed, providers }, null, 2));
    return EXIT_OK;
  }
  for (const a of listed) {
    out(`${a.type}${a.provider ? `  (provider: ${a.provider})` : ""}`);
    out(`  ${a.description}`);
    out(`  ${RESTORE_TEXT[a.restore]}`);
    out(`  permissions:${a.required_permissions.length === 0 ? " none" : ""}`);
    for (const p of a.required_permissions) out(`    - ${p}`);
    out("  example:");
    for (const line of stringify([a.example]).trimEnd().split("\n")) out(`    ${line}`);
    out("");
  }
  if (providers.length > 0) out("providers:");
  for (const p of providers) {
    out(`  ${p.type}: ${p.description}`);
    for (const line of stringify({ [p.type]: p.example }).trimEnd().split("\n")) out(`    ${line}`);
  }
  return EXIT_OK;
};
