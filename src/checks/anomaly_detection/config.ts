/**
 * `checks.anomaly_detection`: which series to watch per subject (PromQL, or pushed observations),
 * how to learn them (a detector from `detectors/`), and when a score becomes `warn` or `fail`.
 * Without `series` the check gathers nothing and stays push-only: its results then arrive as
 * signals (Alertmanager, `POST /v1/signals`), as before it had a plugin.
 */
import { z } from "zod";
import { boundedDuration, duration as anyDuration } from "../../plugin/schema.ts";
import { templateProblem } from "../../plugin/template.ts";
import { prometheusConnectionSchema } from "../../sources/prometheus/schema.ts";
import { selectorSchema } from "../common/device.ts";
import { DEFAULT_DETECTOR, DEFAULT_WARMUP, DETECTORS, MAX_WARMUP, createDetector, type DetectorOptions } from "./detectors/detector.ts";
import { MEDIAN_MAD_DEFAULTS } from "./detectors/median-mad.ts";

/** Default `warn_at`: the starting threshold the detectors were tuned for (docs/checks.md). */
export const DEFAULT_WARN_AT = 0.6;
/** Default `fail_at`: "1 in 10^8" on the common score scale. */
export const DEFAULT_FAIL_AT = 0.8;
/**
 * `median_mad`'s rolling window in the live check, unless `params.window` says otherwise: half the
 * detector's own default (1,440), because the check keeps one detector per series in memory and
 * in the state store — about 60 KiB of memory per series instead of 90–150 (BENCHMARKS.md, section 11).
 */
export const LIVE_WINDOW = 720;
/** Series per check at most (all subjects together); more are dropped and counted. */
export const DEFAULT_MAX_SERIES = 100_000;

const SERIES_NAME = /^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$/;
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const score = () => z.number().gt(0, { error: "expected a score above 0" }).max(1, { error: "expected a score of at most 1" });
const duration = (min: number, fallback: string, message: string) => boundedDuration({ min, fallback, message });

/** Detector settings, at the check level (defaults for every series) or per series. */
const detectorShape = {
  /** Built-in detector (`median_mad`, `cad_ose`). Default `median_mad`. */
  detector: z.enum([...DETECTORS.keys()] as [string, ...string[]]).optional(),
  /** Detector parameters (see docs/checks.md); unknown ones are refused. `median_mad` gets `window: 720` unless given. */
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).optional(),
  /** Points scored 0 while the detector learns. Default: the detector's (750). */
  warmup: z.number().int().min(0).max(MAX_WARMUP).optional(),
  /** Wrap the detector in the anomaly likelihood. Default false. */
  likelihood: z.boolean().optional(),
  /** Score from which a point makes the series `warn`. */
  warn_at: score().optional(),
  /** Score from which a point makes the series `fail`. */
  fail_at: score().optional(),
};

const seriesSchema = z
  .strictObject({
    /** Names the series in reasons, evidence and pushed observations. Required, unique in the check. */
    name: z.string().regex(SERIES_NAME, { error: "expected a metric-like name (letters, digits, _ : . -)" }),
    /**
     * PromQL. With `{{id}}`, `{{labels.<key>}}` or `{{attributes.<path>}}` placeholders it is asked
     * once per subject; without, it is asked once for all subjects and `match` maps its series to them.
     */
    query: z.string().min(1).max(16_384).optional(),
    /**
     * For a query asked once for all subjects: result label → the subject value it must equal
     * (a template), e.g. `{namespace: "{{attributes.namespace}}", app: "{{labels.app}}"}`.
     */
    match: z.record(z.string().regex(LABEL_NAME, { error: "expected a Prometheus label name" }), z.string().min(1)).optional(),
    /** Fed by `POST /v1/observations` instead of a query. */
    push: z.literal(true).optional(),
    /** Subjects this series is watched for (`{id, kind, identity, labels}`). Default every subject the check runs for. */
    applies_to: selectorSchema.optional(),
    /** Known lowest value (e.g. 0 for a ratio); with `max`, no range is learned. */
    min: z.number().optional(),
    /** Known highest value (e.g. 1 for a ratio, 100 for a percentage). */
    max: z.number().optional(),
    ...detectorShape,
  })
  .superRefine((s, ctx) => {
    const add = (message: string, path: string[] = []) => ctx.addIssue({ code: "custom", message, path });
    if ((s.query === undefined) === (s.push === undefined)) add("give either query (Prometheus) or push: true (POST /v1/observations)");
    if (s.query !== undefined) {
      const problem = templateProblem(s.query);
      if (problem !== undefined) add(problem, ["query"]);
      const templated = s.query.includes("{{");
      if (templated && s.match !== undefined) add("a query with subject placeholders is asked per subject and takes no match; drop the placeholders to ask once for all subjects", ["match"]);
      if (!templated && s.match === undefined) add("a query without {{…}} placeholders is asked once for all subjects: say with match which result labels name the subject", ["match"]);
    }
    if (s.push !== undefined && s.match !== undefined) add("match maps the series of a query; pushed observations name their subject", ["match"]);
    for (const [label, template] of Object.entries(s.match ?? {})) {
      const problem = templateProblem(template);
      if (problem !== undefined) add(problem, ["match", label]);
    }
    if ((s.min === undefined) !== (s.max === undefined)) add("give both min and max, or neither");
    if (s.min !== undefined && s.max !== undefined && !(s.min < s.max)) add("min must be below max", ["max"]);
  });

export const anomalyConfigSchema = z
  .strictObject({
    ...detectorShape,
    /** Where query series are read. Required when a series has a query. */
    prometheus: prometheusConnectionSchema.optional(),
    /** Spacing of the points fed to the detectors; queries are evaluated on this grid. Default `1m`. */
    step: duration(1_000, "1m", 'expected a duration of at least 1s, like "1m"'),
    /**
     * History read with `query_range` when a series is first seen (and after a gap), so the detector
     * starts warm. Default: long enough for the warm-up and window at `step`, and at least one day
     * (a week with weekly seasonality) while seasonality is on.
     */
    lookback: anyDuration().optional(),
    /** Points of history asked for in one range query (series × steps); longer ranges are split. Default 100,000 (about 2 MiB of answer). */
    max_points_per_query: z.number().int().min(1_000).max(10_000_000).default(100_000),
    /** What a subject none of whose series has a recent point is: `pass` (no data is no anomaly) or `unknown`. Default `pass`. */
    no_data: z.enum(["pass", "unknown"]).default("pass"),
    /** Series one subject may have (a query answering one series per pod, say); more are dropped and counted. Default 20. */
    max_series_per_subject: z.number().int().min(1).max(10_000).default(20),
    /** Series the check keeps at most, all subjects together. Default 100,000. */
    max_series: z.number().int().min(1).max(10_000_000).default(DEFAULT_MAX_SERIES),
    /** Learned state in the state store. */
    state: z
      .strictObject({
        /** A series' state is written at most this often (and at a clean stop, and at once after an anomaly). Default `30m`. */
        save_every: duration(1_000, "30m", 'expected a duration of at least 1s, like "30m"'),
        /** State of a series not written for this long is removed. Default `7d`. */
        keep: duration(60_000, "7d", 'expected a duration of at least 1m, like "7d"'),
      })
      .prefault({}),
    /** The series to watch. Without any, the check is push-only (results arrive as signals). */
    series: z.array(seriesSchema).min(1).max(64).optional(),
  })
  .superRefine((c, ctx) => {
    const add = (message: string, path: (string | number)[] = []) => ctx.addIssue({ code: "custom", message, path });
    const names = new Set<string>();
    (c.series ?? []).forEach((s, i) => {
      if (names.has(s.name)) add(`series "${s.name}" is named twice`, ["series", i, "name"]);
      names.add(s.name);
      const warn = s.warn_at ?? c.warn_at ?? DEFAULT_WARN_AT;
      const fail = s.fail_at ?? c.fail_at ?? DEFAULT_FAIL_AT;
      if (!(warn <= fail)) add(`warn_at (${warn}) must not be above fail_at (${fail})`, ["series", i]);
      try {
        createDetector(detectorOptions(c, s));
      } catch (err) {
        add((err as Error).message, ["series", i]);
      }
    });
    const queries = (c.series ?? []).some((s) => s.query !== undefined);
    if (queries && c.prometheus === undefined) add("series with a query need prometheus: {url: …}", ["prometheus"]);
    if (!queries && c.prometheus !== undefined) add("prometheus is set but no series has a query", ["prometheus"]);
    if ((c.warn_at ?? DEFAULT_WARN_AT) > (c.fail_at ?? DEFAULT_FAIL_AT)) add("warn_at must not be above fail_at", ["warn_at"]);
  });

export type AnomalyConfig = z.output<typeof anomalyConfigSchema>;
export type SeriesConfig = NonNullable<AnomalyConfig["series"]>[number];

/** The detector options of a series: its own settings, else the check's, else the live defaults. */
export function detectorOptions(check: Pick<AnomalyConfig, "detector" | "params" | "warmup" | "likelihood">, s: SeriesConfig): DetectorOptions {
  const detector = s.detector ?? check.detector ?? DEFAULT_DETECTOR;
  const params = { ...(s.detector === undefined || s.detector === check.detector ? check.params : {}), ...s.params };
  if (detector === "median_mad" && params.window === undefined) params.window = LIVE_WINDOW;
  const warmup = s.warmup ?? check.warmup;
  const likelihood = s.likelihood ?? check.likelihood;
  return {
    detector,
    params,
    ...(warmup === undefined ? {} : { warmup }),
    ...(likelihood === undefined ? {} : { likelihood }),
    ...(s.min !== undefined && s.max !== undefined ? { min: s.min, max: s.max } : {}),
  };
}

/** The lookback of a check: as configured, else enough for the warm-up, the window and a seasonal period. */
export function lookbackOf(c: AnomalyConfig, s: SeriesConfig): number {
  if (c.lookback !== undefined) return c.lookback;
  const o = detectorOptions(c, s);
  const window = typeof o.params?.window === "number" ? o.params.window : MEDIAN_MAD_DEFAULTS.window;
  const seasonality = typeof o.params?.seasonality === "string" ? o.params.seasonality : MEDIAN_MAD_DEFAULTS.seasonality;
  const period = o.detector !== "median_mad" || seasonality === "none" ? 0 : seasonality === "weekly" ? 7 * 86_400_000 : 86_400_000;
  return Math.max(period, ((o.warmup ?? DEFAULT_WARMUP) + window) * c.step);
}

/** warn and fail thresholds of a series. */
export function thresholdsOf(c: AnomalyConfig, s: SeriesConfig): { warn: number; fail: number } {
  return { warn: s.warn_at ?? c.warn_at ?? DEFAULT_WARN_AT, fail: s.fail_at ?? c.fail_at ?? DEFAULT_FAIL_AT };
}
