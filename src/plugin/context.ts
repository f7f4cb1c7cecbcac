/** What every plugin (check, action, inventory, provider) is given. */
import type { Meter, Tracer } from "@opentelemetry/api";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../telemetry/log.ts";
import type { HttpClient } from "../net/http.ts";

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
