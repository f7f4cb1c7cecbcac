/**
 * What one configuration instantiates: check, action and inventory plugins, and lookups over the
 * compiled policies. A config reload builds a new Runtime and swaps it in whole.
 */
import type { LoadedConfig } from "../config/load.ts";
import type { Check, PluginContext } from "../checks/contract.ts";
import type { Action } from "../actions/contract.ts";
import type { Inventory } from "../inventories/contract.ts";
import type { CompiledAction, CompiledCheck, PolicySpec } from "../policy/compile.ts";
import type { Subject } from "../policy/model.ts";
import type { CheckInput } from "../policy/decide.ts";
import type { CheckResult } from "../policy/model.ts";
import { parseDuration } from "../util/duration.ts";

export interface BoundAction {
  readonly spec: CompiledAction;
  readonly action: Action;
  readonly revertible: boolean;
}

const MIN_TTL = 60_000;

export class Runtime {
  readonly config: LoadedConfig;
  readonly checks = new Map<string, Check>();
  readonly inventories: Inventory[];
  readonly #actions = new Map<string, Map<string, BoundAction>>();
  readonly #policies = new Map<string, PolicySpec>();
  readonly #ttl = new Map<string, number>();

  constructor(config: LoadedConfig, ctx: PluginContext) {
    this.config = config;
    const reg = config.registry;
    for (const c of Object.values(config.checks)) {
      if (c.pull) this.checks.set(c.name, reg.checks.get(c.type)!.create(c.config, ctx));
    }
    this.inventories = config.inventories.map((i) => reg.inventories.get(i.type)!.create(i.config, ctx));
    for (const p of config.policies) {
      this.#policies.set(p.name, p);
      const bound = new Map<string, BoundAction>();
      for (const level of ["full_access", "read_only", "deny"] as const) {
        for (const spec of p.actions[level]) {
          const factory = reg.actions.get(spec.type)!;
          const action = factory.create(spec.config, ctx);
          bound.set(spec.name, { spec, action, revertible: factory.revertible && typeof action.revert === "function" });
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

  async stop(): Promise<void> {
    await Promise.allSettled([...this.checks.values()].map((c) => c.stop?.()));
  }
}
