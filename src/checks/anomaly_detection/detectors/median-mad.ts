/**
 * The robust baseline: how far a point is from the rolling median, in units of the rolling median
 * absolute deviation, optionally after removing a daily or weekly pattern. Four pieces of
 * evidence, each a tail probability; the score is the strongest (see numeric.ts scoreFromTail):
 *
 * - point: |x − median| / (1.4826·MAD) under a normal tail; once the window already holds values
 *   at least that far out, the empirical share of them bounds the probability from below, so
 *   heavy tails and discrete values the series has shown before do not alarm again and again;
 * - level: the median of the last `shortWindow` points minus the window median, against the same
 *   difference over the window (its median and MAD, never less than the standard error of a
 *   median of independent points, a Laplace tail, the same empirical bound) — a shift or a drift
 *   too small for any single point to stand out; measuring it against its own history rather than
 *   a standard error keeps autocorrelated series (most real metrics) quiet;
 * - flat: a run of identical values longer than any in the window, against the share of that
 *   value in the window (its chance of repeating under independence) — a metric that got stuck;
 * - seasonal (optional): the above work on residuals from the median of recent values at the same
 *   time of day or week (`bins` phase bins, the last `seasonMemory` values each).
 *
 * Memory: two windows of `window` doubles (each a ring and a sorted copy), the short window, a
 * sliding maximum of at most `window` entries, a sorted ring of `window` raw values and, with seasonality,
 * `bins × seasonMemory` doubles — bounded whatever the series length.
 */
import { SortedWindow, type WindowSums } from "./sorted-window.ts";
import { SlidingMax, type SlidingMaxState } from "./sliding-max.ts";
import { erfc } from "./numeric.ts";

export type Seasonality = "auto" | "none" | "daily" | "weekly";

/** Baseline parameters. */
export interface MedianMadParams {
  /** Points in the rolling window for the median and MAD. Default 1440. */
  readonly window: number;
  /** Points in the short window of the level test. Default 8. */
  readonly shortWindow: number;
  /**
   * Remove a daily or weekly pattern first. Default "auto": no pattern until the daily model has
   * half a window of residuals (a day and more of data), then daily — so short series are scored
   * from the start and long ones with their daily cycle removed.
   */
  readonly seasonality: Seasonality;
  /** Phase bins per period. Default 96 (15 min) for daily, 168 (1 h) for weekly. */
  readonly bins: number;
  /** Recent values kept per phase bin. Default 16. */
  readonly seasonMemory: number;
}

export const MEDIAN_MAD_DEFAULTS: Omit<MedianMadParams, "bins"> = {
  window: 1440,
  shortWindow: 8,
  seasonality: "auto",
  seasonMemory: 16,
};

export function defaultBins(seasonality: Seasonality): number {
  return seasonality === "weekly" ? 168 : seasonality === "none" ? 0 : 96;
}

const PERIOD_MS: Record<Seasonality, number> = { auto: 86_400_000, none: 0, daily: 86_400_000, weekly: 7 * 86_400_000 };
/** Fewer points than this in the window give no score. */
const MIN_POINTS = 10;
const SQRT1_2 = Math.SQRT1_2;

interface BaselineState {
  window: number[];
  short: number[];
  levels: number[];
  runMax: SlidingMaxState;
  raw: number[];
  last: number | null;
  run: number;
  bins: number[][];
  /** Running sums of `window` and `levels` (absent in state written before they were kept: recomputed). */
  sums?: { window: WindowSums; levels: WindowSums };
}

/**
 * Two-sided tail probability of x against a window with median m: normal with σ = 1.4826·MAD,
 * bounded below by the share of the window at least as far from m, once there is any.
 */
/** Median of `values` (plus `extra` when given), sorted by insertion into `scratch`: no garbage. */
function medianOf(values: readonly number[], scratch: Float64Array, extra?: number): number {
  const count = values.length + (extra === undefined ? 0 : 1);
  for (let n = 0; n < count; n++) {
    const x = n < values.length ? values[n]! : extra!;
    let i = n;
    while (i > 0 && scratch[i - 1]! > x) {
      scratch[i] = scratch[i - 1]!;
      i--;
    }
    scratch[i] = x;
  }
  const n = count;
  return n % 2 === 1 ? scratch[(n - 1) >> 1]! : (scratch[n / 2 - 1]! + scratch[n / 2]!) / 2;
}

/**
 * `bins` rings of at most `memory` values each, in one typed array: a JS array per bin costs
 * several times the memory, which matters at thousands of series.
 */
class BinRings {
  readonly #memory: number;
  readonly #values: Float64Array;
  readonly #start: Uint32Array;
  readonly #count: Uint32Array;

  constructor(bins: number, memory: number, state?: readonly (readonly number[])[]) {
    this.#memory = memory;
    this.#values = new Float64Array(bins * memory);
    this.#start = new Uint32Array(bins);
    this.#count = new Uint32Array(bins);
    for (let b = 0; b < bins; b++) for (const x of state?.[b] ?? []) this.push(b, x);
  }

  count(b: number): number {
    return this.#count[b]!;
  }

  /** Adds x to bin b, dropping its oldest value when full. */
  push(b: number, x: number): void {
    const m = this.#memory;
    const n = this.#count[b]!;
    const start = this.#start[b]!;
    if (n < m) {
      this.#values[b * m + ((start + n) % m)] = x;
      this.#count[b] = n + 1;
    } else {
      this.#values[b * m + start] = x;
      this.#start[b] = (start + 1) % m;
    }
  }

  /** Median of bin b (non-empty), sorted by insertion into `scratch`, oldest first as an array would be. */
  median(b: number, scratch: Float64Array): number {
    const m = this.#memory;
    const n = this.#count[b]!;
    const start = this.#start[b]!;
    for (let k = 0; k < n; k++) {
      const x = this.#values[b * m + ((start + k) % m)]!;
      let i = k;
      while (i > 0 && scratch[i - 1]! > x) {
        scratch[i] = scratch[i - 1]!;
        i--;
      }
      scratch[i] = x;
    }
    return n % 2 === 1 ? scratch[(n - 1) >> 1]! : (scratch[n / 2 - 1]! + scratch[n / 2]!) / 2;
  }

  /** Each bin's values, oldest first. */
  toJSON(): number[][] {
    const m = this.#memory;
    return Array.from(this.#count, (n, b) => Array.from({ length: n }, (_, k) => this.#values[b * m + ((this.#start[b]! + k) % m)]!));
  }
}

function robustTail(w: SortedWindow, m: number, x: number, laplace = false, floor = 0): number {
  let sigma = Math.max(1.4826 * w.mad(m), floor);
  if (!(sigma > 0)) sigma = 1.2533 * w.meanAbsDeviation(m);
  if (!(sigma > 0)) sigma = Math.max(Math.abs(m) * 1e-9, Number.MIN_VALUE);
  const d = Math.abs(x - m);
  let p = laplace ? Math.exp(-Math.SQRT2 * (d / sigma)) : erfc((d / sigma) * SQRT1_2);
  const beyond = w.countBeyond(m, d);
  if (beyond > 0) p = Math.max(p, (beyond + 1) / (w.size + 1));
  return p;
}

/** One baseline with a fixed seasonality ("auto" combines two of these, see MedianMad). */
class Baseline {
  readonly params: MedianMadParams;
  readonly #window: SortedWindow;
  #short: number[] = [];
  /** Past differences between the short and the window median. */
  readonly #levels: SortedWindow;
  readonly #runMax: SlidingMax;
  /**
   * The last `window` raw values, sorted as well, so how often a value occurs among them is two
   * binary searches: a Map of counts costs several times the memory, which matters at thousands of
   * series.
   */
  readonly #raw: SortedWindow;
  #last: number | null = null;
  #run = 0;
  readonly #bins: BinRings | undefined;
  readonly #scratch: Float64Array;

  constructor(params: MedianMadParams, state?: BaselineState) {
    this.params = params;
    this.#window = new SortedWindow(params.window);
    this.#levels = new SortedWindow(params.window);
    this.#runMax = new SlidingMax(params.window, state?.runMax);
    this.#raw = new SortedWindow(params.window);
    this.#scratch = new Float64Array(Math.max(params.shortWindow, params.seasonMemory) + 1);
    this.#bins = params.seasonality === "none" ? undefined : new BinRings(params.bins, params.seasonMemory, state?.bins);
    if (state) {
      for (const v of state.window) this.#window.push(v);
      for (const v of state.levels) this.#levels.push(v);
      this.#short = [...state.short];
      for (const v of state.raw) this.#raw.push(v);
      if (state.sums) {
        this.#window.restoreSums(state.sums.window);
        this.#levels.restoreSums(state.sums.levels);
      }
      this.#last = state.last;
      this.#run = state.run;
    }
  }

  /** The tail probability of the point (the smallest of the tests), then learns it. */
  tail(t: number, x: number): number {
    const p = Math.min(this.#flat(x), this.#residualTail(this.#residual(t, x)));
    return p;
  }

  #flat(x: number): number {
    const prev = this.#last;
    this.#run = x === prev ? this.#run + 1 : 0;
    let p = 1;
    const raw = this.#raw;
    if (this.#run > 0 && raw.size >= MIN_POINTS && this.#run > this.#runMax.max()) {
      // Under independence a repeat of x has the chance of x itself: its share of the window.
      const q = (raw.countEqual(x) + 1) / (raw.size + 2);
      p = q ** this.#run;
    }
    this.#runMax.push(this.#run);
    raw.push(x);
    this.#last = x;
    return p;
  }

  /** x minus the median of recent values at the same phase; NaN while that phase has none. */
  #residual(t: number, x: number): number {
    if (this.params.seasonality === "none") return x;
    const period = PERIOD_MS[this.params.seasonality];
    const phase = ((t % period) + period) % period;
    const bins = this.#bins!;
    const bin = Math.min(this.params.bins - 1, Math.floor((phase / period) * this.params.bins));
    let expected = NaN;
    if (bins.count(bin) > 0) expected = bins.median(bin, this.#scratch);
    bins.push(bin, x);
    return x - expected;
  }

  #residualTail(r: number): number {
    if (Number.isNaN(r)) return 1;
    const w = this.#window;
    let p = 1;
    if (w.size >= MIN_POINTS) {
      const m = w.median();
      const pPoint = robustTail(w, m, r);
      // Level test on the short median, including this point.
      const k = this.params.shortWindow;
      // The short window is kept at k − 1 past points; this point completes it.
      let pLevel = 1;
      if (this.#short.length === k - 1) {
        const level = medianOf(this.#short, this.#scratch, r) - m;
        // Never narrower than the standard error of a median of k independent points: on
        // discrete or sparse series the level barely moves and its MAD collapses to 0.
        const floor = (1.2533 * w.std()) / Math.sqrt(k);
        if (this.#levels.size >= MIN_POINTS) pLevel = robustTail(this.#levels, this.#levels.median(), level, true, floor);
        this.#levels.push(level);
      }
      p = Math.min(pPoint, pLevel);
    }
    w.push(r);
    this.#short.push(r);
    if (this.#short.length >= this.params.shortWindow) this.#short.shift();
    return p;
  }

  /**
   * What the baseline expects at time t, as it stands now: the seasonal median of t's phase bin
   * (with seasonality) plus the median of the residual window, and 1.4826·MAD of that window (the
   * robust σ the point test measures distances in). Undefined before there is a baseline.
   */
  expected(t: number): Band | undefined {
    const w = this.#window;
    if (w.size < MIN_POINTS) return undefined;
    const m = w.median();
    let spread = 1.4826 * w.mad(m);
    if (!(spread > 0)) spread = 1.2533 * w.meanAbsDeviation(m);
    let seasonal = 0;
    if (this.params.seasonality !== "none") {
      const period = PERIOD_MS[this.params.seasonality];
      const phase = ((t % period) + period) % period;
      const bin = Math.min(this.params.bins - 1, Math.floor((phase / period) * this.params.bins));
      if (this.#bins!.count(bin) === 0) return undefined;
      seasonal = this.#bins!.median(bin, this.#scratch);
    }
    return { center: seasonal + m, spread };
  }

  /** Residuals scored so far, up to the window size. */
  get residuals(): number {
    return this.#window.size;
  }

  toJSON(): BaselineState {
    return {
      window: this.#window.values(),
      short: [...this.#short],
      levels: this.#levels.values(),
      runMax: this.#runMax.toJSON(),
      raw: this.#raw.values(),
      last: this.#last,
      run: this.#run,
      bins: this.#bins?.toJSON() ?? [],
      sums: { window: this.#window.sums(), levels: this.#levels.sums() },
    };
  }
}

/** A value a model expects and the typical distance from it (both in the series' units). */
export interface Band {
  readonly center: number;
  readonly spread: number;
}

export interface MedianMadState {
  /** The baseline without seasonality; dropped once "auto" has switched to daily. */
  plain: BaselineState | null;
  /** The seasonal baseline (daily for "auto"). */
  seasonal: BaselineState | null;
}

/** The robust baseline, with "auto" seasonality resolved into one or two fixed baselines. */
export class MedianMad {
  readonly params: MedianMadParams;
  #plain: Baseline | null;
  #seasonal: Baseline | null;

  constructor(params: MedianMadParams, state?: MedianMadState) {
    this.params = params;
    const s = params.seasonality;
    const seasonalParams = { ...params, seasonality: s === "auto" ? ("daily" as const) : s };
    const plainParams = { ...params, seasonality: "none" as const };
    if (state) {
      this.#plain = state.plain ? new Baseline(plainParams, state.plain) : null;
      this.#seasonal = state.seasonal ? new Baseline(seasonalParams, state.seasonal) : null;
    } else {
      this.#plain = s === "none" || s === "auto" ? new Baseline(plainParams) : null;
      this.#seasonal = s === "none" ? null : new Baseline(seasonalParams);
    }
  }

  /** The tail probability of the point, then learns it. */
  tail(t: number, x: number): number {
    const seasonal = this.#seasonal?.tail(t, x) ?? 1;
    if (this.#plain === null) return seasonal;
    const plain = this.#plain.tail(t, x);
    if (this.#seasonal === null) return plain;
    if (this.#seasonal.residuals * 2 >= this.params.window) {
      this.#plain = null;
      return seasonal;
    }
    return plain;
  }

  /** What the baseline that scores now expects at time t (see Baseline.expected). */
  expected(t: number): Band | undefined {
    return (this.#plain ?? this.#seasonal)?.expected(t);
  }

  toJSON(): MedianMadState {
    return { plain: this.#plain?.toJSON() ?? null, seasonal: this.#seasonal?.toJSON() ?? null };
  }
}
