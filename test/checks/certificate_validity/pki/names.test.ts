import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { ParsedCertificate as ParsedCert } from "../../../../src/plugin/x509/certificate.ts";
import { checkNameConstraints, dnsNameMatches, dnsWithin, emailWithin, ipWithin, matchIdentity, normalizeDnsName, uriHost, uriWithin } from "../../../../src/checks/certificate_validity/pki/names.ts";
import { ipToBytes, ipToText } from "../../../../src/plugin/x509/ip.ts";
import type { ExpectedIdentity } from "../../../../src/checks/certificate_validity/types.ts";
import { dnsSyntaxProblem } from "../../../../src/checks/certificate_validity/pki/dns.ts";
import { gn, issue, type Issued } from "./helpers.ts";

describe("DNS identity (RFC 6125)", () => {
  const table: [presented: string, reference: string, match: boolean][] = [
    ["svc.example.com", "svc.example.com", true],
    ["SVC.Example.COM", "svc.example.com", true],
    ["svc.example.com.", "svc.example.com", true],
    ["svc.example.com", "other.example.com", false],
    ["*.example.com", "svc.example.com", true],
    ["*.example.com", "example.com", false],
    ["*.example.com", "a.b.example.com", false],
    ["*.example.com", ".example.com", false],
    ["*.com", "example.com", false],
    ["w*.example.com", "www.example.com", false],
    ["*w.example.com", "www.example.com", false],
    ["www.*.example.com", "www.a.example.com", false],
    ["*.*.example.com", "a.b.example.com", false],
    ["**.example.com", "a.example.com", false],
    ["*", "localhost", false],
    ["xn--bcher-kva.example", "xn--bcher-kva.example", true],
    ["", "example.com", false],
  ];
  for (const [p, r, want] of table) {
    it(`${JSON.stringify(p)} ${want ? "matches" : "does not match"} ${JSON.stringify(r)}`, () => {
      assert.equal(dnsNameMatches(p, normalizeDnsName(r) ?? r), want);
    });
  }
  it("normalizes references: case, trailing dot, IDNA", () => {
    assert.equal(normalizeDnsName("Bücher.Example."), "xn--bcher-kva.example");
    assert.equal(normalizeDnsName("SVC.example.com."), "svc.example.com");
    assert.equal(normalizeDnsName("foo.0x7f"), "foo.0x7f");
    assert.equal(normalizeDnsName(""), undefined);
    assert.equal(normalizeDnsName("*.example.com"), undefined);
  });
});

describe("IP text and bytes", () => {
  const table: [string, string | undefined][] = [
    ["10.0.0.5", "10.0.0.5"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8::1", "2001:db8::1"],
    ["[::1]", "::1"],
    ["::", "::"],
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["fe80::1%eth0", undefined],
    ["10.0.0", undefined],
    ["host", undefined],
  ];
  for (const [text, norm] of table) {
    it(`${text} → ${norm}`, () => {
      const b = ipToBytes(text);
      assert.equal(b === undefined ? undefined : ipToText(b), norm);
    });
  }
});

describe("matchIdentity", () => {
  let cert: ParsedCert;
  let cnOnly: ParsedCert;
  before(async () => {
    cert = new ParsedCert(
      (
        await issue({
          subject: "CN=ignored.example.com",
          sans: [
            { type: "dns", value: "svc.example.com" },
            { type: "dns", value: "*.apps.example.com" },
            { type: "dns", value: "xn--bcher-kva.example" },
            { type: "ip", value: "10.0.0.5" },
            { type: "ip", value: "2001:db8::1" },
            { type: "email", value: "Ops@Example.COM" },
            { type: "url", value: "spiffe://example.org/ns/web/sa/frontend" },
          ],
        })
      ).der,
    );
    cnOnly = new ParsedCert((await issue({ subject: "CN=svc.example.com" })).der);
  });
  const table: [string, ExpectedIdentity, boolean][] = [
    ["exact DNS", { dns: "svc.example.com" }, true],
    ["DNS case-insensitive", { dns: "SVC.EXAMPLE.COM." }, true],
    ["wildcard DNS", { dns: "web.apps.example.com" }, true],
    ["wildcard covers one label only", { dns: "a.web.apps.example.com" }, false],
    ["IDNA U-label reference", { dns: "bücher.example" }, true],
    ["subject CN is never used", { dns: "ignored.example.com" }, false],
    ["other DNS", { dns: "evil.example.com" }, false],
    ["IPv4", { ip: "10.0.0.5" }, true],
    ["IPv4 other", { ip: "10.0.0.6" }, false],
    ["IPv6 normalized", { ip: "2001:0db8:0000::0001" }, true],
    ["IPv6 other", { ip: "2001:db8::2" }, false],
    ["IP literal given as dns", { dns: "10.0.0.5" }, true],
    ["IP is not a DNS name", { dns: "10.0.0.6" }, false],
    ["email: domain case-insensitive", { email: "Ops@example.com" }, true],
    ["email: local part exact", { email: "ops@example.com" }, false],
    ["SPIFFE ID exact", { uri: "spiffe://example.org/ns/web/sa/frontend" }, true],
    ["SPIFFE ID differs by a trailing slash", { uri: "spiffe://example.org/ns/web/sa/frontend/" }, false],
    ["SPIFFE ID prefix", { uri: "spiffe://example.org/ns/web" }, false],
    ["URI case matters", { uri: "SPIFFE://example.org/ns/web/sa/frontend" }, false],
    ["all given must match", { dns: "svc.example.com", ip: "10.9.9.9" }, false],
    ["nothing asked", {}, true],
  ];
  for (const [name, id, want] of table) {
    it(name, () => {
      const why = matchIdentity(cert, id);
      assert.equal(why === undefined, want, why);
    });
  }
  it("a certificate without SANs matches no DNS name, even its CN", () => {
    assert.match(matchIdentity(cnOnly, { dns: "svc.example.com" })!, /no DNS subjectAltName matches "svc.example.com" \(certificate has none\)/);
  });
});

describe("name constraint primitives", () => {
  it("dNSName: label boundary, leading dot = strictly below", () => {
    assert.ok(dnsWithin("example.com", "example.com"));
    assert.ok(dnsWithin("a.example.com", "example.com"));
    assert.ok(dnsWithin("A.Example.Com.", "example.com"));
    assert.ok(!dnsWithin("badexample.com", "example.com"));
    assert.ok(!dnsWithin("example.com.evil", "example.com"));
    assert.ok(dnsWithin("a.example.com", ".example.com"));
    assert.ok(!dnsWithin("example.com", ".example.com"));
    assert.ok(dnsWithin("anything", ""));
  });
  it("rfc822Name: mailbox, host, .domain", () => {
    assert.ok(emailWithin("a@example.com", "a@EXAMPLE.com"));
    assert.ok(!emailWithin("b@example.com", "a@example.com"));
    assert.ok(emailWithin("b@Example.com", "example.com"));
    assert.ok(!emailWithin("b@mail.example.com", "example.com"));
    assert.ok(emailWithin("b@mail.example.com", ".example.com"));
    assert.ok(!emailWithin("b@example.com", ".example.com"));
    assert.ok(!emailWithin("not-an-address", "example.com"));
  });
  it("URI: the host part", () => {
    assert.equal(uriHost("spiffe://Example.org/ns/x"), "example.org");
    assert.equal(uriHost("https://user@host.example.com:8443/p?q"), "host.example.com");
    assert.equal(uriHost("urn:uuid:1234"), undefined);
    assert.equal(uriHost("https://[::1]/"), undefined);
    assert.ok(uriWithin("spiffe://example.org/ns/x", "example.org"));
    assert.ok(!uriWithin("spiffe://evil.org/ns/x", "example.org"));
    assert.ok(!uriWithin("spiffe://sub.example.org/x", "example.org"));
    assert.ok(uriWithin("spiffe://sub.example.org/x", ".example.org"));
    assert.ok(!uriWithin("urn:x", "example.org"));
  });
  it("iPAddress: address and mask, same family only", () => {
    const r = (a: string, m: string) => ({ addr: ipToBytes(a)!, mask: ipToBytes(m)! });
    assert.ok(ipWithin(ipToBytes("10.1.2.3")!, r("10.0.0.0", "255.0.0.0")));
    assert.ok(!ipWithin(ipToBytes("11.1.2.3")!, r("10.0.0.0", "255.0.0.0")));
    assert.ok(!ipWithin(ipToBytes("::ffff:10.1.2.3")!, r("10.0.0.0", "255.0.0.0")));
    assert.ok(ipWithin(ipToBytes("2001:db8::5")!, r("2001:db8::", "ffff:ffff::")));
  });
});

describe("checkNameConstraints", () => {
  let ca: Issued;
  before(async () => {
    ca = await issue({
      subject: "CN=Constrained, O=Vigil, C=DE",
      ca: true,
      nameConstraints: {
        permitted: [gn.dns("example.com"), gn.ip("10.0.0.0/8"), gn.email(".example.com"), gn.uri("example.org"), gn.dn("C=DE, O=Vigil")],
        excluded: [gn.dns("secret.example.com"), gn.ip("10.66.0.0/16")],
      },
    });
  });
  const table: [string, Parameters<typeof issue>[0], RegExp | undefined][] = [
    ["all names inside", { subject: "C=DE, O=Vigil, CN=ok", sans: [{ type: "dns", value: "a.example.com" }, { type: "ip", value: "10.1.1.1" }] }, undefined],
    ["DNS outside permitted", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "dns", value: "a.example.net" }] }, /DNS:a.example.net is outside the permitted/],
    ["DNS suffix without label boundary", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "dns", value: "badexample.com" }] }, /outside the permitted/],
    ["DNS in excluded", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "dns", value: "x.secret.example.com" }] }, /within an excluded/],
    ["wildcard that could hit an excluded name", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "dns", value: "*.example.com" }] }, /DNS:\*.example.com is within an excluded/],
    ["IP outside permitted", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "ip", value: "192.168.1.1" }] }, /IP:192.168.1.1 is outside/],
    ["IP in excluded", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "ip", value: "10.66.1.1" }] }, /IP:10.66.1.1 is within an excluded/],
    ["IPv6 unconstrained family is outside the permitted IPv4 subtree", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "ip", value: "2001:db8::1" }] }, /outside/],
    ["email outside", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "email", value: "a@example.net" }] }, /email:a@example.net/],
    ["email host equal to a .domain constraint", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "email", value: "a@example.com" }] }, /outside/],
    ["email below", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "email", value: "a@mail.example.com" }] }, undefined],
    ["subject emailAddress is an rfc822Name", { subject: "C=DE, O=Vigil, CN=x, E=a@evil.net" }, /email:a@evil.net/],
    ["URI host outside", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "url", value: "spiffe://evil.org/ns/a" }] }, /URI:spiffe:\/\/evil.org/],
    ["URI host inside", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "url", value: "spiffe://example.org/ns/a" }] }, undefined],
    ["URI without host", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "url", value: "urn:uuid:1" }] }, /outside/],
    ["subject DN outside", { subject: "C=US, O=Vigil, CN=x" }, /DirName:CN=x, O=Vigil, C=US is outside/],
    ["subject DN prefix is case-insensitive", { subject: "C=de, O=VIGIL, CN=x" }, undefined],
    ["directoryName SAN outside", { subject: "C=DE, O=Vigil, CN=x", sans: [{ type: "dn", value: "C=FR, CN=y" }] }, /DirName/],
    ["empty subject is not constrained", { subject: "", sans: [{ type: "dns", value: "a.example.com" }] }, undefined],
  ];
  for (const [name, opts, want] of table) {
    it(name, async () => {
      const sub = new ParsedCert((await issue({ ...opts, issuer: ca })).der);
      const why = checkNameConstraints(new ParsedCert(ca.der), sub);
      if (want) assert.match(why ?? "(none)", want);
      else assert.equal(why, undefined);
    });
  }
  it("an unsupported constrained name form rejects a subordinate using it", async () => {
    const { GeneralName } = await import("@peculiar/asn1-x509");
    const rid = new GeneralName({ registeredID: "1.2.3.4" });
    const ca2 = await issue({ subject: "CN=rid", ca: true, nameConstraints: { permitted: [rid] } });
    const with_ = new ParsedCert((await issue({ subject: "CN=x", issuer: ca2, sans: [{ type: "id", value: "1.2.3.5" }] })).der);
    const without = new ParsedCert((await issue({ subject: "CN=x", issuer: ca2, sans: [{ type: "dns", value: "a.b" }] })).der);
    assert.match(checkNameConstraints(new ParsedCert(ca2.der), with_)!, /registeredID.*cannot check/);
    assert.equal(checkNameConstraints(new ParsedCert(ca2.der), without), undefined);
  });
});

describe("IP identities and non-canonical forms", () => {
  it("a reference ending in an all-numeric label is neither an IP address nor a host name", () => {
    for (const ref of ["010.0.0.5", "10.1", "0x0a.0.0.5", "1.2.3.4.5", "127.1"]) assert.equal(normalizeDnsName(ref), undefined, ref);
    assert.equal(normalizeDnsName("svc.example.com"), "svc.example.com");
  });
  it("an IP identity matches iPAddress SANs by value, never a DNS SAN that spells the address", async () => {
    const dnsOnly = new ParsedCert((await issue({ subject: "", sans: [{ type: "dns", value: "10.0.0.5" }, { type: "dns", value: "2001:db8::1" }] })).der);
    assert.match(matchIdentity(dnsOnly, { ip: "10.0.0.5" })!, /no IP subjectAltName/);
    assert.match(matchIdentity(dnsOnly, { dns: "10.0.0.5" })!, /no IP subjectAltName/);
    assert.match(matchIdentity(dnsOnly, { ip: "2001:DB8::1" })!, /no IP subjectAltName/);
    const ipSan = new ParsedCert((await issue({ subject: "", sans: [{ type: "ip", value: "2001:db8::1" }] })).der);
    for (const form of ["2001:db8::1", "2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "[2001:db8::1]"]) assert.equal(matchIdentity(ipSan, { ip: form }), undefined, form);
    assert.match(matchIdentity(ipSan, { dns: "010.0.0.5" })!, /not a valid host name/);
  });
});

describe("wildcards and the Public Suffix List", () => {
  const table: [string, string, boolean][] = [
    ["*.co.uk", "example.co.uk", false],
    ["*.example.co.uk", "www.example.co.uk", true],
    ["*.com", "example.com", false],
    ["*.example", "a.example", false],
    ["*.svc.cluster.local", "api.svc.cluster.local", true],
    ["*.github.io", "vigil.github.io", true], // the list's private section is not a public suffix for certificates (BR 3.2.2.6)
  ];
  for (const [p, r, want] of table) it(`${p} ${want ? "matches" : "never matches"} ${r}`, () => assert.equal(dnsNameMatches(p, r), want));
});

describe("DNS name syntax (strict profile)", () => {
  const table: [string, boolean, { wildcard?: boolean; empty?: boolean }?][] = [
    ["svc.example.com", true],
    ["SVC.Example.com", true],
    ["xn--bcher-kva.example", true],
    ["a_b.example.com", false],
    [".example.com", false],
    ["example.com.", false],
    ["a..example.com", false],
    ["-a.example.com", false],
    ["a-.example.com", false],
    ["10.0.0.5", false],
    ["*.example.com", true, { wildcard: true }],
    ["*.example.com", false],
    ["*.co.uk", false, { wildcard: true }],
    ["a.*.example.com", false, { wildcard: true }],
    ["w*.example.com", false, { wildcard: true }],
    ["", false],
    ["", true, { empty: true }],
    [`${"a".repeat(64)}.example.com`, false],
  ];
  for (const [name, ok, o] of table) it(`${JSON.stringify(name)}${o ? ` ${JSON.stringify(o)}` : ""} is ${ok ? "" : "not "}a host name`, () => assert.equal(dnsSyntaxProblem(name, o ?? {}) === undefined, ok, dnsSyntaxProblem(name, o ?? {})));
});
