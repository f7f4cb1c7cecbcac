/** The configuration of certificate_validity and what a subject's certificate must be issued to. */
import { isIP } from "node:net";
import { z } from "zod";
import type { Subject } from "../../policy/model.ts";
import { duration, timerDuration } from "../../plugin/schema.ts";
import { sourceSchema } from "./sources/schema.ts";
import { DEFAULT_KEY_POLICY, type ExpectedIdentity } from "./types.ts";

const keyPolicySchema = z
  .object({
    min_rsa_bits: z.number().int().min(1024).default(DEFAULT_KEY_POLICY.min_rsa_bits),
    allowed_curves: z.array(z.enum(["P-256", "P-384", "P-521"])).default([...DEFAULT_KEY_POLICY.allowed_curves] as ("P-256" | "P-384" | "P-521")[]),
    allow_ed25519: z.boolean().default(true),
    allow_sha1: z.boolean().default(false),
  })
  .strict();

export const certificateValidityConfigSchema = z
  .object({
    /** PEM files (globs allowed) holding the trust anchors. Relative to the config file. */
    trust_bundle: z.union([z.string(), z.array(z.string())]).transform((v) => (typeof v === "string" ? [v] : v)),
    /** Extra intermediate certificates (PEM files, globs) to build paths with. */
    intermediates: z.array(z.string()).default([]),
    /** Where each subject's certificate comes from; paths and addresses are templates (`{{id}}`, `{{attributes.x}}`). */
    source: sourceSchema,
    /** A certificate expiring within this is `warn` (risk medium). Default 14d. */
    warn_before: duration().prefault("14d"),
    /** What the certificate must be good for: `server`, `client` or `any` (default). */
    purpose: z.enum(["server", "client", "any"]).default("any"),
    /** Match the subject's `identity` (SPIFFE ID, DNS name, IP, email) against the SANs. Default true. */
    match_identity: z.boolean().default(true),
    /** Extra extended key usages required (names like serverAuth, or dotted OIDs). */
    extended_key_usage: z.array(z.string()).default([]),
    /** keyUsage names required on the leaf. */
    key_usage: z.array(z.string()).default([]),
    /** Most certificates in a path, leaf and anchor included. Default 8. */
    max_depth: z.number().int().min(1).max(20).default(8),
    key_policy: keyPolicySchema.prefault({}),
    /**
     * `strict` (default): RFC 5280 and the CA/B Forum Baseline Requirements for every certificate
     * of the path, the trust anchor included where a rule says so (docs/checks.md lists the rules);
     * `rfc5280`: path validation as RFC 5280 §6 alone, for private PKIs that predate the rules.
     */
    profile: z.enum(["strict", "rfc5280"]).default("strict"),
    /** RFC 5280 user-initial-policy-set: certificate policy OIDs acceptable for the path. Default anyPolicy. */
    initial_policies: z.array(z.string().regex(/^[0-2](\.(0|[1-9]\d*))+$/, { error: "a dotted OID such as 2.23.140.1.2.1" })).min(1).default(["2.5.29.32.0"]),
    /** RFC 5280 initial-explicit-policy: the path must be valid for one of initial_policies. Default false. */
    require_explicit_policy: z.boolean().default(false),
    /** RFC 5280 initial-policy-mapping-inhibit: policy mappings are not honoured. Default false. */
    inhibit_policy_mapping: z.boolean().default(false),
    /** RFC 5280 initial-any-policy-inhibit: anyPolicy in a certificate does not match every policy. Default false. */
    inhibit_any_policy: z.boolean().default(false),
    revocation: z
      .object({
        /** `ocsp`, `crl`, `prefer_ocsp` (default: stapled, then OCSP, then CRL) or `none`. */
        mode: z.enum(["ocsp", "crl", "prefer_ocsp", "none"]).default("prefer_ocsp"),
        /**
         * Revocation status that cannot be established (responder unreachable, no CRL, bad answer):
         * true (default) lets the path decide and notes REVOCATION_UNKNOWN; false fails the check.
         */
        soft_fail: z.boolean().default(true),
        /** OCSP/CRL URLs come from the certificate under test: private, loopback and link-local targets are refused unless true. */
        allow_private_urls: z.boolean().default(false),
        timeout: timerDuration().prefault("5s"),
        max_ocsp_bytes: z.number().int().min(1024).default(64 * 1024),
        max_crl_bytes: z.number().int().min(1024).default(10 * 1024 * 1024),
        /** Local CRL files (DER or PEM), checked before distribution points. */
        crl_files: z.array(z.string()).default([]),
      })
      .strict()
      .prefault({}),
    /** Subjects checked at once. Default 8. */
    concurrency: z.number().int().min(1).max(256).default(8),
  })
  .strict();

export type CertificateValidityConfig = z.output<typeof certificateValidityConfigSchema>;

/**
 * The part of the configuration that decides a verdict, without where certificates come from:
 * `vigil cert verify` parses its flags with it, so the CLI and the check share every default.
 */
export const verifyConfigSchema = certificateValidityConfigSchema.omit({ source: true, trust_bundle: true, intermediates: true, concurrency: true, match_identity: true });

/** What identity a subject's certificate must carry, from its `identity`. */
export function expectedIdentity(subject: Subject): ExpectedIdentity | undefined {
  const id = subject.identity;
  if (!id) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(id)) return { uri: id };
  if (isIP(id)) return { ip: id };
  if (id.includes("@")) return { email: id };
  return { dns: id };
}
