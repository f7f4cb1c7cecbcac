/**
 * An openssl-built PKI (root → intermediate → server / client / SPIFFE leaves, plus deliberately
 * broken variants), validated by validatePath and cross-checked against `openssl verify`.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readPemOrDer as splitPem } from "../../../../src/plugin/x509/pem.ts";
import { TrustStore, validatePath } from "../../../../src/checks/certificate_validity/pki/path.ts";
import type { CertReason, ExpectedIdentity, Purpose } from "../../../../src/checks/certificate_validity/types.ts";
import { openssl } from "./helpers.ts";

const CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_root]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_inter]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_inter_nc]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
nameConstraints = critical,permitted;DNS:example.com,excluded;IP:10.0.0.0/255.255.255.0
[v3_notca]
basicConstraints = critical,CA:false
keyUsage = critical,keyCertSign
[v3_server]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:svc.example.com,IP:10.0.0.5
[v3_server_evil]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:svc.example.net
[v3_server_dns]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:svc.example.com
[v3_server_ip_ok]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:svc.example.com,IP:10.1.0.7
[v3_server_ip_bad]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:svc.example.com,IP:10.0.0.7
[v3_client]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = email:ops@example.com
[v3_spiffe]
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:spiffe://example.org/ns/web/sa/frontend
[v3_unknown_crit]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:svc.example.com
1.2.3.4.5 = critical,ASN1:NULL
`;

let dir: string;
let serial = 100;
const f = (name: string) => join(dir, name);

function key(name: string, spec: "p256" | "p192" | "rsa1024" | "rsa2048" = "p256"): void {
  const opts: Record<string, string[]> = {
    p256: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    p192: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-192"],
    rsa1024: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    rsa2048: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
  };
  openssl(["genpkey", ...opts[spec]!, "-out", f(`${name}.key`)], dir);
}

function selfSigned(name: string, subj: string, ext: string): void {
  key(name);
  openssl(["req", "-new", "-x509", "-config", "cnf", "-key", `${name}.key`, "-subj", subj, "-extensions", ext, "-days", "3650", "-out", `${name}.pem`], dir);
}

function issued(name: string, subj: string, ca: string, ext: string, o: { key?: "p256" | "p192" | "rsa1024" | "rsa2048"; days?: number; digest?: string } = {}): void {
  key(name, o.key);
  openssl(["req", "-new", "-config", "cnf", "-key", `${name}.key`, "-subj", subj, "-out", `${name}.csr`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", String(serial++), "-days", String(o.days ?? 365), "-extfile", "cnf", "-extensions", ext, ...(o.digest ? [`-${o.digest}`] : []), "-out", `${name}.pem`], dir);
}

interface Check {
  name: string;
  leaf: string;
  untrusted?: string[];
  root?: string;
  purpose: Purpose;
  identity?: ExpectedIdentity;
  /** Seconds from now. */
  attime?: number;
  /** -auth_level for openssl (2 = 112-bit security: RSA ≥ 2048, no P-192, no SHA-1). */
  authLevel?: number;
  want: CertReason | "valid";
  /** openssl cannot judge this (URI SANs): only our answer is checked. */
  oursOnly?: boolean;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-pki-openssl-"));
  writeFileSync(f("cnf"), CNF);
  selfSigned("root", "/CN=OpenSSL Root/O=Vigil", "v3_root");
  selfSigned("other-root", "/CN=Other Root/O=Vigil", "v3_root");
  issued("inter", "/CN=OpenSSL Intermediate/O=Vigil", "root", "v3_inter");
  issued("inter-nc", "/CN=Constrained Intermediate/O=Vigil", "root", "v3_inter_nc");
  issued("inter-notca", "/CN=Not A CA/O=Vigil", "root", "v3_notca");
  issued("sub", "/CN=Sub Intermediate/O=Vigil", "inter", "v3_ca");
  issued("server", "/CN=svc.example.com", "inter", "v3_server");
  issued("client", "/CN=client", "inter", "v3_client");
  issued("spiffe", "/CN=frontend", "inter", "v3_spiffe");
  issued("unknown-crit", "/CN=odd", "inter", "v3_unknown_crit");
  issued("nc-ok", "/CN=nc-ok", "inter-nc", "v3_server_dns");
  issued("nc-evil", "/CN=nc-evil", "inter-nc", "v3_server_evil");
  issued("nc-ip-ok", "/CN=nc-ip-ok", "inter-nc", "v3_server_ip_ok");
  issued("nc-ip-bad", "/CN=nc-ip-bad", "inter-nc", "v3_server_ip_bad");
  issued("under-notca", "/CN=under-notca", "inter-notca", "v3_server");
  issued("too-deep", "/CN=too-deep", "sub", "v3_server");
  issued("rsa1024", "/CN=rsa1024", "inter", "v3_server", { key: "rsa1024" });
  issued("p192", "/CN=p192", "inter", "v3_server", { key: "p192" });
  issued("sha1", "/CN=sha1", "inter", "v3_server", { digest: "sha1" });
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const DAY_S = 86400;
const checks: Check[] = [
  { name: "server leaf, sslserver, hostname", leaf: "server", purpose: "server", identity: { dns: "svc.example.com" }, want: "valid" },
  { name: "server leaf, wrong hostname", leaf: "server", purpose: "server", identity: { dns: "other.example.com" }, want: "CERT_NAME_MISMATCH" },
  { name: "server leaf, IP", leaf: "server", purpose: "server", identity: { ip: "10.0.0.5" }, want: "valid" },
  { name: "server leaf, wrong IP", leaf: "server", purpose: "server", identity: { ip: "10.0.0.6" }, want: "CERT_NAME_MISMATCH" },
  { name: "server leaf used as a client", leaf: "server", purpose: "client", want: "CERT_PURPOSE" },
  { name: "client leaf, sslclient", leaf: "client", purpose: "client", want: "valid" },
  { name: "client leaf used as a server", leaf: "client", purpose: "server", want: "CERT_PURPOSE" },
  { name: "SPIFFE leaf, sslclient", leaf: "spiffe", purpose: "client", want: "valid" },
  { name: "SPIFFE leaf, sslserver", leaf: "spiffe", purpose: "server", want: "valid" },
  { name: "SPIFFE ID matches", leaf: "spiffe", purpose: "client", identity: { uri: "spiffe://example.org/ns/web/sa/frontend" }, want: "valid", oursOnly: true },
  { name: "SPIFFE ID differs", leaf: "spiffe", purpose: "client", identity: { uri: "spiffe://example.org/ns/web/sa/backend" }, want: "CERT_NAME_MISMATCH", oursOnly: true },
  { name: "before notBefore (-attime)", leaf: "server", purpose: "server", attime: -2 * DAY_S, want: "CERT_NOT_YET_VALID" },
  { name: "after notAfter (-attime)", leaf: "server", purpose: "server", attime: 400 * DAY_S, want: "CERT_EXPIRED" },
  { name: "inside the validity window (-attime)", leaf: "server", purpose: "server", attime: 300 * DAY_S, want: "valid" },
  { name: "intermediate missing", leaf: "server", untrusted: [], purpose: "server", want: "CERT_UNTRUSTED" },
  { name: "other root", leaf: "server", root: "other-root", purpose: "server", want: "CERT_UNTRUSTED" },
  { name: "inside name constraints", leaf: "nc-ok", untrusted: ["inter-nc"], purpose: "server", want: "valid" },
  { name: "DNS outside name constraints", leaf: "nc-evil", untrusted: ["inter-nc"], purpose: "server", want: "CERT_NAME_CONSTRAINTS" },
  { name: "IP inside an excluded range", leaf: "nc-ip-bad", untrusted: ["inter-nc"], purpose: "server", want: "CERT_NAME_CONSTRAINTS" },
  { name: "IP outside the excluded range", leaf: "nc-ip-ok", untrusted: ["inter-nc"], purpose: "server", want: "valid" },
  { name: "pathlen 0 exceeded", leaf: "too-deep", untrusted: ["inter", "sub"], purpose: "server", want: "CERT_PURPOSE" },
  { name: "issuer is not a CA", leaf: "under-notca", untrusted: ["inter-notca"], purpose: "server", want: "CERT_PURPOSE" },
  { name: "unknown critical extension", leaf: "unknown-crit", purpose: "server", want: "CERT_UNKNOWN_CRITICAL_EXTENSION" },
  { name: "RSA-1024 leaf (auth_level 2)", leaf: "rsa1024", purpose: "server", authLevel: 2, want: "CERT_WEAK_KEY" },
  { name: "P-192 leaf (auth_level 2)", leaf: "p192", purpose: "server", authLevel: 2, want: "CERT_WEAK_KEY" },
  { name: "SHA-1 signed leaf (auth_level 2)", leaf: "sha1", purpose: "server", authLevel: 2, want: "CERT_WEAK_KEY" },
];

function opensslVerify(c: Check, now: number): { ok: boolean; out: string } {
  const untrusted = c.untrusted ?? ["inter"];
  const args = ["verify", "-CAfile", `${c.root ?? "root"}.pem`];
  if (untrusted.length) {
    writeFileSync(f("untrusted.pem"), untrusted.map((u) => readFileSync(f(`${u}.pem`), "utf8")).join(""));
    args.push("-untrusted", "untrusted.pem");
  }
  args.push("-purpose", c.purpose === "client" ? "sslclient" : "sslserver");
  if (c.identity?.dns) args.push("-verify_hostname", c.identity.dns);
  if (c.identity?.ip) args.push("-verify_ip", c.identity.ip);
  if (c.attime !== undefined) args.push("-attime", String(Math.floor(now / 1000) + c.attime));
  if (c.authLevel) args.push("-auth_level", String(c.authLevel));
  args.push(`${c.leaf}.pem`);
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  return { ok: r.status === 0 && /: OK\s*$/.test(r.stdout), out: `${r.stdout}${r.stderr}` };
}

describe("openssl-built PKI, cross-checked with openssl verify", () => {
  for (const c of checks) {
    it(`${c.want}: ${c.name}`, () => {
      const now = Date.now();
      const pem = (n: string) => splitPem(readFileSync(f(`${n}.pem`)));
      const r = validatePath({
        leaf: pem(c.leaf)[0]!,
        intermediates: (c.untrusted ?? ["inter"]).flatMap(pem),
        roots: new TrustStore(pem(c.root ?? "root")),
        at: new Date(now + (c.attime ?? 0) * 1000),
        purpose: c.purpose,
        // Plain `openssl verify` validates as RFC 5280 does; strict.test.ts compares the strict profile with -x509_strict.
        profile: "rfc5280",
        ...(c.identity ? { identity: c.identity } : {}),
      });
      assert.equal(r.valid ? "valid" : r.code, c.want, r.reason);
      if (!c.oursOnly) {
        const o = opensslVerify(c, now);
        assert.equal(o.ok, r.valid, `openssl says ${o.ok ? "OK" : "invalid"}, validatePath says ${r.valid ? "valid" : `${r.code}: ${r.reason}`}\n${o.out}`);
      }
    });
  }
  it("the openssl PEM files split and parse; the bundle of both roots builds one store", () => {
    const both = readFileSync(f("root.pem"), "utf8") + readFileSync(f("other-root.pem"), "utf8");
    const store = new TrustStore(splitPem(both));
    assert.equal(store.size, 2);
    const r = validatePath({ leaf: splitPem(readFileSync(f("server.pem")))[0]!, intermediates: splitPem(readFileSync(f("inter.pem"))), roots: store, at: new Date(), purpose: "server", profile: "rfc5280" });
    assert.equal(r.valid, true, r.reason);
    assert.deepEqual(r.path!.map((p) => p.subject), ["CN=svc.example.com", "O=Vigil, CN=OpenSSL Intermediate", "O=Vigil, CN=OpenSSL Root"]);
  });
});
