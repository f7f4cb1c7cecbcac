/**
 * A small LRU cache whose entries expire at a given time (the clock is the caller's) and whose
 * total weight (bytes, for CRLs) is bounded as well as its entry count.
 */
export class ExpiringLru<V> {
  readonly #maxEntries: number;
  readonly #maxWeight: number;
  readonly #map = new Map<string, { value: V; expiresAt: number; weight: number }>();
  #weight = 0;

  constructor(maxEntries: number, maxWeight = Number.POSITIVE_INFINITY) {
    this.#maxEntries = maxEntries;
    this.#maxWeight = maxWeight;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string, now: number): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    this.#map.delete(key);
    if (now >= e.expiresAt) {
      this.#weight -= e.weight;
      return undefined;
    }
    this.#map.set(key, e); // most recently used last
    return e.value;
  }

  set(key: string, value: V, expiresAt: number, now: number, weight = 0): void {
    this.delete(key);
    if (expiresAt <= now || weight > this.#maxWeight || this.#maxEntries <= 0) return;
    this.#map.set(key, { value, expiresAt, weight });
    this.#weight += weight;
    for (const [k, e] of this.#map) {
      if (this.#map.size <= this.#maxEntries && this.#weight <= this.#maxWeight) break;
      // Expired entries go first only by virtue of age; evicting oldest-used is good enough.
      this.#map.delete(k);
      this.#weight -= e.weight;
    }
  }

  delete(key: string): void {
    const e = this.#map.get(key);
    if (!e) return;
    this.#map.delete(key);
    this.#weight -= e.weight;
  }

  clear(): void {
    this.#map.clear();
    this.#weight = 0;
  }
}
