/**
 * The pure parts of the anomaly_detection check: the verdict from a subject's series, the state
 * codec, and the configuration (what is refused, the defaults it fills in).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateSubject, ANOMALY_REASONS, type SeriesView, type SubjectInput } from "../../../src/checks/anomaly_detection/evaluate.ts";
import { decodeState, encodeState } from "../../../src/checks/anomaly_detection/codec.ts";
import { anomalyConfigSchema, detectorOptions, lookbackOf, LIVE_WINDOW } from "../../../src/checks/anomaly_detection/config.ts";
import { anomalyDetectionCheck } from "../../../src/checks/anomaly_detection/index.ts";
import { createDetector, restoreDetector } from "../../../src/checks/anomaly_detection/detectors/detector.ts";
import { narrowTo } from "../../../src/checks/anomaly_detection/feed.ts";
import { renderPromQL } from "../../../src/checks/anomaly_detection/watcher.ts";
import { makeSeries } from "../../helpers/series.ts";
import type { Subject } from "../../../src/policy/model.ts";

const NOW = Date.parse("2026-12-07T10:00:00Z");
const TTL = 600_000;
const view = (o: Partial<SeriesView> = {}): SeriesView => ({ series: "error_ratio", warnAt: 0.6, failAt: 0.8, warmingUp: false, last: { t: NOW - 60_000, v: 0.01, score: 0.1 }, ...o });
const input = (series: SeriesView[], extra: Partial<SubjectInput> = {}): SubjectInput => ({ series, errors: [], unrenderable: [], ...extra });
const run = (i: SubjectInput, noData: "pass" | "unknown" = "pass") => evaluateSubject(i, { now: NOW, ttl: TTL, noData });

test("verdicts: a scored point stands for the ttl as fail or warn, then lapses; the worst series counts", () => {
  const spike = { t: NOW - 120_000, v: 0.52, score: 0.97, center: 0.0102, spread: 0.0011 };
  const cases: { name: string; input: SubjectInput; status: string; codes: string[]; lapses?: number }[] = [
    { name: "quiet series", input: input([view()]), status: "pass", codes: [] },
    { name: "a fail point within the ttl", input: input([view({ fail: spike, warn: spike })]), status: "fail", codes: [ANOMALY_REASONS.DETECTED], lapses: spike.t + TTL },
    { name: "a fail point older than the ttl", input: input([view({ fail: { ...spike, t: NOW - TTL - 1 }, warn: { ...spike, t: NOW - TTL - 1 } })]), status: "pass", codes: [] },
    { name: "a warn point", input: input([view({ warn: { ...spike, score: 0.65 } })]), status: "warn", codes: [ANOMALY_REASONS.SUSPECTED] },
    {
      name: "fail lapsed, a later warn still stands",
      input: input([view({ fail: { ...spike, t: NOW - TTL - 5 }, warn: { ...spike, t: NOW - 1000, score: 0.7 } })]),
      status: "warn",
      codes: [ANOMALY_REASONS.SUSPECTED],
    },
    { name: "raised thresholds apply to points already held", input: input([view({ failAt: 0.99, warnAt: 0.98, fail: spike, warn: spike })]), status: "pass", codes: [] },
    {
      name: "the worst of several series, reasons worst first",
      input: input([view({ series: "a", warn: { ...spike, score: 0.65 } }), view({ series: "b", fail: spike, warn: spike })]),
      status: "fail",
      codes: [ANOMALY_REASONS.DETECTED, ANOMALY_REASONS.SUSPECTED],
    },
    { name: "Prometheus unreadable", input: input([view()], { errors: [{ series: "error_ratio", message: "POST … timed out" }] }), status: "unknown", codes: [ANOMALY_REASONS.SOURCE_UNAVAILABLE] },
    {
      name: "unreadable, but a fail is known: fail",
      input: input([view({ fail: spike, warn: spike })], { errors: [{ series: "other", message: "down" }] }),
      status: "fail",
      codes: [ANOMALY_REASONS.DETECTED, ANOMALY_REASONS.SOURCE_UNAVAILABLE],
    },
    { name: "a field the query needs is missing", input: input([], { unrenderable: [{ series: "error_ratio", message: "subject web has no value for {{labels.app}}" }] }), status: "unknown", codes: [ANOMALY_REASONS.SUBJECT_FIELD_MISSING] },
    { name: "no data, no_data: pass", input: input([]), status: "pass", codes: [] },
    { name: "an old last point is no data either", input: input([view({ last: { t: NOW - TTL - 1, v: 1, score: 0 } })]), status: "pass", codes: [] },
  ];
  for (const c of cases) {
    const v = run(c.input);
    assert.equal(v.status, c.status, c.name);
    assert.deepEqual(v.reasons.map((r) => r.code), c.codes, c.name);
    if (c.lapses !== undefined) assert.equal(v.lapses_at, c.lapses, c.name);
  }
  assert.deepEqual(run(input([]), "unknown").reasons.map((r) => r.code), [ANOMALY_REASONS.NO_DATA]);
  assert.equal(run(input([view()]), "unknown").status, "pass", "a recent point is data");
});

test("an anomaly reason names the series, the value, what was expected and the score", () => {
  const spike = { t: NOW - 120_000, v: 0.52, score: 0.9712, center: 0.0102, spread: 0.0011 };
  const v = run(input([view({ series: 'error_ratio{route="/login"}', fail: spike, warn: spike })]));
  assert.equal(
    v.reasons[0]!.message,
    'error_ratio{route="/login"} = 0.52 at 2026-12-07T09:58:00.000Z, expected 0.0102 ± 0.0011 (rolling median ± robust σ): score 0.971 ≥ fail_at 0.8; stands until 2026-12-07T10:08:00.000Z',
  );
  const cad = run(input([view({ range: { min: 0, max: 1 }, warn: { t: NOW - 1, v: 0.9, score: 0.7 } })]));
  assert.match(cad.reasons[0]!.message, /in the context learned over \[0, 1\]: score 0\.7 ≥ warn_at 0\.6/);
  assert.deepEqual((v.evidence.series as Record<string, unknown>[])[0]!.anomaly, { status: "fail", value: 0.52, at: "2026-12-07T09:58:00.000Z", score: 0.971, until: "2026-12-07T10:08:00.000Z" });
});

test("the state codec is exact (NaN and infinities included) and far smaller than JSON", () => {
  const value = { ints: [1, 2, 3, -4, 5, 6, 7, 8, 2 ** 31 - 1], f32: [0.5, 0.25, 1.5, 2, 3, 4, 5, 6.75], f64: [0.1, 0.2, NaN, Infinity, -Infinity, -0, 1e-300, 5], short: [1, 2], nested: { deep: [[1.1, 2, 3, 4, 5, 6, 7, 8]] }, text: "x", none: null };
  const back = decodeState(encodeState(value)) as typeof value;
  assert.deepEqual(back.ints, value.ints);
  assert.deepEqual(back.f32, value.f32);
  assert.ok(Number.isNaN(back.f64[2]) && back.f64[3] === Infinity && back.f64[4] === -Infinity && Object.is(back.f64[5], -0));
  assert.deepEqual(back.f64.filter((x) => !Number.isNaN(x)), value.f64.filter((x) => !Number.isNaN(x)));
  assert.deepEqual([back.short, back.nested, back.text, back.none], [value.short, value.nested, value.text, value.none]);
  assert.throws(() => decodeState(Uint8Array.from([1, 2, 3])));

  // A live-check detector after a day of minute points: restored from the bytes, it scores on identically.
  const s = makeSeries("spike", { seed: 3, length: 3000, onset: 2800, seasonal: 0.2 });
  const options = detectorOptions({}, { name: "x", query: "q", match: { a: "{{id}}" } } as never);
  const d = createDetector(options);
  for (let i = 0; i < 2000; i++) d.update(s.t[i]!, s.v[i]!);
  const bytes = encodeState(d.toJSON(), 1);
  const json = JSON.stringify(d.toJSON()).length;
  assert.ok(bytes.length * 2.5 < json, `${bytes.length} bytes encoded against ${json} of JSON`);
  const r = restoreDetector(decodeState(bytes) as never);
  for (let i = 2000; i < 3000; i++) assert.equal(r.update(s.t[i]!, s.v[i]!), d.update(s.t[i]!, s.v[i]!));
});

test("configuration: without series the check is push-only; what is refused and why", () => {
  const configure = (raw: unknown) => anomalyDetectionCheck.configSchema.safeParse(raw);
  const ok = configure({});
  assert.ok(ok.success);
  assert.equal(anomalyDetectionCheck.pulls!(ok.data), false);
  const prom = { url: "http://127.0.0.1:9090" };
  const pulled = configure({ prometheus: prom, series: [{ name: "errors", query: 'rate(x{app="{{labels.app}}"}[5m])' }] });
  assert.ok(pulled.success);
  assert.equal(anomalyDetectionCheck.pulls!(pulled.data), true);
  const issues = (raw: unknown) => configure(raw).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`) ?? [];
  assert.deepEqual(issues({ series: [{ name: "e", query: "rate(x[5m])" }], prometheus: prom }), ["series.0.match: a query without {{…}} placeholders is asked once for all subjects: say with match which result labels name the subject"]);
  assert.deepEqual(issues({ series: [{ name: "e", query: 'x{a="{{id}}"}', match: { a: "{{id}}" } }], prometheus: prom }), [
    "series.0.match: a query with subject placeholders is asked per subject and takes no match; drop the placeholders to ask once for all subjects",
  ]);
  assert.deepEqual(issues({ series: [{ name: "e", query: 'x{a="{{id}}"}' }] }), ["prometheus: series with a query need prometheus: {url: …}"]);
  assert.deepEqual(issues({ prometheus: prom }), ["prometheus: prometheus is set but no series has a query"]);
  assert.deepEqual(issues({ series: [{ name: "e", push: true, query: 'x{a="{{id}}"}' }], prometheus: prom })[0], "series.0: give either query (Prometheus) or push: true (POST /v1/observations)");
  assert.deepEqual(issues({ series: [{ name: "e", push: true }, { name: "e", push: true }] }), ['series.1.name: series "e" is named twice']);
  assert.deepEqual(issues({ warn_at: 0.9, fail_at: 0.8, series: [{ name: "e", push: true }] }), ["series.0: warn_at (0.9) must not be above fail_at (0.8)", "warn_at: warn_at must not be above fail_at"]);
  assert.deepEqual(issues({ series: [{ name: "e", push: true, params: { windw: 5 } }] }), ['series.0: median_mad has no parameter "windw" (it has: window, shortWindow, seasonality, seasonMemory, bins)']);
  assert.deepEqual(issues({ series: [{ name: "e", push: true, query: undefined, min: 0 }] }), ["series.0: give both min and max, or neither"]);
  assert.deepEqual(issues({ series: [{ name: "e", query: 'x{a="{{labelz.a}}"}' }], prometheus: prom }), [
    "series.0.query: unknown placeholder {{labelz.a}} (use id, identity, kind, attributes.<path> or labels.<key>)",
  ]);
});

test("defaults: the live window, a lookback long enough for warm-up, window and a day, thresholds 0.6 and 0.8", () => {
  const cfg = anomalyConfigSchema.parse({ series: [{ name: "e", push: true }, { name: "w", push: true, params: { seasonality: "weekly", window: 100 }, warmup: 10 }, { name: "n", push: true, params: { seasonality: "none" }, warmup: 50 }] });
  assert.deepEqual(detectorOptions(cfg, cfg.series![0]!), { detector: "median_mad", params: { window: LIVE_WINDOW } });
  assert.equal(cfg.step, 60_000);
  assert.equal(lookbackOf(cfg, cfg.series![0]!), Math.max(86_400_000, (750 + LIVE_WINDOW) * 60_000));
  assert.equal(lookbackOf(cfg, cfg.series![1]!), 7 * 86_400_000);
  assert.equal(lookbackOf(cfg, cfg.series![2]!), (50 + LIVE_WINDOW) * 60_000);
  assert.equal(anomalyConfigSchema.parse({ lookback: "2h" }).lookback, 7_200_000);
});

test("a subject value goes into PromQL only when it cannot end a string or a selector", () => {
  const subject = (labels: Record<string, string>): Subject => ({ id: "web-1", kind: "workload", labels, attributes: {} });
  assert.deepEqual(renderPromQL('rate(x{app="{{labels.app}}",pod="{{id}}"}[5m])', subject({ app: "web" })), { owner: 'rate(x{app="web",pod="web-1"}[5m])' });
  assert.match((renderPromQL('x{app="{{labels.app}}"}', subject({ app: 'web"} or vector(1) #' })) as { problem: string }).problem, /cannot take safely/);
  assert.match((renderPromQL('x{app="{{labels.app}}"}', subject({})) as { problem: string }).problem, /subject web-1 has no value for \{\{labels\.app\}\}/);
});

test("narrowing an expression to some owners keeps it whole and quotes the values", () => {
  assert.equal(
    narrowTo("sum by (ns, app) (rate(x[5m]))", ["ns", "app"], [["prod", "web"], ["prod", 'we"b$1']]),
    '(sum by (ns, app) (rate(x[5m]))) and on(ns, app) (label_replace(label_replace(vector(1), "ns", "prod", "", ""), "app", "web", "", "") or label_replace(label_replace(vector(1), "ns", "prod", "", ""), "app", "we\\"b$$1", "", ""))',
  );
});
