/** The check contract: a factory the registry knows by `type`, and the check it creates. */
import type { z } from "zod";
import type { CheckResult, Subject } from "../policy/model.ts";
import type { CheckRunContext, PluginContext } from "./context.ts";
import type { Configured } from "./configured.ts";

/** A configured check. One run gives one result per subject it was given. */
export interface Check {
  run(subjects: readonly Subject[], ctx: CheckRunContext): Promise<CheckResult[]>;
  stop?(): Promise<void>;
  /** Whether pushed observations of this series (`POST /v1/observations`) are for this check. */
  takesSeries?(series: string): boolean;
  /**
   * Takes pushed observations (anomaly_detection learns from them). Returns one outcome per
   * observation, in order, and a fresh result for each subject whose status they changed: the
   * engine stores those and evaluates the subject at once.
   */
  observe?(batch: readonly Observation[], ctx: ObserveContext): Promise<ObserveResult>;
}

/** One pushed point of a series about a subject. */
export interface Observation {
  readonly subject: Subject;
  readonly series: string;
  /** Epoch ms. */
  readonly timestamp: number;
  /** NaN and ±Infinity are taken and counted as skipped, never fatal. */
  readonly value: number;
}

/** What `observe` is told besides the points. */
export interface ObserveContext {
  /** The name the check is configured under; results carry it. */
  readonly check: string;
  /** How long a result stands (`checks.<name>.ttl`). */
  readonly ttlMs: number;
}

/**
 * `accepted`: learned; the others were not: a `non_finite` value, `out_of_order` (not after the
 * series' last point: a re-send), `dropped` by a series cap, `not_watched` (the series is not
 * watched for this subject).
 */
export type ObservationOutcome = "accepted" | "non_finite" | "out_of_order" | "dropped" | "not_watched";

export interface ObserveResult {
  readonly outcomes: readonly ObservationOutcome[];
  readonly results: readonly CheckResult[];
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
  /**
   * Whether this configuration gathers anything. False leaves the check push-only, as if it had no
   * plugin: its results arrive as signals (e.g. `device_compliance` without `sources`). Default true.
   */
  readonly pulls?: (config: C) => boolean;
}

/** A check entry after its factory's schema; `pull` false when the configuration gathers nothing. */
export type ConfiguredCheck = Configured<PluginContext, Check> & { readonly pull?: boolean };

/** A check factory with its config type hidden, as the registry holds it (see `defineCheck`). */
export interface AnyCheckFactory {
  readonly type: string;
  readonly description: string;
  readonly reasons: readonly ReasonDoc[];
  /** Validates the plugin's part of `checks.<name>` with the factory's own schema and binds create() to the result. */
  configure(raw: unknown): ConfiguredCheck;
}

/** Hides a check factory's config type for the registry; its create() still receives only what its schema produced. */
export function defineCheck<C>(f: CheckFactory<C>): AnyCheckFactory {
  const pulls = f.pulls;
  return {
    type: f.type,
    description: f.description,
    reasons: f.reasons,
    configure: (raw) => {
      // Parsed once: create() and pulls() see the same config. Once per load, so without zod's JIT
      // (compiling the object schemas to code costs more than a single parse saves).
      const parsed = f.configSchema.safeParse(raw, { jitless: true });
      if (!parsed.success) return { success: false, error: parsed.error };
      const config = parsed.data;
      return { success: true, config, create: (ctx: PluginContext) => f.create(config, ctx), ...(pulls ? { pull: pulls(config) } : {}) };
    },
  };
}
