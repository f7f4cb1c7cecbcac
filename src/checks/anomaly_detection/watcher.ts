/**
 * One entry of `series`: which of a subject's series it watches (its owner, see series.ts), how
 * they are fed (per-subject queries, one query for all subjects, or pushed observations), and
 * what the check sees of them.
 */
import { createHash } from "node:crypto";
import type { Subject } from "../../policy/model.ts";
import { compileSelector, type SelectorSpec, type SubjectMatcher } from "../../policy/selector.ts";
import { compileTemplate, renderTemplate } from "../../plugin/template.ts";
import type { PrometheusClient } from "../../sources/prometheus/client.ts";
import { canonicalJSON } from "../../util/canonical-json.ts";
import type { DetectorOptions } from "./detectors/detector.ts";
import { detectorOptions, lookbackOf, thresholdsOf, type AnomalyConfig, type SeriesConfig } from "./config.ts";
import { QueryFeed } from "./feed.ts";
import { emptyStats, SeriesBank, SeriesBudget, type BankOptions, type SeriesStats } from "./series.ts";
import type { SeriesView } from "./evaluate.ts";

/**
 * Characters a subject value may bring into PromQL: enough for names, ids, hosts and e-mail
 * addresses, never a quote, brace or backslash that could end a string or a selector early.
 */
const PROMQL_SAFE = /^[A-Za-z0-9_.:/@+-]+$/;
const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;

export type WatchKind = "templated" | "shared" | "push";

/** A series definition compiled once per check configuration. */
export interface SeriesDef {
  readonly name: string;
  readonly kind: WatchKind;
  readonly config: SeriesConfig;
  readonly options: DetectorOptions;
  readonly warnAt: number;
  readonly failAt: number;
  readonly applies: SubjectMatcher;
  readonly lookback: number;
  /** What the learned state depends on: the stored state's key. */
  readonly stateFingerprint: string;
  /** Everything the watcher depends on: watchers are shared (across a reload) only when this is equal. */
  readonly shareKey: string;
}

export function compileSeries(config: AnomalyConfig, s: SeriesConfig): SeriesDef {
  const options = detectorOptions(config, s);
  const { warn, fail } = thresholdsOf(config, s);
  const kind: WatchKind = s.push ? "push" : s.match ? "shared" : "templated";
  const learned = { name: s.name, kind, query: s.query ?? null, match: s.match ?? null, options, step: config.step };
  const stateFingerprint = createHash("sha256").update(canonicalJSON(learned)).digest("base64url").slice(0, 22);
  const shared = {
    learned,
    lookback: lookbackOf(config, s),
    warn,
    fail,
    max_points_per_query: config.max_points_per_query,
    max_series_per_subject: config.max_series_per_subject,
    max_series: config.max_series,
    state: config.state,
    prometheus: s.push ? null : (config.prometheus ?? null),
  };
  return {
    name: s.name,
    kind,
    config: s,
    options,
    warnAt: warn,
    failAt: fail,
    applies: s.applies_to ? compileSelector(s.applies_to as SelectorSpec) : () => true,
    lookback: lookbackOf(config, s),
    stateFingerprint,
    shareKey: `anomaly-series:${createHash("sha256").update(canonicalJSON(shared)).digest("base64url")}`,
  };
}

/** What a subject is to one series definition. */
export type Ownership = { readonly owner: string } | { readonly problem: string };

/** The outcome of gathering one series definition for one subject. */
export interface Gathered {
  readonly owner?: string;
  readonly error?: unknown;
  readonly problem?: string;
}

export class SeriesWatcher {
  readonly def: SeriesDef;
  readonly bank: SeriesBank;
  readonly #client: PrometheusClient | undefined;
  readonly #step: number;
  readonly #maxPointsPerQuery: number;
  readonly #feeds = new Map<string, QueryFeed>();
  readonly #match: readonly [label: string, render: (s: Subject) => string | undefined, template: string][];
  #sweptAt = 0;

  constructor(def: SeriesDef, config: AnomalyConfig, client: PrometheusClient | undefined, bank: Omit<BankOptions, "budget" | "maxPerOwner" | "idleAfterMs" | "saveEveryMs">) {
    this.def = def;
    this.#client = client;
    this.#step = config.step;
    this.#maxPointsPerQuery = config.max_points_per_query;
    this.bank = new SeriesBank(
      { name: def.name, options: def.options, fingerprint: def.stateFingerprint, ownersAreSubjects: def.kind === "push" },
      {
        ...bank,
        budget: new SeriesBudget(config.max_series),
        maxPerOwner: config.max_series_per_subject,
        // A series with no point for ten steps (at least an hour) gives its memory back.
        idleAfterMs: Math.max(3_600_000, 10 * config.step),
        saveEveryMs: config.state.save_every,
      },
    );
    this.#match = Object.entries(def.config.match ?? {}).map(([label, template]) => [label, compileTemplate(template), template] as const);
  }

  /** The owner of the subject's series under this definition, or why it has none. */
  ownerOf(subject: Subject): Ownership {
    switch (this.def.kind) {
      case "push":
        return { owner: subject.id };
      case "shared": {
        const values: string[] = [];
        for (const [label, render, template] of this.#match) {
          const v = render(subject);
          if (v === undefined) return { problem: `subject ${subject.id} has no value for match.${label} (${template})` };
          values.push(v);
        }
        return { owner: JSON.stringify(values) };
      }
      case "templated":
        return renderPromQL(this.def.config.query!, subject);
    }
  }

  /**
   * Brings the series of these subjects up to grid instant `at` (query series; pushed ones arrive
   * on their own) and says, per subject, which owner to read and whether its source failed.
   */
  async gather(subjects: readonly Subject[], at: number, signal: AbortSignal, now: number, deadline = Infinity): Promise<Map<Subject, Gathered>> {
    const out = new Map<Subject, Gathered>();
    const bySubject = new Map<Subject, Ownership>();
    for (const s of subjects) if (this.def.applies(s)) bySubject.set(s, this.ownerOf(s));
    await this.bank.loadOwners([...bySubject.values()].flatMap((o) => ("owner" in o ? [o.owner] : [])));
    if (this.def.kind === "push" || !this.#client) {
      for (const [s, o] of bySubject) out.set(s, o);
      return out;
    }
    const syncs = new Map<QueryFeed, Promise<unknown>>();
    const feedOf = new Map<Subject, QueryFeed>();
    for (const [s, o] of bySubject) {
      if ("problem" in o) {
        out.set(s, o);
        continue;
      }
      const feed = this.#feed(this.def.kind === "shared" ? (this.def.config.query ?? "") : o.owner);
      feedOf.set(s, feed);
      if (!syncs.has(feed)) syncs.set(feed, feed.sync(at, signal, now, deadline));
    }
    const errors = new Map<QueryFeed, unknown>();
    await Promise.all([...syncs].map(async ([feed, p]) => errors.set(feed, await p)));
    for (const [s, feed] of feedOf) {
      const o = bySubject.get(s) as { owner: string };
      const error = errors.get(feed);
      out.set(s, error === undefined ? { owner: o.owner } : { owner: o.owner, error });
    }
    this.#sweepFeeds(now);
    return out;
  }

  #feed(expr: string): QueryFeed {
    let feed = this.#feeds.get(expr);
    if (!feed) {
      feed = new QueryFeed(expr, {
        client: this.#client!,
        bank: this.bank,
        step: this.#step,
        lookback: this.def.lookback,
        maxPointsPerQuery: this.#maxPointsPerQuery,
        warnAt: this.def.warnAt,
        failAt: this.def.failAt,
        ...(this.def.kind === "shared" ? { match: this.#match.map(([label]) => label) } : {}),
      });
      this.#feeds.set(expr, feed);
    }
    return feed;
  }

  /** Per-subject queries no subject has asked for in a day are forgotten (the subject left, or changed). */
  #sweepFeeds(now: number): void {
    if (now - this.#sweptAt < 600_000) return;
    this.#sweptAt = now;
    for (const [expr, feed] of this.#feeds) if (now - feed.usedAt > 86_400_000) this.#feeds.delete(expr);
  }

  /** What the check sees of an owner's series. */
  views(owner: string): SeriesView[] {
    const out: SeriesView[] = [];
    for (const w of this.bank.seriesOf(owner)) {
      if (w.ready) continue;
      const expected = w.last && w.last.center === undefined ? w.detector.expected(w.last.t) : undefined;
      const range = w.detector.range;
      out.push({
        series: w.label,
        warnAt: this.def.warnAt,
        failAt: this.def.failAt,
        ...(w.last ? { last: expected ? { ...w.last, center: expected.center, spread: expected.spread } : w.last } : {}),
        ...(w.fail ? { fail: w.fail } : {}),
        ...(w.warn ? { warn: w.warn } : {}),
        warmingUp: w.detector.warmingUp,
        ...(range && this.def.options.detector !== "median_mad" ? { range } : {}),
      });
    }
    return out;
  }

  /** The counters gathered since the last call. */
  takeStats(): SeriesStats {
    const s = { ...this.bank.stats };
    Object.assign(this.bank.stats, emptyStats());
    return s;
  }
}

/**
 * A query rendered for a subject, each value checked to be safe inside PromQL (see PROMQL_SAFE):
 * a value that is not is refused rather than escaped, since the template decides whether it lands
 * inside a string, a regular expression or a selector.
 */
export function renderPromQL(template: string, subject: Subject): Ownership {
  let problem: string | undefined;
  const text = template.replace(PLACEHOLDER, (whole, name: string) => {
    if (problem !== undefined) return whole;
    let value: string;
    try {
      value = renderTemplate(`{{${name}}}`, subject);
    } catch (err) {
      problem = (err as Error).message.replace(/^template "\{\{[^}]*\}\}": /, "");
      return whole;
    }
    if (!PROMQL_SAFE.test(value)) problem = `the value of {{${name}}} of subject ${subject.id} holds characters PromQL cannot take safely (allowed: letters, digits and _ . : / @ + -)`;
    return value;
  });
  return problem === undefined ? { owner: text } : { problem };
}
