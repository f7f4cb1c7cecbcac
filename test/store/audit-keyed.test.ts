import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { AuditLog, auditKey, entryHash, signCheckpoint, openCheckpoint, verifyAudit } from "../../src/store/audit.ts";
import { AUDIT_FILE, EmbeddedStore, auditHead } from "../../src/store/embedded.ts";
import { openDatabase } from "../../src/db/sqlite.ts";
import { canonicalJSON } from "../../src/util/canonical-json.ts";
import { FakeClock } from "../../src/util/clock.ts";

const KEY = auditKey("k".repeat(32) + "-audit-key-for-tests");
const OTHER = auditKey("o".repeat(40));

function setup(t: TestContext): { dir: string; db: DatabaseSync; path: string; store: (key?: typeof KEY | null) => EmbeddedStore } {
  const dir = mkdtempSync(join(tmpdir(), "vigil-keyed-"));
  const db = openDatabase(dir);
  const stores: EmbeddedStore[] = [];
  t.after(async () => {
    for (const s of stores) await s.stop();
    if (db.isOpen) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    db,
    path: join(dir, AUDIT_FILE),
    store: (key: typeof KEY | null = KEY) => {
      const s = new EmbeddedStore(db, dir, { clock: new FakeClock("2026-02-01T00:00:00Z"), ...(key ? { key } : {}) });
      stores.push(s);
      return s;
    },
  };
}

async function written(t: TestContext, n = 5) {
  const env = setup(t);
  const store = env.store();
  await store.start();
  for (let i = 1; i <= n; i++) await store.appendAudit([{ type: "decision", subject: `s${i}`, access: "deny" }]);
  await store.stop();
  return env;
}

function lines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l !== "");
}

test("keyed lines carry the key id and an HMAC that verifies only under that key", async (t) => {
  const { path, db } = await written(t);
  const first = JSON.parse(lines(path)[0] as string) as Record<string, unknown>;
  assert.equal(first["key_id"], KEY.id);
  assert.notEqual(first["hash"], entryHash(first), "the hash is not a plain sha256 anyone could recompute");
  assert.equal(first["hash"], entryHash(first, KEY));
  // The chain's HMAC is plain RFC 2104 HMAC-SHA256, recomputed independently (short and long keys):
  const { hash: _h, ...body } = first;
  assert.equal(first["hash"], createHmac("sha256", KEY.secret).update(`${String(first["prev"])}\n${canonicalJSON(body)}`).digest("hex"));
  const long = auditKey("L".repeat(100));
  assert.equal(long.mac("some text"), createHmac("sha256", long.secret).update("some text").digest("hex"));
  // Multi-byte UTF-8 and an empty text: the MAC covers the text's UTF-8 bytes, as createHmac does.
  for (const text of ["", "résumé ∂ 🙂", "x".repeat(200), "é".repeat(3000), "y".repeat(40_000), "z"]) assert.equal(KEY.mac(text), createHmac("sha256", KEY.secret).update(text).digest("hex"));
  const ok = verifyAudit(path, { head: auditHead(db), key: KEY });
  assert.equal(ok.ok, true, JSON.stringify(ok.problems));
  assert.equal(ok.keyed, 5);
  assert.ok(ok.checked.some((c) => c.includes(KEY.id)), "verify says which key it checked with");
  const wrong = verifyAudit(path, { head: auditHead(db), key: OTHER });
  assert.equal(wrong.ok, false);
  assert.match(wrong.problems[0]?.problem ?? "", /written with key id/);
  assert.equal(verifyAudit(path, { head: auditHead(db) }).ok, false, "without the key nothing keyed passes");
});

test("rewriting the chain and updating the recorded head is detected", async (t) => {
  const { path, db } = await written(t);
  // The attacker changes one decision and recomputes every hash after it, the recorded head included.
  const forge = (dropKeyId: boolean) => {
    let prev = "0".repeat(64);
    const out: string[] = [];
    for (const [i, line] of lines(path).entries()) {
      const e = JSON.parse(line) as Record<string, unknown>;
      if (i === 2) e["access"] = "full_access";
      if (dropKeyId) delete e["key_id"];
      e["prev"] = prev;
      delete e["hash"];
      const hash = entryHash(e);
      out.push(`${canonicalJSON(e).slice(0, -1)},"hash":"${hash}"}`);
      prev = hash;
    }
    return { text: out.map((l) => l + "\n").join(""), head: { seq: out.length, hash: prev } };
  };
  const original = readFileSync(path, "utf8");
  for (const dropKeyId of [false, true]) {
    const { text, head } = forge(dropKeyId);
    writeFileSync(path, text);
    db.prepare("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1").run(head.seq, head.hash);
    const r = verifyAudit(path, { head: auditHead(db), key: KEY });
    assert.equal(r.ok, false, `forgery (${dropKeyId ? "unkeyed" : "keeping key_id"}) passed verify`);
    assert.ok(r.problems.some((p) => /HMAC|not vouched|no keyed line/.test(p.problem)), JSON.stringify(r.problems));
    writeFileSync(path, original);
  }
});

test("a duplicate JSON key is reported even when the hash still matches", async (t) => {
  const { path, db } = await written(t, 3);
  const ls = lines(path);
  // JSON.parse keeps the last value, so the hash still verifies; a first-wins reader sees full_access.
  ls[1] = (ls[1] as string).replace('{"access":"deny"', '{"access":"full_access","access":"deny"');
  writeFileSync(path, ls.map((l) => l + "\n").join(""));
  const r = verifyAudit(path, { head: auditHead(db), key: KEY });
  assert.equal(r.ok, false);
  assert.deepEqual(r.problems.map((p) => p.line), [2]);
  assert.match(r.problems[0]?.problem ?? "", /duplicate key "access"/);
});

test("lines appended past the recorded head are refused at start", async (t) => {
  const { path, store } = await written(t, 3);
  const last = JSON.parse(lines(path).at(-1) as string) as Record<string, unknown>;
  const forged: Record<string, unknown> = { type: "decision", subject: "s1", access: "full_access", seq: 4, ts: last["ts"], prev: last["hash"] };
  appendFileSync(path, `${canonicalJSON(forged).slice(0, -1)},"hash":"${entryHash(forged)}"}\n`);
  await assert.rejects(store().start(), (err: { code?: string; message?: string }) => err.code === "VIGIL_ERR_AUDIT_CORRUPT" && /vigil audit truncate/.test(err.message ?? ""));
});

test("a failed head write (full disk) leaves a log that verifies and is adopted at the next start", async (t) => {
  const { path, db, store } = await written(t, 2);
  const s = store();
  await s.start();
  db.exec("CREATE TEMP TRIGGER full BEFORE UPDATE ON audit_head BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
  await assert.rejects(s.appendAudit([{ type: "decision", subject: "s9", access: "deny" }]), { code: "VIGIL_ERR_STORE" });
  await s.stop();
  db.exec("DROP TRIGGER full");
  assert.equal(auditHead(db)?.seq, 2, "the head write failed");
  const r = verifyAudit(path, { head: auditHead(db), key: KEY });
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.equal(r.past_head, 1);
  const again = store();
  await again.start();
  assert.equal(auditHead(db)?.seq, 3, "the keyed line past the head is explained and adopted");
  assert.deepEqual((await again.readAudit({ subject: "s9" })).map((e) => e.seq), [3], "and indexed");
});

test("an evaluation whose state write fails records nothing in the database; its audit line is indexed with the next one", async (t) => {
  const { path, db, store } = await written(t, 2);
  const s = store();
  await s.start();
  const st = (subject: string) => ({
    decision: { policy: "p", subject, access: "deny" as const, risk: "high" as const, reasons: [], generation: 1, decided_at: 1, evidence: {}, exempt: false },
    candidate: "deny" as const,
    streak: 0,
    changed_at: 1,
    enforced_generation: 0,
    enforced_access: "full_access" as const,
  });
  const res = (subject: string) => ({ check: "mfa", subject, status: "fail" as const, reasons: [], observed_at: 1, expires_at: 60_000, source: "pull" as const });
  db.exec("CREATE TEMP TRIGGER full BEFORE INSERT ON states BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
  await assert.rejects(s.recordEvaluation({ results: [res("s8")], audit: [{ type: "decision", subject: "s8", access: "deny" }], states: [st("s8")] }), { code: "VIGIL_ERR_STORE" });
  db.exec("DROP TRIGGER full");
  assert.deepEqual(await s.getResults(["s8"], ["mfa"]), [], "the results were rolled back with the states");
  assert.deepEqual(await s.listStates({ subject: "s8" }), []);
  assert.equal(auditHead(db)?.seq, 2, "and so was the head");
  assert.equal(lines(path).length, 3, "the line stays in the log");

  await s.recordEvaluation({ results: [res("s9")], audit: [{ type: "decision", subject: "s9", access: "deny" }], states: [st("s9")] });
  assert.equal(auditHead(db)?.seq, 4);
  assert.deepEqual((await s.readAudit({ subject: "s8" })).map((e) => e.seq), [3], "indexed with the next evaluation's line");
  assert.deepEqual((await s.readAudit({ type: "decision", after: 2 })).map((e) => e["subject"]), ["s8", "s9"]);
  assert.deepEqual((await s.listStates({ subject: "s9" })).length, 1);
  const r = verifyAudit(path, { head: auditHead(db), key: KEY });
  assert.equal(r.ok, true, JSON.stringify(r.problems));
});

test("a log written before keying is vouched for by a keyed audit_keyed entry", async (t) => {
  const { path, db, store } = setup(t);
  const plain = store(null);
  await plain.start();
  await plain.appendAudit([{ type: "decision", subject: "a" }, { type: "decision", subject: "b" }]);
  await plain.stop();
  const keyed = store();
  await keyed.start();
  await keyed.appendAudit([{ type: "signal", subject: "a" }]);
  await keyed.stop();
  const ls = lines(path);
  assert.equal(JSON.parse(ls[2] as string).type, "audit_keyed");
  const r = verifyAudit(path, { head: auditHead(db), key: KEY });
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.equal(r.unkeyed, 2);
  // Rewriting the unkeyed part afterwards breaks what the keyed entry vouched for.
  const e = JSON.parse(ls[1] as string) as Record<string, unknown>;
  e["subject"] = "z";
  delete e["hash"];
  ls[1] = `${canonicalJSON(e).slice(0, -1)},"hash":"${entryHash(e)}"}`;
  writeFileSync(path, ls.map((l) => l + "\n").join(""));
  assert.equal(verifyAudit(path, { head: auditHead(db), key: KEY }).ok, false);
});

test("filtered audit reads use the index and match a scan of the file", async (t) => {
  const { path, store } = setup(t);
  const s = store();
  await s.start();
  for (let i = 0; i < 50; i++) await s.appendAudit([{ type: i % 3 === 0 ? "signal" : "decision", subject: `s${i % 4}` }]);
  const log = new AuditLog(path);
  for (const q of [{ subject: "s1" }, { type: "signal" }, { subject: "s2", type: "decision", limit: 3 }, { after: 40 }, { after: 10, subject: "s3", limit: 2 }]) {
    assert.deepEqual(
      (await s.readAudit(q)).map((e) => e.seq),
      log.read(q).map((e) => e.seq),
      JSON.stringify(q),
    );
  }
});

test("signed checkpoints open only under the key and anchor the log", async (t) => {
  const { path, db } = await written(t, 4);
  const head = auditHead(db)!;
  const cp = signCheckpoint(KEY, head, { ts: "2026-02-01T00:00:00.000Z", host: "h", data_dir: "/d" });
  assert.deepEqual(openCheckpoint(KEY, JSON.parse(JSON.stringify(cp))), { ok: true, head });
  assert.equal(openCheckpoint(KEY, { ...cp, seq: 3 }).ok, false);
  assert.equal(openCheckpoint(OTHER, cp).ok, false);
  assert.equal(verifyAudit(path, { key: KEY, checkpoints: [head] }).checkpoints.matched, 1);
  // Cutting the log back, head and all, is still caught by the checkpoint kept off the host.
  writeFileSync(path, lines(path).slice(0, 2).map((l) => l + "\n").join(""));
  const r = verifyAudit(path, { key: KEY, checkpoints: [head] });
  assert.equal(r.ok, false);
  assert.match(r.problems[0]?.problem ?? "", /checkpoint at seq 4 is past the end/);
});
