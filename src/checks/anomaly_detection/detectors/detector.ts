/**
 * The detector interface and the pipeline every built-in detector runs in:
 *
 *   point → skip non-finite / out-of-order (counted) → warm-up (learn the range when none is
 *   given; scores 0) → model (raw score) → optional anomaly likelihood → score in [0, 1]
 *
 * A detector is fed `(timestamp, value)` points in time order and answers each with a score, or
 * `null` for a point it skipped. `toJSON()` returns its whole learned state as plain JSON;
 * `restoreDetector()` rebuilds it, and the restored detector scores the following points exactly
 * as the original would have. Memory is bounded by the options, never by the series length
 * (each model says how).
 */
import { VigilError } from "../../../errors.ts";
import { CadOse, CAD_OSE_DEFAULTS, type CadOseParams, type CadOseState } from "./cad-ose.ts";
import { MedianMad, MEDIAN_MAD_DEFAULTS, defaultBins, type Band, type MedianMadParams, type MedianMadState, type Seasonality } from "./median-mad.ts";

export type { Band } from "./median-mad.ts";
import { AnomalyLikelihood, LIKELIHOOD_DEFAULTS, logLikelihood, type LikelihoodState } from "./likelihood.ts";
import { scoreFromTail } from "./numeric.ts";

/** Warm-up when neither a count nor the series length is known: NAB's cap (15 % of 5,000). */
export const DEFAULT_WARMUP = 750;
/** Share of a series of known length used as warm-up (NAB's probationary period). */
export const WARMUP_SHARE = 0.15;
/** Warm-up points are buffered while the range is learned; more than this is refused. */
export const MAX_WARMUP = 100_000;

/** How to build a detector. Everything is optional except the name. */
export interface DetectorOptions {
  /** A built-in detector name (see `DETECTORS`). */
  readonly detector: string;
  /** Known lowest value (e.g. 0 for a percentage). With `max`, no range is learned. */
  readonly min?: number;
  /** Known highest value (e.g. 100 for a percentage). */
  readonly max?: number;
  /**
   * Points of warm-up: scores are 0 and, without `min`/`max`, the range is learned from them.
   * Default: 15 % of `expectedLength` capped at 750 when that is given, else 750.
   */
  readonly warmup?: number;
  /** Length of the series when known in advance (a file), for the default warm-up. */
  readonly expectedLength?: number;
  /** Wrap the model in the anomaly likelihood. Default: the detector's own choice. */
  readonly likelihood?: boolean;
  /** Model parameters (see each model's defaults); unknown keys are refused. */
  readonly params?: Readonly<Record<string, unknown>>;
}

/** Counters of what a detector did. */
export interface DetectorCounts {
  /** Points scored (or used for warm-up). */
  seen: number;
  /** Points skipped for a NaN, infinite or missing value or timestamp. */
  nonFinite: number;
  /** Points skipped because their timestamp was not after the previous point's (re-sent or out of order). */
  outOfOrder: number;
}

export interface Detector {
  readonly name: string;
  /** The score in [0, 1] of the point, or null when it was skipped (see `counts`). Timestamps are epoch ms. */
  update(timestamp: number, value: number): number | null;
  /** True while warming up (scores are 0). */
  readonly warmingUp: boolean;
  readonly counts: Readonly<DetectorCounts>;
  /** The value range the model works over, once known (range-based models only). */
  readonly range: { min: number; max: number } | undefined;
  /**
   * What the model expects at time t as it stands now (after the points fed so far), for reasons
   * such as "expected 12 ± 3". Undefined for models that keep no such baseline (CAD OSE) and
   * before there is one.
   */
  expected(t: number): Band | undefined;
  toJSON(): DetectorState;
}

/** A model inside the pipeline: raw score per point, JSON state. */
interface Model {
  step(t: number, v: number): number;
  expected?(t: number): Band | undefined;
  toJSON(): unknown;
}

interface ModelKind {
  readonly name: string;
  readonly summary: string;
  /** Needs a value range before its first point. */
  readonly needsRange: boolean;
  /** Wrapped in the anomaly likelihood unless told otherwise. */
  readonly likelihoodByDefault: boolean;
  /** Parameters with defaults filled in; throws on unknown or bad ones. */
  resolve(given: Readonly<Record<string, unknown>>, warmup: number): Record<string, unknown>;
  create(params: Record<string, unknown>, range: { min: number; max: number } | undefined, state?: unknown): Model;
}

function bad(message: string): never {
  throw new VigilError("VIGIL_ERR_CONFIG_INVALID", message);
}

function takeParams(kind: string, given: Readonly<Record<string, unknown>>, defaults: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(given)) {
    if (!(key in defaults)) bad(`${kind} has no parameter "${key}" (it has: ${Object.keys(defaults).join(", ")})`);
    if (typeof value !== typeof defaults[key]) bad(`${kind} parameter "${key}" must be a ${typeof defaults[key]}`);
    out[key] = value;
  }
  return out;
}

function positiveInt(kind: string, params: Record<string, unknown>, ...keys: string[]): void {
  for (const k of keys) {
    const v = params[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) bad(`${kind} parameter "${k}" must be a positive integer`);
  }
}

const medianMadKind: ModelKind = {
  name: "median_mad",
  summary: "rolling median and MAD (robust z-score), level and stuck-value tests; optional daily/weekly seasonality",
  needsRange: false,
  likelihoodByDefault: false,
  resolve(given) {
    const p = takeParams("median_mad", given, { ...MEDIAN_MAD_DEFAULTS, bins: 0 });
    if (!["auto", "none", "daily", "weekly"].includes(p.seasonality as string)) bad('median_mad parameter "seasonality" must be auto, none, daily or weekly');
    if (p.bins === 0) p.bins = defaultBins(p.seasonality as Seasonality);
    positiveInt("median_mad", p, "window", "shortWindow", "seasonMemory");
    if (p.seasonality !== "none") positiveInt("median_mad", p, "bins");
    return p;
  },
  create(params, _range, state) {
    const model = new MedianMad(params as unknown as MedianMadParams, state as MedianMadState | undefined);
    return { step: (t, v) => scoreFromTail(model.tail(t, v)), expected: (t) => model.expected(t), toJSON: () => model.toJSON() };
  },
};

const cadOseKind: ModelKind = {
  name: "cad_ose",
  summary: "Contextual Anomaly Detector, Open Source Edition (faithful port of NAB's context_ose)",
  needsRange: true,
  likelihoodByDefault: false,
  resolve(given, warmup) {
    // NAB passes restPeriod = probationaryPeriod / 5; the reference reads int() of it.
    const p = takeParams("cad_ose", given, { ...CAD_OSE_DEFAULTS, restPeriod: Math.max(1, Math.trunc(warmup / 5)) });
    positiveInt("cad_ose", p, "restPeriod", "maxLeftSemiContextsLength", "maxActiveNeurons", "numNormValueBits", "maxContexts");
    if ((p.numNormValueBits as number) > 20) bad('cad_ose parameter "numNormValueBits" must be at most 20');
    return p;
  },
  create(params, range, state) {
    const s = state as CadOseState | undefined;
    const model = new CadOse(params as unknown as CadOseParams, s?.min ?? range!.min, s?.max ?? range!.max, s);
    return { step: (_t, v) => model.step(v), toJSON: () => model.toJSON() };
  },
};

/** The built-in detectors: name → summary. */
export const DETECTORS: ReadonlyMap<string, ModelKind> = new Map([medianMadKind, cadOseKind].map((k) => [k.name, k]));

/** The detector `vigil anomaly score` and the check use when none is named. */
export const DEFAULT_DETECTOR = "median_mad";

/** The serialised detector: the resolved options, the counters, the model's and likelihood's state. */
export interface DetectorState {
  readonly version: 1;
  readonly detector: string;
  readonly params: Record<string, unknown>;
  readonly likelihood: boolean;
  readonly warmup: number;
  readonly range: { min: number; max: number } | null;
  readonly rangeGiven: boolean;
  readonly counts: DetectorCounts;
  readonly lastTimestamp: number | null;
  /** Warm-up points held while the range is learned: [t, v, t, v, …]. */
  readonly buffer: number[];
  readonly model: unknown;
  readonly likelihoodState: LikelihoodState | null;
}

/** The warm-up a detector uses for these options. */
export function resolveWarmup(options: Pick<DetectorOptions, "warmup" | "expectedLength">): number {
  if (options.warmup !== undefined) {
    if (!Number.isInteger(options.warmup) || options.warmup < 0 || options.warmup > MAX_WARMUP) bad(`warmup must be an integer from 0 to ${MAX_WARMUP}`);
    return options.warmup;
  }
  if (options.expectedLength !== undefined) return Math.min(Math.floor(WARMUP_SHARE * options.expectedLength), DEFAULT_WARMUP);
  return DEFAULT_WARMUP;
}

class PipelineDetector implements Detector {
  readonly name: string;
  readonly #kind: ModelKind;
  readonly #params: Record<string, unknown>;
  readonly #useLikelihood: boolean;
  readonly #warmup: number;
  readonly #rangeGiven: boolean;
  #range: { min: number; max: number } | undefined;
  #counts: DetectorCounts;
  #last: number | null;
  #buffer: number[];
  #model: Model | null;
  #likelihood: AnomalyLikelihood | null;

  constructor(kind: ModelKind, params: Record<string, unknown>, useLikelihood: boolean, warmup: number, range: { min: number; max: number } | undefined, rangeGiven: boolean, state?: DetectorState) {
    this.name = kind.name;
    this.#kind = kind;
    this.#params = params;
    this.#useLikelihood = useLikelihood;
    this.#warmup = warmup;
    this.#rangeGiven = rangeGiven;
    this.#range = range;
    this.#counts = state ? { ...state.counts } : { seen: 0, nonFinite: 0, outOfOrder: 0 };
    this.#last = state?.lastTimestamp ?? null;
    this.#buffer = state ? [...state.buffer] : [];
    this.#model = null;
    this.#likelihood = null;
    const ready = !kind.needsRange || range !== undefined;
    if (state ? state.model !== null : ready) {
      this.#model = kind.create(params, range, state?.model ?? undefined);
      if (useLikelihood) this.#likelihood = new AnomalyLikelihood(likelihoodParams(warmup), state?.likelihoodState ?? undefined);
    }
  }

  get warmingUp(): boolean {
    return this.#counts.seen <= this.#warmup;
  }

  get counts(): Readonly<DetectorCounts> {
    return this.#counts;
  }

  get range(): { min: number; max: number } | undefined {
    return this.#range;
  }

  expected(t: number): Band | undefined {
    return this.#model?.expected?.(t);
  }

  update(timestamp: number, value: number): number | null {
    if (!Number.isFinite(timestamp) || !Number.isFinite(value)) {
      this.#counts.nonFinite++;
      return null;
    }
    if (this.#last !== null && timestamp <= this.#last) {
      this.#counts.outOfOrder++;
      return null;
    }
    this.#last = timestamp;
    this.#counts.seen++;
    if (this.#model === null) {
      this.#buffer.push(timestamp, value);
      if (this.#buffer.length / 2 >= Math.max(1, this.#warmup)) this.#start();
      return 0;
    }
    const score = this.#score(timestamp, value);
    return this.#counts.seen <= this.#warmup ? 0 : score;
  }

  /** The warm-up is over: fix the range, build the model and replay the buffered points. */
  #start(): void {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 1; i < this.#buffer.length; i += 2) {
      const v = this.#buffer[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    this.#range = { min, max };
    this.#model = this.#kind.create(this.#params, this.#range);
    if (this.#useLikelihood) this.#likelihood = new AnomalyLikelihood(likelihoodParams(this.#warmup));
    for (let i = 0; i < this.#buffer.length; i += 2) this.#score(this.#buffer[i]!, this.#buffer[i + 1]!);
    this.#buffer = [];
  }

  #score(t: number, v: number): number {
    const raw = this.#model!.step(t, v);
    const s = this.#likelihood ? logLikelihood(this.#likelihood.probability(v, raw)) : raw;
    return s > 1 ? 1 : s > 0 ? s : 0;
  }

  toJSON(): DetectorState {
    return {
      version: 1,
      detector: this.name,
      params: { ...this.#params },
      likelihood: this.#useLikelihood,
      warmup: this.#warmup,
      range: this.#range ? { ...this.#range } : null,
      rangeGiven: this.#rangeGiven,
      counts: { ...this.#counts },
      lastTimestamp: this.#last,
      buffer: [...this.#buffer],
      model: this.#model ? this.#model.toJSON() : null,
      likelihoodState: this.#likelihood ? this.#likelihood.toJSON() : null,
    };
  }
}

/** NAB's numenta detector: half the probationary period to learn, the other half to estimate. */
function likelihoodParams(warmup: number) {
  const learningPeriod = Math.floor(warmup / 2);
  return { ...LIKELIHOOD_DEFAULTS, learningPeriod, estimationSamples: Math.max(1, warmup - learningPeriod) };
}

/** Builds a detector; throws VIGIL_ERR_CONFIG_INVALID for an unknown name or bad options. */
export function createDetector(options: DetectorOptions): Detector {
  const kind = DETECTORS.get(options.detector) ?? bad(`unknown detector "${options.detector}" (built in: ${[...DETECTORS.keys()].join(", ")})`);
  const warmup = resolveWarmup(options);
  const { min, max } = options;
  if ((min === undefined) !== (max === undefined)) bad("give both min and max, or neither");
  if (min !== undefined && max !== undefined && !(Number.isFinite(min) && Number.isFinite(max) && min <= max)) bad("min and max must be finite numbers with min ≤ max");
  const range = min !== undefined && max !== undefined ? { min, max } : undefined;
  const params = kind.resolve(options.params ?? {}, warmup);
  return new PipelineDetector(kind, params, options.likelihood ?? kind.likelihoodByDefault, warmup, range, range !== undefined);
}

/** Rebuilds a detector from `toJSON()` output; throws VIGIL_ERR_CONFIG_INVALID when the state does not fit. */
export function restoreDetector(state: DetectorState): Detector {
  if (state?.version !== 1) bad("detector state: unknown version");
  const kind = DETECTORS.get(state.detector) ?? bad(`detector state: unknown detector "${state.detector}"`);
  const params = kind.resolve(state.params, state.warmup);
  return new PipelineDetector(kind, params, state.likelihood, state.warmup, state.range ?? undefined, state.rangeGiven, state);
}
