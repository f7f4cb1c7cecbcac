/**
 * The anomaly likelihood (Ahmad, Lavin, Purdy, Agha: "Unsupervised real-time anomaly detection
 * for streaming data", Neurocomputing 2017): raw scores are averaged over a short window, a normal
 * distribution is fitted to the averages of a long window, and the likelihood is one minus the
 * Gaussian tail of the current average. Written from that description with the constants and
 * edge-case rules of Numenta's published implementation (`anomaly_likelihood.py`, class
 * AnomalyLikelihood), whose outputs the tests compare against:
 *
 * - the first `learningPeriod + estimationSamples` points give 0.5;
 * - the distribution is re-fitted every `reestimationPeriod` points from the last
 *   `historicWindowSize` raw scores, skipping what is left of the learning period in that window;
 *   the mean is floored at 0.03 and the variance at 0.0003; when the metric's own values barely
 *   vary (variance below 1.5e-5) a very broad distribution is used, so a flat metric is never
 *   anomalous;
 * - the tail is two-sided (averages below the mean are mirrored) and evaluated as
 *   0.5·erfc(z / 1.4142);
 * - a tail probability in the red zone (≤ 1e-5) right after another red one is raised to 1e-3,
 *   so a run of red points reports its start.
 *
 * Memory: the window of `historicWindowSize` (value, raw score) pairs, ten averages and ten
 * likelihoods — bounded whatever the series length.
 */
import { erfc, meanVar } from "./numeric.ts";

/** Anomaly likelihood parameters; defaults are the reference's. */
export interface LikelihoodParams {
  /** Points ignored at the start when fitting (the model is still learning). Default 288. */
  readonly learningPeriod: number;
  /** Points needed after the learning period for the first fit. Default 100. */
  readonly estimationSamples: number;
  /** Raw scores kept for fitting. Default 8640. */
  readonly historicWindowSize: number;
  /** Points between re-fits. Default 100. */
  readonly reestimationPeriod: number;
  /** Raw scores averaged before the tail is taken. Default 10. */
  readonly averagingWindow: number;
}

export const LIKELIHOOD_DEFAULTS: LikelihoodParams = {
  learningPeriod: 288,
  estimationSamples: 100,
  historicWindowSize: 8640,
  reestimationPeriod: 100,
  averagingWindow: 10,
};

interface Distribution {
  mean: number;
  variance: number;
  stdev: number;
}

export interface LikelihoodState {
  iteration: number;
  /** The window, oldest first. */
  values: number[];
  scores: number[];
  distribution: Distribution | null;
  averaged: number[];
  total: number;
  likelihoods: number[];
}

const RED = 1.0 - 0.99999;
const YELLOW = 1.0 - 0.999;
const NULL_DISTRIBUTION: Distribution = { mean: 0.5, variance: 1e6, stdev: 1e3 };

/** log(1.0000000001 − L) / log(1 − 0.9999999999): the likelihood on a log scale, as NAB scores it. */
export function logLikelihood(likelihood: number): number {
  return Math.log(1.0000000001 - likelihood) / -23.02585084720009;
}

function tailProbability(x: number, d: Distribution): number {
  if (x < d.mean) x = 2 * d.mean - x;
  const z = (x - d.mean) / d.stdev;
  return 0.5 * erfc(z / 1.4142);
}

/** Turns a stream of raw scores into likelihoods. */
export class AnomalyLikelihood {
  readonly params: LikelihoodParams;
  #iteration: number;
  // A ring buffer of the window: cheaper than shifting an array of 8640.
  readonly #values: Float64Array;
  readonly #scores: Float64Array;
  #start = 0;
  #size = 0;
  #distribution: Distribution | null;
  #averaged: number[];
  #total: number;
  #likelihoods: number[];

  constructor(params: LikelihoodParams, state?: LikelihoodState) {
    if (params.historicWindowSize < params.estimationSamples) throw new RangeError("estimationSamples exceeds historicWindowSize");
    this.params = params;
    this.#values = new Float64Array(params.historicWindowSize);
    this.#scores = new Float64Array(params.historicWindowSize);
    this.#iteration = state?.iteration ?? 0;
    this.#distribution = state?.distribution ? { ...state.distribution } : null;
    this.#averaged = state ? [...state.averaged] : [];
    this.#total = state?.total ?? 0;
    this.#likelihoods = state ? [...state.likelihoods] : [];
    if (state) for (let i = 0; i < state.values.length; i++) this.#append(state.values[i]!, state.scores[i]!);
  }

  #append(value: number, score: number): void {
    const cap = this.params.historicWindowSize;
    const at = (this.#start + this.#size) % cap;
    this.#values[at] = value;
    this.#scores[at] = score;
    if (this.#size < cap) this.#size++;
    else this.#start = (this.#start + 1) % cap;
  }

  /** The likelihood (0..1) that `rawScore`, seen with `value`, is anomalous; then records both. */
  probability(value: number, rawScore: number): number {
    let likelihood = 0.5;
    const p = this.params;
    if (this.#iteration >= p.learningPeriod + p.estimationSamples) {
      if (this.#distribution === null || this.#iteration % p.reestimationPeriod === 0) this.#estimate();
      // One moving-average step, then the filtered tail of the new average.
      if (this.#averaged.length === p.averagingWindow) this.#total -= this.#averaged.shift()!;
      this.#averaged.push(rawScore);
      this.#total += rawScore;
      const tail = tailProbability(this.#total / this.#averaged.length, this.#distribution!);
      const previous = this.#likelihoods.length > 0 ? this.#likelihoods[this.#likelihoods.length - 1]! : undefined;
      const filtered = previous !== undefined && tail <= RED && previous <= RED ? YELLOW : tail;
      this.#likelihoods.push(tail);
      if (this.#likelihoods.length > p.averagingWindow) this.#likelihoods.shift();
      likelihood = 1.0 - filtered;
    }
    this.#append(value, rawScore);
    this.#iteration++;
    return likelihood;
  }

  /** estimateAnomalyLikelihoods over the window. */
  #estimate(): void {
    const p = this.params;
    const n = this.#size;
    const cap = p.historicWindowSize;
    const shiftedOut = Math.max(0, this.#iteration - cap);
    const skip = Math.min(this.#iteration, Math.max(0, p.learningPeriod - shiftedOut));
    // The moving averages of the whole window, recomputed from scratch as the reference does.
    const averages = new Float64Array(n);
    const values = new Float64Array(n);
    const window: number[] = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const at = (this.#start + i) % cap;
      if (window.length === p.averagingWindow) total -= window.shift()!;
      window.push(this.#scores[at]!);
      total += this.#scores[at]!;
      averages[i] = total / window.length;
      values[i] = this.#values[at]!;
    }
    let distribution: Distribution;
    if (n <= skip) distribution = NULL_DISTRIBUTION;
    else {
      const s = meanVar(averages, skip, n - skip);
      const mean = s.mean < 0.03 ? 0.03 : s.mean;
      const variance = s.variance < 0.0003 ? 0.0003 : s.variance;
      distribution = { mean, variance, stdev: Math.sqrt(variance) };
      if (meanVar(values, skip, n - skip).variance < 1.5e-5) distribution = NULL_DISTRIBUTION;
    }
    this.#distribution = distribution;
    this.#averaged = window;
    this.#total = total;
    this.#likelihoods = [];
    for (let i = Math.max(0, n - p.averagingWindow); i < n; i++) this.#likelihoods.push(tailProbability(averages[i]!, distribution));
  }

  toJSON(): LikelihoodState {
    const values: number[] = [];
    const scores: number[] = [];
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#start + i) % this.params.historicWindowSize;
      values.push(this.#values[at]!);
      scores.push(this.#scores[at]!);
    }
    return {
      iteration: this.#iteration,
      values,
      scores,
      distribution: this.#distribution ? { ...this.#distribution } : null,
      averaged: [...this.#averaged],
      total: this.#total,
      likelihoods: [...this.#likelihoods],
    };
  }
}
