/**
 * The running half of anomaly_detection: per run, bring every series definition's series up to
 * the current step (Prometheus), read what each subject's series say, and judge with the pure
 * `evaluate.ts`. Pushed observations feed the same detectors between runs; a subject whose status
 * they change gets a fresh result at once.
 *
 * The watchers (detectors and their feeds) are shared through `ctx.shared`, keyed by everything
 * they depend on, so a reload that leaves a series definition alone keeps its detectors in memory.
 */
import type { Check, Observation, ObservationOutcome, ObserveContext, ObserveResult } from "../../plugin/check.ts";
import { yieldToLoop } from "../../util/yield.ts";
import type { CheckRunContext, PluginContext } from "../../plugin/context.ts";
import { sharedOrOwn, type Lease } from "../../plugin/shared.ts";
import type { CheckResult, CheckStatus, Subject } from "../../policy/model.ts";
import { PrometheusClient } from "../../sources/prometheus/client.ts";
import { canonicalJSON } from "../../util/canonical-json.ts";
import { errorMessage, isTransient } from "../../errors.ts";
import { scrub } from "../../util/redact.ts";
import type { AnomalyConfig } from "./config.ts";
import { evaluateSubject, type SeriesView, type SubjectInput, type Verdict } from "./evaluate.ts";
import { AnomalyMetrics } from "./metrics.ts";
import { STATE_SPACE } from "./series.ts";
import { compileSeries, SeriesWatcher, type Gathered } from "./watcher.ts";

const TYPE = "anomaly_detection";
/** How often old state is pruned from the store. */
const PRUNE_EVERY_MS = 3_600_000;
/**
 * How often a save round looks for series that are due (it walks them all); a `fail` point is
 * written at the next run whatever this says.
 */
const SAVE_ROUND_EVERY_MS = 10_000;

export interface AnomalyCheck extends Check {
  takesSeries(series: string): boolean;
  observe(batch: readonly Observation[], ctx: ObserveContext): Promise<ObserveResult>;
}

export function createAnomalyCheck(config: AnomalyConfig, ctx: PluginContext): AnomalyCheck {
  const shared = sharedOrOwn(ctx.shared);
  const defs = (config.series ?? []).map((s) => compileSeries(config, s));
  const clientLease: Lease<PrometheusClient> | undefined = config.prometheus
    ? shared.acquire(
        `prometheus:${canonicalJSON(config.prometheus)}`,
        () => new PrometheusClient(config.prometheus!, ctx),
        (c) => void c.close(),
      )
    : undefined;
  const leases = defs.map((def) =>
    shared.acquire(def.shareKey, () => new SeriesWatcher(def, config, def.kind === "push" ? undefined : clientLease?.value, { store: ctx.state, logger: ctx.logger, clock: ctx.clock })),
  );
  const watchers = leases.map((l) => l.value);
  const pushed = new Map(watchers.filter((w) => w.def.kind === "push").map((w) => [w.def.name, w]));
  let name = TYPE;
  const m = new AnomalyMetrics(ctx.meter, () => new Map([[name, watchers.reduce((n, w) => n + w.bank.size, 0)]]));
  /** The status last reported per subject, so observations report only changes. */
  const reported = new Map<string, CheckStatus>();
  let prunedAt = 0;
  let roundAt = -Infinity;
  let saving: Promise<void> | undefined;
  const lastLogged = new Map<SeriesWatcher, string>();

  function flushStats(): void {
    for (const w of watchers) m.add(name, w.def.kind === "push" ? "push" : "prometheus", w.takeStats());
  }

  /** Writes what is due in the background; one round at a time. */
  function saveSoon(): void {
    if (saving || !ctx.state) return;
    const at = ctx.clock.now();
    if (at - roundAt < SAVE_ROUND_EVERY_MS && !watchers.some((w) => w.bank.urgent)) return;
    roundAt = at;
    saving = (async () => {
      // A task of its own, after the run that asked for it has answered.
      await yieldToLoop();
      for (const w of watchers) await w.bank.save();
      const now = ctx.clock.now();
      if (now - prunedAt >= PRUNE_EVERY_MS) {
        prunedAt = now;
        await ctx.state!.pruneValues(STATE_SPACE, now - config.state.keep);
      }
    })()
      .catch((err: unknown) => ctx.logger.warn({ check: name }, `anomaly_detection: cannot write learned state: ${errorMessage(err)}`))
      .finally(() => {
        saving = undefined;
        flushStats();
      });
  }

  function inputFor(subject: Subject, gathered: readonly Map<Subject, Gathered>[]): SubjectInput {
    const series: SeriesView[] = [];
    const errors: { series: string; message: string }[] = [];
    const unrenderable: { series: string; message: string }[] = [];
    watchers.forEach((w, i) => {
      const g = gathered[i]?.get(subject) ?? (w.def.applies(subject) ? w.ownerOf(subject) : undefined);
      if (g === undefined) return;
      if ("problem" in g && g.problem !== undefined) unrenderable.push({ series: w.def.name, message: g.problem });
      if ("error" in g && g.error !== undefined) errors.push({ series: w.def.name, message: scrub(errorMessage(g.error)) });
      if ("owner" in g && g.owner !== undefined) series.push(...w.views(g.owner));
    });
    return { series, errors, unrenderable };
  }

  function result(subject: Subject, v: Verdict, now: number, ttl: number): CheckResult {
    reported.set(subject.id, v.status);
    if (reported.size > 1_000_000) reported.clear();
    return {
      check: name,
      subject: subject.id,
      status: v.status,
      reasons: v.reasons,
      evidence: v.evidence,
      observed_at: now,
      expires_at: now + ttl,
      ...(v.lapses_at !== undefined && v.lapses_at < now + ttl ? { next_run_at: v.lapses_at } : {}),
      source: "pull",
    };
  }

  return {
    async run(subjects: readonly Subject[], run: CheckRunContext): Promise<CheckResult[]> {
      name = run.check ?? TYPE;
      const now = run.clock.now();
      const at = Math.floor(now / config.step) * config.step;
      for (const w of watchers) w.bank.holdMs = run.ttlMs;
      // History is read for half the run's time at most; the rest of it waits for the next step.
      const deadline = Date.now() + run.timeoutMs / 2;
      const gathered = await Promise.all(watchers.map((w) => w.gather(subjects, at, run.signal, now, deadline)));
      watchers.forEach((w, i) => {
        const failed = [...gathered[i]!.values()].find((g) => g.error !== undefined)?.error;
        if (failed === undefined) {
          lastLogged.delete(w);
          return;
        }
        m.sourceError(name, failed);
        const message = scrub(errorMessage(failed));
        if (lastLogged.get(w) !== message) {
          lastLogged.set(w, message);
          ctx.logger.warn({ check: name, series: w.def.name, transient: isTransient(failed) }, `anomaly_detection: ${w.def.name} cannot be read from Prometheus: ${message}`);
        }
      });
      const after = run.clock.now();
      const out = subjects.map((s) => result(s, evaluateSubject(inputFor(s, gathered), { now: after, ttl: run.ttlMs, noData: config.no_data }), after, run.ttlMs));
      flushStats();
      saveSoon();
      return out;
    },

    takesSeries(series: string): boolean {
      return pushed.has(seriesName(series));
    },

    async observe(batch: readonly Observation[], octx: ObserveContext): Promise<ObserveResult> {
      name = octx.check;
      const outcomes: ObservationOutcome[] = new Array(batch.length).fill("not_watched");
      const touched = new Map<string, Subject>();
      // Grouped per series definition; each group resolved in one store read.
      const groups = new Map<string, number[]>();
      batch.forEach((o, i) => {
        const def = seriesName(o.series);
        const list = groups.get(def);
        if (list) list.push(i);
        else groups.set(def, [i]);
      });
      for (const w of pushed.values()) w.bank.holdMs = octx.ttlMs;
      for (const [def, indexes] of groups) {
        const w = pushed.get(def);
        if (!w) continue;
        const applicable = indexes.filter((i) => w.def.applies(batch[i]!.subject));
        await w.bank.loadOwners(applicable.map((i) => batch[i]!.subject.id));
        const wanted = applicable.map((i) => {
          const o = batch[i]!;
          const braces = o.series.slice(def.length);
          return { owner: o.subject.id, key: braces, label: o.series };
        });
        const { series } = await w.bank.resolve(wanted);
        for (let k = 0; k < applicable.length; k++) if (!series[k]) outcomes[applicable[k]!] = "dropped";
        // In time order per series, so a batch need not be sorted by its sender.
        const order = applicable.map((i, k) => ({ i, k })).sort((a, b) => batch[a.i]!.timestamp - batch[b.i]!.timestamp);
        for (const { i, k } of order) {
          const target = series[k];
          if (!target) continue;
          const o = batch[i]!;
          const outcome = w.bank.feed(target, o.timestamp, o.value, w.def.warnAt, w.def.failAt);
          outcomes[i] = outcome === "scored" ? "accepted" : outcome;
          if (outcome === "scored") touched.set(o.subject.id, o.subject);
        }
      }
      const now = ctx.clock.now();
      const results: CheckResult[] = [];
      // The subject's other series (query series too) count in its result: read them back if need be.
      await Promise.all(watchers.map((w) => w.bank.loadOwners([...touched.values()].flatMap((s) => (w.def.applies(s) ? [w.ownerOf(s)] : [])).flatMap((o) => ("owner" in o ? [o.owner] : [])))));
      for (const subject of touched.values()) {
        const v = evaluateSubject(inputFor(subject, []), { now, ttl: octx.ttlMs, noData: config.no_data });
        if (v.status !== (reported.get(subject.id) ?? "pass")) results.push(result(subject, v, now, octx.ttlMs));
      }
      flushStats();
      saveSoon();
      return { outcomes, results };
    },

    async stop(): Promise<void> {
      m.stop();
      await saving;
      for (const w of watchers) {
        // Pushed points are written all; a query series only when due (or holding a fresh anomaly):
        // what it learned since is read again from Prometheus's history at the next start, so a
        // stop with a hundred thousand series does not have to write them all.
        await w.bank.save(w.def.kind === "push").catch((err: unknown) => ctx.logger.warn({ check: name, series: w.def.name }, `anomaly_detection: cannot write learned state at stop: ${errorMessage(err)}`));
      }
      flushStats();
      for (const l of leases) l.release();
      clientLease?.release();
    },
  };
}

/** The definition a pushed series name belongs to: `name` of `name{…}`. */
export function seriesName(series: string): string {
  const brace = series.indexOf("{");
  return brace < 0 ? series : series.slice(0, brace);
}
