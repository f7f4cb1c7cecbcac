/**
 * 10,000 chains (leaf ← intermediate ← root; 5,000 RSA-2048 and 5,000 P-256 leaves) validated by
 * `vigil cert verify --batch` and by `openssl verify` on the same files, in the same run.
 * Both are timed as whole processes (start-up included), three rounds each, median reported.
 * Leaves share a pool of keys (key generation is not what is measured); every certificate is
 * distinct (own serial, subject and SAN) and signed by its intermediate. The chains meet the
 * strict profile (key identifiers, EKU, CN copying the SAN), which vigil applies by default, with
 * revocation at its default too (prefer_ocsp: the leaves name no responder, so each verdict
 * carries the REVOCATION_UNKNOWN note). BENCH_JOBS passes --jobs (default: vigil decides).
 */
import "reflect-metadata";
import { spawnSync } from "node:child_process";
import { webcrypto } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);
const N = Number(process.env.BENCH_CHAINS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BIN = resolve(import.meta.dirname, "../bin/vigil");
const dir = mkdtempSync(join(tmpdir(), "vigil-bench-cert-"));
const DAY = 86_400_000;
const now = Date.now();

const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const gen = (alg: typeof RSA | typeof EC) => webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]) as Promise<webcrypto.CryptoKeyPair>;

async function hierarchy(name: string, alg: typeof RSA | typeof EC, count: number) {
  const rootKeys = await gen(alg);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: `CN=${name} root`, notBefore: new Date(now - DAY), notAfter: new Date(now + 3650 * DAY), keys: rootKeys, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey)],
  });
  const interKeys = await gen(alg);
  const inter = await x509.X509CertificateGenerator.create({
    serialNumber: "02", subject: `CN=${name} intermediate`, issuer: root.subject, notBefore: new Date(now - DAY), notAfter: new Date(now + 1000 * DAY),
    signingKey: rootKeys.privateKey, publicKey: interKeys.publicKey, signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root),
    ],
  });
  const pool = await Promise.all(Array.from({ length: 8 }, () => gen(alg)));
  const akid = await x509.AuthorityKeyIdentifierExtension.create(inter);
  const leaves: string[] = [];
  for (let i = 0; i < count; i++) {
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: (0x1000 + i).toString(16), subject: `CN=svc-${i}.${name}.example.org`, issuer: inter.subject, notBefore: new Date(now - DAY), notAfter: new Date(now + 90 * DAY),
      signingKey: interKeys.privateKey, publicKey: pool[i % pool.length]!.publicKey, signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: "dns", value: `svc-${i}.${name}.example.org` }]),
        akid,
      ],
    });
    leaves.push(leaf.toString("pem"));
  }
  return { root: root.toString("pem"), inter: inter.toString("pem"), leaves };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const t0 = performance.now();
  const sets = [await hierarchy("rsa", RSA, N / 2), await hierarchy("ec", EC, N / 2)];
  console.error(`generated ${N} chains in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const jsonl: string[] = [];
  const opensslRuns: { root: string; inter: string; files: string[] }[] = [];
  sets.forEach((set, k) => {
    const sub = join(dir, `h${k}`);
    mkdirSync(sub);
    const root = join(sub, "root.pem");
    const inter = join(sub, "inter.pem");
    writeFileSync(root, set.root);
    writeFileSync(inter, set.inter);
    const files = set.leaves.map((pem, i) => {
      const f = join(sub, `${i}.pem`);
      writeFileSync(f, pem);
      jsonl.push(JSON.stringify({ id: `${k}-${i}`, leaf: pem, intermediates: [set.inter], roots: [set.root] }));
      return f;
    });
    opensslRuns.push({ root, inter, files });
  });
  const batchFile = join(dir, "chains.jsonl");
  writeFileSync(batchFile, jsonl.join("\n") + "\n");

  const vigilTimes: number[] = [];
  const opensslTimes: number[] = [];
  let vigilValid = 0;
  let opensslOk = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now();
    const jobs = process.env.BENCH_JOBS ? ["--jobs", process.env.BENCH_JOBS] : [];
    const v = spawnSync(process.execPath, [BIN, "cert", "verify", "--batch", batchFile, ...jobs], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    vigilTimes.push(performance.now() - t);
    vigilValid = v.stdout.split("\n").filter((l) => l.includes('"valid":true')).length;
    if (v.status !== 0) console.error(`vigil exit ${v.status}: ${v.stdout.split("\n").find((l) => l.includes('"valid":false'))} ${v.stderr}`);
    t = performance.now();
    opensslOk = 0;
    for (const run of opensslRuns) {
      const o = spawnSync("openssl", ["verify", "-CAfile", run.root, "-untrusted", run.inter, ...run.files], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
      opensslOk += o.stdout.split("\n").filter((l) => l.endsWith(": OK")).length;
    }
    opensslTimes.push(performance.now() - t);
  }
  const v = median(vigilTimes) / 1000;
  const o = median(opensslTimes) / 1000;
  console.log(`\n## cert-verify (${N} chains: ${N / 2} RSA-2048, ${N / 2} P-256; median of ${ROUNDS})`);
  console.log("| figure | value | goal |\n| --- | --- | --- |");
  console.log(`| vigil cert verify --batch (s) | ${v.toFixed(2)} (${Math.round(N / v)} chains/s, ${vigilValid} valid) | |`);
  console.log(`| openssl verify, same files (s) | ${o.toFixed(2)} (${Math.round(N / o)} chains/s, ${opensslOk} OK) | |`);
  console.log(`| ratio vigil / openssl | ${(v / o).toFixed(2)} | ≤ 0.25 |`);
  console.log("BENCH_JSON " + JSON.stringify({ bench: "cert-verify", chains: N, load_avg: loadavg()[0], vigil_s: v, openssl_s: o, ratio: v / o, vigil_valid: vigilValid, openssl_ok: opensslOk, vigil_runs_s: vigilTimes.map((x) => x / 1000), openssl_runs_s: opensslTimes.map((x) => x / 1000) }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
