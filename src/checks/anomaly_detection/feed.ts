/**
 * One PromQL expression feeding the detectors of the series it answers, on a grid of `step`.
 *
 * At each grid instant T the expression is asked once (`/api/v1/query` at T; concurrent callers
 * for the same T share the answer). A series seen for the first time, or whose last point is older
 * than T − step (a restart, Prometheus down for a while, the policy's interval longer than the
 * step), is first given its history with `/api/v1/query_range` from its last point (at most
 * `lookback` back) to T, split so that no answer holds more than `max_points_per_query` points;
 * detectors skip points they already have, so overlapping history is harmless. When only a few of
 * the series of an expression asked once for all subjects are new, the history asked for is
 * narrowed to their `match` label values, so a new deployment does not re-read everyone's day.
 *
 * A query that fails leaves what was fed in place: the next tick goes on from there.
 */
import { UpstreamError } from "../../errors.ts";
import { yieldToLoop } from "../../util/yield.ts";
import { MAX_POINTS_PER_SERIES, type Labels, type PrometheusClient, type PromSeries } from "../../sources/prometheus/client.ts";
import { seriesLabel, type SeriesBank, type Watched } from "./series.ts";

/** Narrowed history is asked for this many owners per query at most. */
const OWNERS_PER_NARROWED_QUERY = 50;
/** Up to this share of an expression's series may need history before it is asked for all of them at once. */
const NARROW_SHARE = 0.5;
/** Points fed between two yields to the event loop: a few milliseconds of work, so signals are not kept waiting. */
const POINTS_PER_SLICE = 5_000;

export interface FeedSettings {
  readonly client: PrometheusClient;
  readonly bank: SeriesBank;
  readonly step: number;
  readonly lookback: number;
  readonly maxPointsPerQuery: number;
  readonly warnAt: number;
  readonly failAt: number;
  /** Result labels naming the owner (an expression asked once for all subjects); absent: the expression is the owner. */
  readonly match?: readonly string[];
}

export class QueryFeed {
  readonly expr: string;
  readonly #s: FeedSettings;
  readonly #omit: ReadonlySet<string>;
  #done: number | undefined;
  #pending: { readonly at: number; readonly promise: Promise<unknown> } | undefined;
  /** Wall time of the last sync asked for, so feeds no subject asks for any more can be dropped. */
  usedAt = 0;

  constructor(expr: string, settings: FeedSettings) {
    this.expr = expr;
    this.#s = settings;
    this.#omit = new Set(settings.match ?? []);
  }

  /** The owner of a series of this expression, or undefined when its labels do not name one. */
  ownerOf(labels: Labels): string | undefined {
    const match = this.#s.match;
    if (!match) return this.expr;
    const values: string[] = [];
    for (const l of match) {
      const v = labels[l];
      if (v === undefined || v === "") return undefined;
      values.push(v);
    }
    return JSON.stringify(values);
  }

  /**
   * Brings the series up to grid instant T. Resolves with the error of a failed query (never
   * rejects); undefined when all went well. History is read until `deadline` (epoch ms) at most:
   * series whose history is not complete by then stay where they are (warming up) and go on at the
   * next step, so a first sight of thousands of series never makes a run time out.
   */
  sync(at: number, signal: AbortSignal, now: number, deadline = Infinity): Promise<unknown> {
    this.usedAt = now;
    if (this.#done === at) return Promise.resolve(undefined);
    if (this.#pending?.at === at) return this.#pending.promise;
    const promise = this.#sync(at, signal, deadline).then(
      () => {
        this.#done = at;
        return undefined;
      },
      (err: unknown) => err,
    );
    const pending = { at, promise };
    this.#pending = pending;
    void promise.finally(() => {
      if (this.#pending === pending) this.#pending = undefined;
    });
    return promise;
  }

  async #sync(at: number, signal: AbortSignal, deadline: number): Promise<void> {
    const s = this.#s;
    const instant = await s.client.query(this.expr, at, signal);
    const wanted: { owner: string; key: string; label: string }[] = [];
    const answers: PromSeries[] = [];
    for (let i = 0; i < instant.length; i++) {
      const series = instant[i]!;
      const owner = this.ownerOf(series.labels);
      if (owner !== undefined) {
        wanted.push({ owner, ...seriesLabel(s.bank.spec.name, series.labels, this.#omit) });
        answers.push(series);
      }
      if (i % POINTS_PER_SLICE === POINTS_PER_SLICE - 1) await yieldToLoop();
    }
    const { series } = await s.bank.resolve(wanted);
    const byId = new Map<string, Watched>();
    const start = at - Math.floor(s.lookback / s.step) * s.step;
    const needing: { w: Watched; from: number }[] = [];
    for (const w of series) {
      if (!w) continue;
      byId.set(`${w.owner}\u0000${w.key}`, w);
      const from = w.last === undefined ? start : Math.max(start, w.last.t + s.step);
      if (from < at) needing.push({ w, from });
    }
    let complete = true;
    if (needing.length > 0) {
      if (!s.match || needing.length > NARROW_SHARE * byId.size) {
        complete = await this.#history(this.expr, needing.reduce((m, n) => Math.min(m, n.from), Infinity), at, byId.size, byId, signal, deadline);
      } else {
        const owners = new Map<string, number>();
        for (const n of needing) owners.set(n.w.owner, Math.min(owners.get(n.w.owner) ?? Infinity, n.from));
        const list = [...owners];
        for (let i = 0; i < list.length; i += OWNERS_PER_NARROWED_QUERY) {
          const group = list.slice(i, i + OWNERS_PER_NARROWED_QUERY);
          const expr = narrowTo(this.expr, s.match, group.map(([o]) => JSON.parse(o) as string[]));
          const count = [...byId.values()].filter((w) => owners.has(w.owner)).length;
          if (!complete) break;
          complete = await this.#history(expr, group.reduce((m, [, from]) => Math.min(m, from), Infinity), at, count, byId, signal, deadline);
        }
      }
    }
    // A series still short of its history gets no point now: it would skip the rest of its past.
    const short = complete ? new Set<Watched>() : new Set(needing.filter((n) => n.w.last === undefined || n.w.last.t < at - s.step).map((n) => n.w));
    for (let i = 0; i < series.length; i++) {
      const w = series[i];
      if (w && !short.has(w)) this.#feed(w, answers[i]!.t, answers[i]!.v);
      if (i % POINTS_PER_SLICE === POINTS_PER_SLICE - 1) await yieldToLoop();
    }
    // Series that had last step's point and have none now: missing points.
    const seen = new Set(byId.values());
    const owners = s.match ? [...s.bank.owners()].map(([o]) => o) : [this.expr];
    for (const o of owners) for (const w of s.bank.seriesOf(o)) if (!seen.has(w) && w.last?.t === at - s.step) s.bank.stats.missing++;
  }

  /**
   * Range queries from `from` to `at`, oldest first, each answer small enough; feeds the series in
   * `byId`. False when the deadline came first.
   */
  async #history(expr: string, from: number, at: number, seriesCount: number, byId: ReadonlyMap<string, Watched>, signal: AbortSignal, deadline: number): Promise<boolean> {
    const s = this.#s;
    let steps = Math.max(1, Math.min(MAX_POINTS_PER_SERIES - 1, Math.floor(s.maxPointsPerQuery / Math.max(1, seriesCount))));
    for (let begin = from; begin <= at; ) {
      if (Date.now() >= deadline) return false;
      const end = Math.min(at, begin + (steps - 1) * s.step);
      let answer: PromSeries[];
      try {
        answer = await s.client.queryRange(expr, begin, end, s.step, signal);
      } catch (err) {
        // More series than the instant answer showed: ask for half as long a stretch.
        if (steps > 1 && err instanceof UpstreamError && /larger than \d+ bytes/.test(err.message)) {
          steps = Math.ceil(steps / 2);
          continue;
        }
        throw err;
      }
      let fed = 0;
      for (const series of answer) {
        const owner = this.ownerOf(series.labels);
        if (owner === undefined) continue;
        const w = byId.get(`${owner}\u0000${seriesLabel(s.bank.spec.name, series.labels, this.#omit).key}`);
        if (w) this.#feed(w, series.t, series.v);
        fed += series.t.length;
        if (fed >= POINTS_PER_SLICE) {
          fed = 0;
          await yieldToLoop();
        }
      }
      begin = end + s.step;
    }
    return true;
  }

  #feed(w: Watched, t: readonly number[], v: readonly number[]): void {
    const s = this.#s;
    for (let i = 0; i < t.length; i++) {
      // Points the detector has are skipped here, not counted as re-sent: overlapping history is expected.
      if (w.last !== undefined && t[i]! <= w.last.t) continue;
      s.bank.feed(w, t[i]!, v[i]!, s.warnAt, s.failAt);
    }
  }
}

/** A PromQL string literal. */
function quote(s: string): string {
  return JSON.stringify(s);
}

/**
 * `expr` kept to the series whose `labels` take one of the value tuples: an `and on(…)` with a
 * vector built from `vector(1)` and `label_replace`, so any expression can be narrowed without
 * being parsed.
 */
export function narrowTo(expr: string, labels: readonly string[], owners: readonly (readonly string[])[]): string {
  const vectors = owners.map((values) =>
    values.reduce((acc, value, i) => `label_replace(${acc}, ${quote(labels[i]!)}, ${quote(value.replace(/\$/g, "$$$$"))}, "", "")`, "vector(1)"),
  );
  return `(${expr}) and on(${labels.join(", ")}) (${vectors.join(" or ")})`;
}
