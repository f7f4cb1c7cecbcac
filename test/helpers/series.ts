/**
 * Synthetic metric series with known anomalies, for the detector tests and for choosing detector
 * defaults. Seeded, so every run sees the same points. Points are 5 minutes apart from
 * 2026-01-05T00:00:00Z (a Monday); values look like a request rate: a level, optionally a daily
 * cycle, Gaussian noise.
 */

export const START = Date.parse("2026-01-05T00:00:00Z");
export const STEP_MS = 5 * 60_000;

export const ANOMALY_KINDS = ["spike", "dip", "level_shift", "variance_change", "trend_change", "seasonality_break", "flatline", "spike_after_gap"] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

export interface Series {
  readonly name: string;
  readonly t: number[];
  readonly v: number[];
  /** Index of the first anomalous point; undefined for a normal series. */
  readonly onset?: number;
  readonly kind?: AnomalyKind | "none";
}

/** Mulberry32: small, fast, good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(random: () => number): () => number {
  return () => {
    const u = 1 - random();
    const v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

export interface SeriesOptions {
  readonly length?: number;
  readonly seed?: number;
  /** Daily cycle amplitude relative to the level (0 = none). */
  readonly seasonal?: number;
  readonly level?: number;
  readonly noise?: number;
  /** Index of the anomaly; default 75 % of the length. */
  readonly onset?: number;
  /** AR(1) coefficient of the noise (0 = white noise); its stationary deviation stays `noise`. */
  readonly ar?: number;
}

/** A series with one anomaly of `kind` (or none) starting at `onset`. */
export function makeSeries(kind: AnomalyKind | "none", options: SeriesOptions = {}): Series {
  const n = options.length ?? 4000;
  const seed = options.seed ?? 1;
  const level = options.level ?? 100;
  const sigma = options.noise ?? 2;
  const amp = (options.seasonal ?? 0) * level;
  const onset = options.onset ?? Math.floor(n * 0.75);
  const g = gaussian(rng(seed * 7919 + ANOMALY_KINDS.indexOf(kind as AnomalyKind) + 1));
  const perDay = 86_400_000 / STEP_MS;
  const phi = options.ar ?? 0;
  let ar = 0;
  const t: number[] = [];
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    let ts = START + i * STEP_MS;
    const phase = (2 * Math.PI * (i % perDay)) / perDay;
    let seasonal = amp * Math.sin(phase);
    ar = phi * ar + Math.sqrt(1 - phi * phi) * g();
    let noise = sigma * ar;
    let x = level;
    const after = i >= onset;
    switch (kind) {
      case "spike":
        if (i === onset) x += 8 * sigma;
        break;
      case "dip":
        if (i === onset) x -= 8 * sigma;
        break;
      case "level_shift":
        if (after) x += 4 * sigma;
        break;
      case "variance_change":
        if (after) noise *= 4;
        break;
      case "trend_change":
        if (after) x += (i - onset) * sigma * 0.05;
        break;
      case "seasonality_break":
        // The daily cycle stops: the series stays at the level it would average.
        if (after) seasonal = 0;
        break;
      case "flatline":
        if (after) noise = 0;
        break;
      case "spike_after_gap":
        // A two-hour gap (no points), NaN readings around it, then a spike right after.
        if (i >= onset - 30 && i < onset - 6) {
          ts = NaN;
        }
        if (i === onset - 5 || i === onset - 40) noise = NaN;
        if (i === onset) x += 8 * sigma;
        break;
      case "none":
        break;
    }
    if (Number.isNaN(ts)) continue;
    t.push(ts);
    v.push(x + seasonal + noise);
  }
  // With a gap, the onset index moves back by the dropped points.
  const dropped = kind === "spike_after_gap" ? 24 : 0;
  return { name: `${kind}#${seed}${amp ? "~" : ""}${phi ? "ar" : ""}`, t, v, kind, ...(kind === "none" ? {} : { onset: onset - dropped }) };
}
