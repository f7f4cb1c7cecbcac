/**
 * `vigil cert verify` and the running certificate_validity check take the same inputs the same way
 * and give the same verdict on the same chain — above all on revocation: which links need data,
 * and what soft_fail means (docs/checks.md). The PKI is openssl's (`openssl ca` for the root and
 * the issuing CA, their CRLs), the agent is the real `bin/vigil check`.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { metrics, trace } from "@opentelemetry/api";
import { certificateValidityCheck, certificateValidityConfigSchema } from "../../src/checks/certificate_validity/index.ts";
import { createHttpClient } from "../../src/net/http.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { systemClock } from "../../src/util/clock.ts";
import { runCli } from "../helpers/agent-process.ts";

let dir: string;
let closedPort: number;

function openssl(args: string[], cwd = dir): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

const CA = (name: string) => `
[ ca ]
default_ca = ${name}
[ ${name} ]
dir = ./${name}
database = ./${name}/index.txt
new_certs_dir = ./${name}/new
serial = ./${name}/serial
crlnumber = ./${name}/crlnumber
default_md = sha256
default_days = 90
default_crl_days = 7
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
organizationName = optional
[ inter ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:svc.example.com
[ leaf_cdp ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:svc.example.com
crlDistributionPoints = URI:http://127.0.0.1:PORT/int.crl
`;

function ca(name: string): void {
  mkdirSync(join(dir, name, "new"), { recursive: true });
  writeFileSync(join(dir, name, "index.txt"), "");
  writeFileSync(join(dir, name, "serial"), "1000\n");
  writeFileSync(join(dir, name, "crlnumber"), "01\n");
  writeFileSync(join(dir, `${name}.cnf`), CA(name).replace("PORT", String(closedPort)));
}

function sign(caName: string, caFile: string, name: string, subj: string, ext: string): void {
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj]);
  openssl(["ca", "-batch", "-config", `${caName}.cnf`, "-cert", `${caFile}.pem`, "-keyfile", `${caFile}.key`, "-in", `${name}.csr`, "-out", `${name}.pem`, "-extensions", ext, "-notext"]);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vigil-agree-"));
  // A port nothing listens on: the distribution point that cannot be reached.
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  closedPort = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));

  ca("rootca");
  ca("intca");
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=Agreement Root/O=Vigil", "-days", "365", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  sign("rootca", "root", "int", "/CN=Agreement Issuing CA/O=Vigil", "inter");
  sign("rootca", "root", "int2", "/CN=Agreement Revoked CA/O=Vigil", "inter");
  sign("intca", "int", "good", "/CN=svc.example.com", "leaf");
  sign("intca", "int", "revoked", "/CN=svc.example.com", "leaf");
  sign("intca", "int", "cdp", "/CN=svc.example.com", "leaf_cdp");
  sign("intca", "int2", "under-revoked", "/CN=svc.example.com", "leaf");
  openssl(["ca", "-config", "intca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-revoke", "revoked.pem", "-crl_reason", "keyCompromise"]);
  openssl(["ca", "-config", "intca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-gencrl", "-out", "int.crl"]);
  openssl(["ca", "-config", "rootca.cnf", "-cert", "root.pem", "-keyfile", "root.key", "-gencrl", "-out", "root-empty.crl"]);
  openssl(["ca", "-config", "rootca.cnf", "-cert", "root.pem", "-keyfile", "root.key", "-revoke", "int2.pem", "-crl_reason", "cACompromise"]);
  openssl(["ca", "-config", "rootca.cnf", "-cert", "root.pem", "-keyfile", "root.key", "-gencrl", "-out", "root.crl"]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Inputs {
  leaf: string;
  intermediate: string;
  mode: "crl" | "prefer_ocsp" | "ocsp" | "none";
  crls: string[];
  softFail: boolean;
}

/** The verdict of `vigil cert verify` for these inputs: [status, first reason code]. */
async function viaCli(i: Inputs): Promise<[string, string | undefined]> {
  const args = ["cert", "verify", "--json", "--roots", join(dir, "root.pem"), "--intermediates", join(dir, `${i.intermediate}.pem`), "--host", "svc.example.com", "--purpose", "server", "--revocation", i.mode, "--allow-private-urls", "--timeout", "2s"];
  for (const c of i.crls) args.push("--crl", join(dir, c));
  if (!i.softFail) args.push("--hard-fail");
  const r = await runCli([...args, join(dir, `${i.leaf}.pem`)]);
  const out = JSON.parse(r.stdout) as { valid: boolean; status: string; code?: string; notes?: { code: string }[] };
  assert.equal(r.code, out.valid ? 0 : 1, r.stderr);
  return [out.status, out.code ?? out.notes?.[0]?.code];
}

/** The verdict of the running check for the same inputs. */
async function viaCheck(i: Inputs): Promise<[string, string | undefined]> {
  writeFileSync(join(dir, `subject-${i.leaf}.pem`), spawnSync("cat", [join(dir, `${i.leaf}.pem`)], { encoding: "utf8" }).stdout);
  const config = certificateValidityConfigSchema.parse({
    trust_bundle: "root.pem",
    intermediates: [`${i.intermediate}.pem`],
    source: { type: "file", paths: ["subject-{{id}}.pem"] },
    purpose: "server",
    revocation: { mode: i.mode, crl_files: i.crls, soft_fail: i.softFail, allow_private_urls: true, timeout: "2s" },
  });
  const http = createHttpClient();
  const ctx = { clock: systemClock, logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
  try {
    const [r] = await certificateValidityCheck.create(config, ctx).run([{ id: i.leaf, kind: "workload", identity: "svc.example.com", attributes: {}, labels: {} }], { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 });
    return [r!.status, r!.reasons[0]?.code];
  } finally {
    await http.close();
  }
}

const table: [string, Inputs, [string, string | undefined]][] = [
  ["the issuing CA's CRL alone: the leaf is checked, the root → intermediate link is not (its issuer publishes nothing)", { leaf: "good", intermediate: "int", mode: "crl", crls: ["int.crl"], softFail: true }, ["pass", undefined]],
  ["the same without soft_fail: nothing is unknown, so nothing fails", { leaf: "good", intermediate: "int", mode: "crl", crls: ["int.crl"], softFail: false }, ["pass", undefined]],
  ["a leaf on the issuing CA's CRL is revoked", { leaf: "revoked", intermediate: "int", mode: "crl", crls: ["int.crl"], softFail: true }, ["fail", "CERT_REVOKED"]],
  ["the root's CRL revoking the intermediate revokes the leaf below it", { leaf: "under-revoked", intermediate: "int2", mode: "crl", crls: ["root.crl"], softFail: true }, ["fail", "CERT_REVOKED"]],
  ["with the root's CRL given, the intermediate's link is checked and good", { leaf: "good", intermediate: "int", mode: "crl", crls: ["int.crl", "root-empty.crl"], softFail: false }, ["pass", undefined]],
  ["no data for the leaf, soft_fail: the path decides, REVOCATION_UNKNOWN is a note", { leaf: "good", intermediate: "int", mode: "crl", crls: [], softFail: true }, ["pass", "REVOCATION_UNKNOWN"]],
  ["no data for the leaf, hard fail", { leaf: "good", intermediate: "int", mode: "crl", crls: [], softFail: false }, ["fail", "REVOCATION_UNKNOWN"]],
  ["an unreachable distribution point, soft_fail", { leaf: "cdp", intermediate: "int", mode: "crl", crls: [], softFail: true }, ["pass", "REVOCATION_UNKNOWN"]],
  ["an unreachable distribution point, hard fail", { leaf: "cdp", intermediate: "int", mode: "crl", crls: [], softFail: false }, ["fail", "REVOCATION_UNKNOWN"]],
  ["an unreachable distribution point, but a local CRL answers first", { leaf: "cdp", intermediate: "int", mode: "prefer_ocsp", crls: ["int.crl"], softFail: false }, ["pass", undefined]],
  ["mode none checks nothing", { leaf: "revoked", intermediate: "int", mode: "none", crls: ["int.crl"], softFail: false }, ["pass", undefined]],
];

for (const [name, inputs, want] of table) {
  test(`CLI and check agree: ${name}`, async () => {
    const [cli, check] = await Promise.all([viaCli(inputs), viaCheck(inputs)]);
    assert.deepEqual(check, want, "the check");
    assert.deepEqual(cli, want, "vigil cert verify");
  });
}

test("the agent at first start, on_unknown: hold, mode crl with only the issuing CA's CRL: a healthy workload keeps its access", async () => {
  writeFileSync(join(dir, "web.pem"), spawnSync("cat", [join(dir, "good.pem"), join(dir, "int.pem")], { encoding: "utf8" }).stdout);
  writeFileSync(join(dir, "api.pem"), spawnSync("cat", [join(dir, "revoked.pem"), join(dir, "int.pem")], { encoding: "utf8" }).stdout);
  writeFileSync(
    join(dir, "vigil.yaml"),
    `agent: {mode: embedded, data_dir: ./var, log_level: error}
default_security_rule: deny_all
inventories:
  - type: static
    subjects:
      - {id: web, kind: workload, identity: svc.example.com}
      - {id: api, kind: workload, identity: svc.example.com}
checks:
  certificate_validity:
    on_unknown: hold
    trust_bundle: root.pem
    source: {type: file, paths: ["{{id}}.pem"]}
    purpose: server
    revocation: {mode: crl, crl_files: [int.crl], soft_fail: true}
communication_policies:
  - name: web-to-api
    source: web
    destination: api
    protocol: https
    port: 443
    authentication: mutual_tls
    continuous_verification: {interval: 5m, checks: [certificate_validity]}
  - name: api-to-web
    source: api
    destination: web
    protocol: https
    port: 443
    authentication: mutual_tls
    continuous_verification: {interval: 5m, checks: [certificate_validity]}
`,
  );
  const r = await runCli(["check", "--no-state", "-c", join(dir, "vigil.yaml")]);
  assert.match(r.stdout, /full_access\s+low\s+web-to-api \/ web\b/, r.stdout + r.stderr);
  assert.match(r.stdout, /deny\s+high\s+api-to-web \/ api\s+— CERT_REVOKED/, r.stdout + r.stderr);
});
