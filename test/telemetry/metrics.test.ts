import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Telemetry, noopMetrics, parseListen, type VigilMetrics } from "../../src/telemetry/metrics.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import * as N from "../../src/telemetry/names.ts";

const PROMTOOL_MISSING =
  "promtool is not on PATH: install the Debian package `prometheus` (apt-get install prometheus) to run this check";

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

function hasPromtool(): boolean {
  return spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;
}

function recordEverything(m: VigilMetrics): void {
  m.evaluation("baseline", 0.02);
  m.evaluation("baseline", 0.2);
  m.evaluation("batch", 0.5, 40);
  m.checkResult("certificate_validity", "pass");
  m.checkResult("certificate_validity", "fail");
  m.checkError("edr_status", "timeout");
  m.decisionChange("baseline", "read_only");
  for (const outcome of N.ACTION_OUTCOMES) m.action("webhook", outcome);
  m.signal("edr_status", "accepted");
  m.signal("edr_status", "rejected");
  m.signalToEnforcement(0.004);
  m.enforcementPaused("baseline");
  m.configReload("success");
  m.configReload("failure");
  m.streamsDropped("edr_status", 3);
  m.resultsPruned(5);
  m.inventoryError("0:file");
  m.auditCheckpoint("success");
  m.auditCheckpoint("failure");
  m.setObservers({
    queueDepth: () => ({ actions: { waiting: 7, delayed: 2, active: 1, failed: 3 } }),
    subjects: () => ({ baseline: { full_access: 10, read_only: 2, deny: 1 } }),
    paused: () => ({ baseline: true, strict: false }),
    circuits: () => ({ okta: true, aws: false }),
    inventories: () => ({ "0:file": true, "1:static": false }),
    unreconciled: () => ({ counts: { baseline: { notify: 2, suspend: 0 } }, oldest_seconds: 90 }),
  });
}

describe("Telemetry with a Prometheus endpoint", async () => {
  const telemetry = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
  after(() => telemetry.stop());
  recordEverything(telemetry.metrics);
  const base = `http://127.0.0.1:${telemetry.address?.port}`;
  const scrape = async (): Promise<string> => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  test("binds loopback on the port the OS picked", () => {
    assert.ok(telemetry.address);
    assert.equal(telemetry.address.host, "127.0.0.1");
    assert.ok(telemetry.address.port > 0 && telemetry.address.port < 65536);
  });

  test("exposes every metric with its exact Prometheus name, labels and value", async () => {
    const body = await scrape();
    const expected = [
      'vigil_evaluations_total{policy="baseline"} 2',
      'vigil_evaluation_duration_seconds_count{policy="baseline"} 2',
      'vigil_evaluations_total{policy="batch"} 40',
      'vigil_evaluation_duration_seconds_count{policy="batch"} 1',
      'vigil_evaluation_duration_seconds_sum{policy="baseline"} 0.22',
      'vigil_evaluation_duration_seconds_bucket{policy="baseline",le="0.025"} 1',
      'vigil_evaluation_duration_seconds_bucket{policy="baseline",le="0.25"} 2',
      'vigil_evaluation_duration_seconds_bucket{policy="baseline",le="+Inf"} 2',
      'vigil_check_results_total{check="certificate_validity",status="pass"} 1',
      'vigil_check_results_total{check="certificate_validity",status="fail"} 1',
      'vigil_check_errors_total{check="edr_status",reason="timeout"} 1',
      'vigil_decision_changes_total{policy="baseline",access="read_only"} 1',
      ...N.ACTION_OUTCOMES.map((o) => `vigil_actions_total{type="webhook",outcome="${o}"} 1`),
      'vigil_signals_total{check="edr_status",outcome="accepted"} 1',
      'vigil_signals_total{check="edr_status",outcome="rejected"} 1',
      "vigil_signal_to_enforcement_seconds_count 1",
      "vigil_signal_to_enforcement_seconds_sum 0.004",
      'vigil_signal_to_enforcement_seconds_bucket{le="0.003"} 0',
      'vigil_signal_to_enforcement_seconds_bucket{le="0.005"} 1',
      'vigil_enforcement_paused_total{policy="baseline"} 1',
      'vigil_config_reloads_total{outcome="success"} 1',
      'vigil_config_reloads_total{outcome="failure"} 1',
      'vigil_queue_jobs{queue="actions",state="waiting"} 7',
      'vigil_queue_jobs{queue="actions",state="delayed"} 2',
      'vigil_queue_jobs{queue="actions",state="active"} 1',
      'vigil_queue_jobs{queue="actions",state="failed"} 3',
      'vigil_subjects{policy="baseline",access="full_access"} 10',
      'vigil_subjects{policy="baseline",access="read_only"} 2',
      'vigil_subjects{policy="baseline",access="deny"} 1',
      'vigil_enforcement_paused{policy="baseline"} 1',
      'vigil_enforcement_paused{policy="strict"} 0',
      'vigil_provider_circuit_open{provider="okta"} 1',
      'vigil_provider_circuit_open{provider="aws"} 0',
      'vigil_enforcement_unreconciled{policy="baseline",action="notify"} 2',
      'vigil_enforcement_unreconciled{policy="baseline",action="suspend"} 0',
      "vigil_enforcement_unreconciled_oldest_seconds 90",
      `vigil_build_info{version="${PACKAGE_VERSION}",node="${process.version}"} 1`,
      'vigil_result_streams_dropped_total{check="edr_status"} 3',
      "vigil_results_pruned_total 5",
      'vigil_inventory_errors_total{inventory="0:file"} 1',
      'vigil_inventory_stale{inventory="0:file"} 1',
      'vigil_inventory_stale{inventory="1:static"} 0',
      'vigil_audit_checkpoints_total{outcome="success"} 1',
      'vigil_audit_checkpoints_total{outcome="failure"} 1',
    ];
    const lines = new Set(body.split("\n"));
    for (const line of expected) assert.ok(lines.has(line), `missing line: ${line}\n--- scrape ---\n${body}`);

    // Names exactly as documented: nothing appended (no doubled _total, no unit suffix).
    const types = new Map([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    for (const def of N.ALL_METRICS) assert.ok(types.has(def.name), `no # TYPE for ${def.name}`);
    assert.equal(types.get("vigil_evaluations_total"), "counter");
    assert.equal(types.get("vigil_evaluation_duration_seconds"), "histogram");
    assert.equal(types.get("vigil_signal_to_enforcement_seconds"), "histogram");
    assert.equal(types.get("vigil_queue_jobs"), "gauge");
    assert.equal(types.get("vigil_enforcement_paused"), "gauge");
    assert.equal(types.get("vigil_build_info"), "gauge");
    assert.doesNotMatch(body, /_total_total|_seconds_seconds|otel_scope_name/);
  });

  test("config reload outcomes exist from the start so the first failure shows as an increase", async () => {
    const fresh = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
    try {
      const body = await (await fetch(`http://127.0.0.1:${fresh.address?.port}/metrics`)).text();
      assert.match(body, /^vigil_config_reloads_total\{outcome="success"\} 0$/m);
      assert.match(body, /^vigil_config_reloads_total\{outcome="failure"\} 0$/m);
    } finally {
      await fresh.stop();
    }
  });

  test("histogram buckets are the configured boundaries", async () => {
    const body = await scrape();
    const les = (name: string, labels = "") => [...body.matchAll(new RegExp(`^${name}_bucket\\{${labels}le="([^"]+)"\\}`, "gm"))].map((m) => m[1]);
    assert.deepEqual(les("vigil_signal_to_enforcement_seconds"), [...N.SIGNAL_TO_ENFORCEMENT_BUCKETS.map(String), "+Inf"]);
    assert.deepEqual(les("vigil_evaluation_duration_seconds", 'policy="baseline",'), [...N.EVALUATION_DURATION_BUCKETS.map(String), "+Inf"]);
    assert.equal(N.SIGNAL_TO_ENFORCEMENT_BUCKETS[0], 0.001);
    assert.equal(N.SIGNAL_TO_ENFORCEMENT_BUCKETS.at(-1), 60);
    assert.ok(N.SIGNAL_TO_ENFORCEMENT_BUCKETS.filter((b) => b <= 0.01).length >= 5, "at least 5 buckets at or under 10 ms");
  });

  test("passes `promtool check metrics` with no problems", { skip: hasPromtool() ? false : PROMTOOL_MISSING }, async () => {
    const body = await scrape();
    const r = spawnSync("promtool", ["check", "metrics"], { input: body, encoding: "utf8" });
    const problems = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.trim() !== "");
    assert.deepEqual(problems, [], `promtool reported:\n${problems.join("\n")}`);
    assert.equal(r.status, 0);
  });

  test("serves /metrics only", async () => {
    for (const path of ["/", "/metricsx", "/metrics/", "/healthz"]) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404, path);
      await res.arrayBuffer();
    }
    const withQuery = await fetch(`${base}/metrics?x=1`);
    assert.equal(withQuery.status, 200);
    await withQuery.arrayBuffer();
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.arrayBuffer();
  });

  test("a throwing observer keeps its last values and leaves the scrape intact", async () => {
    telemetry.metrics.setObservers({
      subjects: () => {
        throw new Error("boom");
      },
    });
    const body = await scrape();
    assert.match(body, /^vigil_subjects\{policy="baseline",access="full_access"\} 10$/m);
    assert.match(body, /^vigil_queue_jobs\{queue="actions",state="waiting"\} 7$/m, "other observers are kept");
    assert.match(body, /^vigil_evaluations_total\{policy="baseline"\} 2$/m);
  });

  test("series that disappear from an observer drop to 0 instead of freezing", async () => {
    telemetry.metrics.setObservers({
      paused: () => ({ strict: true }),
      subjects: () => ({ baseline: { full_access: 4 } }),
      queueDepth: () => ({}),
    });
    const body = await scrape();
    assert.match(body, /^vigil_enforcement_paused\{policy="baseline"\} 0$/m);
    assert.match(body, /^vigil_enforcement_paused\{policy="strict"\} 1$/m);
    assert.match(body, /^vigil_subjects\{policy="baseline",access="full_access"\} 4$/m);
    assert.match(body, /^vigil_subjects\{policy="baseline",access="deny"\} 0$/m);
    assert.match(body, /^vigil_queue_jobs\{queue="actions",state="waiting"\} 0$/m);
  });

  test("ignores negative and non-finite durations", async () => {
    telemetry.metrics.signalToEnforcement(-1);
    telemetry.metrics.signalToEnforcement(Number.NaN);
    telemetry.metrics.evaluation("baseline", Number.POSITIVE_INFINITY);
    const body = await scrape();
    assert.match(body, /^vigil_signal_to_enforcement_seconds_count 1$/m);
    assert.match(body, /^vigil_evaluations_total\{policy="baseline"\} 3$/m, "the evaluation still counts");
    assert.match(body, /^vigil_evaluation_duration_seconds_count\{policy="baseline"\} 2$/m);
  });
});

test("stop() is idempotent and closes the endpoint", async () => {
  const t = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
  const url = `http://127.0.0.1:${t.address?.port}/metrics`;
  const res = await fetch(url);
  assert.equal(res.status, 200);
  await res.text();
  const first = t.stop();
  assert.equal(t.stop(), first, "concurrent calls share one shutdown");
  await first;
  await t.stop();
  await assert.rejects(fetch(url));
});

test("without listen there is no endpoint, and recording still works", async () => {
  const t = await Telemetry.start({}, silentLogger());
  assert.equal(t.address, undefined);
  recordEverything(t.metrics);
  const span = t.tracer.startSpan("noop");
  assert.equal(span.isRecording(), false, "no-op tracer without OTLP");
  span.end();
  await t.stop();
});

test("start() rejects when the port is taken", async () => {
  const a = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
  try {
    await assert.rejects(Telemetry.start({ listen: `127.0.0.1:${a.address?.port}` }, silentLogger()), { code: "EADDRINUSE" });
  } finally {
    await a.stop();
  }
});

test("parseListen", () => {
  assert.deepEqual(parseListen("127.0.0.1:9464"), { host: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseListen(":9464"), { host: undefined, port: 9464 });
  assert.deepEqual(parseListen("localhost:80"), { host: "localhost", port: 80 });
  for (const bad of ["9464", "127.0.0.1", "127.0.0.1:99999", "::1:9464", "host:port", ""]) {
    assert.throws(() => parseListen(bad), TypeError, bad);
  }
});

test("exports metrics and traces over OTLP/HTTP when configured", async () => {
  const received: { path: string; type: string | undefined; auth: string | undefined; body: string }[] = [];
  const collector = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", type: req.headers["content-type"], auth: req.headers["authorization"], body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  try {
    const port = (collector.address() as AddressInfo).port;
    const t = await Telemetry.start(
      { listen: "127.0.0.1:0", otlp: { endpoint: `http://127.0.0.1:${port}/`, headers: { authorization: "Bearer t0k" }, interval_ms: 600_000 } },
      silentLogger(),
    );
    t.metrics.action("webhook", "success");
    t.tracer.startActiveSpan("evaluate", (outer) => {
      const inner = t.tracer.startSpan("check");
      assert.equal(inner.isRecording(), true);
      assert.equal(inner.spanContext().traceId, outer.spanContext().traceId, "active span is the parent");
      inner.end();
      outer.end();
    });
    await t.stop(); // flushes both pipelines
    const metrics = received.find((r) => r.path === "/v1/metrics");
    const traces = received.find((r) => r.path === "/v1/traces");
    assert.ok(metrics, `no metrics export; got ${received.map((r) => r.path).join(", ")}`);
    assert.ok(traces, "no trace export");
    assert.equal(metrics.auth, "Bearer t0k");
    assert.match(metrics.body, /vigil_actions_total/);
    assert.match(traces.body, /"evaluate"/);
    // Globals registered for OTLP are released on stop.
    assert.equal((await import("@opentelemetry/api")).trace.getTracer("x").startSpan("after").isRecording(), false);
  } finally {
    collector.close();
  }
});

test("the default path loads no OTLP exporter or trace SDK", () => {
  const script = `
    import { createRequire } from "node:module";
    const { Telemetry } = await import(${JSON.stringify(new URL("../../src/telemetry/metrics.ts", import.meta.url).href)});
    const { silentLogger } = await import(${JSON.stringify(new URL("../../src/telemetry/log.ts", import.meta.url).href)});
    const t = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
    const cache = Object.keys(createRequire(import.meta.url)("node:module")._cache);
    console.log(JSON.stringify(cache.filter((f) => /otlp|sdk-trace|sdk-node|grpc|protobuf/.test(f))));
    await t.stop();`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "null"), []);
});

test("start() rejects a non-http OTLP endpoint", async () => {
  await assert.rejects(Telemetry.start({ otlp: { endpoint: "collector:4318" } }, silentLogger()), TypeError);
});

test("noopMetrics records nothing and never throws", () => {
  const m = noopMetrics();
  recordEverything(m);
  assert.deepEqual(Object.keys(m).sort(), ["action", "auditCheckpoint", "checkError", "checkResult", "configReload", "decisionChange", "enforcementPaused", "evaluation", "inventoryError", "resultsPruned", "setObservers", "signal", "signalToEnforcement", "streamsDropped"]);
});
