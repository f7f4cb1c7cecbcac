/** Pieces shared by the CRL and OCSP checkers. */
import { VigilError, errorMessage } from "../../../errors.ts";
import type { HttpClient } from "../../../net/http.ts";
import { maskUrl } from "../../../net/http.ts";
import type { Clock } from "../../../util/clock.ts";
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { CertParseError } from "../../../plugin/x509/certificate.ts";
import { DerError } from "../../../plugin/x509/der.ts";
import { SignatureError } from "../../../plugin/x509/signature.ts";

export interface RevocationLogger {
  warn(obj: object, msg?: string): void;
}

export interface RevocationDeps {
  readonly http: HttpClient;
  readonly clock: Clock;
  readonly logger?: RevocationLogger;
}

/**
 * One request to a URL taken from the certificate under test: always through the HTTP client's
 * untrusted mode (no private or link-local targets unless allowed), capped in time and size.
 */
export async function fetchUntrusted(
  deps: RevocationDeps,
  opts: Pick<RevocationOptions, "timeout_ms" | "allow_private_urls">,
  req: { method: "GET" | "POST"; url: string; headers: Record<string, string>; body?: Uint8Array; maxBytes: number; signal?: AbortSignal },
): Promise<Buffer> {
  const res = await deps.http.request({
    method: req.method,
    url: req.url,
    headers: req.headers,
    ...(req.body ? { body: req.body } : {}),
    timeoutMs: opts.timeout_ms,
    maxResponseBytes: req.maxBytes,
    ...(req.signal ? { signal: req.signal } : {}),
    untrusted: { allowPrivate: opts.allow_private_urls },
  });
  return res.body;
}

/** Clock skew tolerated on thisUpdate (a responder or CA whose clock runs a little ahead). */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** How long an answer without nextUpdate is cached. */
export const DEFAULT_CACHE_TTL_MS = 60 * 60_000;
/** Bounded caches: entries, and for CRLs total bytes. */
export const CACHE_MAX_ENTRIES = 256;
export const CRL_CACHE_MAX_BYTES = 64 * 1024 * 1024;

/** CRLReason names (RFC 5280 §5.3.1); 7 is unused. */
const CRL_REASON_NAMES: readonly (string | undefined)[] = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  undefined,
  "removeFromCRL",
  "privilegeWithdrawn",
  "aACompromise",
];

export function crlReasonName(code: number | undefined): string | undefined {
  if (code === undefined) return undefined;
  return CRL_REASON_NAMES[code] ?? `reason(${code})`;
}

export function unknown(source: string | undefined, reason: string): RevocationResult {
  return source === undefined ? { status: "unknown", reason } : { status: "unknown", source, reason };
}

export function isDefinitive(r: RevocationResult): boolean {
  return r.status === "good" || r.status === "revoked";
}

/** A URL from a certificate, as reasons and sources may show it. */
export function shownUrl(url: string): string {
  return maskUrl(url);
}

/** http and https only: ldap, file and the rest are ignored. */
export function isHttpUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

/** One line saying why a fetch or a parse failed, safe to show. */
export function describeError(err: unknown): string {
  if (err instanceof VigilError) {
    if (err.code === "VIGIL_ERR_HOSTILE_URL") return `refused hostile URL target: ${err.message}`;
    return err.message;
  }
  if (err instanceof CertParseError) return err.message;
  if (err instanceof DerError) return `malformed DER: ${err.message}`;
  if (err instanceof SignatureError) return err.message;
  return errorMessage(err);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
