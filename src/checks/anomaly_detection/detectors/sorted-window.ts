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
  // Running sums for the standard deviation, recomputed exactly every `capacity` pushes so
  // rounding cannot drift.
  #sum = 0;
  #sumSq = 0;
  #sinceExact = 0;

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
    this.#insert(x);
    if (++this.#sinceExact >= this.capacity) {
      this.#sinceExact = 0;
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < this.#size; i++) {
        const v = this.#sorted[i]!;
        sum += v;
        sumSq += v * v;
      }
      this.#sum = sum;
      this.#sumSq = sumSq;
    }
  }

  #insert(x: number): void {
    const s = this.#sorted;
    this.#sum += x;
    this.#sumSq += x * x;
    if (this.#size === this.capacity) {
      const old = this.#ring[this.#start]!;
      this.#sum -= old;
      this.#sumSq -= old * old;
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
    // k-th of two sorted runs by binary search on how many come from the left.
    let lo = Math.max(0, k + 1 - nr);
    let hi = Math.min(k + 1, nl);
    while (lo < hi) {
      const i = (lo + hi) >>> 1; // take i from the left run, k+1−i from the right
      const j = k + 1 - i;
      if (i < nl && j > 0 && s[split + j - 1]! - m > m - s[split - 1 - i]!) lo = i + 1;
      else hi = i;
    }
    const j = k + 1 - lo;
    const a = lo > 0 ? m - s[split - lo]! : -Infinity;
    const b = j > 0 ? s[split + j - 1]! - m : -Infinity;
    return a > b ? a : b;
  }

  /** Median of |x − m| over the window. */
  mad(m: number): number {
    const n = this.#size;
    if (n === 0) return NaN;
    if (n % 2 === 1) return this.#kthDistance(m, (n - 1) >> 1);
    return (this.#kthDistance(m, n / 2 - 1) + this.#kthDistance(m, n / 2)) / 2;
  }

  /** Population standard deviation of the window. */
  std(): number {
    if (this.#size === 0) return NaN;
    const mean = this.#sum / this.#size;
    const v = this.#sumSq / this.#size - mean * mean;
    return v > 0 ? Math.sqrt(v) : 0;
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

  /** How many values equal x. */
  countEqual(x: number): number {
    return this.#upperBound(x) - this.#lowerBound(x);
  }

  /**
   * The running sums as they stand: restoring a window by pushing its values again gives sums
   * that differ in the last bits from ones that have been adding and subtracting for a long
   * time, and the standard deviation must come out the same after a restart.
   */
  sums(): WindowSums {
    return [this.#sum, this.#sumSq, this.#sinceExact];
  }

  /** Puts back sums taken with `sums()` after the values have been pushed again. */
  restoreSums(sums: WindowSums): void {
    [this.#sum, this.#sumSq, this.#sinceExact] = sums;
  }

  /** Values in arrival order, oldest first (for serialisation). */
  values(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#size; i++) out.push(this.#ring[(this.#start + i) % this.capacity]!);
    return out;
  }
}

/** A window's running sum, sum of squares and pushes since they were last recomputed exactly. */
export type WindowSums = [sum: number, sumSq: number, sinceExact: number];
