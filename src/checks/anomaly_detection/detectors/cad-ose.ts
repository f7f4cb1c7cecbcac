/**
 * Contextual Anomaly Detector, Open Source Edition (CAD OSE, M. Smirnov, 2016), ported from
 * numenta/NAB `nab/detectors/context_ose/cad_ose.py` and `context_operator.py` (MIT). The
 * structure, the order of every loop and the quirks are kept, because scores depend on them:
 *
 * - values are quantised into `numNormValueBits` bits over [min, max]; bit i of the level becomes
 *   the fact 2i + bit. Values outside the range give more (or, below min, odd) bits exactly as
 *   Python's `bin()` would; the level is clamped to ±2^30 so a wild value cannot make thousands;
 * - semi-contexts are keyed by CPython's tuple hash of their facts, and active contexts are
 *   ordered by (activations, left hash, right hash) — see py-hash.ts;
 * - the reference marks "no new context this step" with `False`, which Python compares equal to
 *   context id 0, so context 0 never takes part in a step without a new context. Kept: `NONE = 0`.
 *
 * Memory: the reference's context memory only grows. Here it is capped (`maxContexts`): when the
 * model reaches half the cap a second model starts learning beside it, and when the first reaches
 * the cap the second replaces it. Scores always come from the older model, so there is no blind
 * spot, and memory stays below 1.5 × the cap. The score history keeps only the last `restPeriod`
 * entries (all the reference ever reads).
 */
import { tupleHash, compareHash, hashKey, type Hash64 } from "./py-hash.ts";

/** CAD OSE parameters (the reference's names in brackets; defaults are the reference's). */
export interface CadOseParams {
  /** [baseThreshold] A raw score at or above this starts a rest period. Default 0.75. */
  readonly baseThreshold: number;
  /** [restPeriod] Points after a high score during which 0 is returned. NAB passes probationaryPeriod / 5. */
  readonly restPeriod: number;
  /** [maxLeftSemiContextsLenght] Longest left semi-context crossed into a new context. Default 7. */
  readonly maxLeftSemiContextsLength: number;
  /** [maxActiveNeuronsNum] Active contexts fed back as facts. Default 15. */
  readonly maxActiveNeurons: number;
  /** [numNormValueBits] Quantisation bits. Default 3. */
  readonly numNormValueBits: number;
  /** Contexts kept at most (not in the reference, which grows without bound). Default 50,000. */
  readonly maxContexts: number;
}

export const CAD_OSE_DEFAULTS: Omit<CadOseParams, "restPeriod"> = {
  baseThreshold: 0.75,
  maxLeftSemiContextsLength: 7,
  maxActiveNeurons: 15,
  numNormValueBits: 3,
  maxContexts: 50_000,
};

/** The reference's `False` for "no new context this step"; Python's False == 0 (see above). */
const NONE = 0;
const NEURON_BASE = 2 ** 31;
const MAX_LEVEL = 2 ** 30;

interface Semi {
  readonly facts: readonly number[];
  readonly hash: Hash64;
  /**
   * How many of the last crossing's facts this semi-context holds (the reference's
   * semiContextValues[2]), valid while `stamp` is the memory's crossing stamp. The crossed facts
   * themselves (semiContextValues[0]) are the facts in that crossing, in its (sorted) order: both
   * lists are sorted, so they are recomputed when needed instead of being kept.
   */
  count: number;
  stamp: number;
}

interface LeftSemi extends Semi {
  /** right semi-context id → context id (the reference's dict), and its items in insertion order. */
  readonly contexts: Map<number, number>;
  readonly rightIds: number[];
  readonly contextIds: number[];
}

type RightSemi = Semi;

interface Context {
  /** Times the context fully matched (the reference's contextValues[0]). */
  count: number;
  /** 1 when the context was ever seen as a zero-level context. */
  zerolevel: 0 | 1;
}

/** The serialised context memory: flat arrays; hashes and crossings are recomputed on load. */
export interface ContextMemoryState {
  /** Per left semi-context: its facts and [rightId, contextId, …] in insertion order. */
  left: { f: number[]; m: number[] }[];
  right: number[][];
  /** [count, zerolevel, …] per context. */
  contexts: number[];
  leftFactsGroup: number[];
}

interface Potential {
  readonly left: Facts;
  readonly right: Facts;
}

/** Crossed facts with their hash, computed once per semi-context and step. */
interface Facts {
  readonly facts: number[];
  readonly hash: Hash64;
  readonly key: string;
}

function facts(list: number[]): Facts {
  const hash = tupleHash(list);
  return { facts: list, hash, key: hashKey(hash) };
}

/** The facts of `facts` that are in `sorted` (both ascending), in order. */
function intersect(facts: readonly number[], sorted: readonly number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (const f of facts) {
    while (j < sorted.length && sorted[j]! < f) j++;
    if (j < sorted.length && sorted[j] === f) out.push(f);
  }
  return out;
}

/** The context operator and the fact loop of one model (one "generation"). */
class ContextMemory {
  readonly #leftByHash = new Map<string, number>();
  readonly #rightByHash = new Map<string, number>();
  readonly left: LeftSemi[] = [];
  readonly right: RightSemi[] = [];
  readonly #leftByFact = new Map<number, LeftSemi[]>();
  readonly #rightByFact = new Map<number, RightSemi[]>();
  #crossedLeft: LeftSemi[] = [];
  #leftStamp = 0;
  #rightStamp = 0;
  /** The facts of the last left crossing. */
  #leftFacts: readonly number[] = [];
  readonly contexts: Context[] = [];
  #newContextId = NONE;
  leftFactsGroup: number[] = [];
  readonly maxLeftLength: number;
  readonly maxActive: number;

  constructor(maxLeftLength: number, maxActive: number) {
    this.maxLeftLength = maxLeftLength;
    this.maxActive = maxActive;
  }

  #leftSemi(facts: readonly number[], known?: Facts): LeftSemi {
    const hash = known?.hash ?? tupleHash(facts);
    const key = known?.key ?? hashKey(hash);
    const id = this.#leftByHash.get(key);
    if (id !== undefined) return this.left[id]!;
    const semi: LeftSemi = { facts, hash, count: 0, stamp: -1, contexts: new Map(), rightIds: [], contextIds: [] };
    this.#leftByHash.set(key, this.left.length);
    this.left.push(semi);
    for (const fact of facts) push(this.#leftByFact, fact, semi);
    return semi;
  }

  #rightSemi(facts: readonly number[], known?: Facts): number {
    const hash = known?.hash ?? tupleHash(facts);
    const key = known?.key ?? hashKey(hash);
    const id = this.#rightByHash.get(key);
    if (id !== undefined) return id;
    const semi: RightSemi = { facts, hash, count: 0, stamp: -1 };
    this.#rightByHash.set(key, this.right.length);
    this.right.push(semi);
    for (const fact of facts) push(this.#rightByFact, fact, semi);
    return this.right.length - 1;
  }

  /** getContextByFacts for one zero-level context: true when it is new. */
  #zeroLevel(leftFacts: readonly number[], rightFacts: readonly number[]): boolean {
    const left = this.#leftSemi(leftFacts);
    const rightId = this.#rightSemi(rightFacts);
    const existing = left.contexts.get(rightId);
    if (existing === undefined) {
      const id = this.contexts.length;
      link(left, rightId, id);
      this.contexts.push({ count: 0, zerolevel: 1 });
      this.#newContextId = id;
      return true;
    }
    this.contexts[existing]!.zerolevel = 1;
    return false;
  }

  /** getContextByFacts for crossed contexts: how many were new. */
  #addContexts(list: readonly Potential[]): number {
    let added = 0;
    for (const { left: l, right: r } of list) {
      const left = this.#leftSemi(l.facts, l);
      const rightId = this.#rightSemi(r.facts, r);
      if (!left.contexts.has(rightId)) {
        link(left, rightId, this.contexts.length);
        this.contexts.push({ count: 0, zerolevel: 0 });
        added++;
      }
    }
    return added;
  }

  /** contextCrosser for the right side, then updateContextsAndGetActive. */
  #crossRight(sensor: readonly number[], newContextFlag: boolean) {
    const stamp = ++this.#rightStamp;
    for (const fact of sensor) {
      for (const semi of this.#rightByFact.get(fact) ?? []) {
        if (semi.stamp !== stamp) {
          semi.stamp = stamp;
          semi.count = 0;
        }
        semi.count++;
      }
    }
    const active: Active[] = [];
    let selected = 0;
    const potential: Potential[] = [];
    const rightCrossed = new Map<number, Facts>();
    const crossedRight = (id: number, semi: RightSemi) => {
      let f = rightCrossed.get(id);
      if (f === undefined) rightCrossed.set(id, (f = facts(intersect(semi.facts, sensor))));
      return f;
    };
    const leftStamp = this.#leftStamp;
    for (const left of this.#crossedLeft) {
      const leftCount = left.stamp === leftStamp ? left.count : 0;
      const full = left.facts.length === leftCount;
      // A partly crossed left semi-context only ever yields potential contexts, and only then.
      if (!full && !(newContextFlag && leftCount <= this.maxLeftLength)) continue;
      const { rightIds, contextIds } = left;
      let leftCrossed: Facts | undefined;
      for (let k = 0; k < contextIds.length; k++) {
        const contextId = contextIds[k]!;
        if (this.#newContextId === contextId) continue;
        const context = this.contexts[contextId]!;
        const rightId = rightIds[k]!;
        const right = this.right[rightId]!;
        const rightCount = right.stamp === stamp ? right.count : 0;
        if (full) {
          selected++;
          if (rightCount > 0) {
            if (right.facts.length === rightCount) {
              context.count++;
              active.push({ id: contextId, count: context.count, left: left.hash, right: right.hash });
            } else if (context.zerolevel && newContextFlag && leftCount <= this.maxLeftLength) {
              leftCrossed ??= facts(intersect(left.facts, this.#leftFacts));
              potential.push({ left: leftCrossed, right: crossedRight(rightId, right) });
            }
          }
        } else if (context.zerolevel && rightCount > 0) {
          leftCrossed ??= facts(intersect(left.facts, this.#leftFacts));
          potential.push({ left: leftCrossed, right: crossedRight(rightId, right) });
        }
      }
    }
    this.#newContextId = NONE;
    return { active, selected, potential };
  }

  /** contextCrosser for the left side: adds the potential contexts, then crosses the facts. */
  #crossLeft(facts: readonly number[], potential: readonly Potential[]): number {
    const added = potential.length > 0 ? this.#addContexts(potential) : 0;
    const stamp = ++this.#leftStamp;
    this.#leftFacts = facts;
    for (const fact of facts) {
      for (const semi of this.#leftByFact.get(fact) ?? []) {
        if (semi.stamp !== stamp) {
          semi.stamp = stamp;
          semi.count = 0;
        }
        semi.count++;
      }
    }
    const crossed: LeftSemi[] = [];
    for (const semi of this.left) if (semi.stamp === stamp) crossed.push(semi);
    this.#crossedLeft = crossed;
    return added;
  }

  /** The reference's step(): the two anomaly components for one set of sensor facts. */
  step(sensorFacts: readonly number[]): [number, number] {
    // Distinct (left, right) fact pairs, as the reference's set of tuples counts them (by hash).
    const uniq = new Set<string>();
    let newContextFlag = false;
    if (this.leftFactsGroup.length > 0 && sensorFacts.length > 0) {
      uniq.add(`${hashKey(tupleHash(this.leftFactsGroup))}|${hashKey(tupleHash(sensorFacts))}`);
      newContextFlag = this.#zeroLevel(this.leftFactsGroup, sensorFacts);
    }
    const { active, selected, potential } = this.#crossRight(sensorFacts, newContextFlag);
    for (const { left, right } of potential) uniq.add(`${left.key}|${right.key}`);
    const selectedActive = selected > 0 ? active.length / selected : 0;

    // The reference sorts all active contexts and keeps the last maxActive; the order is total
    // (no two contexts share both hashes), so selecting the top maxActive gives the same set.
    const top = topActive(active, this.maxActive);
    const group = new Set<number>(sensorFacts);
    for (const a of top) group.add(NEURON_BASE + a.id);
    this.leftFactsGroup = [...group].sort((a, b) => a - b);

    let added = this.#crossLeft(this.leftFactsGroup, potential);
    if (newContextFlag) added++;
    const addedShare = newContextFlag && uniq.size > 0 ? added / uniq.size : 0;
    return [selectedActive, addedShare];
  }

  toJSON(): ContextMemoryState {
    return {
      left: this.left.map((s) => ({ f: [...s.facts], m: s.rightIds.flatMap((r, k) => [r, s.contextIds[k]!]) })),
      right: this.right.map((s) => [...s.facts]),
      contexts: this.contexts.flatMap((c) => [c.count, c.zerolevel]),
      leftFactsGroup: [...this.leftFactsGroup],
    };
  }

  static fromJSON(state: ContextMemoryState, maxLeftLength: number, maxActive: number): ContextMemory {
    const m = new ContextMemory(maxLeftLength, maxActive);
    for (const r of state.right) m.#rightSemi(r);
    const seen = new Set<number>();
    for (const l of state.left) {
      const semi = m.#leftSemi(l.f);
      for (let j = 0; j + 1 < l.m.length; j += 2) {
        link(semi, l.m[j]!, l.m[j + 1]!);
        seen.add(l.m[j + 1]!);
      }
    }
    for (let id = 0; id * 2 < state.contexts.length; id++) {
      if (!seen.has(id)) throw new RangeError(`CAD OSE state: context ${id} belongs to no semi-context`);
      m.contexts.push({ count: state.contexts[id * 2]!, zerolevel: state.contexts[id * 2 + 1] ? 1 : 0 });
    }
    // Redo the last left crossing: it is a function of the facts alone. The right one is redone
    // from scratch at the next point before it is read.
    m.leftFactsGroup = [...state.leftFactsGroup];
    m.#crossLeft(m.leftFactsGroup, []);
    return m;
  }
}

function link(left: LeftSemi, rightId: number, contextId: number): void {
  left.contexts.set(rightId, contextId);
  left.rightIds.push(rightId);
  left.contextIds.push(contextId);
}

function push<T>(map: Map<number, T[]>, key: number, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

interface Active {
  readonly id: number;
  readonly count: number;
  readonly left: Hash64;
  readonly right: Hash64;
}

function compareActive(a: Active, b: Active): number {
  return a.count - b.count || compareHash(a.left, b.left) || compareHash(a.right, b.right);
}

/** The `k` greatest active contexts by (count, left hash, right hash). */
function topActive(active: readonly Active[], k: number): Active[] {
  if (active.length <= k) return active.slice();
  const top: Active[] = []; // ascending
  for (const a of active) {
    if (top.length === k && compareActive(a, top[0]!) <= 0) continue;
    let i = top.length;
    while (i > 0 && compareActive(top[i - 1]!, a) > 0) i--;
    top.splice(i, 0, a);
    if (top.length > k) top.shift();
  }
  return top;
}

/** The sensor facts of one value: the reference's bin()/lstrip/rjust/reversed encoding. */
export function sensorFacts(value: number, min: number, step: number, bits: number): number[] {
  let level = Math.trunc((value - min) / step);
  if (level > MAX_LEVEL) level = MAX_LEVEL;
  else if (level < -MAX_LEVEL) level = -MAX_LEVEL;
  // Python: bin(n).lstrip("0b") — "0b101" → "101", "0b0" → "", "-0b11" unchanged.
  const text = (level < 0 ? `-0b${(-level).toString(2)}` : level === 0 ? "" : level.toString(2)).padStart(bits, "0");
  const facts = new Set<number>();
  for (let i = 0; i < text.length; i++) facts.add(i * 2 + (text[text.length - 1 - i] === "1" ? 1 : 0));
  return [...facts].sort((a, b) => a - b);
}

export interface CadOseState {
  min: number;
  max: number;
  /** The last restPeriod raw scores (the reference starts its history with 1.0). */
  history: number[];
  memory: ContextMemoryState;
  /** The younger generation, once the older one passed half of maxContexts. */
  next: ContextMemoryState | null;
}

/** One CAD OSE model over a fixed value range. */
export class CadOse {
  readonly params: CadOseParams;
  readonly min: number;
  readonly max: number;
  readonly #maxBin: number;
  readonly #step: number;
  #history: number[];
  #memory: ContextMemory;
  #next: ContextMemory | null;

  constructor(params: CadOseParams, min: number, max: number, state?: CadOseState) {
    if (!(params.restPeriod >= 1)) throw new RangeError("restPeriod must be at least 1");
    this.params = params;
    this.min = min;
    this.max = max;
    this.#maxBin = 2 ** params.numNormValueBits - 1;
    const range = max - min === 0 ? this.#maxBin : max - min;
    this.#step = range / this.#maxBin;
    const { maxLeftSemiContextsLength: l, maxActiveNeurons: a } = params;
    this.#history = state ? [...state.history] : [1];
    this.#memory = state ? ContextMemory.fromJSON(state.memory, l, a) : new ContextMemory(l, a);
    this.#next = state?.next ? ContextMemory.fromJSON(state.next, l, a) : null;
  }

  /** The reference's getAnomalyScore(): the score of `value`, then learns it. */
  step(value: number): number {
    const facts = sensorFacts(value, this.min, this.#step, this.params.numNormValueBits);
    const [selectedActive, addedShare] = this.#memory.step(facts);
    this.#next?.step(facts);
    const current = (1 - selectedActive + addedShare) / 2;
    const rest = Math.trunc(this.params.restPeriod);
    let highest = -Infinity;
    for (const s of this.#history) if (s > highest) highest = s;
    const returned = highest < this.params.baseThreshold ? current : 0;
    this.#history.push(current);
    if (this.#history.length > rest) this.#history.shift();
    this.#rotate();
    return returned;
  }

  /** Contexts held now (both generations). */
  get contexts(): number {
    return this.#memory.contexts.length + (this.#next?.contexts.length ?? 0);
  }

  #rotate(): void {
    const cap = this.params.maxContexts;
    if (this.#next === null && this.#memory.contexts.length >= cap / 2) {
      this.#next = new ContextMemory(this.params.maxLeftSemiContextsLength, this.params.maxActiveNeurons);
    }
    if (this.#next !== null && (this.#memory.contexts.length >= cap || this.#next.contexts.length >= cap / 2)) {
      // The younger generation has learned from every point since the older one was half full.
      this.#memory = this.#next;
      this.#next = this.#memory.contexts.length >= cap / 2 ? new ContextMemory(this.params.maxLeftSemiContextsLength, this.params.maxActiveNeurons) : null;
    }
  }

  toJSON(): CadOseState {
    return { min: this.min, max: this.max, history: [...this.#history], memory: this.#memory.toJSON(), next: this.#next?.toJSON() ?? null };
  }
}
