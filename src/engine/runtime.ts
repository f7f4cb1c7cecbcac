/**
 * What one configuration instantiates: check, action and inventory plugins, and lookups over the
 * compiled policies. A config reload builds a new Runtime and swaps it in whole.
 */
import type { LoadedConfig } from "../config/load.ts";
import type { Check } from "../plugin/check.ts";
import type { PluginContext } from "../plugin/context.ts";
import type { Action } from "../plugin/action.ts";
import type { ProviderClient, PublicDocument } from "../plugin/provider.ts";
import type { Inventory } from "../plugin/inventory.ts";
import type { CompiledAction, CompiledCheck, PolicySpec } from "../config/compile.ts";
import type { Subject } from "../policy/model.ts";
import type { CheckInput } from "../policy/decide.ts";
import type { CheckResult } from "../policy/model.ts";
import { parseDuration } from "../util/duration.ts";
import { canonicalJSON } from "../util/canonical-json.ts";
import { VigilError } from "../errors.ts";

export interface BoundAction {
  readonly spec: CompiledAction;
  readonly action: Action;
  readonly revertible: boolean;
  /** Runs on every change of access, whatever level it is listed under (`ActionFactory.reconciles`). */
  readonly reconciles: boolean;
}

const MIN_TTL = 60_000;

export class Runtime {
  readonly config: LoadedConfig;
  readonly checks = new Map<string, Check>();
  readonly inventories: Inventory[];
  /** One client per `providers.<name>`, shared by every action and policy using it. */
  readonly providers = new Map<string, ProviderClient>();
  readonly #publicDocuments = new Map<string, PublicDocument>();
  readonly #actions = new Map<string, Map<string, BoundAction>>();
  readonly #policies = new Map<string, PolicySpec>();
  readonly #ttl = new Map<string, number>();
  /** Aborted when a retired runtime's in-flight action calls outlive the grace `stop()` gives them. */
  readonly #retire = new AbortController();
  #inFlight = 0;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: LoadedConfig, ctx: PluginContext) {
    this.config = config;
    const { registry: reg, creators } = config;
    // Only an offline load (placeholders for secrets not available here) may lack a plugin: one whose
    // settings hold a placeholder its schema refused. That config is for plans; a plugin it lacks
    // stands in as one that says why it cannot be used. Any other config has every plugin.
    const missing = (what: string, section?: string): string => {
      if (config.placeholders.length === 0) throw new VigilError("VIGIL_ERR_INTERNAL", `${what} was not configured`);
      const own = section === undefined ? [] : config.placeholders.filter((p) => p.path === section || p.path.startsWith(`${section}.`));
      const named = (own.length > 0 ? own : config.placeholders).map((p) => `${p.path} ← ${p.reference}`).join(", ");
      return `${what} is not available here: its settings hold a placeholder for a secret (${named})`;
    };
    for (const c of Object.values(config.checks)) {
      if (!c.pull) continue;
      const create = creators.checks.get(c);
      if (create) this.checks.set(c.name, create(ctx));
      else missing(`check ${c.name}`, `checks.${c.name}`);
    }
    this.inventories = config.inventories.map((i, n) => {
      const create = creators.inventories.get(i);
      // A plan does not try credentials it knows are placeholders: they can only fail, after the run's deadline.
      const placeholder = ctx.planOnly === true && config.placeholders.some((p) => p.path.startsWith(`inventories[${n}].`));
      if (create && !placeholder) return create(ctx);
      const why = missing(`inventory ${n}:${i.type}`, `inventories[${n}]`);
      return { list: () => Promise.reject(new VigilError("VIGIL_ERR_CONFIG_INVALID", why)) };
    });
    for (const p of Object.values(config.providers)) {
      const create = creators.providers.get(p);
      if (!create) {
        missing(`provider ${p.name}`, `providers.${p.name}`);
        continue;
      }
      const { client, publicDocuments } = create({ ...ctx, name: p.name });
      this.providers.set(p.name, client);
      for (const [path, doc] of Object.entries(publicDocuments)) {
        // Only one document can answer at a path: the first entry keeps it, and the operator hears why.
        if (this.#publicDocuments.has(path)) ctx.logger.warn({ provider: p.name, path }, `providers.${p.name} also publishes ${path}; the first provider's document is served`);
        else this.#publicDocuments.set(path, doc);
      }
    }
    for (const p of config.policies) {
      this.#policies.set(p.name, p);
      const bound = new Map<string, BoundAction>();
      for (const level of ["full_access", "read_only", "deny"] as const) {
        for (const spec of p.actions[level]) {
          const factory = reg.actions.get(spec.type)!;
          const provider = spec.provider === undefined ? undefined : this.providers.get(spec.provider);
          const create = creators.actions.get(spec);
          const action = create && (spec.provider === undefined || provider) ? create(provider ? { ...ctx, provider } : ctx) : unavailableAction(spec.provider && !provider ? missing(`action ${spec.name} (its provider ${spec.provider})`, `providers.${spec.provider}`) : missing(`action ${spec.name}`));
          const reconciles = factory.reconciles === true;
          bound.set(spec.name, { spec, action, reconciles, revertible: !reconciles && factory.revertible && typeof action.revert === "function" });
        }
      }
      this.#actions.set(p.name, bound);
      for (const name of p.checks) {
        const period = parseDuration(p.schedule.text) ?? p.schedule.spread;
        this.#ttl.set(name, Math.max(this.#ttl.get(name) ?? 0, 2 * period, MIN_TTL));
      }
    }
  }

  get policies(): readonly PolicySpec[] {
    return this.config.policies;
  }

  policy(name: string): PolicySpec | undefined {
    return this.#policies.get(name);
  }

  policiesFor(subject: Subject): PolicySpec[] {
    return this.config.policies.filter((p) => this.config.matchers.get(p.name)!(subject));
  }

  covers(policy: PolicySpec, subject: Subject): boolean {
    return this.config.matchers.get(policy.name)!(subject);
  }

  isExempt(policy: PolicySpec, subject: Subject): boolean {
    return (this.config.exemptions.get(policy.name) ?? []).some((m) => m(subject));
  }

  action(policy: string, name: string): BoundAction | undefined {
    return this.#actions.get(policy)?.get(name);
  }

  actionsAt(policy: PolicySpec, level: keyof PolicySpec["actions"]): BoundAction[] {
    return policy.actions[level].map((a) => this.#actions.get(policy.name)!.get(a.name)!);
  }

  /**
   * Reconciling actions of a policy, once each, whichever level lists them. The same reconciler written
   * under several levels (same type, provider, dry_run and config; only its default name differs) is one
   * reconciler: it brings the same objects to the decided level, so it runs once per change.
   */
  reconcilers(policy: PolicySpec): BoundAction[] {
    const seen = new Set<string>();
    return this.#bound(policy).filter((b) => {
      if (!b.reconciles) return false;
      const key = canonicalJSON([b.spec.type, b.spec.provider ?? null, b.spec.dry_run ?? null, b.spec.config ?? null]);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  #bound(policy: PolicySpec): BoundAction[] {
    return [...(this.#actions.get(policy.name)?.values() ?? [])];
  }

  /** A document a provider serves without authentication at `path` (e.g. `/.well-known/jwks.json`). */
  publicDocument(path: string): PublicDocument | undefined {
    return this.#publicDocuments.get(path);
  }

  /** provider name → circuit open, for `vigil_provider_circuit_open`. */
  circuits(): Record<string, boolean> {
    return Object.fromEntries([...this.providers].map(([name, c]) => [name, c.breaker.state === "open"]));
  }

  checkSpec(name: string): CompiledCheck | undefined {
    return this.config.checks[name];
  }

  /** How long a result of this check stands: its `ttl`, else twice the longest interval using it (≥ 1m). */
  ttl(check: string): number {
    return this.config.checks[check]?.ttl ?? this.#ttl.get(check) ?? MIN_TTL * 60;
  }

  checkInput(policy: PolicySpec, check: string, results: readonly CheckResult[]): CheckInput {
    const spec = this.config.checks[check];
    return { check, on_unknown: spec?.on_unknown ?? policy.on_unknown, hold_grace: spec?.hold_grace ?? policy.hold_grace, results };
  }

  /**
   * Runs an action job against this runtime's actions and provider clients. Once the runtime is
   * retired (`stop()`), its clients are closed only after every tracked job has finished; `signal`
   * aborts the jobs still running when the grace ends.
   */
  async track<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await fn(this.#retire.signal);
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  /**
   * Stops checks and inventories and retires the provider clients. A reload retires the old runtime while action jobs
   * may still run on it: its clients are closed once they are done (their calls are aborted after
   * `graceMs`, default 60 s: transient, so the queue runs them again on the new runtime), so no job
   * finds its client closed halfway. Resolves without waiting for those jobs: a reload is not held up,
   * and at shutdown the queue has already given them their time (their jobs run again at the next
   * start).
   */
  async stop(graceMs = 60_000): Promise<void> {
    await Promise.allSettled([...[...this.checks.values()].map((c) => c.stop?.()), ...this.inventories.map((i) => i.stop?.())]);
    this.#closing ??= this.#closeWhenIdle(graceMs);
    if (this.#inFlight === 0) await this.#closing;
  }

  async #closeWhenIdle(graceMs: number): Promise<void> {
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => (this.#idle = resolve));
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs).unref()));
      await Promise.race([idle, late]);
      clearTimeout(timer);
      if (this.#inFlight > 0) {
        // A shutdown code, so a call that rejects with the bare reason still counts as transient and its job runs again.
        this.#retire.abort(new VigilError("VIGIL_ERR_SHUTDOWN", "the configuration was replaced or the agent is stopping"));
        await idle;
      }
    }
    await Promise.allSettled([...this.providers.values()].map((p) => p.close()));
  }
}

/** An action an offline config could not make: every use says why. */
function unavailableAction(why: string): Action {
  const refuse = (): never => {
    throw new VigilError("VIGIL_ERR_CONFIG_INVALID", why);
  };
  return { plan: refuse, apply: async () => refuse(), revert: async () => refuse() };
}
