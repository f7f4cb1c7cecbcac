/**
 * Metrics and traces.
 *
 * Default path (Prometheus only): instruments live in a `PrometheusMeter` (prometheus.ts), which
 * writes the text exposition itself, served from vigil's own `node:http` server (`/metrics` only,
 * 404 elsewhere) so that port 0 works and the bound address is known. The OTel metrics SDK and its
 * Prometheus exporter are not loaded: they cost ~16 MiB of resident memory and ~100 ms of start-up
 * for an agent that only answers scrapes (measured in BENCHMARKS.md, "Footprint").
 *
 * With `otlp` set, the SDK's `MeterProvider` (with the `PrometheusExporter` as a reader when
 * `listen` is set; its built-in server is never started: it treats port 0 as "unset" and falls back
 * to 9464, and it does not report the port it bound), the OTLP/HTTP metric and trace exporters and
 * the Node tracer provider are loaded with dynamic `import()`. They are their own dependencies
 * rather than `@opentelemetry/sdk-node`'s `NodeSDK`: NodeSDK registers a global meter provider, runs
 * resource detectors and pulls in every exporter it knows (gRPC, proto, Zipkin, logs), which costs
 * memory and makes start/stop/start impossible within one process.
 * Without `otlp` none of that is loaded and `tracer` is the API's no-op tracer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  context,
  diag,
  DiagLogLevel,
  propagation,
  trace,
  type Attributes,
  type Meter,
  type ObservableResult,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import type { MeterProvider, IMetricReader } from "@opentelemetry/sdk-metrics";
import type { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import type { Logger } from "./log.ts";
import { PrometheusMeter } from "./prometheus.ts";
import { VIGIL_VERSION } from "../util/version.ts";
import { limitConnections } from "../util/connection-limits.ts";
import * as N from "./names.ts";

export interface MetricsOptions {
  /**
   * `host:port` for the Prometheus endpoint (`[::1]:9464` for IPv6; port 0 picks a free port);
   * undefined = no endpoint.
   */
  listen?: string;
  /**
   * Export metrics and traces over OTLP/HTTP (JSON). `endpoint` is the collector's base URL, e.g.
   * `http://otel-collector:4318`; `/v1/metrics` and `/v1/traces` are appended.
   */
  otlp?: { endpoint: string; headers?: Record<string, string>; interval_ms?: number };
}

export interface QueueDepth {
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
}

/** Sources for the observable gauges. Called on every collection, so they must be synchronous and cheap: return cached values. */
export interface MetricObservers {
  /** queue name → job counts. Feeds `vigil_queue_jobs{queue,state}`. */
  queueDepth?: () => Record<string, QueueDepth>;
  /** policy → access level → subject count. Feeds `vigil_subjects{policy,access}`. */
  subjects?: () => Record<string, Record<string, number>>;
  /** policy → paused? Feeds `vigil_enforcement_paused{policy}` as 0/1. */
  paused?: () => Record<string, boolean>;
  /** provider → circuit open? Feeds `vigil_provider_circuit_open{provider}` as 0/1. */
  circuits?: () => Record<string, boolean>;
  /** inventory (`<index>:<type>`) → stale? Feeds `vigil_inventory_stale{inventory}` as 0/1. */
  inventories?: () => Record<string, boolean>;
  /**
   * Unreconciled enforcement: policy → action → count, and the age in seconds of the oldest. Feeds
   * `vigil_enforcement_unreconciled{policy,action}` and `vigil_enforcement_unreconciled_oldest_seconds`.
   */
  unreconciled?: () => { readonly counts: Record<string, Record<string, number>>; readonly oldest_seconds: number };
  /**
   * Cluster mode only: this replica's connection to Redis, whether it leads, and the jobs it runs
   * per queue. Feeds `vigil_cluster_redis_up`, `vigil_cluster_leader` and `vigil_queue_jobs_running{queue}`.
   */
  cluster?: () => { readonly redis_up: boolean; readonly leader: boolean; readonly running: Record<string, number> };
}

/** What the rest of vigil records. Every method is cheap and never throws. */
export interface VigilMetrics {
  /**
   * An evaluation under `policy` finished: `vigil_evaluation_duration_seconds` gets `durationSeconds`
   * once and `vigil_evaluations_total` grows by `subjects` (default 1) when the call covered a batch.
   */
  evaluation(policy: string, durationSeconds: number, subjects?: number): void;
  /** `vigil_check_results_total{check,status}`, by `n` (default 1): an evaluation adds its batch's tally once per status. */
  checkResult(check: string, status: string, n?: number): void;
  /** `vigil_check_errors_total{check,reason}`; keep `reason` to a short fixed vocabulary. */
  checkError(check: string, reason: string): void;
  /** `vigil_decision_changes_total{policy,access}` with the new access level, by `n` (default 1). */
  decisionChange(policy: string, access: string, n?: number): void;
  /** `vigil_actions_total{type,outcome}`; outcome in success|failed|retried|dry_run|superseded|skipped. */
  action(type: string, outcome: string): void;
  /** `vigil_signals_total{check,outcome}`; outcome in accepted|rejected. */
  signal(check: string, outcome: string): void;
  /** `vigil_signal_to_enforcement_seconds`. */
  signalToEnforcement(seconds: number): void;
  /** `vigil_enforcement_paused_total{policy}`. */
  enforcementPaused(policy: string): void;
  /** Replaces the given gauge sources (omitted ones are kept). */
  setObservers(o: MetricObservers): void;
  /** `vigil_config_reloads_total{outcome}`. */
  configReload(outcome: "success" | "failure"): void;
  /** `vigil_result_streams_dropped_total{check}` grows by `n`. */
  streamsDropped(check: string, n: number): void;
  /** `vigil_results_pruned_total` grows by `n`. */
  resultsPruned(n: number): void;
  /** `vigil_inventory_errors_total{inventory}`. */
  inventoryError(inventory: string): void;
  /** `vigil_audit_checkpoints_total{outcome}`. */
  auditCheckpoint(outcome: "success" | "failure"): void;
}

/** A `VigilMetrics` that records nothing, for tests and one-shot CLI commands. */
export function noopMetrics(): VigilMetrics {
  const nothing = (): void => {};
  return {
    evaluation: nothing,
    checkResult: nothing,
    checkError: nothing,
    decisionChange: nothing,
    action: nothing,
    signal: nothing,
    signalToEnforcement: nothing,
    enforcementPaused: nothing,
    setObservers: nothing,
    configReload: nothing,
    streamsDropped: nothing,
    resultsPruned: nothing,
    inventoryError: nothing,
    auditCheckpoint: nothing,
  };
}

/** Parses `host:port` / `[v6]:port`. An empty host (`:9464`) listens on every interface. */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new TypeError(`metrics listen address must be "host:port" (got ${JSON.stringify(listen)})`);
  }
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? undefined : host, port };
}

const SHUTDOWN_TIMEOUT_MS = 5_000;
const DEFAULT_OTLP_INTERVAL_MS = 60_000;

export class Telemetry {
  readonly meter: Meter;
  readonly tracer: Tracer;
  readonly metrics: VigilMetrics;
  /** Where `/metrics` is served, with the port actually bound; undefined without `listen`. */
  readonly address: { host: string; port: number } | undefined;

  readonly #meterProvider: MeterProvider | undefined;
  readonly #tracerProvider: (TracerProvider & { shutdown(): Promise<void> }) | undefined;
  readonly #server: Server | undefined;
  readonly #logger: Logger;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    meterProvider: MeterProvider | undefined;
    meter: Meter;
    metrics: VigilMetrics;
    tracerProvider: (TracerProvider & { shutdown(): Promise<void> }) | undefined;
    tracer: Tracer;
    server: Server | undefined;
    address: { host: string; port: number } | undefined;
    logger: Logger;
  }) {
    this.#meterProvider = parts.meterProvider;
    this.#tracerProvider = parts.tracerProvider;
    this.#server = parts.server;
    this.#logger = parts.logger;
    this.address = parts.address;
    this.tracer = parts.tracer;
    this.meter = parts.meter;
    this.metrics = parts.metrics;
  }

  static async start(opts: MetricsOptions, logger: Logger): Promise<Telemetry> {
    const version = VIGIL_VERSION;
    const listen = opts.listen === undefined ? undefined : parseListen(opts.listen);
    if (opts.otlp && !/^https?:$/.test(URL.parse(opts.otlp.endpoint)?.protocol ?? "")) {
      throw new TypeError("otlp.endpoint must be an http(s) URL such as http://otel-collector:4318");
    }
    let meterProvider: MeterProvider | undefined;
    let meter: Meter;
    let handler: MetricsHandler | undefined;
    let tracerProvider: (TracerProvider & { shutdown(): Promise<void> }) | undefined;
    let tracer: Tracer;
    if (opts.otlp) {
      const sdk = await loadSdk(opts.otlp, listen !== undefined, version);
      ({ meterProvider, tracerProvider } = sdk);
      const prometheus = sdk.prometheus;
      if (prometheus) {
        handler = (req, res) => {
          prometheus.getMetricsRequestHandler(req, res);
          // The exporter sets a bare text/plain and writes the body once collection finishes.
          res.setHeader("content-type", CONTENT_TYPE);
        };
      }
      tracer = sdk.tracerProvider.getTracer(N.SCOPE_NAME, version);
      diag.setLogger(diagToPino(logger), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
      // Instruments exist before the endpoint opens, so the first scrape already lists them all.
      meter = meterProvider.getMeter(N.SCOPE_NAME, version);
    } else {
      tracer = trace.getTracer(N.SCOPE_NAME, version);
      const prometheusMeter = new PrometheusMeter({ "service.name": "vigil", "service.version": version });
      meter = prometheusMeter;
      handler = (_req, res) => {
        prometheusMeter
          .collect((err) => logger.warn({ err }, "metrics callback failed"))
          .then(
            (body) => res.writeHead(200, { "content-type": CONTENT_TYPE }).end(body),
            (err: unknown) => {
              logger.warn({ err }, "metrics collection failed");
              res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("collection failed\n");
            },
          );
      };
    }
    const metrics = createVigilMetrics(meter, version, logger);

    let server: Server | undefined;
    let address: { host: string; port: number } | undefined;
    if (listen && handler) {
      try {
        server = await serveMetrics(handler, listen.host, listen.port);
      } catch (err) {
        await meterProvider?.shutdown().catch(() => {});
        await tracerProvider?.shutdown().catch(() => {});
        if (tracerProvider) {
          unregisterTracing();
          diag.disable();
        }
        throw err;
      }
      const bound = server.address() as AddressInfo;
      address = { host: bound.address, port: bound.port };
      logger.info({ address: `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}` }, "metrics endpoint listening");
    }
    // Origin only: a URL's path or userinfo could carry a token.
    if (opts.otlp) logger.info({ endpoint: new URL(opts.otlp.endpoint).origin }, "exporting metrics and traces over OTLP");

    return new Telemetry({ meterProvider, meter, metrics, tracerProvider, tracer, server, address, logger });
  }

  /** Closes the endpoint, flushes and shuts down the providers. Safe to call more than once. */
  stop(): Promise<void> {
    this.#stopping ??= this.#doStop();
    return this.#stopping;
  }

  async #doStop(): Promise<void> {
    const server = this.#server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    const results = await Promise.allSettled([
      this.#meterProvider ? withTimeout(this.#meterProvider.shutdown(), SHUTDOWN_TIMEOUT_MS) : Promise.resolve(),
      this.#tracerProvider ? withTimeout(this.#tracerProvider.shutdown(), SHUTDOWN_TIMEOUT_MS) : Promise.resolve(),
    ]);
    for (const r of results) if (r.status === "rejected") this.#logger.warn({ err: r.reason }, "telemetry shutdown incomplete");
    if (this.#tracerProvider) {
      unregisterTracing();
      diag.disable();
    }
  }
}

function createVigilMetrics(meter: Meter, version: string, logger: Logger): VigilMetrics {
  const counter = (d: N.MetricDefinition) => meter.createCounter(d.name, { unit: d.unit, description: d.description });
  const histogram = (d: N.MetricDefinition, boundaries: readonly number[]) =>
    meter.createHistogram(d.name, { unit: d.unit, description: d.description, advice: { explicitBucketBoundaries: [...boundaries] } });

  const evaluations = counter(N.EVALUATIONS);
  const evaluationDuration = histogram(N.EVALUATION_DURATION, N.EVALUATION_DURATION_BUCKETS);
  const checkResults = counter(N.CHECK_RESULTS);
  const checkErrors = counter(N.CHECK_ERRORS);
  const decisionChanges = counter(N.DECISION_CHANGES);
  const actions = counter(N.ACTIONS);
  const signals = counter(N.SIGNALS);
  const signalToEnforcement = histogram(N.SIGNAL_TO_ENFORCEMENT, N.SIGNAL_TO_ENFORCEMENT_BUCKETS);
  const pausedEvents = counter(N.ENFORCEMENT_PAUSED_EVENTS);
  const configReloads = counter(N.CONFIG_RELOADS);
  // Export both outcomes from the start: a counter series that first appears at 1 shows no
  // increase() to Prometheus, so the first failed reload would never alert.
  for (const outcome of N.RELOAD_OUTCOMES) configReloads.add(0, { [N.ATTR.OUTCOME]: outcome });
  const streamsDropped = counter(N.RESULT_STREAMS_DROPPED);
  const resultsPruned = counter(N.RESULTS_PRUNED);
  resultsPruned.add(0);
  const inventoryErrors = counter(N.INVENTORY_ERRORS);
  const auditCheckpoints = counter(N.AUDIT_CHECKPOINTS);

  const observers: MetricObservers = {};
  // The SDK keeps exporting every attribute set a gauge ever observed, frozen at its last value
  // (open-telemetry/opentelemetry-js#4096). A policy or queue that disappears on reload would
  // otherwise keep e.g. vigil_enforcement_paused{policy="gone"} 1 alive forever, so series seen
  // before and missing now are observed as 0. If a source throws, nothing is observed and the
  // last values stay (a transient failure should not read as "all zero").
  const observeGauge = (def: N.MetricDefinition, collect: (emit: (value: number, attrs: Attributes) => void) => void) => {
    const seen = new Map<string, Attributes>();
    meter.createObservableGauge(def.name, { unit: def.unit, description: def.description }).addCallback((r: ObservableResult) => {
      const now = new Map<string, [number, Attributes]>();
      try {
        collect((value, attrs) => now.set(JSON.stringify(attrs), [Number.isFinite(value) ? value : 0, attrs]));
      } catch (err) {
        logger.warn({ err, gauge: def.name }, "metrics observer threw; keeping the last values");
        return;
      }
      for (const [key, attrs] of seen) if (!now.has(key)) r.observe(0, attrs);
      for (const [key, [value, attrs]] of now) {
        r.observe(value, attrs);
        seen.set(key, attrs);
      }
    });
  };

  observeGauge(N.QUEUE_JOBS, (emit) => {
    for (const [queue, depth] of Object.entries(observers.queueDepth?.() ?? {})) {
      for (const state of N.QUEUE_STATES) emit(depth[state], { [N.ATTR.QUEUE]: queue, [N.ATTR.STATE]: state });
    }
  });
  observeGauge(N.SUBJECTS, (emit) => {
    for (const [policy, byAccess] of Object.entries(observers.subjects?.() ?? {})) {
      for (const [access, n] of Object.entries(byAccess)) emit(n, { [N.ATTR.POLICY]: policy, [N.ATTR.ACCESS]: access });
    }
  });
  observeGauge(N.ENFORCEMENT_PAUSED, (emit) => {
    for (const [policy, paused] of Object.entries(observers.paused?.() ?? {})) emit(paused ? 1 : 0, { [N.ATTR.POLICY]: policy });
  });
  observeGauge(N.PROVIDER_CIRCUIT_OPEN, (emit) => {
    for (const [provider, open] of Object.entries(observers.circuits?.() ?? {})) emit(open ? 1 : 0, { [N.ATTR.PROVIDER]: provider });
  });
  observeGauge(N.INVENTORY_STALE, (emit) => {
    for (const [inventory, stale] of Object.entries(observers.inventories?.() ?? {})) emit(stale ? 1 : 0, { [N.ATTR.INVENTORY]: inventory });
  });
  observeGauge(N.ENFORCEMENT_UNRECONCILED, (emit) => {
    for (const [policy, byAction] of Object.entries(observers.unreconciled?.().counts ?? {})) {
      for (const [action, n] of Object.entries(byAction)) emit(n, { [N.ATTR.POLICY]: policy, [N.ATTR.ACTION]: action });
    }
  });
  observeGauge(N.ENFORCEMENT_UNRECONCILED_OLDEST, (emit) => emit(observers.unreconciled?.().oldest_seconds ?? 0, {}));
  observeGauge(N.CLUSTER_REDIS_UP, (emit) => {
    const c = observers.cluster?.();
    if (c) emit(c.redis_up ? 1 : 0, {});
  });
  observeGauge(N.CLUSTER_LEADER, (emit) => {
    const c = observers.cluster?.();
    if (c) emit(c.leader ? 1 : 0, {});
  });
  observeGauge(N.QUEUE_JOBS_RUNNING, (emit) => {
    for (const [queue, n] of Object.entries(observers.cluster?.().running ?? {})) emit(n, { [N.ATTR.QUEUE]: queue });
  });
  const buildAttrs: Attributes = { [N.ATTR.VERSION]: version, [N.ATTR.NODE]: process.version };
  meter.createObservableGauge(N.BUILD_INFO.name, { unit: N.BUILD_INFO.unit, description: N.BUILD_INFO.description }).addCallback((r: ObservableResult) => r.observe(1, buildAttrs));

  const seconds = (v: number): boolean => Number.isFinite(v) && v >= 0;
  return {
    evaluation(policy, durationSeconds, subjects = 1) {
      const attrs = { [N.ATTR.POLICY]: policy };
      if (Number.isFinite(subjects) && subjects >= 0) evaluations.add(Math.floor(subjects), attrs);
      if (seconds(durationSeconds)) evaluationDuration.record(durationSeconds, attrs);
    },
    checkResult: (check, status, n = 1) => checkResults.add(n, { [N.ATTR.CHECK]: check, [N.ATTR.STATUS]: status }),
    checkError: (check, reason) => checkErrors.add(1, { [N.ATTR.CHECK]: check, [N.ATTR.REASON]: reason }),
    decisionChange: (policy, access, n = 1) => decisionChanges.add(n, { [N.ATTR.POLICY]: policy, [N.ATTR.ACCESS]: access }),
    action: (type, outcome) => actions.add(1, { [N.ATTR.TYPE]: type, [N.ATTR.OUTCOME]: outcome }),
    signal: (check, outcome) => signals.add(1, { [N.ATTR.CHECK]: check, [N.ATTR.OUTCOME]: outcome }),
    signalToEnforcement(s) {
      if (seconds(s)) signalToEnforcement.record(s);
    },
    enforcementPaused: (policy) => pausedEvents.add(1, { [N.ATTR.POLICY]: policy }),
    setObservers(o) {
      if (o.queueDepth) observers.queueDepth = o.queueDepth;
      if (o.subjects) observers.subjects = o.subjects;
      if (o.paused) observers.paused = o.paused;
      if (o.circuits) observers.circuits = o.circuits;
      if (o.inventories) observers.inventories = o.inventories;
      if (o.unreconciled) observers.unreconciled = o.unreconciled;
      if (o.cluster) observers.cluster = o.cluster;
    },
    configReload: (outcome) => configReloads.add(1, { [N.ATTR.OUTCOME]: outcome }),
    streamsDropped(check, n) {
      if (Number.isFinite(n) && n > 0) streamsDropped.add(Math.floor(n), { [N.ATTR.CHECK]: check });
    },
    resultsPruned(n) {
      if (Number.isFinite(n) && n > 0) resultsPruned.add(Math.floor(n));
    },
    inventoryError: (inventory) => inventoryErrors.add(1, { [N.ATTR.INVENTORY]: inventory }),
    auditCheckpoint: (outcome) => auditCheckpoints.add(1, { [N.ATTR.OUTCOME]: outcome }),
  };
}

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type MetricsHandler = (req: IncomingMessage, res: ServerResponse) => void;

async function serveMetrics(handle: MetricsHandler, host: string | undefined, port: number): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
      return;
    }
    handle(req, res);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  // A scraper holds a connection or two; idle or excess ones must not pile up.
  limitConnections(server, { idleTimeoutMs: 10_000, maxConnections: 64 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", () => {});
  // Like the exporter's own server: never the reason the process stays alive.
  server.unref();
  return server;
}

/**
 * The OTel SDK path, for an agent that exports over OTLP: a `MeterProvider` with the OTLP reader and,
 * when `/metrics` is served, the Prometheus exporter, and a tracer provider exporting spans.
 */
async function loadSdk(
  otlp: NonNullable<MetricsOptions["otlp"]>,
  withPrometheus: boolean,
  version: string,
): Promise<{ meterProvider: MeterProvider; prometheus: PrometheusExporter | undefined; tracerProvider: TracerProvider & { shutdown(): Promise<void> } }> {
  // Loaded only here, so an agent without OTLP never carries them.
  const [{ MeterProvider, PeriodicExportingMetricReader }, { PrometheusExporter }, { defaultResource, resourceFromAttributes }, { OTLPMetricExporter }, { OTLPTraceExporter }, { NodeTracerProvider }, { BatchSpanProcessor }] =
    await Promise.all([
      import("@opentelemetry/sdk-metrics"),
      import("@opentelemetry/exporter-prometheus"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/exporter-metrics-otlp-http"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/sdk-trace-node"),
      import("@opentelemetry/sdk-trace-base"),
    ]);
  const resource = defaultResource().merge(resourceFromAttributes({ "service.name": "vigil", "service.version": version }));
  const base = otlp.endpoint.replace(/\/+$/, "");
  const headers = { ...otlp.headers };
  const interval = Math.max(1_000, otlp.interval_ms ?? DEFAULT_OTLP_INTERVAL_MS);
  const readers: IMetricReader[] = [];
  // Scope labels (otel_scope_name=…) would be added to every series; vigil has one scope.
  const prometheus = withPrometheus ? new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true }) : undefined;
  if (prometheus) readers.push(prometheus);
  readers.push(
    new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics`, headers }),
      exportIntervalMillis: interval,
      exportTimeoutMillis: Math.min(interval, 30_000),
    }),
  );
  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces`, headers }))],
  });
  // Global tracer provider, AsyncLocalStorage context manager and W3C propagators, so that
  // startActiveSpan nests and library spans join vigil's traces. Undone on stop().
  tracerProvider.register();
  return { meterProvider: new MeterProvider({ resource, readers }), prometheus, tracerProvider };
}

function unregisterTracing(): void {
  trace.disable();
  context.disable();
  propagation.disable();
}

function diagToPino(logger: Logger) {
  const log = (level: "warn" | "error" | "info" | "debug") => (message: string, ...args: unknown[]) =>
    logger[level]({ component: "opentelemetry", args: args.length ? args.map(String) : undefined }, message);
  return { error: log("error"), warn: log("warn"), info: log("info"), debug: log("debug"), verbose: log("debug") };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

