/** Config pieces every provider shares. */
import { z } from "zod";
import { parseDuration } from "../../util/duration.ts";

/** Longest per-call deadline a provider accepts. */
export const MAX_CALL_TIMEOUT_MS = 5 * 60_000;

/** `timeout:` of a provider or action: a duration (`5s`, `500ms`) up to 5m, in milliseconds after parsing. */
export const callTimeout = (fallback = "10s") =>
  z
    .string()
    .refine((s) => {
      const ms = parseDuration(s);
      return ms !== undefined && ms > 0 && ms <= MAX_CALL_TIMEOUT_MS;
    }, { error: `expected a duration between 1ms and 5m, like "${fallback}"` })
    .transform((s) => parseDuration(s)!)
    .prefault(fallback);
