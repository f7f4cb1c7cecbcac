/** Certificate factory for the pki tests: @peculiar/x509 over node's webcrypto, and openssl. */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, GeneralName, GeneralSubtree, GeneralSubtrees, Name, NameConstraints, type TBSCertificate } from "@peculiar/asn1-x509";
import { spawnSync } from "node:child_process";
import { KeyObject, sign as nodeSign, webcrypto } from "node:crypto";
import { children as derChildren, encodeTlv, parseDer, raw as derRaw } from "../../../../src/plugin/x509/der.ts";

x509.cryptoProvider.set(webcrypto);

export { x509 };
export const subtle = webcrypto.subtle;

/** `rsa2048-sha1` signs with SHA-1 (webcrypto binds the hash to the RSA key). */
export type KeyKind = "p256" | "p384" | "rsa2048" | "rsa2048-sha1" | "rsa1024" | "ed25519";

const ALGS: Record<KeyKind, { gen: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | { name: string }; sign: webcrypto.Algorithm | webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams }> = {
  p256: { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } as webcrypto.EcdsaParams },
  p384: { gen: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" } as webcrypto.EcdsaParams },
  rsa2048: { gen: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } },
  "rsa2048-sha1": { gen: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-1", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-1" } },
  rsa1024: { gen: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) }, sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } },
  ed25519: { gen: { name: "Ed25519" }, sign: { name: "Ed25519" } },
};

export interface Keys {
  readonly kind: KeyKind;
  readonly pair: webcrypto.CryptoKeyPair;
}

const keyPool = new Map<KeyKind, Keys[]>();

/** A fresh key pair. RSA pairs are reused from a small pool (generation is slow): `fresh` forces a new one. */
export async function keys(kind: KeyKind = "p256", fresh = false): Promise<Keys> {
  if (!fresh && kind.startsWith("rsa")) {
    const pool = keyPool.get(kind) ?? [];
    keyPool.set(kind, pool);
    if (pool.length < 2) {
      const k = { kind, pair: (await subtle.generateKey(ALGS[kind].gen, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair };
      pool.push(k);
      return k;
    }
    return pool[Math.floor(Math.random() * pool.length)]!;
  }
  return { kind, pair: (await subtle.generateKey(ALGS[kind].gen, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair };
}

export interface Issued {
  readonly cert: x509.X509Certificate;
  readonly der: Uint8Array;
  readonly keys: Keys;
  readonly subject: string;
}

export const DAY = 86_400_000;
export const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);

export interface CertOptions {
  subject: string;
  /** Issuer certificate; omitted → self-signed. */
  issuer?: Issued;
  /** Issuer name to write when it should differ from `issuer.subject` (or for a forged issuer). */
  issuerName?: string;
  /** Signing key instead of the issuer's. */
  signWith?: Keys;
  keys?: Keys;
  keyKind?: KeyKind;
  /** CA: basicConstraints cA (critical) + keyUsage keyCertSign|cRLSign. pathLen optional. */
  ca?: boolean | { pathLen?: number };
  /** basicConstraints explicitly (overrides `ca` for BC): null omits it. */
  basicConstraints?: { cA: boolean; pathLen?: number } | null;
  /** keyUsage flags; null omits it. Default: CA keyCertSign|cRLSign, leaf digitalSignature|keyEncipherment. */
  keyUsage?: number | null;
  eku?: string[];
  sans?: x509.JsonGeneralNames;
  nameConstraints?: { permitted?: GeneralName[]; excluded?: GeneralName[] };
  extensions?: x509.Extension[];
  notBefore?: Date;
  notAfter?: Date;
  serial?: string;
  signingAlgorithm?: webcrypto.Algorithm | webcrypto.EcdsaParams;
  /** Leave out the subjectKeyIdentifier / authorityKeyIdentifier this helper adds by default. */
  noSki?: boolean;
  noAki?: boolean;
  /** basicConstraints criticality (default critical). */
  bcCritical?: boolean;
}

let serialCounter = 0x1000;

export async function issue(o: CertOptions): Promise<Issued> {
  const k = o.keys ?? (await keys(o.keyKind ?? "p256"));
  const signer = o.signWith ?? o.issuer?.keys ?? k;
  const isCa = o.ca !== undefined && o.ca !== false;
  const exts: x509.Extension[] = [];
  const bc = o.basicConstraints !== undefined ? o.basicConstraints : isCa ? { cA: true, pathLen: typeof o.ca === "object" ? o.ca.pathLen : undefined } : null;
  if (bc) exts.push(new x509.BasicConstraintsExtension(bc.cA, bc.pathLen, o.bcCritical ?? true));
  const ku = o.keyUsage !== undefined ? o.keyUsage : isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment;
  if (ku !== null) exts.push(new x509.KeyUsagesExtension(ku, true));
  if (o.eku) exts.push(new x509.ExtendedKeyUsageExtension(o.eku));
  if (o.sans) exts.push(new x509.SubjectAlternativeNameExtension(o.sans));
  if (o.nameConstraints) exts.push(nameConstraintsExtension(o.nameConstraints));
  if (!o.noSki) exts.push(await x509.SubjectKeyIdentifierExtension.create(k.pair.publicKey));
  if ((o.issuer || o.signWith) && !o.noAki) exts.push(await x509.AuthorityKeyIdentifierExtension.create(signer.pair.publicKey));
  exts.push(...(o.extensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: o.serial ?? (serialCounter++).toString(16),
    subject: o.subject,
    issuer: o.issuerName ?? o.issuer?.subject ?? o.subject,
    notBefore: o.notBefore ?? new Date(NOW.getTime() - DAY),
    notAfter: o.notAfter ?? new Date(NOW.getTime() + 365 * DAY),
    publicKey: k.pair.publicKey,
    signingKey: signer.pair.privateKey,
    signingAlgorithm: o.signingAlgorithm ?? ALGS[signer.kind].sign,
    extensions: exts,
  });
  return { cert, der: new Uint8Array(cert.rawData), keys: k, subject: o.subject };
}

export function nameConstraintsExtension(nc: { permitted?: GeneralName[]; excluded?: GeneralName[] }, critical = true): x509.Extension {
  const v = new NameConstraints({
    ...(nc.permitted ? { permittedSubtrees: new GeneralSubtrees(nc.permitted.map((base) => new GeneralSubtree({ base }))) } : {}),
    ...(nc.excluded ? { excludedSubtrees: new GeneralSubtrees(nc.excluded.map((base) => new GeneralSubtree({ base }))) } : {}),
  });
  return new x509.Extension("2.5.29.30", critical, AsnConvert.serialize(v));
}

export const gn = {
  dns: (v: string) => new GeneralName({ dNSName: v }),
  ip: (cidr: string) => new GeneralName({ iPAddress: cidr }),
  email: (v: string) => new GeneralName({ rfc822Name: v }),
  uri: (v: string) => new GeneralName({ uniformResourceIdentifier: v }),
  dn: (v: string) => new GeneralName({ directoryName: AsnConvert.parse(new x509.Name(v).toArrayBuffer(), Name) }),
};

/** A raw extension with an arbitrary OID and value (an unknown critical extension, say). */
export function rawExtension(oid: string, critical: boolean, valueDer: Uint8Array<ArrayBuffer> = new Uint8Array([0x05, 0x00])): x509.Extension {
  return new x509.Extension(oid, critical, valueDer);
}

/** A standard PKI: root → intermediate (pathLen 0) → server leaf. */
export async function basicPki(leafOpts: Partial<CertOptions> = {}) {
  const root = await issue({ subject: "CN=Test Root, O=Vigil", ca: true });
  const inter = await issue({ subject: "CN=Test Intermediate, O=Vigil", issuer: root, ca: { pathLen: 0 } });
  const leaf = await issue({
    subject: "CN=svc.example.com",
    issuer: inter,
    eku: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    sans: [
      { type: "dns", value: "svc.example.com" },
      { type: "ip", value: "10.0.0.5" },
    ],
    ...leafOpts,
  });
  return { root, inter, leaf };
}

export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "")}\n-----END ${label}-----\n`;
}

/** Runs openssl; throws with its stderr on failure. */
export function openssl(args: string[], cwd: string): string {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * Re-signs `cert` with `signer`'s key after changing its TBSCertificate: `tbs` edits the decoded
 * structure (serials, times, extensions @peculiar/x509 would not write), `validity` replaces the
 * Validity element's DER as given (encodings no library writes).
 */
export function resign(cert: Issued, signer: Keys, change: { tbs?: (t: TBSCertificate) => void; validity?: Buffer }): Issued {
  const asn = AsnConvert.parse(cert.der, Certificate);
  change.tbs?.(asn.tbsCertificate);
  let tbs: Buffer = Buffer.from(AsnConvert.serialize(asn.tbsCertificate));
  if (change.validity) {
    const parts: Buffer[] = derChildren(parseDer(tbs)).map((t) => Buffer.from(derRaw(t)));
    const at = parts.findIndex((p) => p[0] === 0x30 && p.length < 40 && (p[2] === 0x17 || p[2] === 0x18));
    parts[at] = change.validity;
    tbs = encodeTlv(0x30, Buffer.concat(parts));
  }
  const key = KeyObject.from(signer.pair.privateKey);
  const ec = signer.kind === "p256" || signer.kind === "p384";
  const signature = nodeSign(signer.kind === "ed25519" ? null : signer.kind === "p384" ? "sha384" : signer.kind === "rsa2048-sha1" ? "sha1" : "sha256", tbs, ec ? { key, dsaEncoding: "der" } : key);
  const out = Buffer.concat([encodeTlv(0x30, Buffer.concat([tbs, Buffer.from(AsnConvert.serialize(asn.signatureAlgorithm)), encodeTlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]))]);
  return { ...cert, der: new Uint8Array(out), cert: new x509.X509Certificate(out) };
}

/** A DER UTCTime or GeneralizedTime element holding exactly `text`. */
export function timeDer(text: string, generalized = false): Buffer {
  return encodeTlv(generalized ? 0x18 : 0x17, Buffer.from(text, "latin1"));
}
