import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, SubjectAlternativeName, NameConstraints } from "@peculiar/asn1-x509";
import { CertParseError, MAX_CERT_BYTES, ParsedCertificate as ParsedCert, parseCached } from "../../../src/plugin/x509/certificate.ts";
import { readPemOrDer } from "../../../src/plugin/x509/pem.ts";
import { validatePath } from "../../../src/checks/certificate_validity/pki/path.ts";
import { ipToBytes, ipToText } from "../../../src/plugin/x509/ip.ts";
import { basicPki, gn, issue, keys, rawExtension, toPem, x509, type Issued } from "../../checks/certificate_validity/pki/helpers.ts";

/** The one PEM/DER reader, as the old splitter was called. */
const splitPem = (input: Uint8Array | string, options: { labels?: readonly string[] } = {}) => readPemOrDer(input, options);
const parseCertificate = (input: Uint8Array | string) => new ParsedCert(readPemOrDer(input, { labels: ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"] })[0]!);
const summarize = (der: Uint8Array) => parseCached(der).summary;

function assertParseError(fn: () => unknown, re?: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CertParseError, `expected CertParseError, got ${String(err)}`);
    assert.equal(err.name, "CertParseError");
    if (re) assert.match(err.message, re);
    return true;
  });
}

let pki: { root: Issued; inter: Issued; leaf: Issued };
before(async () => {
  pki = await basicPki();
});

describe("readPemOrDer (the one PEM/DER reader)", () => {
  it("splits a PEM bundle with text around and between blocks, skipping keys", () => {
    const text = `subject=CN=x\n${toPem(pki.leaf.der)}junk line\n${toPem(new Uint8Array([0x30, 0]), "PRIVATE KEY")}${toPem(pki.inter.der)}\r\n`;
    const out = splitPem(text);
    assert.equal(out.length, 2);
    assert.deepEqual(Buffer.from(out[0]!), Buffer.from(pki.leaf.der));
    assert.deepEqual(Buffer.from(out[1]!), Buffer.from(pki.inter.der));
  });
  it("accepts bytes, CRLF line ends and the X509 CRL label", () => {
    const pem = toPem(pki.root.der).replace(/\n/g, "\r\n") + toPem(pki.inter.der, "X509 CRL");
    assert.equal(splitPem(Buffer.from(pem)).length, 2);
    assert.equal(splitPem(pem, { labels: ["CERTIFICATE"] }).length, 1);
  });
  it("passes DER through, and splits concatenated DER", () => {
    assert.deepEqual(splitPem(pki.leaf.der).map((d) => Buffer.from(d)), [Buffer.from(pki.leaf.der)]);
    const cat = Buffer.concat([pki.leaf.der, pki.inter.der]);
    assert.equal(splitPem(cat).length, 2);
  });
  const bad: [string, () => unknown, RegExp][] = [
    ["empty", () => splitPem(""), /neither PEM nor DER/],
    ["garbage text", () => splitPem("hello world"), /neither PEM nor DER/],
    ["garbage bytes", () => splitPem(new Uint8Array([1, 2, 3, 4])), /neither PEM nor DER/],
    ["truncated PEM (no END)", () => splitPem(toPem(pki.leaf.der).split("-----END")[0]!), /no END line/],
    ["PEM with a truncated body", () => splitPem(toPem(pki.leaf.der.subarray(0, 300))), /truncated|runs past/],
    ["PEM with bad base64", () => splitPem("-----BEGIN CERTIFICATE-----\nMII$$$\n-----END CERTIFICATE-----\n"), /base64/],
    ["PEM with headers", () => splitPem("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nMIIB\n-----END CERTIFICATE-----\n"), /headers/],
    ["only a private key", () => splitPem(toPem(new Uint8Array([0x30, 0]), "PRIVATE KEY")), /no CERTIFICATE/],
    ["truncated DER", () => splitPem(pki.leaf.der.subarray(0, pki.leaf.der.length - 10)), /malformed DER/],
    ["DER followed by junk", () => splitPem(Buffer.concat([pki.leaf.der, Buffer.from([1, 2, 3])])), /malformed DER/],
    ["indefinite length", () => splitPem(new Uint8Array([0x30, 0x80, 0, 0])), /malformed DER/],
  ];
  for (const [name, fn, re] of bad) it(`rejects ${name} with CertParseError`, () => assertParseError(fn, re));
  it("rejects an element over 1 MiB without decoding it", () => {
    const big = Buffer.alloc(MAX_CERT_BYTES + 16);
    big[0] = 0x30;
    big[1] = 0x83;
    big.writeUIntBE(MAX_CERT_BYTES + 11, 2, 3);
    assertParseError(() => splitPem(big), /exceeds/);
    const pem = `-----BEGIN CERTIFICATE-----\n${"A".repeat(2 * MAX_CERT_BYTES)}\n-----END CERTIFICATE-----\n`;
    assertParseError(() => splitPem(pem), /exceeds/);
    assertParseError(() => new ParsedCert(big), /exceeds/);
  });
});

describe("ParsedCertificate", () => {
  it("reads fields in agreement with node and @peculiar/asn1-x509", async () => {
    const ca = await issue({
      subject: "CN=Constrained CA, O=Vigil, C=DE",
      ca: { pathLen: 3 },
      nameConstraints: { permitted: [gn.dns("example.com"), gn.ip("10.0.0.0/8"), gn.email(".example.com"), gn.uri(".example.org"), gn.dn("C=DE")], excluded: [gn.ip("2001:db8::/32"), gn.dns("bad.example.com")] },
      extensions: [rawExtension("1.2.3.4.5", false)],
    });
    const leaf = await issue({
      subject: "CN=leaf, E=ops@example.com",
      issuer: ca,
      eku: [x509.ExtendedKeyUsage.serverAuth, "1.3.6.1.5.5.7.3.17"],
      keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement | x509.KeyUsageFlags.decipherOnly,
      sans: [
        { type: "dns", value: "a.example.com" },
        { type: "ip", value: "10.1.2.3" },
        { type: "ip", value: "2001:db8::1" },
        { type: "email", value: "me@example.com" },
        { type: "url", value: "spiffe://example.org/ns/web/sa/frontend" },
        { type: "dn", value: "CN=alt, O=Vigil" },
      ],
    });
    const c = new ParsedCert(leaf.der);
    const node = new X509Certificate(leaf.der);
    assert.equal(c.serial, node.serialNumber.toLowerCase().replace(/^(00)+/, ""));
    assert.equal(c.notBefore, node.validFromDate.getTime());
    assert.equal(c.notAfter, node.validToDate.getTime());
    assert.equal(c.fingerprint, node.fingerprint256.replace(/:/g, "").toLowerCase());
    assert.deepEqual(c.eku, node.keyUsage);
    assert.equal(c.isCA, node.ca);
    assert.deepEqual(c.keyUsage, ["digitalSignature", "keyAgreement", "decipherOnly"]);
    assert.deepEqual(c.sans.dns, ["a.example.com"]);
    assert.deepEqual(c.sans.ip, ["10.1.2.3", "2001:db8::1"]);
    assert.deepEqual(c.sans.email, ["me@example.com"]);
    assert.deepEqual(c.sans.uri, ["spiffe://example.org/ns/web/sa/frontend"]);
    assert.deepEqual(c.sans.dn.map((d) => d.text), ["O=Vigil, CN=alt"]);
    assert.equal(c.subject.text, "emailAddress=ops@example.com, CN=leaf");
    assert.equal(c.issuer.text, "C=DE, O=Vigil, CN=Constrained CA");
    assert.equal(c.signatureAlgorithm.name, "ecdsa-with-SHA256");
    assert.deepEqual(c.key, { type: "ec", oid: "1.2.840.10045.2.1", curve: "P-256" });
    assert.equal(c.authorityKeyId, new ParsedCert(ca.der).subjectKeyId);

    // Differential against @peculiar/asn1-x509 (slow, complete).
    const asn = AsnConvert.parse(leaf.der, Certificate);
    const exts = asn.tbsCertificate.extensions ?? [];
    assert.deepEqual(c.extensions.map((e) => [e.oid, e.critical]), [...exts].map((e) => [e.extnID, e.critical]));
    const sanAsn = AsnConvert.parse(exts.find((e) => e.extnID === "2.5.29.17")!.extnValue, SubjectAlternativeName);
    assert.deepEqual([...sanAsn].filter((g) => g.iPAddress).map((g) => ipToText(ipToBytes(g.iPAddress!)!)), c.sans.ip);
    assert.equal(c.signatureAlgorithm.oid, asn.signatureAlgorithm.algorithm);

    const p = new ParsedCert(ca.der);
    assert.equal(p.pathLen, 3);
    assert.deepEqual(p.criticalExtensionOids, ["2.5.29.19", "2.5.29.15", "2.5.29.30"]);
    const nc = p.nameConstraints!;
    const ncAsn = AsnConvert.parse(AsnConvert.parse(ca.der, Certificate).tbsCertificate.extensions!.find((e) => e.extnID === "2.5.29.30")!.extnValue, NameConstraints);
    assert.equal(nc.permitted!.dns.length + nc.permitted!.ip.length + nc.permitted!.email.length + nc.permitted!.uri.length + nc.permitted!.dn.length, ncAsn.permittedSubtrees!.length);
    assert.deepEqual(nc.permitted!.dns, ["example.com"]);
    assert.deepEqual(nc.permitted!.ip.map((r) => [ipToText(r.addr), ipToText(r.mask)]), [["10.0.0.0", "255.0.0.0"]]);
    assert.deepEqual(nc.excluded!.ip.map((r) => [ipToText(r.addr), ipToText(r.mask)]), [["2001:db8::", "ffff:ffff::"]]);
    assert.deepEqual(nc.excluded!.dns, ["bad.example.com"]);
    assert.deepEqual(nc.permitted!.email, [".example.com"]);
    assert.deepEqual(nc.permitted!.uri, [".example.org"]);
    assert.deepEqual(nc.permitted!.dn.map((d) => d.text), ["C=DE"]);
  });

  it("reads RSA key sizes and the signature algorithm", async () => {
    const c = await issue({ subject: "CN=rsa", keyKind: "rsa1024" });
    const p = new ParsedCert(c.der);
    assert.deepEqual(p.key, { type: "rsa", oid: "1.2.840.113549.1.1.1", bits: 1024 });
    assert.equal(p.signatureAlgorithm.hash, "sha256");
    const e = await issue({ subject: "CN=ed", keys: await keys("ed25519") });
    assert.equal(new ParsedCert(e.der).key.type, "ed25519");
    assert.equal(new ParsedCert(e.der).signatureAlgorithm.name, "Ed25519");
  });

  it("summarize gives the CertSummary shape", () => {
    const s = summarize(pki.leaf.der);
    assert.deepEqual(Object.keys(s).sort(), ["fingerprint_sha256", "issuer", "not_after", "not_before", "sans", "serial", "subject"]);
    assert.equal(s.subject, "CN=svc.example.com");
    assert.equal(s.issuer, "O=Vigil, CN=Test Intermediate");
    assert.deepEqual(s.sans, ["DNS:svc.example.com", "IP:10.0.0.5"]);
    assert.match(s.fingerprint_sha256, /^[0-9a-f]{64}$/);
    assert.match(s.serial, /^[0-9a-f]+$/);
    assert.equal(s.not_after, new X509Certificate(pki.leaf.der).validToDate.toISOString());
  });

  it("parseCertificate takes PEM", () => {
    assert.equal(parseCertificate(toPem(pki.root.der)).subject.text, "O=Vigil, CN=Test Root");
  });

  it("escapes control characters and RFC 4514 specials in names", async () => {
    const c = await issue({ subject: "CN=a\\,b, O=x" });
    assert.equal(new ParsedCert(c.der).subject.text, "O=x, CN=a\\,b");
  });

  it("rejects truncated and bit-flipped DER with CertParseError only, never another error", () => {
    const der = Buffer.from(pki.leaf.der);
    let rejected = 0;
    for (let n = 0; n < der.length; n += 3) {
      assertParseError(() => new ParsedCert(der.subarray(0, n)));
      rejected++;
    }
    // Deterministic pseudo-random single-byte corruptions: each either parses or throws CertParseError.
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    let parsed = 0;
    for (let i = 0; i < 400; i++) {
      const bad = Buffer.from(der);
      bad[Math.floor(rnd() * bad.length)] = Math.floor(rnd() * 256);
      try {
        new ParsedCert(bad);
        parsed++;
      } catch (err) {
        assert.ok(err instanceof CertParseError, `byte corruption gave ${String(err)}`);
      }
      // And validation never throws on it.
      const r = validatePath({ leaf: bad, intermediates: [pki.inter.der], roots: [pki.root.der], at: new Date(), purpose: "any" });
      assert.equal(typeof r.valid, "boolean");
    }
    assert.ok(rejected > 100 && parsed < 400);
  });

  it("rejects structurally wrong certificates", () => {
    const der = Buffer.from(pki.leaf.der);
    assertParseError(() => new ParsedCert(Buffer.concat([der, Buffer.from([0])])), /trailing/);
    assertParseError(() => new ParsedCert(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), /malformed/);
    assertParseError(() => new ParsedCert(Buffer.from([0x04, 0x00])), /malformed/);
  });
});
