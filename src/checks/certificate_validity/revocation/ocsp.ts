/**
 * OCSP revocation checking (RFC 6960, nonce per RFC 8954, GET per RFC 5019).
 *
 * A request carries one CertID (SHA-1 of the issuer's name and key: the identifier the standard
 * fixes, not a signature) and a random nonce. It goes as a GET when its URL-encoded base64 form is
 * under 255 bytes (RFC 5019 §5: what responders and their caches expect), else as a POST, to the
 * certificate's AIA responder.
 *
 * A response is believed only when it is `successful`, its BasicOCSPResponse signature verifies
 * with the issuer's key or with a delegated responder certificate it carries (issued and signed by
 * the issuer, id-kp-OCSPSigning, within its validity, and either carrying id-pkix-ocsp-nocheck or
 * shown not revoked by the issuer's CRL), it has a SingleResponse for exactly our CertID, an echoed
 * nonce equals ours, thisUpdate is not ahead of the clock beyond 5 minutes and nextUpdate has not
 * passed. Good and revoked answers are cached until nextUpdate (1 h without one).
 */
import { createHash, randomBytes } from "node:crypto";
import { BasicOCSPResponse, CertID, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, ResponseData, TBSRequest, id_pkix_ocsp_basic, id_pkix_ocsp_nonce } from "@peculiar/asn1-ocsp";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, Extension } from "@peculiar/asn1-x509";
import { ParsedCertificate } from "../../../plugin/x509/certificate.ts";
import { DerError, TAG, bitStringBytes, children, encodeTlv, expectTag, normaliseSerialHex, parseDer, raw, unwrapExplicit } from "../../../plugin/x509/der.ts";
import { namesMatch } from "../../../plugin/x509/name.ts";
import { HASHES, OID } from "../../../plugin/x509/oids.ts";
import { SignatureError, verifySignature } from "../../../plugin/x509/signature.ts";
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { ExpiringLru } from "./cache.ts";
import { CACHE_MAX_ENTRIES, CLOCK_SKEW_MS, crlReasonName, DEFAULT_CACHE_TTL_MS, describeError, fetchUntrusted, isDefinitive, isHttpUrl, iso, shownUrl, unknown, type RevocationDeps } from "./common.ts";

/** Without nextUpdate (and without a matching nonce proving freshness) a response older than this is refused. */
export const MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 24 * 60 * 60_000;
/** RFC 5019 §5: requests whose URL-encoded base64 is shorter than this go as GET. */
export const GET_MAX_ENCODED = 255;
const NONCE_BYTES = 32;
const DER_NULL = Uint8Array.from([0x05, 0x00]);

/**
 * Is this delegated responder certificate (without id-pkix-ocsp-nocheck) not revoked? The OCSP
 * checker asks the CRL checker; undefined means good, a string why not.
 */
export type ResponderStatus = (responder: ParsedCertificate, issuer: ParsedCertificate, signal?: AbortSignal) => Promise<string | undefined>;

export interface OcspRequestBuilt {
  readonly der: Buffer;
  /** The nonce octets (inside the extension's OCTET STRING). */
  readonly nonce: Buffer;
}

const digest = (alg: string, data: Uint8Array): Buffer => createHash(alg).update(data).digest();

function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function bytes(b: ArrayBuffer | ArrayBufferView): Buffer {
  return b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Builds an OCSPRequest for `cert` issued by `issuer`, with a fresh random nonce. */
export function buildOcspRequest(cert: ParsedCertificate, issuer: ParsedCertificate, nonce: Buffer = randomBytes(NONCE_BYTES)): OcspRequestBuilt {
  const certId = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: OID.sha1, parameters: toArrayBuffer(DER_NULL) }),
    issuerNameHash: new OctetString(digest("sha1", cert.issuer.der)),
    issuerKeyHash: new OctetString(digest("sha1", issuer.publicKeyBits)),
    serialNumber: toArrayBuffer(cert.serialBytes),
  });
  const nonceExt = new Extension({ extnID: id_pkix_ocsp_nonce, critical: false, extnValue: new OctetString(encodeTlv(TAG.OCTET_STRING, nonce)) });
  const request = new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })], requestExtensions: [nonceExt] }) });
  return { der: Buffer.from(AsnConvert.serialize(request)), nonce };
}

/** The GET URL for `request` at responder `url` (RFC 5019 §5), or undefined when it is too long for GET. */
export function ocspGetUrl(url: string, request: Uint8Array): string | undefined {
  const encoded = encodeURIComponent(Buffer.from(request).toString("base64"));
  if (encoded.length >= GET_MAX_ENCODED) return undefined;
  return `${url}${url.endsWith("/") ? "" : "/"}${encoded}`;
}

/** Does `id` name `cert` as issued by `issuer`? Any hash algorithm the responder chose among SHA-1/2. */
export function certIdMatches(id: CertID, cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  const hash = HASHES[id.hashAlgorithm.algorithm];
  if (!hash || hash.startsWith("sha3")) return false;
  const nameHash = bytes(id.issuerNameHash.buffer);
  if (!nameHash.equals(digest(hash, cert.issuer.der)) && !nameHash.equals(digest(hash, issuer.subject.der))) return false;
  if (!bytes(id.issuerKeyHash.buffer).equals(digest(hash, issuer.publicKeyBits))) return false;
  return normaliseSerialHex(bytes(id.serialNumber).toString("hex")) === cert.serial;
}

/** Why `responder` may not sign OCSP responses for `issuer` at `now`, or undefined when it may (RFC 6960 §4.2.2.2). */
export function delegateProblem(responder: ParsedCertificate, issuer: ParsedCertificate, now: number): string | undefined {
  if (!(responder.eku ?? []).includes(OID.kpOcspSigning)) return "responder certificate lacks the id-kp-OCSPSigning extended key usage";
  if (!namesMatch(responder.issuer, issuer.subject)) return "responder certificate is not issued by the certificate's issuer";
  let signed: boolean;
  try {
    signed = verifySignature(responder.signatureAlgorithmDer, responder.tbs, responder.signature, issuer.publicKey);
  } catch (err) {
    return `responder certificate signature: ${describeError(err)}`;
  }
  if (!signed) return "responder certificate is not signed by the certificate's issuer";
  if (!Number.isFinite(responder.notBefore) || !Number.isFinite(responder.notAfter)) return "responder certificate has an unreadable validity period";
  if (now < responder.notBefore) return "responder certificate is not yet valid";
  if (now > responder.notAfter) return "responder certificate has expired";
  if (responder.keyUsage && !responder.keyUsage.includes("digitalSignature")) return "responder certificate's keyUsage does not allow digitalSignature";
  return undefined;
}

interface BasicEnvelope {
  readonly tbsRaw: Buffer;
  readonly sigAlgRaw: Buffer;
  readonly signature: Buffer;
  readonly certs: readonly Buffer[];
}

/** The signed bytes of a BasicOCSPResponse exactly as encoded (the schema cannot give them back). */
function parseBasicEnvelope(der: Buffer): BasicEnvelope {
  AsnConvert.parse(der, BasicOCSPResponse);
  const [tbs, sigAlg, sig, certsField, extra] = children(expectTag(parseDer(der), TAG.SEQUENCE, "BasicOCSPResponse"));
  if (!tbs || !sigAlg || !sig || extra) throw new DerError("BasicOCSPResponse: bad fields");
  let certs: Buffer[] = [];
  if (certsField) {
    if (certsField.tag !== 0xa0) throw new DerError("BasicOCSPResponse: unexpected field");
    certs = children(expectTag(unwrapExplicit(certsField), TAG.SEQUENCE, "certs")).map(raw);
  }
  return { tbsRaw: raw(expectTag(tbs, TAG.SEQUENCE, "ResponseData")), sigAlgRaw: raw(expectTag(sigAlg, TAG.SEQUENCE, "signatureAlgorithm")), signature: bitStringBytes(sig), certs };
}

/** Finds who signed the response: the issuer itself or an authorized delegate; a problem otherwise. */
async function checkSigner(env: BasicEnvelope, issuer: ParsedCertificate, now: number, responderStatus: ResponderStatus | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
  try {
    if (verifySignature(env.sigAlgRaw, env.tbsRaw, env.signature, issuer.publicKey)) return undefined;
  } catch (err) {
    if (err instanceof SignatureError) return `OCSP response signature: ${err.message}`;
    throw err;
  }
  const notes: string[] = [];
  for (const certDer of env.certs) {
    let cert: ParsedCertificate;
    try {
      cert = new ParsedCertificate(certDer);
    } catch (err) {
      notes.push(`unparseable responder certificate (${describeError(err)})`);
      continue;
    }
    let signs: boolean;
    try {
      signs = verifySignature(env.sigAlgRaw, env.tbsRaw, env.signature, cert.publicKey);
    } catch {
      signs = false;
    }
    if (!signs) continue;
    const problem = delegateProblem(cert, issuer, now);
    if (problem !== undefined) {
      notes.push(problem);
      continue;
    }
    // RFC 6960 §4.2.2.2.1: without id-pkix-ocsp-nocheck the responder's own status must be checked.
    if (!cert.ocspNoCheck) {
      const why = responderStatus ? await responderStatus(cert, issuer, signal) : "no CRL checker to ask";
      if (why !== undefined) {
        notes.push(`responder certificate lacks id-pkix-ocsp-nocheck and its own status is not established (${why})`);
        continue;
      }
    }
    return undefined;
  }
  const why = notes.length > 0 ? `: ${notes.join("; ")}` : "";
  return `OCSP response signature does not verify with the issuer's key or an authorized responder's${why}`;
}

export interface EvaluateOptions {
  /** The nonce the request carried (none for a stapled response, judged without one). */
  readonly nonce?: Buffer;
  readonly responderStatus?: ResponderStatus;
  readonly signal?: AbortSignal;
}

/** Judges an OCSP response (DER) for `cert` issued by `issuer`. Never throws. */
export async function evaluateOcspResponse(der: Buffer, cert: ParsedCertificate, issuer: ParsedCertificate, now: number, source: string, options: EvaluateOptions = {}): Promise<RevocationResult> {
  let response: OCSPResponse;
  try {
    parseDer(der);
    response = AsnConvert.parse(der, OCSPResponse);
  } catch (err) {
    return unknown(source, `OCSP response is malformed: ${describeError(err)}`);
  }
  if (response.responseStatus !== OCSPResponseStatus.successful) {
    return unknown(source, `OCSP responder answered ${OCSPResponseStatus[response.responseStatus] ?? `status ${response.responseStatus}`}`);
  }
  if (!response.responseBytes) return unknown(source, "OCSP response has no responseBytes");
  if (response.responseBytes.responseType !== id_pkix_ocsp_basic) return unknown(source, `OCSP response type ${response.responseBytes.responseType} is not supported`);

  let env: BasicEnvelope;
  let data: ResponseData;
  try {
    env = parseBasicEnvelope(bytes(response.responseBytes.response.buffer));
    data = AsnConvert.parse(env.tbsRaw, ResponseData);
  } catch (err) {
    return unknown(source, `OCSP response is malformed: ${describeError(err)}`);
  }
  let signer: string | undefined;
  try {
    signer = await checkSigner(env, issuer, now, options.responderStatus, options.signal);
  } catch (err) {
    return unknown(source, `OCSP response rejected: ${describeError(err)}`);
  }
  if (signer) return unknown(source, signer);

  const single = data.responses.find((r) => certIdMatches(r.certID, cert, issuer));
  if (!single) return unknown(source, "OCSP response does not cover the certificate (no matching CertID)");

  let nonceMatched = false;
  if (options.nonce) {
    const echoed = (data.responseExtensions ?? []).find((e) => e.extnID === id_pkix_ocsp_nonce);
    if (echoed) {
      const got = bytes(echoed.extnValue.buffer);
      // RFC 8954 wraps the nonce in an OCTET STRING; some older responders echo it bare.
      nonceMatched = got.equals(encodeTlv(TAG.OCTET_STRING, options.nonce)) || got.equals(options.nonce);
      if (!nonceMatched) return unknown(source, "OCSP response nonce does not match the request's (replayed or misdirected response)");
    }
  }

  const thisUpdate = single.thisUpdate.getTime();
  const nextUpdate = single.nextUpdate?.getTime();
  if (Number.isNaN(thisUpdate) || (nextUpdate !== undefined && Number.isNaN(nextUpdate))) return unknown(source, "OCSP response has an unreadable time");
  if (thisUpdate > now + CLOCK_SKEW_MS) return unknown(source, `OCSP response thisUpdate ${iso(thisUpdate)} is in the future`);
  if (nextUpdate !== undefined && nextUpdate <= now) return unknown(source, `OCSP response is stale: nextUpdate ${iso(nextUpdate)} has passed`);
  if (nextUpdate === undefined && !nonceMatched && thisUpdate < now - MAX_AGE_WITHOUT_NEXT_UPDATE_MS) {
    return unknown(source, `OCSP response without nextUpdate is too old (thisUpdate ${iso(thisUpdate)})`);
  }
  const validUntil = nextUpdate ?? now + DEFAULT_CACHE_TTL_MS;

  const status = single.certStatus;
  if (status.good !== undefined) return { status: "good", source, valid_until: validUntil };
  if (status.revoked) {
    const reason = crlReasonName(status.revoked.revocationReason?.reason);
    return { status: "revoked", source, revoked_at: iso(status.revoked.revocationTime.getTime()), ...(reason ? { reason } : {}), valid_until: validUntil };
  }
  return unknown(source, "OCSP responder does not know the certificate (status unknown)");
}

export class OcspChecker {
  readonly #opts: RevocationOptions;
  readonly #deps: RevocationDeps;
  readonly #cache = new ExpiringLru<RevocationResult>(CACHE_MAX_ENTRIES);
  readonly #responderStatus: ResponderStatus | undefined;

  constructor(opts: RevocationOptions, deps: RevocationDeps, responderStatus?: ResponderStatus) {
    this.#opts = opts;
    this.#deps = deps;
    this.#responderStatus = responderStatus;
  }

  /** Judges a stapled response (no nonce); never throws. */
  async checkStapled(der: Uint8Array, cert: ParsedCertificate, issuer: ParsedCertificate, signal?: AbortSignal): Promise<RevocationResult> {
    return evaluateOcspResponse(Buffer.from(der), cert, issuer, this.#deps.clock.now(), "ocsp:stapled", {
      ...(this.#responderStatus ? { responderStatus: this.#responderStatus } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  /** Asks the certificate's OCSP responders in turn; the first definitive answer wins. */
  async check(cert: ParsedCertificate, issuer: ParsedCertificate, signal?: AbortSignal): Promise<RevocationResult> {
    const cacheKey = `${issuer.spkiHash}\n${cert.serial}`;
    const cached = this.#cache.get(cacheKey, this.#deps.clock.now());
    if (cached) return cached;
    const urls = (cert.authorityInfoAccess?.ocsp ?? []).filter(isHttpUrl);
    if (urls.length === 0) return unknown(undefined, "the certificate names no http(s) OCSP responder");
    const notes: string[] = [];
    let lastSource: string | undefined;
    for (const url of urls) {
      if (signal?.aborted) {
        notes.push("aborted");
        break;
      }
      const r = await this.query(url, cert, issuer, signal);
      if (isDefinitive(r)) {
        const now = this.#deps.clock.now();
        this.#cache.set(cacheKey, r, r.valid_until ?? now + DEFAULT_CACHE_TTL_MS, now);
        return r;
      }
      notes.push(r.reason ?? "unknown");
      lastSource = r.source;
    }
    return unknown(lastSource, notes.join("; "));
  }

  /** One request to one responder; never throws. */
  async query(url: string, cert: ParsedCertificate, issuer: ParsedCertificate, signal?: AbortSignal): Promise<RevocationResult> {
    const source = `ocsp:${shownUrl(url)}`;
    let request: OcspRequestBuilt;
    try {
      request = buildOcspRequest(cert, issuer);
    } catch (err) {
      return unknown(source, `OCSP request could not be built: ${describeError(err)}`);
    }
    const getUrl = ocspGetUrl(url, request.der);
    let body: Buffer;
    try {
      body = await fetchUntrusted(this.#deps, this.#opts, {
        ...(getUrl ? { method: "GET" as const, url: getUrl, headers: { accept: "application/ocsp-response" } } : { method: "POST" as const, url, headers: { "content-type": "application/ocsp-request", accept: "application/ocsp-response" }, body: request.der }),
        maxBytes: this.#opts.max_ocsp_bytes,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      return unknown(source, `OCSP request failed: ${describeError(err)}`);
    }
    return evaluateOcspResponse(body, cert, issuer, this.#deps.clock.now(), source, {
      nonce: request.nonce,
      ...(this.#responderStatus ? { responderStatus: this.#responderStatus } : {}),
      ...(signal ? { signal } : {}),
    });
  }
}

