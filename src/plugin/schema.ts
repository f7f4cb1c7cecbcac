/**
 * Config pieces every plugin shares (zod): durations, per-call timeouts, subjects. Plugins import
 * these instead of the config loader, so the loader stays above them.
 */
import { z } from "zod";
import { formatDuration, MAX_TIMER_MS, parseDuration } from "../util/duration.ts";
import { SUBJECT_KINDS } from "../policy/model.ts";

/** The longest duration any config key takes: 3650 days, so `now + duration` is always a valid date. */
export const MAX_DURATION_MS = 3650 * 86_400_000;

const DURATION_HINT = 'expected a duration like "30s", "5m", "1h" or "14d"';

/**
 * A duration string (`30s`, `5m`, `1h30m`, `14d`) parsed to milliseconds, at most `max` (default
 * `MAX_DURATION_MS`). Use `timerDuration()` for a value that becomes a timer or a deadline.
 */
export const duration = (options: { max?: number } = {}) => {
  const max = options.max ?? MAX_DURATION_MS;
  return z
    .string()
    .transform((s, ctx) => {
      const ms = parseDuration(s);
      if (ms === undefined) {
        ctx.issues.push({ code: "custom", message: DURATION_HINT, input: s });
        return z.NEVER;
      }
      if (ms > max) {
        ctx.issues.push({ code: "custom", message: `must be at most ${maxText(max)}`, input: s });
        return z.NEVER;
      }
      return ms;
    });
};

/**
 * A duration that feeds a timer (a timeout, a deadline, an interval, a retry delay): at most
 * `MAX_TIMER_MS` (about 24.8 days). A longer timer would fire at once, so a typo such as `30d` for a
 * timeout would fail every run; it is refused when the config loads instead.
 */
export const timerDuration = () => duration({ max: MAX_TIMER_MS });

function maxText(max: number): string {
  return max === MAX_TIMER_MS ? `${formatDuration(max)} (2^31-1 ms, the longest a timer can wait)` : formatDuration(max);
}

/**
 * A duration string within bounds, in milliseconds after parsing; `fallback` is the value when the
 * key is absent. `message` replaces the generic "expected a duration" text.
 */
export const boundedDuration = (options: { min?: number; max?: number; fallback: string; message?: string }) => {
  const { min = 0, max = MAX_DURATION_MS, fallback, message } = options;
  return z
    .string()
    .refine(
      (s) => {
        const ms = parseDuration(s);
        return ms !== undefined && ms >= min && ms <= max;
      },
      { error: message ?? DURATION_HINT },
    )
    .transform((s) => parseDuration(s)!)
    .prefault(fallback);
};

/**
 * An http or https URL without `user:password@`. The HTTP client never sends URL credentials (it drops
 * them), so a URL carrying some is refused rather than silently sent without them. The message does
 * not quote the URL: it holds a credential.
 */
export const httpUrl = () =>
  z.url({ protocol: /^https?$/, error: "expected an http or https URL" }).refine(
    (s) => {
      const u = URL.parse(s);
      return u === null || (u.username === "" && u.password === "");
    },
    { error: "a URL may not carry user:password@ (it would not be sent); put credentials in a header, e.g. Authorization from ${file:…}" },
  );

/** Longest per-call deadline a provider accepts. */
export const MAX_CALL_TIMEOUT_MS = 5 * 60_000;

/** `timeout:` of a provider or action: a duration (`5s`, `500ms`) up to 5m, in milliseconds after parsing. */
export const callTimeout = (fallback = "10s") => boundedDuration({ min: 1, max: MAX_CALL_TIMEOUT_MS, fallback, message: `expected a duration between 1ms and 5m, like "${fallback}"` });

export const subjectKind = z.enum(SUBJECT_KINDS);

export const subjectSchema = z
  .object({
    id: z.string().min(1),
    kind: subjectKind,
    identity: z.string().optional(),
    attributes: z.record(z.string(), z.unknown()).default({}),
    labels: z.record(z.string(), z.string()).default({}),
  })
  .strict();
