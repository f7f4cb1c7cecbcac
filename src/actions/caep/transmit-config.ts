/** The `caep:transmit` entry: which CAEP event to send, to which receivers, with which event claims. */
import { z } from "zod";

/** CAEP 1.0 event types the action sends. */
export const CAEP_EVENTS = ["session-revoked", "assurance-level-change", "device-compliance-change", "credential-change", "risk-level-change"] as const;
export type CaepEventName = (typeof CAEP_EVENTS)[number];

/** CAEP 1.0 §3.3 credential types; receivers may agree on others. */
export const CREDENTIAL_TYPES = ["password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f", "verifiable-credential", "phone-voice", "phone-sms", "app"] as const;
export const CHANGE_TYPES = ["create", "revoke", "update", "delete"] as const;
export const CHANGE_DIRECTIONS = ["increase", "decrease"] as const;

const LANG_RE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

/** A CAEP localizable message: a string (English) or BCP 47 tag → text. */
const localized = z.union([
  z.string().min(1),
  z
    .record(z.string().regex(LANG_RE, { error: "expected a BCP 47 language tag like en or de-CH" }), z.string().min(1))
    .refine((r) => Object.keys(r).length > 0, { error: "give at least one language" }),
]);

const common = {
  /** Names of `providers.caep.receivers` to send to. Default all of them. */
  receivers: z.array(z.string().min(1)).min(1).optional(),
  /** `reason_admin` of the event: text (sent as `en`) or language → text. Default the decision's reason codes. */
  reason_admin: localized.optional(),
  /** `reason_user` of the event, for display to the end user. Default none. */
  reason_user: localized.optional(),
};

const sessionRevoked = z.object({ event: z.literal("session-revoked"), ...common }).strict();

const credentialChange = z
  .object({
    event: z.literal("credential-change"),
    ...common,
    /** `credential_type`: password, pin, x509, fido2-platform, fido2-roaming, fido-u2f, verifiable-credential, phone-voice, phone-sms, app, or one agreed with the receivers. Required. */
    credential_type: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, { error: `expected a credential type such as ${CREDENTIAL_TYPES.join(", ")}` }),
    /** `change_type`: create, revoke, update or delete. Default `revoke`. */
    change_type: z.enum(CHANGE_TYPES).default("revoke"),
  })
  .strict();

const assuranceLevelChange = z
  .object({
    event: z.literal("assurance-level-change"),
    ...common,
    /** `namespace` of the levels: RFC8176, RFC6711, ISO-IEC-29115, NIST-IAL, NIST-AAL, NIST-FAL or one agreed with the receivers. Default `NIST-AAL`. */
    namespace: z.string().min(1).default("NIST-AAL"),
    /** Level reported on apply (and as `previous_level` on revert). Default `nist-aal1`. */
    current_level: z.string().min(1).default("nist-aal1"),
    /** Level reported as `previous_level` on apply (and as `current_level` on revert). Default `nist-aal2`. */
    previous_level: z.string().min(1).default("nist-aal2"),
    /** `change_direction` on apply; revert sends the opposite. Default `decrease`. */
    change_direction: z.enum(CHANGE_DIRECTIONS).default("decrease"),
  })
  .strict();

const deviceComplianceChange = z.object({ event: z.literal("device-compliance-change"), ...common }).strict();

const riskLevelChange = z
  .object({
    event: z.literal("risk-level-change"),
    ...common,
    /** `principal` of the risk: USER, DEVICE, SESSION, TENANT, ORG_UNIT, GROUP, … Default from the subject's kind (user and workload → USER, device → DEVICE, session → SESSION). */
    principal: z.string().regex(/^[A-Z][A-Z0-9_]*$/, { error: "expected an upper-case principal such as USER or DEVICE" }).optional(),
  })
  .strict();

export const transmitConfigSchema = z.discriminatedUnion("event", [sessionRevoked, credentialChange, assuranceLevelChange, deviceComplianceChange, riskLevelChange]);

/** The validated `caep:transmit` entry. */
export type TransmitConfig = z.output<typeof transmitConfigSchema>;
