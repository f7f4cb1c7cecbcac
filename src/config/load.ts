import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document } from "yaml";
import { z } from "zod";
import { ConfigError, VigilError, errorMessage, type ConfigIssue } from "../errors.ts";
import { readFileCappedSync } from "../util/read-capped.ts";
import { keyPath } from "../util/key-path.ts";
import { configSchema, type ParsedConfig } from "./schema.ts";
import { expandReferences } from "./expand.ts";
import { isSecretField, isSecretKey, registerSecret } from "../util/redact.ts";
import { loadRegistry, type Registry, type UsedTypes } from "./plugins.ts";
import { compilePolicies, type CompiledConfig } from "./compile.ts";
import { isCronInterval, loadCron } from "../util/cron.ts";
import { salvage } from "./salvage.ts";

/** A validated, frozen configuration with everything the engine needs resolved. */
export interface LoadedConfig extends CompiledConfig {
  readonly file: string;
  readonly dir: string;
  readonly raw: ParsedConfig;
  readonly registry: Registry;
  /** References that an offline load stood placeholders in for (empty otherwise). */
  readonly placeholders: readonly Placeholder[];
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Load on a machine other than the agent's (`vigil validate --offline`, `vigil plan`): a `${file:…}`
   * that cannot be read or an `${env:…}` that is not set becomes a placeholder (listed in
   * `placeholders`) instead of a problem, and what a plugin finds wrong with a placeholder is not
   * reported. Such a config is for looking at, never for running. Default false.
   */
  offline?: boolean;
}

/** A reference an offline load could not resolve, and the placeholder text stood in for it. */
export interface Placeholder {
  /** Key path of the value that holds the reference. */
  readonly path: string;
  readonly line: number | undefined;
  /** As written: `${file:/run/secrets/x}`, `${env:NAME}`. */
  readonly reference: string;
  /** Why it could not be resolved here: `cannot read /run/secrets/x: ENOENT`. */
  readonly reason: string;
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
  const placeholders: Placeholder[] = [];
  const tree = expandReferences(
    js ?? {},
    {
      env: options.env ?? process.env,
      baseDir: dir,
      locate,
      ...(options.offline
        ? {
            placeholder: (reference: string, reason: string, path: (string | number)[]) => {
              placeholders.push({ path: keyPath(path), line: locate(path), reference, reason });
              return placeholderText(reference);
            },
          }
        : {}),
    },
    issues,
  );
  // One error per cause: a value that could not be read is not also too short, missing or malformed;
  // nor is a placeholder (which stands for a value that exists only where the agent runs).
  const causes = [...issues.map((i) => i.path), ...placeholders.map((p) => p.path)];
  const independent = (i: ConfigIssue) => !causes.some((c) => samePlace(c, i.path));

  const valueAt = valueIn(tree);
  // Parsed once: compiling the schemas to code (zod's JIT) would cost more than it saves.
  const parsed = configSchema.safeParse(tree, { jitless: true });
  let raw: ParsedConfig | undefined;
  let touched: string[] = [];
  if (parsed.success) raw = parsed.data;
  else {
    issues.push(...zodIssues(parsed.error, [], locate, valueAt).filter(independent));
    // The later phase still runs, on a copy without the refused values, so its problems come now too.
    const saved = salvage(configSchema, tree, parsed.error.issues);
    if (saved) {
      raw = saved.data;
      touched = saved.touched.map(keyPath);
      issues.push(...zodIssues(new z.ZodError([...saved.later]), [], locate, valueAt).filter(independent));
    }
  }
  if (raw === undefined) {
    // Only placeholders were refused (a secret's form is checked) and nothing could stand in for
    // them: say so at their keys rather than fail with no problem named.
    if (issues.length === 0 && !parsed.success) {
      for (const i of zodIssues(parsed.error, [], locate, valueAt)) issues.push({ ...i, message: `${i.message} (an offline placeholder stands here: validate where the secret is readable)` });
    }
    throw new ConfigError(file, sortIssues(dedupe(issues)));
  }

  registerSecretKeys(raw);
  // Like every other path in the file, data_dir is relative to the config file.
  raw.agent.data_dir = resolve(dir, raw.agent.data_dir);
  const semantic: ConfigIssue[] = [];
  let compiled: CompiledConfig;
  let registry: Registry;
  try {
    registry = await loadRegistry(raw.plugins.map((p) => resolve(dir, p.module)), semantic, locate, usedTypes(raw));
    const intervals = [...raw.communication_policies.map((p) => p.continuous_verification.interval), ...(raw.identity_perimeter ? [raw.identity_perimeter.continuous_verification.interval] : [])];
    if (intervals.some(isCronInterval)) await loadCron();
    compiled = compilePolicies(raw, registry, semantic, { zodIssues: (err, path) => zodIssues(err, path, locate, valueAt), locate });
  } catch (err) {
    // Only a salvaged copy may hold what the later phase does not expect; the schema's problems stand.
    if (touched.length === 0) throw err;
    throw new ConfigError(file, sortIssues(dedupe(issues)));
  }
  issues.push(...semantic.filter((i) => independent(i) && !touched.some((t) => samePlace(t, i.path))));
  // With nothing left to report, a salvaged copy differs from the file only where placeholders stood in (offline).
  if (issues.length > 0) throw new ConfigError(file, sortIssues(dedupe(issues)));
  // Plugin factories hold schemas with lazy internals, so only plain data is frozen.
  return { ...deepFreeze(compiled), file, dir, raw: deepFreeze(raw), registry, placeholders: deepFreeze(placeholders) };
}

/** What stands in for a reference that cannot be resolved offline: long enough for length rules, and plainly not a real value. */
function placeholderText(reference: string): string {
  // No whitespace: secret rules (a bearer token has none) must not refuse the stand-in itself.
  return `<placeholder-for-${reference.replace(/\s/g, "_")}-not-available-here>`;
}

/**
 * Two key paths name the same place, or one lies inside the other (`a.b` and `a.b.c`, `a.b[0]`);
 * the root (`""`) is not a place.
 */
function samePlace(a: string, b: string): boolean {
  if (a === "" || b === "") return false;
  const inside = (x: string, y: string) => x.startsWith(y) && (x.length === y.length || x[y.length] === "." || x[y.length] === "[");
  return inside(a, b) || inside(b, a);
}

/** The same problem at the same place, reported by two paths through the code, is one problem. */
function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\n${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Zod issues → ConfigIssues with dotted paths and YAML lines, in vigil's words: zod's own English
 * ("Invalid input: expected number, received undefined") is replaced by a phrase that names what is
 * wrong (`port is required (a whole number)`, `expected one of https, http`); messages a schema
 * wrote itself are kept. Unknown keys get one issue each, at the key.
 */
export function zodIssues(
  error: z.ZodError,
  prefix: readonly PropertyKey[],
  locate: (path: readonly PropertyKey[]) => number | undefined,
  valueAt: (path: readonly PropertyKey[]) => unknown = () => NOT_KNOWN,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: keyPath([...path, key]), message: "unknown key", line: locate([...path, key]) });
    } else {
      out.push({ path: keyPath(path), message: phrase(issue, valueAt(path)), line: locate(path) });
    }
  }
  return out;
}

/** What `valueAt` answers when it cannot tell. */
const NOT_KNOWN = Symbol("not known");

/** The value at `path` of a parsed YAML tree (undefined when absent). */
function valueIn(tree: unknown): (path: readonly PropertyKey[]) => unknown {
  return (path) => {
    let node = tree;
    for (const k of path) {
      if (node === null || typeof node !== "object" || !Object.hasOwn(node, k as string)) return undefined;
      node = (node as Record<string, unknown>)[k as string];
    }
    return node;
  };
}

const EN = z.locales.en();

/** Whether zod wrote the message itself (its English locale), rather than the schema. */
function zodWrote(issue: z.core.$ZodIssue): boolean {
  if (issue.code === "invalid_type" && /^Invalid input: expected \S+, received \S+$/.test(issue.message)) return true;
  if (issue.code === "invalid_union" && (issue.message === "Invalid input" || /^Invalid discriminator value/.test(issue.message))) return true;
  return issue.message === EN.localeError(issue as never);
}

/** How a type zod expects is said in a config. */
const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: "text",
  number: "a number",
  int: "a whole number",
  bigint: "a whole number",
  boolean: "true or false",
  array: "a list",
  tuple: "a list",
  object: "a mapping",
  record: "a mapping",
  map: "a mapping",
  null: "null",
  date: "a date",
};

/** How a value's type is said when it is the wrong one. */
const RECEIVED_WORDS: Readonly<Record<string, string>> = { string: "text", number: "a number", boolean: "true or false", array: "a list", object: "a mapping", null: "null" };

const typeWords = (t: string) => TYPE_WORDS[t] ?? t;
const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
const plural = (n: number | bigint, one: string, many: string) => `${n} ${Number(n) === 1 ? one : many}`;

/**
 * One issue in vigil's words; a message the schema wrote is kept as it is. `value` is what the file
 * holds there (`NOT_KNOWN` when the caller cannot tell): a short value is quoted back, unless the
 * key names a secret.
 */
function phrase(issue: z.core.$ZodIssue, value: unknown): string {
  if (!zodWrote(issue)) return issue.message;
  const last = issue.path.at(-1);
  const name = typeof last === "string" ? last : "a value";
  const missing = value === undefined;
  const got = value !== NOT_KNOWN && !missing && !(typeof last === "string" && isSecretKey(last)) && (typeof value === "number" || typeof value === "boolean" || (typeof value === "string" && value.length <= 40)) ? `, got ${JSON.stringify(value)}` : "";
  switch (issue.code) {
    case "invalid_type": {
      const received = /received (\S+)$/.exec(issue.message)?.[1];
      if (missing || received === "undefined") return `${name} is required (${typeWords(issue.expected)})`;
      return `expected ${typeWords(issue.expected)}, got ${RECEIVED_WORDS[received ?? ""] ?? received ?? "something else"}${got ? ` (${got.slice(6)})` : ""}`;
    }
    case "invalid_value":
      return (issue.values.length === 1 ? `expected ${show(issue.values[0])}` : `expected one of ${issue.values.map(show).join(", ")}`) + got;
    case "invalid_union": {
      const options = (issue as { options?: unknown[] }).options;
      if (Array.isArray(options) && options.length > 0) return missing ? `${name} is required: one of ${options.map(show).join(", ")}` : `expected one of ${options.map(show).join(", ")}${got}`;
      if (missing) {
        const kinds = issue.errors.map((b) => b[0]).filter((i): i is z.core.$ZodIssue => i?.code === "invalid_type").map((i) => typeWords((i as { expected: string }).expected));
        if (kinds.length > 0) return `${name} is required (${[...new Set(kinds)].join(" or ")})`;
      }
      const firsts = issue.errors.map((branch) => branch[0]).filter((i): i is z.core.$ZodIssue => i !== undefined);
      if (firsts.length > 0 && firsts.every((i) => i.code === "invalid_type" && /received undefined$/.test(i.message))) {
        return `${name} is required (${[...new Set(firsts.map((i) => typeWords((i as { expected: string }).expected)))].join(" or ")})`;
      }
      const wanted = [...new Set(firsts.map((i) => (i.code === "invalid_type" ? typeWords(i.expected) : i.code === "invalid_value" ? i.values.map(show).join(", ") : undefined)))];
      return wanted.length > 0 && !wanted.includes(undefined) ? `expected ${wanted.join(" or ")}` : `none of the accepted forms: ${firsts.map((i) => phrase(i, NOT_KNOWN)).join("; or ")}`;
    }
    case "too_small": {
      if (missing) return `${name} is required`;
      const n = issue.minimum;
      if (issue.origin === "string") return Number(n) <= 1 ? "must not be empty" : `must be at least ${plural(n, "character", "characters")}`;
      if (issue.origin === "array" || issue.origin === "set") return Number(n) <= 1 ? "must not be empty" : `must hold at least ${plural(n, "item", "items")}`;
      return issue.inclusive === false ? `must be more than ${n}` : `must be at least ${n}`;
    }
    case "too_big": {
      const n = issue.maximum;
      if (issue.origin === "string") return `must be at most ${plural(n, "character", "characters")}`;
      if (issue.origin === "array" || issue.origin === "set") return `must hold at most ${plural(n, "item", "items")}`;
      return issue.inclusive === false ? `must be less than ${n}` : `must be at most ${n}`;
    }
    case "invalid_format": {
      if (issue.format === "regex") return `must match ${(issue as { pattern?: string }).pattern ?? "the expected pattern"}`;
      const article = /^[aeiou]/i.test(issue.format) ? "an" : "a";
      return issue.format === "url" ? "expected a URL" : `expected ${article} ${issue.format}`;
    }
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}`;
    case "invalid_key":
      return `the key ${show(last)}: ${issue.issues.map((i) => phrase(i, NOT_KNOWN)).join("; ")}`;
    case "invalid_element":
      return issue.issues.map((i) => phrase(i, NOT_KNOWN)).join("; ");
    default:
      return issue.message;
  }
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

/** The action, provider and inventory types a parsed config names (so only their built-ins load). */
function usedTypes(raw: ParsedConfig): UsedTypes {
  const levels = (e: { full_access: readonly { type: string }[]; read_only: readonly { type: string }[]; deny: readonly { type: string }[] } | undefined) =>
    e ? [...e.full_access, ...e.read_only, ...e.deny].map((a) => a.type) : [];
  return {
    actions: [...levels(raw.enforcement), ...raw.communication_policies.flatMap((p) => levels(p.enforcement)), ...levels(raw.identity_perimeter?.enforcement)],
    providers: Object.entries(raw.providers).map(([name, entry]) => entry.type ?? name),
    inventories: raw.inventories.map((i) => i.type),
  };
}

/**
 * Values under secret-named keys are secrets even when written inline. A communication policy's
 * `authorization` names a mechanism (`oauth2`, `none`), not a credential (`isSecretField`):
 * registering it would scrub that word from every log line and plan.
 */
function registerSecretKeys(value: unknown, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 32) return;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string" && isSecretField(k, v)) registerSecret(v);
    else registerSecretKeys(v, depth + 1);
  }
}

function deepFreeze<T>(value: T, seen = new WeakSet<object>()): T {
  if (value === null || typeof value !== "object" || seen.has(value as object)) return value;
  if (value instanceof Map || value instanceof Set || typeof (value as { then?: unknown }).then === "function") return value;
  seen.add(value as object);
  for (const v of Object.values(value)) deepFreeze(v, seen);
  return Object.isFrozen(value) ? value : Object.freeze(value);
}
