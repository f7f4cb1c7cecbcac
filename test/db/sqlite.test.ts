/**
 * transaction(): nested calls become savepoints, and a failure inside one reports its own error even
 * when SQLite has already rolled the whole transaction back (as it does on a full disk).
 * openDatabase(): the page size and temporary storage a new database gets, and an older one keeps.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_FILE, PAGE_SIZE, openDatabase, transaction } from "../../src/db/sqlite.ts";

test("a nested failure rolls back its savepoint only; one that ended the transaction keeps its own error", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-sqlite-"));
  const db = openDatabase(dir);
  t.after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  db.exec("CREATE TABLE t (v INTEGER)");
  const values = () => (db.prepare("SELECT v FROM t ORDER BY v").all() as { v: number }[]).map((r) => r.v);

  transaction(db, () => {
    db.exec("INSERT INTO t VALUES (1)");
    assert.throws(
      () =>
        transaction(db, () => {
          db.exec("INSERT INTO t VALUES (2)");
          throw new Error("inner");
        }),
      /inner/,
    );
  });
  assert.deepEqual(values(), [1], "the savepoint's row is gone, the outer one committed");

  // SQLite ending the transaction itself (here a ROLLBACK; on a full disk SQLite does it): the
  // savepoint no longer exists, and the caller still sees the failure that happened.
  assert.throws(
    () =>
      transaction(db, () => {
        db.exec("INSERT INTO t VALUES (3)");
        transaction(db, () => {
          db.exec("ROLLBACK");
          throw new Error("database or disk is full");
        });
      }),
    /database or disk is full/,
  );
  assert.equal(db.isTransaction, false);
  assert.deepEqual(values(), [1]);
});

test("a new database gets 16 KiB pages and keeps temporary data in memory; an existing one keeps its page size and rows", (t) => {
  const root = mkdtempSync(join(tmpdir(), "vigil-sqlite-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const pragma = (db: DatabaseSync, name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];

  const fresh = openDatabase(join(root, "new"));
  fresh.exec("CREATE TABLE t (v INTEGER)");
  assert.equal(pragma(fresh, "page_size"), PAGE_SIZE);
  assert.equal(PAGE_SIZE, 16_384);
  assert.equal(pragma(fresh, "journal_mode"), "wal");
  assert.equal(pragma(fresh, "temp_store"), 2, "2 is MEMORY");
  fresh.close();
  const reopened = openDatabase(join(root, "new"));
  assert.equal(pragma(reopened, "page_size"), PAGE_SIZE);
  reopened.close();

  // A database an earlier version created with SQLite's default 4 KiB pages (a rollback journal
  // here, to show the switch to WAL keeps its pages too).
  mkdirSync(join(root, "old"));
  const before = new DatabaseSync(join(root, "old", DATABASE_FILE));
  before.exec("PRAGMA page_size = 4096; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (7)");
  before.close();
  const old = openDatabase(join(root, "old"));
  t.after(() => old.close());
  assert.equal(pragma(old, "page_size"), 4096);
  assert.equal(pragma(old, "journal_mode"), "wal");
  old.exec("INSERT INTO t VALUES (8)");
  assert.deepEqual((old.prepare("SELECT v FROM t ORDER BY v").all() as { v: number }[]).map((r) => r.v), [7, 8]);
  assert.equal(pragma(old, "quick_check"), "ok");
});
