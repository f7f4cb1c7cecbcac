/** The check contract: a factory the registry knows by `type`, and the check it creates. */
import type { z } from "zod";
import type { CheckResult, Subject } from "../policy/model.ts";
import type { CheckRunContext, PluginContext } from "./context.ts";
import { configure, type Configured } from "./configured.ts";

/** A configured check. One run gives one result per subject it was given. */
export interface Check {
  run(subjects: readonly Subject[], ctx: CheckRunContext): Promise<CheckResult[]>;
  stop?(): Promise<void>;
}

/** Documentation of a stable reason code. */
export interface ReasonDoc {
  readonly code: string;
  readonly doc: string;
}

/** A check plugin: a factory the registry knows by `type`. */
export interface CheckFactory<C = unknown> {
  readonly type: string;
  readonly description: string;
  /** Validates the plugin's own part of `checks.<name>` (common keys such as `on_unknown` are removed first). */
  readonly configSchema: z.ZodType<C>;
  /** Reason codes this check can return. */
  readonly reasons: readonly ReasonDoc[];
  // A property, not a method, so C is checked both ways: a factory of one config type is not one of another.
  readonly create: (config: C, ctx: PluginContext) => Check;
}

/** A check factory with its config type hidden, as the registry holds it (see `defineCheck`). */
export interface AnyCheckFactory {
  readonly type: string;
  readonly description: string;
  readonly reasons: readonly ReasonDoc[];
  /** Validates the plugin's part of `checks.<name>` with the factory's own schema and binds create() to the result. */
  configure(raw: unknown): Configured<PluginContext, Check>;
}

/** Hides a check factory's config type for the registry; its create() still receives only what its schema produced. */
export function defineCheck<C>(f: CheckFactory<C>): AnyCheckFactory {
  return { type: f.type, description: f.description, reasons: f.reasons, configure: (raw) => configure(f.configSchema, (config, ctx) => f.create(config, ctx), raw) };
}
