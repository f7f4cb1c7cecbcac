/** "Did you mean …?" for names a user typed: the closest known name, when it is close enough to be a typo. */

/**
 * Edit distance with adjacent transpositions (optimal string alignment): `user_risk_scor` →
 * `user_risk_score` is 1, `mfa` → `mfq` is 1, `ocsp` → `oscp` is 1.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** Names longer than this are not compared (the distance is quadratic in the length). */
const MAX_COMPARED = 256;

/**
 * The known name closest to `name` when it is at most a third of `name`'s length away (at least 1,
 * at most 4 edits); ties go to the earlier candidate. Undefined when nothing is that close.
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length > MAX_COMPARED) return undefined;
  const limit = Math.min(4, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    if (c === name || c.length > MAX_COMPARED || Math.abs(c.length - name.length) >= bestDistance) continue;
    const dist = editDistance(name.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

/** `; did you mean "x"?` for an unknown name, or "" when no known name is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const best = closest(name, candidates);
  return best === undefined ? "" : `; did you mean "${best}"?`;
}
