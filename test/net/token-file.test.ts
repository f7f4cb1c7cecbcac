import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { UpstreamError, VigilError } from "../../src/errors.ts";
import { TokenFile } from "../../src/net/token-file.ts";

const dir = mkdtempSync(path.join(tmpdir(), "vigil-token-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function tokenAt(text: string): string {
  const file = path.join(dir, `token-${n++}`);
  writeFileSync(file, text);
  return file;
}

/** Replaces the file the way sinks and the kubelet do: a new inode renamed over the old one. */
function rotate(file: string, text: string): void {
  writeFileSync(`${file}.new`, text);
  renameSync(`${file}.new`, file);
}

const transient = (e: unknown) => e instanceof UpstreamError && e.transient;
const permanentConfig = (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_CONFIG_READ";

test("the file is read again as soon as it changed, and only then", async () => {
  const file = tokenAt("first\n");
  const t = new TokenFile(file);
  assert.equal(await t.token(), "first");
  rotate(file, "second");
  assert.equal(await t.token(), "second");
  assert.equal(await t.token(), "second");
});

test("recheckMs: within the interval the token read last is used; after it, a change is picked up", async () => {
  let now = 1_000;
  const file = tokenAt("first");
  const t = new TokenFile(file, { recheckMs: 60_000, now: () => now });
  assert.equal(await t.token(), "first");
  rotate(file, "second");
  now += 59_999;
  assert.equal(await t.token(), "first");
  now += 1;
  assert.equal(await t.token(), "second");
});

test("missing or empty is transient (a rewrite in progress); several lines or a directory is permanent", async () => {
  await assert.rejects(new TokenFile(path.join(dir, "absent")).token(), (e: unknown) => transient(e) && /token_file .*absent: not found \(ENOENT\)/.test((e as Error).message));
  await assert.rejects(new TokenFile(tokenAt(" \n")).token(), (e: unknown) => transient(e) && /is empty/.test((e as Error).message));
  await assert.rejects(new TokenFile(tokenAt("a\nb")).token(), (e: unknown) => permanentConfig(e) && /more than one line/.test((e as Error).message));
  const sub = path.join(dir, "a-directory");
  mkdirSync(sub);
  await assert.rejects(new TokenFile(sub, { label: "kubeconfig tokenFile" }).token(), (e: unknown) => permanentConfig(e) && /^kubeconfig tokenFile .*a-directory is not a regular file$/.test((e as Error).message));
});

test("a failed re-read fails at once without a grace, even right after a good read", async () => {
  const file = tokenAt("good");
  const t = new TokenFile(file, { now: () => 7 });
  assert.equal(await t.token(), "good");
  rmSync(file);
  await assert.rejects(t.token(), transient);
});

test("with a grace, a failed re-read keeps the last token until the grace has passed", async () => {
  let now = 0;
  const file = tokenAt("good");
  const t = new TokenFile(file, { staleGraceMs: 600_000, now: () => now });
  assert.equal(await t.token(), "good");
  rmSync(file);
  now += 600_000;
  assert.equal(await t.token(), "good");
  now += 1;
  await assert.rejects(t.token(), transient);
  // Back on disk: read again, and the grace counts from this read.
  rotate(file, "renewed");
  assert.equal(await t.token(), "renewed");
});

test("invalidate() drops the last token: a server that refused it never gets it again", async () => {
  const file = tokenAt("refused");
  const t = new TokenFile(file, { recheckMs: 60_000, staleGraceMs: 600_000, now: () => 0 });
  assert.equal(await t.token(), "refused");
  rmSync(file);
  assert.equal(await t.token(), "refused", "within the re-check interval the file is not looked at");
  t.invalidate();
  await assert.rejects(t.token(), transient);
});
