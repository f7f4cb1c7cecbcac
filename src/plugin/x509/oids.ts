/** The one table of object identifiers the certificate model, path validation and revocation read. */

export const OID = {
  // Certificate extensions (RFC 5280 §4.2).
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  issuerAltName: "2.5.29.18",
  basicConstraints: "2.5.29.19",
  nameConstraints: "2.5.29.30",
  crlDistributionPoints: "2.5.29.31",
  certificatePolicies: "2.5.29.32",
  policyMappings: "2.5.29.33",
  authorityKeyIdentifier: "2.5.29.35",
  policyConstraints: "2.5.29.36",
  extKeyUsage: "2.5.29.37",
  freshestCrl: "2.5.29.46",
  inhibitAnyPolicy: "2.5.29.54",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  subjectInfoAccess: "1.3.6.1.5.5.7.1.11",
  ocspNoCheck: "1.3.6.1.5.5.7.48.1.5",
  // CRL and CRL entry extensions (RFC 5280 §5.2, §5.3).
  cRLNumber: "2.5.29.20",
  reasonCode: "2.5.29.21",
  invalidityDate: "2.5.29.24",
  deltaCRLIndicator: "2.5.29.27",
  issuingDistributionPoint: "2.5.29.28",
  certificateIssuer: "2.5.29.29",
  // Access methods.
  adOcsp: "1.3.6.1.5.5.7.48.1",
  adCaIssuers: "1.3.6.1.5.5.7.48.2",
  // Policies and usages.
  anyPolicy: "2.5.29.32.0",
  anyExtendedKeyUsage: "2.5.29.37.0",
  kpServerAuth: "1.3.6.1.5.5.7.3.1",
  kpClientAuth: "1.3.6.1.5.5.7.3.2",
  kpOcspSigning: "1.3.6.1.5.5.7.3.9",
  // Attributes.
  commonName: "2.5.4.3",
  emailAddress: "1.2.840.113549.1.9.1",
  // Hashes.
  sha1: "1.3.14.3.2.26",
  sha224: "2.16.840.1.101.3.4.2.4",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  mgf1: "1.2.840.113549.1.1.8",
  rsassaPss: "1.2.840.113549.1.1.10",
} as const;

/**
 * Certificate extensions this validator processes, or recognises without their changing the
 * outcome (issuerAltName, subjectInfoAccess, freshestCRL, id-pkix-ocsp-nocheck): a critical one of
 * these is understood, any other critical extension fails the certificate.
 */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.issuerAltName,
  OID.nameConstraints,
  OID.certificatePolicies,
  OID.policyMappings,
  OID.policyConstraints,
  OID.inhibitAnyPolicy,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.crlDistributionPoints,
  OID.freshestCrl,
  OID.authorityInfoAccess,
  OID.subjectInfoAccess,
  OID.ocspNoCheck,
]);

/** CRL extensions a CRL may carry critically and still be used. */
export const KNOWN_CRL_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.authorityKeyIdentifier,
  OID.issuerAltName,
  OID.cRLNumber,
  OID.deltaCRLIndicator,
  OID.issuingDistributionPoint,
  OID.freshestCrl,
  OID.authorityInfoAccess,
]);

/** CRL entry extensions understood when critical. */
export const KNOWN_CRL_ENTRY_EXTENSIONS: ReadonlySet<string> = new Set([OID.reasonCode, OID.invalidityDate, OID.certificateIssuer]);

export const EKU_BY_NAME: Readonly<Record<string, string>> = {
  serverAuth: OID.kpServerAuth,
  clientAuth: OID.kpClientAuth,
  codeSigning: "1.3.6.1.5.5.7.3.3",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  ipsecEndSystem: "1.3.6.1.5.5.7.3.5",
  ipsecTunnel: "1.3.6.1.5.5.7.3.6",
  ipsecUser: "1.3.6.1.5.5.7.3.7",
  timeStamping: "1.3.6.1.5.5.7.3.8",
  OCSPSigning: OID.kpOcspSigning,
  ocspSigning: OID.kpOcspSigning,
  ipsecIKE: "1.3.6.1.5.5.7.3.17",
  anyExtendedKeyUsage: OID.anyExtendedKeyUsage,
};

export const EKU_NAME_BY_OID: ReadonlyMap<string, string> = new Map(
  Object.entries(EKU_BY_NAME)
    .filter(([n]) => n !== "ocspSigning")
    .map(([n, o]) => [o, n]),
);

/** keyUsage bit i (0 = the first octet's most significant bit) → name. */
export const KEY_USAGE_NAMES = ["digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"] as const;

export type KeyUsageName = (typeof KEY_USAGE_NAMES)[number];

export const KEY_USAGE_ALIASES: Readonly<Record<string, string>> = { contentCommitment: "nonRepudiation", crlSign: "cRLSign", CRLSign: "cRLSign" };

/** Named curves by OID, named as key_policy.allowed_curves names them. */
export const CURVES: Readonly<Record<string, string>> = {
  "1.2.840.10045.3.1.1": "P-192",
  "1.3.132.0.33": "P-224",
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
  "1.3.132.0.10": "secp256k1",
  "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
  "1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
  "1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
};

export type KeyType = "rsa" | "rsa-pss" | "ec" | "ed25519" | "ed448" | "x25519" | "x448" | "dsa";

export const KEY_ALGORITHMS: Readonly<Record<string, KeyType>> = {
  "1.2.840.113549.1.1.1": "rsa",
  [OID.rsassaPss]: "rsa-pss",
  "1.2.840.10045.2.1": "ec",
  "1.3.101.112": "ed25519",
  "1.3.101.113": "ed448",
  "1.3.101.110": "x25519",
  "1.3.101.111": "x448",
  "1.2.840.10040.4.1": "dsa",
};

export const HASHES: Readonly<Record<string, string>> = {
  [OID.sha1]: "sha1",
  [OID.sha224]: "sha224",
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
  "2.16.840.1.101.3.4.2.8": "sha3-256",
  "2.16.840.1.101.3.4.2.9": "sha3-384",
  "2.16.840.1.101.3.4.2.10": "sha3-512",
};

/** Signature algorithms: name, the hash they use ("intrinsic" for EdDSA) and the key kind they need. */
export const SIGNATURE_ALGORITHMS: Readonly<Record<string, { readonly name: string; readonly hash: string; readonly kind: "rsa" | "ecdsa" | "eddsa" | "dsa" }>> = {
  "1.2.840.113549.1.1.2": { name: "md2WithRSAEncryption", hash: "md2", kind: "rsa" },
  "1.2.840.113549.1.1.3": { name: "md4WithRSAEncryption", hash: "md4", kind: "rsa" },
  "1.2.840.113549.1.1.4": { name: "md5WithRSAEncryption", hash: "md5", kind: "rsa" },
  "1.2.840.113549.1.1.5": { name: "sha1WithRSAEncryption", hash: "sha1", kind: "rsa" },
  "1.3.14.3.2.29": { name: "sha1WithRSASignature", hash: "sha1", kind: "rsa" },
  "1.2.840.113549.1.1.14": { name: "sha224WithRSAEncryption", hash: "sha224", kind: "rsa" },
  "1.2.840.113549.1.1.11": { name: "sha256WithRSAEncryption", hash: "sha256", kind: "rsa" },
  "1.2.840.113549.1.1.12": { name: "sha384WithRSAEncryption", hash: "sha384", kind: "rsa" },
  "1.2.840.113549.1.1.13": { name: "sha512WithRSAEncryption", hash: "sha512", kind: "rsa" },
  "1.2.840.10045.4.1": { name: "ecdsa-with-SHA1", hash: "sha1", kind: "ecdsa" },
  "1.2.840.10045.4.3.1": { name: "ecdsa-with-SHA224", hash: "sha224", kind: "ecdsa" },
  "1.2.840.10045.4.3.2": { name: "ecdsa-with-SHA256", hash: "sha256", kind: "ecdsa" },
  "1.2.840.10045.4.3.3": { name: "ecdsa-with-SHA384", hash: "sha384", kind: "ecdsa" },
  "1.2.840.10045.4.3.4": { name: "ecdsa-with-SHA512", hash: "sha512", kind: "ecdsa" },
  "1.2.840.10040.4.3": { name: "dsa-with-sha1", hash: "sha1", kind: "dsa" },
  "1.3.14.3.2.27": { name: "dsaWithSHA1", hash: "sha1", kind: "dsa" },
  "2.16.840.1.101.3.4.3.2": { name: "dsa-with-sha256", hash: "sha256", kind: "dsa" },
  "1.3.101.112": { name: "Ed25519", hash: "intrinsic", kind: "eddsa" },
  "1.3.101.113": { name: "Ed448", hash: "intrinsic", kind: "eddsa" },
};

/** Attribute types by OID → RFC 4514 short name (others print as dotted OIDs). */
export const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  [OID.commonName]: "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "SERIALNUMBER",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "T",
  "2.5.4.15": "businessCategory",
  "2.5.4.17": "postalCode",
  "2.5.4.42": "GN",
  "2.5.4.43": "initials",
  "2.5.4.44": "generationQualifier",
  "2.5.4.46": "dnQualifier",
  "2.5.4.65": "pseudonym",
  "2.5.4.97": "organizationIdentifier",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
  [OID.emailAddress]: "emailAddress",
  "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
  "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
  "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
};
