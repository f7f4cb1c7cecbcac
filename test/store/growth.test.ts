import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CheckResult } from "../../src/policy/model.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { openDatabase, DATABASE_FILE } from "../../src/db/sqlite.ts";
import { Checkpointer, pendingFrames } from "../../src/db/checkpointer.ts";
import { until } from "../helpers/wait.ts";

function setup(t: TestContext, options: { maxStreams?: number; walSizeLimit?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "vigil-growth-"));
  const db = openDatabase(dir, { manualCheckpoint: true, ...(options.walSizeLimit ? { walSizeLimit: options.walSizeLimit } : {}) });
  const dropped: [string, number][] = [];
  const store = new EmbeddedStore(db, dir, { ...(options.maxStreams ? { maxStreams: options.maxStreams } : {}), onStreamsDropped: (check, n) => dropped.push([check, n]) });
  t.after(async () => {
    await store.stop();
    if (db.isOpen) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, db, store, dropped };
}

const pushed = (stream: string, at: number, o: Partial<CheckResult> = {}): CheckResult => ({
  check: "anomaly_detection",
  subject: "u001",
  status: "fail",
  reasons: [{ code: "SIGNAL", message: "x".repeat(200) }],
  observed_at: at,
  expires_at: at + 60_000,
  source: "push",
  stream,
  ...o,
});

test("the checkpoint runs in a worker and the WAL is cut back to its size limit", async (t) => {
  const limit = 1024 * 1024;
  const { dir, db, store } = setup(t, { walSizeLimit: limit });
  // The worker waits an hour for the next checkpoint here; the test below lets it go sooner.
  const checkpointer = new Checkpointer(join(dir, DATABASE_FILE), limit, { idleMs: 3_600_000, minFrames: 0 });
  t.after(() => checkpointer.close());
  const wal = () => statSync(join(dir, `${DATABASE_FILE}-wal`)).size;
  for (let i = 0; i < 40; i++) await store.putResults(Array.from({ length: 100 }, (_, k) => pushed(`s${i}-${k}`, i * 100 + k, { subject: `u${i}-${k}` })));
  assert.ok(wal() > 2 * limit, `the WAL grew past the limit (${wal()} bytes)`);
  const first = await checkpointer.checkpoint();
  assert.equal(first.busy, false);
  assert.equal(first.checkpointed, first.log, "everything was copied into the database");
  assert.equal(first.truncated, true);
  assert.equal(wal(), 0);
  assert.notEqual(checkpointer.workerThreadId, undefined, "caught up: the worker waits for the next checkpoint");
  // With the limit set, later writes restart the log and it stays near the limit, not at its peak.
  for (let i = 0; i < 10; i++) {
    await store.putResults([pushed(`later${i}`, 10_000 + i)]);
    await checkpointer.checkpoint();
  }
  assert.ok(wal() <= limit, `WAL ${wal()} bytes`);
  assert.deepEqual(await checkpointer.checkpoint(), { busy: false, log: 0, checkpointed: 0, truncated: false }, "nothing written since: skipped, the worker let go");
  await store.putResults([pushed("again", 20_000)]);
  const running = checkpointer.checkpoint();
  assert.notEqual(checkpointer.workerThreadId, undefined, "a new write brings the worker back");
  assert.ok((await running).log > 0);
  assert.equal((db.prepare("PRAGMA journal_size_limit").get() as { journal_size_limit: number }).journal_size_limit, limit);
});

test("the checkpoint worker stays while checkpoints follow each other and goes when none comes", async (t) => {
  const { dir, store } = setup(t);
  const checkpointer = new Checkpointer(join(dir, DATABASE_FILE), 64 * 1024 * 1024, { idleMs: 300, minFrames: 0 });
  t.after(() => checkpointer.close());
  await store.putResults([pushed("a", 1)]);
  await checkpointer.checkpoint();
  const first = checkpointer.workerThreadId;
  assert.notEqual(first, undefined, "caught up: the worker waits for the next checkpoint");
  // Another write and checkpoint within the wait: the same busy stretch, the same worker.
  await store.putResults([pushed("b", 2)]);
  assert.ok((await checkpointer.checkpoint()).log > 0);
  assert.equal(checkpointer.workerThreadId, first);
  await until(() => checkpointer.workerThreadId === undefined, 5_000);
  await store.putResults([pushed("c", 3)]);
  const back = checkpointer.checkpoint();
  const second = checkpointer.workerThreadId;
  assert.ok(second !== undefined && second !== first, "a new write brings a new worker");
  assert.ok((await back).log > 0);
});

test("a WAL holding little waits for a later checkpoint, without the worker, until it holds enough or has waited long enough", async (t) => {
  const { dir, db, store } = setup(t);
  let now = 1_000_000;
  const checkpointer = new Checkpointer(join(dir, DATABASE_FILE), 64 * 1024 * 1024, { idleMs: 3_600_000, minFrames: 50, maxDelayMs: 60_000, now: () => now });
  t.after(() => checkpointer.close());
  const file = join(dir, DATABASE_FILE);
  await store.putResults([pushed("a", 1)]);
  const small = pendingFrames(file)!;
  assert.ok(small > 0 && small < 50, `${small} frames after one small write`);
  const first = await checkpointer.checkpoint();
  assert.deepEqual(first, { busy: false, log: small, checkpointed: 0, truncated: false, deferred: true });
  assert.equal(checkpointer.workerThreadId, undefined, "no worker for a deferred checkpoint");
  // The count read from the WAL index is SQLite's own: a checkpoint on the agent's connection copies exactly that many.
  await store.putResults([pushed("b", 2)]);
  const waiting = pendingFrames(file)!;
  now += 59_000;
  assert.equal((await checkpointer.checkpoint()).deferred, true, "not yet waited long enough");
  now += 1_000;
  const late = await checkpointer.checkpoint();
  assert.equal(late.deferred, undefined, "frames that waited maxDelayMs are checkpointed");
  assert.equal(late.log, waiting);
  assert.equal(late.checkpointed, late.log);
  assert.equal(pendingFrames(file), 0);
  // Enough frames at once: checkpointed on the next round, however recent.
  for (let i = 0; i < 20; i++) await store.putResults(Array.from({ length: 100 }, (_, k) => pushed(`m${i}-${k}`, 100 + i * 100 + k, { subject: `m${i}-${k}` })));
  const many = pendingFrames(file)!;
  assert.ok(many >= 50, `${many} frames`);
  const full = await checkpointer.checkpoint();
  assert.equal(full.deferred, undefined);
  assert.equal(full.checkpointed, many);
  // And SQLite agrees on what was left: nothing.
  const p = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number };
  assert.equal(p.log, p.checkpointed);
});

test("frames left waiting are checkpointed when their delay runs out, with no housekeeping round to ask", async (t) => {
  const { dir, store } = setup(t);
  const checkpointer = new Checkpointer(join(dir, DATABASE_FILE), 64 * 1024 * 1024, { idleMs: 3_600_000, minFrames: 200, maxDelayMs: 300 });
  t.after(() => checkpointer.close());
  const file = join(dir, DATABASE_FILE);
  await store.putResults([pushed("a", 1)]);
  assert.equal((await checkpointer.checkpoint()).deferred, true);
  assert.ok(pendingFrames(file)! > 0);
  await until(() => pendingFrames(file) === 0, 5_000);
});

test("the WAL index count matches SQLite's own checkpoint counters", (t) => {
  const { dir, db } = setup(t);
  const file = join(dir, DATABASE_FILE);
  db.exec("CREATE TABLE t (x TEXT)");
  const insert = db.prepare("INSERT INTO t VALUES (?)");
  for (let i = 0; i < 50; i++) insert.run("y".repeat(3000));
  const pending = pendingFrames(file);
  const p = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number };
  assert.equal(p.busy, 0);
  assert.equal(pending, p.log, "frames waiting before the checkpoint");
  assert.equal(pendingFrames(file), p.log - p.checkpointed, "after it: none");
  assert.equal(pendingFrames(join(dir, "no-such.db")), undefined, "no WAL index: unknown");
});
