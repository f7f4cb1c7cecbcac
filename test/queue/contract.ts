/**
 * The WorkQueue contract as one suite, run against each implementation (embedded SQLite, BullMQ on
 * Redis) by the files that import it. A backend gives fresh backing per test, queues on it (several
 * share it, as processes share a database file or a Redis), a look at a job as kept, and a way to
 * make a queue's process "die" with its jobs still running.
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { UpstreamError, VigilError } from "../../src/errors.ts";
import type { FailedJob, JobRecord, WorkQueue } from "../../src/queue/contract.ts";
import { until } from "../helpers/wait.ts";

export interface QueueOptions {
  /** How long `stop()` waits for running handlers (default 200 ms here). */
  readonly drainTimeoutMs?: number;
  /** Embedded: its safety-net poll. Set long where only a timer may start a job in time. */
  readonly pollIntervalMs?: number;
}

export interface JobState {
  /** waiting (delayed jobs included), active, completed or failed. */
  readonly state: string;
  /** Attempts started. */
  readonly attempt: number;
  readonly error: string | null;
  readonly error_code: string | null;
}

export interface QueueEnv {
  queue(options?: QueueOptions): WorkQueue;
  jobState(kind: string, id: string): Promise<JobState | undefined>;
  /** The process running `queue` dies: its running jobs are left as they are, nothing more is written. */
  kill(queue: WorkQueue): Promise<void>;
}

export interface QueueBackend {
  readonly name: string;
  /** Why the suite cannot run here (a missing server binary), or undefined. */
  readonly skip?: string | undefined;
  setup(t: TestContext): Promise<QueueEnv>;
}

export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export function workQueueContract(backend: QueueBackend): void {
  describe(`WorkQueue contract (${backend.name})`, { skip: backend.skip ?? false }, () => {
    const setup = (t: TestContext) => backend.setup(t);

    test("an enqueued job runs its handler with the payload", async (t) => {
      const env = await setup(t);
      const queue = env.queue();
      const seen: JobRecord<{ subject: string }>[] = [];
      queue.process<{ subject: string }>("check", async (job) => {
        seen.push(job);
      });
      await queue.start();
      assert.equal(await queue.enqueue("check", { subject: "web-1" }, { id: "job-1" }), true);
      await waitFor("the handler", () => seen.length === 1);
      const job = seen[0];
      assert.ok(job);
      assert.equal(job.id, "job-1");
      assert.equal(job.kind, "check");
      assert.deepEqual(job.payload, { subject: "web-1" });
      assert.equal(job.attempt, 1);
      assert.equal(job.max_attempts, 1);
      await waitFor("completion", async () => (await env.jobState("check", "job-1"))?.state === "completed");
      assert.deepEqual(await queue.depth(), {});
    });

    test("a job id enqueued twice runs once, also after it completed", async (t) => {
      const env = await setup(t);
      const queue = env.queue();
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
      // Ids with the characters engine ids carry (`:`, `%`, digits only) are ids like any other.
      for (const id of ["schedule:p:1700000000000:3:0", "100%", "12345"]) {
        assert.equal(await queue.enqueue("k", {}, { id }), true, id);
        assert.equal(await queue.enqueue("k", {}, { id }), false, id);
      }
      await queue.idle();
      assert.equal(runs, 4);
    });

    test("enqueueMany writes 10,000 jobs at once and each runs exactly once", async (t) => {
      const env = await setup(t);
      const queue = env.queue();
      const jobs = Array.from({ length: 10_000 }, (_, i) => ({ payload: { i }, options: { id: `j${i}` } }));
      jobs.push({ payload: { i: 5 }, options: { id: "j5" } });
      assert.equal(await queue.enqueueMany("bulk", jobs), 10_000);
      assert.deepEqual((await queue.depth())["bulk"], { waiting: 10_000, delayed: 0, active: 0, failed: 0 });
      assert.equal(await queue.enqueueMany("bulk", [{ payload: { i: 1 }, options: { id: "j1" } }]), 0);
      const seen = new Map<number, number>();
      queue.process<{ i: number }>(
        "bulk",
        async (job) => {
          seen.set(job.payload.i, (seen.get(job.payload.i) ?? 0) + 1);
        },
        { concurrency: 8 },
      );
      await queue.start();
      await waitFor("all jobs", () => seen.size === 10_000, 60_000);
      await queue.idle();
      assert.ok([...seen.values()].every((n) => n === 1));
      await waitFor("an empty queue", async () => (await queue.depth())["bulk"] === undefined);
    });

    test("a delayed job does not run before its time and is woken by its timer", async (t) => {
      // A long poll interval: only a timer armed for the due time can start the job in time.
      const queue = (await setup(t)).queue({ pollIntervalMs: 60_000 });
      let startedAt = 0;
      queue.process("later", async () => {
        startedAt = Date.now();
      });
      await queue.start();
      const enqueuedAt = Date.now();
      await queue.enqueue("later", {}, { delay: 50 });
      assert.equal((await queue.depth())["later"]?.delayed, 1);
      await waitFor("the delayed job", () => startedAt > 0, 2_000);
      assert.ok(startedAt - enqueuedAt >= 50, `ran after ${startedAt - enqueuedAt} ms`);
    });

    test("a transient failure is retried with backoff until it succeeds", async (t) => {
      const env = await setup(t);
      const queue = env.queue({ pollIntervalMs: 60_000 });
      const attempts: { attempt: number; at: number }[] = [];
      const failed: FailedJob[] = [];
      queue.onFailed((f) => failed.push(f));
      queue.process("flaky", async (job) => {
        attempts.push({ attempt: job.attempt, at: Date.now() });
        if (job.attempt === 1) throw new UpstreamError(true, "503 from upstream", { status: 503 });
        if (job.attempt === 2) throw new VigilError("VIGIL_ERR_STORE", "database is locked");
      });
      await queue.start();
      await queue.enqueue("flaky", {}, { id: "f", attempts: 4, backoff: { delay: 20 } });
      await waitFor("the third attempt", () => attempts.length === 3);
      await waitFor("completion", async () => (await env.jobState("flaky", "f"))?.state === "completed");
      assert.deepEqual(
        attempts.map((a) => a.attempt),
        [1, 2, 3],
      );
      const [a1, a2, a3] = attempts as [(typeof attempts)[0], (typeof attempts)[0], (typeof attempts)[0]];
      // Full jitter keeps each delay within [base/2, base]: 20 ms then 40 ms.
      assert.ok(a2.at - a1.at >= 10, `first retry after ${a2.at - a1.at} ms`);
      assert.ok(a3.at - a2.at >= 20, `second retry after ${a3.at - a2.at} ms`);
      assert.equal(failed.length, 0);
    });

    test("a job that keeps failing transiently fails after its last attempt", async (t) => {
      const env = await setup(t);
      const queue = env.queue();
      const failed: FailedJob[] = [];
      let calls = 0;
      queue.onFailed((f) => failed.push(f));
      queue.process("down", async () => {
        calls += 1;
        throw new UpstreamError(true, "timeout");
      });
      await queue.start();
      await queue.enqueue("down", { x: 1 }, { id: "d", attempts: 2, backoff: { delay: 2 } });
      await waitFor("the failure", () => failed.length === 1);
      await queue.idle();
      assert.equal(calls, 2);
      assert.equal(failed.length, 1);
      assert.equal(failed[0]?.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
      assert.equal(failed[0]?.job.attempt, 2);
      assert.deepEqual(failed[0]?.job.payload, { x: 1 });
      assert.equal((await env.jobState("down", "d"))?.state, "failed");
    });

    test("a permanent error fails the job at once, calls onFailed once and keeps the job", async (t) => {
      const env = await setup(t);
      const queue = env.queue();
      const failed: FailedJob[] = [];
      const second: FailedJob[] = [];
      let calls = 0;
      queue.onFailed((f) => failed.push(f));
      queue.onFailed((f) => second.push(f));
      queue.process("deny", async () => {
        calls += 1;
        throw new UpstreamError(false, "403 forbidden", { status: 403 });
      });
      await queue.start();
      await queue.enqueue("deny", { subject: "u1" }, { id: "p", attempts: 5, backoff: { delay: 1 } });
      await waitFor("the failure", () => failed.length === 1);
      await queue.idle();
      assert.equal(calls, 1);
      assert.equal(failed.length, 1);
      assert.equal(second.length, 1);
      assert.equal(failed[0]?.error, "403 forbidden");
      assert.equal(failed[0]?.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
      assert.equal(failed[0]?.job.id, "p");
      assert.deepEqual(await env.jobState("deny", "p"), { state: "failed", attempt: 1, error: "403 forbidden", error_code: "VIGIL_ERR_UPSTREAM_PERMANENT" });
      assert.equal((await queue.depth())["deny"]?.failed, 1);
      assert.equal(await queue.enqueue("deny", {}, { id: "p" }), false, "a failed job still de-duplicates");
    });

    test("an error without a vigil code is permanent: the job fails at once instead of using up its attempts", async (t) => {
      const env = await setup(t);
      const queue = env.queue();
      const failed: FailedJob[] = [];
      let calls = 0;
      queue.onFailed((f) => failed.push(f));
      queue.process("misconfigured", async () => {
        calls += 1;
        throw new Error("no such key in the config");
      });
      await queue.start();
      await queue.enqueue("misconfigured", {}, { id: "m", attempts: 5, backoff: { delay: 1 } });
      await waitFor("the failure", () => failed.length === 1);
      await queue.stop();
      assert.equal(calls, 1);
      assert.equal(failed[0]?.code, undefined);
      assert.deepEqual(await env.jobState("misconfigured", "m"), { state: "failed", attempt: 1, error: "no such key in the config", error_code: null });
    });

    test("retryAfterMs delays the next attempt at least that long, however short the backoff", async (t) => {
      const queue = (await setup(t)).queue();
      const at: number[] = [];
      queue.process("limited", async () => {
        at.push(Date.now());
        if (at.length === 1) throw new UpstreamError(true, "429 too many requests", { status: 429, retryAfterMs: 400 });
      });
      await queue.start();
      await queue.enqueue("limited", {}, { attempts: 3, backoff: { delay: 1 } });
      await waitFor("the retry", () => at.length === 2, 3_000);
      assert.ok(at[1]! - at[0]! >= 400, `retried after ${at[1]! - at[0]!} ms`);
    });

    test("a job left active by a dead process runs again in another one", async (t) => {
      const env = await setup(t);
      const first = env.queue({ drainTimeoutMs: 10 });
      const release = deferred();
      let firstStarted = 0;
      const staleFailures: FailedJob[] = [];
      first.onFailed((f) => staleFailures.push(f));
      first.process("enforce", async () => {
        firstStarted += 1;
        await release.promise; // hangs, as if the process died mid-job
        throw new UpstreamError(false, "stale worker gave up");
      });
      await first.start();
      await first.enqueue("enforce", { subject: "s1" }, { id: "e1" });
      await waitFor("the first process to take the job", () => firstStarted === 1);
      assert.equal((await env.jobState("enforce", "e1"))?.state, "active");
      await env.kill(first);

      // Another process on the same backing, while the first never finished.
      const second = env.queue();
      const ran: JobRecord[] = [];
      second.process("enforce", async (job) => {
        ran.push(job);
      });
      assert.deepEqual((await second.depth())["enforce"], { waiting: 0, delayed: 0, active: 1, failed: 0 });
      await second.start();
      await waitFor("the recovered job", () => ran.length === 1, 10_000);
      assert.equal(ran[0]?.id, "e1");
      assert.equal(ran[0]?.attempt, 1, "the interrupted attempt is given back");
      await waitFor("completion", async () => (await env.jobState("enforce", "e1"))?.state === "completed");

      // The stale worker finishing late must not overwrite the outcome.
      release.resolve();
      await first.stop();
      assert.equal((await env.jobState("enforce", "e1"))?.state, "completed");
      assert.equal(staleFailures.length, 0);
      assert.equal(firstStarted, 1);
    });

    test("a job enqueued by one queue runs in another (the job is durable, not in memory)", async (t) => {
      const env = await setup(t);
      const before = env.queue();
      assert.equal(await before.enqueue("durable", { n: 42 }, { id: "d1" }), true);
      const queue = env.queue();
      const seen: unknown[] = [];
      queue.process("durable", async (job) => {
        seen.push(job.payload);
      });
      await queue.start();
      await waitFor("the job", () => seen.length === 1);
      assert.deepEqual(seen, [{ n: 42 }]);
    });

    test("stop() waits for a running handler, takes no new jobs and is idempotent", async (t) => {
      const queue = (await setup(t)).queue();
      let started = 0;
      let finished = 0;
      queue.process("slow", async () => {
        started += 1;
        await sleep(60);
        finished += 1;
      });
      await queue.start();
      await queue.enqueue("slow", {});
      await waitFor("the handler", () => started === 1);
      const first = queue.stop();
      const second = queue.stop();
      await first;
      assert.equal(finished, 1, "stop returned before the running handler finished");
      await second;
      await queue.stop();
      await queue.enqueue("slow", {});
      await assert.rejects(queue.idle(), { code: "VIGIL_ERR_SHUTDOWN" }, "a stopped queue keeps its due job waiting");
      assert.equal(started, 1, "a stopped queue took a new job");
      assert.equal((await queue.depth())["slow"]?.waiting, 1);
    });

    test("stop() gives up after drainTimeoutMs and leaves the job active for recovery", async (t) => {
      const env = await setup(t);
      const queue = env.queue({ drainTimeoutMs: 30 });
      let started = 0;
      queue.process("stuck", async () => {
        started += 1;
        await new Promise(() => undefined);
      });
      await queue.start();
      await queue.enqueue("stuck", {}, { id: "s" });
      await waitFor("the handler", () => started === 1);
      await queue.stop();
      assert.equal((await env.jobState("stuck", "s"))?.state, "active");
    });

    test("concurrency is limited per kind and kinds run independently", async (t) => {
      const queue = (await setup(t)).queue();
      let running = 0;
      let peak = 0;
      let done = 0;
      queue.process(
        "a",
        async () => {
          running += 1;
          peak = Math.max(peak, running);
          await sleep(15);
          running -= 1;
          done += 1;
        },
        { concurrency: 3 },
      );
      const blocker = deferred();
      let blockedStarted = 0;
      let otherRan = 0;
      queue.process("blocked", async () => {
        blockedStarted += 1;
        await blocker.promise;
      });
      queue.process("other", async () => {
        otherRan += 1;
      });
      await queue.start();
      await queue.enqueueMany("a", Array.from({ length: 12 }, (_, i) => ({ payload: { i } })));
      await queue.enqueueMany("blocked", [{ payload: 1 }, { payload: 2 }]);
      await waitFor("the blocked handler", () => blockedStarted === 1);
      await queue.enqueue("other", {});
      await waitFor("the other kind", () => otherRan === 1);
      await waitFor("all a jobs", () => done === 12);
      assert.equal(peak, 3);
      assert.equal(blockedStarted, 1, "concurrency 1 let a second job of the kind start");
      assert.deepEqual((await queue.depth())["blocked"], { waiting: 1, delayed: 0, active: 1, failed: 0 });
      blocker.resolve();
      await waitFor("the second blocked job", () => blockedStarted === 2);
    });

    test("depth() counts waiting, delayed, active and failed per kind; a delayed job counts as waiting once due", async (t) => {
      const queue = (await setup(t)).queue({ drainTimeoutMs: 10 });
      await queue.enqueueMany("a", [{ payload: 1 }, { payload: 2 }, { payload: 3, options: { delay: 1_500 } }]);
      // Taken once the enqueue returned: the job is due 1.5 s after a moment no later than this.
      const enqueuedAt = Date.now();
      await queue.enqueue("b", {});
      await queue.enqueue("c", {});
      assert.deepEqual(await queue.depth(), {
        a: { waiting: 2, delayed: 1, active: 0, failed: 0 },
        b: { waiting: 1, delayed: 0, active: 0, failed: 0 },
        c: { waiting: 1, delayed: 0, active: 0, failed: 0 },
      });
      let bStarted = false;
      queue.process("b", async () => {
        bStarted = true;
        await new Promise(() => undefined);
      });
      let cFailed = false;
      queue.onFailed(() => (cFailed = true));
      queue.process("c", async () => {
        throw new UpstreamError(false, "bad request", { status: 400 });
      });
      await queue.start();
      await waitFor("b to start and c to fail", () => bStarted && cFailed);
      await sleep(Math.max(0, enqueuedAt + 1_500 - Date.now()));
      assert.deepEqual(await queue.depth(), {
        a: { waiting: 3, delayed: 0, active: 0, failed: 0 },
        b: { waiting: 0, delayed: 0, active: 1, failed: 0 },
        c: { waiting: 0, delayed: 0, active: 0, failed: 1 },
      });
    });

    test("idle() resolves at once on an empty queue and on one holding only jobs delayed into the future", async (t) => {
      const queue = (await setup(t)).queue({ pollIntervalMs: 5 });
      let ran = 0;
      queue.process("later", async () => {
        ran += 1;
      });
      await queue.start();
      await queue.idle({ timeoutMs: 1_000 });
      await queue.enqueue("later", {}, { delay: 1_500 });
      const enqueuedAt = Date.now();
      await queue.idle({ timeoutMs: 1_000 });
      assert.equal(ran, 0);
      // Come due, the job counts again: idle() waits for it to run. Due by the queue's own reckoning
      // (a timer may fire a millisecond before Date.now() reaches the due time), or already run.
      await sleep(Math.max(0, enqueuedAt + 1_500 - Date.now()));
      await until(async () => ran === 1 || ((await queue.depth())["later"]?.waiting ?? 0) === 1, 2_000);
      await queue.idle({ timeoutMs: 2_000 });
      assert.equal(ran, 1);
    });

    test("idle() waits for running jobs and for the jobs they enqueue", async (t) => {
      // A poll far beyond the timeout: only the queue's own state changes can end the wait in time.
      const queue = (await setup(t)).queue({ pollIntervalMs: 60_000 });
      const gate = deferred();
      const order: string[] = [];
      let firstStarted = false;
      queue.process("first", async () => {
        firstStarted = true;
        await gate.promise;
        // Recorded before the enqueue: a worker elsewhere may run the new jobs before this one resumes.
        order.push("first");
        await queue.enqueueMany("second", [{ payload: 1 }, { payload: 2 }]);
      });
      queue.process("second", async (job) => {
        order.push(`second ${String(job.payload)}`);
      });
      await queue.start();
      await queue.enqueue("first", {});
      const idle = queue.idle({ timeoutMs: 5_000 }).then(() => order.push("idle"));
      await waitFor("the first job to start", () => firstStarted);
      gate.resolve();
      await idle;
      assert.deepEqual(order.slice(0, 1), ["first"]);
      assert.deepEqual(order.slice(1, 3).sort(), ["second 1", "second 2"]);
      assert.equal(order[3], "idle", "idle only after every job enqueued along the way has run");
      assert.deepEqual(await queue.depth(), {});
    });

    test("idle() gives up after timeoutMs with a TimeoutError; a stop with work left rejects the waiters", async (t) => {
      const queue = (await setup(t)).queue({ drainTimeoutMs: 20 });
      let started = 0;
      queue.process("stuck", async () => {
        started += 1;
        await new Promise(() => undefined);
      });
      await queue.start();
      await queue.enqueue("stuck", {});
      await waitFor("the handler", () => started === 1);
      await assert.rejects(queue.idle({ timeoutMs: 10 }), (err: Error) => err.name === "TimeoutError" && /not idle within 10 ms/.test(err.message));
      const waiting = queue.idle();
      await queue.stop();
      await assert.rejects(waiting, { code: "VIGIL_ERR_SHUTDOWN" });
      await assert.rejects(queue.idle(), { code: "VIGIL_ERR_SHUTDOWN" }, "a stopped queue holding an active job is not idle");
      await assert.rejects(queue.idle({ timeoutMs: -1 }), { code: "VIGIL_ERR_USAGE" });
    });

    test("idle() on a stopped queue: resolves when nothing is left, rejects when a due job waits", async (t) => {
      const queue = (await setup(t)).queue();
      queue.process("k", async () => undefined);
      await queue.start();
      await queue.enqueue("k", {});
      await queue.idle({ timeoutMs: 2_000 });
      await queue.stop();
      await queue.idle();
      await queue.enqueue("k", {});
      await assert.rejects(queue.idle(), { code: "VIGIL_ERR_SHUTDOWN" });
    });
  });
}
