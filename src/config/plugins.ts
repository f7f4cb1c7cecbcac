import { pathToFileURL } from "node:url";
import type { ConfigIssue } from "../errors.ts";
import { defineCheck, type AnyCheckFactory, type CheckFactory } from "../plugin/check.ts";
import { defineAction, type ActionFactory, type AnyActionFactory } from "../plugin/action.ts";
import { defineProvider, type AnyProviderFactory, type ProviderFactory } from "../plugin/provider.ts";
import { defineInventory, type AnyInventoryFactory, type InventoryFactory } from "../plugin/inventory.ts";
import { builtinChecks } from "../checks/registry.ts";
import { coreActions, folderOf, loadBuiltins } from "../actions/registry.ts";
import { BUILTIN_INVENTORY_TYPES, loadInventories } from "../inventories/registry.ts";

/** The factories one configuration can use: the built-ins plus those of its plugin modules. */
export interface Registry {
  readonly checks: ReadonlyMap<string, AnyCheckFactory>;
  readonly actions: ReadonlyMap<string, AnyActionFactory>;
  readonly inventories: ReadonlyMap<string, AnyInventoryFactory>;
  readonly providers: ReadonlyMap<string, AnyProviderFactory>;
}

type FactoryShape = { type: string; description: string; configSchema: { safeParse: unknown }; create: unknown };

/** A plugin module's export group: its key, the map its factories join, and how one is recognised and taken in. */
interface Group<F extends FactoryShape, R extends { readonly type: string }> {
  readonly key: string;
  readonly map: Map<string, R>;
  readonly accepts: (f: unknown) => f is F;
  readonly take: (f: F) => R;
}

/** The action, provider and inventory types a configuration names, so only their built-ins are loaded. */
export interface UsedTypes {
  readonly actions: readonly string[];
  readonly providers: readonly string[];
  readonly inventories?: readonly string[];
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

  const checks = new Map(builtinChecks.map((f) => [f.type, f]));
  const actions = new Map(builtins.actions.map((f) => [f.type, f]));
  const inventories = new Map((await loadInventories(inventoryTypesFor(used, imported.map((m) => m.exported)))).map((f) => [f.type, f]));
  const providers = new Map(builtins.providers.map((f) => [f.type, f]));
  for (const { i, file, exported } of imported) {
    const path = ["plugins", i, "module"];
    // Generic per group, so each map keeps its own factory type.
    const add = <F extends FactoryShape, R extends { readonly type: string }>({ key, map, accepts, take }: Group<F, R>): number => {
      const list = exported[key];
      if (list === undefined) return 0;
      let found = 0;
      for (const f of Array.isArray(list) ? list : [list]) {
        if (!accepts(f)) {
          issues.push({ path: `plugins[${i}]`, message: `${file}: ${key} must hold factories with type, description, configSchema and create()`, line: locate(path) });
          continue;
        }
        if (map.has(f.type)) {
          issues.push({ path: `plugins[${i}]`, message: `${file}: ${key} type "${f.type}" is already registered`, line: locate(path) });
          continue;
        }
        map.set(f.type, take(f));
        found++;
      }
      return found;
    };
    const found =
      add({ key: "checks", map: checks, accepts: isFactory<CheckFactory>, take: defineCheck }) +
      add({ key: "actions", map: actions, accepts: isFactory<ActionFactory>, take: defineAction }) +
      add({ key: "inventories", map: inventories, accepts: isFactory<InventoryFactory>, take: defineInventory }) +
      add({ key: "providers", map: providers, accepts: isFactory<ProviderFactory>, take: defineProvider });
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

/**
 * Built-in inventory types a config needs, with those a plugin also exports (so shadowing is still
 * caught); undefined (all) without `used` or when a type is neither built in nor a plugin's.
 */
function inventoryTypesFor(used: UsedTypes | undefined, plugins: readonly Record<string, unknown>[]): Set<string> | undefined {
  if (!used?.inventories) return undefined;
  const pluginTypes = new Set<string>();
  for (const exported of plugins) {
    const list = exported["inventories"];
    for (const f of Array.isArray(list) ? list : list === undefined ? [] : [list]) if (isFactory(f)) pluginTypes.add(f.type);
  }
  const types = new Set<string>();
  for (const type of [...used.inventories, ...pluginTypes]) {
    if (BUILTIN_INVENTORY_TYPES.includes(type)) types.add(type);
    else if (!pluginTypes.has(type)) return undefined;
  }
  return types;
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

/**
 * Whether a module's export is a factory. A module is plain JavaScript to the loader: it checks what
 * the registry needs to tell factories apart and validate their config, and the rest of the contract
 * of `F` (that create() takes what configSchema produces) is the plugin's to keep.
 */
function isFactory<F extends FactoryShape = FactoryShape>(f: unknown): f is F {
  if (typeof f !== "object" || f === null) return false;
  const o: { type?: unknown; description?: unknown; configSchema?: unknown; create?: unknown } = f;
  const schema: { safeParse?: unknown } | null = typeof o.configSchema === "object" || typeof o.configSchema === "function" ? o.configSchema : null;
  return typeof o.type === "string" && typeof o.description === "string" && typeof o.create === "function" && typeof schema?.safeParse === "function";
}
