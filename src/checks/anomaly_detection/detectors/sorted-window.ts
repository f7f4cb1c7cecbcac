/**
 * The last `capacity` values of a series, kept both in arrival order (a ring) and sorted, so the
 * median, the median absolute deviation and tail counts cost O(log n) and an update costs one
 * memmove of at most `capacity` doubles.
 */
export class SortedWindow {
  readonly capacity: number;
  readonly #ring: Float64Array;
  readonly #sorted: Float64Array;
  #start = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError("window capacity must be a positive integer");
    this.capacity = capacity;
    this.#ring = new Float64Array(capacity);
    this.#sorted = new Float64Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds a value, dropping the oldest when full. */
  push(x: number): void {
    const s = this.#sorted;
    if (this.#size === this.capacity) {
      const old = this.#ring[this.#start]!;
      this.#ring[this.#start] = x;
      this.#start = (this.#start + 1) % this.capacity;
      // Replace `old` by `x` in the sorted array with one shift.
      const i = this.#lowerBound(old);
      const j = this.#lowerBound(x);
      if (j > i) {
        s.copyWithin(i, i + 1, j);
        s[j - 1] = x;
      } else {
        s.copyWithin(j + 1, j, i);
        s[j] = x;
      }
      return;
    }
    this.#ring[(this.#start + this.#size) % this.capacity] = x;
    const j = this.#lowerBound(x);
    s.copyWithin(j + 1, j, this.#size);
    s[j] = x;
    this.#size++;
  }

  /** First index whose value is ≥ x. */
  #lowerBound(x: number): number {
    const s = this.#sorted;
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index whose value is > x. */
  #upperBound(x: number): number {
    const s = this.#sorted;
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  median(): number {
    const n = this.#size;
    if (n === 0) return NaN;
    const s = this.#sorted;
    return n % 2 === 1 ? s[(n - 1) >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  }

  /** The k-th smallest (0-based) of |x − m| over the window, by merging two sorted runs. */
  #kthDistance(m: number, k: number): number {
    const s = this.#sorted;
    const split = this.#lowerBound(m);
    // Left run: m − s[split−1−i], ascending in i; right run: s[split+i] − m, ascending in i.
    const nl = split;
    const nr = this.#size - split;
    const left = (i: number) => m - s[split - 1 - i]!;
    const right = (i: number) => s[split + i]! - m;
    // k-th of two sorted arrays by binary search on how many come from the left.
    let lo = Math.max(0, k + 1 - nr);
    let hi = Math.min(k + 1, nl);
    while (lo < hi) {
      const i = (lo + hi) >>> 1; // take i from left, k+1−i from right
      const j = k + 1 - i;
      if (i < nl && j > 0 && right(j - 1) > left(i)) lo = i + 1;
      else hi = i;
    }
    const i = lo;
    const j = k + 1 - i;
    const a = i > 0 ? left(i - 1) : -Infinity;
    const b = j > 0 ? right(j - 1) : -Infinity;
    return a > b ? a : b;
  }

  /** Median of |x − m| over the window. */
  mad(m: number): number {
    const n = this.#size;
    if (n === 0) return NaN;
    if (n % 2 === 1) return this.#kthDistance(m, (n - 1) >> 1);
    return (this.#kthDistance(m, n / 2 - 1) + this.#kthDistance(m, n / 2)) / 2;
  }

  /** Mean of |x − m| over the window (O(n); used only when the MAD is 0). */
  meanAbsDeviation(m: number): number {
    let sum = 0;
    for (let i = 0; i < this.#size; i++) sum += Math.abs(this.#sorted[i]! - m);
    return this.#size === 0 ? NaN : sum / this.#size;
  }

  /** How many values lie at distance ≥ d from m. */
  countBeyond(m: number, d: number): number {
    if (!(d > 0)) return this.#size;
    return this.#upperBound(m - d) + (this.#size - this.#lowerBound(m + d));
  }

  /** Values in arrival order, oldest first (for serialisation). */
  values(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#size; i++) out.push(this.#ring[(this.#start + i) % this.capacity]!);
    return out;
  }
}
