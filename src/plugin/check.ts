/** The check contract: a factory the registry knows by `type`, and the check it creates. */
import type { z } from "zod";
import type { CheckResult, Subject } from "../policy/model.ts";
import type { CheckRunContext, PluginContext } from "./context.ts";

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
  create(config: C, ctx: PluginContext): Check;
}
