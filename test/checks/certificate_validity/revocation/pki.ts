/**
 * Test fixtures for revocation checking, all real: a PKI built with the `openssl` CLI in a temp
 * dir (root → intermediate CA run by `openssl ca` with an index, leaves, a revoked leaf, delegated
 * OCSP responders), `openssl ocsp` responders, and node:http servers the leaves' AIA and CRL DP
 * point at (an OCSP front that proxies to a chosen responder or misbehaves, and a CRL server).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function opensslAvailable(): boolean {
  const r = spawnSync("openssl", ["version"], { encoding: "utf8" });
  return r.status === 0 && /OpenSSL/i.test(r.stdout);
}

function openssl(cwd: string, args: string[]): string {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function derOf(pemFile: string): Buffer {
  return Buffer.from(new X509Certificate(readFileSync(pemFile)).raw);
}

// ---------------------------------------------------------------------------------------------
// HTTP servers

interface Listening {
  server: Server;
  port: number;
  sockets: Set<Socket>;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listening> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

async function closeServer(l: Listening): Promise<void> {
  for (const s of l.sockets) s.destroy();
  await new Promise<void>((resolve) => l.server.close(() => resolve()));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export type OcspFrontMode = { kind: "proxy"; port: number } | { kind: "garbage" } | { kind: "hang" } | { kind: "replay"; body: Buffer };

/** The server a leaf's AIA names: forwards to a real `openssl ocsp`, or misbehaves on purpose. */
export class OcspFront {
  mode: OcspFrontMode = { kind: "garbage" };
  requests = 0;
  /** The last response body passed through from a responder. */
  lastResponse: Buffer | undefined;
  /** The HTTP method of each request received. */
  methods: ("GET" | "POST")[] = [];
  #l!: Listening;

  get port(): number {
    return this.#l.port;
  }

  async start(): Promise<void> {
    this.#l = await listen((req, res) => void this.#handle(req, res));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    const body = await readBody(req);
    const mode = this.mode;
    if (mode.kind === "hang") return; // never answers; the socket is destroyed at close
    if (mode.kind === "garbage") {
      res.writeHead(200, { "content-type": "application/ocsp-response" }).end(Buffer.from("this is not DER at all, just garbage bytes\n"));
      return;
    }
    if (mode.kind === "replay") {
      res.writeHead(200, { "content-type": "application/ocsp-response" }).end(mode.body);
      return;
    }
    // RFC 5019 GET requests carry the request in the path; POSTs in the body. Both go on as they came.
    const get = req.method === "GET";
    this.methods.push(get ? "GET" : "POST");
    const upstream = httpRequest(
      { host: "127.0.0.1", port: mode.port, method: get ? "GET" : "POST", path: get ? (req.url ?? "/") : "/", headers: get ? {} : { "content-type": "application/ocsp-request", "content-length": body.length } },
      async (up) => {
        const answer = await readBody(up);
        this.lastResponse = answer;
        res.writeHead(up.statusCode ?? 502, { "content-type": "application/ocsp-response" }).end(answer);
      },
    );
    upstream.on("error", (err) => res.writeHead(502).end(String(err)));
    upstream.end(get ? undefined : body);
  }

  close(): Promise<void> {
    return closeServer(this.#l);
  }
}

/** Serves `body` for every GET (the leaf's CRL distribution point). */
export class CrlServer {
  body: Buffer = Buffer.alloc(0);
  requests = 0;
  #l!: Listening;

  get port(): number {
    return this.#l.port;
  }

  async start(): Promise<void> {
    this.#l = await listen((req, res) => {
      this.requests++;
      res.writeHead(200, { "content-type": "application/pkix-crl" }).end(this.body);
    });
  }

  close(): Promise<void> {
    return closeServer(this.#l);
  }
}

// ---------------------------------------------------------------------------------------------
// openssl ocsp responders

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface Responder {
  port: number;
  stop(): Promise<void>;
}

/** Starts `openssl ocsp -index … -port …` and resolves once it accepts connections. */
export async function startResponder(dir: string, signerCert: string, signerKey: string): Promise<Responder> {
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn("openssl", ["ocsp", "-index", "index.txt", "-port", String(port), "-rsigner", signerCert, "-rkey", signerKey, "-CA", "int.pem", "-nmin", "5"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      const onData = (d: Buffer): void => {
        output += d.toString();
        if (/ACCEPT|waiting for OCSP client connections/i.test(output)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) return { port, stop: () => stopChild(child) };
    lastError = output;
    await stopChild(child);
  }
  throw new Error(`openssl ocsp did not start: ${lastError}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  await exited;
}

// ---------------------------------------------------------------------------------------------
// The PKI

export interface Pki {
  dir: string;
  root: Buffer;
  int: Buffer;
  leaf: Buffer;
  revoked: Buffer;
  /** A leaf with a CRL distribution point but no OCSP URL. */
  noAia: Buffer;
  /** Delegated responder (id-kp-OCSPSigning), issued by the intermediate. */
  responder: Buffer;
  /** CRL of the intermediate (DER and PEM); the revoked leaf is on it (keyCompromise). */
  crlDer: Buffer;
  crlPem: Buffer;
  /** CRLs with an issuing distribution point: the leaf's DP (user certs only), another partition, some reasons only. */
  idpMineCrl: Buffer;
  idpOtherCrl: Buffer;
  idpReasonsCrl: Buffer;
  /** A CRL naming the intermediate as issuer but signed by another key. */
  wrongKeyCrlDer: Buffer;
  /** OCSP responses made offline by openssl, without a nonce (for stapling). */
  stapledGood: Buffer;
  stapledRevoked: Buffer;
  /** Serial (hex) of the revoked leaf. */
  revokedSerial: string;
  cleanup(): void;
}

const CA_CONFIG = (ocspPort: number, crlPort: number): string => `
[ ca ]
default_ca = int_ca
[ int_ca ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
crlnumber = ./crlnumber
default_md = sha256
default_days = 30
default_crl_days = 1
policy = pol
unique_subject = no
copy_extensions = none
[ evil_ca ]
dir = .
database = ./evil-index.txt
new_certs_dir = ./newcerts
serial = ./evil-serial
crlnumber = ./evil-crlnumber
default_md = sha256
default_crl_days = 1
policy = pol
[ pol ]
commonName = supplied
[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
authorityInfoAccess = OCSP;URI:http://127.0.0.1:${ocspPort}/
crlDistributionPoints = URI:ldap://ldap.invalid/cn=int?certificateRevocationList,URI:http://127.0.0.1:${crlPort}/crl.der
[ no_aia_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
crlDistributionPoints = URI:http://127.0.0.1:${crlPort}/crl.der
[ responder_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
[ responder_checked_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
crlDistributionPoints = URI:http://127.0.0.1:${crlPort}/crl.der
[ responder_no_eku_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[ crl_ext ]
authorityKeyIdentifier = keyid
[ crl_idp_mine ]
authorityKeyIdentifier = keyid
issuingDistributionPoint = critical, @idp_mine
[ idp_mine ]
fullname = URI:http://127.0.0.1:${crlPort}/crl.der
onlyuser = TRUE
[ crl_idp_other ]
authorityKeyIdentifier = keyid
issuingDistributionPoint = critical, @idp_other
[ idp_other ]
fullname = URI:http://elsewhere.invalid/partition-2.crl
[ crl_idp_reasons ]
authorityKeyIdentifier = keyid
issuingDistributionPoint = critical, @idp_reasons
[ idp_reasons ]
fullname = URI:http://127.0.0.1:${crlPort}/crl.der
onlysomereasons = keyCompromise
`;

/** Builds the PKI whose leaves name `http://127.0.0.1:<ocspPort>/` and `http://127.0.0.1:<crlPort>/crl.der`. */
export function buildPki(ocspPort: number, crlPort: number): Pki {
  const dir = mkdtempSync(join(tmpdir(), "vigil-revocation-"));
  const run = (...args: string[]): string => openssl(dir, args);
  writeFileSync(join(dir, "ca.cnf"), CA_CONFIG(ocspPort, crlPort));
  mkdirSync(join(dir, "newcerts"));
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "serial"), "1000\n");
  writeFileSync(join(dir, "crlnumber"), "01\n");
  writeFileSync(join(dir, "evil-index.txt"), "");
  writeFileSync(join(dir, "evil-serial"), "5000\n");
  writeFileSync(join(dir, "evil-crlnumber"), "01\n");
  writeFileSync(join(dir, "int.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n");

  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=Vigil Test Root", "-days", "30",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "int.key", "-out", "int.csr", "-subj", "/O=Vigil Test/CN=Vigil Test Intermediate");
  run("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "2", "-out", "int.pem", "-days", "30", "-extfile", "int.ext");
  // Same subject as the intermediate, another key: its CRLs name the right issuer and carry the wrong signature.
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "evil.key", "-out", "evil.pem", "-subj", "/O=Vigil Test/CN=Vigil Test Intermediate", "-days", "30",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");

  const issue = (name: string, cn: string, ext: string): Buffer => {
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`);
    run("ca", "-batch", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-in", `${name}.csr`, "-out", `${name}.pem`, "-extensions", ext, "-notext");
    return derOf(join(dir, `${name}.pem`));
  };
  const leaf = issue("leaf", "good.vigil.test", "leaf_ext");
  const revoked = issue("revoked", "revoked.vigil.test", "leaf_ext");
  const noAia = issue("noaia", "noaia.vigil.test", "no_aia_ext");
  const responder = issue("responder", "Vigil Test OCSP Responder", "responder_ext");
  issue("responder-noeku", "Vigil Test Not A Responder", "responder_no_eku_ext");
  // Delegated responders without id-pkix-ocsp-nocheck: their own status comes from the CRL, where one is revoked.
  issue("responder-checked", "Vigil Test Checked Responder", "responder_checked_ext");
  issue("responder-revoked", "Vigil Test Revoked Responder", "responder_checked_ext");
  // One whose validity ended before today.
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "responder-expired.key", "-out", "responder-expired.csr", "-subj", "/CN=Vigil Test Expired Responder");
  run("ca", "-batch", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-in", "responder-expired.csr", "-out", "responder-expired.pem", "-extensions", "responder_ext", "-notext", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z");

  // A responder certificate with id-kp-OCSPSigning and the intermediate's name as issuer, signed by the impostor key.
  writeFileSync(join(dir, "responder.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n");
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "forged-responder.key", "-out", "forged-responder.csr", "-subj", "/CN=Vigil Test Forged Responder");
  run("x509", "-req", "-in", "forged-responder.csr", "-CA", "evil.pem", "-CAkey", "evil.key", "-set_serial", "77", "-days", "30", "-extfile", "responder.ext", "-out", "forged-responder.pem");

  run("ca", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-revoke", "revoked.pem", "-crl_reason", "keyCompromise");
  run("ca", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-revoke", "responder-revoked.pem", "-crl_reason", "keyCompromise");
  run("ca", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-gencrl", "-crlexts", "crl_ext", "-out", "crl.pem");
  run("crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der");
  for (const section of ["crl_idp_mine", "crl_idp_other", "crl_idp_reasons"]) {
    run("ca", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile", "int.key", "-gencrl", "-crlexts", section, "-out", `${section}.pem`);
  }
  run("ca", "-config", "ca.cnf", "-name", "evil_ca", "-cert", "evil.pem", "-keyfile", "evil.key", "-gencrl", "-out", "evil-crl.pem");
  run("crl", "-in", "evil-crl.pem", "-outform", "DER", "-out", "evil-crl.der");

  const staple = (cert: string, out: string): Buffer => {
    run("ocsp", "-index", "index.txt", "-rsigner", "int.pem", "-rkey", "int.key", "-CA", "int.pem", "-issuer", "int.pem", "-cert", cert, "-respout", out, "-nmin", "5", "-no_nonce");
    return readFileSync(join(dir, out));
  };

  return {
    dir,
    root: derOf(join(dir, "root.pem")),
    int: derOf(join(dir, "int.pem")),
    leaf,
    revoked,
    noAia,
    responder,
    crlDer: readFileSync(join(dir, "crl.der")),
    crlPem: readFileSync(join(dir, "crl.pem")),
    idpMineCrl: readFileSync(join(dir, "crl_idp_mine.pem")),
    idpOtherCrl: readFileSync(join(dir, "crl_idp_other.pem")),
    idpReasonsCrl: readFileSync(join(dir, "crl_idp_reasons.pem")),
    wrongKeyCrlDer: readFileSync(join(dir, "evil-crl.der")),
    stapledGood: staple("leaf.pem", "stapled-good.der"),
    stapledRevoked: staple("revoked.pem", "stapled-revoked.der"),
    revokedSerial: new X509Certificate(revoked).serialNumber.toLowerCase(),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
