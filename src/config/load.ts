import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document } from "yaml";
import type { z } from "zod";
import { ConfigError, VigilError, errorMessage, type ConfigIssue } from "../errors.ts";
import { readFileCappedSync } from "../util/read-capped.ts";
import { keyPath } from "../util/key-path.ts";
import { configSchema, type ParsedConfig } from "./schema.ts";
import { expandReferences } from "./expand.ts";
import { isSecretKey, registerSecret } from "../util/redact.ts";
import { loadRegistry, type Registry, type UsedTypes } from "./plugins.ts";
import { compilePolicies, type CompiledConfig } from "./compile.ts";

/** A validated, frozen configuration with everything the engine needs resolved. */
export interface LoadedConfig extends CompiledConfig {
  readonly file: string;
  readonly dir: string;
  readonly raw: ParsedConfig;
  readonly registry: Registry;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads a config file: YAML → `${env:…}`/`${file:…}` expansion → schema validation → plugin config
 * validation → policy compilation → freeze. Throws a ConfigError listing every problem with its key
 * path and line, or a VigilError(VIGIL_ERR_CONFIG_READ) when the file cannot be read.
 */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const full = resolve(file);
  let buf: Buffer | undefined;
  try {
    buf = readFileCappedSync(full, MAX_CONFIG_BYTES);
  } catch (err) {
    throw new VigilError("VIGIL_ERR_CONFIG_READ", `cannot read config ${full}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (buf === undefined) throw tooLarge(full);
  return loadConfigText(buf.toString("utf8"), full, options);
}

/**
 * Largest config file vigil parses: 4 MiB. Parsing costs about a hundred times the file's size in
 * memory, so a larger file is refused before it is parsed (a real config is a few KiB).
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Most YAML aliases (`*name`) a config may dereference. Each one copies its anchor's tree, so a few
 * nested anchors (an "alias bomb") expand to billions of nodes; `yaml` refuses past this count.
 */
export const MAX_CONFIG_ALIASES = 100;

function tooLarge(file: string): ConfigError {
  return new ConfigError(file, [{ path: "", message: `the file is larger than ${MAX_CONFIG_BYTES} bytes (4 MiB), the most a config may hold` }]);
}

export async function loadConfigText(text: string, file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  if (text.length > MAX_CONFIG_BYTES || Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) throw tooLarge(file);
  const dir = dirname(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locate = (path: readonly PropertyKey[]) => lineOf(doc, lines, path);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: "", message: `YAML: ${e.message.split("\n")[0]}`, line: lines.linePos(e.pos[0]).line })),
    );
  }
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_CONFIG_ALIASES });
  } catch (err) {
    // yaml throws a ReferenceError for too many aliases (and for an alias to an unknown anchor).
    throw new ConfigError(file, [{ path: "", message: `YAML: ${errorMessage(err)} (at most ${MAX_CONFIG_ALIASES} aliases are expanded)` }]);
  }
  const issues: ConfigIssue[] = [];
  const tree = expandReferences(js ?? {}, { env: options.env ?? process.env, baseDir: dir, locate }, issues);

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) issues.push(...zodIssues(parsed.error, [], locate));
  if (!parsed.success || issues.length > 0) throw new ConfigError(file, sortIssues(issues));

  const raw = parsed.data;
  registerSecretKeys(raw);
  const registry = await loadRegistry(raw.plugins.map((p) => resolve(dir, p.module)), issues, locate, usedTypes(raw));
  const compiled = compilePolicies(raw, registry, issues, { zodIssues: (err, path) => zodIssues(err, path, locate), locate });
  if (issues.length > 0) throw new ConfigError(file, sortIssues(issues));
  // Plugin factories hold schemas with lazy internals, so only plain data is frozen.
  return { ...deepFreeze(compiled), file, dir, raw: deepFreeze(raw), registry };
}

/** Zod issues → ConfigIssues with dotted paths and YAML lines; unknown keys get one issue each. */
export function zodIssues(error: z.ZodError, prefix: readonly PropertyKey[], locate: (path: readonly PropertyKey[]) => number | undefined): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: keyPath([...path, key]), message: "unknown key", line: locate([...path, key]) });
    } else {
      out.push({ path: keyPath(path), message: issue.message, line: locate(path) });
    }
  }
  return out;
}


function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => (a.line ?? 1e9) - (b.line ?? 1e9) || a.path.localeCompare(b.path));
}

/** Line of the deepest node on `path` that exists (a missing key points at its parent). */
function lineOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = rangeStart(node);
  for (const raw of path) {
    const key = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (node && typeof node === "object" && "items" in node && Array.isArray((node as { items: unknown[] }).items) && typeof key === "number") {
      node = (node as { items: unknown[] }).items[key];
      if (node === undefined) break;
      offset = rangeStart(node) ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}

/** The action and provider types a parsed config names (so only their provider folders load). */
function usedTypes(raw: ParsedConfig): UsedTypes {
  const levels = (e: { full_access: readonly { type: string }[]; read_only: readonly { type: string }[]; deny: readonly { type: string }[] } | undefined) =>
    e ? [...e.full_access, ...e.read_only, ...e.deny].map((a) => a.type) : [];
  return {
    actions: [...levels(raw.enforcement), ...raw.communication_policies.flatMap((p) => levels(p.enforcement)), ...levels(raw.identity_perimeter?.enforcement)],
    providers: Object.entries(raw.providers).map(([name, entry]) => entry.type ?? name),
  };
}

/**
 * Values under secret-named keys are secrets even when written inline. A communication policy's
 * `authorization` names a mechanism (`oauth2`, `none`), not a credential: registering it would
 * scrub that word from every log line and plan.
 */
function registerSecretKeys(value: unknown, depth = 0, parent = ""): void {
  if (value === null || typeof value !== "object" || depth > 32) return;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string" && isSecretKey(k)) {
      if (!(parent === "communication_policies" && k === "authorization")) registerSecret(v);
    } else registerSecretKeys(v, depth + 1, Array.isArray(value) ? parent : k);
  }
}

function deepFreeze<T>(value: T, seen = new WeakSet<object>()): T {
  if (value === null || typeof value !== "object" || seen.has(value as object)) return value;
  if (value instanceof Map || value instanceof Set || typeof (value as { then?: unknown }).then === "function") return value;
  seen.add(value as object);
  for (const v of Object.values(value)) deepFreeze(v, seen);
  return Object.isFrozen(value) ? value : Object.freeze(value);
}
