import { pathToFileURL } from "node:url";
import type { ConfigIssue } from "../errors.ts";
import type { CheckFactory } from "../plugin/check.ts";
import type { ActionFactory } from "../plugin/action.ts";
import type { ProviderFactory } from "../plugin/provider.ts";
import type { InventoryFactory } from "../plugin/inventory.ts";
import { builtinChecks } from "../checks/registry.ts";
import { coreActions, folderOf, loadBuiltins } from "../actions/registry.ts";
import { builtinInventories } from "../inventories/registry.ts";

/** The factories one configuration can use: the built-ins plus those of its plugin modules. */
export interface Registry {
  readonly checks: ReadonlyMap<string, CheckFactory<unknown>>;
  readonly actions: ReadonlyMap<string, ActionFactory<unknown>>;
  readonly inventories: ReadonlyMap<string, InventoryFactory<unknown>>;
  readonly providers: ReadonlyMap<string, ProviderFactory<unknown>>;
}

type AnyFactory = { type: string; description: string; configSchema: unknown; create: unknown };

/** The action and provider types a configuration names, so only their provider folders are loaded. */
export interface UsedTypes {
  readonly actions: readonly string[];
  readonly providers: readonly string[];
}

/**
 * Builds the registry. A plugin module exports `checks`, `actions`, `inventories` and/or `providers` arrays of
 * factories (or a default export object with them). A type may not shadow a built-in.
 *
 * Built-in provider folders are loaded when `used` names one of their types or a plugin type shares
 * their prefix (so shadowing is still caught); all of them when `used` is absent or names a type
 * nothing provides, so the error can list every known type.
 */
export async function loadRegistry(modules: readonly string[], issues: ConfigIssue[], locate: (path: readonly PropertyKey[]) => number | undefined, used?: UsedTypes): Promise<Registry> {
  const imported: { i: number; file: string; exported: Record<string, unknown> }[] = [];
  for (const [i, file] of modules.entries()) {
    const path = ["plugins", i, "module"];
    try {
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      imported.push({ i, file, exported: (typeof mod.default === "object" && mod.default !== null ? mod.default : mod) as Record<string, unknown> });
    } catch (err) {
      issues.push({ path: path.join(".").replace(/\.(\d+)\./, "[$1]."), message: `cannot load plugin ${file}: ${(err as Error).message}`, line: locate(path) });
    }
  }
  let builtins = await loadBuiltins(used ? foldersFor(used, imported.map((m) => m.exported)) : undefined);
  if (used) {
    // A type the loaded folders lack (a typo, a plugin that failed to load): load them all, so the
    // error can list every known type.
    const known = new Set([...builtins.actions.map((f) => f.type), ...builtins.providers.map((f) => f.type), ...pluginTypesOf(imported.map((m) => m.exported))]);
    if ([...used.actions, ...used.providers].some((t) => !known.has(t))) builtins = await loadBuiltins();
  }

  const checks = new Map<string, CheckFactory<unknown>>(builtinChecks.map((f) => [f.type, f as CheckFactory<unknown>]));
  const actions = new Map<string, ActionFactory<unknown>>(builtins.actions.map((f) => [f.type, f as ActionFactory<unknown>]));
  const inventories = new Map<string, InventoryFactory<unknown>>(builtinInventories.map((f) => [f.type, f as InventoryFactory<unknown>]));
  const providers = new Map<string, ProviderFactory<unknown>>(builtins.providers.map((f) => [f.type, f as ProviderFactory<unknown>]));
  for (const { i, file, exported } of imported) {
    const path = ["plugins", i, "module"];
    const groups: [string, Map<string, unknown>][] = [
      ["checks", checks],
      ["actions", actions],
      ["inventories", inventories],
      ["providers", providers],
    ];
    let found = 0;
    for (const [key, map] of groups) {
      const list = exported[key];
      if (list === undefined) continue;
      for (const f of Array.isArray(list) ? list : [list]) {
        if (!isFactory(f)) {
          issues.push({ path: `plugins[${i}]`, message: `${file}: ${key} must hold factories with type, description, configSchema and create()`, line: locate(path) });
          continue;
        }
        if (map.has(f.type)) {
          issues.push({ path: `plugins[${i}]`, message: `${file}: ${key} type "${f.type}" is already registered`, line: locate(path) });
          continue;
        }
        map.set(f.type, f);
        found++;
      }
    }
    if (found === 0) issues.push({ path: `plugins[${i}]`, message: `${file} exports no checks, actions, inventories or providers`, line: locate(path) });
  }
  return { checks, actions, inventories, providers };
}

/** Provider folders a config needs; undefined (all) when a type is neither built in nor a plugin's. */
function foldersFor(used: UsedTypes, plugins: readonly Record<string, unknown>[]): Set<string> | undefined {
  const pluginTypes = pluginTypesOf(plugins);
  const core = new Set(coreActions.map((a) => a.type));
  const folders = new Set<string>();
  for (const type of [...used.actions, ...used.providers, ...pluginTypes]) {
    const folder = folderOf(type);
    if (folder) folders.add(folder);
    else if (!core.has(type) && !pluginTypes.has(type)) return undefined;
  }
  return folders;
}

/** Action and provider types the plugin modules export. */
function pluginTypesOf(plugins: readonly Record<string, unknown>[]): Set<string> {
  const types = new Set<string>();
  for (const exported of plugins) {
    for (const key of ["actions", "providers"]) {
      const list = exported[key];
      for (const f of Array.isArray(list) ? list : list === undefined ? [] : [list]) if (isFactory(f)) types.add(f.type);
    }
  }
  return types;
}

function isFactory(f: unknown): f is AnyFactory {
  const o = f as AnyFactory | null;
  return !!o && typeof o.type === "string" && typeof o.description === "string" && typeof o.create === "function" && typeof (o.configSchema as { safeParse?: unknown })?.safeParse === "function";
}
