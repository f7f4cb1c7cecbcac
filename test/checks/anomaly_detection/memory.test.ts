/**
 * Memory stays bounded whatever the series length: the default detector runs 10 million points
 * (10–35 s on the reference machine, depending on its load), the others 200,000 (CAD OSE 20,000,
 * with a small context cap so it cycles through many generations); the heap after a forced GC must not grow between a
 * point early in the run and the end.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createDetector, DEFAULT_DETECTOR, type DetectorOptions } from "../../../src/checks/anomaly_detection/detectors/detector.ts";
import { gaussian, rng } from "../../helpers/series.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function run(options: DetectorOptions, points: number, sampleAt: number): { early: number; late: number; json: number } {
  const d = createDetector(options);
  const g = gaussian(rng(11));
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  let early = 0;
  for (let i = 0; i < points; i++) {
    // A daily cycle, noise, a level change every 100,000 points and a flat stretch now and then.
    const flat = i % 250_000 > 249_000;
    d.update(t0 + i * 60_000, flat ? 42 : 100 + 20 * Math.sin((2 * Math.PI * i) / 1440) + 5 * g() + ((i / 100_000) | 0) % 3);
    if (i === sampleAt) early = heapAfterGc();
  }
  return { early, late: heapAfterGc(), json: JSON.stringify(d).length };
}

test(`the default detector's memory is flat over 10 million points`, { timeout: 300_000 }, () => {
  const { early, late, json } = run({ detector: DEFAULT_DETECTOR, warmup: 750 }, 10_000_000, 500_000);
  assert.ok(late - early < 2 * 2 ** 20, `heap grew by ${((late - early) / 2 ** 20).toFixed(2)} MiB between point 500,000 and 10,000,000`);
  assert.ok(json < 400_000, `state is ${json} bytes of JSON`);
});

for (const options of [
  { detector: "median_mad", warmup: 750, params: { seasonality: "weekly" } },
  { detector: "median_mad", warmup: 750, likelihood: true },
] satisfies DetectorOptions[]) {
  test(`${JSON.stringify(options)}: memory is flat over 200,000 points`, { timeout: 300_000 }, () => {
    const { early, late } = run(options, 200_000, 50_000);
    assert.ok(late - early < 2 * 2 ** 20, `heap grew by ${((late - early) / 2 ** 20).toFixed(2)} MiB between point 50,000 and 200,000`);
  });
}

// CAD OSE costs far more per point; 20,000 points with a 300-context cap go through many generations.
test("CAD OSE: memory is flat over 20,000 points with a small context cap", { timeout: 300_000 }, () => {
  const { early, late } = run({ detector: "cad_ose", warmup: 750, params: { maxContexts: 300 } }, 20_000, 5_000);
  assert.ok(late - early < 2 * 2 ** 20, `heap grew by ${((late - early) / 2 ** 20).toFixed(2)} MiB between point 5,000 and 20,000`);
});
