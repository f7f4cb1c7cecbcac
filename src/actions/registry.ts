/**
 * Built-in action plugins. `log` and `webhook` are always loaded; each provider folder is imported
 * only when a configuration uses it (its actions, or a `providers` entry of its type), so an agent
 * that enforces through two systems does not carry the code of nine.
 */
import { defineAction, type ActionFactory, type AnyActionFactory } from "../plugin/action.ts";
import { defineProvider, type AnyProviderFactory, type ProviderClient, type ProviderFactory } from "../plugin/provider.ts";
import { logAction } from "./log/index.ts";
import { webhookAction } from "./webhook/index.ts";

/** A provider folder's factories, their config types hidden. */
interface ProviderFolder {
  readonly provider?: AnyProviderFactory | undefined;
  readonly actions: readonly AnyActionFactory[];
}

/**
 * What a provider folder's index.ts exports: its provider (or undefined when its actions use another
 * folder's) and a list of actions, each with its own config type (`Configs`, one per entry).
 */
interface FolderExports<Configs extends readonly unknown[], C, P extends ProviderClient> {
  readonly provider?: ProviderFactory<C, P> | undefined;
  readonly actions: { readonly [K in keyof Configs]: ActionFactory<Configs[K]> };
}

function folder<Configs extends readonly unknown[], C, P extends ProviderClient>(exports: FolderExports<Configs, C, P>): ProviderFolder {
  const actions: AnyActionFactory[] = [];
  for (const action of exports.actions) actions.push(defineAction(action));
  return { provider: exports.provider && defineProvider(exports.provider), actions };
}

/** Provider folders by name: the prefix of their action types (`okta:suspend`) and their provider type. Add a folder and one line here. */
const FOLDERS: Readonly<Record<string, () => Promise<ProviderFolder>>> = {
  aws: () => import("./aws/index.ts").then(folder),
  okta: () => import("./okta/index.ts").then(folder),
  entra: () => import("./entra/index.ts").then(folder),
  kubernetes: () => import("./kubernetes/index.ts").then(folder),
  istio: () => import("./istio/index.ts").then(folder),
  linkerd: () => import("./linkerd/index.ts").then(folder),
  consul: () => import("./consul/index.ts").then(folder),
  vault: () => import("./vault/index.ts").then(folder),
  caep: () => import("./caep/index.ts").then(folder),
};

/** Names of the built-in provider folders. */
export const BUILTIN_FOLDERS: readonly string[] = Object.keys(FOLDERS);

/** Actions that need no provider, always available. */
export const coreActions: readonly AnyActionFactory[] = [defineAction(logAction), defineAction(webhookAction)];

export interface Builtins {
  readonly actions: readonly AnyActionFactory[];
  readonly providers: readonly AnyProviderFactory[];
}

/** The folder a type belongs to: `istio` for `istio:authorization_policy`, `kubernetes` for the provider type `kubernetes`. */
export function folderOf(type: string): string | undefined {
  const name = type.includes(":") ? type.slice(0, type.indexOf(":")) : type;
  return Object.hasOwn(FOLDERS, name) ? name : undefined;
}

/**
 * Loads the named folders (every folder when none are named) and the folders of the providers their
 * actions use, and returns their factories with the core actions.
 */
export async function loadBuiltins(folders?: Iterable<string>): Promise<Builtins> {
  const wanted = new Set(folders ?? BUILTIN_FOLDERS);
  const loaded = new Map<string, ProviderFolder>();
  while ([...wanted].some((f) => !loaded.has(f))) {
    const next = [...wanted].filter((f) => !loaded.has(f) && Object.hasOwn(FOLDERS, f));
    if (next.length === 0) break;
    for (const [name, mod] of await Promise.all(next.map(async (f) => [f, await FOLDERS[f]!()] as const))) {
      loaded.set(name, mod);
      for (const a of mod.actions) if (a.provider && Object.hasOwn(FOLDERS, a.provider)) wanted.add(a.provider);
    }
    for (const f of wanted) if (!Object.hasOwn(FOLDERS, f)) wanted.delete(f);
  }
  const mods = BUILTIN_FOLDERS.filter((f) => loaded.has(f)).map((f) => loaded.get(f)!);
  return {
    actions: [...coreActions, ...mods.flatMap((m) => m.actions)],
    providers: mods.flatMap((m) => (m.provider ? [m.provider] : [])),
  };
}
