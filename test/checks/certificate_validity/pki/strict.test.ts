/**
 * The strict profile, rule by rule: for each rule a certificate it accepts and one it rejects (with
 * the reason code docs/checks.md gives), judged three ways that must agree — validatePath, the
 * running check (certificateValidityCheck over files) and `vigil cert verify --batch`.
 * Where the rfc5280 profile decides otherwise, the case says so and that is checked too.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, type webcrypto } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  CertificatePolicies,
  GeneralName,
  InhibitAnyPolicy,
  KeyIdentifier,
  Name as AsnName,
  PolicyConstraints,
  PolicyInformation,
  PolicyMapping,
  PolicyMappings,
} from "@peculiar/asn1-x509";
import { metrics, trace } from "@opentelemetry/api";
import { certificateValidityCheck, certificateValidityConfigSchema } from "../../../../src/checks/certificate_validity/index.ts";
import { validatePath } from "../../../../src/checks/certificate_validity/pki/path.ts";
import type { ExpectedIdentity, Profile, Purpose } from "../../../../src/checks/certificate_validity/types.ts";
import { createHttpClient } from "../../../../src/net/http.ts";
import { silentLogger } from "../../../../src/telemetry/log.ts";
import { FakeClock } from "../../../../src/util/clock.ts";
import { runCli } from "../../../helpers/agent-process.ts";
import { DAY, NOW, gn, issue, keys, rawExtension, resign, timeDer, toPem, x509, type CertOptions, type Issued, type Keys } from "./helpers.ts";

const SERVER = [x509.ExtendedKeyUsage.serverAuth];
const ext = (oid: string, critical: boolean, value: unknown) => new x509.Extension(oid, critical, AsnConvert.serialize(value));
const policies = (...oids: string[]) => ext("2.5.29.32", false, new CertificatePolicies(oids.map((o) => new PolicyInformation({ policyIdentifier: o }))));
const int = (n: number) => new Uint8Array([n]).buffer;
// asn1-x509 types PolicyMapping's constructor parameter as PolicyMappings: fields are set after construction.
const mapping = (issuerDomainPolicy: string, subjectDomainPolicy: string) => Object.assign(new PolicyMapping(), { issuerDomainPolicy, subjectDomainPolicy });

interface Chain {
  leaf: Uint8Array;
  intermediates: Uint8Array[];
  roots: Uint8Array[];
  purpose?: Purpose;
  identity?: ExpectedIdentity;
  /** Evaluation time (ms); default NOW. */
  at?: number;
  policy?: { initial_policies?: string[]; require_explicit_policy?: boolean; inhibit_any_policy?: boolean };
}

interface Case {
  /** The rule, as docs/checks.md words it. */
  rule: string;
  code: string;
  accept: () => Promise<Chain>;
  reject: () => Promise<Chain>;
  /** The rfc5280 profile accepts what strict rejects (the rule is strict's own). */
  rfc5280Accepts?: boolean;
}

let root: Issued;
let inter: Issued;

/** A chain that meets every rule: root → intermediate → leaf, the leaf's CN a copy of its DNS SAN. */
async function chain(leaf: Partial<CertOptions> = {}, o: { inter?: Partial<CertOptions>; root?: Partial<CertOptions> } = {}): Promise<Chain & { issued: { leaf: Issued; inter: Issued; root: Issued } }> {
  const r = o.root ? await issue({ subject: "CN=Strict Root, O=Vigil", ca: true, ...o.root }) : root;
  const i = o.inter || o.root ? await issue({ subject: "CN=Strict Intermediate, O=Vigil", issuer: r, ca: { pathLen: 0 }, ...o.inter }) : inter;
  const l = await issue({ subject: "CN=svc.example.com", issuer: i, eku: SERVER, sans: [{ type: "dns", value: "svc.example.com" }], ...leaf });
  return { leaf: l.der, intermediates: [i.der], roots: [r.der], issued: { leaf: l, inter: i, root: r } };
}

const cases: Case[] = [
  // Trust anchors
  { rule: "anchor: basicConstraints critical", code: "CERT_BAD_TRUST_ANCHOR", accept: () => chain(), reject: () => chain({}, { root: { bcCritical: false } }), rfc5280Accepts: true },
  { rule: "anchor: a subjectKeyIdentifier", code: "CERT_BAD_TRUST_ANCHOR", accept: () => chain(), reject: () => chain({}, { root: { noSki: true } }), rfc5280Accepts: true },
  { rule: "anchor: keyUsage with keyCertSign", code: "CERT_BAD_TRUST_ANCHOR", accept: () => chain(), reject: () => chain({}, { root: { keyUsage: null } }), rfc5280Accepts: true },
  { rule: "anchor: no extendedKeyUsage", code: "CERT_BAD_TRUST_ANCHOR", accept: () => chain(), reject: () => chain({}, { root: { eku: SERVER } }), rfc5280Accepts: true },
  { rule: "anchor: an acceptable key (RSA ≥ 2048)", code: "CERT_BAD_TRUST_ANCHOR", accept: () => chain({}, { root: { keyKind: "rsa2048" } }), reject: () => chain({}, { root: { keyKind: "rsa1024" } }), rfc5280Accepts: true },
  {
    rule: "anchor: a root's AKI holds only its own key identifier",
    code: "CERT_BAD_TRUST_ANCHOR",
    accept: async () => {
      const k = await keys("p256");
      return chain({}, { root: { keys: k, signWith: k } }); // self-signed with AKI = SKI
    },
    reject: async () => chain({}, { root: { extensions: [await x509.AuthorityKeyIdentifierExtension.create((await keys("p256")).pair.publicKey)] } }),
    rfc5280Accepts: true,
  },
  { rule: "anchor: an RSA modulus of whole octets", code: "CERT_BAD_TRUST_ANCHOR", accept: () => chain({}, { root: { keyKind: "rsa2048" } }), reject: async () => chain({}, { root: { keys: rsaKeys(2052) } }), rfc5280Accepts: true },
  { rule: "leaf: an RSA modulus of whole octets", code: "CERT_WEAK_KEY", accept: () => chain({ keyKind: "rsa2048" }), reject: async () => chain({ keys: rsaKeys(2052) }), rfc5280Accepts: true },
  { rule: "anchor: no unknown critical extension", code: "CERT_UNKNOWN_CRITICAL_EXTENSION", accept: () => chain({}, { root: { extensions: [rawExtension("1.2.3.4", false)] } }), reject: () => chain({}, { root: { extensions: [rawExtension("1.2.3.4", true)] } }), rfc5280Accepts: true },

  // Serial numbers
  { rule: "serial: positive", code: "CERT_BAD_SERIAL", accept: () => chain({ serial: "01" }), reject: async () => reserial(new Uint8Array([0xff, 0x01])), rfc5280Accepts: true },
  { rule: "serial: non-zero", code: "CERT_BAD_SERIAL", accept: () => chain({ serial: "01" }), reject: async () => reserial(new Uint8Array([0x00])), rfc5280Accepts: true },
  { rule: "serial: at most 20 octets", code: "CERT_BAD_SERIAL", accept: () => chain({ serial: "7f".padEnd(40, "1") }), reject: async () => reserial(new Uint8Array(21).fill(0x11)), rfc5280Accepts: true },
  { rule: "serial: minimally encoded", code: "CERT_BAD_SERIAL", accept: () => chain({ serial: "7f" }), reject: async () => reserial(new Uint8Array([0x00, 0x7f])), rfc5280Accepts: true },

  // Extensions
  { rule: "intermediate: subjectKeyIdentifier present", code: "CERT_BAD_EXTENSION", accept: () => chain({}, { inter: {} }), reject: () => chain({}, { inter: { noSki: true } }), rfc5280Accepts: true },
  { rule: "intermediate: basicConstraints critical", code: "CERT_BAD_EXTENSION", accept: () => chain({}, { inter: {} }), reject: () => chain({}, { inter: { bcCritical: false } }), rfc5280Accepts: true },
  { rule: "intermediate: keyUsage present", code: "CERT_BAD_EXTENSION", accept: () => chain({}, { inter: {} }), reject: () => chain({}, { inter: { keyUsage: null } }), rfc5280Accepts: true },
  { rule: "leaf: authorityKeyIdentifier present", code: "CERT_BAD_EXTENSION", accept: () => chain(), reject: () => chain({ noAki: true }), rfc5280Accepts: true },
  {
    rule: "leaf: AKI without issuer and serial",
    code: "CERT_BAD_EXTENSION",
    accept: () => chain(),
    reject: async () => {
      const akid = new AuthorityKeyIdentifier({
        keyIdentifier: new KeyIdentifier(new Uint8Array(Buffer.from((await x509.AuthorityKeyIdentifierExtension.create(inter.keys.pair.publicKey)).keyId!, "hex"))),
        authorityCertIssuer: [new GeneralName({ directoryName: AsnConvert.parse(new x509.Name("CN=Strict Root, O=Vigil").toArrayBuffer(), AsnName) })],
        authorityCertSerialNumber: int(2),
      });
      return chain({ noAki: true, extensions: [ext("2.5.29.35", false, akid)] });
    },
    rfc5280Accepts: true,
  },
  {
    rule: "leaf: AKI names its issuer's key",
    code: "CERT_BAD_EXTENSION",
    accept: () => chain(),
    reject: async () => chain({ noAki: true, extensions: [await x509.AuthorityKeyIdentifierExtension.create((await keys("p256")).pair.publicKey)] }),
    rfc5280Accepts: true,
  },
  { rule: "leaf: not a CA", code: "CERT_BAD_EXTENSION", accept: () => chain({ basicConstraints: { cA: false } }), reject: () => chain({ basicConstraints: { cA: true } }), rfc5280Accepts: true },
  { rule: "leaf: no keyCertSign", code: "CERT_BAD_EXTENSION", accept: () => chain(), reject: () => chain({ keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign }), rfc5280Accepts: true },
  { rule: "leaf: no nameConstraints", code: "CERT_BAD_EXTENSION", accept: () => chain(), reject: () => chain({ nameConstraints: { permitted: [gn.dns("example.com")] } }), rfc5280Accepts: true },
  { rule: "leaf: EKU not critical", code: "CERT_BAD_EXTENSION", accept: () => chain(), reject: () => chain({ eku: undefined, extensions: [new x509.ExtendedKeyUsageExtension(SERVER, true)] }), rfc5280Accepts: true },
  {
    rule: "SAN critical exactly when the subject is empty",
    code: "CERT_BAD_EXTENSION",
    accept: () => chain({ subject: "", sans: undefined, extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "svc.example.com" }], true)] }),
    reject: () => chain({ sans: undefined, extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "svc.example.com" }], true)] }),
    rfc5280Accepts: true,
  },
  { rule: "authorityInfoAccess never critical", code: "CERT_BAD_EXTENSION", accept: () => chain({ extensions: [new x509.AuthorityInfoAccessExtension({ ocsp: ["http://ocsp.example.com/"] }, false)] }), reject: () => chain({ extensions: [new x509.AuthorityInfoAccessExtension({ ocsp: ["http://ocsp.example.com/"] }, true)] }), rfc5280Accepts: true },
  { rule: "a malformed authorityInfoAccess is refused", code: "CERT_BAD_EXTENSION", accept: () => chain(), reject: () => chain({ extensions: [rawExtension("1.3.6.1.5.5.7.1.1", false, new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]))] }), rfc5280Accepts: true },
  { rule: "a malformed CRL distribution point is refused", code: "CERT_BAD_EXTENSION", accept: () => chain({ extensions: [new x509.CRLDistributionPointsExtension(["http://crl.example.com/ca.crl"])] }), reject: () => chain({ extensions: [rawExtension("2.5.29.31", false, new Uint8Array([0x30, 0x02, 0x30, 0x00]))] }), rfc5280Accepts: true },

  // EKU
  { rule: "EKU: a leaf without EKU fails", code: "CERT_PURPOSE", accept: () => chain(), reject: () => chain({ eku: undefined }), rfc5280Accepts: true },
  { rule: "EKU: anyExtendedKeyUsage stands in for no purpose", code: "CERT_PURPOSE", accept: () => chain({ eku: [...SERVER, "2.5.29.37.0"] }), reject: () => chain({ eku: ["2.5.29.37.0"] }), rfc5280Accepts: true },

  // Names
  { rule: "DNS SAN: no underscore", code: "CERT_BAD_NAME", accept: () => chain({ subject: "CN=a-b.example.com", sans: [{ type: "dns", value: "a-b.example.com" }] }), reject: () => chain({ subject: "CN=a_b.example.com", sans: [{ type: "dns", value: "a_b.example.com" }] }), rfc5280Accepts: true },
  { rule: "DNS SAN: no leading dot", code: "CERT_BAD_NAME", accept: () => chain(), reject: () => chain({ subject: "CN=.example.com", sans: [{ type: "dns", value: ".example.com" }] }), rfc5280Accepts: true },
  { rule: "DNS SAN: no empty label", code: "CERT_BAD_NAME", accept: () => chain(), reject: () => chain({ subject: "CN=a..example.com", sans: [{ type: "dns", value: "a..example.com" }] }), rfc5280Accepts: true },
  { rule: "DNS SAN: a wildcard never spans a public suffix", code: "CERT_BAD_NAME", accept: () => chain({ subject: "CN=*.example.co.uk", sans: [{ type: "dns", value: "*.example.co.uk" }] }), reject: () => chain({ subject: "CN=*.co.uk", sans: [{ type: "dns", value: "*.co.uk" }] }), rfc5280Accepts: true },
  { rule: "CN: a copy of a SAN", code: "CERT_BAD_NAME", accept: () => chain(), reject: () => chain({ subject: "CN=svc" }), rfc5280Accepts: true },
  { rule: "CN: no case difference", code: "CERT_BAD_NAME", accept: () => chain(), reject: () => chain({ subject: "CN=SVC.example.com" }), rfc5280Accepts: true },
  { rule: "CN: no U-label for an A-label", code: "CERT_BAD_NAME", accept: () => chain({ subject: "CN=xn--bcher-kva.example", sans: [{ type: "dns", value: "xn--bcher-kva.example" }] }), reject: () => chain({ subject: "CN=bücher.example", sans: [{ type: "dns", value: "xn--bcher-kva.example" }] }), rfc5280Accepts: true },
  { rule: "CN: an IP in the SAN's canonical form", code: "CERT_BAD_NAME", accept: () => chain({ subject: "CN=2001:db8::1", sans: [{ type: "ip", value: "2001:db8::1" }] }), reject: () => chain({ subject: "CN=2001:DB8::1", sans: [{ type: "ip", value: "2001:db8::1" }] }), rfc5280Accepts: true },
  { rule: "CN: leading-zero IPv4 is not the SAN's form", code: "CERT_BAD_NAME", accept: () => chain({ subject: "CN=10.0.0.5", sans: [{ type: "ip", value: "10.0.0.5" }] }), reject: () => chain({ subject: "CN=010.000.000.005", sans: [{ type: "ip", value: "10.0.0.5" }] }), rfc5280Accepts: true },
  { rule: "email SAN: a host-name domain", code: "CERT_BAD_NAME", accept: () => chain({ subject: "", sans: [{ type: "email", value: "ops@example.com" }] }).then(critSan), reject: () => chain({ subject: "", sans: [{ type: "email", value: "ops@exa_mple.com" }] }).then(critSan), rfc5280Accepts: true },

  // Validity encodings
  {
    rule: "time: UTCTime through 2049",
    code: "CERT_BAD_TIME",
    accept: async () => retime(timeDer(utc(NOW.getTime() - DAY)), timeDer(utc(NOW.getTime() + 30 * DAY))),
    reject: async () => retime(timeDer(gen(NOW.getTime() - DAY), true), timeDer(utc(NOW.getTime() + 30 * DAY))),
    rfc5280Accepts: true,
  },
  { rule: "time: seconds present (any profile)", code: "CERT_BAD_TIME", accept: async () => retime(timeDer(utc(NOW.getTime() - DAY)), timeDer(utc(NOW.getTime() + 30 * DAY))), reject: async () => retime(timeDer(utc(NOW.getTime() - DAY).slice(0, 10) + "Z"), timeDer(utc(NOW.getTime() + 30 * DAY))) },
  { rule: "time: no fractional seconds (any profile)", code: "CERT_BAD_TIME", accept: async () => retime(timeDer(utc(NOW.getTime() - DAY)), timeDer("20600101000000Z", true)), reject: async () => retime(timeDer(utc(NOW.getTime() - DAY)), timeDer("20600101000000.5Z", true)) },
  { rule: "time: notBefore not after notAfter", code: "CERT_BAD_TIME", accept: () => chain(), reject: async () => ({ ...(await chain({ notBefore: new Date(NOW.getTime() + DAY), notAfter: new Date(NOW.getTime() - DAY) })), at: NOW.getTime() }) },

  // Name constraints fail closed (both profiles unless noted)
  { rule: "NC: an empty permittedSubtrees cannot be evaluated", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({}, { inter: { nameConstraints: { permitted: [gn.dns("example.com")] } } }), reject: () => chain({}, { inter: { extensions: [rawExtension("2.5.29.30", true, new Uint8Array([0x30, 0x02, 0xa0, 0x00]))] } }) },
  { rule: "NC: an iPAddress range of the wrong length cannot be evaluated", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({}, { inter: { nameConstraints: { excluded: [gn.ip("10.0.0.0/8")] } } }), reject: () => chain({}, { inter: { extensions: [rawExtension("2.5.29.30", true, new Uint8Array([0x30, 0x09, 0xa1, 0x07, 0x30, 0x05, 0x87, 0x03, 10, 0, 0]))] } }) },
  { rule: "NC: a non-contiguous mask cannot be evaluated", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({}, { inter: { nameConstraints: { excluded: [gn.ip("10.0.0.0/8")] } } }), reject: () => chain({}, { inter: { extensions: [rawExtension("2.5.29.30", true, new Uint8Array([0x30, 0x0e, 0xa1, 0x0c, 0x30, 0x0a, 0x87, 0x08, 10, 0, 0, 0, 255, 0, 255, 0]))] } }) },
  { rule: "NC: minimum other than 0 cannot be honoured", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({}, { inter: { nameConstraints: { permitted: [gn.dns("example.com")] } } }), reject: () => chain({}, { inter: { extensions: [rawExtension("2.5.29.30", true, Buffer.from("3014a0123010820b6578616d706c652e636f6d800101", "hex"))] } }) },
  { rule: "NC: a dNSName constraint is a host name (strict)", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({}, { inter: { nameConstraints: { permitted: [gn.dns("example.com")] } } }), reject: () => chain({}, { inter: { nameConstraints: { permitted: [gn.dns(".example.com")] } } }), rfc5280Accepts: true },
  { rule: "NC: e-mail subtrees bind email SANs", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({ subject: "", sans: [{ type: "email", value: "ops@example.com" }] }, { inter: { nameConstraints: { permitted: [gn.email("example.com")] } } }).then(critSan), reject: () => chain({ subject: "", sans: [{ type: "email", value: "ops@example.net" }] }, { inter: { nameConstraints: { permitted: [gn.email("example.com")] } } }).then(critSan) },
  { rule: "NC: DN subtrees bind the subject", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({ subject: "O=Vigil, CN=svc.example.com" }, { inter: { nameConstraints: { permitted: [gn.dn("O=Vigil")] } } }), reject: () => chain({ subject: "O=Other, CN=svc.example.com" }, { inter: { nameConstraints: { permitted: [gn.dn("O=Vigil")] } } }) },
  { rule: "NC: a URI whose host cannot be read is inside every excluded URI subtree", code: "CERT_NAME_CONSTRAINTS", accept: () => chain({ sans: [{ type: "dns", value: "svc.example.com" }, { type: "url", value: "spiffe://ok.example/x" }] }, { inter: { nameConstraints: { excluded: [gn.uri("evil.example")] } } }), reject: () => chain({ sans: [{ type: "dns", value: "svc.example.com" }, { type: "url", value: "urn:uuid:1234" }] }, { inter: { nameConstraints: { excluded: [gn.uri("evil.example")] } } }) },

  // Certificate policies (both profiles)
  {
    rule: "policy: requireExplicitPolicy on an intermediate needs a policy below it",
    code: "CERT_POLICY",
    accept: () => chain({ extensions: [policies("1.2.3.4")] }, { inter: { extensions: [policies("1.2.3.4"), ext("2.5.29.36", true, new PolicyConstraints({ requireExplicitPolicy: int(0) }))] } }),
    reject: () => chain({}, { inter: { extensions: [policies("1.2.3.4"), ext("2.5.29.36", true, new PolicyConstraints({ requireExplicitPolicy: int(0) }))] } }),
  },
  {
    rule: "policy: initial_policies with require_explicit_policy",
    code: "CERT_POLICY",
    accept: async () => ({ ...(await chain({ extensions: [policies("2.23.140.1.2.1")] }, { inter: { extensions: [policies("2.5.29.32.0")] } })), policy: { initial_policies: ["2.23.140.1.2.1"], require_explicit_policy: true } }),
    reject: async () => ({ ...(await chain({ extensions: [policies("1.2.3.4")] }, { inter: { extensions: [policies("2.5.29.32.0")] } })), policy: { initial_policies: ["2.23.140.1.2.1"], require_explicit_policy: true } }),
  },
  {
    rule: "policy: a mapping to or from anyPolicy is refused",
    code: "CERT_POLICY",
    accept: () => chain({ extensions: [policies("1.2.3.5")] }, { inter: { extensions: [policies("1.2.3.4"), ext("2.5.29.33", true, new PolicyMappings([mapping("1.2.3.4", "1.2.3.5")]))] } }),
    reject: () => chain({ extensions: [policies("1.2.3.5")] }, { inter: { extensions: [policies("1.2.3.4"), ext("2.5.29.33", true, new PolicyMappings([mapping("2.5.29.32.0", "1.2.3.5")]))] } }),
  },
  {
    rule: "policy: inhibitAnyPolicy stops anyPolicy from matching",
    code: "CERT_POLICY",
    accept: async () => ({ ...(await chain({ extensions: [policies("1.2.3.4")] }, { inter: { extensions: [policies("2.5.29.32.0"), ext("2.5.29.54", true, new InhibitAnyPolicy(int(0)))] } })), policy: { initial_policies: ["1.2.3.4"], require_explicit_policy: true } }),
    reject: async () => ({ ...(await chain({ extensions: [policies("2.5.29.32.0")] }, { inter: { extensions: [policies("2.5.29.32.0"), ext("2.5.29.54", true, new InhibitAnyPolicy(int(0)))] } })), policy: { initial_policies: ["1.2.3.4"], require_explicit_policy: true } }),
  },

  // Validity: one-second granularity (both profiles)
  {
    rule: "validity: inside notAfter's second is valid, the next second is not",
    code: "CERT_EXPIRED",
    accept: async () => {
      const c = await chain({ notAfter: new Date(NOW.getTime() + DAY) });
      return { ...c, at: NOW.getTime() + DAY + 999 };
    },
    reject: async () => {
      const c = await chain({ notAfter: new Date(NOW.getTime() + DAY) });
      return { ...c, at: NOW.getTime() + DAY + 1000 };
    },
  },

  // Identity (both profiles)
  { rule: "identity: an IP compares by value against IP SANs", code: "CERT_NAME_MISMATCH", accept: async () => ({ ...(await chain({ subject: "CN=2001:db8::1", sans: [{ type: "ip", value: "2001:db8::1" }] })), identity: { ip: "2001:DB8:0:0::1" } }), reject: async () => ({ ...(await chain({ sans: [{ type: "dns", value: "svc.example.com" }, { type: "ip", value: "10.0.0.6" }] })), identity: { ip: "10.0.0.5" } }) },
  { rule: "identity: leading-zero or hex IPv4 never matches", code: "CERT_NAME_MISMATCH", accept: async () => ({ ...(await chain({ subject: "CN=10.0.0.5", sans: [{ type: "ip", value: "10.0.0.5" }] })), identity: { dns: "10.0.0.5" } }), reject: async () => ({ ...(await chain({ subject: "CN=10.0.0.5", sans: [{ type: "ip", value: "10.0.0.5" }] })), identity: { dns: "010.0.0.5" } }) },
  { rule: "identity: a wildcard matches one label", code: "CERT_NAME_MISMATCH", accept: async () => ({ ...(await chain({ subject: "CN=*.example.co.uk", sans: [{ type: "dns", value: "*.example.co.uk" }] })), identity: { dns: "web.example.co.uk" } }), reject: async () => ({ ...(await chain({ subject: "CN=*.example.co.uk", sans: [{ type: "dns", value: "*.example.co.uk" }] })), identity: { dns: "a.web.example.co.uk" } }) },
];

/** An RSA key pair of `bits` (webcrypto generates only whole-octet moduli; node generates any). */
function rsaKeys(bits: number): Keys {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  return { kind: "rsa2048", pair: { publicKey: publicKey.toCryptoKey(alg, true, ["verify"]), privateKey: privateKey.toCryptoKey(alg, true, ["sign"]) } as webcrypto.CryptoKeyPair };
}

/** The leaf with its SAN marked critical (its subject is empty). */
async function critSan(c: Chain & { issued: { leaf: Issued; inter: Issued; root: Issued } }): Promise<Chain> {
  const l = resign(c.issued.leaf, c.issued.inter.keys, {
    tbs: (t) => {
      for (const e of t.extensions ?? []) if (e.extnID === "2.5.29.17") e.critical = true;
    },
  });
  return { ...c, leaf: l.der };
}

async function reserial(serial: Uint8Array): Promise<Chain> {
  const c = await chain();
  const l = resign(c.issued.leaf, c.issued.inter.keys, { tbs: (t) => void (t.serialNumber = serial.buffer.slice(0) as ArrayBuffer) });
  return { ...c, leaf: l.der };
}

const pad = (n: number) => String(n).padStart(2, "0");
function utc(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear() % 100)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
}
function gen(ms: number): string {
  return `${new Date(ms).getUTCFullYear()}${utc(ms).slice(2)}`;
}

async function retime(notBefore: Buffer, notAfter: Buffer): Promise<Chain> {
  const c = await chain();
  const validity = Buffer.concat([Buffer.from([0x30, notBefore.length + notAfter.length]), notBefore, notAfter]);
  const l = resign(c.issued.leaf, c.issued.inter.keys, { validity });
  return { ...c, leaf: l.der };
}


// ---------------------------------------------------------------------------------------------

interface Verdict {
  valid: boolean;
  code: string | undefined;
}

const verdictOf = (valid: boolean, code: string | undefined): Verdict => ({ valid, code: valid ? undefined : code });

function viaValidatePath(c: Chain, profile: Profile): Verdict {
  const r = validatePath({
    leaf: c.leaf,
    intermediates: c.intermediates,
    roots: c.roots,
    at: new Date(c.at ?? NOW.getTime()),
    purpose: c.purpose ?? "server",
    ...(c.identity ? { identity: c.identity } : {}),
    profile,
    ...(c.policy?.initial_policies ? { initialPolicies: c.policy.initial_policies } : {}),
    ...(c.policy?.require_explicit_policy ? { requireExplicitPolicy: true } : {}),
  });
  return verdictOf(r.valid, r.code);
}

let dir: string;
let n = 0;

async function viaCheck(c: Chain, profile: Profile): Promise<Verdict> {
  const id = `c${n++}`;
  writeFileSync(join(dir, `${id}.pem`), [c.leaf, ...c.intermediates].map((d) => toPem(d)).join(""));
  writeFileSync(join(dir, `${id}-roots.pem`), c.roots.map((d) => toPem(d)).join(""));
  const identity = c.identity ? (c.identity.ip ?? c.identity.dns ?? c.identity.email ?? c.identity.uri) : undefined;
  const config = certificateValidityConfigSchema.parse({
    trust_bundle: `${id}-roots.pem`,
    source: { type: "file", paths: ["{{id}}.pem"] },
    purpose: c.purpose ?? "server",
    profile,
    match_identity: identity !== undefined,
    revocation: { mode: "none" },
    ...(c.policy ?? {}),
  });
  const http = createHttpClient();
  const clock = new FakeClock(c.at ?? NOW.getTime());
  const ctx = { clock, logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
  try {
    const [r] = await certificateValidityCheck.create(config, ctx).run([{ id, kind: "workload", ...(identity ? { identity } : {}), attributes: {}, labels: {} }], { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 });
    return verdictOf(r!.status === "pass" || r!.status === "warn", r!.reasons[0]?.code);
  } finally {
    await http.close();
  }
}

function batchLine(c: Chain, profile: Profile, id: string): string {
  return JSON.stringify({
    id,
    leaf: toPem(c.leaf),
    intermediates: c.intermediates.map((d) => toPem(d)),
    roots: c.roots.map((d) => toPem(d)),
    at: new Date(c.at ?? NOW.getTime()).toISOString(),
    purpose: c.purpose ?? "server",
    profile,
    ...(c.identity?.dns ? { host: c.identity.dns } : {}),
    ...(c.identity?.ip ? { ip: c.identity.ip } : {}),
    ...(c.policy ?? {}),
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vigil-strict-"));
  root = await issue({ subject: "CN=Strict Root, O=Vigil", ca: true });
  inter = await issue({ subject: "CN=Strict Intermediate, O=Vigil", issuer: root, ca: { pathLen: 0 } });
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe("strict profile: every rule accepts one certificate and rejects another, the same way in validatePath, the check and the CLI", () => {
  const lines: string[] = [];
  const expected = new Map<string, Verdict>();

  for (const c of cases) {
    it(`${c.code}: ${c.rule}`, async () => {
      const good = await c.accept();
      const bad = await c.reject();
      const want = { valid: false, code: c.code };
      assert.deepEqual(viaValidatePath(good, "strict"), { valid: true, code: undefined }, `accepted by validatePath`);
      assert.deepEqual(viaValidatePath(bad, "strict"), want, "rejected by validatePath");
      assert.deepEqual(await viaCheck(good, "strict"), { valid: true, code: undefined }, "accepted by the check");
      assert.deepEqual(await viaCheck(bad, "strict"), want, "rejected by the check");
      if (c.rfc5280Accepts !== undefined) {
        const r = viaValidatePath(bad, "rfc5280");
        if (c.rfc5280Accepts) assert.deepEqual(r, { valid: true, code: undefined }, "the rfc5280 profile accepts it");
        else assert.equal(r.valid, false, "the rfc5280 profile rejects it too");
      }
      const k = lines.length;
      lines.push(batchLine(good, "strict", `${k}-accept`), batchLine(bad, "strict", `${k}-reject`));
      expected.set(`${k}-accept`, { valid: true, code: undefined });
      expected.set(`${k}-reject`, want);
    });
  }

  it("vigil cert verify --batch gives every verdict above", async () => {
    assert.equal(lines.length, cases.length * 2, "every case ran");
    writeFileSync(join(dir, "cases.jsonl"), lines.join("\n") + "\n");
    const r = await runCli(["cert", "verify", "--batch", join(dir, "cases.jsonl"), "--revocation", "none"]);
    const got = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; valid: boolean; code?: string });
    assert.equal(got.length, lines.length, r.stderr);
    for (const g of got) assert.deepEqual(verdictOf(g.valid, g.code), expected.get(g.id), `batch line ${g.id}`);
  });
});
