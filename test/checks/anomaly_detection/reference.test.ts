/**
 * Faithful-port tests: the ports give what the published reference implementations gave on the
 * same inputs (test/fixtures/anomaly/README.md says where the outputs came from).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tupleHash, hashToString } from "../../../src/checks/anomaly_detection/detectors/py-hash.ts";
import { CadOse, CAD_OSE_DEFAULTS } from "../../../src/checks/anomaly_detection/detectors/cad-ose.ts";
import { AnomalyLikelihood, LIKELIHOOD_DEFAULTS, logLikelihood } from "../../../src/checks/anomaly_detection/detectors/likelihood.ts";
import { erfc } from "../../../src/checks/anomaly_detection/detectors/numeric.ts";
import { createDetector } from "../../../src/checks/anomaly_detection/detectors/detector.ts";

interface Fixture {
  hashes: { tuple: number[]; hash: string }[];
  cad_ose: { series: string; min: number; max: number; restPeriod: number; numNormValueBits: number; values: number[]; scores: number[]; contexts: number }[];
  likelihood: { name: string; learningPeriod: number; estimationSamples: number; historicWindowSize: number; values: number[]; raw: number[]; likelihood: number[]; logLikelihood: number[] }[];
}

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, "../../fixtures/anomaly/reference-outputs.json"), "utf8")) as Fixture;

test("tuple hashes are CPython's", () => {
  for (const { tuple, hash } of fixture.hashes) assert.equal(hashToString(tupleHash(tuple)), hash, `hash(${JSON.stringify(tuple)})`);
});

test("CAD OSE gives the reference's scores exactly, point for point", () => {
  for (const c of fixture.cad_ose) {
    const cad = new CadOse({ ...CAD_OSE_DEFAULTS, restPeriod: c.restPeriod, numNormValueBits: c.numNormValueBits }, c.min, c.max);
    const scores = c.values.map((v) => cad.step(v));
    assert.deepEqual(scores, c.scores, `${c.series} (${c.numNormValueBits} bits)`);
    assert.equal(cad.contexts, c.contexts, `${c.series}: contexts held`);
  }
});

test("CAD OSE in the pipeline with the range given and no warm-up is the reference", () => {
  const c = fixture.cad_ose[0]!;
  const d = createDetector({ detector: "cad_ose", min: c.min, max: c.max, warmup: 0, params: { restPeriod: c.restPeriod } });
  const scores = c.values.map((v, i) => d.update(i * 60_000, v));
  assert.deepEqual(scores, c.scores);
});

test("the anomaly likelihood matches the reference to 1e-12", () => {
  for (const c of fixture.likelihood) {
    const al = new AnomalyLikelihood({ ...LIKELIHOOD_DEFAULTS, learningPeriod: c.learningPeriod, estimationSamples: c.estimationSamples, historicWindowSize: c.historicWindowSize });
    let worst = 0;
    let worstLog = 0;
    c.values.forEach((v, i) => {
      const l = al.probability(v, c.raw[i]!);
      worst = Math.max(worst, Math.abs(l - c.likelihood[i]!));
      worstLog = Math.max(worstLog, Math.abs(logLikelihood(l) - c.logLikelihood[i]!));
    });
    assert.ok(worst < 1e-12, `${c.name}: likelihood off by ${worst}`);
    assert.ok(worstLog < 1e-9, `${c.name}: log-likelihood off by ${worstLog}`);
    // The fixtures reach the red zone and the filtered yellow level, so the edge rules are exercised.
    if (c.name === "synthetic") assert.ok(c.likelihood.some((l) => l > 0.99999), "fixture has red-zone likelihoods");
  }
});

test("erfc matches known values", () => {
  const known: [number, number][] = [
    [0, 1],
    [0.5, 0.4795001221869535],
    [1, 0.15729920705028513],
    [2, 0.004677734981047265],
    [3, 2.2090496998585438e-5],
    [5, 1.5374597944280351e-12],
    [-1, 1.842700792949715],
  ];
  for (const [x, want] of known) assert.ok(Math.abs(erfc(x) - want) <= 1e-15 * Math.max(1, want) + want * 1e-13, `erfc(${x}) = ${erfc(x)}, want ${want}`);
});
