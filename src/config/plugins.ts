import { pathToFileURL } from "node:url";
import type { ConfigIssue } from "../errors.ts";
import type { CheckFactory } from "../checks/contract.ts";
import type { ActionFactory } from "../actions/contract.ts";
import type { ProviderFactory } from "../actions/provider.ts";
import type { InventoryFactory } from "../inventories/contract.ts";
import { builtinChecks } from "../checks/registry.ts";
import { builtinActions, builtinProviders } from "../actions/registry.ts";
import { builtinInventories } from "../inventories/registry.ts";

/** The factories one configuration can use: the built-ins plus those of its plugin modules. */
export interface Registry {
  readonly checks: ReadonlyMap<string, CheckFactory<unknown>>;
  readonly actions: ReadonlyMap<string, ActionFactory<unknown>>;
  readonly inventories: ReadonlyMap<string, InventoryFactory<unknown>>;
  readonly providers: ReadonlyMap<string, ProviderFactory<unknown>>;
}

type AnyFactory = { type: string; description: string; configSchema: unknown; create: unknown };

/**
 * Builds the registry. A plugin module exports `checks`, `actions`, `inventories` and/or `providers` arrays of
 * factories (or a default export object with them). A type may not shadow a built-in.
 */
export async function loadRegistry(modules: readonly string[], issues: ConfigIssue[], locate: (path: readonly PropertyKey[]) => number | undefined): Promise<Registry> {
  const checks = new Map<string, CheckFactory<unknown>>(builtinChecks.map((f) => [f.type, f as CheckFactory<unknown>]));
  const actions = new Map<string, ActionFactory<unknown>>(builtinActions.map((f) => [f.type, f as ActionFactory<unknown>]));
  const inventories = new Map<string, InventoryFactory<unknown>>(builtinInventories.map((f) => [f.type, f as InventoryFactory<unknown>]));
  const providers = new Map<string, ProviderFactory<unknown>>(builtinProviders.map((f) => [f.type, f as ProviderFactory<unknown>]));
  for (const [i, file] of modules.entries()) {
    const path = ["plugins", i, "module"];
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      issues.push({ path: path.join(".").replace(/\.(\d+)\./, "[$1]."), message: `cannot load plugin ${file}: ${(err as Error).message}`, line: locate(path) });
      continue;
    }
    const exported = (typeof mod.default === "object" && mod.default !== null ? mod.default : mod) as Record<string, unknown>;
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

function isFactory(f: unknown): f is AnyFactory {
  const o = f as AnyFactory | null;
  return !!o && typeof o.type === "string" && typeof o.description === "string" && typeof o.create === "function" && typeof (o.configSchema as { safeParse?: unknown })?.safeParse === "function";
}
