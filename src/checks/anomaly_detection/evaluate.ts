/**
 * The pure half of anomaly_detection: what a subject's series say, as a check status with reasons.
 *
 * A series is `fail` while a point it scored at or above `fail_at` is younger than the check's ttl,
 * else `warn` while one at or above `warn_at` is: one spike stands for the ttl and then lapses, so
 * it never denies for ever. The subject takes the worst of its series. A series whose source could
 * not be read makes the subject `unknown` (its `on_unknown` decides); a subject without a recent
 * point in any series is `pass` or `unknown` as `no_data` says.
 */
import type { CheckStatus, Reason } from "../../policy/model.ts";

/**
 * How statuses combine across a subject's series: a standing `fail` is reported whatever else is
 * unknown (it is known), and an unreadable series outweighs a `warn` (it may hide a `fail`).
 */
const STATUS_RANK: Readonly<Record<CheckStatus, number>> = { pass: 0, warn: 1, unknown: 2, fail: 3 };

export const ANOMALY_REASONS = {
  /** A point scored at or above `fail_at` within the ttl. */
  DETECTED: "ANOMALY_DETECTED",
  /** A point scored at or above `warn_at` (below `fail_at`) within the ttl. */
  SUSPECTED: "ANOMALY_SUSPECTED",
  /** No series of the subject has a point younger than the ttl (with `no_data: unknown`). */
  NO_DATA: "ANOMALY_NO_DATA",
  /** Prometheus could not be read (down, slow, an error, a malformed answer). */
  SOURCE_UNAVAILABLE: "ANOMALY_SOURCE_UNAVAILABLE",
  /** A series' query or match needs a subject field the subject does not have (or one PromQL cannot hold safely). */
  SUBJECT_FIELD_MISSING: "ANOMALY_SUBJECT_FIELD_MISSING",
} as const;

/** One scored point worth remembering. Times are epoch ms. */
export interface ScoredPoint {
  readonly t: number;
  readonly v: number;
  readonly score: number;
  /** What the detector expected then (median_mad): centre and robust σ. */
  readonly center?: number;
  readonly spread?: number;
}

/** What the check knows about one series of a subject. */
export interface SeriesView {
  /** The series as reasons name it, e.g. `error_rate` or `error_rate{pod="web-1"}`. */
  readonly series: string;
  readonly warnAt: number;
  readonly failAt: number;
  readonly last?: ScoredPoint;
  /** The latest point that scored at or above the fail threshold of the time. */
  readonly fail?: ScoredPoint;
  /** The latest point that scored at or above the warn threshold of the time. */
  readonly warn?: ScoredPoint;
  readonly warmingUp: boolean;
  readonly range?: { readonly min: number; readonly max: number };
}

export interface SubjectInput {
  readonly series: readonly SeriesView[];
  /** Series definitions whose source failed for this subject: name → message. */
  readonly errors: readonly { readonly series: string; readonly message: string }[];
  /** Series definitions that cannot be asked for this subject: name → why. */
  readonly unrenderable: readonly { readonly series: string; readonly message: string }[];
}

export interface Verdict {
  readonly status: CheckStatus;
  readonly reasons: Reason[];
  readonly evidence: Record<string, unknown>;
  /** When the first standing anomaly lapses: the subject should be looked at again then. */
  readonly lapses_at?: number;
}

/** Evidence lists at most this many series. */
const MAX_EVIDENCE_SERIES = 20;

/** The status a point's score gives under the series' thresholds. */
export function statusOfScore(score: number, warnAt: number, failAt: number): CheckStatus {
  return score >= failAt ? "fail" : score >= warnAt ? "warn" : "pass";
}

/** The anomaly still standing on a series at `now`, if any, and the status it gives. */
function standing(s: SeriesView, ttl: number, now: number): { point: ScoredPoint; status: "warn" | "fail" } | undefined {
  const current = (p: ScoredPoint | undefined) => p !== undefined && p.t + ttl > now;
  if (current(s.fail) && s.fail!.score >= s.failAt) return { point: s.fail!, status: "fail" };
  if (current(s.warn)) {
    const status = statusOfScore(s.warn!.score, s.warnAt, s.failAt);
    if (status === "warn" || status === "fail") return { point: s.warn!, status };
  }
  return undefined;
}

export function evaluateSubject(input: SubjectInput, options: { now: number; ttl: number; noData: "pass" | "unknown" }): Verdict {
  const { now, ttl } = options;
  const reasons: Reason[] = [];
  const evidence: Record<string, unknown>[] = [];
  let status: CheckStatus = "pass";
  let lapses: number | undefined;
  let fresh = 0;
  const worsen = (s: CheckStatus) => {
    if (STATUS_RANK[s] > STATUS_RANK[status]) status = s;
  };
  const ranked = [...input.series].map((s) => ({ s, a: standing(s, ttl, now) })).sort((x, y) => rank(y.a) - rank(x.a) || (y.a?.point.score ?? 0) - (x.a?.point.score ?? 0));
  for (const { s, a } of ranked) {
    if (s.last !== undefined && s.last.t + ttl > now) fresh++;
    if (a) {
      worsen(a.status);
      const until = a.point.t + ttl;
      if (lapses === undefined || until < lapses) lapses = until;
      reasons.push({ code: a.status === "fail" ? ANOMALY_REASONS.DETECTED : ANOMALY_REASONS.SUSPECTED, message: describe(s, a.point, a.status, until) });
    }
    if (evidence.length < MAX_EVIDENCE_SERIES) {
      evidence.push({
        series: s.series,
        ...(s.last ? { value: s.last.v, at: iso(s.last.t), score: round(s.last.score) } : {}),
        ...(s.last?.center !== undefined ? { expected: round(s.last.center), spread: round(s.last.spread ?? 0) } : {}),
        ...(a ? { anomaly: { status: a.status, value: a.point.v, at: iso(a.point.t), score: round(a.point.score), until: iso(a.point.t + ttl) } } : {}),
        ...(s.warmingUp ? { warming_up: true } : {}),
      });
    }
  }
  for (const e of input.errors) {
    worsen("unknown");
    reasons.push({ code: ANOMALY_REASONS.SOURCE_UNAVAILABLE, message: `${e.series}: ${e.message}` });
  }
  for (const u of input.unrenderable) {
    worsen("unknown");
    reasons.push({ code: ANOMALY_REASONS.SUBJECT_FIELD_MISSING, message: `${u.series}: ${u.message}` });
  }
  if (status === "pass" && fresh === 0 && options.noData === "unknown") {
    status = "unknown";
    reasons.push({ code: ANOMALY_REASONS.NO_DATA, message: input.series.length === 0 ? "no series has any point for this subject" : `no series has had a point in the last ${Math.round(ttl / 1000)} s` });
  }
  return {
    status,
    reasons,
    evidence: { series: evidence, ...(input.series.length > evidence.length ? { series_total: input.series.length } : {}) },
    ...(lapses !== undefined ? { lapses_at: lapses } : {}),
  };
}

function rank(a: { status: "warn" | "fail" } | undefined): number {
  return a === undefined ? 0 : a.status === "fail" ? 2 : 1;
}

function describe(s: SeriesView, p: ScoredPoint, status: "warn" | "fail", until: number): string {
  const expected =
    p.center !== undefined
      ? `expected ${fmt(p.center)} ± ${fmt(p.spread ?? 0)} (rolling median ± robust σ)`
      : s.range !== undefined
        ? `in the context learned over [${fmt(s.range.min)}, ${fmt(s.range.max)}]`
        : "against what the series learned";
  const threshold = status === "fail" ? `fail_at ${s.failAt}` : `warn_at ${s.warnAt}`;
  return `${s.series} = ${fmt(p.v)} at ${iso(p.t)}, ${expected}: score ${round(p.score)} ≥ ${threshold}; stands until ${iso(until)}`;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e7) ? x.toExponential(3) : String(Number(x.toPrecision(4)));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
