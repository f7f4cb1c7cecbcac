import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli, ROOT } from "../helpers/agent-process.ts";

let dir: string;
let tlsServer: Server;
let tlsPort: number;
const sh = (cmd: string) => {
  const r = spawnSync("sh", ["-c", cmd], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vigil-certcli-"));
  // A real PKI from the openssl CLI: root → intermediate → server leaf (DNS + IP SANs).
  sh(`openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 3650 -subj "/CN=cli root" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null`);
  sh(`openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr -subj "/CN=cli intermediate" 2>/dev/null`);
  writeFileSync(join(dir, "inter.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n");
  sh(`openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -out inter.pem -days 1000 -extfile inter.ext 2>/dev/null`);
  sh(`openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj "/CN=svc.example.org" 2>/dev/null`);
  writeFileSync(join(dir, "server.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:svc.example.org,IP:127.0.0.1\n");
  sh(`openssl x509 -req -in server.csr -CA inter.pem -CAkey inter.key -CAcreateserial -out server.pem -days 30 -extfile server.ext 2>/dev/null`);
  tlsServer = createServer({ key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) + readFileSync(join(dir, "inter.pem"), "utf8") }, (s) => s.end());
  await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
  tlsPort = (tlsServer.address() as { port: number }).port;
});

after(() => new Promise<void>((r) => tlsServer.close(() => r())));

test("cert verify: 0 when valid, 1 with the reason code when not, 2 on usage errors", async () => {
  const base = ["cert", "verify", "--roots", join(dir, "root.pem"), "--intermediates", join(dir, "inter.pem")];
  const ok = await runCli([...base, "--host", "svc.example.org", "--purpose", "server", join(dir, "server.pem")]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const ip = await runCli([...base, "--ip", "127.0.0.1", join(dir, "server.pem")]);
  assert.equal(ip.code, 0, ip.stdout);
  const wrongHost = await runCli([...base, "--host", "other.example.org", join(dir, "server.pem")]);
  assert.equal(wrongHost.code, 1);
  assert.match(wrongHost.stdout, /CERT_NAME_MISMATCH/);
  const client = await runCli([...base, "--purpose", "client", join(dir, "server.pem")]);
  assert.equal(client.code, 1);
  assert.match(client.stdout, /CERT_PURPOSE/);
  const later = await runCli([...base, "--at", "2099-01-01T00:00:00Z", join(dir, "server.pem")]);
  assert.equal(later.code, 1);
  assert.match(later.stdout, /CERT_EXPIRED/);
  const noInter = await runCli(["cert", "verify", "--roots", join(dir, "root.pem"), join(dir, "server.pem")]);
  assert.equal(noInter.code, 1);
  assert.match(noInter.stdout, /CERT_UNTRUSTED/);
  assert.equal((await runCli(["cert", "verify", join(dir, "server.pem")])).code, 2, "--roots is required");
  assert.equal((await runCli([...base, "--purpose", "sideways", join(dir, "server.pem")])).code, 2);
  assert.equal((await runCli([...base, "--at", "yesterday", join(dir, "server.pem")])).code, 2);
});

test("openssl verify and vigil cert verify agree on the same chain", () => {
  const o = spawnSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "-purpose", "sslserver", "-verify_hostname", "svc.example.org", "server.pem"], { cwd: dir, encoding: "utf8" });
  assert.equal(o.status, 0, o.stderr);
});

test("cert verify --batch streams one verdict per input line", async () => {
  const pem = (f: string) => readFileSync(join(dir, f), "utf8");
  const lines = [
    { id: "ok", leaf: pem("server.pem"), intermediates: [pem("inter.pem")], roots: [pem("root.pem")], host: "svc.example.org", purpose: "server" },
    { id: "name", leaf: pem("server.pem"), intermediates: [pem("inter.pem")], roots: [pem("root.pem")], host: "nope.example.org" },
    { id: "lonely", leaf: pem("server.pem"), roots: [pem("root.pem")] },
    { id: "bad", leaf: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", roots: [pem("root.pem")] },
  ];
  writeFileSync(join(dir, "batch.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\n{broken\n");
  const r = await runCli(["cert", "verify", "--batch", join(dir, "batch.jsonl")]);
  assert.equal(r.code, 1);
  const out = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => [o.id, o.valid, o.code]), [
    ["ok", true, undefined],
    ["name", false, "CERT_NAME_MISMATCH"],
    ["lonely", false, "CERT_UNTRUSTED"],
    ["bad", false, "CERT_MALFORMED"],
    [null, false, "BAD_INPUT"],
  ]);
});

test("cert inspect shows a file's certificates and a TLS endpoint's presented chain", async () => {
  const file = await runCli(["cert", "inspect", "--json", join(dir, "server.pem")]);
  assert.equal(file.code, 0, file.stderr);
  // SANs are written as the check's evidence writes them (`IP:`, not node's `IP Address:`).
  assert.deepEqual(JSON.parse(file.stdout).certificates[0].sans, ["DNS:svc.example.org", "IP:127.0.0.1"]);
  const live = await runCli(["cert", "inspect", "--json", `127.0.0.1:${tlsPort}`]);
  assert.equal(live.code, 0, live.stderr);
  const chain = JSON.parse(live.stdout).certificates as { subject: string }[];
  assert.deepEqual(chain.map((c) => c.subject), ["CN=svc.example.org", "CN=cli intermediate"]);
});

test("cert inspect and cert verify write names, fingerprints and usages as the check's evidence does", async () => {
  sh(`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout multi.key -out multi.pem -days 30 -subj "/C=DE/O=Example Org/OU=Platform/CN=multi.example.org" -addext keyUsage=critical,digitalSignature,keyEncipherment -addext extendedKeyUsage=serverAuth,clientAuth,1.3.6.1.4.1.99999.1 2>/dev/null`);
  const inspected = await runCli(["cert", "inspect", "--json", join(dir, "multi.pem")]);
  assert.equal(inspected.code, 0, inspected.stderr);
  const c = JSON.parse(inspected.stdout).certificates[0];
  // RFC 4514: the most significant RDN last, as openssl's -nameopt RFC2253 (which joins without spaces).
  const rfc2253 = spawnSync("openssl", ["x509", "-in", "multi.pem", "-noout", "-subject", "-nameopt", "RFC2253"], { cwd: dir, encoding: "utf8" }).stdout.trim().replace(/^subject=/, "");
  assert.equal(c.subject, "CN=multi.example.org, OU=Platform, O=Example Org, C=DE");
  assert.equal(c.subject.replace(/, /g, ","), rfc2253);
  assert.deepEqual(c.key_usage, ["digitalSignature", "keyEncipherment"]);
  assert.deepEqual(c.extended_key_usage, ["serverAuth", "clientAuth", "1.3.6.1.4.1.99999.1"], "known EKUs by name, others by OID");
  const der = spawnSync("openssl", ["x509", "-in", "multi.pem", "-outform", "der"], { cwd: dir }).stdout;
  assert.equal(c.fingerprint_sha256, createHash("sha256").update(der).digest("hex"), "SHA-256 of the DER, lower-case hex");
  const human = await runCli(["cert", "inspect", join(dir, "multi.pem")]);
  assert.match(human.stdout, /^certificate: CN=multi\.example\.org, OU=Platform, O=Example Org, C=DE$/m);
  assert.match(human.stdout, /^ {2}key usage +digitalSignature, keyEncipherment$/m);
  assert.match(human.stdout, new RegExp(`^ {2}SHA-256 +${c.fingerprint_sha256}$`, "m"));
  const verified = await runCli(["cert", "verify", "--json", "--revocation", "none", "--roots", join(dir, "root.pem"), "--intermediates", join(dir, "inter.pem"), join(dir, "server.pem")]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const path = JSON.parse(verified.stdout).path as { subject: string; fingerprint_sha256: string }[];
  const leaf = JSON.parse((await runCli(["cert", "inspect", "--json", join(dir, "server.pem")])).stdout).certificates[0];
  assert.deepEqual([path[0]!.subject, path[0]!.fingerprint_sha256], [leaf.subject, leaf.fingerprint_sha256], "inspect and verify agree");
});

test("cert inspect and cert verify: the same exit codes and words for the same problems", async () => {
  sh(`openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout csr.key -out req.csr -subj "/CN=csr" 2>/dev/null`);
  sh(`openssl pkey -in csr.key -outform der -out key.der && openssl x509 -in server.pem -outform der -out server.der`);
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "ca.cnf"), `[ca]\ndefault_ca=d\n[d]\ndatabase=${join(dir, "index.txt")}\ndefault_md=sha256\ndefault_crl_days=30\n`);
  sh(`openssl ca -gencrl -config ca.cnf -keyfile root.key -cert root.pem -out root.crl 2>/dev/null && openssl crl -in root.crl -outform der -out root.crl.der`);
  writeFileSync(join(dir, "garbage.pem"), "not a certificate\n");
  const roots = ["--roots", join(dir, "root.pem"), "--revocation", "none"];
  const both = async (target: string) => [await runCli(["cert", "inspect", target]), await runCli(["cert", "verify", ...roots, target])];
  for (const [file, code, words] of [
    ["missing.pem", 2, /cannot read .*missing\.pem: ENOENT/],
    ["root.crl", 2, /root\.crl holds a CRL, not a certificate/],
    ["root.crl.der", 2, /root\.crl\.der holds a CRL, not a certificate/],
    ["csr.key", 2, /csr\.key holds a private key, not a certificate/],
    ["key.der", 2, /key\.der holds a private key, not a certificate/],
    ["req.csr", 2, /req\.csr holds a certificate signing request, not a certificate/],
    ["garbage.pem", 1, /garbage\.pem: CERT_MALFORMED: /],
  ] as const) {
    for (const r of await both(join(dir, file))) {
      assert.equal(r.code, code, `${file}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, words, file);
    }
  }
  // host:port is read by both; an endpoint nobody listens on is "cannot connect", exit 2.
  for (const r of await both(`127.0.0.1:${tlsPort}`)) assert.notEqual(r.code, 2, r.stderr);
  const viaTls = await runCli(["cert", "verify", "--json", ...roots, "--intermediates", join(dir, "inter.pem"), "--host", "svc.example.org", `127.0.0.1:${tlsPort}`]);
  assert.equal(viaTls.code, 0, viaTls.stdout + viaTls.stderr);
  const closed = await new Promise<number>((r) => {
    const srv = createNetServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => r(port));
    });
  });
  for (const r of await both(`127.0.0.1:${closed}`)) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot connect to 127\.0\.0\.1:\d+/);
  }
  // Where certificates are expected as options, other kinds are named too; and a certificate given as --crl.
  const wrongRoots = await runCli(["cert", "verify", "--roots", join(dir, "root.crl"), join(dir, "server.pem")]);
  assert.deepEqual([wrongRoots.code, /--roots .*root\.crl holds a CRL, not a certificate/.test(wrongRoots.stderr)], [2, true], wrongRoots.stderr);
  const wrongCrl = await runCli(["cert", "verify", ...roots, "--crl", join(dir, "server.der"), join(dir, "server.pem")]);
  assert.deepEqual([wrongCrl.code, /--crl .*server\.der holds a certificate, not a CRL/.test(wrongCrl.stderr)], [2, true], wrongCrl.stderr);
});

test("the default config's demo: an expiring certificate drops to read_only, a revoked one to deny", async () => {
  const gen = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts")], { cwd: ROOT, encoding: "utf8" });
  assert.equal(gen.status, 0, gen.stderr);
  const r = await runCli(["check", "--no-state", "-c", join(ROOT, "config/vigil.yaml")]);
  assert.match(r.stdout, /read_only\s+medium\s+frontend-to-api \/ frontend\s+— CERT_EXPIRING/);
  assert.match(r.stdout, /deny\s+high\s+billing-to-api \/ billing\s+— CERT_REVOKED/);
});
