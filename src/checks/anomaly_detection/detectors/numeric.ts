/**
 * Numerical helpers the detectors share: the complementary error function, numpy's pairwise
 * summation (so means and variances match the reference implementations bit for bit), and a
 * score scale common to every detector.
 */

const SQRT_PI = Math.sqrt(Math.PI);

/**
 * erfc(x) to about 1e-15 relative error. A positive-term series (no cancellation) below 2.5,
 * Lentz's continued fraction above; JavaScript has no erfc of its own.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x === Infinity) return 0;
  if (x < 2.5) {
    // erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return 1 - ((2 / SQRT_PI) * Math.exp(-x2) * sum);
  }
  if (x > 27.3) return 0; // below the smallest subnormal
  // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), modified Lentz.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (SQRT_PI * f);
}

/** numpy's pairwise summation of `a[lo, lo+n)` (blocks of 8, split above 128), so sums match numpy exactly. */
export function pairwiseSum(a: ArrayLike<number>, lo: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[lo + i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = a[lo]!, r1 = a[lo + 1]!, r2 = a[lo + 2]!, r3 = a[lo + 3]!, r4 = a[lo + 4]!, r5 = a[lo + 5]!, r6 = a[lo + 6]!, r7 = a[lo + 7]!;
    let i = 8;
    const end = n - (n % 8);
    for (; i < end; i += 8) {
      r0 += a[lo + i]!;
      r1 += a[lo + i + 1]!;
      r2 += a[lo + i + 2]!;
      r3 += a[lo + i + 3]!;
      r4 += a[lo + i + 4]!;
      r5 += a[lo + i + 5]!;
      r6 += a[lo + i + 6]!;
      r7 += a[lo + i + 7]!;
    }
    let res = (r0 + r1 + (r2 + r3)) + (r4 + r5 + (r6 + r7));
    for (; i < n; i++) res += a[lo + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, lo, n2) + pairwiseSum(a, lo + n2, n - n2);
}

/** numpy.mean and numpy.var (population) of `a[lo, lo+n)`, computed as numpy computes them. */
export function meanVar(a: ArrayLike<number>, lo: number, n: number): { mean: number; variance: number } {
  const mean = pairwiseSum(a, lo, n) / n;
  const sq = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const d = a[lo + i]! - mean;
    sq[i] = d * d;
  }
  return { mean, variance: pairwiseSum(sq, 0, n) / n };
}

/**
 * The common score scale: a tail probability p becomes log(p)/log(1e-10), clamped to [0, 1], so
 * 0.5 means "as rare as 1 in 100,000" and 1 means "1 in 10 billion or rarer". The anomaly
 * likelihood's log form is the same curve, so scores of every detector compare.
 */
export function scoreFromTail(p: number): number {
  if (!(p < 1)) return 0;
  if (p <= 1e-10) return 1;
  return Math.log(p) / -23.02585092994046;
}
