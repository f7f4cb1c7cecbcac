/**
 * The detectors of one series definition, one per watched series, and their durable state.
 *
 * A watched series belongs to an owner: for a per-subject query, the query as rendered for the
 * subject; for a query asked once for all subjects, the values of its `match` labels; for pushed
 * observations, the subject id. Subjects that render to the same owner (the pods of one app, say)
 * read the same detectors. Within an owner each distinct label set is a series of its own, up to
 * `max_series_per_subject`; the check as a whole keeps at most `max_series`. Beyond either, new
 * series are dropped and counted, unless an idle one can give up its place.
 *
 * State is written to the state store (compact and deflated, see codec.ts) at most every
 * `save_every` per series, spread over that period by a hash of the series, at once after a
 * point that scored `fail`, and for every series at a clean stop. A series with no point for
 * `idle_after` is written and dropped from memory; it is read back when it shows up again.
 */
import { createHash } from "node:crypto";
import { yieldToLoop } from "../../util/yield.ts";
import type { Logger } from "../../telemetry/log.ts";
import type { Clock } from "../../util/clock.ts";
import type { KeyValueEntry, KeyValueStore } from "../../plugin/state.ts";
import { errorMessage } from "../../errors.ts";
import { createDetector, restoreDetector, type Detector, type DetectorOptions, type DetectorState } from "./detectors/detector.ts";
import { decodeState, encodeState } from "./codec.ts";
import type { ScoredPoint } from "./evaluate.ts";

/** The state store space the check's values live in. */
export const STATE_SPACE = "anomaly_detection";
/** Longest series key kept as is; longer ones are cut and suffixed with a hash. */
const MAX_KEY = 256;
/** Series written in one round at most; the rest wait for the next round. */
const SAVES_PER_ROUND = 500;
/** Series encoded and written between two yields to the event loop (about 20 ms of work). */
const SAVES_PER_SLICE = 32;
/** Detectors made, or owners' stored series listed, between two yields to the event loop. */
const CREATE_PER_SLICE = 250;

/** deflate level of stored state: level 6 saved under 10 % more than 1 on detector state, at several times the CPU. */
const DEFLATE_LEVEL = 1;

/** One series definition as the bank needs it. */
export interface SeriesSpec {
  /** The configured name. */
  readonly name: string;
  readonly options: DetectorOptions;
  /** Identifies what the detectors learn (the query, the match, the detector options, the step). */
  readonly fingerprint: string;
  /** Owners are subject ids (pushed series): their state goes with the subject. */
  readonly ownersAreSubjects: boolean;
}

/** Caps shared by every bank of one check. */
export class SeriesBudget {
  readonly max: number;
  count = 0;
  constructor(max: number) {
    this.max = max;
  }
}

export interface BankOptions {
  readonly store: KeyValueStore | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly saveEveryMs: number;
  readonly idleAfterMs: number;
  readonly maxPerOwner: number;
  readonly budget: SeriesBudget;
}

/** A series being watched. */
export class Watched {
  readonly owner: string;
  /** The label set within the owner (`""` for the series itself). */
  readonly key: string;
  /** How reasons name it: `name` or `name{label="value",…}`. */
  readonly label: string;
  detector: Detector;
  last: ScoredPoint | undefined;
  fail: ScoredPoint | undefined;
  warn: ScoredPoint | undefined;
  /** Changed since written. */
  dirty = false;
  /** To be written at the next round (a `fail` point). */
  urgent = false;
  savedAt: number;
  /** Wall time of the last point fed. */
  seenAt: number;
  /** Resolves once the state read from the store (if any) is in place; undefined when it is. */
  ready: Promise<void> | undefined;

  constructor(owner: string, key: string, label: string, detector: Detector, now: number, savedAt: number) {
    this.owner = owner;
    this.key = key;
    this.label = label;
    this.detector = detector;
    this.savedAt = savedAt;
    this.seenAt = now;
  }
}

/** Counters the check turns into metrics; the check takes them after each run. */
export interface SeriesStats {
  scored: number;
  nonFinite: number;
  outOfOrder: number;
  /** Series that had last step's point and have none now. */
  missing: number;
  /** New series refused by a cap. */
  dropped: number;
  /** Bytes of state written to the store. */
  bytesWritten: number;
}

export function emptyStats(): SeriesStats {
  return { scored: 0, nonFinite: 0, outOfOrder: 0, missing: 0, dropped: 0, bytesWritten: 0 };
}

/** What a fed point came to. */
export type FeedOutcome = "scored" | "non_finite" | "out_of_order";

interface StoredSeries {
  readonly v: 1;
  /** The series' key within its owner and its label, so an owner's series can be read back by listing. */
  readonly key: string;
  readonly label: string;
  readonly detector: DetectorState;
  readonly last: ScoredPoint | null;
  readonly fail: ScoredPoint | null;
  readonly warn: ScoredPoint | null;
}

export class SeriesBank {
  readonly spec: SeriesSpec;
  readonly #o: BankOptions;
  readonly stats: SeriesStats = emptyStats();
  /** Series holding a `fail` point not written yet. */
  #urgent = 0;
  /** How long an anomaly stands (the check's ttl, as of its last run): a series holding one is never dropped from memory. */
  holdMs = 0;
  readonly #owners = new Map<string, Map<string, Watched>>();
  #size = 0;
  #saving: Promise<number> | undefined;
  #sweptAt = 0;
  #loadFailureLogged = false;
  /** Owners whose stored series have been read back since this bank was made. */
  readonly #loadedOwners = new Set<string>();

  constructor(spec: SeriesSpec, options: BankOptions) {
    this.spec = spec;
    this.#o = options;
  }

  /** Whether a series holds a `fail` point not written yet (it is written at the next round, whenever that is due). */
  get urgent(): boolean {
    return this.#urgent > 0;
  }

  /** Series held in memory. */
  get size(): number {
    return this.#size;
  }

  /** The series of an owner held in memory. */
  seriesOf(owner: string): Iterable<Watched> {
    return this.#owners.get(owner)?.values() ?? [];
  }

  owners(): Iterable<[string, Map<string, Watched>]> {
    return this.#owners.entries();
  }

  /**
   * The watched series for each wanted (owner, key): in memory, else read from the store, else
   * new. Undefined where a cap leaves no room (counted in `dropped`).
   */
  async resolve(wanted: readonly { owner: string; key: string; label: string }[]): Promise<{ series: (Watched | undefined)[]; dropped: number }> {
    const now = this.#o.clock.now();
    const out: (Watched | undefined)[] = new Array(wanted.length);
    const created: Watched[] = [];
    let dropped = 0;
    // New series are readable by others at once but marked not ready until their stored state is in.
    let loaded!: () => void;
    const loading = this.#o.store ? new Promise<void>((resolve) => (loaded = resolve)) : undefined;
    for (let i = 0; i < wanted.length; i++) {
      const w = wanted[i]!;
      let series = this.#owners.get(w.owner);
      const held = series?.get(w.key);
      if (held) {
        out[i] = held;
        continue;
      }
      if (!this.#makeRoom(series, now)) {
        dropped++;
        continue;
      }
      if (!series) this.#owners.set(w.owner, (series = new Map()));
      const fresh = new Watched(w.owner, w.key, w.label, createDetector(this.spec.options), now, now - this.#phase(w.owner, w.key));
      fresh.ready = loading;
      series.set(w.key, fresh);
      this.#size++;
      this.#o.budget.count++;
      created.push(fresh);
      out[i] = fresh;
      // Thousands of new detectors (a first sight) are made a slice at a time: signals keep flowing.
      if (created.length % CREATE_PER_SLICE === 0) await yieldToLoop();
    }
    if (loading) {
      if (created.length > 0) await this.#load(created);
      for (const w of created) w.ready = undefined;
      loaded();
    }
    const waits = new Set<Promise<void>>();
    for (const w of out) if (w?.ready) waits.add(w.ready);
    await Promise.all(waits);
    this.stats.dropped += dropped;
    return { series: out, dropped };
  }

  /**
   * Reads back every stored series of these owners not in memory yet (once per owner), so a
   * restarted agent knows the anomalies that still stand, also of series that have no new point.
   */
  async loadOwners(owners: readonly string[]): Promise<void> {
    const store = this.#o.store;
    const todo = [...new Set(owners)].filter((o) => !this.#loadedOwners.has(o));
    if (!store || todo.length === 0) return;
    if (this.#loadedOwners.size > 1_000_000) this.#loadedOwners.clear();
    for (const o of todo) this.#loadedOwners.add(o);
    try {
      const keys: string[] = [];
      for (let i = 0; i < todo.length; i += CREATE_PER_SLICE) {
        keys.push(...(await store.listKeys(STATE_SPACE, todo.slice(i, i + CREATE_PER_SLICE).map((o) => `${this.#ownerHash(o)}/`), this.#o.maxPerOwner)));
        if (todo.length > CREATE_PER_SLICE) await yieldToLoop();
      }
      const ownerOf = new Map(todo.map((o) => [this.#ownerHash(o), o]));
      const values = await store.getValues(STATE_SPACE, keys);
      const now = this.#o.clock.now();
      let decoded = 0;
      for (const [storeKey, bytes] of values) {
        if (++decoded % CREATE_PER_SLICE === 0) await yieldToLoop();
        const owner = ownerOf.get(storeKey.slice(0, storeKey.indexOf("/")));
        if (owner === undefined) continue;
        const stored = this.#decode(bytes);
        if (!stored || typeof stored.key !== "string" || typeof stored.label !== "string") continue;
        let series = this.#owners.get(owner);
        if (series?.has(stored.key) || !this.#makeRoom(series, now)) continue;
        if (!series) this.#owners.set(owner, (series = new Map()));
        const w = new Watched(owner, stored.key, stored.label, stored.detector, now, now - this.#phase(owner, stored.key));
        this.#apply(w, stored);
        series.set(stored.key, w);
        this.#size++;
        this.#o.budget.count++;
      }
    } catch (err) {
      for (const o of todo) this.#loadedOwners.delete(o);
      if (!this.#loadFailureLogged) this.#o.logger.warn({ series: this.spec.name }, `anomaly_detection: cannot read learned state from the state store (${errorMessage(err)}); ${this.spec.name} series start afresh`);
      this.#loadFailureLogged = true;
    }
  }

  /** Stored state, restored; undefined (logged) when it cannot be read. */
  #decode(bytes: Uint8Array): (Omit<StoredSeries, "detector"> & { detector: Detector }) | undefined {
    try {
      const stored = decodeState(bytes) as StoredSeries;
      if (stored?.v !== 1) throw new Error("unknown version");
      return { ...stored, detector: restoreDetector(stored.detector) };
    } catch (err) {
      this.#o.logger.warn({ series: this.spec.name }, `anomaly_detection: the stored state of a ${this.spec.name} series cannot be read (${errorMessage(err)}); it starts afresh`);
      return undefined;
    }
  }

  #apply(w: Watched, stored: { detector: Detector; last: ScoredPoint | null; fail: ScoredPoint | null; warn: ScoredPoint | null }): void {
    w.detector = stored.detector;
    w.last = stored.last ?? undefined;
    w.fail = stored.fail ?? undefined;
    w.warn = stored.warn ?? undefined;
  }

  /** Room for one more series of this owner, freeing an idle one if need be. */
  #makeRoom(series: Map<string, Watched> | undefined, now: number): boolean {
    const full = (series?.size ?? 0) >= this.#o.maxPerOwner;
    if (!full && this.#o.budget.count < this.#o.budget.max) return true;
    // The longest idle series of the owner gives up its place (it is written first if changed).
    if (series && full) {
      let idle: Watched | undefined;
      for (const w of series.values()) if (now - w.seenAt > this.#o.idleAfterMs && !this.#standing(w, now) && (!idle || w.seenAt < idle.seenAt)) idle = w;
      if (idle) {
        this.#evict(idle);
        return this.#o.budget.count < this.#o.budget.max;
      }
    }
    return false;
  }

  /** The series holds an anomaly that still stands. */
  #standing(w: Watched, now: number): boolean {
    return w.warn !== undefined && w.warn.t + this.holdMs > now;
  }

  #evict(w: Watched): void {
    if (w.dirty) void this.#write([w], this.#o.clock.now()).catch(() => undefined);
    const series = this.#owners.get(w.owner);
    if (!series?.delete(w.key)) return;
    if (series.size === 0) this.#owners.delete(w.owner);
    this.#size--;
    this.#o.budget.count--;
  }

  /** Puts state read from the store into freshly created series; a read failure leaves them fresh. */
  async #load(created: readonly Watched[]): Promise<void> {
    try {
      const keys = created.map((w) => this.storeKey(w.owner, w.key));
      const values = await this.#o.store!.getValues(STATE_SPACE, keys);
      let decoded = 0;
      for (let i = 0; i < created.length; i++) {
        const bytes = values.get(keys[i]!);
        if (!bytes) continue;
        const stored = this.#decode(bytes);
        if (stored) this.#apply(created[i]!, stored);
        if (++decoded % CREATE_PER_SLICE === 0) await yieldToLoop();
      }
    } catch (err) {
      if (!this.#loadFailureLogged) this.#o.logger.warn({ series: this.spec.name }, `anomaly_detection: cannot read learned state from the state store (${errorMessage(err)}); ${this.spec.name} series start afresh`);
      this.#loadFailureLogged = true;
    } finally {
      for (const w of created) w.ready = undefined;
    }
  }

  /** Feeds one point. A point that scores at least `warnAt` is remembered with what was expected. */
  feed(w: Watched, t: number, v: number, warnAt: number, failAt: number): FeedOutcome {
    const before = w.detector.counts.nonFinite;
    const score = w.detector.update(t, v);
    if (score === null) {
      const outcome = w.detector.counts.nonFinite > before ? "non_finite" : "out_of_order";
      if (outcome === "non_finite") this.stats.nonFinite++;
      else this.stats.outOfOrder++;
      return outcome;
    }
    this.stats.scored++;
    w.dirty = true;
    w.seenAt = this.#o.clock.now();
    w.last = { t, v, score };
    if (score >= warnAt) {
      const band = w.detector.expected(t);
      const point: ScoredPoint = band ? { t, v, score, center: band.center, spread: band.spread } : { t, v, score };
      w.warn = point;
      if (score >= failAt) {
        w.fail = point;
        if (!w.urgent) this.#urgent++;
        w.urgent = true;
      }
    }
    return "scored";
  }

  /**
   * The store key of a series: `<owner hash>/<key hash>`, fixed length whatever the owner (a
   * rendered query can be long), and listable by owner.
   */
  storeKey(owner: string, key: string): string {
    return `${this.#ownerHash(owner)}/${createHash("sha256").update(key).digest("base64url").slice(0, 22)}`;
  }

  #ownerHash(owner: string): string {
    return createHash("sha256").update(JSON.stringify([this.spec.fingerprint, owner])).digest("base64url").slice(0, 22);
  }

  /** A series' offset into the save period, so series created together are not all written together. */
  #phase(owner: string, key: string): number {
    const h = createHash("sha256").update(owner).update("\u0000").update(key).digest();
    return h.readUInt32BE(0) % Math.max(1, this.#o.saveEveryMs);
  }

  /**
   * Writes the series that are due (all changed ones with `all`), at most `SAVES_PER_ROUND` unless
   * `all`, and drops series idle for `idle_after` from memory. One round at a time; returns how
   * many were written.
   */
  save(all = false): Promise<number> {
    if (!this.#o.store) return Promise.resolve(0);
    if (this.#saving) return all ? this.#saving.then(() => this.save(true)) : Promise.resolve(0);
    const run = this.#saveRound(all).finally(() => {
      if (this.#saving === run) this.#saving = undefined;
    });
    this.#saving = run;
    return run;
  }

  async #saveRound(all: boolean): Promise<number> {
    const now = this.#o.clock.now();
    const due: Watched[] = [];
    const idle: Watched[] = [];
    const sweep = all || now - this.#sweptAt >= 60_000;
    if (sweep) this.#sweptAt = now;
    for (const series of this.#owners.values()) {
      for (const w of series.values()) {
        if (w.ready) continue;
        if (sweep && now - w.seenAt > this.#o.idleAfterMs) idle.push(w);
        if (!w.dirty) continue;
        if (all || w.urgent || now - w.savedAt >= this.#o.saveEveryMs || (sweep && now - w.seenAt > this.#o.idleAfterMs)) due.push(w);
      }
    }
    const take = all ? due : due.slice(0, SAVES_PER_ROUND);
    let written = 0;
    for (let i = 0; i < take.length; i += SAVES_PER_SLICE) {
      written += await this.#write(take.slice(i, i + SAVES_PER_SLICE), now);
      await yieldToLoop();
    }
    for (const w of idle) if (!w.dirty && !this.#standing(w, now)) this.#evict(w);
    return written;
  }

  async #write(series: readonly Watched[], now: number): Promise<number> {
    if (series.length === 0 || !this.#o.store) return 0;
    const entries: KeyValueEntry[] = series.map((w) => {
      const stored: StoredSeries = { v: 1, key: w.key, label: w.label, detector: w.detector.toJSON(), last: w.last ?? null, fail: w.fail ?? null, warn: w.warn ?? null };
      return { key: this.storeKey(w.owner, w.key), value: encodeState(stored, DEFLATE_LEVEL), ...(this.spec.ownersAreSubjects ? { subject: w.owner } : {}) };
    });
    await this.#o.store.putValues(STATE_SPACE, entries, now);
    for (const e of entries) this.stats.bytesWritten += e.value!.length;
    for (const w of series) {
      if (w.urgent) this.#urgent--;
      w.dirty = false;
      w.urgent = false;
      w.savedAt = now;
    }
    return series.length;
  }

  /** Drops everything from memory (after `save(true)`), giving the budget back. */
  clear(): void {
    this.#o.budget.count -= this.#size;
    this.#size = 0;
    this.#owners.clear();
  }
}

/** `name` or `name{a="x",b="y"}` for a label set, sorted, cut to a bounded length. */
export function seriesLabel(name: string, labels: Readonly<Record<string, string>>, omit: ReadonlySet<string> = new Set()): { key: string; label: string } {
  const parts = Object.keys(labels)
    .filter((k) => !omit.has(k))
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  const key = parts.length === 0 ? "" : `{${parts.join(",")}}`;
  const label = name + key;
  if (label.length <= MAX_KEY) return { key, label };
  const hash = createHash("sha256").update(key).digest("base64url").slice(0, 16);
  return { key: `${key.slice(0, MAX_KEY - 20)}…${hash}`, label: `${label.slice(0, MAX_KEY - 20)}…${hash}` };
}
