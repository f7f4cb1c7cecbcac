import { test, type TestContext } from "node:test";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, GENESIS_HASH, entryHash, verifyAuditFile } from "../../src/store/audit.ts";
import { canonicalJSON } from "../../src/util/canonical-json.ts";
import { FakeClock } from "../../src/util/clock.ts";

function tempFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "vigil-audit-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "audit.jsonl");
}

/** A log with `n` entries written in batches of 2; returns the path and the head. */
function writeLog(t: TestContext, n: number): { path: string; head: { seq: number; hash: string } } {
  const path = tempFile(t);
  const log = new AuditLog(path, { clock: new FakeClock() });
  log.open();
  for (let i = 1; i <= n; i += 2) {
    log.append(Array.from({ length: Math.min(2, n - i + 1) }, (_, k) => ({ type: "decision", subject: `s${i + k}`, access: "deny", n: i + k })));
  }
  const head = log.head;
  log.close();
  return { path, head };
}

function lines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l !== "");
}

function writeLines(path: string, ls: string[]): void {
  writeFileSync(path, ls.map((l) => l + "\n").join(""));
}

test("canonical JSON sorts keys recursively and ignores undefined members", () => {
  assert.equal(canonicalJSON({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJSON({ a: 1, b: 2 }), canonicalJSON({ b: 2, a: 1 }));
});

test("entries are chained: seq, ts, prev and hash as specified", (t) => {
  const path = tempFile(t);
  const clock = new FakeClock("2026-03-01T10:00:00Z");
  const log = new AuditLog(path, { clock });
  log.open();
  const [first, second] = log.append([
    { type: "decision", subject: "a" },
    { type: "action", subject: "b", detail: { z: 1, a: 2 } },
  ]);
  log.close();
  assert.ok(first && second);
  assert.equal(first.seq, 1);
  assert.equal(first.prev, GENESIS_HASH);
  assert.equal(first.ts, "2026-03-01T10:00:00.000Z");
  assert.equal(second.seq, 2);
  assert.equal(second.prev, first.hash);
  const { hash, ...body } = second;
  assert.equal(hash, entryHash(second));
  assert.match(hash, /^[0-9a-f]{64}$/);
  // sha256(prev + "\n" + canonical JSON without hash), recomputed independently:
  assert.equal(hash, createHash("sha256").update(`${first.hash}\n${canonicalJSON(body)}`).digest("hex"));
  const written = lines(path);
  assert.equal(written.length, 2);
  assert.deepEqual(JSON.parse(written[1] as string), second);
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test("verify accepts a good log, with and without the recorded head", (t) => {
  const { path, head } = writeLog(t, 7);
  assert.deepEqual(verifyAuditFile(path), { ok: true, entries: 7, problems: [] });
  assert.deepEqual(verifyAuditFile(path, head), { ok: true, entries: 7, problems: [] });
});

test("verify detects a changed line", (t) => {
  const { path } = writeLog(t, 5);
  const ls = lines(path);
  writeLines(path, ls.map((l, i) => (i === 2 ? l.replace('"access":"deny"', '"access":"full_access"') : l)));
  const result = verifyAuditFile(path);
  assert.equal(result.ok, false);
  assert.deepEqual(
    result.problems.map((p) => p.line),
    [3],
  );
  assert.match(result.problems[0]?.problem ?? "", /hash mismatch/);
});

test("verify detects a changed line whose hash was recomputed, at the next line", (t) => {
  const { path } = writeLog(t, 5);
  const ls = lines(path);
  const forged = JSON.parse(ls[1] as string) as Record<string, unknown>;
  forged["access"] = "full_access";
  forged["hash"] = entryHash(forged);
  ls[1] = canonicalJSON(forged);
  writeLines(path, ls);
  const result = verifyAuditFile(path);
  assert.equal(result.ok, false);
  assert.ok(result.problems.some((p) => p.line === 3 && /prev/.test(p.problem)), JSON.stringify(result.problems));
});

test("verify detects a removed middle line", (t) => {
  const { path, head } = writeLog(t, 5);
  const ls = lines(path);
  ls.splice(2, 1);
  writeLines(path, ls);
  const result = verifyAuditFile(path, head);
  assert.equal(result.ok, false);
  assert.equal(result.entries, 4);
  assert.ok(result.problems.some((p) => p.line === 3 && /seq 4 follows seq 2/.test(p.problem)), JSON.stringify(result.problems));
});

test("verify detects reordered lines", (t) => {
  const { path } = writeLog(t, 4);
  const [a, b, c, d] = lines(path) as [string, string, string, string];
  writeLines(path, [a, c, b, d]);
  const result = verifyAuditFile(path);
  assert.equal(result.ok, false);
  assert.ok(result.problems.some((p) => p.line === 2));
});

test("verify detects a removed last line only against the recorded head", (t) => {
  const { path, head } = writeLog(t, 5);
  writeLines(path, lines(path).slice(0, 4));
  // The chain alone cannot tell a truncated tail from a shorter log.
  assert.equal(verifyAuditFile(path).ok, true);
  const result = verifyAuditFile(path, head);
  assert.equal(result.ok, false);
  assert.match(result.problems[0]?.problem ?? "", /truncated/);
});

test("verify detects an emptied log against the recorded head", (t) => {
  const { path, head } = writeLog(t, 3);
  writeFileSync(path, "");
  assert.equal(verifyAuditFile(path, head).ok, false);
});

test("verify reports a malformed line", (t) => {
  const { path } = writeLog(t, 5);
  const ls = lines(path);
  ls[3] = "{not json";
  writeLines(path, ls);
  const result = verifyAuditFile(path);
  assert.equal(result.ok, false);
  assert.equal(result.entries, 4);
  assert.deepEqual(result.problems.map((p) => p.line), [4]);
  assert.match(result.problems[0]?.problem ?? "", /malformed/);
});

test("reopening continues the chain", (t) => {
  const { path, head } = writeLog(t, 3);
  const log = new AuditLog(path, { clock: new FakeClock() });
  assert.deepEqual(log.open().head, head);
  const [next] = log.append([{ type: "signal", subject: "s9" }]);
  log.close();
  assert.equal(next?.seq, 4);
  assert.equal(next?.prev, head.hash);
  const result = verifyAuditFile(path, { seq: 4, hash: next?.hash ?? "" });
  assert.deepEqual(result, { ok: true, entries: 4, problems: [] });
});

test("a torn last line is kept for verify to report and the chain continues from the last good line", (t) => {
  const { path, head } = writeLog(t, 3);
  appendFileSync(path, '{"type":"decision","seq":4,"pr');
  const log = new AuditLog(path, { clock: new FakeClock() });
  const opened = log.open();
  assert.equal(opened.repairedTail, true);
  assert.deepEqual(opened.head, head);
  const [next] = log.append([{ type: "signal" }]);
  log.close();
  assert.equal(next?.seq, 4);
  const result = verifyAuditFile(path);
  assert.equal(result.entries, 4);
  assert.deepEqual(result.problems.map((p) => p.line), [4]);
});

test("read filters by type, subject and after, and limits newest last", (t) => {
  // Enough lines to cross the 64 KiB read chunks in both directions.
  const path = tempFile(t);
  const log = new AuditLog(path, { clock: new FakeClock() });
  log.open();
  const pad = "x".repeat(120);
  for (let i = 0; i < 20; i++) {
    log.append(Array.from({ length: 100 }, (_, k) => ({ type: (i * 100 + k) % 3 === 0 ? "action" : "decision", subject: `s${(i * 100 + k) % 7}`, pad })));
  }
  assert.equal(log.head.seq, 2000);
  assert.deepEqual(
    log.read({ limit: 3 }).map((e) => e.seq),
    [1998, 1999, 2000],
  );
  assert.equal(log.read().length, 100);
  assert.deepEqual(
    log.read({ after: 1000, limit: 3 }).map((e) => e.seq),
    [1001, 1002, 1003],
  );
  assert.deepEqual(
    log.read({ after: 1990 }).map((e) => e.seq),
    [1991, 1992, 1993, 1994, 1995, 1996, 1997, 1998, 1999, 2000],
  );
  const actions = log.read({ type: "action", subject: "s0", limit: 1000 });
  assert.ok(actions.length > 0);
  assert.ok(actions.every((e) => e.type === "action" && e["subject"] === "s0"));
  // seq-1 is (i*100+k): action when divisible by 3, s0 when divisible by 7, so every 21st line.
  assert.equal(actions.length, Math.floor(1999 / 21) + 1);
  assert.deepEqual(log.read({ after: 2000 }), []);
  log.close();
});

test("reading or verifying a log that does not exist yet finds nothing", (t) => {
  const path = tempFile(t);
  const log = new AuditLog(path);
  assert.deepEqual(log.read(), []);
  assert.deepEqual(log.read({ after: 0 }), []);
  assert.deepEqual(verifyAuditFile(path), { ok: true, entries: 0, problems: [] });
  assert.equal(verifyAuditFile(path, { seq: 3, hash: "a".repeat(64) }).ok, false);
});
