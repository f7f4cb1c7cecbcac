/**
 * transaction(): nested calls become savepoints, and a failure inside one reports its own error even
 * when SQLite has already rolled the whole transaction back (as it does on a full disk).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, transaction } from "../../src/db/sqlite.ts";

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
