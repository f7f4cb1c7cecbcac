/**
 * Config pieces every plugin shares (zod): durations, per-call timeouts, subjects. Plugins import
 * these instead of the config loader, so the loader stays above them.
 */
import { z } from "zod";
import { parseDuration } from "../util/duration.ts";
import { SUBJECT_KINDS } from "../policy/model.ts";

/** A duration string (`30s`, `5m`, `1h30m`, `14d`) parsed to milliseconds. */
export const duration = () =>
  z
    .string()
    .refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration like "30s", "5m", "1h" or "14d"' })
    .transform((s) => parseDuration(s)!);

/**
 * A duration string within bounds, in milliseconds after parsing; `fallback` is the value when the
 * key is absent. `message` replaces the generic "expected a duration" text.
 */
export const boundedDuration = (options: { min?: number; max?: number; fallback: string; message?: string }) => {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, fallback, message } = options;
  return z
    .string()
    .refine(
      (s) => {
        const ms = parseDuration(s);
        return ms !== undefined && ms >= min && ms <= max;
      },
      { error: message ?? 'expected a duration like "30s", "5m", "1h" or "14d"' },
    )
    .transform((s) => parseDuration(s)!)
    .prefault(fallback);
};

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
