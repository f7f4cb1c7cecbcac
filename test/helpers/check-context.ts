/**
 * Contexts for running a check the way the engine does: a plugin context with the agent's shared
 * resources (so an inventory and a check built on it share scans), and a run context with a deadline,
 * a ttl and the check's configured name.
 */
import { tmpdir } from "node:os";
import { metrics, trace, type Meter } from "@opentelemetry/api";
import type { CheckRunContext, PluginContext } from "../../src/plugin/context.ts";
import { SharedResources } from "../../src/plugin/shared.ts";
import { createHttpClient, type HttpClient } from "../../src/net/http.ts";
import { createLogger, type Logger } from "../../src/telemetry/log.ts";
import { systemClock, type Clock } from "../../src/util/clock.ts";

export interface TestContext extends PluginContext {
  readonly shared: SharedResources;
  readonly http: HttpClient;
}

export function checkPluginContext(options: { clock?: Clock; meter?: Meter; logger?: Logger; configDir?: string } = {}): TestContext {
  return {
    clock: options.clock ?? systemClock,
    logger: options.logger ?? createLogger({ level: "silent" }),
    meter: options.meter ?? metrics.getMeter("test"),
    tracer: trace.getTracer("test"),
    http: createHttpClient(),
    dataDir: tmpdir(),
    configDir: options.configDir ?? tmpdir(),
    shared: new SharedResources(),
  };
}

export function runContext(ctx: PluginContext, options: { timeoutMs?: number; ttlMs?: number; check?: string } = {}): CheckRunContext {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return { ...ctx, signal: AbortSignal.timeout(timeoutMs), timeoutMs, ttlMs: options.ttlMs ?? 600_000, check: options.check ?? "device_compliance" };
}
