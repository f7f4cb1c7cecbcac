import { z } from "zod";
import type { CheckFactory } from "../../plugin/check.ts";
import { attribute, attributeCheck, PASS, verdict, type Verdict } from "../common/attribute.ts";
import type { Subject } from "../../policy/model.ts";
import { duration } from "../../plugin/schema.ts";
import { formatDuration } from "../../util/duration.ts";

/** Reason codes of the `session_age` check. */
export const SESSION_AGE_REASONS = {
  /** The session is older than identity_perimeter.session_duration. */
  SESSION_TOO_OLD: "SESSION_TOO_OLD",
  /** The session's start time is missing or unreadable. */
  SESSION_START_UNKNOWN: "SESSION_START_UNKNOWN",
} as const;

const configSchema = z
  .object({
    /** Attribute with the authentication time (ISO 8601 or epoch seconds). Default `authenticated_at`. */
    attribute: z.string().default("authenticated_at"),
    /** Longest allowed session. Default: identity_perimeter.session_duration. */
    max_age: duration().prefault("1h"),
  })
  .strict();

function toMillis(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value < 1e12 ? value * 1000 : value;
  if (typeof value === "string") {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/** Pure evaluation; only sessions (and users carrying a sign-in time) have an age. */
export function evaluateSessionAge(subject: Subject, maxAgeMs: number, now: number, attr = "authenticated_at"): Verdict {
  if (subject.kind === "workload" || subject.kind === "device") return PASS;
  const raw = attribute(subject, attr);
  if (raw === undefined && subject.kind === "user") return PASS;
  const started = toMillis(raw);
  if (started === undefined) return verdict("unknown", SESSION_AGE_REASONS.SESSION_START_UNKNOWN, `attribute ${attr} is missing or not a time`);
  const age = now - started;
  if (age > maxAgeMs) {
    return verdict("fail", SESSION_AGE_REASONS.SESSION_TOO_OLD, `session is ${formatDuration(Math.max(0, age), { units: 2 })} old, longer than ${formatDuration(maxAgeMs, { units: 2 })}`, { age_ms: age });
  }
  return { status: "pass", reasons: [], evidence: { age_ms: age } };
}

export const sessionAgeCheck: CheckFactory<z.infer<typeof configSchema>> = {
  type: "session_age",
  description: "Perimeter: the session is younger than identity_perimeter.session_duration.",
  configSchema,
  reasons: [
    { code: SESSION_AGE_REASONS.SESSION_TOO_OLD, doc: "The session is older than session_duration." },
    { code: SESSION_AGE_REASONS.SESSION_START_UNKNOWN, doc: "The session's start time is missing." },
  ],
  create: (config) => attributeCheck("session_age", (s, now) => evaluateSessionAge(s, config.max_age, now, config.attribute)),
};
