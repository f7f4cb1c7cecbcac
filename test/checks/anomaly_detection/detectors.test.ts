/**
 * The detectors on generated series with known anomalies (test/helpers/series.ts): each kind is
 * found within a stated delay, normal series stay quiet, bad points are skipped and counted, and
 * state survives a JSON round trip mid-series with identical scores afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDetector, restoreDetector, DEFAULT_DETECTOR, DETECTORS, resolveWarmup, type DetectorOptions } from "../../../src/checks/anomaly_detection/detectors/detector.ts";
import { SortedWindow } from "../../../src/checks/anomaly_detection/detectors/sorted-window.ts";
import { makeSeries, rng, START, STEP_MS, type AnomalyKind } from "../../helpers/series.ts";

/** The threshold docs/checks.md recommends for the default detector. */
const THRESHOLD = 0.6;

/** Most points after the onset before the default detector crosses THRESHOLD (see docs/checks.md). */
const DELAY: Record<AnomalyKind, number> = {
  spike: 0,
  dip: 0,
  spike_after_gap: 0,
  seasonality_break: 5,
  flatline: 3,
  level_shift: 15,
  variance_change: 30,
  trend_change: 100,
};

function scores(options: DetectorOptions, t: readonly number[], v: readonly number[]): number[] {
  const d = createDetector(options);
  return t.map((ts, i) => d.update(ts, v[i]!) ?? 0);
}

for (const [kind, delay] of Object.entries(DELAY) as [AnomalyKind, number][]) {
  test(`the default detector finds a ${kind} within ${delay} points and is quiet before it`, () => {
    for (const seed of [1, 2, 3]) {
      for (const variant of [{ seasonal: 0, ar: 0 }, { seasonal: 0.2, ar: 0 }, { seasonal: 0, ar: 0.9 }]) {
        if (kind === "seasonality_break" && variant.seasonal === 0) continue; // needs a cycle to break
        if (kind === "flatline" && variant.seasonal !== 0) continue; // a cycle is not flat
        const s = makeSeries(kind, { seed, ...variant, ...(kind === "seasonality_break" ? { seasonal: 0.2 } : {}) });
        const sc = scores({ detector: DEFAULT_DETECTOR, expectedLength: s.t.length }, s.t, s.v);
        const found = sc.findIndex((x, i) => i >= s.onset! && x >= THRESHOLD);
        assert.ok(found >= 0 && found - s.onset! <= delay, `${s.name}: found ${found - s.onset!} points after onset (max ${delay})`);
        if (variant.ar === 0) {
          const early = sc.findIndex((x, i) => i < s.onset! && x >= THRESHOLD);
          assert.equal(early, -1, `${s.name}: alarm at ${early}, before the onset at ${s.onset}`);
        }
      }
    }
  });
}

test("normal series stay below the threshold: noise, a daily cycle, autocorrelated noise, a flat line, integer counts", () => {
  const series = [1, 2, 3, 4, 5].flatMap((seed) => [
    makeSeries("none", { seed }),
    makeSeries("none", { seed, seasonal: 0.3 }),
    makeSeries("none", { seed, ar: 0.9 }),
    makeSeries("none", { seed, noise: 0 }),
  ]);
  const r = rng(9);
  const counts = { name: "counts", t: series[0]!.t, v: series[0]!.t.map(() => (r() < 0.9 ? 0 : r() < 0.9 ? 1 : 2)) };
  for (const s of [...series, counts]) {
    const sc = scores({ detector: DEFAULT_DETECTOR, expectedLength: s.t.length }, s.t, s.v);
    const worst = Math.max(...sc);
    assert.ok(worst < THRESHOLD, `${s.name}: score ${worst.toFixed(3)} at ${sc.indexOf(worst)}`);
  }
});

test("scores are 0 during the warm-up and in [0, 1] after it", () => {
  const s = makeSeries("spike", { seed: 4, onset: 100 });
  for (const detector of DETECTORS.keys()) {
    const sc = scores({ detector, warmup: 200 }, s.t.slice(0, 600), s.v.slice(0, 600));
    assert.deepEqual(sc.slice(0, 200), new Array(200).fill(0), `${detector}: warm-up scores`);
    assert.ok(sc.every((x) => x >= 0 && x <= 1), `${detector}: a score outside [0, 1]`);
  }
  assert.equal(resolveWarmup({ expectedLength: 4000 }), 600);
  assert.equal(resolveWarmup({ expectedLength: 100_000 }), 750);
  assert.equal(resolveWarmup({}), 750);
});

test("a range-based detector learns its range during the warm-up, or takes the one given", () => {
  const s = makeSeries("none", { seed: 2, length: 400 });
  const learned = createDetector({ detector: "cad_ose", warmup: 100 });
  s.t.forEach((t, i) => learned.update(t, s.v[i]!));
  const first = s.v.slice(0, 100);
  assert.deepEqual(learned.range, { min: Math.min(...first), max: Math.max(...first) });
  const given = createDetector({ detector: "cad_ose", min: 0, max: 200, warmup: 100 });
  assert.deepEqual(given.range, { min: 0, max: 200 });
});

test("NaN, infinite and missing values and out-of-order timestamps are skipped and counted", () => {
  for (const detector of DETECTORS.keys()) {
    const d = createDetector({ detector, warmup: 20 });
    const got: (number | null)[] = [];
    for (let i = 0; i < 200; i++) got.push(d.update(START + i * STEP_MS, 100 + Math.sin(i)));
    got.push(d.update(START + 200 * STEP_MS, NaN));
    got.push(d.update(START + 201 * STEP_MS, Infinity));
    got.push(d.update(START + 202 * STEP_MS, -Infinity));
    got.push(d.update(NaN, 1));
    got.push(d.update(START + 150 * STEP_MS, 100)); // older than the last point
    got.push(d.update(START + 199 * STEP_MS, 100)); // the last point again
    got.push(d.update(START + 300 * STEP_MS, 100)); // after a gap
    assert.deepEqual(got.slice(200, 206), [null, null, null, null, null, null], detector);
    assert.equal(typeof got[206], "number", detector);
    assert.deepEqual(d.counts, { seen: 201, nonFinite: 4, outOfOrder: 2 }, detector);
  }
});

test("bad options are refused with a config error", () => {
  const bad = (o: DetectorOptions, re: RegExp) => assert.throws(() => createDetector(o), (e: Error & { code?: string }) => e.code === "VIGIL_ERR_CONFIG_INVALID" && re.test(e.message));
  bad({ detector: "nope" }, /unknown detector "nope" \(built in: median_mad, cad_ose\)/);
  bad({ detector: "median_mad", min: 0 }, /both min and max/);
  bad({ detector: "median_mad", min: 5, max: 1 }, /min ≤ max/);
  bad({ detector: "median_mad", warmup: -1 }, /warmup/);
  bad({ detector: "median_mad", params: { windw: 5 } }, /no parameter "windw"/);
  bad({ detector: "median_mad", params: { window: 0 } }, /positive integer/);
  bad({ detector: "median_mad", params: { seasonality: "hourly" } }, /seasonality/);
  bad({ detector: "cad_ose", params: { restPeriod: "5" } }, /must be a number/);
});

const ROUND_TRIP: DetectorOptions[] = [
  { detector: "median_mad", warmup: 300 },
  { detector: "median_mad", warmup: 300, params: { seasonality: "none" } },
  { detector: "median_mad", warmup: 300, params: { seasonality: "weekly", window: 200 } },
  { detector: "median_mad", warmup: 300, likelihood: true },
  { detector: "cad_ose", warmup: 300 },
  { detector: "cad_ose", warmup: 300, min: 50, max: 150, likelihood: true },
  { detector: "cad_ose", warmup: 300, params: { maxContexts: 400 } },
];

test("state round-trips through JSON mid-series: the restored detector scores the rest identically", () => {
  const s = makeSeries("level_shift", { seed: 5, length: 1500, onset: 1000, seasonal: 0.2 });
  for (const options of ROUND_TRIP) {
    const reference = scores(options, s.t, s.v);
    // During the warm-up (range still being learned), just after it, and late in the series.
    for (const cut of [150, 301, 1100]) {
      const d = createDetector(options);
      for (let i = 0; i < cut; i++) d.update(s.t[i]!, s.v[i]!);
      const restored = restoreDetector(JSON.parse(JSON.stringify(d)));
      const rest = s.t.slice(cut).map((t, i) => restored.update(t, s.v[cut + i]!) ?? 0);
      assert.deepEqual(rest, reference.slice(cut), `${JSON.stringify(options)} cut at ${cut}`);
      assert.deepEqual(restored.counts, createDetectorCounts(options, s, s.t.length), `${JSON.stringify(options)} counts`);
    }
  }
});

function createDetectorCounts(options: DetectorOptions, s: { t: number[]; v: number[] }, n: number) {
  const d = createDetector(options);
  for (let i = 0; i < n; i++) d.update(s.t[i]!, s.v[i]!);
  return d.counts;
}

test("CAD OSE keeps its context memory under the cap by handing over to a younger generation", () => {
  const s = makeSeries("none", { seed: 6, length: 6000 });
  const d = createDetector({ detector: "cad_ose", warmup: 300, params: { maxContexts: 1000 } });
  let most = 0;
  for (let i = 0; i < s.t.length; i++) {
    d.update(s.t[i]!, s.v[i]!);
    const held = d.toJSON().model as { memory: { contexts: number[] }; next: { contexts: number[] } | null } | null;
    if (held && i % 500 === 0) most = Math.max(most, (held.memory.contexts.length + (held.next?.contexts.length ?? 0)) / 2);
  }
  assert.ok(most > 500, `the cap was reached (${most} contexts)`);
  assert.ok(most <= 1500, `contexts held: ${most}, cap 1000 (1.5 × with the younger generation)`);
});

test("the sorted window's median, MAD and tail counts agree with brute force", () => {
  const r = rng(3);
  const w = new SortedWindow(50);
  const all: number[] = [];
  for (let i = 0; i < 400; i++) {
    const x = Math.round(r() * 20) / 2; // ties on purpose
    w.push(x);
    all.push(x);
    const win = all.slice(-50).sort((a, b) => a - b);
    const med = (a: number[]) => (a.length % 2 ? a[(a.length - 1) >> 1]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2);
    const m = med(win);
    assert.equal(w.median(), m);
    assert.equal(w.mad(m), med(win.map((v) => Math.abs(v - m)).sort((a, b) => a - b)));
    assert.equal(w.countBeyond(m, 3), win.filter((v) => Math.abs(v - m) >= 3).length);
  }
  assert.deepEqual(w.values(), all.slice(-50));
});

test("a restored median_mad scores identically long after its windows have wrapped (their running sums are kept)", () => {
  // Values rounded to hundredths, on and off a cycle: the level test's standard-error floor (a
  // running standard deviation) then decides scores, down to its last bits.
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const t: number[] = [];
  const v: number[] = [];
  for (let k = 0; k < 12_000; k++) {
    t.push(START + k * 60_000);
    v.push(k % 3000 > 2900 ? 5 : Math.round((100 + Math.sin(k / 200) * 10 + next() * 3 + (k % 5000 === 0 ? 50 : 0)) * (k % 7 === 0 ? 1 : 100)) / 100);
  }
  for (const options of [{ detector: "median_mad", warmup: 50, params: { window: 200, seasonality: "none" } }, { detector: "median_mad", warmup: 50, params: { window: 100, seasonality: "daily" } }] as DetectorOptions[]) {
    const reference = scores(options, t, v);
    const d = createDetector(options);
    const cut = 10_001;
    for (let i = 0; i < cut; i++) d.update(t[i]!, v[i]!);
    const restored = restoreDetector(JSON.parse(JSON.stringify(d)));
    const rest = t.slice(cut).map((ts, i) => restored.update(ts, v[cut + i]!) ?? 0);
    assert.deepEqual(rest, reference.slice(cut), JSON.stringify(options));
  }
});

test("median_mad says what it expects: near the level and the noise of the series; CAD OSE keeps no such baseline", () => {
  const s = makeSeries("spike", { seed: 4, length: 1200, onset: 1100 });
  const d = createDetector({ detector: "median_mad", warmup: 100, params: { seasonality: "none" } });
  assert.equal(d.expected(s.t[0]!), undefined, "no baseline before any point");
  for (let i = 0; i < 1000; i++) d.update(s.t[i]!, s.v[i]!);
  const band = d.expected(s.t[1000]!)!;
  // makeSeries: level 100, noise σ = 2.
  assert.ok(Math.abs(band.center - 100) < 0.5, `center ${band.center}`);
  assert.ok(band.spread > 1.5 && band.spread < 2.5, `spread ${band.spread}`);
  const cad = createDetector({ detector: "cad_ose", warmup: 100 });
  for (let i = 0; i < 300; i++) cad.update(s.t[i]!, s.v[i]!);
  assert.equal(cad.expected(s.t[300]!), undefined);
});
