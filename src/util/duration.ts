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

/** How `formatDuration` writes a duration. */
export interface FormatDurationOptions {
  /**
   * Most units written, counted from the largest one present; the rest is cut off (never rounded
   * up, so an age is never overstated): `{units: 2}` writes 10h15m13s637ms as `10h15m`. Milliseconds
   * are written only when the whole duration is under a second. Default: every unit, exactly, in
   * the form `parseDuration` reads back.
   */
  readonly units?: number;
}

/**
 * Formats milliseconds as a duration string: by default exactly (the shortest string `parseDuration`
 * reads back); with `units`, for people (`10h15m`, `3d4h`, `45s`). A negative duration is written
 * with a leading `-`.
 */
export function formatDuration(ms: number, options: FormatDurationOptions = {}): string {
  if (ms < 0) return `-${formatDuration(-ms, options)}`;
  const units = Math.max(1, options.units ?? 1);
  const exact = options.units === undefined;
  const whole = exact ? ms : ms < 1_000 ? Math.floor(ms) : Math.floor(ms / 1_000) * 1_000;
  if (whole === 0) return "0s";
  let rest = whole;
  let out = "";
  let written = 0;
  let started = false;
  for (const unit of ["d", "h", "m", "s", "ms"] as const) {
    const size = UNIT_MS[unit]!;
    if (started || rest >= size) {
      // With a unit budget, the units count from the largest present, zeros included: 1d0h5m is `1d`.
      if (!exact && written >= units) break;
      started = true;
      written++;
      if (rest >= size) out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
