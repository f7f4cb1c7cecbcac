import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
  assert.deepEqual(JSON.parse(file.stdout).certificates[0].sans, ["DNS:svc.example.org", "IP Address:127.0.0.1"]);
  const live = await runCli(["cert", "inspect", "--json", `127.0.0.1:${tlsPort}`]);
  assert.equal(live.code, 0, live.stderr);
  const chain = JSON.parse(live.stdout).certificates as { subject: string }[];
  assert.deepEqual(chain.map((c) => c.subject), ["CN=svc.example.org", "CN=cli intermediate"]);
});

test("the default config's demo: an expiring certificate drops to read_only, a revoked one to deny", async () => {
  const gen = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts")], { cwd: ROOT, encoding: "utf8" });
  assert.equal(gen.status, 0, gen.stderr);
  const r = await runCli(["check", "--no-state", "-c", join(ROOT, "config/vigil.yaml")]);
  assert.match(r.stdout, /read_only\s+medium\s+frontend-to-api \/ frontend\s+— CERT_EXPIRING/);
  assert.match(r.stdout, /deny\s+high\s+billing-to-api \/ billing\s+— CERT_REVOKED/);
});
