/** Durations in config are strings like `30s`, `5m`, `1h30m`, `14d`, `250ms`. */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION_RE = /^(?:\d+(?:ms|s|m|h|d|w))+$/;
const PART_RE = /(\d+)(ms|s|m|h|d|w)/g;

/** Parses a duration string to milliseconds; returns undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!DURATION_RE.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(PART_RE)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total;
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
