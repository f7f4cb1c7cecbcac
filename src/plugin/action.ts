import type { z } from "zod";
import type { AccessLevel, Decision, Subject } from "../policy/model.ts";
import type { PluginContext } from "./context.ts";
import type { ProviderClient } from "./provider.ts";
import type { PlannedCall } from "../net/api-call.ts";
import { configure, type Configured } from "./configured.ts";

/** Everything an action needs to carry one decision out. */
export interface ActionRequest {
  readonly decision: Decision;
  readonly subject: Subject;
  /** Access enforced before this decision. */
  readonly previous_access: AccessLevel;
  /** `apply` on entering the level the action is configured for; `revert` on leaving it. */
  readonly operation: "apply" | "revert";
  /** policy + subject + generation + action (+ operation), hashed: the same on every retry. */
  readonly idempotency_key: string;
  /** The communication policy edge, when the decision belongs to one. */
  readonly edge?: { readonly source: string; readonly destination: string; readonly port?: number; readonly protocol?: string };
  /** The configured entry carrying this request out: its `name` (unique in the policy) and `type`. Set by the engine. */
  readonly action?: { readonly name: string; readonly type: string };
  /**
   * What the target looked like before vigil's apply changed it, as the apply recorded it
   * (`ActionOutcome.prior`, `recordPrior`). On `revert`: restore only what it shows vigil changed; a
   * key the apply never recorded means its change was never reached (or, where the action says so,
   * is unknown). Undefined on `revert` when vigil holds no record (an apply from before records were
   * kept): revert as before. On `apply`: what an earlier attempt recorded while vigil's change may
   * already be in place (a retry, or an apply that was never reverted): keep it rather than reading the
   * target's present state, which may be vigil's own change, as the prior.
   */
  readonly prior?: Readonly<Record<string, unknown>>;
  /**
   * `apply` only, when the engine runs it: durably records what the target looked like, before the
   * apply changes it. Keys merge into what is recorded. Call it once the state is read and before the
   * change, so an attempt that changes the target and then fails is not taken for an administrator's
   * change by its retry.
   */
  readonly recordPrior?: (prior: Readonly<Record<string, unknown>>) => Promise<void>;
  readonly signal?: AbortSignal;
}

export interface ActionOutcome {
  /** True when the effect was read back from the target and found in place. */
  readonly verified?: boolean;
  readonly detail?: Readonly<Record<string, unknown>>;
  /**
   * From `apply`: what the target looked like before this apply, for the parts the action changes
   * (`{status: "ACTIVE"}`, `{accountEnabled: true}`). Kept with the enforcement record and given to
   * `revert` as `ActionRequest.prior`, so a revert undoes only vigil's own change. Plain JSON, no secrets.
   */
  readonly prior?: Readonly<Record<string, unknown>>;
}

/** A configured action. `apply` and `revert` must be safe to run twice. */
export interface Action {
  plan(req: ActionRequest): PlannedCall[];
  /**
   * Carries the action out. Rejecting fails the attempt: the job is retried only after a transient
   * error (`new UpstreamError(true, …)`, see `isTransient`); anything else, a plain `Error` included,
   * ends it at once. `revert` alike.
   */
  apply(req: ActionRequest): Promise<ActionOutcome>;
  revert?(req: ActionRequest): Promise<ActionOutcome>;
}

/** Given to an action when it is created. */
export interface ActionContext extends PluginContext {
  /** The client of the `providers.<name>` entry the action uses, when its factory names a provider type. */
  readonly provider?: ProviderClient;
}

/** An action plugin: a factory the registry knows by `type`. */
export interface ActionFactory<C = unknown> {
  /** `<provider>:<verb>` for provider actions (`okta:suspend`), a bare word otherwise. */
  readonly type: string;
  readonly description: string;
  /** Permissions the agent's credentials need at the target. */
  readonly requiredPermissions: readonly string[];
  /** A config example, as it would appear under `enforcement.<level>[]`. */
  readonly example: Readonly<Record<string, unknown>>;
  readonly configSchema: z.ZodType<C>;
  /** Whether `revert` exists. */
  readonly revertible: boolean;
  /** The provider type whose client the action needs (`ctx.provider`); the config entry may name which `providers.<name>` with `provider:`. */
  readonly provider?: string;
  /**
   * A reconciler brings its target to the state for the decided access whatever the level, instead of
   * doing one thing on entering a level (mesh and network policies). The engine runs it with
   * `operation: "apply"` on every change of access and on a subject's first enforcement, once per
   * change, whichever level list it is written under; `revert` is not used.
   */
  readonly reconciles?: boolean;
  // A property, not a method, so C is checked both ways: a factory of one config type is not one of another.
  readonly create: (config: C, ctx: ActionContext) => Action;
}

/** An action factory with its config type hidden, as the registry holds it (see `defineAction`). */
export interface AnyActionFactory extends Omit<ActionFactory<never>, "configSchema" | "create"> {
  /** Validates an `enforcement.<level>[]` entry (without `type`, `name`, `dry_run`, `provider`) with the factory's own schema and binds create() to the result. */
  configure(raw: unknown): Configured<ActionContext, Action>;
}

/** Hides an action factory's config type for the registry; its create() still receives only what its schema produced. */
export function defineAction<C>(f: ActionFactory<C>): AnyActionFactory {
  return {
    type: f.type,
    description: f.description,
    requiredPermissions: f.requiredPermissions,
    example: f.example,
    revertible: f.revertible,
    provider: f.provider,
    reconciles: f.reconciles,
    configure: (raw) => configure(f.configSchema, (config, ctx) => f.create(config, ctx), raw),
  };
}
