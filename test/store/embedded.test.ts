/**
 * The embedded store: the StateStore contract suite (test/store/contract.ts) on SQLite and the audit
 * file, and what only it does (the head recorded in vigil.db, a truncated file refused).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { VigilError } from "../../src/errors.ts";
import { verifyAudit, verifyAuditFile } from "../../src/store/audit.ts";
import { AUDIT_FILE, EmbeddedStore, auditHead } from "../../src/store/embedded.ts";
import { openDatabase } from "../../src/db/sqlite.ts";
import { FakeClock } from "../../src/util/clock.ts";
import { stateStoreContract, type StoreBackend } from "./contract.ts";

const embedded: StoreBackend = {
  name: "embedded",
  async setup(t) {
    const dir = mkdtempSync(join(tmpdir(), "vigil-store-"));
    const dbs: DatabaseSync[] = [];
    t.after(() => {
      for (const db of dbs) if (db.isOpen) db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      store: (options = {}) => {
        const db = openDatabase(dir);
        dbs.push(db);
        return new EmbeddedStore(db, dir, options);
      },
      verify: async () => {
        const db = openDatabase(dir);
        try {
          const r = verifyAudit(join(dir, AUDIT_FILE), { head: auditHead(db) });
          return { ok: r.ok, entries: r.entries, problems: r.problems };
        } finally {
          db.close();
        }
      },
    };
  },
};

stateStoreContract(embedded);

function setup(t: TestContext, dir?: string): { dir: string; db: DatabaseSync; store: EmbeddedStore } {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), "vigil-store-"));
  if (!dir) t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const db = openDatabase(dataDir);
  const store = new EmbeddedStore(db, dataDir, { clock: new FakeClock("2026-02-01T00:00:00Z") });
  t.after(async () => {
    await store.stop();
    if (db.isOpen) db.close();
  });
  return { dir: dataDir, db, store };
}

test("audit entries are chained into the file with the head recorded in the database (reading with filters: contract.ts)", async (t) => {
  const { dir, db, store } = setup(t);
  await store.start();
  assert.equal(auditHead(db), undefined);
  await store.appendAudit([
    { type: "decision", subject: "a", access: "deny" },
    { type: "action", subject: "a" },
    { type: "decision", subject: "b", access: "full_access" },
  ]);
  await store.appendAudit([{ type: "signal", subject: "b" }]);

  const head = auditHead(db);
  assert.equal(head?.seq, 4);
  const path = join(dir, AUDIT_FILE);
  assert.deepEqual(verifyAuditFile(path, head), { ok: true, entries: 4, problems: [] });

  // A new store on the same data continues the chain.
  await store.stop();
  const again = new EmbeddedStore(db, dir, { clock: new FakeClock() });
  await again.start();
  const [next] = await again.appendAudit([{ type: "config_reloaded" }]);
  await again.stop();
  assert.equal(next?.seq, 5);
  assert.equal(next?.prev, head?.hash);
  assert.deepEqual(auditHead(db), { seq: 5, hash: next?.hash });
  assert.equal(verifyAuditFile(path, auditHead(db)).ok, true);
});

test("a truncated audit log is refused on start instead of being continued", async (t) => {
  const { dir, db, store } = setup(t);
  await store.start();
  await store.appendAudit([{ type: "decision" }, { type: "decision" }, { type: "decision" }]);
  await store.stop();
  const path = join(dir, AUDIT_FILE);
  const kept = readFileSync(path, "utf8").split("\n").slice(0, 2).join("\n") + "\n";
  writeFileSync(path, kept);

  const reopened = new EmbeddedStore(db, dir, { clock: new FakeClock() });
  await assert.rejects(reopened.start(), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_AUDIT_CORRUPT");
  const verdict = verifyAuditFile(path, auditHead(db));
  assert.equal(verdict.ok, false);
  assert.match(verdict.problems[0]?.problem ?? "", /truncated/);
});

