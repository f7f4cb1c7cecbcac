/**
 * Shared shapes of the certificate_validity check: what sources gather, what path validation
 * and revocation conclude. Certificates travel as DER bytes; the certificate model that parses
 * them lives in src/plugin/x509/.
 */
import type { CertSummary } from "../../plugin/x509/certificate.ts";

export type { CertSummary } from "../../plugin/x509/certificate.ts";

/** Stable reason codes of certificate_validity (documented in docs/checks.md). */
export const CERT_REASONS = {
  /** The certificate's notAfter is in the past. */
  CERT_EXPIRED: "CERT_EXPIRED",
  /** The certificate's notBefore is in the future. */
  CERT_NOT_YET_VALID: "CERT_NOT_YET_VALID",
  /** The certificate expires within warn_before. */
  CERT_EXPIRING: "CERT_EXPIRING",
  /** No path leads from the certificate to a configured trust anchor. */
  CERT_UNTRUSTED: "CERT_UNTRUSTED",
  /** The certificate (or one in its path) is revoked. */
  CERT_REVOKED: "CERT_REVOKED",
  /** The certificate does not name the identity the policy expects. */
  CERT_NAME_MISMATCH: "CERT_NAME_MISMATCH",
  /** A name in the path violates an issuer's name constraints. */
  CERT_NAME_CONSTRAINTS: "CERT_NAME_CONSTRAINTS",
  /** A key is too weak or of a disallowed type, or a signature algorithm is disallowed (SHA-1, MD5). */
  CERT_WEAK_KEY: "CERT_WEAK_KEY",
  /** A signature in the path does not verify. */
  CERT_BAD_SIGNATURE: "CERT_BAD_SIGNATURE",
  /** keyUsage, extendedKeyUsage or basicConstraints do not allow this use (includes path length). */
  CERT_PURPOSE: "CERT_PURPOSE",
  /** The path is longer than max_depth. */
  CERT_PATH_TOO_LONG: "CERT_PATH_TOO_LONG",
  /** A certificate carries a critical extension this validator does not understand. */
  CERT_UNKNOWN_CRITICAL_EXTENSION: "CERT_UNKNOWN_CRITICAL_EXTENSION",
  /** The trust anchor a path ends at breaks the strict profile (not a critical-cA CA with an SKI, a weak key, an EKU, a bad AKI). */
  CERT_BAD_TRUST_ANCHOR: "CERT_BAD_TRUST_ANCHOR",
  /** A serial number is negative, zero, longer than 20 octets or not minimally encoded (strict). */
  CERT_BAD_SERIAL: "CERT_BAD_SERIAL",
  /** An extension breaks the strict profile (SKI/AKI, criticality, an end entity acting as a CA, an unreadable AIA or CRL distribution point). */
  CERT_BAD_EXTENSION: "CERT_BAD_EXTENSION",
  /** A name is malformed (DNS syntax, a wildcard over a public suffix, an empty issuer) or the subject CN copies no SAN (strict). */
  CERT_BAD_NAME: "CERT_BAD_NAME",
  /** A validity time is not in a form RFC 5280 allows (strict: GeneralizedTime before 2050, notBefore after notAfter). */
  CERT_BAD_TIME: "CERT_BAD_TIME",
  /** Certificate policy processing (RFC 5280 §6.1) leaves no acceptable policy where one is required. */
  CERT_POLICY: "CERT_POLICY",
  /** The certificate could not be parsed (malformed or truncated PEM/DER). */
  CERT_MALFORMED: "CERT_MALFORMED",
  /** The certificate could not be obtained from its source (file missing, TLS handshake failed, secret absent). */
  CERT_SOURCE_UNAVAILABLE: "CERT_SOURCE_UNAVAILABLE",
  /** Revocation status could not be established (responder unreachable, bad response): a note with soft_fail, a failure without. */
  REVOCATION_UNKNOWN: "REVOCATION_UNKNOWN",
} as const;

export type CertReason = (typeof CERT_REASONS)[keyof typeof CERT_REASONS];

/** What a source gathered for one subject. */
export interface GatheredCertificate {
  /** Leaf first, then what the source presented or listed (intermediates), DER. */
  readonly chain: readonly Uint8Array[];
  /** Where it came from, for evidence: `file:/path`, `tls:host:port`, `k8s:ns/name`, `spiffe:/path`. */
  readonly origin: string;
  /** A stapled OCSP response (DER) when the TLS endpoint sent one. */
  readonly stapledOcsp?: Uint8Array;
}

export type Purpose = "server" | "client" | "any";

/** The identity the policy expects the certificate to carry. */
export interface ExpectedIdentity {
  readonly dns?: string;
  readonly ip?: string;
  readonly email?: string;
  /** A URI SAN such as a SPIFFE ID (`spiffe://trust.domain/ns/x/sa/y`). */
  readonly uri?: string;
}

/** Key and algorithm policy. Defaults: RSA ≥ 2048, EC P-256/P-384/P-521, Ed25519; no SHA-1/MD5. */
export interface KeyPolicy {
  readonly min_rsa_bits: number;
  readonly allowed_curves: readonly string[];
  readonly allow_ed25519: boolean;
  readonly allow_sha1: boolean;
}

export const DEFAULT_KEY_POLICY: KeyPolicy = { min_rsa_bits: 2048, allowed_curves: ["P-256", "P-384", "P-521"], allow_ed25519: true, allow_sha1: false };

/** `strict` (default): RFC 5280 plus the CA/B Forum Baseline Requirements; `rfc5280`: path validation as RFC 5280 §6 alone. */
export type Profile = "strict" | "rfc5280";

export interface PathValidationInput {
  readonly leaf: Uint8Array;
  readonly intermediates: readonly Uint8Array[];
  readonly roots: readonly Uint8Array[];
  /** Evaluation time. */
  readonly at: Date;
  readonly purpose: Purpose;
  /** Extra EKU names (serverAuth, clientAuth, codeSigning, …) or dotted OIDs, all required. */
  readonly extendedKeyUsage?: readonly string[];
  /** keyUsage names (digitalSignature, keyEncipherment, …), all required on the leaf. */
  readonly keyUsage?: readonly string[];
  /** Most certificates in the path including leaf and anchor. Default 8. */
  readonly maxDepth?: number;
  readonly identity?: ExpectedIdentity;
  readonly keyPolicy?: KeyPolicy;
  /** Default `strict`. */
  readonly profile?: Profile;
  /** RFC 5280 user-initial-policy-set (dotted OIDs). Default anyPolicy. */
  readonly initialPolicies?: readonly string[];
  /** RFC 5280 initial-explicit-policy: the path must be valid for one of initialPolicies. Default false. */
  readonly requireExplicitPolicy?: boolean;
  /** RFC 5280 initial-policy-mapping-inhibit. Default false. */
  readonly inhibitPolicyMapping?: boolean;
  /** RFC 5280 initial-any-policy-inhibit. Default false. */
  readonly inhibitAnyPolicy?: boolean;
}

export interface PathValidationResult {
  readonly valid: boolean;
  /** The first problem found, when not valid. */
  readonly code?: CertReason;
  readonly reason?: string;
  /** Leaf → anchor, when a path was found (also when a later rule failed on it). */
  readonly path?: readonly CertSummary[];
  /** DER of the path leaf → anchor, for revocation checking. */
  readonly pathDer?: readonly Uint8Array[];
}

export type RevocationMode = "ocsp" | "crl" | "prefer_ocsp" | "none";

export interface RevocationOptions {
  readonly mode: RevocationMode;
  /** Unreachable or unusable responder → `unknown` (true) or `fail` (false). Default true. */
  readonly soft_fail: boolean;
  /** Allow OCSP/CRL URLs that point at private, loopback or link-local addresses. Default false. */
  readonly allow_private_urls: boolean;
  /** Per request time cap (ms). Default 5000. */
  readonly timeout_ms: number;
  /** Largest OCSP response / CRL accepted (bytes). Defaults 64 KiB / 10 MiB. */
  readonly max_ocsp_bytes: number;
  readonly max_crl_bytes: number;
  /** Local CRLs (DER or PEM) used in addition to (or instead of) distribution points. */
  readonly crls?: readonly Uint8Array[];
}

/** Revocation status of one certificate (the leaf; intermediates optionally). */
export interface RevocationResult {
  readonly status: "good" | "revoked" | "unknown" | "not_checked";
  /** `ocsp:<url>`, `ocsp:stapled`, `crl:<url>`, `crl:local`. */
  readonly source?: string;
  readonly reason?: string;
  readonly revoked_at?: string;
  /** The answer may be reused until then (ms epoch): OCSP nextUpdate / CRL nextUpdate. */
  readonly valid_until?: number;
}
