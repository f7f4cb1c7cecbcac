import { z } from "zod";
import type { CheckFactory } from "../../plugin/check.ts";
import { attribute, attributeCheck, PASS, verdict, type Verdict } from "../common/attribute.ts";
import type { Subject } from "../../policy/model.ts";

/** Reason codes of the `mfa` check. */
export const MFA_REASONS = {
  /** The subject authenticated without a second factor. */
  MFA_MISSING: "MFA_MISSING",
  /** The subject carries no MFA information. */
  MFA_UNKNOWN: "MFA_UNKNOWN",
} as const;

const STRONG_AMR = new Set(["mfa", "otp", "hwk", "swk", "sc", "fido", "face", "fpt", "iris", "retina", "vbm", "pop"]);

const configSchema = z
  .object({
    /** Attribute holding a boolean, or an RFC 8176 `amr` list. Default `mfa`, then `amr`. */
    attribute: z.string().default("mfa"),
  })
  .strict();

/** Pure evaluation; devices and workloads have no sign-in, so they pass. */
export function evaluateMfa(subject: Subject, attr = "mfa"): Verdict {
  if (subject.kind === "device" || subject.kind === "workload") return PASS;
  const value = attribute(subject, attr) ?? attribute(subject, "amr");
  if (value === true) return PASS;
  if (Array.isArray(value)) {
    return value.some((m) => STRONG_AMR.has(String(m)))
      ? PASS
      : verdict("fail", MFA_REASONS.MFA_MISSING, `authentication methods ${JSON.stringify(value)} include no second factor`);
  }
  if (value === false) return verdict("fail", MFA_REASONS.MFA_MISSING, "signed in without multi-factor authentication");
  return verdict("unknown", MFA_REASONS.MFA_UNKNOWN, `attribute ${attr} (or amr) is missing`);
}

export const mfaCheck: CheckFactory<z.infer<typeof configSchema>> = {
  type: "mfa",
  description: "Perimeter: the user or session signed in with multi-factor authentication (identity_perimeter.require_mfa).",
  configSchema,
  reasons: [
    { code: MFA_REASONS.MFA_MISSING, doc: "The subject authenticated without a second factor." },
    { code: MFA_REASONS.MFA_UNKNOWN, doc: "The subject carries no MFA attribute." },
  ],
  create: (config) => attributeCheck("mfa", (s) => evaluateMfa(s, config.attribute)),
};
