// Generates the local PKI the default config's demo uses (npm start runs it): a root CA and one
// certificate per demo workload, written to var/demo-pki/ (or the directory given as the first
// argument). frontend's certificate expires in 7 days (inside warn_before, so its access drops to
// read_only); billing's is revoked in the CRL (so it is denied); api's is fine. chains.jsonl is
// input for `vigil cert verify --batch`. Regenerated on every start so the dates stay meaningful.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);
const dir = process.argv[2] ? pathToFileURL(resolve(process.argv[2]) + "/") : new URL("../var/demo-pki/", import.meta.url);
mkdirSync(dir, { recursive: true, mode: 0o700 });
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY = 86_400_000;
const now = Date.now();
const gen = () => webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]) as Promise<webcrypto.CryptoKeyPair>;

const caKeys = await gen();
const ca = await x509.X509CertificateGenerator.createSelfSigned({
  serialNumber: "01",
  name: "CN=vigil demo root CA, O=example.org",
  notBefore: new Date(now - DAY),
  notAfter: new Date(now + 3650 * DAY),
  keys: caKeys,
  signingAlgorithm: alg,
  extensions: [
    new x509.BasicConstraintsExtension(true, 1, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
  ],
});

const workloads = [
  { id: "frontend", spiffe: "spiffe://example.org/ns/web/sa/frontend", days: 7, serial: "1001" },
  { id: "api", spiffe: "spiffe://example.org/ns/api/sa/api", days: 90, serial: "1002" },
  { id: "billing", spiffe: "spiffe://example.org/ns/billing/sa/billing", days: 90, serial: "1003" },
];
const pems = new Map<string, string>();
for (const w of workloads) {
  const keys = await gen();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: w.serial,
    // No CN: the SPIFFE ID in the SAN is the identity, and a CN would have to copy it (strict profile).
    subject: `OU=${w.id}, O=example.org`,
    issuer: ca.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + w.days * DAY),
    signingKey: caKeys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: w.spiffe }]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  pems.set(w.id, cert.toString("pem") + "\n");
  writeFileSync(new URL(`${w.id}.pem`, dir), pems.get(w.id)!);
}

const crl = await x509.X509CrlGenerator.create({
  issuer: ca.subject,
  thisUpdate: new Date(now - 60_000),
  nextUpdate: new Date(now + 7 * DAY),
  entries: [{ serialNumber: "1003", revocationDate: new Date(now - 3600_000), reason: x509.X509CrlReason.keyCompromise }],
  signingKey: caKeys.privateKey,
  signingAlgorithm: alg,
});
writeFileSync(new URL("root.pem", dir), ca.toString("pem") + "\n");
// RFC 7468 label, which OpenSSL and most tools expect.
const crlPem = x509.PemConverter.encode(crl.rawData, "X509 CRL") + "\n";
writeFileSync(new URL("root.crl", dir), crlPem);
// One line per workload for `vigil cert verify --batch`: billing's comes out revoked.
const lines = workloads.map((w) => JSON.stringify({ id: w.id, leaf: pems.get(w.id), roots: [ca.toString("pem")], spiffe: w.spiffe, purpose: "client", crls: [crlPem] }));
writeFileSync(new URL("chains.jsonl", dir), lines.join("\n") + "\n");
console.log(`demo PKI written to ${dir.pathname}`);
