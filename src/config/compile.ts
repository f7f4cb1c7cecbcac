/**
 * Turns a parsed config into what the engine runs: policies with their selectors, checks, rules and
 * actions, each plugin section validated against its factory's schema. Problems are collected.
 */
import cron from "node-cron";
import type { z } from "zod";
import type { ConfigIssue } from "../errors.ts";
import { keyPath } from "../util/key-path.ts";
import type { ActionEntry, ParsedConfig } from "./schema.ts";
import type { Registry } from "./plugins.ts";
import type { AccessLevel } from "../policy/model.ts";
import type { Configured } from "../plugin/configured.ts";
import type { Check } from "../plugin/check.ts";
import type { PluginContext } from "../plugin/context.ts";
import type { Action, ActionContext } from "../plugin/action.ts";
import type { ProviderContext, ProviderInstance } from "../plugin/provider.ts";
import type { Inventory } from "../plugin/inventory.ts";
import type { DecisionRules, GuardLimits, OnUnknown } from "../policy/decide.ts";
import { compileSelector, type SelectorSpec, type SubjectMatcher } from "../policy/selector.ts";
import { formatDuration, parseDuration } from "../util/duration.ts";
import { own, setOwn } from "../util/own.ts";
import { didYouMean } from "../util/suggest.ts";

export interface CompiledCheck {
  readonly name: string;
  readonly type: string;
  /** False when no plugin produces results: they arrive as signals only. */
  readonly pull: boolean;
  /** Plugin config after its schema (undefined when no plugin has the type). */
  readonly config: unknown;
  readonly on_unknown?: OnUnknown;
  readonly hold_grace?: number;
  readonly ttl?: number;
  readonly timeout: number;
}

export interface CompiledAction {
  /** Stable name: used in idempotency keys and the audit log. */
  readonly name: string;
  readonly type: string;
  readonly level: AccessLevel;
  readonly dry_run?: boolean;
  readonly config: unknown;
  /** The `providers.<name>` entry the action uses, when its factory names a provider type. */
  readonly provider?: string;
}

/** A `providers.<name>` entry after its factory's schema. */
export interface CompiledProvider {
  readonly name: string;
  readonly type: string;
  readonly config: unknown;
}

/** An `inventories[]` entry after its factory's schema. */
export interface CompiledInventory {
  readonly type: string;
  readonly config: unknown;
}

/**
 * What creates each configured plugin, bound when its entry was validated to the config its own
 * factory's schema produced. Keyed by the compiled entry (an action entry is one object, shared by
 * every policy inheriting the top-level `enforcement`); pull checks only.
 */
export interface Creators {
  readonly checks: ReadonlyMap<CompiledCheck, (ctx: PluginContext) => Check>;
  readonly providers: ReadonlyMap<CompiledProvider, (ctx: ProviderContext) => ProviderInstance>;
  readonly actions: ReadonlyMap<CompiledAction, (ctx: ActionContext) => Action>;
  readonly inventories: ReadonlyMap<CompiledInventory, (ctx: PluginContext) => Inventory>;
}

export interface Schedule {
  /** node-cron expression (6 fields, seconds first, or 5). */
  readonly cron: string;
  /** Subjects are spread over this many ms after each tick. */
  readonly spread: number;
  /** Written form, for humans. */
  readonly text: string;
}

export interface PolicySpec {
  readonly name: string;
  readonly kind: "communication" | "perimeter";
  /** Selector as written, for display. */
  readonly covers: string;
  readonly edge?: { readonly source: string; readonly destination: string; readonly port: number; readonly protocol: string; readonly authentication: string; readonly authorization: string };
  readonly schedule: Schedule;
  readonly checks: readonly string[];
  readonly rules: DecisionRules;
  readonly on_unknown: OnUnknown;
  readonly hold_grace: number;
  readonly dry_run: boolean;
  readonly actions: Readonly<Record<AccessLevel, readonly CompiledAction[]>>;
  readonly limits: GuardLimits;
  readonly retry: { readonly attempts: number; readonly delay: number; readonly max_delay: number };
  /** Re-drives of an action the queue gave up on (`enforcement.redrive`), in ms. */
  readonly redrive: { readonly delay: number; readonly max_delay: number };
}

export interface CompiledConfig {
  readonly policies: readonly PolicySpec[];
  readonly checks: Readonly<Record<string, CompiledCheck>>;
  readonly inventories: readonly CompiledInventory[];
  /** Configured providers, plus those actions use with their defaults (an empty entry that validates). */
  readonly providers: Readonly<Record<string, CompiledProvider>>;
  readonly default_security_rule: "deny_all" | "allow_all";
  /** Per policy name: does a subject belong to it. Kept out of PolicySpec so specs stay plain data. */
  readonly matchers: ReadonlyMap<string, SubjectMatcher>;
  readonly exemptions: ReadonlyMap<string, readonly SubjectMatcher[]>;
  /** Creates the configured plugins. Kept out of the specs so they stay plain data. */
  readonly creators: Creators;
  /** Problems that do not stop the config from loading (a policy source only a dynamic inventory can yield). */
  readonly warnings: readonly ConfigIssue[];
}

interface CompileHelpers {
  zodIssues(error: z.ZodError, path: readonly PropertyKey[]): ConfigIssue[];
  locate(path: readonly PropertyKey[]): number | undefined;
}

/** `checks.<name>.type` of a check without a plugin: its results arrive as signals only. */
export const PUSH_TYPE = "push";

/**
 * The checks the seed config names. All four are built-in plugins; a plugin registry without one of
 * them (an embedding that leaves it out) still knows the name, fed by signals only.
 */
export const SEED_CHECKS: readonly string[] = ["certificate_validity", "device_compliance", "user_risk_score", "anomaly_detection"];

const PERIMETER_CHECKS = { require_mfa: "mfa", require_managed_device: "managed_device", require_location_check: "location" } as const;
const LEVELS: readonly AccessLevel[] = ["full_access", "read_only", "deny"];

export function compilePolicies(cfg: ParsedConfig, registry: Registry, issues: ConfigIssue[], h: CompileHelpers): CompiledConfig {
  const issue = (path: PropertyKey[], message: string) => issues.push({ path: keyPath(path), message, line: h.locate(path) });
  const warnings: ConfigIssue[] = [];
  const creators = {
    checks: new Map<CompiledCheck, (ctx: PluginContext) => Check>(),
    providers: new Map<CompiledProvider, (ctx: ProviderContext) => ProviderInstance>(),
    actions: new Map<CompiledAction, (ctx: ActionContext) => Action>(),
    inventories: new Map<CompiledInventory, (ctx: PluginContext) => Inventory>(),
  } satisfies Creators;
  /** Validates an entry with its factory's schema; the config and the bound create(), or undefined with the issues recorded. */
  const configure = <R extends Configured<never, unknown>>(factory: { configure(raw: unknown): R }, value: unknown, path: PropertyKey[]): Extract<R, { success: true }> | undefined => {
    const r = factory.configure(value);
    if (r.success) return r as Extract<R, { success: true }>;
    issues.push(...h.zodIssues(r.error, path));
    return undefined;
  };

  const perimeter = cfg.identity_perimeter;
  const rba = perimeter?.risk_based_access ?? { low_risk: "full_access", medium_risk: "read_only", high_risk: "deny" };

  // Checks: every name a policy uses or the checks section declares.
  const implied = new Map<string, Record<string, unknown>>();
  if (perimeter) {
    for (const [flag, check] of Object.entries(PERIMETER_CHECKS)) {
      if (perimeter[flag as keyof typeof PERIMETER_CHECKS]) implied.set(check, check === "location" ? { allowed: perimeter.allowed_locations } : {});
    }
    implied.set("session_age", { max_age: formatDuration(perimeter.session_duration) });
  }
  // Where each check name is used, so an unknown one is reported at the key that names it.
  const uses = new Map<string, PropertyKey[][]>();
  const use = (name: string, path: PropertyKey[]) => uses.set(name, [...(uses.get(name) ?? []), path]);
  for (const name of implied.keys()) use(name, ["identity_perimeter"]);
  cfg.communication_policies.forEach((p, i) => p.continuous_verification.checks.forEach((name, j) => use(name, ["communication_policies", i, "continuous_verification", "checks", j])));
  perimeter?.continuous_verification.checks.forEach((name, j) => use(name, ["identity_perimeter", "continuous_verification", "checks", j]));
  const declared = Object.keys(cfg.checks);
  const knownNames = () => [...new Set([...declared, ...registry.checks.keys(), ...SEED_CHECKS])];
  const checks: Record<string, CompiledCheck> = {};
  if (registry.checks.has(PUSH_TYPE)) issue(["plugins"], `a check plugin may not be of type "${PUSH_TYPE}": that type declares a check fed by signals only`);
  for (const name of new Set([...uses.keys(), ...declared])) {
    const entry = own(cfg.checks, name);
    const { type: explicitType, on_unknown, hold_grace, ttl, timeout, ...pluginKeys } = entry ?? { timeout: 30_000 };
    const type = explicitType ?? name;
    const factory = type === PUSH_TYPE ? undefined : registry.checks.get(type);
    const path = ["checks", name];
    if (!factory) {
      if (explicitType !== undefined && explicitType !== PUSH_TYPE) {
        issue([...path, "type"], `unknown check type "${explicitType}"${didYouMean(explicitType, [...registry.checks.keys(), PUSH_TYPE])}; known: ${[...registry.checks.keys()].join(", ")}`);
      } else if (explicitType === undefined && !SEED_CHECKS.includes(name)) {
        // A name nothing defines is a typo far more often than a new signal: refuse it rather than wait for signals that never come.
        const where = entry ? [path] : (uses.get(name) ?? [path]);
        const hint = didYouMean(name, knownNames());
        for (const at of where) {
          const pushSeeds = SEED_CHECKS.filter((c) => !registry.checks.has(c));
          const seeds = pushSeeds.length > 0 ? `, a seed check whose results arrive as signals (${pushSeeds.join(", ")})` : "";
          issue(at, `unknown check "${name}"${hint || "."} A check is a plugin (${[...registry.checks.keys()].join(", ")})${seeds}, or declared under checks: — declare one fed only by signals as checks.${name}: {type: ${PUSH_TYPE}}`);
        }
      }
      for (const key of Object.keys(pluginKeys)) issue([...path, key], `unknown key: check "${name}" has no plugin (its results arrive as signals), so only type, on_unknown, hold_grace, ttl and timeout apply`);
      setOwn(checks, name, { name, type, pull: false, config: undefined, on_unknown, hold_grace, ttl, timeout });
      continue;
    }
    const configured = configure(factory, { ...implied.get(name), ...pluginKeys }, path);
    // A configuration that gathers nothing (pull false) stays push-only, as if the check had no plugin.
    const pull = configured?.pull ?? true;
    const check: CompiledCheck = { name, type, pull, config: configured?.config, on_unknown, hold_grace, ttl, timeout };
    setOwn(checks, name, check);
    if (configured && pull) creators.checks.set(check, configured.create);
  }
  // Other places that name a check: a typo there would silently weigh or route nothing.
  for (const name of Object.keys(cfg.decision.scoring.weights)) {
    if (!Object.hasOwn(checks, name) && !registry.checks.has(name) && !SEED_CHECKS.includes(name)) {
      issue(["decision", "scoring", "weights", name], `unknown check "${name}"${didYouMean(name, knownNames())} (a weight names a check a policy uses)`);
    }
  }
  const defaultCheck = cfg.signals.alertmanager.default_check;
  if (!Object.hasOwn(checks, defaultCheck) && !registry.checks.has(defaultCheck) && !SEED_CHECKS.includes(defaultCheck)) {
    issue(["signals", "alertmanager", "default_check"], `unknown check "${defaultCheck}"${didYouMean(defaultCheck, knownNames())} (alerts without a check label become signals for this check)`);
  }
  // Providers: every configured entry, validated by its factory.
  const providers: Record<string, CompiledProvider> = {};
  for (const [name, entry] of Object.entries(cfg.providers)) {
    const { type: explicitType, ...own } = entry;
    const type = explicitType ?? name;
    const factory = registry.providers.get(type);
    const path = ["providers", name];
    if (!factory) {
      issue(explicitType ? [...path, "type"] : path, `unknown provider type "${type}"; known: ${[...registry.providers.keys()].join(", ")}`);
      continue;
    }
    const configured = configure(factory, own, path);
    const provider: CompiledProvider = { name, type, config: configured?.config };
    setOwn(providers, name, provider);
    if (configured) creators.providers.set(provider, configured.create);
  }
  /** The provider entry an action uses: the one it names, else the one named after the type, else the type's defaults. */
  const providerFor = (want: string, named: string | undefined, action: string, path: PropertyKey[]): string | undefined => {
    const name = named ?? want;
    const found = own(providers, name);
    if (found) {
      if (found.type !== want) issue(named ? [...path, "provider"] : path, `${action} needs a provider of type "${want}", but providers.${name} is of type "${found.type}"`);
      return name;
    }
    if (named === undefined && own(cfg.providers, name) === undefined) {
      const factory = registry.providers.get(want);
      const defaults = factory?.configure({});
      if (defaults?.success) {
        const provider: CompiledProvider = { name, type: want, config: defaults.config };
        setOwn(providers, name, provider);
        creators.providers.set(provider, defaults.create);
        return name;
      }
    }
    if (own(cfg.providers, name) === undefined) {
      issue(named ? [...path, "provider"] : path, `${action} needs providers.${name} (type ${want}), which is not configured${registry.providers.has(want) ? "" : `; no provider of type "${want}" is registered`}`);
    }
    return undefined;
  };

  const policies: PolicySpec[] = [];
  const matchers = new Map<string, SubjectMatcher>();
  const exemptions = new Map<string, SubjectMatcher[]>();
  const globalExempt = cfg.exempt.map((s) => compileSelector(s as SelectorSpec));
  const names = new Map<string, string>();

  // The top-level `enforcement` is compiled once, however many policies inherit it, so each of its problems is reported once.
  let inherited: Record<AccessLevel, CompiledAction[]> | undefined;
  const actionsFor = (override: ParsedConfig["communication_policies"][number]["enforcement"], basePath: PropertyKey[]) => {
    if (!override && inherited) return inherited;
    const source = override ?? cfg.enforcement;
    const out = {} as Record<AccessLevel, CompiledAction[]>;
    for (const level of LEVELS) {
      out[level] = source[level].map((entry: ActionEntry, i: number) => compileAction(entry, level, i, [...basePath, level, i]));
    }
    if (!override) inherited = out;
    return out;
  };
  // Where each action is written, so a problem with its name is reported at it (once, however many policies inherit it).
  const actionPaths = new Map<CompiledAction, PropertyKey[]>();
  const explicitlyNamed = new Set<CompiledAction>();
  const reported = new Set<string>();
  const located = (action: CompiledAction, path: PropertyKey[], named: boolean): CompiledAction => {
    actionPaths.set(action, path);
    if (named) explicitlyNamed.add(action);
    return action;
  };
  const compileAction = (entry: ActionEntry, level: AccessLevel, i: number, path: PropertyKey[]): CompiledAction => {
    const { type, name, dry_run, provider: named, ...own } = entry;
    const factory = registry.actions.get(type);
    if (!factory) {
      issue([...path, "type"], `unknown action type "${type}"; known: ${[...registry.actions.keys()].join(", ")}`);
      return located({ name: name ?? `${level}[${i}]:${type}`, type, level, dry_run, config: undefined }, path, name !== undefined);
    }
    if (named !== undefined && !factory.provider) issue([...path, "provider"], `action ${type} uses no provider`);
    const provider = factory.provider ? providerFor(factory.provider, named, `action ${type}`, path) : undefined;
    const configured = configure(factory, own, path);
    const action: CompiledAction = { name: name ?? `${level}[${i}]:${type}`, type, level, dry_run, config: configured?.config, ...(provider ? { provider } : {}) };
    if (configured) creators.actions.set(action, configured.create);
    return located(action, path, name !== undefined);
  };
  const register = (spec: PolicySpec, matcher: SubjectMatcher, exempt: readonly SelectorSpec[], path: PropertyKey[]) => {
    const seen = names.get(spec.name);
    if (seen) issue([...path, "name"], `policy name "${spec.name}" is already used by ${seen}; set a unique name`);
    names.set(spec.name, keyPath(path));
    // Names key idempotency and the audit log across all three levels, so they must differ across levels too.
    const first = new Map<string, PropertyKey[]>();
    for (const a of (["full_access", "read_only", "deny"] as const).flatMap((l) => spec.actions[l])) {
      const at = actionPaths.get(a) ?? path;
      const seenAt = first.get(a.name);
      if (!seenAt) first.set(a.name, at);
      else if (!reported.has(keyPath(at))) {
        reported.add(keyPath(at));
        issue(explicitlyNamed.has(a) ? [...at, "name"] : at, `action name "${a.name}" is already used by ${keyPath(seenAt)}; action names must be unique across the levels of a policy`);
      }
    }
    policies.push(spec);
    matchers.set(spec.name, matcher);
    exemptions.set(spec.name, [...globalExempt, ...exempt.map(compileSelector)]);
  };
  const rulesFor = (override: { confirm?: number; restore_after?: number; cooldown?: number } | undefined, policyRba: typeof rba): DecisionRules => ({
    confirm: override?.confirm ?? cfg.decision.confirm,
    restore_after: override?.restore_after ?? cfg.decision.restore_after,
    cooldown: override?.cooldown ?? cfg.decision.cooldown,
    scoring: cfg.decision.scoring,
    risk_based_access: policyRba,
  });
  const retry = { attempts: cfg.enforcement.retry.attempts, delay: cfg.enforcement.retry.delay, max_delay: cfg.enforcement.retry.max_delay };
  const redrive = { delay: cfg.enforcement.redrive.delay, max_delay: cfg.enforcement.redrive.max_delay };

  cfg.communication_policies.forEach((p, i) => {
    const path = ["communication_policies", i];
    const name = p.name ?? `${p.source}-to-${p.destination}`.replace(/[^A-Za-z0-9_.-]+/g, "_");
    const schedule = compileSchedule(p.continuous_verification.interval, [...path, "continuous_verification", "interval"], issue);
    register(
      {
        name,
        kind: "communication",
        covers: `source ${p.source}`,
        edge: { source: p.source, destination: p.destination, port: p.port, protocol: p.protocol, authentication: p.authentication, authorization: p.authorization },
        schedule,
        checks: p.continuous_verification.checks,
        rules: rulesFor(p.decision, p.risk_based_access ?? rba),
        on_unknown: p.decision?.on_unknown ?? cfg.decision.on_unknown,
        hold_grace: p.decision?.hold_grace ?? cfg.decision.hold_grace,
        dry_run: p.dry_run ?? cfg.agent.dry_run,
        actions: actionsFor(p.enforcement, p.enforcement ? [...path, "enforcement"] : ["enforcement"]),
        limits: p.enforcement?.limits ?? cfg.enforcement.limits,
        retry,
        redrive,
      },
      (s) => s.id === p.source || s.identity === p.source,
      p.exempt as SelectorSpec[],
      path,
    );
  });
  if (perimeter) {
    const path = ["identity_perimeter"];
    register(
      {
        name: perimeter.name,
        kind: "perimeter",
        covers: JSON.stringify(perimeter.applies_to),
        schedule: compileSchedule(perimeter.continuous_verification.interval, [...path, "continuous_verification", "interval"], issue),
        checks: [...new Set([...implied.keys(), ...perimeter.continuous_verification.checks])],
        rules: rulesFor(perimeter.decision, perimeter.risk_based_access),
        on_unknown: perimeter.decision?.on_unknown ?? cfg.decision.on_unknown,
        hold_grace: perimeter.decision?.hold_grace ?? cfg.decision.hold_grace,
        dry_run: perimeter.dry_run ?? cfg.agent.dry_run,
        actions: actionsFor(perimeter.enforcement, perimeter.enforcement ? [...path, "enforcement"] : ["enforcement"]),
        limits: perimeter.enforcement?.limits ?? cfg.enforcement.limits,
        retry,
        redrive,
      },
      compileSelector(perimeter.applies_to as SelectorSpec),
      perimeter.exempt as SelectorSpec[],
      path,
    );
  }

  // Validate the top-level enforcement even when no policy inherits it: a mistake there should not wait for one.
  if (!inherited) actionsFor(undefined, ["enforcement"]);

  const inventories = cfg.inventories.map((entry, i): CompiledInventory => {
    const { type, ...own } = entry;
    const factory = registry.inventories.get(type);
    if (!factory) {
      issue(["inventories", i, "type"], `unknown inventory type "${type}"; known: ${[...registry.inventories.keys()].join(", ")}`);
      return { type, config: undefined };
    }
    const configured = configure(factory, own, ["inventories", i]);
    const inventory: CompiledInventory = { type, config: configured?.config };
    if (configured) creators.inventories.set(inventory, configured.create);
    return inventory;
  });
  const ids = new Map<string, number>();
  cfg.inventories.forEach((inv, i) => {
    if (inv.type !== "static" || !Array.isArray(inv.subjects)) return;
    (inv.subjects as { id?: unknown }[]).forEach((s, j) => {
      if (typeof s?.id !== "string") return;
      if (ids.has(s.id)) issue(["inventories", i, "subjects", j, "id"], `subject id "${s.id}" is listed twice`);
      ids.set(s.id, i);
    });
  });

  checkEdges(cfg, issue, (path, message) => warnings.push({ path: keyPath(path), message, line: h.locate(path) }));

  return { policies, checks, inventories, providers, default_security_rule: cfg.default_security_rule, matchers, exemptions, creators, warnings };
}

/**
 * A communication policy's `source` is the subject whose access it decides; a source no inventory can
 * yield covers nobody, silently. With only static inventories (which cannot change at run time) that
 * is certain: an error. Where a dynamic inventory (a file, a plugin) may still yield it, it is a
 * warning when a static subject's name is close enough to be what was meant. A `destination` is
 * addressed by name and may be a service vigil does not verify (a database behind a mesh policy), so
 * it is a warning, and only when it is close to a known subject's name.
 */
function checkEdges(cfg: ParsedConfig, error: (path: PropertyKey[], message: string) => void, warn: (path: PropertyKey[], message: string) => void): void {
  if (cfg.communication_policies.length === 0) return;
  const names = new Set<string>();
  for (const inv of cfg.inventories) {
    if (inv.type !== "static" || !Array.isArray(inv.subjects)) continue;
    for (const s of inv.subjects as { id?: unknown; identity?: unknown }[]) {
      if (typeof s?.id === "string") names.add(s.id);
      if (typeof s?.identity === "string") names.add(s.identity);
    }
  }
  const staticOnly = cfg.inventories.every((inv) => inv.type === "static");
  cfg.communication_policies.forEach((p, i) => {
    for (const end of ["source", "destination"] as const) {
      const name = p[end];
      if (names.has(name)) continue;
      const path = ["communication_policies", i, end];
      const hint = didYouMean(name, names);
      if (end === "source" && staticOnly) {
        error(
          path,
          cfg.inventories.length === 0
            ? `no inventory is configured, so no subject can be "${name}" and the policy covers no subject`
            : `no subject has id or identity "${name}"${hint}; the policy would cover no subject, and static inventories cannot add one at run time`,
        );
      } else if (hint !== "") {
        warn(path, `no ${staticOnly ? "" : "static "}subject has id or identity "${name}"${hint}`);
      }
    }
  });
}

/** `5m` → a node-cron expression firing every 5 minutes; cron expressions pass through. */
export function compileSchedule(text: string, path: PropertyKey[], issue: (path: PropertyKey[], message: string) => void): Schedule {
  const ms = parseDuration(text);
  if (ms === undefined) {
    if (!cron.validate(text)) issue(path, `expected a duration like "5m" or a cron expression, got "${text}"`);
    return { cron: text, spread: 60_000, text };
  }
  const cronExpr = durationToCron(ms);
  if (!cronExpr) {
    issue(path, `interval ${text} must be whole seconds that divide a minute, minutes that divide an hour, or hours that divide a day (e.g. 30s, 5m, 15m, 1h, 6h); use a cron expression otherwise`);
  }
  return { cron: cronExpr ?? "0 */5 * * * *", spread: ms, text };
}

function durationToCron(ms: number): string | undefined {
  if (ms < 1000 || ms % 1000 !== 0) return undefined;
  const s = ms / 1000;
  if (s < 60) return 60 % s === 0 ? `*/${s} * * * * *` : undefined;
  if (s % 60 !== 0) return undefined;
  const m = s / 60;
  if (m < 60) return 60 % m === 0 ? `0 */${m} * * * *` : undefined;
  if (m % 60 !== 0) return undefined;
  const hours = m / 60;
  if (hours < 24) return 24 % hours === 0 ? `0 0 */${hours} * * *` : undefined;
  return hours === 24 ? "0 0 0 * * *" : undefined;
}

