/**
 * Validation of a received Security Event Token (RFC 8417) as SSF 1.0 profiles it, with the RFC 8935
 * error code each failure is answered with:
 *
 * - the compact JWS and its protected header: `typ` `secevent+jwt` (explicit typing), an allowed
 *   `alg` (never `none`, never HMAC), no `crit` → `invalid_request`;
 * - the key (`kid`) from the transmitter's JWKS and the signature → `invalid_key`;
 * - `iss` → `invalid_issuer`; `aud` → `invalid_audience`;
 * - no `sub`, no `exp`, a `jti`, an `iat` within the clock skew and the replay window, exactly one
 *   event (the CAEP interoperability profile), a well-formed subject → `invalid_request`.
 */
import { VigilError } from "../../errors.ts";
import { cryptoKey, KeyNotFound, type JwksCache } from "./keys.ts";
import { parseSubject, SubjectError, type ParsedSubject } from "./subject.ts";

/** The error codes of RFC 8935 §2.4 (IANA "Security Event Token Error Codes") and SSF's `invalid_state`. */
export const SET_ERROR_CODES = ["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience", "authentication_failed", "access_denied", "invalid_state"] as const;
export type SetErrorCode = (typeof SET_ERROR_CODES)[number];

/** A refused SET: the code the transmitter gets and a description safe to send back. */
export class SetError extends Error {
  readonly err: SetErrorCode;
  constructor(err: SetErrorCode, description: string) {
    super(description);
    this.name = "SetError";
    this.err = err;
  }
}

export interface ValidatedSet {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly jti: string;
  /** `iat`, epoch seconds. */
  readonly iat: number;
  readonly txn: string | undefined;
  readonly eventUri: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** `sub_id`, else the event's own `subject` (CAEP and RISC events that predate `sub_id`); undefined when neither is there. */
  readonly subject: ParsedSubject | undefined;
}

export interface SetRules {
  readonly issuer: string;
  /** `aud` values accepted; undefined while the stream's audience is not known. */
  readonly audiences: readonly string[] | undefined;
  readonly algorithms: readonly string[];
  readonly keys: JwksCache;
  /** Epoch ms. */
  readonly now: number;
  readonly clockSkewMs: number;
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  /** `iat` (epoch seconds) at or before which `jti`s may have been forgotten: such SETs are refused. */
  readonly forgottenBefore?: number;
}

const JWS_RE = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;
/** jose, loaded with the first SET: an agent without transmitters never pays for it. */
let jose: Promise<typeof import("jose")> | undefined;
const MAX_JTI = 256;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function decodeJson(part: string, what: string): Record<string, unknown> {
  // A base64url length of 4n+1 cannot come from any byte string; Buffer would decode it silently.
  if (part.length % 4 === 1) throw new SetError("invalid_request", `the ${what} is not valid base64url`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(part, "base64url"));
  } catch {
    throw new SetError("invalid_request", `the ${what} is not UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SetError("invalid_request", `the ${what} is not JSON`);
  }
  if (!isObject(value)) throw new SetError("invalid_request", `the ${what} is not a JSON object`);
  return value;
}

/** The media type in `typ` (RFC 7515 §4.1.9: `application/` may be left out), lower-cased. */
function mediaType(typ: unknown): string | undefined {
  if (typeof typ !== "string") return undefined;
  const t = typ.trim().toLowerCase();
  return t.startsWith("application/") ? t.slice("application/".length) : t;
}

/**
 * Validates a SET; resolves with its parts or throws a `SetError`. A transient `VigilError` means the
 * keys could not be fetched (answer 503 so the transmitter tries again later).
 */
export async function validateSet(raw: string, rules: SetRules): Promise<ValidatedSet> {
  if (raw.length > rules.maxBytes) throw new SetError("invalid_request", `the SET is larger than ${rules.maxBytes} bytes`);
  const jws = raw.trim();
  const m = JWS_RE.exec(jws);
  if (!m) throw new SetError("invalid_request", "the body is not a signed compact JWS (three base64url parts)");
  const header = decodeJson(m[1]!, "protected header");
  if (mediaType(header.typ) !== "secevent+jwt") throw new SetError("invalid_request", "the JOSE header typ is not secevent+jwt");
  if (header.crit !== undefined) throw new SetError("invalid_request", "the JOSE header has crit parameters vigil does not understand");
  const alg = header.alg;
  if (typeof alg !== "string" || alg.toLowerCase() === "none") throw new SetError("invalid_request", "the SET is not signed (alg none or missing)");
  if (!rules.algorithms.includes(alg)) throw new SetError("invalid_key", `signature algorithm ${alg.slice(0, 16)} is not accepted (accepted: ${rules.algorithms.join(", ")})`);
  const kid = typeof header.kid === "string" ? header.kid : undefined;
  if (header.kid !== undefined && kid === undefined) throw new SetError("invalid_request", "the JOSE header kid is not a string");

  let key;
  try {
    key = await rules.keys.key(kid, alg);
  } catch (err) {
    if (err instanceof KeyNotFound) throw new SetError("invalid_key", err.message);
    throw err;
  }
  const { compactVerify } = await (jose ??= import("jose"));
  try {
    await compactVerify(jws, await cryptoKey(key, alg), { algorithms: [alg] });
  } catch {
    throw new SetError("invalid_key", "the signature does not verify with the transmitter's key");
  }

  const claims = decodeJson(m[2]!, "claims set");
  if (claims.iss !== rules.issuer) throw new SetError("invalid_issuer", "iss is not the transmitter's issuer");
  const aud = claims.aud;
  const auds = typeof aud === "string" ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === "string") ? (aud as string[]) : undefined;
  if (auds === undefined || auds.length === 0) throw new SetError("invalid_audience", "aud is missing or not a string or list of strings");
  if (rules.audiences === undefined) throw new SetError("invalid_audience", "the stream's audience is not known yet");
  if (!auds.some((a) => rules.audiences!.includes(a))) throw new SetError("invalid_audience", "aud does not name this receiver");
  if (claims.sub !== undefined) throw new SetError("invalid_request", "a SET must not carry sub (SSF 1.0 §4.1.2); the subject belongs in sub_id");
  if (claims.exp !== undefined) throw new SetError("invalid_request", "a SET must not carry exp (SSF 1.0 §4.1.8)");
  const jti = claims.jti;
  if (typeof jti !== "string" || jti === "" || jti.length > MAX_JTI) throw new SetError("invalid_request", `jti must be a string of 1 to ${MAX_JTI} characters`);
  const iat = claims.iat;
  if (typeof iat !== "number" || !Number.isFinite(iat)) throw new SetError("invalid_request", "iat must be a number");
  if (iat * 1000 > rules.now + rules.clockSkewMs) throw new SetError("invalid_request", "iat is in the future");
  if (iat * 1000 < rules.now - rules.maxAgeMs || (rules.forgottenBefore !== undefined && iat <= rules.forgottenBefore)) {
    throw new SetError("invalid_request", "iat is older than the replay window: a repeat of this SET could not be recognised");
  }
  const events = claims.events;
  if (!isObject(events)) throw new SetError("invalid_request", "events must be an object");
  const uris = Object.keys(events);
  if (uris.length !== 1) throw new SetError("invalid_request", `events must hold exactly one event, not ${uris.length}`);
  const eventUri = uris[0]!;
  const payload = events[eventUri];
  if (!isObject(payload)) throw new SetError("invalid_request", "the event must be an object");
  const txn = claims.txn;
  if (txn !== undefined && typeof txn !== "string" && typeof txn !== "number") throw new SetError("invalid_request", "txn must be a string");

  let subject: ParsedSubject | undefined;
  try {
    if (claims.sub_id !== undefined) subject = parseSubject(claims.sub_id, "sub_id");
    else if (payload.subject !== undefined) subject = parseSubject(payload.subject, "subject");
  } catch (err) {
    if (err instanceof SubjectError) throw new SetError("invalid_request", err.message);
    throw err;
  }
  return {
    alg,
    kid,
    jti,
    iat: Math.floor(iat),
    txn: txn === undefined ? undefined : String(txn).slice(0, 256),
    eventUri,
    payload,
    subject,
  };
}

/** True for the failure that means "no keys yet, try later" rather than a bad SET. */
export function keysUnavailable(err: unknown): boolean {
  return err instanceof VigilError && err.code === "VIGIL_ERR_UPSTREAM_TRANSIENT";
}
