import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { VigilError } from "../../src/errors.ts";
import type { AccessLevel, CheckResult } from "../../src/policy/model.ts";
import { verifyAuditFile } from "../../src/store/audit.ts";
import type { StoredState } from "../../src/store/contract.ts";
import { AUDIT_FILE, EmbeddedStore, auditHead } from "../../src/store/embedded.ts";
import { openDatabase } from "../../src/db/sqlite.ts";
import { FakeClock } from "../../src/util/clock.ts";

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

function state(policy: string, subject: string, o: { generation?: number; enforced?: number; access?: AccessLevel } = {}): StoredState {
  const generation = o.generation ?? 1;
  return {
    decision: {
      policy,
      subject,
      access: o.access ?? "full_access",
      risk: "low",
      reasons: [{ code: "ok", message: "all checks pass" }],
      generation,
      decided_at: 1_000,
      evidence: { mfa: { status: "pass" } },
      exempt: false,
    },
    candidate: o.access ?? "full_access",
    streak: 1,
    changed_at: 1_000,
    enforced_generation: o.enforced ?? generation,
    enforced_access: "full_access",
  };
}

function result(subject: string, check: string, observed_at: number, o: Partial<CheckResult> = {}): CheckResult {
  return { check, subject, status: "pass", reasons: [], observed_at, expires_at: observed_at + 60_000, ...o };
}

test("states are written and read back, singly, in batches and by filter", async (t) => {
  const { store } = setup(t);
  const many = Array.from({ length: 1_200 }, (_, i) => state("prod", `s${i}`));
  await store.putStates([...many, state("dev", "s1", { access: "read_only" })]);

  assert.deepEqual(await store.getState("prod", "s7"), many[7]);
  assert.equal(await store.getState("prod", "missing"), undefined);
  assert.equal((await store.getState("dev", "s1"))?.decision.access, "read_only");

  // More subjects than one IN list holds, with duplicates and unknown ones.
  const wanted = [...Array.from({ length: 1_100 }, (_, i) => `s${i}`), "s5", "nobody"];
  const got = await store.getStates("prod", wanted);
  assert.equal(got.size, 1_100);
  assert.deepEqual(got.get("s1099"), many[1_099]);
  assert.equal(got.has("nobody"), false);

  assert.equal((await store.listStates()).length, 1_201);
  assert.equal((await store.listStates({ policy: "dev" })).length, 1);
  assert.deepEqual(
    (await store.listStates({ subject: "s1" })).map((s) => s.decision.policy),
    ["dev", "prod"],
  );
  assert.equal((await store.listStates({ policy: "dev", subject: "s2" })).length, 0);

  await store.putStates([state("prod", "s7", { generation: 2, access: "deny", enforced: 1 })]);
  assert.equal((await store.getState("prod", "s7"))?.decision.access, "deny");
  assert.deepEqual(await store.countByAccess(), { dev: { read_only: 1 }, prod: { deny: 1, full_access: 1_199 } });
});

test("unenforced lists states ahead of enforcement until markEnforced catches up", async (t) => {
  const { store } = setup(t);
  await store.putStates([
    state("p", "a", { generation: 1, enforced: 1 }),
    state("p", "b", { generation: 2, enforced: 1, access: "deny" }),
    state("p", "c", { generation: 3, enforced: 0, access: "read_only" }),
  ]);
  assert.deepEqual(
    (await store.unenforced()).map((s) => s.decision.subject),
    ["b", "c"],
  );

  await store.markEnforced("p", "b", 2, "deny");
  assert.deepEqual(
    (await store.unenforced()).map((s) => s.decision.subject),
    ["c"],
  );
  const b = await store.getState("p", "b");
  assert.equal(b?.enforced_generation, 2);
  assert.equal(b?.enforced_access, "deny");
  assert.equal(b?.decision.reasons[0]?.code, "ok", "the rest of the stored JSON is kept");

  // An older generation arriving late does not move enforcement backwards.
  await store.markEnforced("p", "b", 1, "full_access");
  assert.equal((await store.getState("p", "b"))?.enforced_access, "deny");

  // A new decision makes the state unenforced again.
  await store.putStates([{ ...state("p", "b", { generation: 3, access: "full_access" }), enforced_generation: 2, enforced_access: "deny" }]);
  assert.deepEqual(
    (await store.unenforced()).map((s) => s.decision.subject),
    ["b", "c"],
  );
});

test("the newest result per subject, check and source wins", async (t) => {
  const { store } = setup(t);
  await store.putResults([result("s1", "mfa", 100), result("s1", "mfa", 100, { source: "push", status: "fail" }), result("s2", "mfa", 100)]);
  await store.putResults([result("s1", "mfa", 50, { status: "fail" })]);
  assert.equal((await store.getResults(["s1"], ["mfa"])).find((r) => r.source === undefined)?.status, "pass", "an older result replaced a newer one");
  await store.putResults([result("s1", "mfa", 200, { status: "warn" }), result("s1", "device", 10)]);

  const got = await store.getResults(["s1"], ["mfa"]);
  assert.equal(got.length, 2);
  assert.deepEqual(got.map((r) => [r.source ?? "pull", r.status, r.observed_at]).sort(), [
    ["pull", "warn", 200],
    ["push", "fail", 100],
  ]);
  assert.equal((await store.getResults(["s1", "s2", "s3"], ["mfa", "device"])).length, 4);
  assert.deepEqual(await store.getResults([], ["mfa"]), []);
});

test("audit entries are appended, read with filters and chained with the head recorded", async (t) => {
  const { dir, db, store } = setup(t);
  await store.start();
  assert.equal(auditHead(db), undefined);
  const first = await store.appendAudit([
    { type: "decision", subject: "a", access: "deny" },
    { type: "action", subject: "a" },
    { type: "decision", subject: "b", access: "full_access" },
  ]);
  assert.deepEqual(
    first.map((e) => e.seq),
    [1, 2, 3],
  );
  assert.equal(first[1]?.prev, first[0]?.hash);
  assert.equal(first[0]?.ts, "2026-02-01T00:00:00.000Z");
  await store.appendAudit([{ type: "signal", subject: "b" }]);
  assert.deepEqual(await store.appendAudit([]), []);

  assert.deepEqual(
    (await store.readAudit()).map((e) => e.seq),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    (await store.readAudit({ type: "decision" })).map((e) => e["subject"]),
    ["a", "b"],
  );
  assert.deepEqual(
    (await store.readAudit({ subject: "b" })).map((e) => e.type),
    ["decision", "signal"],
  );
  assert.deepEqual(
    (await store.readAudit({ after: 2 })).map((e) => e.seq),
    [3, 4],
  );
  assert.deepEqual(
    (await store.readAudit({ limit: 2 })).map((e) => e.seq),
    [3, 4],
  );
  assert.deepEqual(
    (await store.readAudit({ after: 1, limit: 2 })).map((e) => e.seq),
    [2, 3],
  );

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

test("states survive closing and reopening the database", async (t) => {
  const { dir, db, store } = setup(t);
  await store.putStates([state("p", "x", { generation: 4, enforced: 3 })]);
  db.close();
  const { store: reopened } = setup(t, dir);
  assert.equal((await reopened.getState("p", "x"))?.decision.generation, 4);
  assert.equal((await reopened.unenforced()).length, 1);
});
