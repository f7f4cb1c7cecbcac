/**
 * Signature algorithms and signature checks for certificates, CRLs and OCSP responses, done with
 * node:crypto over the exact bytes that were signed (faster than building an X509Certificate, and
 * the same code for all three).
 */
import { constants, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { DerError, TAG, children, expectTag, parseStrict, readOid, readSmallUint, unwrapExplicit, type Tlv } from "./der.ts";
import { HASHES, OID, SIGNATURE_ALGORITHMS } from "./oids.ts";

export interface SignatureAlgorithm {
  readonly oid: string;
  readonly name: string;
  /** md5, sha1, sha256…, "intrinsic" (EdDSA) or "unknown". */
  readonly hash: string;
}

interface PssParams {
  readonly hash: string;
  readonly mgfHash: string;
  readonly saltLength: number;
  readonly problem?: string;
}

function pssParams(params: Tlv | undefined): PssParams {
  // RSASSA-PSS-params: [0] hash DEFAULT sha1, [1] mgf DEFAULT mgf1SHA1, [2] saltLength DEFAULT 20, [3] trailer DEFAULT 1.
  let hashOid: string = OID.sha1;
  let mgfHashOid: string = OID.sha1;
  let saltLength = 20;
  let problem: string | undefined;
  if (params && params.tag === TAG.SEQUENCE) {
    for (const f of children(params)) {
      const inner = unwrapExplicit(f);
      if (f.tag === 0xa0) hashOid = readOid(children(expectTag(inner, TAG.SEQUENCE, "PSS hash"))[0] ?? fail("PSS hash"));
      else if (f.tag === 0xa1) {
        const [mgf, mgfParams] = children(expectTag(inner, TAG.SEQUENCE, "PSS mask generation"));
        if (!mgf || readOid(mgf) !== OID.mgf1 || !mgfParams) problem ??= "RSASSA-PSS with an unsupported mask generation function";
        else mgfHashOid = readOid(children(expectTag(mgfParams, TAG.SEQUENCE, "MGF1 hash"))[0] ?? fail("MGF1 hash"));
      } else if (f.tag === 0xa2) saltLength = readSmallUint(inner);
      else if (f.tag === 0xa3) {
        if (readSmallUint(inner) !== 1) problem ??= "RSASSA-PSS with an unsupported trailer field";
      } else throw new DerError("RSASSA-PSS-params: unexpected field");
    }
  } else if (params && params.tag !== TAG.NULL) throw new DerError("RSASSA-PSS-params: not a SEQUENCE");
  const hash = HASHES[hashOid] ?? "unknown";
  if (mgfHashOid !== hashOid) problem ??= "RSASSA-PSS with an MGF1 hash differing from the message hash";
  return { hash, mgfHash: HASHES[mgfHashOid] ?? "unknown", saltLength, ...(problem ? { problem } : {}) };
}

function fail(what: string): never {
  throw new DerError(`${what}: missing`);
}

const described = new Map<string, SignatureAlgorithm>();

/** Name and hash of an AlgorithmIdentifier's DER. Throws DerError when it is not one. */
export function describeSignatureAlgorithm(algDer: Uint8Array): SignatureAlgorithm {
  const key = Buffer.from(algDer).toString("latin1");
  const hit = described.get(key);
  if (hit) return hit;
  const [o, params, extra] = children(expectTag(parseStrict(algDer), TAG.SEQUENCE, "AlgorithmIdentifier"));
  if (!o || extra) throw new DerError("AlgorithmIdentifier: bad fields");
  const oid = readOid(o);
  let out: SignatureAlgorithm;
  if (oid === OID.rsassaPss) {
    const p = pssParams(params);
    out = { oid, name: `rsassa-pss(${p.hash})`, hash: p.hash };
  } else {
    const known = SIGNATURE_ALGORITHMS[oid];
    out = { oid, name: known?.name ?? oid, hash: known?.hash ?? "unknown" };
  }
  if (described.size < 256) described.set(key, out);
  return out;
}

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

const WEAK_HASHES: ReadonlySet<string> = new Set(["md2", "md4", "md5", "sha1"]);

/**
 * Does `signature` over `data` verify with `key` under the AlgorithmIdentifier `algDer`? False for
 * a signature that does not verify or a key of the wrong kind; throws SignatureError for an
 * algorithm that is unsupported, or weak (MD2/MD4/MD5, SHA-1) unless `allowWeak` (path building
 * verifies them and lets the key policy say no, so the reason names the algorithm).
 */
export function verifySignature(algDer: Uint8Array, data: Uint8Array, signature: Uint8Array, key: KeyObject, options: { allowWeak?: boolean } = {}): boolean {
  const parts = children(expectTag(parseStrict(algDer), TAG.SEQUENCE, "AlgorithmIdentifier"));
  const oid = readOid(parts[0] ?? fail("AlgorithmIdentifier"));
  const keyType = key.asymmetricKeyType;
  if (oid === OID.rsassaPss) {
    const p = pssParams(parts[1]);
    if (p.problem) throw new SignatureError(p.problem);
    if (p.hash === "unknown" || (WEAK_HASHES.has(p.hash) && !options.allowWeak)) throw new SignatureError(`RSASSA-PSS with hash ${p.hash} is not allowed`);
    if (keyType !== "rsa" && keyType !== "rsa-pss") return false;
    try {
      return cryptoVerify(p.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength }, signature);
    } catch {
      return false;
    }
  }
  const scheme = SIGNATURE_ALGORITHMS[oid];
  if (!scheme) throw new SignatureError(`signature algorithm ${oid} is not supported`);
  if (WEAK_HASHES.has(scheme.hash) && !options.allowWeak) throw new SignatureError(`signature algorithm ${scheme.name} is not allowed`);
  const okKey =
    (scheme.kind === "rsa" && keyType === "rsa") ||
    (scheme.kind === "ecdsa" && keyType === "ec") ||
    (scheme.kind === "dsa" && keyType === "dsa") ||
    (scheme.kind === "eddsa" && keyType === (scheme.name === "Ed25519" ? "ed25519" : "ed448"));
  if (!okKey) return false;
  try {
    return cryptoVerify(scheme.kind === "eddsa" ? null : scheme.hash, data, key, signature);
  } catch {
    return false;
  }
}
