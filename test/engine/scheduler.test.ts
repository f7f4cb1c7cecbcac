import { test } from "node:test";
import assert from "node:assert/strict";
import { jitterOffset, nextDue, planTick, MAX_BATCH } from "../../src/engine/scheduler.ts";
import { loadCron } from "../../src/util/cron.ts";
import { KeyedLock } from "../../src/engine/keyed-lock.ts";
import type { PolicySpec } from "../../src/config/compile.ts";
import { until } from "../helpers/wait.ts";

const policy = { name: "p" } as PolicySpec;

test("jitter offsets are stable, inside the spread, and spread out", () => {
  const spread = 300_000;
  const offsets = Array.from({ length: 1000 }, (_, i) => jitterOffset("p", `s${i}`, spread));
  assert.deepEqual(offsets, Array.from({ length: 1000 }, (_, i) => jitterOffset("p", `s${i}`, spread)));
  assert.ok(offsets.every((o) => o >= 0 && o < spread));
  // 1,000 subjects over 10 equal buckets: none empty, none holding more than a quarter.
  const buckets = new Array(10).fill(0);
  for (const o of offsets) buckets[Math.floor((o / spread) * 10)]++;
  assert.ok(buckets.every((b) => b > 0 && b < 250), JSON.stringify(buckets));
  assert.equal(jitterOffset("p", "x", 0), 0);
});

test("a tick plans every subject exactly once, in batches no larger than MAX_BATCH, delayed by its slot", () => {
  const ids = Array.from({ length: 5000 }, (_, i) => `u${i}`);
  const jobs = planTick(policy, ids, 1_000_000, "schedule", 60_000);
  const planned = jobs.flatMap((j) => j.payload.subjects);
  assert.equal(planned.length, ids.length);
  assert.equal(new Set(planned).size, ids.length);
  assert.ok(jobs.every((j) => j.payload.subjects.length <= MAX_BATCH));
  assert.ok(jobs.every((j) => (j.options.delay ?? 0) >= 0 && (j.options.delay ?? 0) < 60_000));
  for (const j of jobs) for (const id of j.payload.subjects) assert.equal(Math.floor(jitterOffset("p", id, 60_000) / 1000) * 1000, j.options.delay);
  assert.equal(new Set(jobs.map((j) => j.options.id)).size, jobs.length, "job ids are unique within a tick");
  assert.deepEqual(planTick(policy, ids, 1_000_000, "schedule", 60_000).map((j) => j.options.id), jobs.map((j) => j.options.id), "the same tick gives the same ids (enqueued once)");
});

test("spread 0 (start-up pass) puts everything in slot 0 with no delay", () => {
  const jobs = planTick(policy, ["a", "b", "c"], 5, "start", 0);
  assert.equal(jobs.length, 1);
  assert.equal(jobs[0]!.options.delay, 0);
});

test("KeyedLock never runs two holders of one key at once, and lets other keys through", async () => {
  const lock = new KeyedLock();
  let active = 0;
  let maxActive = 0;
  const order: string[] = [];
  /** Each holder keeps its keys until its gate opens; gates in the order the holders got in. */
  const gates: (() => void)[] = [];
  const work = (name: string, keys: string[]) =>
    lock.run(keys, async () => {
      if (keys.includes("a")) {
        active++;
        maxActive = Math.max(maxActive, active);
      }
      order.push(`start ${name}`);
      await new Promise<void>((r) => gates.push(r));
      order.push(`end ${name}`);
      if (keys.includes("a")) active--;
    });
  const all = Promise.all([work("1", ["a"]), work("2", ["a", "b"]), work("3", ["c"]), work("4", ["a"])]);
  // Let each holder go once it holds: 1 and 3 at once, then 2 and 4 one after the other as "a" frees up.
  for (let i = 0; i < 4; i++) {
    await until(() => gates.length > i);
    gates[i]!();
  }
  await all;
  assert.equal(maxActive, 1);
  assert.ok(order.indexOf("start 3") < order.indexOf("end 1"), "a different key is not held up");
  assert.equal(lock.size, 0, "no key left held");
});

test("a duration interval is due at its next multiple in local time, strictly after the given instant", () => {
  const at = (h: number, m: number, sec = 0, ms = 0) => new Date(2026, 0, 15, h, m, sec, ms).getTime();
  const due = (text: string, after: number) => nextDue({ cron: "", spread: 0, text }, after);
  assert.equal(due("30s", at(10, 7, 12)), at(10, 7, 30));
  assert.equal(due("30s", at(10, 7, 30)), at(10, 8, 0), "a due time just passed is not due again");
  assert.equal(due("5m", at(10, 7, 12, 500)), at(10, 10));
  assert.equal(due("5m", at(10, 55)), at(11, 0));
  assert.equal(due("15m", at(23, 50)), new Date(2026, 0, 16, 0, 0).getTime());
  assert.equal(due("6h", at(10, 7)), at(12, 0));
  assert.equal(due("6h", at(18, 0)), new Date(2026, 0, 16, 0, 0).getTime());
  assert.equal(due("1d", at(0, 0, 0, 1)), new Date(2026, 0, 16, 0, 0).getTime());
});

test("a cron expression is due when node-cron says, after the given instant", async () => {
  await loadCron();
  const now = Date.now();
  const next = nextDue({ cron: "*/10 * * * *", spread: 60_000, text: "*/10 * * * *" }, now);
  assert.ok(next > now && next - now <= 600_000, `next run ${new Date(next).toISOString()}`);
  assert.equal(new Date(next).getMinutes() % 10, 0);
  assert.equal(new Date(next).getSeconds(), 0);
});
