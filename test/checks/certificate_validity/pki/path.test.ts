import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificatePolicies, PolicyInformation } from "@peculiar/asn1-x509";
import { TrustStore, validatePath, type ValidatePathInput } from "../../../../src/checks/certificate_validity/pki/path.ts";
import { DEFAULT_KEY_POLICY, type CertReason, type PathValidationResult } from "../../../../src/checks/certificate_validity/types.ts";
import { DAY, NOW, gn, issue, keys, rawExtension, x509, type Issued } from "./helpers.ts";

const SERVER = [x509.ExtendedKeyUsage.serverAuth];
const at = NOW;

interface Case {
  name: string;
  /** Builds the chain; returns the validatePath input (without defaults). */
  build: () => Promise<Partial<ValidatePathInput> & { leaf: Uint8Array }>;
  want: CertReason | "valid";
  reason?: RegExp;
}

/**
 * These tables state RFC 5280 path validation, so they run under the `rfc5280` profile; the strict
 * profile's rules and the verdicts it changes are in strict.test.ts.
 */
function run(input: Partial<ValidatePathInput> & { leaf: Uint8Array }): PathValidationResult {
  return validatePath({ intermediates: [], roots: [], at, purpose: "server", profile: "rfc5280", ...input });
}

let root: Issued;
let inter: Issued;
const leafOf = (o: Partial<Parameters<typeof issue>[0]> = {}) =>
  issue({ subject: "CN=svc", issuer: inter, eku: SERVER, sans: [{ type: "dns", value: "svc.example.com" }, { type: "ip", value: "10.0.0.5" }], ...o });
const chain = async (o: Partial<Parameters<typeof issue>[0]> = {}, extra: Partial<ValidatePathInput> = {}) => ({
  leaf: (await leafOf(o)).der,
  intermediates: [inter.der],
  roots: [root.der],
  ...extra,
});

before(async () => {
  root = await issue({ subject: "CN=Root, O=Vigil", ca: true });
  inter = await issue({ subject: "CN=Intermediate, O=Vigil", issuer: root, ca: { pathLen: 0 } });
});

const cases: Case[] = [
  // valid
  { name: "a plain server chain", build: () => chain({}, { identity: { dns: "svc.example.com" } }), want: "valid" },
  { name: "purpose any ignores EKU", build: () => chain({ eku: [x509.ExtendedKeyUsage.codeSigning] }, { purpose: "any" }), want: "valid" },
  { name: "absent EKU is accepted", build: () => chain({ eku: undefined }), want: "valid" },
  { name: "anyExtendedKeyUsage is accepted", build: () => chain({ eku: ["2.5.29.37.0"] }), want: "valid" },
  { name: "absent keyUsage is accepted", build: () => chain({ keyUsage: null }), want: "valid" },
  { name: "non-critical unknown extension", build: () => chain({ extensions: [rawExtension("1.3.6.1.4.1.99999.1", false)] }), want: "valid" },
  { name: "critical certificatePolicies is understood", build: () => chain({ extensions: [new x509.Extension("2.5.29.32", true, AsnConvert.serialize(new CertificatePolicies([new PolicyInformation({ policyIdentifier: "2.23.140.1.2.1" })])))] }), want: "valid" },
  { name: "unrelated garbage intermediate is skipped", build: async () => ({ ...(await chain()), intermediates: [new Uint8Array([0x30, 0x03, 1, 2, 3]), inter.der] }), want: "valid" },
  { name: "leaf that is itself an anchor", build: async () => { const l = await leafOf(); return { leaf: l.der, roots: [l.der] }; }, want: "valid" },

  // CERT_EXPIRED / CERT_NOT_YET_VALID
  { name: "expired leaf", build: () => chain({ notAfter: new Date(at.getTime() - 1000) }), want: "CERT_EXPIRED", reason: /the certificate "CN=svc" expired/ },
  { name: "leaf not yet valid", build: () => chain({ notBefore: new Date(at.getTime() + DAY) }), want: "CERT_NOT_YET_VALID" },
  { name: "expired intermediate", build: async () => {
      const i2 = await issue({ subject: "CN=Old Intermediate", issuer: root, ca: true, notAfter: new Date(at.getTime() - DAY) });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_EXPIRED", reason: /intermediate "CN=Old Intermediate" expired/ },
  { name: "intermediate not yet valid", build: async () => {
      const i2 = await issue({ subject: "CN=Future Intermediate", issuer: root, ca: true, notBefore: new Date(at.getTime() + DAY) });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_NOT_YET_VALID", reason: /intermediate/ },
  { name: "expired anchor", build: async () => {
      const r2 = await issue({ subject: "CN=Old Root", ca: true, notAfter: new Date(at.getTime() - DAY) });
      return { leaf: (await issue({ subject: "CN=svc", issuer: r2, eku: SERVER })).der, roots: [r2.der] };
    }, want: "CERT_EXPIRED", reason: /trust anchor "CN=Old Root" expired/ },
  { name: "evaluation time decides", build: () => chain({}, { at: new Date(at.getTime() + 400 * DAY) }), want: "CERT_EXPIRED" },
  { name: "pinned leaf (anchor) expired", build: async () => { const l = await leafOf({ notAfter: new Date(at.getTime() - 1) }); return { leaf: l.der, roots: [l.der] }; }, want: "CERT_EXPIRED" },

  // CERT_UNTRUSTED
  { name: "unknown root", build: async () => ({ ...(await chain()), roots: [(await issue({ subject: "CN=Other Root", ca: true })).der] }), want: "CERT_UNTRUSTED", reason: /no trust anchor or intermediate has the subject "O=Vigil, CN=Root"/ },
  { name: "missing intermediate", build: async () => ({ ...(await chain()), intermediates: [] }), want: "CERT_UNTRUSTED", reason: /issuer of "CN=svc"/ },
  { name: "self-signed leaf not in the store", build: async () => ({ leaf: (await issue({ subject: "CN=self", eku: SERVER })).der, roots: [root.der] }), want: "CERT_UNTRUSTED", reason: /self-signed/ },
  { name: "no anchors at all", build: async () => ({ ...(await chain()), roots: [] }), want: "CERT_UNTRUSTED" },
  { name: "only garbage intermediates", build: async () => ({ ...(await chain()), intermediates: [new Uint8Array([0x30, 0x03, 1, 2, 3])] }), want: "CERT_MALFORMED", reason: /intermediate #1/ },

  // CERT_BAD_SIGNATURE
  { name: "leaf signed by another key under the intermediate's name", build: async () => chain({ signWith: await keys("p256") }), want: "CERT_BAD_SIGNATURE", reason: /does not verify/ },
  { name: "tampered signature bytes", build: async () => {
      const l = Buffer.from((await leafOf()).der);
      l[l.length - 5] = l[l.length - 5]! ^ 0x01;
      return { leaf: l, intermediates: [inter.der], roots: [root.der] };
    }, want: "CERT_BAD_SIGNATURE" },
  { name: "intermediate not signed by the anchor", build: async () => {
      const fake = await issue({ subject: "CN=Root, O=Vigil", ca: true }); // same name, other key
      const i2 = await issue({ subject: "CN=Intermediate 2", issuer: fake, ca: true });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_BAD_SIGNATURE", reason: /"CN=Intermediate 2" does not verify with the key of trust anchor/ },

  // CERT_PURPOSE
  { name: "leaf EKU clientAuth only, purpose server", build: () => chain({ eku: [x509.ExtendedKeyUsage.clientAuth] }), want: "CERT_PURPOSE", reason: /lacks extendedKeyUsage serverAuth/ },
  { name: "leaf EKU serverAuth only, purpose client", build: () => chain({}, { purpose: "client" }), want: "CERT_PURPOSE", reason: /clientAuth/ },
  { name: "leaf keyUsage keyAgreement only, purpose server", build: () => chain({ keyUsage: x509.KeyUsageFlags.keyAgreement }), want: "CERT_PURPOSE", reason: /digitalSignature or keyEncipherment/ },
  { name: "leaf keyUsage keyEncipherment only, purpose client", build: () => chain({ keyUsage: x509.KeyUsageFlags.keyEncipherment, eku: [x509.ExtendedKeyUsage.clientAuth] }, { purpose: "client" }), want: "CERT_PURPOSE" },
  { name: "required extra EKU missing", build: () => chain({}, { extendedKeyUsage: ["codeSigning"] }), want: "CERT_PURPOSE", reason: /codeSigning/ },
  { name: "required extra EKU by OID present", build: () => chain({ eku: [x509.ExtendedKeyUsage.serverAuth, "1.3.6.1.5.5.7.3.17"] }, { extendedKeyUsage: ["1.3.6.1.5.5.7.3.17"] }), want: "valid" },
  { name: "unknown EKU name fails closed", build: () => chain({}, { extendedKeyUsage: ["bogusAuth"] }), want: "CERT_PURPOSE", reason: /unknown extendedKeyUsage/ },
  { name: "required keyUsage missing", build: () => chain({ keyUsage: x509.KeyUsageFlags.digitalSignature }, { keyUsage: ["keyEncipherment"] }), want: "CERT_PURPOSE", reason: /lacks keyUsage keyEncipherment/ },
  { name: "required keyUsage present", build: () => chain({}, { keyUsage: ["digitalSignature", "keyEncipherment"] }), want: "valid" },
  { name: "pathLen 0 violated by a second intermediate", build: async () => {
      const i2 = await issue({ subject: "CN=Sub Intermediate", issuer: inter, ca: true });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der, inter.der], roots: [root.der] };
    }, want: "CERT_PURPOSE", reason: /pathLenConstraint 0 but 1 intermediate/ },
  { name: "pathLen on the anchor is enforced", build: async () => {
      const r0 = await issue({ subject: "CN=Root pathlen 0", ca: { pathLen: 0 } });
      const i1 = await issue({ subject: "CN=I1", issuer: r0, ca: true });
      const i2 = await issue({ subject: "CN=I2", issuer: i1, ca: true });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i1.der, i2.der], roots: [r0.der] };
    }, want: "CERT_PURPOSE", reason: /trust anchor "CN=Root pathlen 0" has pathLenConstraint 0 but 2/ },
  { name: "intermediate without basicConstraints", build: async () => {
      const i2 = await issue({ subject: "CN=Not a CA", issuer: root, basicConstraints: null, keyUsage: x509.KeyUsageFlags.keyCertSign });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_PURPOSE", reason: /is not a CA \(basicConstraints absent\)/ },
  { name: "intermediate with cA false", build: async () => {
      const i2 = await issue({ subject: "CN=Leafish", issuer: root, basicConstraints: { cA: false }, keyUsage: x509.KeyUsageFlags.keyCertSign });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_PURPOSE", reason: /cA false/ },
  { name: "intermediate keyUsage without keyCertSign", build: async () => {
      const i2 = await issue({ subject: "CN=No certsign", issuer: root, ca: true, keyUsage: x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_PURPOSE", reason: /without keyCertSign/ },
  { name: "anchor with basicConstraints cA false", build: async () => {
      const r2 = await issue({ subject: "CN=Odd Root", basicConstraints: { cA: false }, keyUsage: null });
      return { leaf: (await issue({ subject: "CN=svc", issuer: r2, eku: SERVER })).der, roots: [r2.der] };
    }, want: "CERT_PURPOSE" },
  { name: "intermediate EKU restricted to clientAuth, purpose server", build: async () => {
      const i2 = await issue({ subject: "CN=Client CA", issuer: root, ca: true, eku: [x509.ExtendedKeyUsage.clientAuth] });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_PURPOSE", reason: /restricts extendedKeyUsage to clientAuth/ },

  // CERT_NAME_MISMATCH
  { name: "other DNS name", build: () => chain({}, { identity: { dns: "evil.example.com" } }), want: "CERT_NAME_MISMATCH", reason: /evil.example.com/ },
  { name: "other IP", build: () => chain({}, { identity: { ip: "10.0.0.6" } }), want: "CERT_NAME_MISMATCH" },
  { name: "IP matches", build: () => chain({}, { identity: { ip: "10.0.0.5" } }), want: "valid" },
  { name: "SPIFFE ID mismatch", build: () => chain({ sans: [{ type: "url", value: "spiffe://example.org/ns/web/sa/a" }] }, { identity: { uri: "spiffe://example.org/ns/web/sa/b" } }), want: "CERT_NAME_MISMATCH" },
  { name: "SPIFFE ID match", build: () => chain({ sans: [{ type: "url", value: "spiffe://example.org/ns/web/sa/a" }] }, { identity: { uri: "spiffe://example.org/ns/web/sa/a" } }), want: "valid" },
  { name: "CN only, no SAN", build: () => chain({ subject: "CN=svc.example.com", sans: undefined }, { identity: { dns: "svc.example.com" } }), want: "CERT_NAME_MISMATCH" },
  { name: "partial wildcard", build: () => chain({ sans: [{ type: "dns", value: "s*.example.com" }] }, { identity: { dns: "svc.example.com" } }), want: "CERT_NAME_MISMATCH" },

  // CERT_NAME_CONSTRAINTS
  ...(["intermediate", "anchor"] as const).map((where): Case => ({
    name: `DNS outside the ${where}'s permitted subtree`,
    build: async () => {
      const nc = { permitted: [gn.dns("example.com")] };
      const r = where === "anchor" ? await issue({ subject: "CN=NC Root", ca: true, nameConstraints: nc }) : root;
      const i2 = await issue({ subject: "CN=NC Intermediate", issuer: r, ca: true, ...(where === "intermediate" ? { nameConstraints: nc } : {}) });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER, sans: [{ type: "dns", value: "svc.example.net" }] })).der, intermediates: [i2.der], roots: [r.der] };
    },
    want: "CERT_NAME_CONSTRAINTS",
    reason: /DNS:svc.example.net is outside the permitted subtrees/,
  })),
  { name: "excluded IP range", build: async () => {
      const i2 = await issue({ subject: "CN=NC IP", issuer: root, ca: true, nameConstraints: { excluded: [gn.ip("10.0.0.0/24")] } });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER, sans: [{ type: "ip", value: "10.0.0.5" }] })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_NAME_CONSTRAINTS", reason: /IP:10.0.0.5 is within an excluded subtree/ },
  { name: "SPIFFE trust domain constraint", build: async () => {
      const i2 = await issue({ subject: "CN=NC URI", issuer: root, ca: true, nameConstraints: { permitted: [gn.uri("example.org")] } });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER, sans: [{ type: "url", value: "spiffe://evil.org/ns/a" }] })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_NAME_CONSTRAINTS" },
  { name: "constraint applies to lower intermediates' subjects too", build: async () => {
      const i1 = await issue({ subject: "C=DE, O=Vigil, CN=DN-constrained", issuer: root, ca: true, nameConstraints: { permitted: [gn.dn("C=DE, O=Vigil")] } });
      const i2 = await issue({ subject: "C=US, O=Other, CN=Sub", issuer: i1, ca: true });
      return { leaf: (await issue({ subject: "C=DE, O=Vigil, CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i1.der, i2.der], roots: [root.der] };
    }, want: "CERT_NAME_CONSTRAINTS", reason: /in intermediate "CN=Sub, O=Other, C=US"/ },
  { name: "names inside all constraints", build: async () => {
      const i2 = await issue({ subject: "CN=NC ok", issuer: root, ca: true, nameConstraints: { permitted: [gn.dns("example.com"), gn.ip("10.0.0.0/8")] } });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER, sans: [{ type: "dns", value: "svc.example.com" }, { type: "ip", value: "10.0.0.5" }] })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "valid" },

  // CERT_UNKNOWN_CRITICAL_EXTENSION
  { name: "unknown critical extension on the leaf", build: () => chain({ extensions: [rawExtension("1.3.6.1.4.1.99999.7", true)] }), want: "CERT_UNKNOWN_CRITICAL_EXTENSION", reason: /1.3.6.1.4.1.99999.7/ },
  { name: "CT precertificate poison (critical) on the leaf", build: () => chain({ extensions: [rawExtension("1.3.6.1.4.1.11129.2.4.3", true)] }), want: "CERT_UNKNOWN_CRITICAL_EXTENSION" },
  { name: "unknown critical extension on an intermediate", build: async () => {
      const i2 = await issue({ subject: "CN=Odd Intermediate", issuer: root, ca: true, extensions: [rawExtension("1.2.3.4", true)] });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_UNKNOWN_CRITICAL_EXTENSION", reason: /intermediate/ },
  { name: "unknown critical extension on the anchor is not enforced", build: async () => {
      const r2 = await issue({ subject: "CN=Odd Root", ca: true, extensions: [rawExtension("1.2.3.4", true)] });
      return { leaf: (await issue({ subject: "CN=svc", issuer: r2, eku: SERVER })).der, roots: [r2.der] };
    }, want: "valid" },

  // CERT_WEAK_KEY
  { name: "RSA-1024 leaf", build: () => chain({ keyKind: "rsa1024" }), want: "CERT_WEAK_KEY", reason: /RSA-1024 key \(minimum 2048/ },
  { name: "RSA-1024 leaf with min_rsa_bits 1024", build: () => chain({ keyKind: "rsa1024" }, { keyPolicy: { ...DEFAULT_KEY_POLICY, min_rsa_bits: 1024 } }), want: "valid" },
  { name: "RSA-1024 intermediate", build: async () => {
      const i2 = await issue({ subject: "CN=Weak Intermediate", issuer: root, ca: true, keyKind: "rsa1024" });
      return { leaf: (await issue({ subject: "CN=svc", issuer: i2, eku: SERVER })).der, intermediates: [i2.der], roots: [root.der] };
    }, want: "CERT_WEAK_KEY", reason: /intermediate "CN=Weak Intermediate" has an RSA-1024 key/ },
  { name: "RSA-1024 anchor is not judged", build: async () => {
      const r2 = await issue({ subject: "CN=Weak Root", ca: true, keyKind: "rsa1024" });
      return { leaf: (await issue({ subject: "CN=svc", issuer: r2, eku: SERVER })).der, roots: [r2.der] };
    }, want: "valid" },
  { name: "P-384 leaf when only P-256 is allowed", build: () => chain({ keyKind: "p384" }, { keyPolicy: { ...DEFAULT_KEY_POLICY, allowed_curves: ["P-256"] } }), want: "CERT_WEAK_KEY", reason: /P-384/ },
  { name: "Ed25519 leaf when not allowed", build: async () => chain({ keys: await keys("ed25519") }, { keyPolicy: { ...DEFAULT_KEY_POLICY, allow_ed25519: false } }), want: "CERT_WEAK_KEY", reason: /Ed25519/ },
  { name: "Ed25519 leaf by default", build: async () => chain({ keys: await keys("ed25519") }), want: "valid" },
  ...[false, true].map((allow): Case => ({
    name: `SHA-1 signature on the leaf (allow_sha1 ${allow})`,
    build: async () => {
      const r2 = await issue({ subject: "CN=RSA Root", ca: true, keyKind: "rsa2048-sha1" });
      const l = await issue({ subject: "CN=svc", issuer: r2, eku: SERVER });
      return { leaf: l.der, roots: [r2.der], keyPolicy: { ...DEFAULT_KEY_POLICY, allow_sha1: allow } };
    },
    want: allow ? "valid" : "CERT_WEAK_KEY",
    ...(allow ? {} : { reason: /sha1WithRSAEncryption signature \(SHA-1 is not allowed\)/ }),
  })),

  // CERT_PATH_TOO_LONG
  { name: "3 certificates with max_depth 2", build: () => chain({}, { maxDepth: 2 }), want: "CERT_PATH_TOO_LONG", reason: /has 3 certificates, max_depth is 2/ },
  { name: "3 certificates with max_depth 3", build: () => chain({}, { maxDepth: 3 }), want: "valid" },

  // CERT_MALFORMED
  { name: "garbage leaf", build: async () => ({ leaf: new Uint8Array([0x30, 0x82, 0x01]), roots: [root.der] }), want: "CERT_MALFORMED", reason: /the certificate: malformed/ },
  { name: "garbage anchor", build: async () => ({ ...(await chain()), roots: [new Uint8Array([1, 2])] }), want: "CERT_MALFORMED", reason: /trust anchor #1/ },
];

describe("validatePath: one table per reason code", () => {
  for (const c of cases) {
    it(`${c.want}: ${c.name}`, async () => {
      const r = run(await c.build());
      if (c.want === "valid") {
        assert.equal(r.valid, true, `${r.code}: ${r.reason}`);
        assert.equal(r.code, undefined);
        assert.ok(r.path && r.pathDer && r.path.length === r.pathDer.length);
      } else {
        assert.equal(r.valid, false);
        assert.equal(r.code, c.want, r.reason);
        if (c.reason) assert.match(r.reason ?? "", c.reason);
      }
    });
  }
});

describe("validatePath: path building", () => {
  it("returns the path leaf → anchor with summaries and DER", async () => {
    const input = await chain();
    const r = run(input);
    assert.equal(r.valid, true);
    assert.deepEqual(r.path!.map((p) => p.subject), ["CN=svc", "O=Vigil, CN=Intermediate", "O=Vigil, CN=Root"]);
    assert.deepEqual(r.pathDer!.map((d) => Buffer.from(d)), [input.leaf, inter.der, root.der].map((d) => Buffer.from(d)));
  });

  it("accepts a TrustStore and a DER list alike; anchors() round-trips", async () => {
    const input = await chain();
    const store = new TrustStore([root.der, root.der]);
    assert.equal(store.size, 1);
    assert.deepEqual(store.anchors().map((d) => Buffer.from(d)), [Buffer.from(root.der)]);
    assert.equal(run({ ...input, roots: store }).valid, true);
  });

  it("two anchors with the same subject: the one whose key verifies wins", async () => {
    const rA = await issue({ subject: "CN=Shared Root", ca: true });
    const rB = await issue({ subject: "CN=Shared Root", ca: true });
    const i = await issue({ subject: "CN=I", issuer: rB, ca: true });
    const l = await issue({ subject: "CN=svc", issuer: i, eku: SERVER });
    for (const roots of [[rA.der, rB.der], [rB.der, rA.der]]) {
      const r = run({ leaf: l.der, intermediates: [i.der], roots });
      assert.equal(r.valid, true, r.reason);
      assert.equal(Buffer.compare(Buffer.from(r.pathDer![2]!), Buffer.from(rB.der)), 0);
    }
  });

  it("cross-signed root: new root trusted directly, or reached through the cross-sign from the old root", async () => {
    const oldRoot = await issue({ subject: "CN=Old Root", ca: true });
    const newRoot = await issue({ subject: "CN=New Root", ca: true });
    const cross = await issue({ subject: "CN=New Root", keys: newRoot.keys, issuer: oldRoot, ca: true }); // New Root's key, signed by Old Root
    const i = await issue({ subject: "CN=Issuing CA", issuer: newRoot, ca: true });
    const l = await issue({ subject: "CN=svc", issuer: i, eku: SERVER });
    const presented = [i.der, cross.der, newRoot.der];
    const viaOld = run({ leaf: l.der, intermediates: presented, roots: [oldRoot.der] });
    assert.equal(viaOld.valid, true, viaOld.reason);
    assert.deepEqual(viaOld.path!.map((p) => p.subject), ["CN=svc", "CN=Issuing CA", "CN=New Root", "CN=Old Root"]);
    const direct = run({ leaf: l.der, intermediates: presented, roots: [oldRoot.der, newRoot.der] });
    assert.deepEqual(direct.path!.map((p) => p.subject), ["CN=svc", "CN=Issuing CA", "CN=New Root"]);
    // An expired cross-sign is passed over when the direct anchor exists, and reported when it is the only way.
    const expiredCross = await issue({ subject: "CN=New Root", keys: newRoot.keys, issuer: oldRoot, ca: true, notAfter: new Date(at.getTime() - DAY) });
    assert.equal(run({ leaf: l.der, intermediates: [i.der, expiredCross.der], roots: [oldRoot.der, newRoot.der] }).valid, true);
    const onlyExpired = run({ leaf: l.der, intermediates: [i.der, expiredCross.der], roots: [oldRoot.der] });
    assert.equal(onlyExpired.code, "CERT_EXPIRED");
    assert.equal(onlyExpired.path!.length, 4);
    // With the expired and a valid cross-sign both presented, the valid one is found.
    assert.equal(run({ leaf: l.der, intermediates: [i.der, expiredCross.der, cross.der], roots: [oldRoot.der] }).valid, true);
  });

  it("a loop (A issues B, B issues A) terminates as untrusted", async () => {
    const kA = await keys("p256");
    const kB = await keys("p256");
    const a = await issue({ subject: "CN=A", keys: kA, issuerName: "CN=B", signWith: kB, ca: true });
    const b = await issue({ subject: "CN=B", keys: kB, issuerName: "CN=A", signWith: kA, ca: true });
    const l = await issue({ subject: "CN=svc", issuerName: "CN=A", signWith: kA, eku: SERVER });
    const r = run({ leaf: l.der, intermediates: [a.der, b.der], roots: [root.der] });
    assert.equal(r.code, "CERT_UNTRUSTED");
    assert.match(r.reason!, /issuer of/);
  });

  it("many same-name decoys terminate within the work budget", async () => {
    const decoys: Uint8Array[] = [];
    for (let n = 0; n < 40; n++) decoys.push((await issue({ subject: "CN=Intermediate, O=Vigil", issuer: root, ca: true })).der);
    const l = await leafOf();
    const r = run({ leaf: l.der, intermediates: [...decoys, inter.der], roots: [root.der] });
    assert.equal(r.valid, true, r.reason); // AKID/SKI ranking puts the real issuer first
    const orphan = await issue({ subject: "CN=svc", issuerName: "CN=Intermediate, O=Vigil", signWith: await keys("p256"), eku: SERVER });
    const r2 = run({ leaf: orphan.der, intermediates: decoys, roots: [root.der] });
    assert.equal(r2.code, "CERT_BAD_SIGNATURE");
  });

  it("a long path is too long only when no shorter one exists", async () => {
    const i1 = await issue({ subject: "CN=L1", issuer: root, ca: true });
    const i2 = await issue({ subject: "CN=L2", issuer: i1, ca: true });
    const i3 = await issue({ subject: "CN=L3", issuer: i2, ca: true });
    const l = await issue({ subject: "CN=svc", issuer: i3, eku: SERVER });
    const input = { leaf: l.der, intermediates: [i3.der, i2.der, i1.der], roots: [root.der] };
    assert.equal(run({ ...input, maxDepth: 5 }).valid, true);
    const r = run({ ...input, maxDepth: 4 });
    assert.equal(r.code, "CERT_PATH_TOO_LONG");
    assert.equal(r.path!.length, 5);
    // A second anchor at L2 gives a 4-certificate path that fits.
    assert.equal(run({ ...input, maxDepth: 4, roots: [root.der, i2.der] }).valid, true);
  });

  it("self-issued intermediates (key rollover) do not count toward pathLen", async () => {
    const r0 = await issue({ subject: "CN=Roll Root", ca: { pathLen: 2 } }); // Roll CA (old) + Sub CA; the self-issued new Roll CA is not counted
    const oldI = await issue({ subject: "CN=Roll CA", issuer: r0, ca: true });
    const newI = await issue({ subject: "CN=Roll CA", issuer: oldI, ca: true }); // self-issued: new key signed by old
    const sub = await issue({ subject: "CN=Sub CA", issuer: newI, ca: true });
    const l = await issue({ subject: "CN=svc", issuer: sub, eku: SERVER });
    const r = run({ leaf: l.der, intermediates: [sub.der, newI.der, oldI.der], roots: [r0.der] });
    assert.equal(r.valid, true, r.reason);
    assert.equal(r.path!.length, 5);
  });

  it("accepts OpenSSL curve names in allowed_curves", async () => {
    const r = run({ ...(await chain()), keyPolicy: { ...DEFAULT_KEY_POLICY, allowed_curves: ["prime256v1"] } });
    assert.equal(r.valid, true, r.reason);
  });

  it("an invalid evaluation time is a programming error", async () => {
    const input = await chain();
    assert.throws(() => run({ ...input, at: new Date(Number.NaN) }), RangeError);
  });

  it("keeps its own copy of the DER: later changes to the caller's buffer do not matter", async () => {
    const input = await chain();
    const interCopy = new Uint8Array(inter.der);
    assert.equal(run({ ...input, intermediates: [interCopy] }).valid, true);
    const r = run({ ...input, intermediates: [interCopy] });
    interCopy.fill(0);
    assert.equal(r.valid, true);
    assert.equal(Buffer.compare(Buffer.from(r.pathDer![1]!), Buffer.from(inter.der)), 0);
  });

  it("gives the leaf summary even when no path is found", async () => {
    const r = run({ ...(await chain()), intermediates: [] });
    assert.equal(r.path!.length, 1);
    assert.equal(r.path![0]!.subject, "CN=svc");
  });
});
