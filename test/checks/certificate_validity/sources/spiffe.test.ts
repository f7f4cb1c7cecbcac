import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromSpiffeSvid } from "../../../../src/checks/certificate_validity/sources/spiffe.ts";
import { SourceError } from "../../../../src/checks/certificate_validity/sources/common.ts";
import { hex, makePki, type Pki } from "./pki.ts";

let pki: Pki;
let dir: string;
let svid: string;
let bundle: string;
let key: string;

before(() => {
  pki = makePki();
  dir = mkdtempSync(path.join(tmpdir(), "vigil-sources-spiffe-"));
  // As the spiffe-helper writes them: svid.pem (leaf first), svid_key.pem, svid_bundle.pem.
  svid = path.join(dir, "svid.pem");
  bundle = path.join(dir, "svid_bundle.pem");
  key = path.join(dir, "svid_key.pem");
  writeFileSync(svid, pki.client.pem + pki.intermediate.pem);
  writeFileSync(bundle, pki.root.pem);
  writeFileSync(key, pki.client.key);
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

test("returns the SVID chain and the trust bundle", async () => {
  const got = await fromSpiffeSvid({ svidPath: svid, bundlePath: bundle });
  assert.deepEqual(hex(got.gathered.chain), hex([pki.client.der, pki.intermediate.der]));
  assert.equal(got.gathered.origin, `spiffe:${svid}`);
  assert.deepEqual(hex(got.bundle), hex([pki.root.der]));
  assert.deepEqual((await fromSpiffeSvid({ svidPath: svid })).bundle, []);
});

test("the key, when given, must match the leaf", async () => {
  await fromSpiffeSvid({ svidPath: svid, bundlePath: bundle, keyPath: key });
  const other = path.join(dir, "other_key.pem");
  writeFileSync(other, pki.otherKey);
  const err = await rejectsWith(fromSpiffeSvid({ svidPath: svid, keyPath: other }), /does not match/);
  assert.doesNotMatch(err.message, /PRIVATE KEY/);
  const junk = path.join(dir, "junk_key.pem");
  writeFileSync(junk, "not a key");
  await rejectsWith(fromSpiffeSvid({ svidPath: svid, keyPath: junk }), /does not match/);
});

test("missing or empty files are SourceErrors; a malformed SVID is returned as read", async () => {
  await rejectsWith(fromSpiffeSvid({ svidPath: path.join(dir, "absent.pem") }), /SVID file .*absent\.pem: not found/);
  await rejectsWith(fromSpiffeSvid({ svidPath: svid, bundlePath: path.join(dir, "absent.pem") }), /bundle file .*not found/);
  await rejectsWith(fromSpiffeSvid({ svidPath: svid, keyPath: path.join(dir, "absent.pem") }), /key file .*not found/);
  const empty = path.join(dir, "empty.pem");
  writeFileSync(empty, "");
  await rejectsWith(fromSpiffeSvid({ svidPath: empty }), /holds no certificate/);
  await rejectsWith(fromSpiffeSvid({ svidPath: svid, bundlePath: empty }), /holds no certificate/);
  const bad = path.join(dir, "bad.pem");
  const block = "-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----";
  writeFileSync(bad, block);
  // A key cannot be compared with an unparseable leaf: the validator reports the leaf instead.
  const got = await fromSpiffeSvid({ svidPath: bad, keyPath: key });
  assert.equal(Buffer.from(got.gathered.chain[0]!).toString(), block);
  await rejectsWith(fromSpiffeSvid({ svidPath: "" }), /invalid svid path/);
  assert.equal((await rejectsWith(fromSpiffeSvid({ svidPath: svid }, AbortSignal.abort()), /aborted/)).aborted, true);
});
