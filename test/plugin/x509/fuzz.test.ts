/**
 * Malformed input never crashes or stalls the certificate model: random bytes and mutated
 * certificates and CRLs, thrown at the parsers for a bounded time, give CertParseError (or a parse)
 * and nothing else; validation turns them into CERT_MALFORMED. The seed is printed on failure
 * (FUZZ_SEED=… repeats a run); FUZZ_MS sets the time (default 3000 ms).
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "reflect-metadata";
import { CertParseError, ParsedCertificate } from "../../../src/plugin/x509/certificate.ts";
import { ParsedCrl } from "../../../src/plugin/x509/crl.ts";
import { readPemOrDer, certificatesFromBytes } from "../../../src/plugin/x509/pem.ts";
import { validatePath } from "../../../src/checks/certificate_validity/pki/path.ts";
import { metrics, trace } from "@opentelemetry/api";
import { certificateValidityCheck, certificateValidityConfigSchema } from "../../../src/checks/certificate_validity/index.ts";
import { createHttpClient } from "../../../src/net/http.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";
import { systemClock } from "../../../src/util/clock.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { basicPki, issue, toPem, x509, NOW, DAY, gn, type Issued } from "../../checks/certificate_validity/pki/helpers.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const BUDGET_MS = Number(process.env.FUZZ_MS ?? 3000);
/**
 * No single input may take longer than this: a stall (a loop over a huge declared length, a
 * quadratic scan) takes seconds; a busy machine's garbage collection, a fraction of one.
 */
const PER_INPUT_MS = 2000;

let seed = SEED;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const ri = (n: number) => Math.floor(rnd() * n);

function mutate(der: Uint8Array): Uint8Array {
  const b = Buffer.from(der);
  switch (ri(7)) {
    case 0: // flip a few bits
      for (let i = 0, n = 1 + ri(4); i < n; i++) b[ri(b.length)]! ^= 1 << ri(8);
      return b;
    case 1: // truncate
      return b.subarray(0, ri(b.length));
    case 2: // trailing bytes
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + ri(8) }, () => ri(256)))]);
    case 3: {
      // a length octet made huge or long-form
      const i = 1 + ri(b.length - 1);
      b[i] = [0x84, 0x83, 0xff, 0x80, 0x00][ri(5)]!;
      return b;
    }
    case 4: {
      // a tag replaced
      const i = ri(b.length);
      b[i] = [0x30, 0x31, 0x04, 0x03, 0x02, 0x06, 0x17, 0x18, 0xa0, 0xa3, 0x1f, 0x24][ri(12)]!;
      return b;
    }
    case 5: {
      // a slice removed or repeated
      const i = ri(b.length);
      const j = i + ri(Math.min(32, b.length - i));
      return ri(2) ? Buffer.concat([b.subarray(0, i), b.subarray(j)]) : Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
    }
    default: // random bytes of a random length, sometimes starting as a SEQUENCE
      return Buffer.from(Array.from({ length: ri(2048) }, (_, k) => (k === 0 && ri(2) ? 0x30 : ri(256))));
  }
}

function timed<T>(what: string, input: Uint8Array, f: () => T): T {
  const t = performance.now();
  try {
    return f();
  } finally {
    const took = performance.now() - t;
    assert.ok(took < PER_INPUT_MS, `${what} took ${took.toFixed(0)} ms on ${Buffer.from(input).toString("hex").slice(0, 200)} (seed ${SEED})`);
  }
}

function onlyParseErrors(what: string, input: Uint8Array, f: () => unknown): "parsed" | "rejected" {
  try {
    timed(what, input, f);
    return "parsed";
  } catch (err) {
    if (err instanceof CertParseError) return "rejected";
    assert.fail(`${what} threw ${String((err as Error)?.stack ?? err)} (seed ${SEED}, input ${Buffer.from(input).toString("hex").slice(0, 400)})`);
  }
}

let pki: { root: Issued; inter: Issued; leaf: Issued };
let rich: Issued;
let crl: Uint8Array;

before(async () => {
  pki = await basicPki();
  // A certificate with many extensions, so that mutations reach every decoder.
  rich = await issue({
    subject: "CN=rich.example.com, O=Vigil, E=ops@example.com",
    issuer: pki.inter,
    ca: { pathLen: 1 },
    eku: [x509.ExtendedKeyUsage.serverAuth],
    sans: [{ type: "dns", value: "rich.example.com" }, { type: "ip", value: "10.0.0.1" }, { type: "email", value: "a@example.com" }, { type: "url", value: "spiffe://example.org/x" }, { type: "dn", value: "CN=alt" }],
    nameConstraints: { permitted: [gn.dns("example.com"), gn.ip("10.0.0.0/8")], excluded: [gn.email("bad.example.com")] },
    extensions: [new x509.AuthorityInfoAccessExtension({ ocsp: ["http://ocsp.example.com/"], caIssuers: ["http://ca.example.com/ca.crt"] }), new x509.CRLDistributionPointsExtension(["http://crl.example.com/ca.crl"]), new x509.CertificatePolicyExtension(["2.23.140.1.2.1"])],
  });
  const c = await x509.X509CrlGenerator.create({
    issuer: pki.inter.cert.subject,
    thisUpdate: new Date(NOW.getTime() - DAY),
    nextUpdate: new Date(NOW.getTime() + DAY),
    entries: Array.from({ length: 20 }, (_, i) => ({ serialNumber: (0x100 + i).toString(16), revocationDate: new Date(NOW.getTime() - DAY), reason: x509.X509CrlReason.keyCompromise })),
    signingKey: pki.inter.keys.pair.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
  });
  crl = new Uint8Array(c.rawData);
});

describe("fuzz: random and mutated DER", () => {
  it(`certificates: only CertParseError, never a stall (seed ${SEED}, ${BUDGET_MS} ms)`, () => {
    const seeds = [pki.leaf.der, pki.inter.der, pki.root.der, rich.der];
    const end = performance.now() + BUDGET_MS;
    const counts = { parsed: 0, rejected: 0 };
    while (performance.now() < end) {
      const input = mutate(seeds[ri(seeds.length)]!);
      counts[onlyParseErrors("ParsedCertificate", input, () => new ParsedCertificate(input))]++;
      if (ri(8) === 0) {
        const r = timed("validatePath", input, () => validatePath({ leaf: input, intermediates: [pki.inter.der], roots: [pki.root.der], at: new Date(), purpose: "any" }));
        assert.equal(typeof r.valid, "boolean");
        if (!r.valid) assert.ok(r.code, "a failure has a code");
      }
    }
    assert.ok(counts.rejected > 100, `mutations were rejected: ${JSON.stringify(counts)}`);
  });

  it(`CRLs: only CertParseError, never a stall (seed ${SEED})`, () => {
    const end = performance.now() + BUDGET_MS / 3;
    let rejected = 0;
    while (performance.now() < end) {
      const input = mutate(crl);
      const r = onlyParseErrors("ParsedCrl", input, () => new ParsedCrl(input).entries());
      if (r === "rejected") rejected++;
    }
    assert.ok(rejected > 10);
  });

  it(`PEM: random text and mangled blocks give CertParseError or certificates (seed ${SEED})`, () => {
    const pem = toPem(pki.leaf.der) + toPem(pki.inter.der);
    const end = performance.now() + BUDGET_MS / 3;
    while (performance.now() < end) {
      const b = Buffer.from(pem);
      for (let i = 0, n = 1 + ri(6); i < n; i++) b[ri(b.length)] = "-ABCDEFGHIJ=+/\n \x00"[ri(17)]!.charCodeAt(0);
      onlyParseErrors("readPemOrDer", b, () => readPemOrDer(b));
      timed("certificatesFromBytes", b, () => certificatesFromBytes(b));
    }
  });
});

describe("malformed input: a clear CERT_MALFORMED, never a crash or a stall", () => {
  const garbage = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
    return b;
  };
  const shapes: [string, () => Uint8Array][] = [
    ["truncated DER", () => pki.leaf.der.subarray(0, pki.leaf.der.length - 7)],
    ["a wrong outer tag", () => Buffer.concat([Buffer.from([0x31]), pki.leaf.der.subarray(1)])],
    ["trailing bytes", () => Buffer.concat([pki.leaf.der, Buffer.from([0, 0])])],
    ["a huge length", () => Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xf0, 1, 2, 3])],
    ["an indefinite length (BER)", () => Buffer.from([0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00])],
    ["10 MB of garbage", () => garbage(10 * 1024 * 1024)],
    ["10 MB starting like a SEQUENCE", () => Buffer.concat([Buffer.from([0x30, 0x84, 0x00, 0xa0, 0x00, 0x00]), garbage(10 * 1024 * 1024)])],
  ];
  for (const [name, make] of shapes) {
    it(`${name} → CERT_MALFORMED from validatePath`, () => {
      const input = make();
      const t = performance.now();
      const r = validatePath({ leaf: input, intermediates: [], roots: [pki.root.der], at: new Date(), purpose: "any" });
      assert.equal(r.code, "CERT_MALFORMED", r.reason);
      assert.ok(performance.now() - t < 1000, "within a second");
    });
  }

  it("the check says CERT_MALFORMED (fail) for each of them read from a file, 10 MB included", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-malformed-check-"));
    const http = createHttpClient();
    try {
      writeFileSync(join(dir, "root.pem"), toPem(pki.root.der));
      const subjects = shapes.map(([, make], i) => {
        writeFileSync(join(dir, `m${i}.der`), make());
        return { id: `m${i}`, kind: "workload" as const, attributes: {}, labels: {} };
      });
      const config = certificateValidityConfigSchema.parse({ trust_bundle: "root.pem", source: { type: "file", paths: ["{{id}}.der"] }, match_identity: false, revocation: { mode: "none" } });
      const ctx = { clock: systemClock, logger: silentLogger(), meter: metrics.getMeter("t"), tracer: trace.getTracer("t"), http, dataDir: dir, configDir: dir };
      const t = performance.now();
      const results = await certificateValidityCheck.create(config, ctx).run(subjects, { ...ctx, signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, ttlMs: 600_000 });
      assert.deepEqual(results.map((r) => [r.subject, r.status, r.reasons[0]?.code]).sort(), subjects.map((s) => [s.id, "fail", "CERT_MALFORMED"]).sort());
      assert.ok(performance.now() - t < 10_000);
    } finally {
      await http.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("vigil cert verify says CERT_MALFORMED (exit 1) for each of them, file and batch alike", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-malformed-"));
    try {
      writeFileSync(join(dir, "root.pem"), toPem(pki.root.der));
      const lines: string[] = [];
      for (const [i, [name, make]] of shapes.entries()) {
        const bytes = make();
        writeFileSync(join(dir, `m${i}.der`), bytes);
        const r = await runCli(["cert", "verify", "--revocation", "none", "--roots", join(dir, "root.pem"), join(dir, `m${i}.der`)]);
        assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /CERT_MALFORMED/, name);
        if (bytes.length < 1024 * 1024) lines.push(JSON.stringify({ id: name, leaf: toPem(bytes), roots: [toPem(pki.root.der)] }));
      }
      writeFileSync(join(dir, "b.jsonl"), lines.join("\n") + "\n");
      const b = await runCli(["cert", "verify", "--batch", join(dir, "b.jsonl"), "--revocation", "none"]);
      const out = b.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; code: string });
      assert.deepEqual(out.map((o) => o.code), lines.map(() => "CERT_MALFORMED"), b.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
