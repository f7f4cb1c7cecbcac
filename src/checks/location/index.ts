import { z } from "zod";
import type { CheckFactory } from "../../plugin/check.ts";
import { attribute, attributeCheck, PASS, verdict, type Verdict } from "../common/attribute.ts";
import type { Subject } from "../../policy/model.ts";

/** Reason codes of the `location` check. */
export const LOCATION_REASONS = {
  /** The subject is in a country the perimeter does not allow. */
  LOCATION_NOT_ALLOWED: "LOCATION_NOT_ALLOWED",
  /** The subject's location is not known. */
  LOCATION_UNKNOWN: "LOCATION_UNKNOWN",
} as const;

const configSchema = z
  .object({
    /** Attribute with an ISO 3166-1 alpha-2 country code. Default `country`. */
    attribute: z.string().default("country"),
    /** Allowed countries; empty = any known location. Default: identity_perimeter.allowed_locations. */
    allowed: z.array(z.string().regex(/^[A-Z]{2}$/)).default([]),
  })
  .strict();

/** Pure evaluation; workloads have no location and pass. */
export function evaluateLocation(subject: Subject, allowed: readonly string[], attr = "country"): Verdict {
  if (subject.kind === "workload") return PASS;
  const value = attribute(subject, attr);
  if (typeof value !== "string" || value === "") return verdict("unknown", LOCATION_REASONS.LOCATION_UNKNOWN, `attribute ${attr} is missing`);
  const country = value.toUpperCase();
  if (allowed.length > 0 && !allowed.includes(country)) {
    return verdict("fail", LOCATION_REASONS.LOCATION_NOT_ALLOWED, `location ${country} is not in the allowed list`, { country });
  }
  return { status: "pass", reasons: [], evidence: { country } };
}

export const locationCheck: CheckFactory<z.infer<typeof configSchema>> = {
  type: "location",
  description: "Perimeter: the subject's location is known and allowed (identity_perimeter.require_location_check).",
  configSchema,
  reasons: [
    { code: LOCATION_REASONS.LOCATION_NOT_ALLOWED, doc: "The subject is in a country not in allowed_locations." },
    { code: LOCATION_REASONS.LOCATION_UNKNOWN, doc: "The subject's location attribute is missing." },
  ],
  create: (config) => attributeCheck("location", (s) => evaluateLocation(s, config.allowed, config.attribute)),
};
