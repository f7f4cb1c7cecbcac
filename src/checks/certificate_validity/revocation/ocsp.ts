/**
 * OCSP revocation checking (RFC 6960, nonce per RFC 8954).
 *
 * A request carries one CertID (SHA-1 of the issuer's name and key: the identifier the standard
 * fixes, not a signature) and a random nonce, POSTed to the certificate's AIA responder. A response
 * is believed only when it is `successful`, its BasicOCSPResponse signature verifies with the
 * issuer's key or with a delegated responder certificate it carries (issued and signed by the
 * issuer, id-kp-OCSPSigning, within its validity), it has a SingleResponse for exactly our CertID,
 * an echoed nonce equals ours, thisUpdate is not ahead of the clock beyond 5 minutes and nextUpdate
 * has not passed. Good and revoked answers are cached until nextUpdate (1 h without one).
 */
import { randomBytes } from "node:crypto";
import { CertID, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, ResponseData, TBSRequest, id_pkix_ocsp_basic, id_pkix_ocsp_nonce } from "@peculiar/asn1-ocsp";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, Extension } from "@peculiar/asn1-x509";
import type { RevocationOptions, RevocationResult } from "../types.ts";
import { ExpiringLru } from "./cache.ts";
import {
  CACHE_MAX_ENTRIES,
  CLOCK_SKEW_MS,
  crlReasonName,
  DEFAULT_CACHE_TTL_MS,
  describeError,
  fetchUntrusted,
  isDefinitive,
  isHttpUrl,
  iso,
  shownUrl,
  unknown,
  type RevocationDeps,
} from "./common.ts";
import { bitStringBytes, children, ctx, DerError, encodeTlv, expectTag, normaliseSerialHex, parseDer, raw, TAG, unwrapExplicit } from "../der.ts";
import {
  digest,
  extendedKeyUsages,
  hashName,
  KEY_USAGE,
  keyId,
  keyUsageAllows,
  namesEqual,
  OID,
  ocspUrls,
  parseCert,
  SignatureError,
  verifySigned,
  type CertInfo,
} from "./x509.ts";

/** Without nextUpdate (and without a matching nonce proving freshness) a response older than this is refused. */
export const MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 24 * 60 * 60_000;
const NONCE_BYTES = 32;
const DER_NULL = Uint8Array.from([0x05, 0x00]);

export interface OcspRequestBuilt {
  readonly der: Buffer;
  /** The nonce octets (inside the extension's OCTET STRING). */
  readonly nonce: Buffer;
}

/** Builds an OCSPRequest for `leaf` issued by `issuer`, with a fresh random nonce. */
export function buildOcspRequest(leaf: CertInfo, issuer: CertInfo, nonce: Buffer = randomBytes(NONCE_BYTES)): OcspRequestBuilt {
  const certId = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: OID.sha1, parameters: toArrayBuffer(DER_NULL) }),
    issuerNameHash: new OctetString(digest("sha1", leaf.issuerRaw)),
    issuerKeyHash: new OctetString(digest("sha1", issuer.publicKeyBits)),
    serialNumber: toArrayBuffer(leaf.serialBytes),
  });
  const nonceExt = new Extension({ extnID: id_pkix_ocsp_nonce, critical: false, extnValue: new OctetString(encodeTlv(TAG.OCTET_STRING, nonce)) });
  const request = new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })], requestExtensions: [nonceExt] }) });
  return { der: Buffer.from(AsnConvert.serialize(request)), nonce };
}

function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function bytes(b: ArrayBuffer | ArrayBufferView): Buffer {
  return b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Does `id` name `leaf` as issued by `issuer`? Any hash algorithm the responder chose among SHA-1/2. */
export function certIdMatches(id: CertID, leaf: CertInfo, issuer: CertInfo): boolean {
  const hash = hashName(id.hashAlgorithm.algorithm);
  if (!hash) return false;
  const nameHash = bytes(id.issuerNameHash.buffer);
  if (!nameHash.equals(digest(hash, leaf.issuerRaw)) && !nameHash.equals(digest(hash, issuer.subjectRaw))) return false;
  if (!bytes(id.issuerKeyHash.buffer).equals(digest(hash, issuer.publicKeyBits))) return false;
  return normaliseSerialHex(bytes(id.serialNumber).toString("hex")) === leaf.serialHex;
}

/** Why `cert` may not sign OCSP responses for `issuer` at `now`, or undefined when it may (RFC 6960 §4.2.2.2). */
export function delegateProblem(cert: CertInfo, issuer: CertInfo, now: number): string | undefined {
  if (!(extendedKeyUsages(cert) ?? []).includes(OID.kpOcspSigning)) return "responder certificate lacks the id-kp-OCSPSigning extended key usage";
  if (!namesEqual(cert.issuerRaw, issuer.subjectRaw)) return "responder certificate is not issued by the certificate's issuer";
  let signed: boolean;
  try {
    signed = verifySigned(cert.sigAlgRaw, cert.tbsRaw, cert.signature, issuer.publicKey);
  } catch (err) {
    return `responder certificate signature: ${describeError(err)}`;
  }
  if (!signed) return "responder certificate is not signed by the certificate's issuer";
  if (now < cert.notBefore) return "responder certificate is not yet valid";
  if (now > cert.notAfter) return "responder certificate has expired";
  if (!keyUsageAllows(cert, KEY_USAGE.digitalSignature)) return "responder certificate's keyUsage does not allow digitalSignature";
  return undefined;
}

interface BasicEnvelope {
  readonly tbsRaw: Buffer;
  readonly sigAlgRaw: Buffer;
  readonly signature: Buffer;
  readonly certs: readonly Buffer[];
}

function parseBasicEnvelope(der: Buffer): BasicEnvelope {
  const [tbs, sigAlg, sig, certsField, extra] = children(expectTag(parseDer(der), TAG.SEQUENCE, "BasicOCSPResponse"));
  if (!tbs || !sigAlg || !sig || extra) throw new DerError("BasicOCSPResponse: bad fields");
  let certs: Buffer[] = [];
  if (certsField) {
    if (certsField.tag !== ctx(0)) throw new DerError("BasicOCSPResponse: unexpected field");
    certs = children(expectTag(unwrapExplicit(certsField), TAG.SEQUENCE, "certs")).map(raw);
  }
  return {
    tbsRaw: raw(expectTag(tbs, TAG.SEQUENCE, "ResponseData")),
    sigAlgRaw: raw(expectTag(sigAlg, TAG.SEQUENCE, "signatureAlgorithm")),
    signature: bitStringBytes(sig),
    certs,
  };
}

/** Finds who signed the response: the issuer itself or an authorized delegate; a problem otherwise. */
function checkSigner(env: BasicEnvelope, issuer: CertInfo, now: number): string | undefined {
  try {
    if (verifySigned(env.sigAlgRaw, env.tbsRaw, env.signature, issuer.publicKey)) return undefined;
  } catch (err) {
    if (err instanceof SignatureError) return `OCSP response signature: ${err.message}`;
    throw err;
  }
  const notes: string[] = [];
  for (const certDer of env.certs) {
    let cert: CertInfo;
    try {
      cert = parseCert(certDer);
    } catch (err) {
      notes.push(`unparseable responder certificate (${describeError(err)})`);
      continue;
    }
    let signs: boolean;
    try {
      signs = verifySigned(env.sigAlgRaw, env.tbsRaw, env.signature, cert.publicKey);
    } catch {
      signs = false;
    }
    if (!signs) continue;
    const problem = delegateProblem(cert, issuer, now);
    if (problem === undefined) return undefined;
    notes.push(problem);
  }
  const why = notes.length > 0 ? `: ${notes.join("; ")}` : "";
  return `OCSP response signature does not verify with the issuer's key or an authorized responder's${why}`;
}

/**
 * Judges an OCSP response (DER) for `leaf`. `nonce` is what the request carried (undefined for a
 * stapled response, which is then judged without one).
 */
export function evaluateOcspResponse(der: Buffer, leaf: CertInfo, issuer: CertInfo, now: number, source: string, nonce?: Buffer): RevocationResult {
  let response: OCSPResponse;
  try {
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
  const signer = checkSigner(env, issuer, now);
  if (signer) return unknown(source, signer);

  const single = data.responses.find((r) => certIdMatches(r.certID, leaf, issuer));
  if (!single) return unknown(source, "OCSP response does not cover the certificate (no matching CertID)");

  let nonceMatched = false;
  if (nonce) {
    const echoed = (data.responseExtensions ?? []).find((e) => e.extnID === id_pkix_ocsp_nonce);
    if (echoed) {
      const got = bytes(echoed.extnValue.buffer);
      // RFC 8954 wraps the nonce in an OCTET STRING; some older responders echo it bare.
      nonceMatched = got.equals(encodeTlv(TAG.OCTET_STRING, nonce)) || got.equals(nonce);
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

function asCert(x: Uint8Array | CertInfo): CertInfo {
  return x instanceof Uint8Array ? parseCert(x) : x;
}

export class OcspChecker {
  readonly #opts: RevocationOptions;
  readonly #deps: RevocationDeps;
  readonly #cache = new ExpiringLru<RevocationResult>(CACHE_MAX_ENTRIES);

  constructor(opts: RevocationOptions, deps: RevocationDeps) {
    this.#opts = opts;
    this.#deps = deps;
  }

  /** Judges a stapled response (no nonce); never throws. */
  checkStapled(der: Uint8Array, leaf: Uint8Array | CertInfo, issuer: Uint8Array | CertInfo): RevocationResult {
    const source = "ocsp:stapled";
    let l: CertInfo;
    let i: CertInfo;
    try {
      l = asCert(leaf);
      i = asCert(issuer);
    } catch (err) {
      return unknown(source, `certificate could not be parsed: ${describeError(err)}`);
    }
    try {
      return evaluateOcspResponse(Buffer.from(der), l, i, this.#deps.clock.now(), source);
    } catch (err) {
      return unknown(source, `stapled OCSP response rejected: ${describeError(err)}`);
    }
  }

  /** Asks the certificate's OCSP responders in turn; the first definitive answer wins. */
  async check(leaf: CertInfo, issuer: CertInfo, signal?: AbortSignal): Promise<RevocationResult> {
    const cacheKey = `${keyId(issuer)}\n${leaf.serialHex}`;
    const cached = this.#cache.get(cacheKey, this.#deps.clock.now());
    if (cached) return cached;
    const urls = ocspUrls(leaf).filter(isHttpUrl);
    if (urls.length === 0) return unknown(undefined, "the certificate names no http(s) OCSP responder");
    const notes: string[] = [];
    let lastSource: string | undefined;
    for (const url of urls) {
      if (signal?.aborted) {
        notes.push("aborted");
        break;
      }
      const r = await this.query(url, leaf, issuer, signal);
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
  async query(url: string, leaf: CertInfo, issuer: CertInfo, signal?: AbortSignal): Promise<RevocationResult> {
    const source = `ocsp:${shownUrl(url)}`;
    let request: OcspRequestBuilt;
    try {
      request = buildOcspRequest(leaf, issuer);
    } catch (err) {
      return unknown(source, `OCSP request could not be built: ${describeError(err)}`);
    }
    let body: Buffer;
    try {
      body = await fetchUntrusted(this.#deps, this.#opts, {
        method: "POST",
        url,
        headers: { "content-type": "application/ocsp-request", accept: "application/ocsp-response" },
        body: request.der,
        maxBytes: this.#opts.max_ocsp_bytes,
        signal,
      });
    } catch (err) {
      return unknown(source, `OCSP request failed: ${describeError(err)}`);
    }
    try {
      return evaluateOcspResponse(body, leaf, issuer, this.#deps.clock.now(), source, request.nonce);
    } catch (err) {
      return unknown(source, `OCSP response rejected: ${describeError(err)}`);
    }
  }
}
