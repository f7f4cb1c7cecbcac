// Test PKI made with the openssl CLI: root → intermediate → server leaf (localhost, 127.0.0.1),
// root → client certificate, and a second, unrelated key pair.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Subject } from "../../../../src/policy/model.ts";

export interface Pem {
  readonly pem: string;
  readonly der: Uint8Array;
  readonly key: string;
}

export interface Pki {
  readonly dir: string;
  readonly root: Pem;
  readonly intermediate: Pem;
  readonly leaf: Pem;
  readonly client: Pem;
  /** A key that belongs to no certificate here. */
  readonly otherKey: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

export function makePki(): Pki {
  const dir = mkdtempSync(path.join(tmpdir(), "vigil-sources-pki-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  writeFileSync(
    path.join(dir, "ext.cnf"),
    [
      "[ca]",
      "basicConstraints=critical,CA:TRUE",
      "keyUsage=critical,keyCertSign,cRLSign",
      "[int]",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "keyUsage=critical,keyCertSign,cRLSign",
      "[leaf]",
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "[client]",
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=clientAuth",
      "subjectAltName=URI:spiffe://test.example/client",
      "",
    ].join("\n"),
  );
  openssl(dir, ["req", "-x509", ...ec, "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=Vigil Test Root", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  const issue = (name: string, cn: string, ca: string, section: string) => {
    openssl(dir, ["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
    openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", String(Math.floor(Math.random() * 1e9)), "-days", "2", "-out", `${name}.pem`, "-extfile", "ext.cnf", "-extensions", section]);
  };
  issue("int", "Vigil Test Intermediate", "root", "int");
  issue("leaf", "localhost", "int", "leaf");
  issue("client", "client", "root", "client");
  openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"]);
  const load = (name: string): Pem => {
    const pem = readFileSync(path.join(dir, `${name}.pem`), "utf8");
    const der = new Uint8Array(execFileSync("openssl", ["x509", "-in", `${name}.pem`, "-outform", "DER"], { cwd: dir }));
    return { pem, der, key: readFileSync(path.join(dir, `${name}.key`), "utf8") };
  };
  return {
    dir,
    root: load("root"),
    intermediate: load("int"),
    leaf: load("leaf"),
    client: load("client"),
    otherKey: readFileSync(path.join(dir, "other.key"), "utf8"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function subject(overrides: Partial<Subject> = {}): Subject {
  return { id: "web-1", kind: "workload", identity: "spiffe://test.example/web", attributes: {}, labels: {}, ...overrides };
}

/** Bytes as hex, so assertion failures show something readable. */
export function hex(chain: readonly Uint8Array[]): string[] {
  return chain.map((c) => Buffer.from(c).toString("hex"));
}
