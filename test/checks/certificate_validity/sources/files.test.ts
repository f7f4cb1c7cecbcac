import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromFiles, MAX_GLOB_MATCHES } from "../../../../src/checks/certificate_validity/sources/files.ts";
import { certificatesFromBytes, SourceError } from "../../../../src/checks/certificate_validity/sources/common.ts";
import { renderPath } from "../../../../src/checks/certificate_validity/sources/template.ts";
import { hex, makePki, subject, type Pki } from "./pki.ts";

let pki: Pki;
let dir: string;

before(() => {
  pki = makePki();
  dir = mkdtempSync(path.join(tmpdir(), "vigil-sources-files-"));
  mkdirSync(path.join(dir, "certs"));
  mkdirSync(path.join(dir, "chain"));
  writeFileSync(path.join(dir, "certs", "web-1.pem"), pki.leaf.pem);
  writeFileSync(path.join(dir, "certs", "web-1.key"), pki.leaf.key);
  writeFileSync(path.join(dir, "chain", "a-int.pem"), pki.intermediate.pem);
  writeFileSync(path.join(dir, "chain", "b-root.pem"), pki.root.pem);
  writeFileSync(path.join(dir, "chain", "c-key.pem"), pki.otherKey); // a key matched by *.pem: skipped
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  pki.cleanup();
});

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<SourceError> {
  const err = await p.then(
    () => assert.fail("expected a SourceError"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SourceError, `not a SourceError: ${String(err)}`);
  assert.match(err.message, pattern);
  return err;
}

test("templated leaf path plus a glob of intermediates, relative to baseDir", async () => {
  const paths = ["certs/{{id}}.pem", "chain/*.pem"].map((p) => renderPath(p, subject()));
  const got = await fromFiles({ paths, baseDir: dir });
  assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.intermediate.der, pki.root.der]));
  assert.equal(got.origin, `file:${path.join(dir, "certs", "web-1.pem")}`);
});

test("the leaf comes from the glob match whose name sorts first", async () => {
  const d = mkdtempSync(path.join(dir, "sorted-"));
  writeFileSync(path.join(d, "b.pem"), pki.intermediate.pem);
  writeFileSync(path.join(d, "a.pem"), pki.leaf.pem + pki.root.pem);
  const got = await fromFiles({ paths: [path.join(d, "*.pem")], baseDir: "/" });
  assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.root.der, pki.intermediate.der]));
  assert.equal(got.origin, `file:${path.join(d, "a.pem")}`);
  // A file named twice is read once.
  const again = await fromFiles({ paths: [path.join(d, "a.pem"), path.join(d, "*.pem")], baseDir: "/" });
  assert.equal(again.chain.length, 3);
});

test("DER files, single and concatenated", async () => {
  const d = mkdtempSync(path.join(dir, "der-"));
  writeFileSync(path.join(d, "leaf.der"), pki.leaf.der);
  writeFileSync(path.join(d, "chain.der"), Buffer.concat([pki.leaf.der, pki.intermediate.der]));
  assert.deepEqual(hex((await fromFiles({ paths: ["leaf.der"], baseDir: d })).chain), hex([pki.leaf.der]));
  assert.deepEqual(hex((await fromFiles({ paths: ["chain.der"], baseDir: d })).chain), hex([pki.leaf.der, pki.intermediate.der]));
});

test("malformed content is returned as read, for the validator to reject", async () => {
  const d = mkdtempSync(path.join(dir, "bad-"));
  const badBlock = "-----BEGIN CERTIFICATE-----\nthis is not base64!!\n-----END CERTIFICATE-----";
  writeFileSync(path.join(d, "bad.pem"), `${badBlock}\n${pki.intermediate.pem}`);
  const got = await fromFiles({ paths: ["bad.pem"], baseDir: d });
  assert.equal(Buffer.from(got.chain[0]!).toString("latin1"), badBlock);
  assert.deepEqual(hex(got.chain.slice(1)), hex([pki.intermediate.der]));

  const truncated = pki.leaf.pem.slice(0, 100);
  writeFileSync(path.join(d, "truncated.pem"), truncated);
  assert.equal(Buffer.from((await fromFiles({ paths: ["truncated.pem"], baseDir: d })).chain[0]!).toString("latin1"), truncated);

  writeFileSync(path.join(d, "garbage.crt"), "hello, world");
  assert.equal(Buffer.from((await fromFiles({ paths: ["garbage.crt"], baseDir: d })).chain[0]!).toString(), "hello, world");

  const shortDer = pki.leaf.der.subarray(0, pki.leaf.der.length - 10);
  writeFileSync(path.join(d, "short.der"), shortDer);
  assert.deepEqual(hex((await fromFiles({ paths: ["short.der"], baseDir: d })).chain), hex([shortDer]));
});

test("keys are never returned: a certificate+key file yields the certificate, a key alone is an error", async () => {
  const d = mkdtempSync(path.join(dir, "keys-"));
  writeFileSync(path.join(d, "combined.pem"), pki.leaf.key + pki.leaf.pem);
  writeFileSync(path.join(d, "only.key"), pki.leaf.key);
  assert.deepEqual(hex((await fromFiles({ paths: ["combined.pem"], baseDir: d })).chain), hex([pki.leaf.der]));
  await rejectsWith(fromFiles({ paths: ["only.key"], baseDir: d }), /no certificate in/);
});

test("missing files, empty globs and non-files are SourceErrors", async () => {
  await rejectsWith(fromFiles({ paths: ["certs/missing.pem"], baseDir: dir }), /certificate file .*missing\.pem: not found/);
  await rejectsWith(fromFiles({ paths: ["certs/web-1.pem", "chain/missing.pem"], baseDir: dir }), /missing\.pem: not found/);
  await rejectsWith(fromFiles({ paths: ["nowhere/*.pem"], baseDir: dir }), /matches no file/);
  await rejectsWith(fromFiles({ paths: ["certs"], baseDir: dir }), /not a regular file/);
  await rejectsWith(fromFiles({ paths: [], baseDir: dir }), /no paths/);
  await rejectsWith(fromFiles({ paths: ["a\0b"], baseDir: dir }), /invalid path/);
});

test("a FIFO is refused without hanging", async (t) => {
  const fifo = path.join(dir, "fifo.pem");
  try {
    execFileSync("mkfifo", [fifo]);
  } catch {
    t.skip("mkfifo unavailable");
    return;
  }
  await rejectsWith(fromFiles({ paths: [fifo], baseDir: dir, timeoutMs: 2000 }), /not a regular file/);
});

test("size and count limits", async () => {
  const d = mkdtempSync(path.join(dir, "limits-"));
  writeFileSync(path.join(d, "huge.pem"), Buffer.alloc(1024 * 1024 + 1, 0x41));
  await rejectsWith(fromFiles({ paths: ["huge.pem"], baseDir: d }), /larger than the 1048576 byte limit/);
  const many = mkdtempSync(path.join(dir, "many-"));
  for (let i = 0; i <= MAX_GLOB_MATCHES; i++) writeFileSync(path.join(many, `c${String(i).padStart(3, "0")}.pem`), pki.intermediate.pem);
  await rejectsWith(fromFiles({ paths: ["*.pem"], baseDir: many }), /more than 64 files/);
  rmSync(path.join(many, "c000.pem"));
  assert.equal((await fromFiles({ paths: ["*.pem"], baseDir: many })).chain.length, 64);
});

test("an aborted signal stops the read", async () => {
  const err = await rejectsWith(fromFiles({ paths: ["certs/web-1.pem"], baseDir: dir }, AbortSignal.abort()), /aborted/);
  assert.equal(err.aborted, true);
});

test("certificatesFromBytes: empty, PEM with CRLF, DER", () => {
  assert.deepEqual(certificatesFromBytes(new Uint8Array()), []);
  const crlf = pki.leaf.pem.replace(/\n/g, "\r\n");
  assert.deepEqual(hex(certificatesFromBytes(Buffer.from(crlf))), hex([pki.leaf.der]));
  assert.deepEqual(hex(certificatesFromBytes(pki.root.der)), hex([pki.root.der]));
});
