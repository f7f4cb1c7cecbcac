/**
 * Cost per point of each built-in detector, in process (no agent): a daily cycle with noise and
 * an occasional spike, fed point by point after a warm-up of the JIT. Reports µs per point and
 * the size of the detector's JSON state at the end.
 *
 * Env: BENCH_POINTS (default 1,000,000 for median_mad, a tenth of that for CAD OSE, whose cost
 * grows with the contexts it has learned).
 */
import { createDetector, type DetectorOptions } from "../src/checks/anomaly_detection/detectors/detector.ts";
import { gaussian, rng } from "../test/helpers/series.ts";
import { nowMs, r2, report, type Row } from "./lib.ts";

const POINTS = Number(process.env.BENCH_POINTS ?? 1_000_000);
const GOAL_US = 5;

const CASES: { label: string; options: DetectorOptions; points: number }[] = [
  { label: "median_mad (default)", options: { detector: "median_mad", warmup: 750 }, points: POINTS },
  { label: "median_mad, seasonality none", options: { detector: "median_mad", warmup: 750, params: { seasonality: "none" } }, points: POINTS },
  { label: "median_mad + likelihood", options: { detector: "median_mad", warmup: 750, likelihood: true }, points: POINTS },
  { label: "cad_ose", options: { detector: "cad_ose", warmup: 750 }, points: Math.max(10_000, Math.floor(POINTS / 10)) },
  { label: "cad_ose + likelihood", options: { detector: "cad_ose", warmup: 750, likelihood: true }, points: Math.max(10_000, Math.floor(POINTS / 10)) },
];

function series(n: number): { t: Float64Array; v: Float64Array } {
  const g = gaussian(rng(17));
  const t = new Float64Array(n);
  const v = new Float64Array(n);
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  for (let i = 0; i < n; i++) {
    t[i] = t0 + i * 60_000;
    v[i] = 100 + 20 * Math.sin((2 * Math.PI * i) / 1440) + 3 * g() + (i % 5000 === 4999 ? 40 : 0);
  }
  return { t, v };
}

const rows: Row[] = [];
const json: Record<string, unknown> = {};
for (const c of CASES) {
  const { t, v } = series(c.points);
  // JIT warm-up on a throw-away detector.
  const warm = createDetector(c.options);
  for (let i = 0; i < Math.min(20_000, c.points); i++) warm.update(t[i]!, v[i]!);
  const d = createDetector(c.options);
  const start = nowMs();
  for (let i = 0; i < c.points; i++) d.update(t[i]!, v[i]!);
  const us = ((nowMs() - start) * 1000) / c.points;
  const stateBytes = JSON.stringify(d).length;
  const isDefault = c.label.includes("(default)");
  rows.push({ metric: `${c.label}: µs per point (${c.points.toLocaleString("en")} points)`, value: r2(us).toString(), ...(isDefault ? { goal: `≤ ${GOAL_US}`, met: us <= GOAL_US } : {}) });
  rows.push({ metric: `${c.label}: JSON state`, value: `${r2(stateBytes / 1024)} KiB` });
  json[c.label] = { points: c.points, us_per_point: r2(us), state_kib: r2(stateBytes / 1024) };
}
report("anomaly detectors", rows, json);
