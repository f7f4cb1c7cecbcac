/**
 * Cluster mode's queue (BullMQ on a real redis-server started here): the WorkQueue contract suite
 * (test/queue/contract.ts), and what only a queue shared by processes does: schedules that produce
 * a job once per due time however many queues run, a cluster-wide cap, bounded retention, and
 * workers that resume by themselves after Redis restarts.
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { BullQueue, encodeId, type BullQueueOptions } from "../../src/queue/bullmq.ts";
import { closeRedis, openRedis, waitReady, type RedisSettings } from "../../src/db/redis/connection.ts";
import type { JobRecord } from "../../src/queue/contract.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";
import { deferred, sleep, waitFor, workQueueContract, type QueueBackend } from "./contract.ts";

let server: RedisServer | undefined;
let counter = 0;

before(async () => {
  // Survives the SIGKILL of the restart test; fsync per write would only slow the 10,000-job test.
  if (!REDIS_MISSING) server = await RedisServer.start({ fsync: "everysec" });
});
after(async () => {
  await server?.stop();
});

function settings(): RedisSettings {
  // command_timeout as shipped (10s): the 10,000-job enqueue is one MULTI, which a loaded 2-core host can keep busy past 2 s.
  return { url: server!.url, connect_timeout: 2_000, command_timeout: 10_000 };
}

/** Queues on a fresh key prefix; each with its own connections, closed after the test. */
async function env(t: TestContext, defaults: Partial<BullQueueOptions> = {}) {
  const prefix = `t${++counter}`;
  const owned: { queue: BullQueue; conns: Redis[] }[] = [];
  const look = openRedis(settings(), "command", "test:look");
  look.on("error", () => undefined);
  await waitReady(look);
  const lookers = new Map<string, Queue>();
  t.after(async () => {
    for (const o of owned) {
      await o.queue.stop().catch(() => undefined);
      for (const c of o.conns) await closeRedis(c);
    }
    for (const q of lookers.values()) await q.close();
    await closeRedis(look);
  });
  // Connections are ready before a queue gets them, as the agent waits for Redis before building its queue.
  const pool: [Redis, Redis][] = [];
  for (let i = 0; i < 3; i++) {
    const pair: [Redis, Redis] = [openRedis(settings(), "command", "test:command"), openRedis(settings(), "worker", "test:worker")];
    for (const c of pair) {
      c.on("error", () => undefined);
      await waitReady(c);
    }
    pool.push(pair);
  }
  t.after(async () => {
    for (const pair of pool) for (const c of pair) await closeRedis(c);
  });
  const make = (options: Partial<BullQueueOptions> & { drainTimeoutMs?: number } = {}): BullQueue => {
    const pair = pool.shift();
    if (!pair) throw new Error("a test asked for more queues than the pool holds");
    const [connection, workerConnection] = pair;
    const queue = new BullQueue({ prefix, connection, workerConnection, lockDurationMs: 1_000, drainTimeoutMs: 200, ...defaults, ...options });
    owned.push({ queue, conns: [connection, workerConnection] });
    return queue;
  };
  return {
    prefix,
    look,
    queue: make,
    /** The connections of `queue`, for a test that takes them away. */
    conns: (queue: BullQueue) => owned.find((o) => o.queue === queue)!.conns,
    async jobState(kind: string, id: string) {
      let q = lookers.get(kind);
      if (!q) {
        q = new Queue(kind, { connection: look, prefix: `${prefix}:queue` });
        lookers.set(kind, q);
      }
      const job = await q.getJob(encodeId(id));
      if (!job) return undefined;
      const state = await job.getState();
      const data = job.data as { c?: string | null };
      return {
        state: state === "delayed" || state === "prioritized" || state === "waiting" ? "waiting" : state,
        attempt: state === "active" ? job.attemptsMade + 1 : job.attemptsMade,
        error: job.failedReason ?? null,
        error_code: data.c ?? null,
      };
    },
  };
}

const bullmq: QueueBackend = {
  name: "BullMQ on Redis",
  skip: REDIS_MISSING,
  async setup(t) {
    const e = await env(t);
    return {
      queue: (options = {}) => e.queue(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }),
      jobState: (kind, id) => e.jobState(kind, id),
      // Its connections end: no lock renewal, no result written; its jobs' locks lapse.
      kill: async (queue) => {
        for (const c of e.conns(queue as BullQueue)) c.disconnect();
      },
    };
  },
};

workQueueContract(bullmq);

describe("BullMQ queue: what a shared queue adds", { skip: REDIS_MISSING ?? false }, () => {
  test("a schedule produces one job per due time however many queues reconcile it and run its jobs", async (t) => {
    const e = await env(t);
    const queues = [e.queue(), e.queue(), e.queue()];
    const ran: JobRecord<{ policy: string }>[] = [];
    for (const q of queues) {
      q.process<{ policy: string }>("tick", async (job) => {
        ran.push(job);
      });
      await q.start();
    }
    const schedule = { id: "tick:p1", cron: "* * * * * *", payload: { policy: "p1" }, attempts: 3, backoff: { delay: 100 } };
    assert.deepEqual(await queues[0]!.reconcileSchedules("tick", [schedule]), { upserted: 1, removed: 0 });
    // Reconciling what is already there changes nothing (no upsert, so no restart of the schedule).
    for (const q of queues) assert.deepEqual(await q.reconcileSchedules("tick", [schedule]), { upserted: 0, removed: 0 });
    await sleep(3_500);
    const dues = ran.map((j) => j.scheduled_at);
    assert.ok(ran.length >= 3, `ran ${ran.length} times in 3.5 s`);
    assert.equal(new Set(dues).size, dues.length, `each due time ran once: ${dues.join(", ")}`);
    assert.ok(dues.every((d) => d !== undefined && d % 1_000 === 0), "a due time is the second it was due");
    assert.deepEqual(ran[0]!.payload, { policy: "p1" });
    assert.equal(ran[0]!.max_attempts, 3);
    // A schedule no longer listed is removed: no more jobs.
    assert.deepEqual(await queues[1]!.reconcileSchedules("tick", []), { upserted: 0, removed: 1 });
    await sleep(1_200);
    const count = ran.length;
    await sleep(1_500);
    assert.equal(ran.length, count, "a removed schedule produced a job");
  });

  test("a cluster-wide cap holds across queues, each under its own concurrency", async (t) => {
    const e = await env(t, { globalConcurrency: { capped: 2 } });
    let running = 0;
    let peak = 0;
    let done = 0;
    const queues = [e.queue(), e.queue(), e.queue()];
    for (const q of queues) {
      q.process(
        "capped",
        async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(40);
          running--;
          done++;
        },
        { concurrency: 4 },
      );
      await q.start();
    }
    await queues[0]!.enqueueMany("capped", Array.from({ length: 30 }, (_, i) => ({ payload: i })));
    await waitFor("every job", () => done === 30, 20_000);
    assert.equal(peak, 2, `peak ${peak}: the cap is per cluster, not per queue (3 × 4)`);
  });

  test("finished jobs are kept within the bounds, so Redis does not grow without limit", async (t) => {
    const e = await env(t, { keepCompleted: 100, keepFailed: 100 });
    const q = e.queue();
    q.process<{ i: number }>("kept", async (job) => {
      if (job.payload.i % 2 === 0) throw new Error("permanent");
    });
    q.onFailed(() => undefined);
    await q.start();
    await q.enqueueMany("kept", Array.from({ length: 500 }, (_, i) => ({ payload: { i } })));
    await q.idle({ timeoutMs: 30_000 });
    const completed = await e.look.zcard(`${e.prefix}:queue:kept:completed`);
    const failed = await e.look.zcard(`${e.prefix}:queue:kept:failed`);
    assert.ok(completed <= 100 && completed > 0, `${completed} completed jobs kept`);
    assert.ok(failed <= 100 && failed > 0, `${failed} failed jobs kept`);
    assert.equal((await q.depth())["kept"]?.failed, failed);
  });

  test("workers resume by themselves after Redis restarts; an enqueue while it is away fails at once", async (t) => {
    const e = await env(t);
    const q = e.queue();
    const seen: number[] = [];
    q.process<{ n: number }>("resume", async (job) => {
      seen.push(job.payload.n);
    });
    await q.start();
    await q.enqueue("resume", { n: 1 }, { id: "before" });
    await waitFor("the first job", () => seen.length === 1);
    await server!.kill();
    const began = Date.now();
    await assert.rejects(q.enqueue("resume", { n: 0 }), { code: "VIGIL_ERR_UNAVAILABLE" });
    assert.ok(Date.now() - began < 1_000, "the enqueue waited instead of failing fast");
    await server!.restart();
    // The producer's connection comes back by itself too.
    await waitFor("an enqueue to go through", async () => q.enqueue("resume", { n: 2 }, { id: "after" }).then(() => true, () => false), 10_000);
    await waitFor("the job after the restart", () => seen.includes(2), 15_000);
    assert.deepEqual(seen, [1, 2]);
    assert.equal(await q.enqueue("resume", { n: 1 }, { id: "before" }), false, "the AOF kept the completed job: its id still de-duplicates");
  });

  test("a job that never finishes in a stopped queue is taken over once its lock lapses", async (t) => {
    const e = await env(t);
    const first = e.queue({ drainTimeoutMs: 20 });
    const hold = deferred();
    first.process("slow", async () => hold.promise);
    await first.start();
    await first.enqueue("slow", {}, { id: "x" });
    await waitFor("the job to start", async () => (await e.jobState("slow", "x"))?.state === "active");
    await first.stop();
    for (const c of e.conns(first)) c.disconnect();
    const second = e.queue();
    const ran: string[] = [];
    second.process("slow", async (job) => {
      ran.push(job.id);
    });
    await second.start();
    await waitFor("the takeover", () => ran.length === 1, 10_000);
    hold.resolve();
    assert.deepEqual(ran, ["x"]);
  });
});
