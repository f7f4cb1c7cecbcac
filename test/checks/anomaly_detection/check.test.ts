/**
 * The anomaly_detection check against a real Prometheus scraping an exporter this test runs every
 * second, with ten minutes of history written beforehand: per-subject queries warm up from the
 * history, a spike fails the subject for the ttl and then lapses, Prometheus down is `unknown`
 * and the gap is filled when it is back; one query serves all subjects, new series get their
 * history through a narrowed query, and a subject's series are capped. Pushed observations: what
 * is learned, skipped and reported; learned state survives a restart through the state store.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { Exporter, PROMETHEUS_MISSING, PrometheusServer } from "../../helpers/prometheus-anomaly.ts";
import { checkPluginContext, runContext, type TestContext } from "../../helpers/check-context.ts";
import { anomalyDetectionCheck, ANOMALY_REASONS } from "../../../src/checks/anomaly_detection/index.ts";
import { anomalyConfigSchema } from "../../../src/checks/anomaly_detection/config.ts";
import { createDetector } from "../../../src/checks/anomaly_detection/detectors/detector.ts";
import { PrometheusClient } from "../../../src/sources/prometheus/client.ts";
import { prometheusConnectionSchema } from "../../../src/sources/prometheus/schema.ts";
import { canonicalJSON } from "../../../src/util/canonical-json.ts";
import { MemoryStore } from "../../../src/store/memory.ts";
import { SharedResources } from "../../../src/plugin/shared.ts";
import { createLogger } from "../../../src/telemetry/log.ts";
import type { Check, Observation } from "../../../src/plugin/check.ts";
import type { CheckResult, Subject } from "../../../src/policy/model.ts";
import { until } from "../../helpers/wait.ts";

const NOW_S = Math.floor(Date.now() / 1000);
const TTL = 4_000;
const workload = (app: string): Subject => ({ id: app, kind: "workload", labels: { app }, attributes: {} });
const [web, api, late, db] = ["web", "api", "late", "db"].map(workload) as [Subject, Subject, Subject, Subject];

/**
 * Noise around 0.01: two values, so runs of one value are common and the few seconds Prometheus
 * repeats a last value across a gap (its lookback delta) do not look like a stuck metric.
 */
function noise(seed: number): () => number {
  let i = seed;
  return () => 0.01 + ((i++ * 4) % 11 > 5 ? 0.001 : 0);
}

type Evidence = { series: { series: string; value?: number; at?: string; score?: number; warming_up?: boolean; anomaly?: { status: string; until: string } }[]; series_total?: number };
const evidence = (r: CheckResult) => r.evidence as unknown as Evidence;

function clientOf(ctx: TestContext, url: string): PrometheusClient {
  // The check shares its client through ctx.shared under this key; holding it here counts its calls.
  const lease = ctx.shared.acquire(`prometheus:${canonicalJSON(prometheusConnectionSchema.parse({ url }))}`, () => undefined as unknown as PrometheusClient);
  lease.release();
  return lease.value;
}

describe("per-subject and shared queries against a real Prometheus", { skip: PROMETHEUS_MISSING }, () => {
  const exporter = new Exporter();
  let prom: PrometheusServer;
  const base = { step: "1s", warmup: 30, params: { window: 120, seasonality: "none" } };

  before(async () => {
    const target = await exporter.start();
    const labels = (app: string, extra = "") => `{app="${app}"${extra},instance="${target}",job="test"}`;
    exporter.values.set('app_error_ratio{app="web"}', noise(1));
    exporter.values.set('app_error_ratio{app="api"}', noise(2));
    exporter.values.set('app_latency{app="web"}', noise(3));
    exporter.values.set('app_latency{app="api"}', noise(4));
    for (let k = 1; k <= 12; k++) exporter.values.set(`app_conns{app="web",pod="p${k}"}`, noise(k));
    const history: string[] = [];
    const gen = new Map<string, () => number>();
    const n = (series: string) => (gen.get(series) ?? gen.set(series, noise(gen.size)).get(series)!)();
    for (let t = NOW_S - 600; t < NOW_S - 2; t++) {
      for (const app of ["web", "api"]) {
        history.push(`app_error_ratio${labels(app)} ${n(`e${app}`)} ${t}`);
        history.push(`app_latency${labels(app)} ${n(`l${app}`)} ${t}`);
      }
    }
    // "late" has history that ended over five minutes ago: an instant query does not see it until it
    // is served again. A constant: a range query repeats a last value for five minutes after it (there
    // is no staleness marker in written history), which must not look like a metric that got stuck.
    for (let t = NOW_S - 960; t < NOW_S - 400; t++) history.push(`app_latency${labels("late")} 0.01 ${t}`);
    prom = await PrometheusServer.start({ targets: [target], history });
    await prom.ready();
    await prom.scraped(exporter);
  });
  after(async () => {
    await prom?.stop();
    await exporter.stop();
  });

  /** Waits until Prometheus answers `expr` with a value `ok` accepts. */
  async function visible(expr: string, ok: (v: number) => boolean): Promise<void> {
    const c = new PrometheusClient(prometheusConnectionSchema.parse({ url: prom.url }), checkPluginContext());
    await until(async () => {
      const s = await c.query(expr, Date.now(), AbortSignal.timeout(5000));
      return s.length > 0 && ok(s[0]!.v[0]!);
    }, 15_000);
  }

  test("per-subject queries: warm from history, a spike fails the subject for the ttl, then it lapses", async () => {
    const ctx = checkPluginContext();
    const config = anomalyConfigSchema.parse({ ...base, prometheus: { url: prom.url }, lookback: "5m", series: [{ name: "error_ratio", query: 'sum(app_error_ratio{app="{{labels.app}}"})' }] });
    const check = anomalyDetectionCheck.create(config, ctx);
    const run = () => check.run([web, api], runContext(ctx, { ttlMs: TTL, check: "anomalies", timeoutMs: 5_000 }));
    try {
      const first = await run();
      assert.deepEqual(first.map((r) => [r.subject, r.status, r.check]), [["web", "pass", "anomalies"], ["api", "pass", "anomalies"]]);
      const e = evidence(first[0]!).series[0]!;
      assert.equal(e.series, "error_ratio");
      assert.equal(e.warming_up, undefined, "warmed up from five minutes of history");
      assert.ok(e.value! >= 0.01 && e.value! < 0.0111);
      assert.equal(clientOf(ctx, prom.url).calls, 4, "per subject: an instant query and the history");

      exporter.values.set('app_error_ratio{app="web"}', 0.5);
      await visible('app_error_ratio{app="web"}', (v) => v === 0.5);
      await new Promise((r) => setTimeout(r, 1_100)); // queries are evaluated on the step grid: the next step has it
      const spiked = await run();
      assert.deepEqual(spiked.map((r) => r.status), ["fail", "pass"]);
      const reason = spiked[0]!.reasons[0]!;
      assert.equal(reason.code, ANOMALY_REASONS.DETECTED);
      assert.match(reason.message, /^error_ratio = 0\.5 at \S+Z, expected 0\.01\d* ± [\d.e-]+ \(rolling median ± robust σ\): score 1 ≥ fail_at 0\.8; stands until \S+Z$/);
      assert.ok(spiked[0]!.next_run_at! > Date.now() && spiked[0]!.next_run_at! <= Date.now() + TTL, "re-checked when the spike lapses");

      exporter.values.set('app_error_ratio{app="web"}', noise(5));
      await visible('app_error_ratio{app="web"}', (v) => v < 0.1);
      await new Promise((r) => setTimeout(r, 1_100));
      const normalAgain = (await run())[0]!;
      assert.equal(normalAgain.status, "fail", "the spike stands for the ttl although the series is normal again");
      assert.ok(evidence(normalAgain).series[0]!.value! < 0.1);
      const until_ = Date.parse(evidence(normalAgain).series[0]!.anomaly!.until);
      await until(async () => (await run())[0]!.status === "pass", TTL + 5_000);
      assert.ok(Date.now() >= until_, "not before the ttl passed");
    } finally {
      await check.stop?.();
      await ctx.http.close();
    }
  });

  test("Prometheus not answering: unknown with the reason, and the gap is filled when it answers again", async () => {
    const ctx = checkPluginContext();
    const config = anomalyConfigSchema.parse({ ...base, prometheus: { url: prom.url, timeout: "1s" }, lookback: "5m", series: [{ name: "latency", query: 'sum(app_latency{app="{{labels.app}}"})' }] });
    const check = anomalyDetectionCheck.create(config, ctx);
    const run = (timeoutMs = 5_000) => check.run([web], runContext(ctx, { ttlMs: TTL, check: "anomalies", timeoutMs }));
    try {
      assert.equal((await run())[0]!.status, "pass");
      prom.pause();
      await new Promise((r) => setTimeout(r, 1_100)); // the next step, which needs a query
      let down: CheckResult;
      try {
        down = (await run(1_500))[0]!;
        await new Promise((r) => setTimeout(r, 2_100)); // Prometheus stays away for a few steps
      } finally {
        prom.resume();
      }
      assert.equal(down.status, "unknown");
      assert.equal(down.reasons[0]!.code, ANOMALY_REASONS.SOURCE_UNAVAILABLE);
      assert.match(down.reasons[0]!.message, /^latency: POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/query (timed out|aborted)/);
      await prom.ready();
      const back = (await run())[0]!;
      assert.equal(back.status, "pass");
      const at = Date.parse(evidence(back).series[0]!.at!);
      assert.ok(Date.now() - at < 2_000, "fed up to the current step");
    } finally {
      await check.stop?.();
      await ctx.http.close();
    }
  });

  test("one query for all subjects; series beyond max_series_per_subject are dropped and counted; a new series gets its history", async () => {
    const { Telemetry } = await import("../../../src/telemetry/metrics.ts");
    const logger = createLogger({ level: "silent" });
    const telemetry = await Telemetry.start({ listen: "127.0.0.1:0" }, logger);
    const ctx = checkPluginContext({ meter: telemetry.meter });
    const config = anomalyConfigSchema.parse({
      ...base,
      prometheus: { url: prom.url },
      lookback: "10m",
      max_series_per_subject: 5,
      series: [
        { name: "latency", query: "app_latency", match: { app: "{{labels.app}}" } },
        { name: "conns", query: "app_conns", match: { app: "{{labels.app}}" } },
      ],
    });
    const check = anomalyDetectionCheck.create(config, ctx);
    const run = (subjects: Subject[]) => check.run(subjects, runContext(ctx, { ttlMs: TTL, check: "anomalies", timeoutMs: 8_000 }));
    try {
      const first = await run([web, api, late, db]);
      assert.deepEqual(first.map((r) => r.status), ["pass", "pass", "pass", "pass"]);
      const calls = clientOf(ctx, prom.url).calls;
      assert.ok(calls <= 4, `${calls} queries for 4 subjects: one instant and one history per definition at most`);
      await run([web]);
      await run([api, late, db]);
      assert.ok(clientOf(ctx, prom.url).calls - calls <= 8, "later runs ask each definition once per step, not once per subject");

      const webSeries = evidence(first[0]!).series.map((s) => s.series).sort();
      assert.equal(webSeries.filter((s) => s.startsWith("conns{")).length, 5, "capped at max_series_per_subject");
      assert.ok(webSeries.includes("latency{__name__=\"app_latency\",instance=\"" + exporter.target + "\",job=\"test\"}"), webSeries.join(" "));
      assert.deepEqual(evidence(first[3]!).series, [], "db has no series");
      const metrics = await (await fetch(`http://127.0.0.1:${telemetry.address!.port}/metrics`)).text();
      const capped = Number(/vigil_anomaly_points_skipped_total\{check="anomalies",reason="series_cap"\} (\d+)/.exec(metrics)?.[1]);
      assert.ok(capped >= 7 && capped % 7 === 0, `the 7 pods over the cap lose their point at each step (${capped})`);
      assert.match(metrics, /vigil_anomaly_series\{check="anomalies"\} 7\b/);
      assert.match(metrics, /vigil_anomaly_points_total\{check="anomalies",source="prometheus"\} \d+/);

      exporter.values.set('app_latency{app="late"}', 0.01);
      await visible('app_latency{app="late"}', () => true);
      await new Promise((r) => setTimeout(r, 1_100));
      const [r] = await run([late]);
      const s = evidence(r!).series[0]!;
      assert.equal(s.warming_up, undefined, "warm at once: the narrowed history query brought its past");
      assert.equal(r!.status, "pass");
    } finally {
      await check.stop?.();
      await ctx.http.close();
      await telemetry.stop();
    }
  });
});

describe("pushed observations", () => {
  const base = { warmup: 20, params: { window: 60, seasonality: "none" }, max_series_per_subject: 3, series: [{ name: "logins", push: true }] };
  const obs = (subject: Subject, t: number, value: number, series = "logins"): Observation => ({ subject, series, timestamp: t, value });
  const T0 = Date.now() - 3_600_000;

  test("points are learned in order; re-sent, NaN and capped points are skipped and counted; a change of status gives a result", async () => {
    const ctx = checkPluginContext();
    const check = anomalyDetectionCheck.create(anomalyConfigSchema.parse(base), ctx) as Required<Check>;
    const octx = { check: "anomalies", ttlMs: 3_600_000 };
    try {
      assert.equal(check.takesSeries("logins"), true);
      assert.equal(check.takesSeries('logins{ip="10.0.0.1"}'), true);
      assert.equal(check.takesSeries("other"), false);
      const normal = Array.from({ length: 40 }, (_, i) => obs(web, T0 + i * 60_000, 10 + (i % 5)));
      // Sent shuffled: the check orders each series by time.
      const first = await check.observe([...normal].reverse(), octx);
      assert.deepEqual(new Set(first.outcomes), new Set(["accepted"]));
      assert.deepEqual(first.results, [], "nothing changed: nothing to report");
      const again = await check.observe(normal.slice(0, 3), octx);
      assert.deepEqual(again.outcomes, ["out_of_order", "out_of_order", "out_of_order"], "a re-send is idempotent");
      const odd = await check.observe([obs(web, T0 + 40 * 60_000, NaN), obs(web, T0 + 41 * 60_000, Infinity)], octx);
      assert.deepEqual(odd.outcomes, ["non_finite", "non_finite"]);
      const capped = await check.observe(["a", "b", "c", "d"].map((ip, i) => obs(web, T0 + i, 1, `logins{ip="${ip}"}`)), octx);
      assert.deepEqual(capped.outcomes, ["accepted", "accepted", "dropped", "dropped"], "logins and two more series: the cap of 3");

      const spike = await check.observe([obs(web, T0 + 42 * 60_000, 500)], octx);
      assert.deepEqual(spike.outcomes, ["accepted"]);
      assert.equal(spike.results.length, 1);
      assert.deepEqual([spike.results[0]!.subject, spike.results[0]!.status, spike.results[0]!.check], ["web", "fail", "anomalies"]);
      assert.match(spike.results[0]!.reasons[0]!.message, /^logins = 500 at /);
      const [r] = await check.run([web], runContext(ctx, { ttlMs: 3_600_000 }));
      assert.equal(r!.status, "fail", "a run reports the same");
      assert.deepEqual((await check.observe([obs(web, T0 + 43 * 60_000, 11)], octx)).results, [], "still failing (the spike stands): no change to report");
    } finally {
      await check.stop();
    }
  });

  test("learned state survives a restart through the state store, and scores go on exactly", async () => {
    const store = new MemoryStore();
    const octx = { check: "anomalies", ttlMs: 3_600_000 };
    const points = Array.from({ length: 80 }, (_, i) => obs(web, T0 + i * 60_000, 10 + ((i * 7) % 5)));
    const reference = createDetector({ detector: "median_mad", warmup: 20, params: { window: 60, seasonality: "none" } });
    for (const p of points.slice(0, 60)) reference.update(p.timestamp, p.value);

    const ctx1 = { ...checkPluginContext(), state: store };
    const first = anomalyDetectionCheck.create(anomalyConfigSchema.parse(base), ctx1) as Required<Check>;
    await first.observe(points.slice(0, 60), octx);
    await first.observe([obs(web, T0 + 60 * 60_000, 900)], octx); // a spike, then the rest
    reference.update(T0 + 60 * 60_000, 900);
    await first.stop();

    const ctx2 = { ...checkPluginContext(), state: store, shared: new SharedResources() };
    const second = anomalyDetectionCheck.create(anomalyConfigSchema.parse(base), ctx2) as Required<Check>;
    try {
      const [r] = await second.run([web], runContext(ctx2, { ttlMs: 3_600_000 }));
      assert.equal(r!.status, "fail", "the spike still stands after the restart");
      for (const p of points.slice(61)) {
        await second.observe([p], octx);
        const [now] = await second.run([web], runContext(ctx2, { ttlMs: 3_600_000 }));
        const expected = reference.update(p.timestamp, p.value)!;
        assert.equal((now!.evidence as unknown as Evidence).series[0]!.score, Math.round(expected * 1000) / 1000);
      }
    } finally {
      await second.stop();
    }
  });
});

describe("history read under the run's deadline", () => {
  test("a first sight with more history than a run has time for warms up over several runs, never timing out", async () => {
    let ranges = 0;
    const server = createServer(async (req, res) => {
      let body = "";
      for await (const c of req) body += c;
      const form = new URLSearchParams(body);
      const metric = (i: number) => `{"app":"web","pod":"p${i}"}`;
      const v = (t: number) => `"${10 + (Math.floor(t) % 3)}"`;
      res.setHeader("content-type", "application/json");
      if (req.url === "/api/v1/query") {
        const t = Number(form.get("time"));
        res.end(`{"status":"success","data":{"resultType":"vector","result":[${Array.from({ length: 10 }, (_, i) => `{"metric":${metric(i)},"value":[${t},${v(t)}]}`).join(",")}]}}`);
        return;
      }
      ranges++;
      await new Promise((r) => setTimeout(r, 150));
      const [start, end, step] = ["start", "end", "step"].map((k) => Number(form.get(k)));
      const values = (): string => {
        const out: string[] = [];
        for (let t = start!; t <= end!; t += step!) out.push(`[${t},${v(t)}]`);
        return out.join(",");
      };
      res.end(`{"status":"success","data":{"resultType":"matrix","result":[${Array.from({ length: 10 }, (_, i) => `{"metric":${metric(i)},"values":[${values()}]}`).join(",")}]}}`);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const ctx = checkPluginContext();
    const config = anomalyConfigSchema.parse({
      prometheus: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}` },
      step: "1s",
      lookback: "10m",
      warmup: 30,
      params: { window: 120, seasonality: "none" },
      max_points_per_query: 1000,
      series: [{ name: "conns", query: "conns", match: { app: "{{labels.app}}" } }],
    });
    const check = anomalyDetectionCheck.create(config, ctx);
    try {
      // 600 steps of 10 series, 100 steps per query at 150 ms each: more than half of a 1 s run.
      const [short] = await check.run([web], runContext(ctx, { ttlMs: 60_000, timeoutMs: 1_000 }));
      assert.equal(short!.status, "pass");
      const cut = evidence(short!).series;
      assert.ok(ranges >= 2 && ranges < 6, `${ranges} history queries before the deadline`);
      assert.ok(cut.every((s) => Date.now() - Date.parse(s.at!) > 60_000), "no series jumped ahead of its history");
      await new Promise((r) => setTimeout(r, 1_000));
      const [full] = await check.run([web], runContext(ctx, { ttlMs: 60_000, timeoutMs: 20_000 }));
      assert.equal(full!.status, "pass");
      assert.ok(evidence(full!).series.every((s) => Date.now() - Date.parse(s.at!) < 3_000 && s.warming_up === undefined), "caught up at the next step");
    } finally {
      await check.stop?.();
      server.close();
    }
  });
});
