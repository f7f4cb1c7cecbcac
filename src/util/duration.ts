/**
 * Durations in config are strings like `30s`, `5m`, `1h30m`, `14d`, `250ms`: each unit at most once,
 * largest first, so a value has one reading (`1h1h` or `30m1h` is a typo, not 2h or 90m).
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Units from largest to smallest: the only order a duration may name them in. */
const UNIT_ORDER = ["w", "d", "h", "m", "s", "ms"] as const;
const PART_RE = /(\d+)(ms|s|m|h|d|w)/y;

/**
 * The longest delay a Node.js timer can wait (2^31−1 ms, about 24.8 days). A longer one fires after
 * 1 ms instead, so every duration that becomes a timer is bounded by it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Parses a duration string to milliseconds; undefined when it is not one: a unit repeated or out of
 * order, anything but digits and units, or a total beyond `Number.MAX_SAFE_INTEGER`.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === "") return undefined;
  let total = 0;
  let at = 0;
  let last = -1;
  PART_RE.lastIndex = 0;
  while (at < s.length) {
    PART_RE.lastIndex = at;
    const m = PART_RE.exec(s);
    if (!m) return undefined;
    const rank = UNIT_ORDER.indexOf(m[2] as (typeof UNIT_ORDER)[number]);
    if (rank <= last) return undefined;
    last = rank;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    at = PART_RE.lastIndex;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/** Formats milliseconds back into the shortest duration string. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const unit of ["d", "h", "m", "s", "ms"] as const) {
    const size = UNIT_MS[unit]!;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
