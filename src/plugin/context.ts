/** What every plugin (check, action, inventory, provider) is given. */
import type { Meter, Tracer } from "@opentelemetry/api";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../telemetry/log.ts";
import type { HttpClient } from "../net/http.ts";
import type { SharedResources } from "./shared.ts";
import type { KeyValueStore } from "./state.ts";

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
  /**
   * Values the plugins of one agent share across plugins and reloads, e.g. the device list an
   * inventory and a check both read from one source (see `shared.ts`). Absent where plugins are made
   * one by one (tests, embedding): each then keeps its own.
   */
  readonly shared?: SharedResources;
  /**
   * The agent's durable plugin state (the state store), for plugins that learn and must not forget
   * at a restart (anomaly detectors). Absent in one-shot commands and where plugins are made one by
   * one: such a plugin then keeps its state in memory only.
   */
  readonly state?: KeyValueStore;
  /**
   * The plugin is made only to plan (`vigil plan`, which may run on a workstation): nothing is sent.
   * What only the target host has (a kubeconfig, an in-cluster service account, a CA file) may then
   * be missing; a plugin puts a placeholder in its place, logs a warning naming it, and plans on,
   * instead of failing. Default false: such a gap fails the plugin's creation.
   */
  readonly planOnly?: boolean;
}

/** Given to each run of a check. */
export interface CheckRunContext extends PluginContext {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** How long a result should stand unless the check knows better (`checks.<name>.ttl`). */
  readonly ttlMs: number;
  /**
   * The name the check is configured under (`checks.<name>`); results carry it as `check`, and
   * metrics as their `check` label. Absent outside the engine: the plugin's type then stands in.
   */
  readonly check?: string;
}
