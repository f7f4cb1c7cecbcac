/**
 * The CRL model (RFC 5280 §5): a CertificateList framed as DER, its extensions decoded with
 * @peculiar/asn1-x509's schemas (extensions.ts), its entries read on demand.
 *
 * A CRL may hold a hundred thousand entries: they are not decoded one by one through the schemas
 * but walked once, after the signature is verified, into a serial → entries index. Entry
 * extensions recur (a handful of reason codes, a few certificate issuers) and are decoded once by
 * extensions.ts's cache.
 */
import { hash, type KeyObject } from "node:crypto";
import { DerError, TAG, asBuffer, bitStringBytes, checkDer, children, ctx, expectTag, integerContent, isTime, parseDer, raw, readBoolean, readOid, readSmallUint, readTime, unwrapExplicit, value, type Tlv } from "./der.ts";
import {
  authorityKeyIdentifier,
  certificateIssuer,
  crlNumber,
  crlReason,
  distributionPoints,
  issuingDistributionPoint,
  type DistributionPointInfo,
  type IssuingDistributionPointInfo,
} from "./extensions.ts";
import { decodeName, type DistinguishedName } from "./name.ts";
import { KNOWN_CRL_ENTRY_EXTENSIONS, KNOWN_CRL_EXTENSIONS, OID } from "./oids.ts";
import { CRL_LABELS, CertParseError, readOne } from "./pem.ts";
import { verifySignature } from "./signature.ts";

export interface CrlEntry {
  readonly revokedAt: number;
  readonly reasonCode?: number;
  /** The DistinguishedName key of the certificate's issuer (the CRL's own for direct CRLs). */
  readonly issuerKey: string;
}

export class ParsedCrl {
  readonly der: Buffer;
  readonly size: number;
  /** SHA-256 of the DER, hex. */
  readonly fingerprint: string;
  readonly issuer: DistinguishedName;
  readonly thisUpdate: number;
  readonly nextUpdate: number | undefined;
  readonly tbs: Buffer;
  readonly signatureAlgorithmDer: Buffer;
  readonly signature: Buffer;
  readonly crlNumber: bigint | undefined;
  /** deltaCRLIndicator's BaseCRLNumber: set on delta CRLs. */
  readonly deltaBase: bigint | undefined;
  readonly idp: IssuingDistributionPointInfo | undefined;
  /** freshestCRL: where delta CRLs for this complete CRL are published. */
  readonly freshest: readonly DistributionPointInfo[] | undefined;
  readonly authorityKeyId: string | undefined;
  /** The first critical CRL extension this model does not understand. */
  readonly unsupportedCritical: string | undefined;
  readonly #revoked: Tlv | undefined;
  #entries: { map: Map<string, CrlEntry[]>; unsupportedCritical?: string } | undefined;

  /** Parses CRL DER or PEM (`X509 CRL`). Throws CertParseError. */
  constructor(input: Uint8Array, maxBytes = 64 * 1024 * 1024) {
    let buf: Buffer;
    try {
      buf = Buffer.from(asBuffer(readOne(input, CRL_LABELS, maxBytes)));
    } catch (err) {
      throw new CertParseError(`not a CRL: ${(err as Error).message}`, { cause: err });
    }
    this.der = buf;
    this.size = buf.length;
    this.fingerprint = hash("sha256", buf, "hex");
    try {
      const list = parseDer(buf);
      const parts = children(expectTag(list, TAG.SEQUENCE, "CertificateList"));
      const [tbs, sigAlg, sig] = parts;
      if (!tbs || !sigAlg || !sig || parts.length !== 3) throw new DerError("CertificateList must hold tbsCertList, signatureAlgorithm, signature");
      const f = children(expectTag(tbs, TAG.SEQUENCE, "TBSCertList"));
      let i = 0;
      if (f[i]?.tag === TAG.INTEGER) {
        const version = readSmallUint(f[i++]!);
        if (version !== 1) throw new DerError(`unsupported CRL version ${version + 1}`);
      }
      const innerAlg = f[i++];
      const issuer = f[i++];
      const thisUpdate = f[i++];
      if (!innerAlg || !issuer || !thisUpdate || !isTime(thisUpdate)) throw new DerError("TBSCertList is missing fields");
      if (!raw(innerAlg).equals(raw(expectTag(sigAlg, TAG.SEQUENCE, "signatureAlgorithm")))) throw new DerError("the TBSCertList signature algorithm differs from the outer one");
      for (const t of [innerAlg, issuer, thisUpdate, ...f.slice(i).filter((x) => x.tag !== TAG.SEQUENCE)]) checkDer(t);
      this.tbs = raw(tbs);
      this.signatureAlgorithmDer = raw(sigAlg);
      this.signature = bitStringBytes(sig);
      this.issuer = decodeName(raw(expectTag(issuer, TAG.SEQUENCE, "issuer")));
      this.thisUpdate = readTime(thisUpdate, "thisUpdate");
      this.nextUpdate = f[i] && isTime(f[i]!) ? readTime(f[i++]!, "nextUpdate") : undefined;
      this.#revoked = f[i]?.tag === TAG.SEQUENCE ? f[i++] : undefined;
      let number: bigint | undefined;
      let base: bigint | undefined;
      let idp: IssuingDistributionPointInfo | undefined;
      let freshest: readonly DistributionPointInfo[] | undefined;
      let aki: string | undefined;
      let unsupported: string | undefined;
      if (f[i]?.tag === ctx(0)) {
        const seen = new Set<string>();
        for (const e of children(expectTag(unwrapExplicit(f[i++]!), TAG.SEQUENCE, "crlExtensions"))) {
          const x = extension(e);
          if (seen.has(x.oid)) throw new DerError(`CRL extension ${x.oid} appears twice`);
          seen.add(x.oid);
          if (x.oid === OID.cRLNumber) number = crlNumber(x.value, "cRLNumber");
          else if (x.oid === OID.deltaCRLIndicator) base = crlNumber(x.value, "deltaCRLIndicator");
          else if (x.oid === OID.issuingDistributionPoint) idp = issuingDistributionPoint(x.value);
          else if (x.oid === OID.freshestCrl) freshest = distributionPoints(x.value, "freshestCRL");
          else if (x.oid === OID.authorityKeyIdentifier) aki = authorityKeyIdentifier(x.value).keyId;
          else if (x.critical && !KNOWN_CRL_EXTENSIONS.has(x.oid)) unsupported ??= x.oid;
        }
      }
      if (i !== f.length) throw new DerError("TBSCertList: unexpected trailing fields");
      this.crlNumber = number;
      this.deltaBase = base;
      this.idp = idp;
      this.freshest = freshest;
      this.authorityKeyId = aki;
      this.unsupportedCritical = unsupported;
    } catch (err) {
      if (err instanceof DerError) throw new CertParseError(`malformed CRL: ${err.message}`, { cause: err });
      throw err;
    }
  }

  get isDelta(): boolean {
    return this.deltaBase !== undefined;
  }

  /** Does `key` (the signer's) verify this CRL's signature? Weak algorithms are refused (SignatureError). */
  verifiedBy(key: KeyObject): boolean {
    return verifySignature(this.signatureAlgorithmDer, this.tbs, this.signature, key);
  }

  /**
   * The revoked certificates, serial (normalised hex) → entries (one per certificate issuer in an
   * indirect CRL). Walked once; throws CertParseError for a malformed list.
   */
  entries(): { readonly map: ReadonlyMap<string, readonly CrlEntry[]>; readonly unsupportedCritical?: string } {
    if (this.#entries) return this.#entries;
    const map = new Map<string, CrlEntry[]>();
    let unsupportedCritical: string | undefined;
    // Entries without certificateIssuer belong to the CRL issuer, then to the last one named (RFC 5280 §5.3.3).
    let issuerKey = this.issuer.key;
    try {
      if (this.#revoked) {
        for (const entry of children(this.#revoked)) {
          const [serial, date, exts, extra] = children(expectTag(entry, TAG.SEQUENCE, "revokedCertificate"));
          if (!serial || !date || extra) throw new DerError("revokedCertificate: bad fields");
          let reasonCode: number | undefined;
          if (exts) {
            const seen = new Set<string>();
            for (const e of children(expectTag(exts, TAG.SEQUENCE, "crlEntryExtensions"))) {
              const x = extension(e);
              if (seen.has(x.oid)) throw new DerError(`CRL entry extension ${x.oid} appears twice`);
              seen.add(x.oid);
              if (x.oid === OID.reasonCode) reasonCode = crlReason(x.value);
              else if (x.oid === OID.certificateIssuer) {
                const names = certificateIssuer(x.value);
                if (!this.idp?.indirect) unsupportedCritical ??= `${OID.certificateIssuer} in a CRL that is not indirect`;
                if (names[0]) issuerKey = names[0].key;
              } else if (x.critical && !KNOWN_CRL_ENTRY_EXTENSIONS.has(x.oid)) unsupportedCritical ??= x.oid;
            }
          }
          const hex = integerContent(serial, "userCertificate").bytes.toString("hex").replace(/^(00)+/, "");
          const key = hex === "" ? "00" : hex;
          const list = map.get(key) ?? [];
          list.push({ revokedAt: readTime(date, "revocationDate"), ...(reasonCode !== undefined ? { reasonCode } : {}), issuerKey });
          map.set(key, list);
        }
      }
    } catch (err) {
      if (err instanceof DerError) throw new CertParseError(`malformed CRL: ${err.message}`, { cause: err });
      throw err;
    }
    this.#entries = unsupportedCritical ? { map, unsupportedCritical } : { map };
    return this.#entries;
  }

  /** The entry for a certificate with `serial` issued by `issuerKey`, if the CRL lists it. */
  entryFor(serial: string, issuerKey: string): CrlEntry | undefined {
    return this.entries().map.get(serial)?.find((e) => e.issuerKey === issuerKey);
  }
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
function extension(t: Tlv): { oid: string; critical: boolean; value: Buffer } {
  const p = children(expectTag(t, TAG.SEQUENCE, "Extension"));
  const first = p[0];
  if (!first) throw new DerError("empty Extension");
  const oid = readOid(first);
  let critical = false;
  let n = 1;
  if (p[n]?.tag === TAG.BOOLEAN) critical = readBoolean(p[n++]!);
  const v = p[n];
  if (!v || n + 1 !== p.length) throw new DerError(`bad Extension ${oid}`);
  return { oid, critical, value: value(expectTag(v, TAG.OCTET_STRING, "extnValue")) };
}
