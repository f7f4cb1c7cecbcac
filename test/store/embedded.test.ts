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
import { ensureSchema, openDatabase } from "../../src/db/sqlite.ts";
import { FakeClock } from "../../src/util/clock.ts";
import { result, stateStoreContract, type StoreBackend } from "./contract.ts";

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


test("a subject's pulled results share one row; pushed ones keep a row each", async (t) => {
  const { db, store } = setup(t);
  await store.start();
  const checks = ["mfa", "managed_device", "location", "session_age"];
  await store.putResults(["a", "b"].flatMap((s) => checks.map((c) => result(s, c, 1_000))));
  await store.putResults([result("a", "anomaly_detection", 1_000, { source: "push", stream: "s1" }), result("a", "anomaly_detection", 1_000, { source: "push", stream: "s2" })]);
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  assert.equal(count("SELECT count(*) AS n FROM pull_results"), 2);
  assert.equal(count("SELECT count(*) AS n FROM results"), 2);
  // A later result of one check replaces that check's only; an older one changes nothing.
  await store.putResults([result("a", "mfa", 2_000, { status: "fail" }), result("a", "location", 500, { status: "fail" })]);
  const got = await store.getResults(["a"], [...checks, "anomaly_detection"]);
  assert.deepEqual(
    got.map((r) => [r.check, r.source ?? "pull", r.status, r.observed_at]),
    [
      ["anomaly_detection", "push", "pass", 1_000],
      ["anomaly_detection", "push", "pass", 1_000],
      ["location", "pull", "pass", 1_000],
      ["managed_device", "pull", "pass", 1_000],
      ["mfa", "pull", "fail", 2_000],
      ["session_age", "pull", "pass", 1_000],
    ],
  );
  // A check named like an Object member is a key like any other.
  await store.putResults([result("b", "__proto__", 1_000), result("b", "constructor", 1_000, { status: "fail" })]);
  assert.deepEqual(
    (await store.getResults(["b"], ["__proto__", "constructor", "toString"])).map((r) => [r.check, r.status]),
    [
      ["__proto__", "pass"],
      ["constructor", "fail"],
    ],
  );
});

test("a database of schema version 1 (pulled results one row per check) is migrated when opened", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-store-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const old = openDatabase(dir);
  old.exec(`CREATE TABLE results (subject TEXT NOT NULL, "check" TEXT NOT NULL, source TEXT NOT NULL, observed_at INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (subject, "check", source));
    INSERT INTO schema_version (component, version) VALUES ('store', 1);`);
  const rows = [result("a", "mfa", 1_000), result("a", "location", 1_000, { status: "fail", evidence: { country: "XX" } }), result("b", "mfa", 1_000), result("a", "anomaly_detection", 1_000, { source: "push", stream: "s1" })];
  const insert = old.prepare(`INSERT INTO results (subject, "check", source, observed_at, data) VALUES (?, ?, ?, ?, ?)`);
  for (const r of rows) insert.run(r.subject, r.check, r.source === "push" ? `push:${r.stream}` : "pull", r.observed_at, JSON.stringify(r));
  old.close();

  const { db, store } = setup(t, dir);
  await store.start();
  const version = db.prepare("SELECT version FROM schema_version WHERE component = 'store'").get() as { version: number };
  assert.equal(version.version, 2);
  assert.equal((db.prepare("SELECT count(*) AS n FROM results WHERE source = 'pull'").get() as { n: number }).n, 0, "no pulled result left in the old layout");
  const got = await store.getResults(["a", "b"], ["mfa", "location", "anomaly_detection"]);
  assert.deepEqual(
    got,
    [rows[3], rows[1], rows[0], rows[2]].map((r) => r!),
    "every result as it was written",
  );
  // A vigil of version 1 still running after the migration (a newer one-shot command migrated the
  // database under it) writes pulled results into `results`: read back, the newest per check counts.
  const stray = db.prepare(`INSERT INTO results (subject, "check", source, observed_at, data) VALUES (?, ?, 'pull', ?, ?)`);
  stray.run("a", "mfa", 5_000, JSON.stringify(result("a", "mfa", 5_000, { status: "fail" })));
  stray.run("b", "mfa", 500, JSON.stringify(result("b", "mfa", 500, { status: "fail" })));
  assert.deepEqual(
    (await store.getResults(["a", "b"], ["mfa"])).map((r) => [r.subject, r.status, r.observed_at]),
    [
      ["a", "fail", 5_000],
      ["b", "pass", 1_000],
    ],
  );
  // An older vigil refuses the migrated database instead of missing its pulled results.
  db.close();
  const again = openDatabase(dir);
  t.after(() => again.close());
  assert.throws(
    () => ensureSchema(again, "store", 1, "SELECT 1"),
    (err: unknown) => err instanceof VigilError && /schema version 2, newer than this vigil supports \(1\)/.test(err.message),
  );
});
