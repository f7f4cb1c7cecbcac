/**
 * Delta CRLs (RFC 5280 §5.2.4) and indirect CRLs (§5.2.5, §5.3.3, §6.3.3), through verifyChain —
 * the code the check and `vigil cert verify` share — with local CRL files and distribution points
 * served over loopback. Revocation is hard-fail here, so an unusable CRL shows as
 * REVOCATION_UNKNOWN rather than a pass.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BaseCRLNumber, CRLDistributionPoints, CRLNumber, DistributionPoint, DistributionPointName, GeneralName, GeneralNames, IssuingDistributionPoint, Name as AsnName } from "@peculiar/asn1-x509";
import { verifyConfigSchema } from "../../../../src/checks/certificate_validity/config.ts";
import { TrustStore } from "../../../../src/checks/certificate_validity/pki/path.ts";
import { createRevocationChecker, verifyChain } from "../../../../src/checks/certificate_validity/verify.ts";
import { createHttpClient, type HttpClient } from "../../../../src/net/http.ts";
import { DAY, NOW, issue, x509, type Issued } from "../pki/helpers.ts";

const ext = (oid: string, critical: boolean, value: unknown) => new x509.Extension(oid, critical, AsnConvert.serialize(value));
const dn = (text: string) => AsnConvert.parse(new x509.Name(text).toArrayBuffer(), AsnName);
const uriName = (u: string) => new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: u })] });
const ECDSA = { name: "ECDSA", hash: "SHA-256" };

let server: Server;
let base: string;
const served = new Map<string, Uint8Array>();
let http: HttpClient;
let root: Issued;
let inter: Issued;
let signer: Issued;
let otherRoot: Issued;
let strayedSigner: Issued;
const leaves: Record<string, Issued> = {};

async function crl(o: { by: Issued; issuer?: string; number?: number; deltaOf?: number; entries?: x509.X509CrlEntryParams[]; idp?: IssuingDistributionPoint; freshest?: string; nextUpdate?: Date; thisUpdate?: Date }): Promise<Uint8Array> {
  const extensions: x509.Extension[] = [];
  if (o.number !== undefined) extensions.push(ext("2.5.29.20", false, new CRLNumber(o.number)));
  if (o.deltaOf !== undefined) extensions.push(ext("2.5.29.27", true, new BaseCRLNumber(o.deltaOf)));
  if (o.idp) extensions.push(ext("2.5.29.28", true, o.idp));
  if (o.freshest) extensions.push(ext("2.5.29.46", false, new CRLDistributionPoints([new DistributionPoint({ distributionPoint: uriName(o.freshest) })])));
  const c = await x509.X509CrlGenerator.create({
    issuer: o.issuer ?? o.by.subject,
    thisUpdate: o.thisUpdate ?? new Date(NOW.getTime() - 60_000),
    nextUpdate: o.nextUpdate ?? new Date(NOW.getTime() + DAY),
    entries: o.entries ?? [],
    extensions,
    signingKey: o.by.keys.pair.privateKey,
    signingAlgorithm: ECDSA,
  });
  return new Uint8Array(c.rawData);
}

/**
 * A CRL entry for `leaf`; `certificateIssuer` adds that entry extension (critical, GeneralNames as
 * RFC 5280 §5.3.3 has it: @peculiar/x509's own `issuer` writes a bare Name with the CRL's issuer).
 */
const revoke = (leaf: Issued, more: Partial<x509.X509CrlEntryParams> & { certificateIssuer?: string } = {}): x509.X509CrlEntryParams => {
  const { certificateIssuer, ...rest } = more;
  return {
    serialNumber: leaf.cert.serialNumber,
    revocationDate: new Date(NOW.getTime() - DAY),
    ...rest,
    ...(certificateIssuer ? { extensions: [ext("2.5.29.29", true, new GeneralNames([new GeneralName({ directoryName: dn(certificateIssuer) })]))] } : {}),
  };
};

before(async () => {
  server = createServer((req, res) => {
    const body = served.get(req.url ?? "");
    if (!body) res.writeHead(404).end();
    else res.writeHead(200, { "content-type": "application/pkix-crl" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  http = createHttpClient();

  root = await issue({ subject: "CN=Delta Root, O=Vigil", ca: true });
  inter = await issue({ subject: "CN=Delta Issuing CA, O=Vigil", issuer: root, ca: { pathLen: 0 } });
  // The indirect CRL's signer: issued by the same root, allowed to sign CRLs only.
  signer = await issue({ subject: "CN=Indirect CRL Signer, O=Vigil", issuer: root, ca: false, keyUsage: x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature });
  otherRoot = await issue({ subject: "CN=Other Root", ca: true });
  strayedSigner = await issue({ subject: "CN=Indirect CRL Signer, O=Vigil", issuer: otherRoot, ca: false, keyUsage: x509.KeyUsageFlags.cRLSign });
  const leaf = (name: string, extensions: x509.Extension[]) => issue({ subject: `CN=${name}.example.com`, issuer: inter, eku: [x509.ExtendedKeyUsage.serverAuth], sans: [{ type: "dns", value: `${name}.example.com` }], extensions });
  const cdp = (path: string, crlIssuer?: string) =>
    ext("2.5.29.31", false, new CRLDistributionPoints([new DistributionPoint({ distributionPoint: uriName(`${base}${path}`), ...(crlIssuer ? { cRLIssuer: [new GeneralName({ directoryName: dn(crlIssuer) })] } : {}) })]));
  for (const n of ["a", "b", "c"]) leaves[n] = await leaf(n, [cdp("/int.crl")]);
  for (const n of ["ia", "ib"]) leaves[n] = await leaf(n, [cdp("/indirect.crl", "CN=Indirect CRL Signer, O=Vigil")]);
  leaves.direct = await leaf("direct", [cdp("/indirect.crl")]);
});

after(async () => {
  await http.close();
  await new Promise<void>((r) => server.close(() => r()));
});

let lastReason = "";

async function judge(leaf: Issued, crls: Uint8Array[], o: { intermediates?: Uint8Array[]; at?: number } = {}): Promise<[string, string | undefined, string | undefined]> {
  const config = verifyConfigSchema.parse({ purpose: "server", revocation: { mode: "crl", soft_fail: false, allow_private_urls: true, timeout: "2s" } });
  const at = o.at ?? NOW.getTime();
  const revocation = createRevocationChecker(config, crls, { http, clock: { now: () => at } });
  const r = await verifyChain({ leaf: leaf.der, intermediates: [inter.der, ...(o.intermediates ?? [])], store: new TrustStore([root.der]), at }, config, revocation);
  lastReason = r.verdict.reasons[0]?.message ?? "";
  return [r.verdict.status, r.verdict.reasons[0]?.code, r.revocation?.source];
}

describe("delta CRLs", () => {
  it("a delta newer than the complete CRL adds revocations: a leaf on it is revoked, one on neither is good", async () => {
    const complete = await crl({ by: inter, number: 10 });
    const delta = await crl({ by: inter, number: 11, deltaOf: 10, entries: [revoke(leaves.a!, { reason: x509.X509CrlReason.keyCompromise })] });
    assert.deepEqual(await judge(leaves.a!, [complete, delta]), ["fail", "CERT_REVOKED", "crl:local+delta"]);
    assert.deepEqual(await judge(leaves.b!, [complete, delta]), ["pass", undefined, "crl:local+delta"]);
  });

  it("removeFromCRL on the delta releases a hold on the complete CRL", async () => {
    const complete = await crl({ by: inter, number: 20, entries: [revoke(leaves.b!, { reason: x509.X509CrlReason.certificateHold })] });
    const release = await crl({ by: inter, number: 21, deltaOf: 20, entries: [revoke(leaves.b!, { reason: x509.X509CrlReason.removeFromCRL })] });
    assert.deepEqual(await judge(leaves.b!, [complete]), ["fail", "CERT_REVOKED", "crl:local"]);
    assert.deepEqual(await judge(leaves.b!, [complete, release]), ["pass", undefined, "crl:local+delta"]);
  });

  it("a delta that does not extend the complete CRL is not used: based on a newer one, not newer itself, another key, stale", async () => {
    const complete = await crl({ by: inter, number: 30 });
    const wrong = [
      await crl({ by: inter, number: 32, deltaOf: 31, entries: [revoke(leaves.a!)] }),
      await crl({ by: inter, number: 30, deltaOf: 29, entries: [revoke(leaves.a!)] }),
      await crl({ by: await issue({ subject: "CN=Delta Issuing CA, O=Vigil", ca: true }), issuer: inter.subject, number: 31, deltaOf: 30, entries: [revoke(leaves.a!)] }),
      await crl({ by: inter, number: 31, deltaOf: 30, entries: [revoke(leaves.a!)], thisUpdate: new Date(NOW.getTime() - 3 * DAY), nextUpdate: new Date(NOW.getTime() - DAY) }),
    ];
    for (const d of wrong) assert.deepEqual(await judge(leaves.a!, [complete, d]), ["pass", undefined, "crl:local"]);
  });

  it("a delta alone cannot say a certificate is good", async () => {
    const delta = await crl({ by: inter, number: 41, deltaOf: 40 });
    const [status, code] = await judge(leaves.c!, [delta]);
    assert.deepEqual([status, code], ["fail", "REVOCATION_UNKNOWN"]);
  });

  it("the complete CRL's freshestCRL location is fetched, and its delta used", async () => {
    served.set("/int.crl", await crl({ by: inter, number: 50, freshest: `${base}/int-delta.crl` }));
    served.set("/int-delta.crl", await crl({ by: inter, number: 51, deltaOf: 50, entries: [revoke(leaves.c!)] }));
    assert.deepEqual(await judge(leaves.c!, []), ["fail", "CERT_REVOKED", `crl:${base}/int.crl+delta`]);
    // Without the delta (not served), the complete CRL answers alone.
    served.delete("/int-delta.crl");
    const [status, , source] = await judge(leaves.c!, [], { at: NOW.getTime() + 1 });
    assert.deepEqual([status, source], ["pass", `crl:${base}/int.crl`]);
  });
});

describe("indirect CRLs", () => {
  const idp = (indirect: boolean) => new IssuingDistributionPoint({ distributionPoint: uriName(`${base}/indirect.crl`), indirectCRL: indirect });

  it("a CRL from the cRLIssuer the distribution point names, indirectCRL asserted, answers per certificateIssuer", async () => {
    const c = await crl({
      by: signer,
      idp: idp(true),
      entries: [revoke(leaves.ia!, { certificateIssuer: inter.subject, reason: x509.X509CrlReason.keyCompromise }), revoke(leaves.ib!, { certificateIssuer: "CN=Some Other CA" })],
    });
    assert.deepEqual(await judge(leaves.ia!, [c], { intermediates: [signer.der] }), ["fail", "CERT_REVOKED", "crl:local"]);
    // ib's serial is listed, but for another CA's certificate.
    assert.deepEqual(await judge(leaves.ib!, [c], { intermediates: [signer.der] }), ["pass", undefined, "crl:local"]);
  });

  it("the signer's certificate must be known and validate to the chain's trust anchor", async () => {
    const c = await crl({ by: signer, idp: idp(true), entries: [revoke(leaves.ia!, { certificateIssuer: inter.subject })] });
    assert.deepEqual((await judge(leaves.ia!, [c])).slice(0, 2), ["fail", "REVOCATION_UNKNOWN"]);
    assert.match(lastReason, /no certificate of the CRL issuer "O=Vigil, CN=Indirect CRL Signer" is known/);
    const strayed = await crl({ by: strayedSigner, idp: idp(true), entries: [revoke(leaves.ia!, { certificateIssuer: inter.subject })] });
    assert.deepEqual((await judge(leaves.ia!, [strayed], { intermediates: [strayedSigner.der, otherRoot.der] })).slice(0, 2), ["fail", "REVOCATION_UNKNOWN"]);
    assert.match(lastReason, /does not validate to the chain's trust anchor/);
  });

  it("without indirectCRL, or for a certificate whose distribution point names no cRLIssuer, it does not answer", async () => {
    const notIndirect = await crl({ by: signer, idp: idp(false), entries: [revoke(leaves.ia!, { certificateIssuer: inter.subject })] });
    assert.deepEqual((await judge(leaves.ia!, [notIndirect], { intermediates: [signer.der] })).slice(0, 2), ["fail", "REVOCATION_UNKNOWN"]);
    assert.match(lastReason, /crl:local: CRL is from the cRLIssuer .* but does not assert indirectCRL/);
    const indirect = await crl({ by: signer, idp: idp(true), entries: [revoke(leaves.direct!, { certificateIssuer: inter.subject })] });
    assert.deepEqual((await judge(leaves.direct!, [indirect], { intermediates: [signer.der] })).slice(0, 2), ["fail", "REVOCATION_UNKNOWN"]);
  });

  it("an indirect CRL fetched from the distribution point works the same", async () => {
    served.set("/indirect.crl", await crl({ by: signer, idp: idp(true), entries: [revoke(leaves.ia!, { certificateIssuer: inter.subject })] }));
    assert.deepEqual(await judge(leaves.ia!, [], { intermediates: [signer.der] }), ["fail", "CERT_REVOKED", `crl:${base}/indirect.crl`]);
    assert.deepEqual(await judge(leaves.ib!, [], { intermediates: [signer.der] }), ["pass", undefined, `crl:${base}/indirect.crl`]);
  });
});
