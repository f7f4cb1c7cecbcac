/**
 * The embedded queue: the WorkQueue contract suite (test/queue/contract.ts), and what only the
 * embedded queue does (an injectable clock, retention of completed ids, a database closed under it).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { UpstreamError, VigilError } from "../../src/errors.ts";
import type { FailedJob, JobRecord } from "../../src/queue/contract.ts";
import { EmbeddedQueue, type EmbeddedQueueOptions } from "../../src/queue/embedded.ts";
import { openDatabase } from "../../src/db/sqlite.ts";
import { FakeClock } from "../../src/util/clock.ts";
import { workQueueContract, type QueueBackend } from "./contract.ts";

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "vigil-queue-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A queue on a fresh database file; stopped and closed after the test. */
function setup(t: TestContext, options: EmbeddedQueueOptions = {}, dir = tempDir(t)): { dir: string; db: DatabaseSync; queue: EmbeddedQueue } {
  const db = openDatabase(dir);
  const queue = new EmbeddedQueue(db, { drainTimeoutMs: 200, ...options });
  t.after(async () => {
    await queue.stop();
    if (db.isOpen) db.close();
  });
  return { dir, db, queue };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function jobState(db: DatabaseSync, id: string): { state: string; attempt: number; error: string | null; error_code: string | null } | undefined {
  const row = db.prepare("SELECT state, attempt, error, error_code FROM jobs WHERE id = ?").get(id);
  return (row ? { ...row } : undefined) as
    | { state: string; attempt: number; error: string | null; error_code: string | null }
    | undefined;
}

const embedded: QueueBackend = {
  name: "embedded",
  async setup(t) {
    const dir = tempDir(t);
    const dbs: DatabaseSync[] = [];
    const queues: EmbeddedQueue[] = [];
    t.after(async () => {
      for (const q of queues) await q.stop();
      for (const db of dbs) if (db.isOpen) db.close();
    });
    // One database connection per queue, as each process opens its own.
    const open = () => {
      const db = openDatabase(dir);
      dbs.push(db);
      return db;
    };
    const look = open();
    return {
      queue: (options = {}) => {
        const q = new EmbeddedQueue(open(), { drainTimeoutMs: 200, ...options });
        queues.push(q);
        return q;
      },
      jobState: async (_kind, id) => jobState(look, id),
      // A dead process leaves its jobs active; the next queue's start() recovers them.
      kill: async () => undefined,
    };
  },
};

workQueueContract(embedded);

test("a job id enqueued twice runs once, also after it completed, until retention ends", async (t) => {
  const clock = new FakeClock();
  const { queue } = setup(t, { clock, retentionMs: 60_000 });
  let runs = 0;
  queue.process("k", async () => {
    runs += 1;
  });
  assert.equal(await queue.enqueue("k", { n: 1 }, { id: "same" }), true);
  assert.equal(await queue.enqueue("k", { n: 2 }, { id: "same" }), false);
  await queue.start();
  await waitFor("the first run", () => runs === 1);
  assert.equal(await queue.enqueue("k", { n: 3 }, { id: "same" }), false);
  await queue.idle();
  assert.equal(runs, 1);
  clock.advance(60_001);
  assert.equal(await queue.enqueue("k", { n: 4 }, { id: "same" }), true, "a completed job past retention no longer de-duplicates");
  await waitFor("the second run", () => runs === 2);
});

test("retryAfterMs delays the next attempt at least that long", async (t) => {
  const clock = new FakeClock();
  const { queue } = setup(t, { clock, pollIntervalMs: 5 });
  let calls = 0;
  queue.process("limited", async () => {
    calls += 1;
    if (calls === 1) throw new UpstreamError(true, "429 too many requests", { status: 429, retryAfterMs: 60_000 });
  });
  await queue.start();
  await queue.enqueue("limited", {}, { attempts: 3, backoff: { delay: 1 } });
  await waitFor("the first attempt", () => calls === 1);
  await waitFor("the retry to be scheduled", async () => (await queue.depth())["limited"]?.delayed === 1);
  clock.advance(59_999);
  await queue.idle(); // a retry due by the queue's clock would run before this resolves
  assert.equal(calls, 1, "retried before Retry-After elapsed");
  clock.advance(1);
  await waitFor("the retry", () => calls === 2);
});

test("a job enqueued before the database was closed runs after reopening", async (t) => {
  const dir = tempDir(t);
  const db = openDatabase(dir);
  const before = new EmbeddedQueue(db);
  assert.equal(await before.enqueue("durable", { n: 42 }, { id: "d1" }), true);
  db.close();

  const { queue } = setup(t, {}, dir);
  const seen: unknown[] = [];
  queue.process("durable", async (job) => {
    seen.push(job.payload);
  });
  await queue.start();
  await waitFor("the job", () => seen.length === 1);
  assert.deepEqual(seen, [{ n: 42 }]);
});

test("jobs claimed together start one per turn of the event loop, in order, within their slots", async (t) => {
  const { queue } = setup(t);
  // A turn counter: one setImmediate per turn of the loop.
  let turn = 0;
  let counting = true;
  const count = (): void => {
    turn++;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  t.after(() => {
    counting = false;
  });
  const started: { n: number; turn: number; active: number }[] = [];
  let active = 0;
  // Handlers that finish at once, as an evaluation of attribute checks does.
  queue.process<{ n: number }>("quick", async (job) => {
    active++;
    started.push({ n: job.payload.n, turn, active });
    active--;
  }, { concurrency: 4 });
  for (let n = 0; n < 6; n++) await queue.enqueue("quick", { n });
  await queue.start();
  await queue.idle();
  assert.deepEqual(started.map((s) => s.n), [0, 1, 2, 3, 4, 5], `in order: ${JSON.stringify(started)}`);
  const turns = started.map((s) => s.turn);
  assert.equal(new Set(turns).size, turns.length, `each in a turn of its own: ${JSON.stringify(started)}`);
  assert.ok(started.every((s) => s.active === 1), "each ran alone, as it finished before the next started");
});
