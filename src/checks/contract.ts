import type { Meter, Tracer } from "@opentelemetry/api";
import type { z } from "zod";
import type { CheckResult, Subject } from "../policy/model.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../telemetry/log.ts";
import type { HttpClient } from "../http/client.ts";

/** What every plugin (check, action, inventory) is given when it is created. */
export interface PluginContext {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly meter: Meter;
  readonly tracer: Tracer;
  /** The shared HTTP client (undici) with timeouts, retries and hostile-URL guards. */
  readonly http: HttpClient;
  /** The agent's data directory, for plugin caches. */
  readonly dataDir: string;
  /** Directory of the config file; relative paths in plugin config resolve against it. */
  readonly configDir: string;
}

/** Given to each run of a check. */
export interface CheckRunContext extends PluginContext {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** How long a result should stand unless the check knows better (`checks.<name>.ttl`). */
  readonly ttlMs: number;
}

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
